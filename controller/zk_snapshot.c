// SPDX-License-Identifier: GPL-2.0-only
/* Consistent snapshot of a subtree, tied to a bus sequence.
 *
 * Writers change the subtree and publish a message on the channel in one
 * transaction, so a message and the records it changed carry the same
 * zxid. A snapshot reads the channel's last sequence L and its pzxid (the
 * transaction that last added or removed a message), reads the subtree,
 * then reads the pzxid again.
 *
 * Equal pzxids: no transaction published during the read, hence none
 * changed the subtree, and the copy is exactly the state after message L
 * (exact). The reader subscribes from L + 1 and applies every message.
 *
 * Writers kept publishing (after a few attempts): the copy holds every
 * change up to L and possibly some later ones. The reader still subscribes
 * from L + 1, and skips a message's change to a record whose copy has
 * mzxid >= the message's zxid (zk_snapshot_covers()): that change is
 * already in the copy. Reads of one session are ordered, so every change
 * the copy lacks comes in a message after L. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "zk_priv.h"

#define SNAPSHOT_TRIES 3

struct rec_vec {
	struct zk_record *recs;
	int n, cap;
};

static void recs_free(struct zk_record *recs, int n)
{
	for (int i = 0; i < n && recs; i++) {
		free(recs[i].path);
		free(recs[i].data);
	}
	free(recs);
}

void zk_snapshot_free(struct zk_snapshot *s)
{
	if (!s)
		return;
	recs_free(s->recs, s->n);
	free(s);
}

static bool under(const char *path, const char *top)
{
	size_t n = strlen(top);

	return !strncmp(path, top, n) && (path[n] == '\0' || path[n] == '/');
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Depth first, children in name order. A node deleted while we walk is
 * skipped: the pzxid check then decides whether the copy is usable. */
static int read_tree(struct zk *zk, const char *path, const char *chan,
		     struct rec_vec *v)
{
	struct String_vector sv;
	struct zk_record *r;
	char child[ZK_PATH_MAX];
	struct Stat st;
	char *data;
	int len, err;

	err = zk_get_raw(zk, path, NULL, NULL, &data, &len, &st);
	if (err)
		return err;
	if (v->n == v->cap) {
		int cap = v->cap ? 2 * v->cap : 64;
		struct zk_record *recs = realloc(v->recs, cap * sizeof(*recs));

		if (!recs) {
			free(data);
			return -ENOMEM;
		}
		v->recs = recs;
		v->cap = cap;
	}
	r = &v->recs[v->n];
	r->path = strdup(path);
	if (!r->path) {
		free(data);
		return -ENOMEM;
	}
	r->data = data;
	r->len = len;
	zk_stat_from(&r->st, &st);
	v->n++;
	if (!st.numChildren)
		return 0;

	err = zk_children_raw(zk, path, NULL, NULL, &sv, &st);
	if (err)
		return err == -ENOENT ? 0 : err;
	qsort(sv.data, sv.count, sizeof(*sv.data), cmp_str);
	for (int i = 0; i < sv.count && !err; i++) {
		if (snprintf(child, sizeof(child), "%s/%s",
			     strcmp(path, "/") ? path : "",
			     sv.data[i]) >= (int)sizeof(child)) {
			err = -ENAMETOOLONG;
			break;
		}
		if (chan && under(child, chan))
			continue;
		err = read_tree(zk, child, chan, v);
		if (err == -ENOENT)
			err = 0;
	}
	deallocate_String_vector(&sv);
	return err;
}

/* The channel's pzxid; 0 when it does not exist. */
static int chan_pzxid(struct zk *zk, const char *chan, int64_t *pzxid)
{
	struct Stat st;
	int err;

	*pzxid = 0;
	err = zk_ready(zk);
	if (err)
		return err;
	err = zk_err(zoo_exists(zk->zh, chan, 0, &st));
	if (err == -ENOENT)
		return 0;
	if (!err)
		*pzxid = st.pzxid;
	return err;
}

int zk_snapshot_take(struct zk *zk, const char *root, const char *chan,
		     struct zk_snapshot **out)
{
	struct zk_snapshot *s = NULL;
	int64_t before, after, seq;
	struct rec_vec v;
	int err;

	*out = NULL;
	err = zk_check_path(root);
	if (!err)
		err = zk_check_path(chan);
	if (err)
		return err;
	for (int tries = 1;; tries++) {
		memset(&v, 0, sizeof(v));
		err = chan_pzxid(zk, chan, &before);
		if (!err)
			err = zk_bus_last(zk, chan, &seq);
		if (!err)
			err = read_tree(zk, root, chan, &v);
		if (!err)
			err = chan_pzxid(zk, chan, &after);
		if (err) {
			recs_free(v.recs, v.n);
			return err;
		}
		if (before == after || tries == SNAPSHOT_TRIES)
			break;
		pr_debug("zk: snapshot of %s: messages published on %s "
			 "meanwhile, again\n",
			 root, chan);
		recs_free(v.recs, v.n);
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		recs_free(v.recs, v.n);
		return -ENOMEM;
	}
	s->seq = seq;
	s->exact = before == after;
	s->zxid = after;
	s->recs = v.recs;
	s->n = v.n;
	*out = s;
	return 0;
}

const struct zk_record *zk_snapshot_find(const struct zk_snapshot *s,
					 const char *path)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->recs[i].path, path))
			return &s->recs[i];
	return NULL;
}

bool zk_snapshot_covers(const struct zk_snapshot *s, const char *path,
			int64_t zxid)
{
	const struct zk_record *r;

	if (s->exact)
		return false;
	r = zk_snapshot_find(s, path);
	return r && r->st.mzxid >= zxid;
}
