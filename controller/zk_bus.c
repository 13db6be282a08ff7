// SPDX-License-Identifier: GPL-2.0-only
/* Message bus: a channel is a persistent node; its children m-<seq> are
 * the messages, created persistent sequential. ZooKeeper assigns those
 * sequences in transaction order, so once a subscriber sees m-N every
 * message below N is visible too: delivering "everything above the last
 * delivered, in order" gives each message once and in order.
 *
 * Garbage collection writes a watermark into the channel node's data
 * (decimal: one more than the highest deleted sequence) before deleting
 * messages. A subscriber that finds the watermark above its position
 * missed messages and is told so (-ENOENT) instead of silently skipping.
 *
 * A subscriber fetches the messages it lists with pipelined asynchronous
 * reads (up to FETCH_BATCH in flight, one round trip for all of them
 * instead of one each) and delivers them in sequence order. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "zk_priv.h"

struct zk_sub {
	struct zk_obj obj; /* first */
	char *chan;
	_Atomic int64_t last;
	zk_bus_cb cb;
	void *arg;
	atomic_bool dead;
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Watermark of a channel: 0 when never collected; -ENOENT if no channel. */
static int read_wm(struct zk *zk, const char *chan, int64_t *wm, int *version)
{
	struct Stat st;
	char *data;
	int err;

	err = zk_get_raw(zk, chan, NULL, NULL, &data, NULL, &st);
	if (err)
		return err;
	*wm = strtoll(data, NULL, 10);
	if (*wm < 0)
		*wm = 0;
	if (version)
		*version = st.version;
	free(data);
	return 0;
}

/* Sorted sequences of the channel's messages above `after`. */
static int list_seqs(struct zk *zk, const char *chan, watcher_fn w, void *ctx,
		     int64_t after, int64_t **out, int *n, struct Stat *st)
{
	struct String_vector sv;
	int64_t *seqs;
	int cnt = 0, err;

	*out = NULL;
	*n = 0;
	err = zk_children_raw(zk, chan, w, ctx, &sv, st);
	if (err)
		return err;
	seqs = malloc((sv.count ? sv.count : 1) * sizeof(*seqs));
	if (!seqs) {
		deallocate_String_vector(&sv);
		return -ENOMEM;
	}
	for (int i = 0; i < sv.count; i++) {
		int64_t s = zk_seq_of(sv.data[i]);

		if (s > after)
			seqs[cnt++] = s;
	}
	deallocate_String_vector(&sv);
	qsort(seqs, cnt, sizeof(*seqs), cmp_i64);
	*out = seqs;
	*n = cnt;
	return 0;
}

int zk_bus_publish(struct zk *zk, const char *chan, const void *data, int len,
		   int64_t *seq)
{
	char node[ZK_PATH_MAX], created[ZK_PATH_MAX];
	int err = zk_check_path(chan);

	if (!err)
		err = zk_check_len(len);
	if (err)
		return err;
	snprintf(node, sizeof(node), "%s/m-", chan);
	err = zk_create_node(zk, node, data ? data : "", len,
			     ZOO_PERSISTENT_SEQUENTIAL, created,
			     sizeof(created));
	if (!err && seq)
		*seq = zk_seq_of(strrchr(created, '/') + 1);
	return err;
}

int zk_bus_last(struct zk *zk, const char *chan, int64_t *seq)
{
	int64_t wm, *seqs;
	struct Stat st;
	int n, err;

	*seq = -1;
	err = zk_check_path(chan);
	if (err)
		return err;
	/* Watermark first: a collection after it only lowers what we see,
	 * which a subscriber then reports as a gap. */
	err = read_wm(zk, chan, &wm, NULL);
	if (!err)
		err = list_seqs(zk, chan, NULL, NULL, -1, &seqs, &n, &st);
	if (err == -ENOENT)
		return 0;
	if (err)
		return err;
	*seq = n ? seqs[n - 1] : wm - 1;
	free(seqs);
	return 0;
}

#define GC_BATCH 256

/* Deletes messages in one transaction; one by one if some are already
 * gone (a concurrent collector). */
static int gc_batch(struct zk *zk, const char *chan, const int64_t *seqs, int n)
{
	struct zk_txn *t = zk_txn_new();
	char p[ZK_PATH_MAX];
	int err = 0;

	if (!t)
		return -ENOMEM;
	for (int i = 0; i < n && err >= 0; i++) {
		snprintf(p, sizeof(p), "%s/m-%010lld", chan,
			 (long long)seqs[i]);
		err = zk_txn_delete(t, p, ZK_ANY_VERSION);
	}
	if (err >= 0)
		err = zk_txn_commit(zk, t);
	zk_txn_free(t);
	if (err != -ENOENT)
		return err;
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/m-%010lld", chan,
			 (long long)seqs[i]);
		err = zk_delete(zk, p, ZK_ANY_VERSION);
		if (err && err != -ENOENT)
			return err;
	}
	return 0;
}

int zk_bus_gc(struct zk *zk, const char *chan, int64_t below, int *deleted)
{
	char buf[32];
	int n, version, err, done = 0;
	struct Stat st;
	int64_t *seqs = NULL, wm;

	if (deleted)
		*deleted = 0;
	err = zk_check_path(chan);
	if (err)
		return err;
	err = list_seqs(zk, chan, NULL, NULL, -1, &seqs, &n, &st);
	if (err == -ENOENT)
		return 0;
	if (err)
		return err;
	while (n && seqs[n - 1] >= below)
		n--;
	if (!n)
		goto out;
	/* Raise the watermark before deleting anything. */
	for (;;) {
		err = read_wm(zk, chan, &wm, &version);
		if (err || wm > seqs[n - 1])
			break;
		snprintf(buf, sizeof(buf), "%lld", (long long)seqs[n - 1] + 1);
		err = zk_ready(zk);
		if (err)
			break;
		err = zk_err(zoo_set(zk->zh, chan, buf, strlen(buf), version));
		if (err != -ESTALE) /* else a concurrent collector: again */
			break;
	}
	if (err)
		goto out;
	/* In batches of one transaction each: one server fsync per batch. */
	for (int i = 0; i < n && !err; i += GC_BATCH) {
		int cnt = n - i < GC_BATCH ? n - i : GC_BATCH;

		err = gc_batch(zk, chan, seqs + i, cnt);
		if (!err)
			done += cnt;
	}
out:
	if (err)
		pr_warn("zk: bus %s: garbage collection stopped after %d "
			"messages: %s\n",
			chan, done, strerror(-err));
	if (deleted)
		*deleted = done;
	free(seqs);
	return err;
}

static void sub_gap(struct zk_sub *s, int64_t upto)
{
	struct zk_msg msg = {.seq = upto};

	pr_warn("zk: bus %s: messages up to %lld were collected before "
		"delivery\n",
		s->chan, (long long)upto);
	zk_sub_advance(s, upto);
	s->cb(s, -ENOENT, &msg, s->arg);
}

#define FETCH_BATCH	256
#define FETCH_TIMEOUT_S 60 /* the client fails calls on connection loss */

/* One asynchronous read of a batch. Shared by the caller and the
 * completions; whoever drops the last reference frees it. */
struct fetch_one {
	struct fetch *f;
	int rc;
	char *data;
	int len;
	struct Stat st;
};

struct fetch {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int refs, left;
	int n;
	struct fetch_one one[]; /* [0]: the channel (watermark) */
};

static void fetch_put(struct fetch *f)
{
	int refs;

	pthread_mutex_lock(&f->mu);
	refs = --f->refs;
	pthread_mutex_unlock(&f->mu);
	if (refs)
		return;
	for (int i = 0; i < f->n; i++)
		free(f->one[i].data);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static void fetch_done(int rc, const char *value, int value_len,
		       const struct Stat *st, const void *data)
{
	struct fetch_one *o = (struct fetch_one *)data;
	struct fetch *f = o->f;

	if (rc == ZOK) {
		o->len = value_len > 0 ? value_len : 0;
		o->data = malloc(o->len + 1);
		if (o->data) {
			memcpy(o->data, value, o->len);
			o->data[o->len] = '\0';
			o->st = *st;
		} else {
			rc = ZSYSTEMERROR;
		}
	}
	o->rc = rc;
	pthread_mutex_lock(&f->mu);
	f->left--;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->mu);
	fetch_put(f);
}

/* Reads the channel node and messages seqs[0..n-1] with every request in
 * flight at once. 0 and *out (one[0] the channel, one[1 + i] message i;
 * each with its own rc) or a negative errno for the batch as a whole. */
static int fetch_batch(struct zk *zk, const char *chan, const int64_t *seqs,
		       int n, struct fetch **out)
{
	struct fetch *f = calloc(1, sizeof(*f) + (n + 1) * sizeof(f->one[0]));
	char p[ZK_PATH_MAX];
	struct timespec ts;
	int err, rc = ZOK;

	*out = NULL;
	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->n = n + 1;
	f->refs = 1;
	err = zk_ready(zk);
	for (int i = 0; !err && i <= n; i++) {
		struct fetch_one *o = &f->one[i];

		o->f = f;
		if (i)
			snprintf(p, sizeof(p), "%s/m-%010lld", chan,
				 (long long)seqs[i - 1]);
		pthread_mutex_lock(&f->mu);
		f->refs++;
		f->left++;
		pthread_mutex_unlock(&f->mu);
		rc = zoo_aget(zk->zh, i ? p : chan, 0, fetch_done, o);
		if (rc != ZOK) {
			pthread_mutex_lock(&f->mu);
			f->refs--;
			f->left--;
			pthread_mutex_unlock(&f->mu);
			err = zk_err(rc);
		}
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += FETCH_TIMEOUT_S;
	pthread_mutex_lock(&f->mu);
	while (f->left && !err)
		if (pthread_cond_timedwait(&f->cond, &f->mu, &ts) == ETIMEDOUT)
			err = -ETIMEDOUT;
	while (f->left && err != -ETIMEDOUT)
		pthread_cond_wait(&f->cond, &f->mu); /* issued before err */
	pthread_mutex_unlock(&f->mu);
	if (err) {
		fetch_put(f);
		return err;
	}
	*out = f;
	return 0;
}

/* Delivers seqs[0..n-1] (listed, above s->last) in order. */
static int sub_deliver(struct zk_sub *s, struct zk *zk, const int64_t *seqs,
		       int n)
{
	struct fetch *f;
	int64_t wm;
	int err;

	err = fetch_batch(zk, s->chan, seqs, n, &f);
	if (err)
		return err;
	err = zk_err(f->one[0].rc);
	if (err)
		goto out;
	wm = strtoll(f->one[0].data, NULL, 10);
	if (wm - 1 > atomic_load(&s->last))
		sub_gap(s, wm - 1);
	for (int i = 0; i < n && !atomic_load(&s->dead); i++) {
		struct fetch_one *o = &f->one[1 + i];
		struct zk_msg msg = {.seq = seqs[i]};

		if (seqs[i] <= atomic_load(&s->last))
			continue;
		err = zk_err(o->rc);
		if (err == -ENOENT) {
			/* Collected (or deleted by hand) since the listing. */
			err = read_wm(zk, s->chan, &wm, NULL);
			if (err)
				goto out;
			sub_gap(s, wm - 1 > seqs[i] ? wm - 1 : seqs[i]);
			continue;
		}
		if (err)
			goto out;
		msg.zxid = o->st.czxid;
		msg.data = o->data;
		msg.len = o->len;
		zk_sub_advance(s, seqs[i]);
		s->cb(s, 0, &msg, s->arg);
	}
out:
	fetch_put(f);
	return err;
}

static void sub_handle(struct zk_obj *o, bool from_watch)
{
	struct zk_sub *s = (struct zk_sub *)o;
	struct zk *zk = o->zk;
	int64_t *seqs = NULL;
	int n = 0, skipped = 0, err, rc;
	struct Stat st;

	(void)from_watch;
	if (atomic_load(&s->dead))
		return;
	for (;;) {
		err = list_seqs(zk, s->chan, zk_obj_watcher, zk_obj_ctx(o),
				atomic_load(&s->last), &seqs, &n, &st);
		if (err != -ENOENT)
			break;
		/* No channel yet: watch for its creation. */
		err = zk_ready(zk);
		if (err)
			goto fail;
		rc = zoo_wexists(zk->zh, s->chan, zk_obj_watcher, zk_obj_ctx(o),
				 &st);
		if (rc == ZNONODE)
			return;
		err = zk_err(rc);
		if (err)
			goto fail;
	}
	if (err)
		goto fail;
	/* Not what the subscriber already has (zk_sub_advance). */
	while (n && seqs[0] <= atomic_load(&s->last)) {
		seqs++;
		n--;
		skipped++;
	}
	/* n == 0 still reads the watermark (a collection past us). */
	for (int i = 0; !err && (i < n || !i) && !atomic_load(&s->dead);
	     i += FETCH_BATCH)
		err = sub_deliver(s, zk, seqs + i,
				  n - i < FETCH_BATCH ? n - i : FETCH_BATCH);
	if (err)
		goto fail;
	free(seqs - skipped);
	return;

fail:
	free(seqs - skipped);
	if (zk_err_unavailable(err) && err != -ESHUTDOWN) {
		pr_debug("zk: bus %s: delivery postponed: %s\n", s->chan,
			 strerror(-err));
		zk_obj_retry_later(o);
	} else if (err != -ESHUTDOWN) {
		pr_err("zk: bus %s: delivery failed: %s\n", s->chan,
		       strerror(-err));
	}
}

static void sub_expire(struct zk_obj *o)
{
	struct zk_sub *s = (struct zk_sub *)o;
	struct zk_msg msg = {.seq = atomic_load(&s->last)};

	if (atomic_exchange(&s->dead, true))
		return;
	s->cb(s, -ESHUTDOWN, &msg, s->arg);
}

static void sub_destroy(struct zk_obj *o)
{
	struct zk_sub *s = (struct zk_sub *)o;

	free(s->chan);
	free(s);
}

int zk_bus_subscribe(struct zk *zk, const char *chan, int64_t from_seq,
		     zk_bus_cb cb, void *arg, struct zk_sub **out)
{
	struct zk_sub *s;
	int err;

	*out = NULL;
	err = zk_check_path(chan);
	if (err)
		return err;
	if (!cb || from_seq < 0)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->chan = strdup(chan);
	if (!s->chan) {
		free(s);
		return -ENOMEM;
	}
	atomic_store(&s->last, from_seq - 1);
	s->cb = cb;
	s->arg = arg;
	zk_obj_add(zk, &s->obj, sub_handle, sub_expire, sub_destroy);
	zk_obj_kick(&s->obj, false);
	*out = s;
	return 0;
}

void zk_bus_unsubscribe(struct zk_sub *s)
{
	if (!s)
		return;
	atomic_store(&s->dead, true);
	zk_obj_remove(&s->obj);
}

int64_t zk_sub_last(struct zk_sub *s)
{
	return atomic_load(&s->last);
}

void zk_sub_advance(struct zk_sub *s, int64_t seq)
{
	int64_t cur = atomic_load(&s->last);

	while (cur < seq && !atomic_compare_exchange_weak(&s->last, &cur, seq))
		;
}
