// SPDX-License-Identifier: GPL-2.0-only
/* ZooKeeper store backend.
 *
 * Layout (under root, "/xvpc" by default):
 *   store/<hh>/<name>   one znode per record; <hh> is a hash bucket (two
 *                       hex digits, 256 buckets, so no directory grows past
 *                       what one getChildren answer can carry) and <name>
 *                       the key with every byte outside [A-Za-z0-9_:.-]
 *                       written %XX (and a leading '.')
 *   bus/store/m-<seq>   one message per multi: the records written by the
 *                       commits it carried, in order
 *
 * Commits are grouped (see "group commit" below): one zoo_multi carries
 * the create/set/delete/check ops of the records of several commits,
 * with ZooKeeper data versions taken from the member's copy, plus the
 * message on the bus, plus an unconditional set of bus/store-stamp (a
 * create does not report the zxid, a set does). Every member applies the
 * messages to its copy in bus sequence order, so all copies go through
 * the same states; the writer waits until its own message is in its copy
 * before returning, so it reads its own writes.
 *
 * The writer need not wait for the bus to bring its message back: the
 * commit tells it the message's sequence S and zxid, and it holds the very
 * bytes of the message. When the copy has applied message S - 1, no
 * message can come between (sequences are unique), so the writer applies
 * its message itself, exactly as the bus would have. Otherwise (a message
 * of another member, another writer's, or a sequence skipped by a bus
 * collection is still missing) it leaves it pending: whoever applies S - 1
 * (the bus, or another writer) applies it next. It tells the subscription
 * (zk_sub_advance), which then neither fetches nor delivers S; should the
 * bus deliver S anyway (fetched before), a message at or below the
 * applied sequence is skipped. Either way each message is applied once,
 * in sequence order.
 *
 * Versions and revisions are zxids: a record's version is the mzxid of its
 * znode (the zxid of the commit that wrote it, also the message's czxid),
 * a member's revision is the zxid of the last message it applied. Both are
 * monotonic, non-zero and the same on every member; they are not dense.
 *
 * Joining (and after a missed message or a new session) follows the
 * snapshot recipe of docs/zookeeper.md: a snapshot of store/ tied to bus
 * sequence L and zxid Z, then every message after L. Messages with a zxid
 * <= Z may already be in the copy: their changes to a record are applied
 * only when the copy's record is older (mzxid < zxid, decided per key
 * before the message is applied), and they are kept out of the change
 * feed, which starts at Z. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloc.h"
#include "log.h"
#include "store.h"
#include "store_mem.h"
#include "zk.h"

#define BUCKETS	       256
#define MSG_PUT	       1
#define MSG_DEL	       2
#define RECENT	       4096  /* (seq, zxid) of the last applied messages */
#define OWN_WAIT_MS    10000 /* for the bus to bring back our own commit */
#define CATCHUP_MS     30000 /* at open, for the copy to catch up */
#define ANY_RETRIES    8     /* unchecked ops that met a stale copy */
#define SNAPSHOT_TRIES 1     /* zk_snapshot_take already tries a few times */
#define BATCH_TXNS     128   /* commits in one group commit */
#define ELIDE_PAUSE    16    /* batches with checks after a refused elision */
#define BATCH_BYTES    (512 * 1024) /* their estimated size in the request */

struct zks;

/* One subscription's identity: messages from an older one are dropped. */
struct subctx {
	struct zks *s;
	uint64_t gen;
};

/* A commit of this member, waiting for its turn in the copy. Lives on
 * its writer's stack while the writer waits. */
struct own {
	struct own *next;
	struct zk_msg msg;
	uint64_t gen;
	bool applied;
};

/* A writer's transaction queued for the group commit. Lives on the
 * writer's stack until done is set. */
struct req {
	struct req *next;
	const struct store_op *ops;
	size_t n;
	size_t bytes; /* estimated size in a ZooKeeper request */
	bool active;  /* its ops are in the batch's multi */
	bool done;    /* answered (under gmu) */
	int err;
	size_t failed; /* with -ECANCELED; SIZE_MAX when not known */
	uint64_t rev;
};

struct zks {
	struct store base;
	char root[256], top[300], chan[300], stamp[320];
	char *hosts;
	struct zk_config cfg;

	/* The session; swapped by the maintenance thread under the write
	 * lock, used by commits under the read lock. */
	pthread_rwlock_t sess;
	struct zk *zk;

	/* The copy. */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct mem_map map;
	struct mem_feed feed;
	uint64_t rev;
	uint64_t wakes;	     /* store_wake_all() calls */
	int64_t base_zxid;   /* of the snapshot: older messages are quiet */
	int64_t applied_seq; /* last message applied */
	uint64_t gen;	     /* subscription generation */
	struct zk_sub *sub;
	struct subctx *subctx;
	struct own *own; /* own commits not yet applied */
	struct {
		int64_t seq;
		uint64_t zxid;
	} recent[RECENT];
	uint64_t resyncs;
	/* Version of bus/store-stamp after the last multi whose message the
	 * copy has applied (-1: not known), for generation stamp_gen: while
	 * the stamp still has it, nobody has committed since and the copy
	 * is exactly ZooKeeper's records (see "check elision" below). */
	int64_t stamp_ver;
	uint64_t stamp_gen;
	uint64_t elided; /* multis sent with their checks elided */
	/* Batches to send with their checks after an elided one was refused
	 * (other members write too: most elided multis would be wasted). */
	int elide_pause;

	/* Group commit: writers queue here; one of them (the committer)
	 * takes the queue and commits it as one transaction. */
	pthread_mutex_t gmu;
	pthread_cond_t gcond;
	struct req *qhead, **qtail;
	bool committing;
	bool paused;		   /* by a test: commits wait */
	bool single;		   /* no group commit */
	uint64_t batches, batched; /* multis of several commits, commits */
	uint64_t multis, multi_us; /* multis sent, their round trips (us) */

	/* Maintenance thread: renews the session, resynchronises. */
	pthread_t thread;
	bool thread_started;
	bool stop, need_resync, expired;
	void (*watch)(struct zk *zk, void *arg);
	void *watch_arg;
};

/* ---- keys and messages ------------------------------------------------ */

static uint32_t key_hash(const char *key)
{
	uint32_t h = 2166136261u;

	for (; *key; key++)
		h = (h ^ (uint8_t)*key) * 16777619u;
	return h;
}

static unsigned bucket_of(const char *key)
{
	uint32_t h = key_hash(key);

	return (h ^ (h >> 8) ^ (h >> 16) ^ (h >> 24)) & (BUCKETS - 1);
}

static bool plain(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == ':' || c == '-' ||
	       (c == '.' && !first);
}

static int key_path(const struct zks *s, const char *key, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	int n = snprintf(out, len, "%s/%02x/", s->top, bucket_of(key));
	size_t o = n;

	for (const char *k = key; *k; k++) {
		if (o + 4 > len)
			return -ENAMETOOLONG;
		if (plain(*k, k == key)) {
			out[o++] = *k;
		} else {
			out[o++] = '%';
			out[o++] = hex[(uint8_t)*k >> 4];
			out[o++] = hex[(uint8_t)*k & 15];
		}
	}
	out[o] = '\0';
	return 0;
}

static int unhex(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
				      : -1;
}

/* "<top>/<hh>/<name>" -> key; -EINVAL for anything else. */
static int path_key(const struct zks *s, const char *path, char *key,
		    size_t len)
{
	size_t tl = strlen(s->top), o = 0;
	const char *p;

	if (strncmp(path, s->top, tl) || path[tl] != '/' ||
	    strlen(path) < tl + 5 || path[tl + 3] != '/')
		return -EINVAL;
	for (p = path + tl + 4; *p; p++) {
		int c = (uint8_t)*p;

		if (*p == '%') {
			int hi = unhex(p[1]), lo = hi < 0 ? -1 : unhex(p[2]);

			if (lo < 0)
				return -EINVAL;
			c = hi << 4 | lo;
			p += 2;
		} else if (*p == '/') {
			return -EINVAL;
		}
		if (o + 1 >= len || !c)
			return -EINVAL;
		key[o++] = c;
	}
	key[o] = '\0';
	return o ? 0 : -EINVAL;
}

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_put(struct buf *b, const void *d, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + len)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, len);
	b->len += len;
	return 0;
}

static int buf_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = {v, v >> 8, v >> 16, v >> 24};

	return buf_put(b, x, 4);
}

/* Message: u32 count, then per record u8 op | u32 klen | key | u32 vlen |
 * value (little endian; vlen 0 for a delete). */
static int msg_add(struct buf *b, int op, const char *key, const char *val,
		   size_t len)
{
	size_t klen = strlen(key);
	int err = 0;

	err = buf_put(b, &(uint8_t){op}, 1);
	err = err ?: buf_u32(b, klen);
	err = err ?: buf_put(b, key, klen);
	err = err ?: buf_u32(b, op == MSG_PUT ? len : 0);
	if (op == MSG_PUT && len)
		err = err ?: buf_put(b, val, len);
	return err;
}

struct cursor {
	const uint8_t *p;
	size_t left;
};

static int cur_u32(struct cursor *c, uint32_t *v)
{
	if (c->left < 4)
		return -EBADMSG;
	*v = c->p[0] | c->p[1] << 8 | c->p[2] << 16 | (uint32_t)c->p[3] << 24;
	c->p += 4;
	c->left -= 4;
	return 0;
}

static int cur_bytes(struct cursor *c, const char **s, uint32_t *len)
{
	int err = cur_u32(c, len);

	if (err || c->left < *len)
		return -EBADMSG;
	*s = (const char *)c->p;
	c->p += *len;
	c->left -= *len;
	return 0;
}

/* ---- the copy ----------------------------------------------------------- */

static void recent_add(struct zks *s, int64_t seq, uint64_t zxid)
{
	s->recent[seq % RECENT].seq = seq;
	s->recent[seq % RECENT].zxid = zxid;
}

/* Keys and what a batch of commits (or a replayed message) did to them:
 * an open-addressing table sized for all the keys it will hold. */
struct kent {
	const char *key; /* NULL: free slot */
	bool written;	 /* by an earlier commit of the batch */
	bool checked;	 /* its version check is in the batch already */
	bool exists;	 /* after the batch's commits so far */
	int64_t dv;	 /* ZooKeeper data version then, -1 when absent */
};

struct ktab {
	struct kent *e;
	size_t cap; /* a power of two, at least twice the keys */
	bool owns;  /* the keys are malloc'ed copies */
};

static int ktab_init(struct ktab *t, size_t keys, bool owns)
{
	t->cap = 16;
	while (t->cap < 2 * keys)
		t->cap *= 2;
	t->owns = owns;
	t->e = calloc(t->cap, sizeof(*t->e));
	return t->e ? 0 : -ENOMEM;
}

static void ktab_fini(struct ktab *t)
{
	for (size_t i = 0; t->owns && t->e && i < t->cap; i++)
		free((char *)t->e[i].key);
	free(t->e);
	t->e = NULL;
}

/* The key's entry; with add, a new one (key as given) when absent. */
static struct kent *ktab_get(struct ktab *t, const char *key, bool add)
{
	size_t i = key_hash(key) & (t->cap - 1);

	for (; t->e[i].key; i = (i + 1) & (t->cap - 1))
		if (!strcmp(t->e[i].key, key))
			return &t->e[i];
	if (!add)
		return NULL;
	t->e[i].key = key;
	return &t->e[i];
}

/* Applies one record change of a message. Called with mu held. */
static int apply_one(struct zks *s, int op, const char *key, const char *val,
		     size_t len, uint64_t zxid, bool quiet)
{
	struct mem_rec *r = mem_map_find(&s->map, key);
	int64_t dv;
	char *v;
	int err;

	if (op == MSG_DEL) {
		if (!r)
			return 0;
		if (!quiet)
			mem_feed_push(&s->feed, zxid, key, r->val, NULL);
		err = mem_derive(&s->map, quiet ? NULL : &s->feed, zxid, key,
				 r->val, NULL);
		mem_map_del(&s->map, key);
		return err;
	}
	v = mem_dup(val, len);
	if (!v)
		return -ENOMEM;
	if (!quiet)
		mem_feed_push(&s->feed, zxid, key, r ? r->val : NULL, v);
	err = mem_derive(&s->map, quiet ? NULL : &s->feed, zxid, key,
			 r ? r->val : NULL, v);
	if (err) {
		free(v);
		return err;
	}
	dv = r ? r->aux + 1 : 0;
	r = mem_map_put(&s->map, key, v, len, zxid);
	if (!r) {
		free(v);
		return -ENOMEM;
	}
	r->aux = dv;
	return 0;
}

/* Reads the next record of a message; key gets it NUL terminated. */
static int msg_next(struct cursor *c, uint8_t *op, char *key, const char **v,
		    uint32_t *vlen)
{
	const char *k;
	uint32_t klen;
	int err;

	if (c->left < 1)
		return -EBADMSG;
	*op = *c->p++;
	c->left--;
	err = cur_bytes(c, &k, &klen);
	err = err ?: cur_bytes(c, v, vlen);
	if (err || !klen || klen >= STORE_KEY_MAX ||
	    (*op != MSG_PUT && *op != MSG_DEL))
		return -EBADMSG;
	memcpy(key, k, klen);
	key[klen] = '\0';
	return 0;
}

/* For a message the snapshot may already hold (quiet): the keys whose
 * record in the copy is at least as new as the message, so the copy has
 * the message's changes to them. Decided before any change is applied:
 * a message carries a whole batch of commits, which may write one key
 * more than once (create, then delete), and a record it created itself
 * must not hide its later changes. */
static int quiet_skips(struct zks *s, const struct zk_msg *msg,
		       struct ktab *skip)
{
	struct cursor c = {(const uint8_t *)msg->data, msg->len};
	char key[STORE_KEY_MAX];
	uint32_t count, vlen;
	const char *v;
	uint8_t op;
	int err = cur_u32(&c, &count);

	err = err ?: ktab_init(skip, count < c.left ? count : c.left, true);
	for (uint32_t i = 0; !err && i < count; i++) {
		struct mem_rec *r;
		char *k;

		err = msg_next(&c, &op, key, &v, &vlen);
		r = err ? NULL : mem_map_find(&s->map, key);
		if (!r || r->ver < (uint64_t)msg->zxid ||
		    ktab_get(skip, key, false))
			continue;
		k = strdup(key);
		if (!k)
			err = -ENOMEM;
		else
			ktab_get(skip, k, true);
	}
	return err;
}

static int apply_msg(struct zks *s, const struct zk_msg *msg)
{
	struct cursor c = {(const uint8_t *)msg->data, msg->len};
	bool quiet = msg->zxid <= s->base_zxid;
	struct ktab skip = {0};
	char key[STORE_KEY_MAX];
	uint32_t count, vlen;
	const char *v;
	uint8_t op;
	int err;

	err = quiet ? quiet_skips(s, msg, &skip) : 0;
	err = err ?: cur_u32(&c, &count);
	for (uint32_t i = 0; !err && i < count; i++) {
		err = msg_next(&c, &op, key, &v, &vlen);
		if (!err && !(quiet && ktab_get(&skip, key, false)))
			err = apply_one(s, op, key, v, vlen, msg->zxid, quiet);
	}
	ktab_fini(&skip);
	s->applied_seq = msg->seq;
	recent_add(s, msg->seq, msg->zxid);
	if (!quiet && (uint64_t)msg->zxid > s->rev)
		s->rev = msg->zxid;
	pthread_cond_broadcast(&s->cond);
	return err;
}

/* Applies the pending own commits that come next in sequence. Called
 * with mu held. */
static int apply_own(struct zks *s)
{
	bool more = true;
	int err = 0;

	while (more && !err) {
		more = false;
		for (struct own *o = s->own; o; o = o->next) {
			if (o->applied || o->gen != s->gen ||
			    o->msg.seq != s->applied_seq + 1)
				continue;
			err = apply_msg(s, &o->msg);
			o->applied = true;
			if (s->sub)
				zk_sub_advance(s->sub, o->msg.seq);
			more = true;
			break;
		}
	}
	return err;
}

static void on_msg(struct zk_sub *sub, int err, const struct zk_msg *msg,
		   void *arg)
{
	struct subctx *ctx = arg;
	struct zks *s = ctx->s;

	(void)sub;
	pthread_mutex_lock(&s->mu);
	if (ctx->gen != s->gen)
		goto out; /* an old subscription, or resynchronising */
	if (!err && msg->seq <= s->applied_seq)
		goto out; /* its writer applied it already */
	if (!err) {
		err = apply_msg(s, msg);
		err = err ?: apply_own(s);
		if (err) {
			/* Cannot happen with our own writers; a copy that
			 * missed a change must not go on as if it had not. */
			pr_err("store: bus message %lld not applied: %s; "
			       "resynchronising",
			       (long long)msg->seq, strerror(-err));
			err = -ENOENT;
		}
	}
	if (err) {
		if (err == -ENOENT)
			pr_warn("store: missed bus messages up to %lld; taking "
				"a fresh snapshot",
				(long long)msg->seq);
		s->gen++;
		if (err == -ESHUTDOWN)
			s->expired = true;
		else
			s->need_resync = true;
		pthread_cond_broadcast(&s->cond);
	}
out:
	pthread_mutex_unlock(&s->mu);
}

static void on_expired(struct zk *zk, void *arg)
{
	struct zks *s = arg;

	(void)zk;
	pthread_mutex_lock(&s->mu);
	pr_warn("store: ZooKeeper session expired; opening a new one");
	s->expired = true;
	s->gen++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

/* Loads a snapshot into a new map. */
static int load_snapshot(struct zks *s, const struct zk_snapshot *snap,
			 struct mem_map *m)
{
	char key[STORE_KEY_MAX];
	int err = mem_map_init(m);

	for (int i = 0; !err && i < snap->n; i++) {
		const struct zk_record *zr = &snap->recs[i];
		struct mem_rec *r;
		char *v;

		if (path_key(s, zr->path, key, sizeof(key)))
			continue; /* the root, a bucket, or not ours */
		v = mem_dup(zr->data, zr->len);
		if (v && mem_derive(m, NULL, zr->st.mzxid, key, NULL, v)) {
			free(v);
			v = NULL;
		}
		r = v ? mem_map_put(m, key, v, zr->len, zr->st.mzxid) : NULL;
		if (!r) {
			free(v);
			err = -ENOMEM;
			break;
		}
		r->aux = zr->st.version;
	}
	if (err)
		mem_map_fini(m);
	return err;
}

/* Replaces the copy by a fresh snapshot and subscribes after it. Called
 * with the session read-locked (or owned), not mu. */
static int resync(struct zks *s, struct zk *zk)
{
	struct zk_snapshot *snap = NULL;
	struct subctx *ctx = NULL, *old_ctx;
	struct zk_sub *old, *sub = NULL;
	struct mem_map m = {0};
	size_t count;
	int err;

	pthread_mutex_lock(&s->mu);
	s->gen++; /* drop whatever the old subscription still delivers */
	old = s->sub;
	old_ctx = s->subctx;
	s->sub = NULL;
	s->subctx = NULL;
	pthread_mutex_unlock(&s->mu);
	zk_bus_unsubscribe(old);
	free(old_ctx);

	for (int i = 0; i < SNAPSHOT_TRIES; i++) {
		zk_snapshot_free(snap);
		snap = NULL;
		err = zk_snapshot_take(zk, s->top, s->chan, &snap);
		if (err || snap->exact)
			break;
	}
	if (err)
		goto out;
	err = load_snapshot(s, snap, &m);
	if (err)
		goto out;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		err = -ENOMEM;
		goto out;
	}
	ctx->s = s;
	pthread_mutex_lock(&s->mu);
	mem_map_fini(&s->map);
	s->map = m;
	memset(&m, 0, sizeof(m));
	s->base_zxid = snap->zxid;
	if ((uint64_t)snap->zxid > s->rev)
		s->rev = snap->zxid;
	mem_feed_reset(&s->feed, s->rev);
	s->applied_seq = snap->seq;
	ctx->gen = ++s->gen;
	s->resyncs++;
	count = s->map.n;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	pr_info("store: %zu records from a%s snapshot at bus sequence %lld "
		"(zxid %#llx)",
		count, snap->exact ? "n exact" : " moving",
		(long long)snap->seq, (unsigned long long)snap->zxid);

	err = zk_bus_subscribe(zk, s->chan, snap->seq + 1, on_msg, ctx, &sub);
	if (err) {
		free(ctx);
		goto out;
	}
	pthread_mutex_lock(&s->mu);
	s->sub = sub;
	s->subctx = ctx;
	pthread_mutex_unlock(&s->mu);
out:
	if (err)
		pr_warn("store: cannot resynchronise from ZooKeeper: %s",
			strerror(-err));
	zk_snapshot_free(snap);
	return err;
}

static int make_dirs(struct zks *s, struct zk *zk)
{
	char p[ZK_PATH_MAX];
	char **names = NULL;
	bool have[BUCKETS] = {0};
	int n = 0, err;

	err = zk_mkdirs(zk, s->chan);
	err = err ?: zk_mkdirs(zk, s->stamp);
	err = err ?: zk_mkdirs(zk, s->top);
	err = err ?: zk_children(zk, s->top, &names, &n);
	if (err)
		return err;
	for (int i = 0; i < n; i++) {
		char *end;
		long b = strtol(names[i], &end, 16);

		if (strlen(names[i]) == 2 && !*end && b >= 0 && b < BUCKETS)
			have[b] = true;
	}
	zk_strings_free(names, n);
	for (int b = 0; b < BUCKETS && !err; b++) {
		if (have[b])
			continue;
		snprintf(p, sizeof(p), "%s/%02x", s->top, b);
		err = zk_mkdirs(zk, p);
	}
	return err;
}

/* ---- maintenance thread ----------------------------------------------- */

static void call_watch(struct zks *s, struct zk *zk)
{
	void (*fn)(struct zk *, void *);
	void *arg;

	pthread_mutex_lock(&s->mu);
	fn = s->watch;
	arg = s->watch_arg;
	pthread_mutex_unlock(&s->mu);
	if (fn)
		fn(zk, arg);
}

static int open_session(struct zks *s, struct zk **out)
{
	int err = zk_open(&s->cfg, out);

	if (err)
		return err;
	err = make_dirs(s, *out);
	if (err) {
		zk_close(*out);
		*out = NULL;
	}
	return err;
}

static void renew_session(struct zks *s)
{
	struct zk *zk = NULL;
	struct zk_sub *sub;
	struct subctx *ctx;
	int err;

	call_watch(s, NULL);
	pthread_rwlock_wrlock(&s->sess);
	pthread_mutex_lock(&s->mu);
	sub = s->sub;
	ctx = s->subctx;
	s->sub = NULL;
	s->subctx = NULL;
	pthread_mutex_unlock(&s->mu);
	zk_bus_unsubscribe(sub);
	free(ctx);
	zk_close(s->zk);
	s->zk = NULL;
	pthread_rwlock_unlock(&s->sess);

	for (;;) {
		pthread_mutex_lock(&s->mu);
		if (s->stop) {
			pthread_mutex_unlock(&s->mu);
			return;
		}
		s->expired = false;
		pthread_mutex_unlock(&s->mu);
		err = open_session(s, &zk);
		if (!err)
			err = resync(s, zk);
		if (!err)
			break;
		pr_warn("store: new ZooKeeper session failed: %s; retrying",
			strerror(-err));
		zk_close(zk);
		zk = NULL;
		sleep(1);
	}
	pthread_rwlock_wrlock(&s->sess);
	s->zk = zk;
	pthread_rwlock_unlock(&s->sess);
	pr_info("store: new ZooKeeper session %#llx in sync",
		(unsigned long long)zk_session_id(zk));
	call_watch(s, zk);
}

static void *maint_main(void *arg)
{
	struct zks *s = arg;

	xvpc_use_c_locale();

	for (;;) {
		bool expired, resync_now;

		pthread_mutex_lock(&s->mu);
		while (!s->stop && !s->expired && !s->need_resync)
			pthread_cond_wait(&s->cond, &s->mu);
		if (s->stop) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		expired = s->expired;
		resync_now = s->need_resync;
		s->need_resync = false;
		pthread_mutex_unlock(&s->mu);
		if (expired) {
			renew_session(s);
			continue;
		}
		if (resync_now) {
			pthread_rwlock_rdlock(&s->sess);
			if (s->zk && resync(s, s->zk)) {
				pthread_mutex_lock(&s->mu);
				s->need_resync = true;
				pthread_mutex_unlock(&s->mu);
				pthread_rwlock_unlock(&s->sess);
				sleep(1);
				continue;
			}
			pthread_rwlock_unlock(&s->sess);
		}
	}
	return NULL;
}

/* ---- store_ops -------------------------------------------------------- */

static int zks_get(struct store *st, const char *key, char **val,
		   uint64_t *version)
{
	struct zks *s = (struct zks *)st;
	struct mem_rec *r;
	int err = 0;

	pthread_mutex_lock(&s->mu);
	r = mem_map_find(&s->map, key);
	if (!r) {
		err = -ENOENT;
	} else {
		if (val) {
			*val = mem_dup(r->val, r->len);
			if (!*val)
				err = -ENOMEM;
		}
		if (!err && version)
			*version = r->ver;
	}
	pthread_mutex_unlock(&s->mu);
	return err;
}

static int zks_list(struct store *st, const char *prefix, const char *after,
		    size_t limit, store_rec_cb cb, void *arg)
{
	struct zks *s = (struct zks *)st;
	int ret;

	pthread_mutex_lock(&s->mu);
	ret = mem_map_list(&s->map, prefix, after, limit, cb, arg);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

static int check_op(const struct store_op *op)
{
	if (!op->key || !*op->key || strlen(op->key) >= STORE_KEY_MAX ||
	    op->type > STORE_CHECK || mem_derived_key(op->key) ||
	    (op->type == STORE_PUT &&
	     (op->len > STORE_VAL_MAX || (!op->val && op->len))))
		return -EINVAL;
	return 0;
}

/* Turns the store ops into ZooKeeper ops against the copy. -ECANCELED
 * (with *failed) when the copy already shows a failing check. zmap[i] is
 * the store op of ZooKeeper op i. Called with mu held. */
static int build_txn(struct zks *s, const struct store_op *ops, size_t n,
		     struct zk_txn *t, size_t *zmap, struct buf *msg,
		     size_t *failed, bool *changes)
{
	char path[ZK_PATH_MAX];
	uint32_t count = 0;
	int err = 0, idx;

	*changes = false;
	err = buf_u32(msg, 0);
	for (size_t i = 0; !err && i < n; i++) {
		const struct store_op *op = &ops[i];
		struct mem_rec *r = mem_map_find(&s->map, op->key);
		bool exp_ver =
			op->expect != STORE_ANY && op->expect != STORE_ABSENT;
		int dv = r ? (int)r->aux : -1;

		err = key_path(s, op->key, path, sizeof(path));
		if (err)
			return -EINVAL;
		if ((op->expect == STORE_ABSENT && r) ||
		    (exp_ver && (!r || r->ver != op->expect)) ||
		    (op->type == STORE_DEL &&
		     (!r || op->expect == STORE_ABSENT))) {
			if (failed)
				*failed = i;
			return -ECANCELED;
		}
		idx = 0;
		switch (op->type) {
		case STORE_CHECK:
			if (op->expect == STORE_ANY)
				continue;
			if (op->expect == STORE_ABSENT) {
				/* "Must not exist": create it and delete it
				 * again in the same transaction. */
				idx = zk_txn_create(t, path, "", 0);
				if (idx >= 0)
					zmap[idx] = i;
				idx = idx < 0 ? idx : zk_txn_delete(t, path, 0);
			} else {
				idx = zk_txn_check(t, path, dv);
			}
			break;
		case STORE_PUT:
			if (r)
				idx = zk_txn_put(t, path, op->val ?: "",
						 op->len, exp_ver ? dv : -1);
			else
				idx = zk_txn_create(t, path, op->val ?: "",
						    op->len);
			err = msg_add(msg, MSG_PUT, op->key, op->val, op->len);
			count++;
			break;
		case STORE_DEL:
			idx = zk_txn_delete(t, path, exp_ver ? dv : -1);
			err = msg_add(msg, MSG_DEL, op->key, NULL, 0);
			count++;
			break;
		}
		if (idx < 0)
			return idx == -EMSGSIZE ? -EMSGSIZE : -EINVAL;
		zmap[idx] = i;
	}
	if (err)
		return err;
	for (int b = 0; b < 4; b++)
		msg->p[b] = count >> (8 * b);
	*changes = count > 0;
	return 0;
}

static int map_commit_err(int err)
{
	switch (err) {
	case -ESTALE:
	case -EEXIST:
	case -ENOENT:
	case -ENOTEMPTY:
		return -ECANCELED;
	case -EAGAIN:
	case -ETIMEDOUT:
		return -ETIMEDOUT;
	case -ENOTCONN:
	case -ESHUTDOWN:
		return -ENOTCONN;
	default:
		return err;
	}
}

/* The copy cannot apply a message: drop it and take a fresh snapshot.
 * Called with mu held. */
static void copy_broken(struct zks *s, int64_t seq, int err)
{
	pr_err("store: bus message %lld not applied: %s; resynchronising",
	       (long long)seq, strerror(-err));
	s->gen++;
	s->need_resync = true;
	pthread_cond_broadcast(&s->cond);
}

/* Waits until the copy has applied message seq; its zxid, or 0. With own
 * (this writer's message, NULL if its zxid is unknown), applies it as soon
 * as it comes next. */
static uint64_t wait_applied(struct zks *s, int64_t seq, uint64_t gen,
			     struct own *own)
{
	struct timespec ts;
	uint64_t zxid = 0;
	int err;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += OWN_WAIT_MS / 1000;
	pthread_mutex_lock(&s->mu);
	if (own && s->gen == gen) {
		own->next = s->own;
		s->own = own;
		err = apply_own(s);
		if (err)
			copy_broken(s, seq, err);
	}
	while (s->applied_seq < seq && s->gen == gen && !s->stop)
		if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT)
			break;
	for (struct own **p = &s->own; own && *p; p = &(*p)->next)
		if (*p == own) {
			*p = own->next;
			break;
		}
	if (s->applied_seq >= seq) {
		zxid = s->recent[seq % RECENT].seq == seq
			       ? s->recent[seq % RECENT].zxid
			       : s->rev;
	} else if (s->gen == gen) {
		pr_warn("store: commit %lld not back from the bus after %d ms",
			(long long)seq, OWN_WAIT_MS);
	}
	pthread_mutex_unlock(&s->mu);
	return zxid;
}

/* After a multi whose message the copy has applied (gen: the copy's
 * generation when the multi was built): the stamp's version it left. */
static void stamp_learn(struct zks *s, uint64_t gen, int64_t ver)
{
	pthread_mutex_lock(&s->mu);
	if (gen == s->gen && ver >= 0 &&
	    (s->stamp_gen != gen || ver > s->stamp_ver)) {
		s->stamp_ver = ver;
		s->stamp_gen = gen;
	}
	pthread_mutex_unlock(&s->mu);
}

static void stamp_forget(struct zks *s)
{
	pthread_mutex_lock(&s->mu);
	s->stamp_ver = -1;
	pthread_mutex_unlock(&s->mu);
}

static int txn_once(struct zks *s, struct zk *zk, const struct store_op *ops,
		    size_t n, uint64_t *rev_out, size_t *failed, bool *any_op)
{
	struct zk_txn *t = zk_txn_new();
	struct buf msg = {0};
	size_t *zmap = calloc(2 * n + 2, sizeof(*zmap));
	int err, pub = -1, stamp = -1, f;
	struct own own = {0};
	uint64_t gen, zxid;
	int64_t z;
	bool changes;

	*any_op = false;
	if (!t || !zmap) {
		err = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&s->mu);
	gen = s->gen;
	err = build_txn(s, ops, n, t, zmap, &msg, failed, &changes);
	if (!err && !changes && !zk_txn_count(t) && rev_out)
		*rev_out = s->rev;
	pthread_mutex_unlock(&s->mu);
	if (err)
		goto out;
	if (changes) {
		pub = zk_txn_publish(t, s->chan, msg.p, msg.len);
		if (pub < 0) {
			err = pub == -EMSGSIZE ? -EMSGSIZE : -EINVAL;
			goto out;
		}
		stamp = zk_txn_put(t, s->stamp, "", 0, -1);
		if (stamp < 0) {
			err = stamp == -EMSGSIZE ? -EMSGSIZE : -EINVAL;
			goto out;
		}
	}
	if (!zk_txn_count(t))
		goto out;
	err = zk_txn_commit(zk, t);
	if (err) {
		f = zk_txn_failed_op(t);
		err = map_commit_err(err);
		stamp_forget(s);
		if (err == -ECANCELED && f >= 0 && f == stamp) {
			/* Removed by hand: make it again and retry. */
			zk_mkdirs(zk, s->stamp);
			*any_op = true;
		} else if (err == -ECANCELED && f >= 0 && f != pub) {
			if (failed)
				*failed = zmap[f];
			*any_op = ops[zmap[f]].expect == STORE_ANY;
		}
		goto out;
	}
	if (!changes) {
		if (rev_out)
			*rev_out = s->base.ops->revision(&s->base);
		goto out;
	}
	own.msg.seq = zk_txn_seq(t, pub);
	own.msg.data = msg.p;
	own.msg.len = msg.len;
	own.gen = gen;
	z = zk_txn_zxid(t, stamp);
	own.msg.zxid = z;
	zxid = wait_applied(s, own.msg.seq, gen, z > 0 ? &own : NULL);
	if (zxid)
		stamp_learn(s, gen, zk_txn_version(t, stamp));
	if (rev_out)
		*rev_out = zxid ? zxid : s->base.ops->revision(&s->base);
out:
	zk_txn_free(t);
	free(zmap);
	free(msg.p);
	return err;
}

static uint64_t zks_wait(struct store *st, uint64_t rev, int timeout_ms);

/* One transaction in a multi of its own. */
static int txn_direct(struct zks *s, const struct store_op *ops, size_t n,
		      uint64_t *rev_out, size_t *failed)
{
	bool any_op;
	int err;

	for (int tries = 0;; tries++) {
		pthread_rwlock_rdlock(&s->sess);
		err = s->zk ? txn_once(s, s->zk, ops, n, rev_out, failed,
				       &any_op)
			    : -ENOTCONN;
		pthread_rwlock_unlock(&s->sess);
		/* An unchecked op failed: the copy had not seen a change
		 * yet. Let it catch up and build the ops again. */
		if (err != -ECANCELED || !any_op || tries == ANY_RETRIES)
			return err;
		zks_wait(&s->base, zks_wait(&s->base, 0, 0), 20);
	}
}

/* ---- group commit -------------------------------------------------------
 *
 * Writers queue their transactions; the first to find no commit running
 * becomes the committer, takes up to BATCH_TXNS (BATCH_BYTES) of the queue
 * and commits them with one zoo_multi and one bus message, then hands over
 * to a writer still queued. Each transaction is checked against the copy
 * as the earlier transactions of the batch leave it (a table of the keys
 * they wrote): one that fails there gets -ECANCELED with its own failed
 * index and is left out, the others go on. A record written earlier in
 * the batch has no version yet, so a version check on it fails, as it
 * would have one commit later. The message holds the records of every
 * transaction in order, so members apply them as one commit: they share
 * its revision (the multi's zxid) and become visible together. When
 * ZooKeeper refuses the multi (the copy was stale: another member wrote
 * meanwhile), the batch's transactions are committed one by one, so only
 * the conflicting one fails; when it could not be sent or its fate is
 * unknown, each gets that error. */

/* Generous estimate of a transaction's bytes in a multi: each value twice
 * (record and bus message), each key as a path and in the message. */
static size_t txn_bytes(const struct zks *s, const struct store_op *ops,
			size_t n)
{
	size_t b = 256;

	for (size_t i = 0; i < n; i++)
		b += 64 + strlen(s->top) + 4 * strlen(ops[i].key) +
		     (ops[i].type == STORE_PUT ? 2 * ops[i].len : 0);
	return b;
}

/* State of a key before the next transaction of the batch: from the batch
 * when an earlier transaction wrote it (then it has no version yet: 0),
 * else from the copy. Called with mu held. */
static void key_state(struct zks *s, struct ktab *kt, const char *key,
		      bool *exists, uint64_t *ver, int64_t *dv)
{
	struct kent *e = ktab_get(kt, key, false);
	struct mem_rec *r;

	if (e && e->written) {
		*exists = e->exists;
		*ver = 0;
		*dv = e->dv;
		return;
	}
	r = mem_map_find(&s->map, key);
	*exists = r;
	*ver = r ? r->ver : 0;
	*dv = r ? r->aux : -1;
}

/* Checks a queued transaction against the copy and the batch so far:
 * -ECANCELED (with r->failed) or -EINVAL. Called with mu held. */
static int batch_check(struct zks *s, struct ktab *kt, struct req *r)
{
	char path[ZK_PATH_MAX];

	for (size_t i = 0; i < r->n; i++) {
		const struct store_op *op = &r->ops[i];
		bool exp_ver =
			op->expect != STORE_ANY && op->expect != STORE_ABSENT;
		bool exists;
		uint64_t ver;
		int64_t dv;

		if (key_path(s, op->key, path, sizeof(path)))
			return -EINVAL;
		key_state(s, kt, op->key, &exists, &ver, &dv);
		if ((op->expect == STORE_ABSENT && exists) ||
		    (exp_ver && (!exists || ver != op->expect)) ||
		    (op->type == STORE_DEL &&
		     (!exists || op->expect == STORE_ABSENT))) {
			r->failed = i;
			return -ECANCELED;
		}
	}
	return 0;
}

/* Adds a checked transaction's ZooKeeper ops and records to the batch
 * and notes what it writes in kt. Called with mu held. */
static int batch_emit(struct zks *s, struct ktab *kt, const struct req *r,
		      bool elide, struct zk_txn *t, struct buf *msg,
		      uint32_t *count)
{
	char path[ZK_PATH_MAX];
	int err = 0;

	for (size_t i = 0; !err && i < r->n; i++) {
		const struct store_op *op = &r->ops[i];
		bool exp_ver =
			op->expect != STORE_ANY && op->expect != STORE_ABSENT;
		struct kent *e = NULL;
		bool exists;
		uint64_t ver;
		int64_t dv;
		int idx = 0;

		key_path(s, op->key, path, sizeof(path));
		key_state(s, kt, op->key, &exists, &ver, &dv);
		switch (op->type) {
		case STORE_CHECK:
			/* Checked against the copy by batch_check(); with
			 * the stamp's version check, that is exact. */
			if (op->expect == STORE_ANY || elide)
				continue;
			if (op->expect == STORE_ABSENT) {
				idx = zk_txn_create(t, path, "", 0);
				idx = idx < 0 ? idx : zk_txn_delete(t, path, 0);
				break;
			}
			/* Many commits check the same record (a subnet):
			 * once is enough, it is not written in between. */
			e = ktab_get(kt, op->key, true);
			if (!e->checked)
				idx = zk_txn_check(t, path, dv);
			e->checked = true;
			e = NULL;
			break;
		case STORE_PUT:
			if (exists)
				idx = zk_txn_put(t, path, op->val ?: "",
						 op->len, exp_ver ? dv : -1);
			else
				idx = zk_txn_create(t, path, op->val ?: "",
						    op->len);
			err = msg_add(msg, MSG_PUT, op->key, op->val, op->len);
			e = ktab_get(kt, op->key, true);
			e->written = true;
			e->exists = true;
			e->dv = exists ? dv + 1 : 0;
			break;
		case STORE_DEL:
			idx = zk_txn_delete(t, path, exp_ver ? dv : -1);
			err = msg_add(msg, MSG_DEL, op->key, NULL, 0);
			e = ktab_get(kt, op->key, true);
			e->written = true;
			e->exists = false;
			e->dv = -1;
			break;
		}
		if (e)
			(*count)++;
		if (idx < 0)
			return idx == -EMSGSIZE ? -EMSGSIZE : -EINVAL;
	}
	return err;
}

/* Builds the batch's multi from the copy; *gen gets the copy's generation.
 * Transactions that fail their checks are answered (not active). */
static int batch_build(struct zks *s, struct req *list, struct zk_txn *t,
		       struct buf *msg, uint32_t *count, uint64_t *gen,
		       int64_t *stamp_ver)
{
	struct ktab kt = {0};
	size_t keys = 0;
	int err;

	for (struct req *r = list; r; r = r->next) {
		keys += r->n;
		r->active = true; /* until its checks fail */
	}
	err = ktab_init(&kt, keys, false);
	err = err ?: buf_u32(msg, 0);
	if (err)
		return err;
	pthread_mutex_lock(&s->mu);
	*gen = s->gen;
	if (*stamp_ver >= 0)
		*stamp_ver = s->stamp_gen == s->gen && !s->elide_pause
				     ? s->stamp_ver
				     : -1;
	if (s->elide_pause)
		s->elide_pause--;
	for (struct req *r = list; r && !err; r = r->next) {
		r->err = batch_check(s, &kt, r);
		if (r->err) {
			r->active = false;
			continue;
		}
		err = batch_emit(s, &kt, r, *stamp_ver >= 0, t, msg, count);
	}
	pthread_mutex_unlock(&s->mu);
	ktab_fini(&kt);
	for (int b = 0; b < 4 && !err; b++)
		msg->p[b] = *count >> (8 * b);
	return err;
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sends a batch's multi, counting its round trip (logged at close). */
static int timed_commit(struct zks *s, struct zk *zk, struct zk_txn *t)
{
	uint64_t t0 = mono_us();
	int err = map_commit_err(zk_txn_commit(zk, t));

	pthread_mutex_lock(&s->gmu);
	s->multis++;
	s->multi_us += mono_us() - t0;
	pthread_mutex_unlock(&s->gmu);
	return err;
}

/* Commits the active transactions of a batch as one multi; on success
 * each has its revision. elide: leave the checks out when the stamp's
 * version is known (-EAGAIN when it had moved: build it again without). */
static int batch_once(struct zks *s, struct zk *zk, struct req *list,
		      bool elide)
{
	struct zk_txn *t = zk_txn_new();
	struct buf msg = {0};
	struct own own = {0};
	uint32_t count = 0;
	uint64_t gen, rev = 0;
	int pub = 0, stamp = 0, err;
	int64_t z, sv = elide ? 0 : -1;

	err = t ? batch_build(s, list, t, &msg, &count, &gen, &sv) : -ENOMEM;
	if (!err && count) {
		pub = zk_txn_publish(t, s->chan, msg.p, msg.len);
		stamp = pub < 0 ? pub
				: zk_txn_put(t, s->stamp, "", 0,
					     sv >= 0 ? (int)sv : -1);
		if (stamp < 0)
			err = stamp == -EMSGSIZE ? -EMSGSIZE : -EINVAL;
	}
	if (!err && zk_txn_count(t))
		err = timed_commit(s, zk, t);
	if (err) {
		int f = zk_txn_failed_op(t);

		stamp_forget(s);
		if (err == -ECANCELED && sv >= 0 && count && f == stamp) {
			err = -EAGAIN; /* someone committed since */
			pthread_mutex_lock(&s->mu);
			s->elide_pause = ELIDE_PAUSE;
			pthread_mutex_unlock(&s->mu);
		}
		goto out;
	}
	if (sv >= 0 && count) {
		pthread_mutex_lock(&s->mu);
		s->elided++;
		pthread_mutex_unlock(&s->mu);
	}
	if (count) {
		own.msg.seq = zk_txn_seq(t, pub);
		own.msg.data = msg.p;
		own.msg.len = msg.len;
		own.gen = gen;
		z = zk_txn_zxid(t, stamp);
		own.msg.zxid = z;
		rev = wait_applied(s, own.msg.seq, gen, z > 0 ? &own : NULL);
		if (rev)
			stamp_learn(s, gen, zk_txn_version(t, stamp));
	}
	if (!rev)
		rev = s->base.ops->revision(&s->base);
	for (struct req *r = list; r; r = r->next)
		if (r->active)
			r->rev = rev;
out:
	zk_txn_free(t);
	free(msg.p);
	return err;
}

/* Commits a batch and answers each transaction (but for done). */
static void batch_commit(struct zks *s, struct req *list)
{
	size_t n = 0; /* committed by the multi */
	int err;

	if (!list->next) {
		list->err = txn_direct(s, list->ops, list->n, &list->rev,
				       &list->failed);
		return;
	}
	pthread_rwlock_rdlock(&s->sess);
	err = s->zk ? batch_once(s, s->zk, list, true) : -ENOTCONN;
	if (err == -EAGAIN) /* another member wrote: with the checks */
		err = batch_once(s, s->zk, list, false);
	pthread_rwlock_unlock(&s->sess);
	for (struct req *r = list; r; r = r->next) {
		if (!r->active)
			continue;
		if (!err)
			n++;
		if (err == -ENOTCONN || err == -ETIMEDOUT || err == -ENOMEM)
			r->err = err;
		else if (err)
			r->err = txn_direct(s, r->ops, r->n, &r->rev,
					    &r->failed);
		else
			r->err = 0;
	}
	if (n < 2)
		return;
	pthread_mutex_lock(&s->gmu);
	s->batches++;
	s->batched += n;
	pthread_mutex_unlock(&s->gmu);
}

/* Takes the next batch off the queue. Called with gmu held. */
static struct req *batch_take(struct zks *s)
{
	struct req *list = s->qhead, **end = &s->qhead;
	size_t n = 0, bytes = 0;

	while (*end && n < BATCH_TXNS &&
	       (!n || bytes + (*end)->bytes <= BATCH_BYTES)) {
		bytes += (*end)->bytes;
		n++;
		end = &(*end)->next;
	}
	s->qhead = *end;
	if (!s->qhead)
		s->qtail = &s->qhead;
	*end = NULL;
	return list;
}

static int zks_txn(struct store *st, const struct store_op *ops, size_t n,
		   uint64_t *rev_out, size_t *failed)
{
	struct zks *s = (struct zks *)st;
	struct req r = {.ops = ops, .n = n, .failed = SIZE_MAX};

	for (size_t i = 0; i < n; i++)
		if (check_op(&ops[i]))
			return -EINVAL;
	r.bytes = txn_bytes(s, ops, n);
	if (r.bytes > BATCH_BYTES || s->single)
		return txn_direct(s, ops, n, rev_out, failed);
	pthread_mutex_lock(&s->gmu);
	*s->qtail = &r;
	s->qtail = &r.next;
	while (!r.done) {
		struct req *list, *next;

		if (s->committing || s->paused) {
			pthread_cond_wait(&s->gcond, &s->gmu);
			continue;
		}
		s->committing = true;
		list = batch_take(s);
		pthread_mutex_unlock(&s->gmu);
		batch_commit(s, list);
		pthread_mutex_lock(&s->gmu);
		for (; list; list = next) {
			next = list->next;
			list->done = true; /* its writer may return now */
		}
		s->committing = false;
		pthread_cond_broadcast(&s->gcond);
	}
	pthread_mutex_unlock(&s->gmu);
	if (!r.err && rev_out)
		*rev_out = r.rev;
	if (r.err == -ECANCELED && failed && r.failed != SIZE_MAX)
		*failed = r.failed;
	return r.err;
}

static uint64_t zks_revision(struct store *st)
{
	struct zks *s = (struct zks *)st;
	uint64_t rev;

	pthread_mutex_lock(&s->mu);
	rev = s->rev;
	pthread_mutex_unlock(&s->mu);
	return rev;
}

static int zks_changes(struct store *st, uint64_t since,
		       struct store_scope *scope, store_change_cb cb, void *arg,
		       uint64_t *upto)
{
	struct zks *s = (struct zks *)st;
	int ret;

	pthread_mutex_lock(&s->mu);
	ret = mem_feed_walk_scoped(&s->feed, since, s->rev, scope, cb, arg,
				   upto);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

static uint64_t zks_wait(struct store *st, uint64_t rev, int timeout_ms)
{
	struct zks *s = (struct zks *)st;
	struct timespec ts;
	uint64_t cur, wakes;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->mu);
	wakes = s->wakes;
	while (s->rev <= rev && timeout_ms > 0 && !s->stop && s->wakes == wakes)
		if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT)
			break;
	cur = s->rev;
	pthread_mutex_unlock(&s->mu);
	return cur;
}

static void zks_wake_all(struct store *st)
{
	struct zks *s = (struct zks *)st;

	pthread_mutex_lock(&s->mu);
	s->wakes++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

static void zks_free(struct zks *s)
{
	if (s->thread_started) {
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thread, NULL);
	}
	zk_bus_unsubscribe(s->sub);
	free(s->subctx);
	zk_close(s->zk);
	mem_map_fini(&s->map);
	mem_feed_fini(&s->feed);
	pthread_rwlock_destroy(&s->sess);
	pthread_cond_destroy(&s->gcond);
	pthread_mutex_destroy(&s->gmu);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
	free(s->hosts);
	free(s);
}

static void zks_close(struct store *st)
{
	struct zks *s = (struct zks *)st;

	if (s->multis)
		pr_info("store: %llu batched multis, %.1f commits each, "
			"%.1f ms round trip on average",
			(unsigned long long)s->multis,
			s->batches ? (double)s->batched / s->batches : 1.0,
			s->multi_us / 1000.0 / s->multis);
	zks_free(s);
}

static const struct store_ops zks_ops = {
	.get = zks_get,
	.list = zks_list,
	.txn = zks_txn,
	.revision = zks_revision,
	.changes = zks_changes,
	.wait = zks_wait,
	.wake_all = zks_wake_all,
	.close = zks_close,
};

/* Waits until the copy holds every message published before the call. */
static int catch_up(struct zks *s)
{
	struct timespec ts;
	int64_t last;
	int err = zk_bus_last(s->zk, s->chan, &last);

	if (err)
		return err;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += CATCHUP_MS / 1000;
	pthread_mutex_lock(&s->mu);
	while (s->applied_seq < last && !s->need_resync && !s->expired)
		if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT)
			break;
	err = s->applied_seq >= last ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&s->mu);
	return err;
}

int store_zk_open(const struct store_zk_opts *opts, struct store **out)
{
	pthread_condattr_t ca;
	struct zks *s;
	int err;

	*out = NULL;
	if (!opts || !opts->hosts || !*opts->hosts)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base.ops = &zks_ops;
	snprintf(s->root, sizeof(s->root), "%s",
		 opts->root ? opts->root : "/xvpc");
	snprintf(s->top, sizeof(s->top), "%s/store", s->root);
	snprintf(s->chan, sizeof(s->chan), "%s/bus/store", s->root);
	snprintf(s->stamp, sizeof(s->stamp), "%s/bus/store-stamp", s->root);
	s->hosts = strdup(opts->hosts);
	s->cfg.hosts = s->hosts;
	s->cfg.session_timeout_ms = opts->session_timeout_ms;
	s->cfg.reconnect_wait_ms = opts->reconnect_wait_ms;
	s->cfg.on_expired = on_expired;
	s->cfg.arg = s;
	s->applied_seq = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_rwlock_init(&s->sess, NULL);
	pthread_mutex_init(&s->gmu, NULL);
	pthread_cond_init(&s->gcond, NULL);
	s->qtail = &s->qhead;
	s->single = opts->single_commits;
	s->stamp_ver = -1;
	err = mem_map_init(&s->map);
	err = err
		      ?: mem_feed_init(&s->feed,
				       opts->feed_changes ? opts->feed_changes
							  : 65536,
				       0);
	if (!err && !s->hosts)
		err = -ENOMEM;
	if (err)
		goto err;
	err = open_session(s, &s->zk);
	if (err) {
		pr_err("store: cannot reach ZooKeeper at %s: %s", opts->hosts,
		       strerror(-err));
		goto err;
	}
	err = resync(s, s->zk);
	err = err ?: catch_up(s);
	if (err) {
		pr_err("store: cannot load the state from ZooKeeper: %s",
		       strerror(-err));
		goto err;
	}
	err = pthread_create(&s->thread, NULL, maint_main, s);
	if (err) {
		err = -err;
		goto err;
	}
	s->thread_started = true;
	*out = &s->base;
	return 0;
err:
	zks_free(s);
	return err;
}

void store_zk_watch_session(struct store *st,
			    void (*fn)(struct zk *zk, void *arg), void *arg)
{
	struct zks *s = (struct zks *)st;

	pthread_mutex_lock(&s->mu);
	s->watch = fn;
	s->watch_arg = arg;
	pthread_mutex_unlock(&s->mu);
	pthread_rwlock_rdlock(&s->sess);
	if (s->zk && fn)
		fn(s->zk, arg);
	pthread_rwlock_unlock(&s->sess);
}

int store_zk_gc(struct store *st, int keep, int *deleted)
{
	struct zks *s = (struct zks *)st;
	int64_t below;
	int err = 0;

	if (deleted)
		*deleted = 0;
	pthread_mutex_lock(&s->mu);
	below = s->applied_seq - (keep > 0 ? keep : 0);
	pthread_mutex_unlock(&s->mu);
	if (below <= 0)
		return 0;
	pthread_rwlock_rdlock(&s->sess);
	err = s->zk ? zk_bus_gc(s->zk, s->chan, below, deleted) : -ENOTCONN;
	pthread_rwlock_unlock(&s->sess);
	return map_commit_err(err);
}

bool store_zk_connected(struct store *st)
{
	struct zks *s = (struct zks *)st;
	bool ok;

	pthread_rwlock_rdlock(&s->sess);
	ok = s->zk && zk_connected(s->zk);
	pthread_rwlock_unlock(&s->sess);
	return ok;
}

uint64_t store_zk_resyncs(struct store *st)
{
	struct zks *s = (struct zks *)st;
	uint64_t n;

	pthread_mutex_lock(&s->mu);
	n = s->resyncs;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void store_zk_batch_stats(struct store *st, uint64_t *batches, uint64_t *txns)
{
	struct zks *s = (struct zks *)st;

	pthread_mutex_lock(&s->gmu);
	*batches = s->batches;
	*txns = s->batched;
	pthread_mutex_unlock(&s->gmu);
}

uint64_t store_zk_elided(struct store *st)
{
	struct zks *s = (struct zks *)st;
	uint64_t n;

	pthread_mutex_lock(&s->mu);
	n = s->elided;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void store_zk_pause(struct store *st, bool pause)
{
	struct zks *s = (struct zks *)st;

	pthread_mutex_lock(&s->gmu);
	s->paused = pause;
	pthread_cond_broadcast(&s->gcond);
	pthread_mutex_unlock(&s->gmu);
}

size_t store_zk_queued(struct store *st)
{
	struct zks *s = (struct zks *)st;
	size_t n = 0;

	pthread_mutex_lock(&s->gmu);
	for (struct req *r = s->qhead; r; r = r->next)
		n++;
	pthread_mutex_unlock(&s->gmu);
	return n;
}
