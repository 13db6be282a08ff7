// SPDX-License-Identifier: GPL-2.0-only
/* Embedded store: a sorted in-memory array of records, made durable by an
 * append-only log (dir/store.log) that is fsync'ed before any commit is
 * applied or acknowledged.
 *
 * Group commit: a writer checks its ops, takes the next revision and
 * appends its record to the log under the mutex, then waits without it.
 * The first waiter finds no fsync running and runs one (the leader); it
 * covers every record appended before it started, so one fdatasync makes
 * a whole group durable. The leader then applies the group to memory in
 * revision order and wakes the group; a waiter whose record is not yet
 * covered becomes the next leader. Memory (what readers, the feed and the
 * revision show) thus only ever holds durable commits, in order. A writer
 * whose ops touch a key that a pending (appended, not yet applied) commit
 * writes waits for that commit first, so every check sees the state the
 * commit will be applied to. If an fsync fails the log is cut back to the
 * last durable offset and every pending commit fails with -EIO.
 *
 * Log file: the magic "XVPCLOG1", then records
 *   u32 payload length | u32 crc32c(payload) | payload
 * payload: u8 kind | u64 revision | u32 count | count entries
 *   kind TXN:  u8 op (PUT/DEL) | u32 klen | key | u32 vlen | value
 *   kind SNAP: u64 version | u32 klen | key | u32 vlen | value
 * Integers are little endian. A SNAP record replaces the whole state (it
 * is the first record after a compaction). On open the log is replayed; a
 * torn last record (short, or bad checksum at the very end) is cut off, a
 * bad record followed by more data is corruption and refuses the open. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "store_mem.h"

#define LOG_MAGIC     "XVPCLOG1"
#define LOG_MAGIC_LEN 8
#define REC_HDR	      8
#define KIND_TXN      1
#define KIND_SNAP     2
#define OP_PUT	      1
#define OP_DEL	      2

/* A commit appended to the log, waiting for its fsync. Lives on the
 * stack of its writer, which stays in emb_txn until done is set. */
struct pend {
	struct pend *next;
	const struct store_op *ops;
	size_t n;
	char **vals; /* the PUT values; taken by the apply */
	uint64_t rev;
	size_t end; /* log offset after the record */
	int err;
	bool done;
};

struct emb {
	struct store base;
	pthread_mutex_t mu;
	pthread_cond_t cond;   /* the revision moved (store_wait) */
	pthread_cond_t commit; /* a group became durable (writers) */
	struct mem_map map;
	uint64_t rev;		  /* of the last applied commit */
	uint64_t next_rev;	  /* of the last appended commit */
	struct pend *head, *tail; /* appended, not applied, in order */
	size_t synced;		  /* log bytes known durable */
	bool syncing;		  /* a leader runs fdatasync */
	uint64_t wakes;		  /* store_wake_all() calls */
	int fd;
	char *path;
	char *dir;
	size_t log_size;
	size_t compact_bytes;
	struct mem_feed feed;
};

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	while (cap < b->len + more)
		cap *= 2;
	if (cap == b->cap)
		return 0;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int buf_put(struct buf *b, const void *d, size_t len)
{
	int err = buf_reserve(b, len);

	if (err)
		return err;
	memcpy(b->p + b->len, d, len);
	b->len += len;
	return 0;
}

static int buf_u8(struct buf *b, uint8_t v)
{
	return buf_put(b, &v, 1);
}

static int buf_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = {v, v >> 8, v >> 16, v >> 24};

	return buf_put(b, x, 4);
}

static int buf_u64(struct buf *b, uint64_t v)
{
	int err = buf_u32(b, (uint32_t)v);

	return err ? err : buf_u32(b, (uint32_t)(v >> 32));
}

static int buf_str(struct buf *b, const char *s, size_t len)
{
	int err = buf_u32(b, len);

	return err ? err : buf_put(b, s, len);
}

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78 : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32c(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t c = ~0u;

	pthread_once(&crc_once, crc_init);
	while (len--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

static int write_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t n = write(fd, c, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += n;
		len -= n;
	}
	return 0;
}

/* Frames a payload as a log record and appends it (not yet durable). On
 * failure the file is cut back to its previous size. Called with mu. */
static int log_write(struct emb *e, const struct buf *payload)
{
	uint8_t hdr[REC_HDR];
	uint32_t len = payload->len, crc = crc32c(payload->p, payload->len);
	int err;

	for (int i = 0; i < 4; i++) {
		hdr[i] = len >> (8 * i);
		hdr[4 + i] = crc >> (8 * i);
	}
	err = write_all(e->fd, hdr, sizeof(hdr));
	if (!err)
		err = write_all(e->fd, payload->p, payload->len);
	if (err) {
		pr_err("store: cannot append to %s: %s", e->path,
		       strerror(-err));
		if (ftruncate(e->fd, e->log_size))
			pr_err("store: cannot cut %s back: %s", e->path,
			       strerror(errno));
		return -EIO;
	}
	e->log_size += REC_HDR + payload->len;
	return 0;
}

static int snap_payload(struct emb *e, struct buf *b)
{
	int err = buf_u8(b, KIND_SNAP);

	err = err ?: buf_u64(b, e->rev);
	err = err ?: buf_u32(b, e->map.n);
	for (struct mem_rec *r = mem_map_first(&e->map); !err && r;
	     r = r->next[0]) {
		err = buf_u64(b, r->ver);
		err = err ?: buf_str(b, r->key, strlen(r->key));
		err = err ?: buf_str(b, r->val, r->len);
	}
	return err;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

/* Writes the live state as one SNAP record into a new file and renames it
 * over the log. Called with the lock held. */
static int compact_locked(struct emb *e)
{
	char tmp[PATH_MAX];
	struct buf b = {0};
	uint8_t hdr[REC_HDR];
	uint32_t len, crc;
	int fd = -1, err;

	snprintf(tmp, sizeof(tmp), "%s.tmp", e->path);
	err = snap_payload(e, &b);
	if (err)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	len = b.len;
	crc = crc32c(b.p, b.len);
	for (int i = 0; i < 4; i++) {
		hdr[i] = len >> (8 * i);
		hdr[4 + i] = crc >> (8 * i);
	}
	err = write_all(fd, LOG_MAGIC, LOG_MAGIC_LEN);
	err = err ?: write_all(fd, hdr, sizeof(hdr));
	err = err ?: write_all(fd, b.p, b.len);
	if (!err && fsync(fd))
		err = -errno;
	if (!err && flock(fd, LOCK_EX | LOCK_NB))
		err = -errno;
	if (!err && rename(tmp, e->path))
		err = -errno;
	if (err) {
		unlink(tmp);
		goto out;
	}
	err = fsync_dir(e->dir);
	if (err)
		pr_warn("store: cannot sync directory %s: %s", e->dir,
			strerror(-err));
	close(e->fd);
	e->fd = fd;
	fd = -1;
	if (lseek(e->fd, 0, SEEK_END) < 0)
		pr_warn("store: cannot seek %s: %s", e->path, strerror(errno));
	e->log_size = LOG_MAGIC_LEN + REC_HDR + b.len;
	e->synced = e->log_size;
	pr_debug("store: compacted %s to %zu bytes at revision %llu", e->path,
		 e->log_size, (unsigned long long)e->rev);
	err = 0;
out:
	if (fd >= 0)
		close(fd);
	if (err)
		pr_warn("store: compaction of %s failed: %s", e->path,
			strerror(-err));
	free(b.p);
	return err;
}

static int emb_get(struct store *s, const char *key, char **val,
		   uint64_t *version)
{
	struct emb *e = (struct emb *)s;
	struct mem_rec *r;
	int err = 0;

	pthread_mutex_lock(&e->mu);
	r = mem_map_find(&e->map, key);
	if (!r) {
		err = -ENOENT;
		goto out;
	}
	if (val) {
		*val = mem_dup(r->val, r->len);
		if (!*val) {
			err = -ENOMEM;
			goto out;
		}
	}
	if (version)
		*version = r->ver;
out:
	pthread_mutex_unlock(&e->mu);
	return err;
}

static int emb_list(struct store *s, const char *prefix, const char *after,
		    size_t limit, store_rec_cb cb, void *arg)
{
	struct emb *e = (struct emb *)s;
	int ret;

	pthread_mutex_lock(&e->mu);
	ret = mem_map_list(&e->map, prefix, after, limit, cb, arg);
	pthread_mutex_unlock(&e->mu);
	return ret;
}

static int check_ops(struct emb *e, const struct store_op *ops, size_t n,
		     size_t *failed)
{
	for (size_t i = 0; i < n; i++) {
		const struct store_op *op = &ops[i];
		struct mem_rec *r;

		if (!op->key || !*op->key || strlen(op->key) >= STORE_KEY_MAX ||
		    (op->type == STORE_PUT &&
		     (op->len > STORE_VAL_MAX || (!op->val && op->len))) ||
		    op->type > STORE_CHECK)
			return -EINVAL;
		r = mem_map_find(&e->map, op->key);
		if ((op->expect == STORE_ABSENT && r) ||
		    (op->expect != STORE_ABSENT && op->expect != STORE_ANY &&
		     (!r || r->ver != op->expect)) ||
		    (op->type == STORE_DEL && !r)) {
			if (failed)
				*failed = i;
			return -ECANCELED;
		}
	}
	return 0;
}

/* Whether an op touches a key that a pending commit writes: its checks
 * must then wait for that commit to be applied. Called with mu. */
static bool touches_pending(struct emb *e, const struct store_op *ops, size_t n)
{
	for (struct pend *p = e->head; p; p = p->next)
		for (size_t j = 0; j < p->n; j++) {
			if (p->ops[j].type == STORE_CHECK)
				continue;
			for (size_t i = 0; i < n; i++)
				if (ops[i].key &&
				    !strcmp(ops[i].key, p->ops[j].key))
					return true;
		}
	return false;
}

static bool compact_due(const struct emb *e)
{
	return e->log_size > e->compact_bytes &&
	       e->log_size > 2 * e->map.live_bytes;
}

/* Applies a durable commit to memory. mem_put can only fail on
 * allocation; the log then still holds the commit, so say so and keep
 * the process honest. Called with mu, in revision order. */
static void apply_pend(struct emb *e, struct pend *p)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct store_op *op = &p->ops[i];
		struct mem_rec *r = mem_map_find(&e->map, op->key);
		char *old = r ? r->val : NULL;

		if (op->type == STORE_CHECK)
			continue;
		mem_feed_push(&e->feed, p->rev, op->key, old, p->vals[i]);
		if (mem_derive(&e->map, &e->feed, p->rev, op->key, old,
			       p->vals[i]))
			pr_err("store: out of memory deriving the indexes of "
			       "%s at revision %llu; restart to rebuild them",
			       op->key, (unsigned long long)p->rev);
		if (op->type == STORE_DEL) {
			mem_map_del(&e->map, op->key);
		} else if (!mem_map_put(&e->map, op->key, p->vals[i], op->len,
					p->rev)) {
			pr_err("store: out of memory applying revision %llu; "
			       "restart to recover it from the log",
			       (unsigned long long)p->rev);
			free(p->vals[i]);
		}
		p->vals[i] = NULL;
	}
	e->rev = p->rev;
}

/* The leader's turn: makes every record appended so far durable with one
 * fdatasync (without the mutex, so others keep appending), then applies
 * the commits it covered, in order. On failure the log is cut back to the
 * last durable offset and every pending commit fails (their records, and
 * any appended during the fsync, are gone). Called with mu held. */
static void group_sync(struct emb *e)
{
	size_t target = e->log_size;
	struct pend *p;
	int err = 0;

	e->syncing = true;
	pthread_mutex_unlock(&e->mu);
	if (fdatasync(e->fd))
		err = -errno;
	pthread_mutex_lock(&e->mu);
	e->syncing = false;
	if (err) {
		pr_err("store: cannot sync %s: %s", e->path, strerror(-err));
		if (ftruncate(e->fd, e->synced))
			pr_err("store: cannot cut %s back: %s", e->path,
			       strerror(errno));
		e->log_size = e->synced;
		e->next_rev = e->rev;
		for (p = e->head; p; p = p->next) {
			p->err = -EIO;
			p->done = true;
		}
		e->head = e->tail = NULL;
		pthread_cond_broadcast(&e->commit);
		return;
	}
	e->synced = target;
	while ((p = e->head) && p->end <= target) {
		apply_pend(e, p);
		p->done = true;
		e->head = p->next;
	}
	if (!e->head)
		e->tail = NULL;
	pthread_cond_broadcast(&e->commit);
	pthread_cond_broadcast(&e->cond);
}

/* Encodes the TXN record and copies the PUT values into vals. */
static int txn_payload(const struct store_op *ops, size_t n, uint64_t rev,
		       struct buf *b, char **vals)
{
	int err = buf_u8(b, KIND_TXN);

	err = err ?: buf_u64(b, rev);
	err = err ?: buf_u32(b, n);
	for (size_t i = 0; !err && i < n; i++) {
		const struct store_op *op = &ops[i];

		if (op->type == STORE_CHECK) {
			err = buf_u8(b, 0);
			err = err ?: buf_str(b, op->key, strlen(op->key));
			err = err ?: buf_u32(b, 0);
			continue;
		}
		err = buf_u8(b, op->type == STORE_PUT ? OP_PUT : OP_DEL);
		err = err ?: buf_str(b, op->key, strlen(op->key));
		if (op->type == STORE_PUT) {
			err = err ?: buf_str(b, op->val, op->len);
			vals[i] = err ? NULL : mem_dup(op->val, op->len);
			if (!err && !vals[i])
				err = -ENOMEM;
		} else {
			err = err ?: buf_u32(b, 0);
		}
	}
	return err;
}

static int emb_txn(struct store *s, const struct store_op *ops, size_t n,
		   uint64_t *rev_out, size_t *failed)
{
	struct emb *e = (struct emb *)s;
	struct pend p = {.ops = ops, .n = n};
	struct buf b = {0};
	int err;

	for (size_t i = 0; i < n; i++)
		if (ops[i].key && mem_derived_key(ops[i].key))
			return -EINVAL; /* kept by the copy (store_mem.h) */
	p.vals = calloc(n ? n : 1, sizeof(*p.vals));
	if (!p.vals)
		return -ENOMEM;
	pthread_mutex_lock(&e->mu);
	/* A compaction writes memory alone: let the pending commits in
	 * first (and hold new ones back meanwhile). */
	while (touches_pending(e, ops, n) || (compact_due(e) && e->head))
		pthread_cond_wait(&e->commit, &e->mu);
	if (compact_due(e))
		compact_locked(e);
	err = check_ops(e, ops, n, failed);
	if (err)
		goto out;
	p.rev = e->next_rev + 1;
	err = txn_payload(ops, n, p.rev, &b, p.vals);
	err = err ?: log_write(e, &b);
	if (err)
		goto out;
	e->next_rev = p.rev;
	p.end = e->log_size;
	if (e->tail)
		e->tail->next = &p;
	else
		e->head = &p;
	e->tail = &p;
	while (!p.done) {
		if (!e->syncing)
			group_sync(e);
		else
			pthread_cond_wait(&e->commit, &e->mu);
	}
	err = p.err;
	if (!err && rev_out)
		*rev_out = p.rev;
out:
	pthread_mutex_unlock(&e->mu);
	for (size_t i = 0; i < n; i++)
		free(p.vals[i]);
	free(p.vals);
	free(b.p);
	return err;
}

static uint64_t emb_revision(struct store *s)
{
	struct emb *e = (struct emb *)s;
	uint64_t rev;

	pthread_mutex_lock(&e->mu);
	rev = e->rev;
	pthread_mutex_unlock(&e->mu);
	return rev;
}

static int emb_changes(struct store *s, uint64_t since,
		       struct store_scope *scope, store_change_cb cb, void *arg,
		       uint64_t *upto)
{
	struct emb *e = (struct emb *)s;
	int ret;

	pthread_mutex_lock(&e->mu);
	ret = mem_feed_walk_scoped(&e->feed, since, e->rev, scope, cb, arg,
				   upto);
	pthread_mutex_unlock(&e->mu);
	return ret;
}

static uint64_t emb_wait(struct store *s, uint64_t rev, int timeout_ms)
{
	struct emb *e = (struct emb *)s;
	struct timespec ts;
	uint64_t cur, wakes;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&e->mu);
	wakes = e->wakes;
	while (e->rev <= rev && timeout_ms > 0 && e->wakes == wakes)
		if (pthread_cond_timedwait(&e->cond, &e->mu, &ts) == ETIMEDOUT)
			break;
	cur = e->rev;
	pthread_mutex_unlock(&e->mu);
	return cur;
}

static void emb_wake_all(struct store *s)
{
	struct emb *e = (struct emb *)s;

	pthread_mutex_lock(&e->mu);
	e->wakes++;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->mu);
}

static void emb_free(struct emb *e)
{
	mem_map_fini(&e->map);
	mem_feed_fini(&e->feed);
	if (e->fd >= 0)
		close(e->fd);
	pthread_cond_destroy(&e->cond);
	pthread_cond_destroy(&e->commit);
	pthread_mutex_destroy(&e->mu);
	free(e->path);
	free(e->dir);
	free(e);
}

static void emb_close(struct store *s)
{
	emb_free((struct emb *)s);
}

static const struct store_ops emb_ops = {
	.get = emb_get,
	.list = emb_list,
	.txn = emb_txn,
	.revision = emb_revision,
	.changes = emb_changes,
	.wait = emb_wait,
	.wake_all = emb_wake_all,
	.close = emb_close,
};

struct cursor {
	const uint8_t *p;
	size_t left;
};

static int cur_u8(struct cursor *c, uint8_t *v)
{
	if (c->left < 1)
		return -EBADMSG;
	*v = *c->p++;
	c->left--;
	return 0;
}

static int cur_u32(struct cursor *c, uint32_t *v)
{
	if (c->left < 4)
		return -EBADMSG;
	*v = c->p[0] | c->p[1] << 8 | c->p[2] << 16 | (uint32_t)c->p[3] << 24;
	c->p += 4;
	c->left -= 4;
	return 0;
}

static int cur_u64(struct cursor *c, uint64_t *v)
{
	uint32_t lo, hi;
	int err = cur_u32(c, &lo);

	err = err ?: cur_u32(c, &hi);
	*v = (uint64_t)hi << 32 | lo;
	return err;
}

/* Points *s at a length-prefixed string inside the cursor's buffer. */
static int cur_str(struct cursor *c, const char **s, uint32_t *len)
{
	int err = cur_u32(c, len);

	if (err || c->left < *len)
		return -EBADMSG;
	*s = (const char *)c->p;
	c->p += *len;
	c->left -= *len;
	return 0;
}

static int replay_payload(struct emb *e, const uint8_t *p, size_t len)
{
	struct cursor c = {p, len};
	char key[STORE_KEY_MAX];
	uint64_t rev, ver;
	uint32_t count, klen, vlen;
	const char *k, *v;
	struct mem_rec *r;
	uint8_t kind, op;
	int err;

	err = cur_u8(&c, &kind);
	err = err ?: cur_u64(&c, &rev);
	err = err ?: cur_u32(&c, &count);
	if (err)
		return err;
	if (kind == KIND_SNAP)
		mem_map_clear(&e->map);
	else if (kind != KIND_TXN || rev != e->rev + 1)
		return -EBADMSG;
	for (uint32_t i = 0; i < count; i++) {
		char *val;

		op = OP_PUT;
		ver = rev;
		if (kind == KIND_SNAP)
			err = cur_u64(&c, &ver);
		else
			err = cur_u8(&c, &op);
		err = err ?: cur_str(&c, &k, &klen);
		err = err ?: cur_str(&c, &v, &vlen);
		if (err || klen == 0 || klen >= sizeof(key))
			return -EBADMSG;
		memcpy(key, k, klen);
		key[klen] = '\0';
		r = mem_map_find(&e->map, key);
		if (op == OP_DEL) {
			err = r ? mem_derive(&e->map, NULL, ver, key, r->val,
					     NULL)
				: 0;
			mem_map_del(&e->map, key);
			if (err)
				return err;
			continue;
		}
		if (op != OP_PUT)
			continue; /* a version check */
		val = mem_dup(v, vlen);
		if (!val)
			return -ENOMEM;
		err = mem_derive(&e->map, NULL, ver, key, r ? r->val : NULL,
				 val);
		if (err) {
			free(val);
			return err;
		}
		if (!mem_map_put(&e->map, key, val, vlen, ver)) {
			free(val);
			return -ENOMEM;
		}
	}
	e->rev = rev;
	return c.left ? -EBADMSG : 0;
}

static int read_file(int fd, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *p;
	size_t got = 0;

	if (fstat(fd, &st))
		return -errno;
	p = malloc(st.st_size ? st.st_size : 1);
	if (!p)
		return -ENOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, p + got, st.st_size - got, got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(p);
			return n < 0 ? -errno : -EIO;
		}
		got += n;
	}
	*out = p;
	*len = got;
	return 0;
}

static int replay(struct emb *e)
{
	uint8_t *data = NULL;
	size_t len = 0, off;
	int err;

	err = read_file(e->fd, &data, &len);
	if (err)
		return err;
	if (len < LOG_MAGIC_LEN) {
		/* New, or torn while writing the magic. */
		if (ftruncate(e->fd, 0) ||
		    pwrite(e->fd, LOG_MAGIC, LOG_MAGIC_LEN, 0) !=
			    LOG_MAGIC_LEN ||
		    fsync(e->fd)) {
			err = -errno;
			goto out;
		}
		e->log_size = LOG_MAGIC_LEN;
		err = fsync_dir(e->dir);
		goto out;
	}
	if (memcmp(data, LOG_MAGIC, LOG_MAGIC_LEN)) {
		pr_err("store: %s is not an xvpc store log", e->path);
		err = -EBADMSG;
		goto out;
	}
	off = LOG_MAGIC_LEN;
	while (off < len) {
		size_t left = len - off;
		uint32_t rlen, crc;
		const uint8_t *h = data + off;
		bool last;

		if (left < REC_HDR)
			break; /* torn header */
		rlen = h[0] | h[1] << 8 | h[2] << 16 | (uint32_t)h[3] << 24;
		crc = h[4] | h[5] << 8 | h[6] << 16 | (uint32_t)h[7] << 24;
		if (rlen > left - REC_HDR)
			break; /* torn body */
		last = off + REC_HDR + rlen == len;
		if (crc32c(h + REC_HDR, rlen) != crc) {
			if (last)
				break;
			pr_err("store: %s: bad checksum at offset %zu with %zu "
			       "bytes after it; refusing to guess (move the "
			       "file away to start empty)",
			       e->path, off, left);
			err = -EBADMSG;
			goto out;
		}
		err = replay_payload(e, h + REC_HDR, rlen);
		if (err) {
			pr_err("store: %s: bad record at offset %zu: %s",
			       e->path, off, strerror(-err));
			goto out;
		}
		off += REC_HDR + rlen;
	}
	if (off < len) {
		pr_warn("store: %s: cutting a torn last record (%zu bytes at "
			"offset %zu)",
			e->path, len - off, off);
		if (ftruncate(e->fd, off) || fsync(e->fd)) {
			err = -errno;
			goto out;
		}
	}
	e->log_size = off;
out:
	free(data);
	return err;
}

int store_embed_open(const char *dir, const struct store_embed_opts *opts,
		     struct store **out)
{
	struct emb *e;
	char path[PATH_MAX];
	int err;

	if (snprintf(path, sizeof(path), "%s/store.log", dir) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	if (mkdir(dir, 0700) && errno != EEXIST) {
		err = -errno;
		pr_err("store: cannot create %s: %s", dir, strerror(-err));
		return err;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->base.ops = &emb_ops;
	e->fd = -1;
	pthread_mutex_init(&e->mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&e->cond, &ca);
		pthread_condattr_destroy(&ca);
		pthread_cond_init(&e->commit, NULL);
	}
	e->compact_bytes =
		opts && opts->compact_bytes ? opts->compact_bytes : 8u << 20;
	e->path = strdup(path);
	e->dir = strdup(dir);
	if (mem_map_init(&e->map) ||
	    mem_feed_init(&e->feed,
			  opts && opts->feed_changes ? opts->feed_changes
						     : 65536,
			  0) ||
	    !e->path || !e->dir) {
		err = -ENOMEM;
		goto err;
	}
	e->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (e->fd < 0) {
		err = -errno;
		pr_err("store: cannot open %s: %s", path, strerror(-err));
		goto err;
	}
	if (flock(e->fd, LOCK_EX | LOCK_NB)) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		pr_err("store: %s is in use by another process: %s", path,
		       strerror(-err));
		goto err;
	}
	err = replay(e);
	if (err) {
		pr_err("store: cannot recover %s: %s", path, strerror(-err));
		goto err;
	}
	mem_feed_reset(&e->feed, e->rev);
	e->next_rev = e->rev;
	e->synced = e->log_size;
	pr_info("store: %s: %zu records at revision %llu", path, e->map.n,
		(unsigned long long)e->rev);
	*out = &e->base;
	return 0;
err:
	emb_free(e);
	return err;
}

int store_embed_compact(struct store *s)
{
	struct emb *e = (struct emb *)s;
	int err;

	pthread_mutex_lock(&e->mu);
	while (e->head)
		pthread_cond_wait(&e->commit, &e->mu);
	err = compact_locked(e);
	pthread_mutex_unlock(&e->mu);
	return err;
}

size_t store_embed_log_size(struct store *s)
{
	struct emb *e = (struct emb *)s;
	size_t n;

	pthread_mutex_lock(&e->mu);
	n = e->log_size;
	pthread_mutex_unlock(&e->mu);
	return n;
}
