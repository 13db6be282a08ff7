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

#include "cluster.h"
#include "log.h"
#include "zk.h"

struct seen {
	char node[128];
	uint64_t ver;	 /* of seen/<node>; 0 when absent */
	long long since; /* leader's clock when ver last changed */
	bool mark;
};

struct cluster {
	struct cluster_opts o;
	char members[300];
	char addr[128];

	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct zk_team *team;
	char self[32];
	bool stop;
	pthread_t thread;
	bool thread_started;

	/* Leader state, only touched by the thread. */
	bool leading;
	struct seen *seen;
	size_t nseen, cap;
	long long last_gc;
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
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (c->stop) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	err = zk_team_join(zk, c->members, data, strlen(data), &team_ops, c,
			   &t);
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

static int note_seen(const struct store_rec *r, void *arg)
{
	struct cluster *c = arg;
	struct seen *s = seen_find(c, r->key + strlen("seen/"), true);

	if (s && s->ver != r->version) {
		s->ver = r->version;
		s->since = now_ms();
	}
	return 0;
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

	store_list(c->o.store, "seen/", NULL, 0, note_seen, c);
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
	c->leading = lead;
	if (!lead)
		return;
	liveness(c);
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
	snprintf(c->members, sizeof(c->members), "%s/members",
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
	free(c);
}
