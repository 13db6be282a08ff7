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
 * missed messages and is told so (-ENOENT) instead of silently skipping. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	atomic_store(&s->last, upto);
	s->cb(s, -ENOENT, &msg, s->arg);
}

static void sub_handle(struct zk_obj *o, bool from_watch)
{
	struct zk_sub *s = (struct zk_sub *)o;
	struct zk *zk = o->zk;
	int64_t *seqs = NULL, wm;
	char p[ZK_PATH_MAX];
	int n = 0, err, rc;
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
	err = read_wm(zk, s->chan, &wm, NULL);
	if (err)
		goto fail;
	if (wm - 1 > atomic_load(&s->last))
		sub_gap(s, wm - 1);
	for (int i = 0; i < n && !atomic_load(&s->dead); i++) {
		struct zk_msg msg = {.seq = seqs[i]};
		char *data;

		if (seqs[i] <= atomic_load(&s->last))
			continue;
		snprintf(p, sizeof(p), "%s/m-%010lld", s->chan,
			 (long long)seqs[i]);
		err = zk_get_raw(zk, p, NULL, NULL, &data, &msg.len, &st);
		if (err == -ENOENT) {
			/* Collected (or deleted by hand) since the listing. */
			err = read_wm(zk, s->chan, &wm, NULL);
			if (err)
				goto fail;
			sub_gap(s, wm - 1 > seqs[i] ? wm - 1 : seqs[i]);
			continue;
		}
		if (err)
			goto fail;
		msg.zxid = st.czxid;
		msg.data = data;
		atomic_store(&s->last, seqs[i]);
		s->cb(s, 0, &msg, s->arg);
		free(data);
	}
	free(seqs);
	return;

fail:
	free(seqs);
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
