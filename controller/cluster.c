// SPDX-License-Identifier: GPL-2.0-only
/* Team membership, leader election and the leader's duties (cluster.h). */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloc.h"
#include "api.h"
#include "cluster.h"
#include "gateways.h"
#include "lbhealth.h"
#include "log.h"
#include "zk_priv.h"

struct seen {
	char node[128];
	long long since; /* leader's clock when last reported alive */
};

/* A member's live/<member> record as the leader last read it. */
struct live_rec {
	char member[64];
	int64_t mzxid;
};

struct cluster {
	struct cluster_opts o;
	char members[300];
	char addr[128];

	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct zk_team *team;
	char self[32];
	struct zk *zk; /* the store's session; NULL while none */
	char live_dir[300];
	bool stop;
	pthread_t thread;
	bool thread_started;

	/* Leader state, only touched by the thread. */
	bool leading;
	struct seen *seen;
	size_t nseen, cap;
	long long last_gc;
	uint64_t gw_rev; /* store revision the gateways were checked at */
	uint64_t hc_rev; /* and the health reports swept at */
	struct live_rec *live;
	size_t nlive, live_cap;
	long long last_publish;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Runs on the session's event thread: no cluster lock here (zk_team_join
 * waits for the first election while holding it). */
static void leader_changed(struct zk_team *t, const struct zk_member *leader,
			   bool is_self, void *arg)
{
	struct cluster *c = arg;

	if (is_self)
		pr_info("cluster: this member (%s, API %s) now leads",
			zk_team_self(t), c->o.api_addr ?: "");
	else if (!leader)
		pr_warn("cluster: leadership lost with the ZooKeeper session");
}

static const struct zk_team_ops team_ops = {
	.leader_changed = leader_changed,
};

static void on_session(struct zk *zk, void *arg)
{
	struct cluster *c = arg;
	const char *data = c->o.api_addr ?: "";
	struct zk_team *t = NULL;
	int err;

	pthread_mutex_lock(&c->mu);
	if (!zk) {
		/* The store closes the session, and the team with it. */
		c->team = NULL;
		c->self[0] = '\0';
		c->zk = NULL;
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (c->stop) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	err = zk_team_join(zk, c->members, data, strlen(data), &team_ops, c,
			   &t);
	c->zk = zk;
	if (err) {
		pr_err("cluster: cannot join the team %s: %s", c->members,
		       strerror(-err));
	} else {
		c->team = t;
		snprintf(c->self, sizeof(c->self), "%s", zk_team_self(t));
		pr_info("cluster: joined as %s (API %s), %s", c->self, data,
			zk_team_is_leader(t) ? "leader" : "follower");
	}
	pthread_mutex_unlock(&c->mu);
}

bool cluster_is_leader(struct cluster *c)
{
	bool lead;

	if (!c->o.zookeeper)
		return true;
	pthread_mutex_lock(&c->mu);
	lead = c->team && zk_team_is_leader(c->team);
	pthread_mutex_unlock(&c->mu);
	return lead;
}

void cluster_self(struct cluster *c, char *buf, size_t len)
{
	pthread_mutex_lock(&c->mu);
	snprintf(buf, len, "%s", c->self);
	pthread_mutex_unlock(&c->mu);
}

/* ---- node liveness ---------------------------------------------------- */

static struct seen *seen_find(struct cluster *c, const char *node, bool add)
{
	struct seen *s;

	for (size_t i = 0; i < c->nseen; i++)
		if (!strcmp(c->seen[i].node, node))
			return &c->seen[i];
	if (!add)
		return NULL;
	if (c->nseen == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;

		s = realloc(c->seen, cap * sizeof(*s));
		if (!s)
			return NULL;
		c->seen = s;
		c->cap = cap;
	}
	s = &c->seen[c->nseen++];
	memset(s, 0, sizeof(*s));
	snprintf(s->node, sizeof(s->node), "%s", node);
	s->since = now_ms();
	return s;
}

static void mark_alive(const char *node, void *arg)
{
	struct cluster *c = arg;
	struct seen *s = seen_find(c, node, true);

	if (s)
		s->since = now_ms();
}

/* How often a member reports the nodes polling it, and how far back a
 * poll counts: a third of the down time, so one late report cannot mark
 * a node down. */
static long long live_every_ms(const struct cluster *c)
{
	long long every = c->o.down_after_s * 1000LL / 3;

	return every < API_SEEN_EVERY_MS ? every : API_SEEN_EVERY_MS;
}

static void add_name(const char *node, void *arg)
{
	json_object_array_add(arg, json_object_new_string(node));
}

/* ZooKeeper: every member writes the nodes polling it into its ephemeral
 * <root>/live/<member> record, outside the store (no revision, no change
 * feed): one write per member every live_every_ms. */
static void publish_live(struct cluster *c)
{
	json_object *arr;
	const char *val;
	char path[400];
	int err;

	if (!c->o.api || now_ms() - c->last_publish < live_every_ms(c))
		return;
	c->last_publish = now_ms();
	arr = json_object_new_array();
	api_live_nodes(c->o.api, 2 * live_every_ms(c), add_name, arr);
	val = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN);
	pthread_mutex_lock(&c->mu);
	if (!c->zk || !c->self[0]) {
		err = -ENOTCONN;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", c->live_dir, c->self);
	err = zk_put(c->zk, path, val, strlen(val), ZK_ANY_VERSION, NULL);
	if (err == -ENOENT)
		err = zk_create_node(c->zk, path, val, strlen(val),
				     ZOO_EPHEMERAL, NULL, 0);
out:
	pthread_mutex_unlock(&c->mu);
	if (err)
		pr_debug("cluster: cannot report the nodes polling this "
			 "member: %s",
			 strerror(-err));
	json_object_put(arr);
}

static struct live_rec *live_find(struct cluster *c, const char *member)
{
	struct live_rec *l;

	for (size_t i = 0; i < c->nlive; i++)
		if (!strcmp(c->live[i].member, member))
			return &c->live[i];
	if (c->nlive == c->live_cap) {
		size_t cap = c->live_cap ? 2 * c->live_cap : 8;

		l = realloc(c->live, cap * sizeof(*l));
		if (!l)
			return NULL;
		c->live = l;
		c->live_cap = cap;
	}
	l = &c->live[c->nlive++];
	memset(l, 0, sizeof(*l));
	snprintf(l->member, sizeof(l->member), "%s", member);
	return l;
}

/* The leader, on ZooKeeper: the nodes in every member's live record that
 * was rewritten since the last look are alive now. */
static void collect_live(struct cluster *c)
{
	char **names = NULL, path[400], *val;
	struct zk_stat st;
	int n = 0, len, err;

	pthread_mutex_lock(&c->mu);
	err = c->zk ? zk_children(c->zk, c->live_dir, &names, &n) : -ENOTCONN;
	for (int i = 0; !err && i < n; i++) {
		struct live_rec *l = live_find(c, names[i]);
		json_object *arr;

		snprintf(path, sizeof(path), "%s/%s", c->live_dir, names[i]);
		if (!l || zk_get(c->zk, path, &val, &len, &st))
			continue;
		if (st.mzxid != l->mzxid) {
			l->mzxid = st.mzxid;
			arr = json_tokener_parse(val);
			for (size_t j = 0;
			     json_object_is_type(arr, json_type_array) &&
			     j < json_object_array_length(arr);
			     j++)
				mark_alive(json_object_get_string(
						   json_object_array_get_idx(
							   arr, j)),
					   c);
			json_object_put(arr);
		}
		free(val);
	}
	pthread_mutex_unlock(&c->mu);
	zk_strings_free(names, n);
	if (err && err != -ENOENT)
		pr_debug("cluster: cannot read the members' live records: %s",
			 strerror(-err));
}

struct node_list {
	char **keys;
	size_t n, cap;
};

static int note_node(const struct store_rec *r, void *arg)
{
	struct node_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		char **k = realloc(l->keys, cap * sizeof(*k));

		if (!k)
			return -ENOMEM;
		l->keys = k;
		l->cap = cap;
	}
	l->keys[l->n] = strdup(r->key);
	if (!l->keys[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

/* Writes status into node/<name> when it differs. */
static void set_status(struct cluster *c, const char *key, bool up)
{
	const char *want = up ? "up" : "down", *have = NULL;
	struct store_op op = {STORE_PUT, key, NULL, 0, 0};
	json_object *o = NULL, *v;
	char *val = NULL;
	int err;

	if (store_get(c->o.store, key, &val, &op.expect))
		return;
	o = json_tokener_parse(val);
	if (!o || !json_object_is_type(o, json_type_object))
		goto out;
	if (json_object_object_get_ex(o, "status", &v))
		have = json_object_get_string(v);
	if (have && !strcmp(have, want))
		goto out;
	json_object_object_add(o, "status", json_object_new_string(want));
	op.val = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	op.len = strlen(op.val);
	err = store_txn(c->o.store, &op, 1, NULL, NULL);
	if (err)
		pr_debug("cluster: cannot mark %s %s: %s", key, want,
			 strerror(-err));
	else
		pr_info("cluster: %s is %s", key + strlen("node/"), want);
out:
	json_object_put(o);
	free(val);
}

static void liveness(struct cluster *c)
{
	struct node_list l = {0};
	long long now = now_ms(), limit = c->o.down_after_s * 1000LL;

	if (!c->o.api)
		return;
	if (c->o.zookeeper)
		collect_live(c);
	else
		api_live_nodes(c->o.api, c->o.tick_ms, mark_alive, c);
	if (store_list(c->o.store, "node/", NULL, 0, note_node, &l))
		goto out;
	for (size_t i = 0; i < l.n; i++) {
		struct seen *s =
			seen_find(c, l.keys[i] + strlen("node/"), true);

		if (s)
			set_status(c, l.keys[i], now - s->since <= limit);
	}
out:
	for (size_t i = 0; i < l.n; i++)
		free(l.keys[i]);
	free(l.keys);
}

/* Re-designates gateways when anything changed since the last look (node
 * status, nodes, VPCs: all move the revision). */
static void gateways(struct cluster *c)
{
	uint64_t rev = store_revision(c->o.store);
	int changed, err;

	if (rev == c->gw_rev)
		return;
	err = gw_designate_all(c->o.store, c->o.vpc_gateways, &changed);
	if (err) {
		pr_debug("cluster: cannot designate gateways: %s",
			 strerror(-err));
		return;
	}
	/* Our own commits moved it on: look once more next tick. */
	c->gw_rev = changed ? 0 : rev;
}

/* Clears stale backend health reports (lbhealth.h) when anything changed
 * since the last look. */
static void health_sweep(struct cluster *c)
{
	uint64_t rev = store_revision(c->o.store);
	int removed, err;

	if (rev == c->hc_rev)
		return;
	err = lbh_sweep(c->o.store, &removed);
	if (err)
		pr_debug("cluster: cannot sweep health reports: %s",
			 strerror(-err));
	/* Our own commits moved it on: look once more next tick. */
	c->hc_rev = err || removed ? 0 : rev;
}

static void tick(struct cluster *c)
{
	bool lead = cluster_is_leader(c);
	int deleted, err;

	if (lead && !c->leading) {
		/* A new leader has no history: every node gets the full
		 * grace period from now. */
		for (size_t i = 0; i < c->nseen; i++)
			c->seen[i].since = now_ms();
		c->last_gc = now_ms();
	} else if (!lead && c->leading) {
		pr_info("cluster: no longer the leader");
	}
	if (c->o.zookeeper)
		publish_live(c);
	c->leading = lead;
	if (!lead)
		return;
	liveness(c);
	gateways(c);
	health_sweep(c);
	if (c->o.zookeeper &&
	    now_ms() - c->last_gc >= c->o.gc_every_s * 1000LL) {
		c->last_gc = now_ms();
		err = store_zk_gc(c->o.store, c->o.gc_keep, &deleted);
		if (err)
			pr_debug("cluster: bus garbage collection: %s",
				 strerror(-err));
		else if (deleted)
			pr_debug("cluster: collected %d bus messages", deleted);
	}
}

static void *cluster_main(void *arg)
{
	struct cluster *c = arg;
	struct timespec ts;

	xvpc_use_c_locale();

	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		pthread_mutex_unlock(&c->mu);
		tick(c);
		pthread_mutex_lock(&c->mu);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += c->o.tick_ms / 1000;
		ts.tv_nsec += (long)(c->o.tick_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		if (!c->stop)
			pthread_cond_timedwait(&c->cond, &c->mu, &ts);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int cluster_start(const struct cluster_opts *opts, struct cluster **out)
{
	pthread_condattr_t ca;
	struct cluster *c;
	int err;

	*out = NULL;
	if (!opts->store)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->o = *opts;
	snprintf(c->addr, sizeof(c->addr), "%s", opts->api_addr ?: "");
	c->o.api_addr = c->addr;
	if (!c->o.down_after_s)
		c->o.down_after_s = 15;
	if (!c->o.tick_ms)
		c->o.tick_ms = 1000;
	if (!c->o.gc_keep)
		c->o.gc_keep = 2000;
	if (!c->o.gc_every_s)
		c->o.gc_every_s = 5;
	if (!c->o.vpc_gateways)
		c->o.vpc_gateways = GW_DEFAULT;
	snprintf(c->members, sizeof(c->members), "%s/members",
		 opts->root ?: "/xvpc");
	snprintf(c->live_dir, sizeof(c->live_dir), "%s/live",
		 opts->root ?: "/xvpc");
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (c->o.zookeeper)
		store_zk_watch_session(c->o.store, on_session, c);
	err = pthread_create(&c->thread, NULL, cluster_main, c);
	if (err) {
		cluster_stop(c);
		return -err;
	}
	c->thread_started = true;
	*out = c;
	return 0;
}

void cluster_stop(struct cluster *c)
{
	struct zk_team *t;

	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->mu);
	if (c->thread_started)
		pthread_join(c->thread, NULL);
	if (c->o.zookeeper)
		store_zk_watch_session(c->o.store, NULL, NULL);
	/* Leaving hands the leadership to the next member at once. Under
	 * the lock, so the store cannot close the session meanwhile. */
	pthread_mutex_lock(&c->mu);
	t = c->team;
	c->team = NULL;
	if (t)
		zk_team_leave(t);
	pthread_mutex_unlock(&c->mu);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->mu);
	free(c->seen);
	free(c->live);
	free(c);
}
