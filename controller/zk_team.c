// SPDX-License-Identifier: GPL-2.0-only
/* Team membership and leader election.
 *
 * Each member is an ephemeral sequential node <path>/m-<seq> holding the
 * member's data (its address). The member with the lowest sequence leads.
 * Every other member watches only the member just before it: when that one
 * goes, only this member wakes, lists the team again and either leads or
 * watches its new predecessor. No departure wakes the whole team. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "zk_priv.h"

struct zk_team {
	struct zk_obj obj; /* first */
	char *path;
	char self[32];
	int64_t self_seq;
	char *self_data;
	int self_len;
	struct zk_team_ops ops;
	void *arg;
	bool track; /* watches the member list */
	atomic_bool elected;
	atomic_bool dead;
	atomic_uint_fast64_t wakeups;
	/* Members last reported, when tracking. */
	struct zk_member *known;
	int nknown;
	char leader[32];
};

static int cmp_member(const void *a, const void *b)
{
	const struct zk_member *x = a, *y = b;

	return (x->seq > y->seq) - (x->seq < y->seq);
}

void zk_members_free(struct zk_member *m, int n)
{
	for (int i = 0; i < n && m; i++)
		free(m[i].data);
	free(m);
}

/* Members from a child list, sorted; data is read only when with_data. */
static int members_from(struct zk *zk, const char *path,
			const struct String_vector *sv, bool with_data,
			struct zk_member **out, int *n)
{
	struct zk_member *m;
	char p[ZK_PATH_MAX];
	struct Stat st;
	int cnt = 0, err = 0;

	*out = NULL;
	*n = 0;
	m = calloc(sv->count ? sv->count : 1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (int i = 0; i < sv->count; i++) {
		int64_t seq = zk_seq_of(sv->data[i]);

		if (seq < 0 || strlen(sv->data[i]) >= sizeof(m->name))
			continue;
		snprintf(m[cnt].name, sizeof(m[cnt].name), "%s", sv->data[i]);
		m[cnt].seq = seq;
		if (with_data) {
			snprintf(p, sizeof(p), "%s/%s", path, sv->data[i]);
			err = zk_get_raw(zk, p, NULL, NULL, &m[cnt].data,
					 &m[cnt].len, &st);
			if (err == -ENOENT) /* left meanwhile */
				continue;
			if (err) {
				zk_members_free(m, cnt);
				return err;
			}
		}
		cnt++;
	}
	qsort(m, cnt, sizeof(*m), cmp_member);
	*out = m;
	*n = cnt;
	return 0;
}

int zk_team_list(struct zk *zk, const char *path, struct zk_member **out,
		 int *n)
{
	struct String_vector sv;
	struct Stat st;
	int err;

	*out = NULL;
	*n = 0;
	err = zk_check_path(path);
	if (!err)
		err = zk_children_raw(zk, path, NULL, NULL, &sv, &st);
	if (err)
		return err;
	err = members_from(zk, path, &sv, true, out, n);
	deallocate_String_vector(&sv);
	return err;
}

int zk_team_members(struct zk_team *t, struct zk_member **out, int *n)
{
	return zk_team_list(t->obj.zk, t->path, out, n);
}

static const struct zk_member *find_member(const struct zk_member *m, int n,
					   const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(m[i].name, name))
			return &m[i];
	return NULL;
}

static void lose_leadership(struct zk_team *t)
{
	t->leader[0] = '\0';
	if (atomic_exchange(&t->elected, false)) {
		pr_warn("zk: team %s: %s is no longer the leader\n", t->path,
			t->self);
		if (t->ops.leader_changed)
			t->ops.leader_changed(t, NULL, false, t->arg);
	}
}

/* Reports joins and leaves against the last known list, reading the data
 * of new members. Takes ownership of cur. */
static void track_members(struct zk_team *t, struct zk_member *cur, int n)
{
	char p[ZK_PATH_MAX];
	struct Stat st;

	for (int i = 0; i < n; i++) {
		const struct zk_member *old =
			find_member(t->known, t->nknown, cur[i].name);

		if (old) {
			cur[i].data = old->data ? strdup(old->data) : NULL;
			cur[i].len = old->len;
			continue;
		}
		snprintf(p, sizeof(p), "%s/%s", t->path, cur[i].name);
		if (zk_get_raw(t->obj.zk, p, NULL, NULL, &cur[i].data,
			       &cur[i].len, &st))
			cur[i].data = NULL;
		if (t->ops.member_joined)
			t->ops.member_joined(t, &cur[i], t->arg);
	}
	for (int i = 0; i < t->nknown; i++)
		if (!find_member(cur, n, t->known[i].name) &&
		    t->ops.member_left)
			t->ops.member_left(t, &t->known[i], t->arg);
	zk_members_free(t->known, t->nknown);
	t->known = cur;
	t->nknown = n;
}

static void team_handle(struct zk_obj *o, bool from_watch)
{
	struct zk_team *t = (struct zk_team *)o;
	struct zk *zk = o->zk;
	struct zk_member *m = NULL;
	struct String_vector sv;
	char pred[ZK_PATH_MAX];
	struct Stat st;
	int n = 0, idx, err, rc;

	if (from_watch)
		atomic_fetch_add(&t->wakeups, 1);
	if (atomic_load(&t->dead))
		return;
	for (;;) {
		err = zk_children_raw(zk, t->path,
				      t->track ? zk_obj_watcher : NULL,
				      zk_obj_ctx(o), &sv, &st);
		if (!err) {
			err = members_from(zk, t->path, &sv, false, &m, &n);
			deallocate_String_vector(&sv);
		}
		if (err)
			goto fail;
		for (idx = 0; idx < n; idx++)
			if (!strcmp(m[idx].name, t->self))
				break;
		if (idx == n) {
			pr_warn("zk: team %s: member %s is gone (session "
				"expired or node deleted)\n",
				t->path, t->self);
			atomic_store(&t->dead, true);
			lose_leadership(t);
			zk_members_free(m, n);
			return;
		}
		if (idx > 0) {
			/* Watch the predecessor; if it left meanwhile, look
			 * again. */
			snprintf(pred, sizeof(pred), "%s/%s", t->path,
				 m[idx - 1].name);
			err = zk_ready(zk);
			if (err)
				goto fail;
			rc = zoo_wexists(zk->zh, pred, zk_obj_watcher,
					 zk_obj_ctx(o), &st);
			if (rc == ZNONODE) {
				zk_members_free(m, n);
				m = NULL;
				continue;
			}
			err = zk_err(rc);
			if (err)
				goto fail;
		}
		break;
	}

	if (idx == 0 && !atomic_load(&t->elected)) {
		struct zk_member self = {.seq = t->self_seq,
					 .data = t->self_data,
					 .len = t->self_len};

		snprintf(self.name, sizeof(self.name), "%s", t->self);
		atomic_store(&t->elected, true);
		snprintf(t->leader, sizeof(t->leader), "%s", t->self);
		pr_info("zk: team %s: %s is the leader\n", t->path, t->self);
		if (t->ops.leader_changed)
			t->ops.leader_changed(t, &self, true, t->arg);
	}
	if (t->track) {
		bool changed = strcmp(t->leader, m[0].name) != 0;

		track_members(t, m, n);
		m = NULL;
		if (changed && t->nknown) {
			snprintf(t->leader, sizeof(t->leader), "%s",
				 t->known[0].name);
			if (t->ops.leader_changed)
				t->ops.leader_changed(t, &t->known[0], false,
						      t->arg);
		}
	}
	zk_members_free(m, n);
	return;

fail:
	zk_members_free(m, n);
	if (zk_err_unavailable(err) && err != -ESHUTDOWN) {
		pr_debug("zk: team %s: election postponed: %s\n", t->path,
			 strerror(-err));
		zk_obj_retry_later(o);
	} else if (err != -ESHUTDOWN) {
		pr_err("zk: team %s: election failed: %s\n", t->path,
		       strerror(-err));
	}
}

static void team_expire(struct zk_obj *o)
{
	struct zk_team *t = (struct zk_team *)o;

	atomic_store(&t->dead, true);
	lose_leadership(t);
}

static void team_destroy(struct zk_obj *o)
{
	struct zk_team *t = (struct zk_team *)o;

	zk_members_free(t->known, t->nknown);
	free(t->self_data);
	free(t->path);
	free(t);
}

int zk_team_join(struct zk *zk, const char *path, const void *data, int len,
		 const struct zk_team_ops *ops, void *arg, struct zk_team **out)
{
	char node[ZK_PATH_MAX], created[ZK_PATH_MAX];
	struct zk_team *t;
	int err;

	*out = NULL;
	err = zk_check_path(path);
	if (!err)
		err = zk_check_len(len);
	if (err)
		return err;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->path = strdup(path);
	t->self_data = malloc(len + 1);
	if (!t->path || !t->self_data) {
		err = -ENOMEM;
		goto err_free;
	}
	if (len)
		memcpy(t->self_data, data, len);
	t->self_data[len] = '\0';
	t->self_len = len;
	if (ops)
		t->ops = *ops;
	t->arg = arg;
	t->track = t->ops.member_joined || t->ops.member_left;

	snprintf(node, sizeof(node), "%s/m-", path);
	err = zk_create_node(zk, node, t->self_data, len,
			     ZOO_EPHEMERAL_SEQUENTIAL, created,
			     sizeof(created));
	if (err) {
		pr_err("zk: cannot join team %s: %s\n", path, strerror(-err));
		goto err_free;
	}
	snprintf(t->self, sizeof(t->self), "%s", strrchr(created, '/') + 1);
	t->self_seq = zk_seq_of(t->self);
	zk_obj_add(zk, &t->obj, team_handle, team_expire, team_destroy);
	zk_obj_kick(&t->obj, true);
	*out = t;
	return 0;

err_free:
	team_destroy(&t->obj);
	return err;
}

void zk_team_leave(struct zk_team *t)
{
	char p[ZK_PATH_MAX];
	int err;

	if (!t)
		return;
	/* Dead first, so the handler does not mourn our own deletion. */
	if (!atomic_exchange(&t->dead, true)) {
		snprintf(p, sizeof(p), "%s/%s", t->path, t->self);
		err = zk_delete(t->obj.zk, p, ZK_ANY_VERSION);
		if (err && err != -ENOENT)
			pr_warn("zk: team %s: cannot delete member %s: %s (it "
				"goes with the session)\n",
				t->path, t->self, strerror(-err));
	}
	zk_obj_remove(&t->obj);
}

bool zk_team_is_leader(struct zk_team *t)
{
	return atomic_load(&t->elected) && !atomic_load(&t->dead) &&
	       zk_connected(t->obj.zk);
}

const char *zk_team_self(struct zk_team *t)
{
	return t->self;
}

uint64_t zk_team_wakeups(struct zk_team *t)
{
	return atomic_load(&t->wakeups);
}
