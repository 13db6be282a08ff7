// SPDX-License-Identifier: GPL-2.0-only
/* Learning mode: xvpc_vpcs / xvpc_nodes from the state, notices, aging. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "learn.h"
#include "log.h"
#include "netutil.h"

#define MAX_ERR_LOGS 5

__u64 xvpc_learn_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static __u64 hooks_now(const struct xvpc_learn_hooks *h)
{
	return h && h->now ? h->now(h->ctx) : xvpc_learn_now_ns();
}

static bool is_gateway(const struct xvpc_state_vpc *v, __be32 node_ip)
{
	for (__u32 i = 0; i < v->n_gateways; i++)
		if (node_ip && v->gateways[i] == node_ip)
			return true;
	return false;
}

bool xvpc_learn_vpc_value(const struct xvpc_state_vpc *v, __be32 node_ip,
			  struct xvpc_vpc *out)
{
	memset(out, 0, sizeof(*out));
	if (v->mode != XVPC_MODE_LEARN)
		return false;
	out->flags = XVPC_VPC_LEARN;
	if (is_gateway(v, node_ip))
		out->flags |= XVPC_VPC_GATEWAY;
	out->n_gateways = v->n_gateways < XVPC_MAX_GATEWAYS ? v->n_gateways
							    : XVPC_MAX_GATEWAYS;
	memcpy(out->gateways, v->gateways,
	       out->n_gateways * sizeof(out->gateways[0]));
	return true;
}

bool xvpc_learn_is_notice(const struct xvpc_state *st, __be32 node_ip,
			  const struct xvpc_state_ep *e)
{
	const struct xvpc_state_vpc *v;

	if (node_ip && e->node_ip == node_ip)
		return false;
	v = xvpc_state_find_vpc(st, e->vpc);
	return v && v->mode == XVPC_MODE_LEARN && !is_gateway(v, node_ip);
}

void xvpc_learn_value(struct xvpc_learned *v, const __u8 mac[6], __be32 node_ip,
		      __u32 vni, __u64 now_ns)
{
	memset(v, 0, sizeof(*v));
	memcpy(v->ep.mac, mac, 6);
	v->ep.flags = XVPC_EP_LEARNED | XVPC_EP_RESOLVED;
	v->ep.node_ip = node_ip;
	v->ep.vni = vni;
	v->created_ns = now_ns;
	v->last_ns = now_ns;
}

/* ---- key lists and a small set of endpoint keys ---- */

struct keys {
	unsigned char *p;
	size_t n, cap, size;
};

static int keys_add(struct keys *k, const void *key)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;
		void *p = realloc(k->p, cap * k->size);

		if (!p)
			return -ENOMEM;
		k->p = p;
		k->cap = cap;
	}
	memcpy(k->p + k->n++ * k->size, key, k->size);
	return 0;
}

static __u64 ep_key_u64(const struct xvpc_ep_key *k)
{
	return (__u64)k->vpc_id << 32 | k->ip;
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

/* Sorted (vpc, ip) keys packed in a u64. */
struct xvpc_learn_notices {
	__u64 *k;
	size_t n;
};

struct xvpc_learn_notices *xvpc_learn_notices_new(void)
{
	return calloc(1, sizeof(struct xvpc_learn_notices));
}

void xvpc_learn_notices_free(struct xvpc_learn_notices *n)
{
	if (n)
		free(n->k);
	free(n);
}

static bool u64_in(const __u64 *a, size_t n, __u64 x)
{
	return bsearch(&x, a, n, sizeof(*a), cmp_u64) != NULL;
}

/* ---- xvpc_vpcs and xvpc_nodes ---- */

struct xvpc_learn_plan {
	struct keys vpc_del;   /* __u32 vpc ids to remove */
	struct keys vpc_flush; /* __u32 vpc ids whose learned go */
};

void xvpc_learn_plan_free(struct xvpc_learn_plan *plan)
{
	if (!plan)
		return;
	free(plan->vpc_del.p);
	free(plan->vpc_flush.p);
	free(plan);
}

struct have_vpcs {
	struct keys keys; /* __u32 */
	struct keys vals; /* struct xvpc_vpc */
};

static int have_vpc_cb(const void *key, const void *val, void *arg)
{
	struct have_vpcs *h = arg;

	return keys_add(&h->keys, key) ?: keys_add(&h->vals, val);
}

static int vpcs_pre(struct xvpc_mapbe *m, const struct xvpc_state *st,
		    __be32 node_ip, struct xvpc_learn_stats *s,
		    struct xvpc_learn_plan *plan)
{
	struct have_vpcs h = {.keys = {.size = sizeof(__u32)},
			      .vals = {.size = sizeof(struct xvpc_vpc)}};
	int err, first = 0;

	err = m->ops->iterate(m, have_vpc_cb, &h);
	if (err) {
		pr_err("learn: reading map %s failed: %s", m->name,
		       strerror(-err));
		goto out;
	}
	for (size_t i = 0; i < h.keys.n; i++) {
		__u32 id = ((__u32 *)h.keys.p)[i];
		const struct xvpc_vpc *old =
			(const struct xvpc_vpc *)h.vals.p + i;
		const struct xvpc_state_vpc *v = xvpc_state_find_vpc(st, id);
		struct xvpc_vpc want;

		if (v && xvpc_learn_vpc_value(v, node_ip, &want))
			continue;
		err = keys_add(&plan->vpc_del, &id);
		if (!err && (old->flags & XVPC_VPC_LEARN))
			err = keys_add(&plan->vpc_flush, &id);
		if (err)
			goto out;
	}
	for (size_t i = 0; i < st->n_vpcs; i++) {
		const struct xvpc_state_vpc *v = &st->vpcs[i];
		struct xvpc_vpc want, old;

		if (!xvpc_learn_vpc_value(v, node_ip, &want))
			continue;
		if (!m->ops->lookup(m, &v->id, &old) &&
		    !memcmp(&old, &want, sizeof(want)))
			continue;
		err = m->ops->update(m, &v->id, &want);
		if (err) {
			if (s->failed++ < MAX_ERR_LOGS)
				pr_err("learn: writing vpc %u to %s failed: "
				       "%s",
				       v->id, m->name, strerror(-err));
			if (!first)
				first = err;
			continue;
		}
		s->vpcs_written++;
	}
	err = first;
out:
	free(h.keys.p);
	free(h.vals.p);
	return err;
}

struct have_nodes {
	struct keys keys; /* __be32 */
};

static int have_node_cb(const void *key, const void *val, void *arg)
{
	(void)val;
	return keys_add(&((struct have_nodes *)arg)->keys, key);
}

static bool state_has_node(const struct xvpc_state *st, __be32 ip)
{
	for (size_t i = 0; i < st->n_nodes; i++)
		if (st->nodes[i] == ip)
			return true;
	return false;
}

static int nodes_sync(struct xvpc_mapbe *m, const struct xvpc_state *st,
		      struct xvpc_learn_stats *s)
{
	struct have_nodes h = {.keys = {.size = sizeof(__be32)}};
	const struct xvpc_node val = {0};
	int err, first = 0;

	err = m->ops->iterate(m, have_node_cb, &h);
	if (err) {
		pr_err("learn: reading map %s failed: %s", m->name,
		       strerror(-err));
		goto out;
	}
	/* Adds first: a member is never missing while another is written. */
	for (size_t i = 0; i < st->n_nodes; i++) {
		struct xvpc_node old;

		if (!m->ops->lookup(m, &st->nodes[i], &old))
			continue;
		err = m->ops->update(m, &st->nodes[i], &val);
		if (err) {
			char ip[XVPC_IP_STRLEN];

			if (s->failed++ < MAX_ERR_LOGS)
				pr_err("learn: writing node %s to %s failed: "
				       "%s",
				       xvpc_fmt_ip(st->nodes[i], ip), m->name,
				       strerror(-err));
			first = first ?: err;
			continue;
		}
		s->nodes_written++;
	}
	for (size_t i = 0; i < h.keys.n; i++) {
		__be32 ip = ((__be32 *)h.keys.p)[i];

		if (state_has_node(st, ip))
			continue;
		err = m->ops->delete (m, &ip);
		if (err && err != -ENOENT) {
			s->failed++;
			first = first ?: err;
			continue;
		}
		s->nodes_removed++;
	}
	err = first;
out:
	free(h.keys.p);
	return err;
}

int xvpc_learn_sync_pre(struct xvpc_mapbe *vpcs, struct xvpc_mapbe *nodes,
			const struct xvpc_state *st, __be32 node_ip,
			struct xvpc_learn_stats *s,
			struct xvpc_learn_plan **plan)
{
	int err = 0, e2 = 0;

	*plan = calloc(1, sizeof(**plan));
	if (!*plan)
		return -ENOMEM;
	(*plan)->vpc_del.size = sizeof(__u32);
	(*plan)->vpc_flush.size = sizeof(__u32);
	if (vpcs)
		err = vpcs_pre(vpcs, st, node_ip, s, *plan);
	if (nodes)
		e2 = nodes_sync(nodes, st, s);
	return err ?: e2;
}

/* ---- flush, notices, aging ---- */

struct collect {
	struct keys keys;
	__u32 vpc;
	bool all;
	__u64 now, idle;
};

static int flush_cb(const void *key, const void *val, void *arg)
{
	const struct xvpc_ep_key *k = key;
	struct collect *c = arg;

	(void)val;
	if (!c->all && k->vpc_id != c->vpc)
		return 0;
	return keys_add(&c->keys, key);
}

static long delete_keys(struct xvpc_mapbe *m, struct keys *k)
{
	__u32 n = k->n;
	int err;

	if (!n)
		return 0;
	err = m->ops->delete_batch(m, k->p, &n);
	return err ? err : (long)k->n;
}

long xvpc_learn_flush(struct xvpc_mapbe *learned, __u32 vpc, bool all)
{
	struct collect c = {.keys = {.size = sizeof(struct xvpc_ep_key)},
			    .vpc = vpc,
			    .all = all};
	long ret = learned->ops->iterate(learned, flush_cb, &c);

	if (!ret)
		ret = delete_keys(learned, &c.keys);
	free(c.keys.p);
	return ret;
}

static int age_cb(const void *key, const void *val, void *arg)
{
	const struct xvpc_learned *v = val;
	struct collect *c = arg;

	if (v->last_ns >= c->now || c->now - v->last_ns <= c->idle)
		return 0;
	return keys_add(&c->keys, key);
}

long xvpc_learn_age(struct xvpc_mapbe *learned, __u64 now_ns, __u64 idle_ns,
		    const struct xvpc_learn_hooks *hooks)
{
	struct collect c = {.keys = {.size = sizeof(struct xvpc_ep_key)},
			    .now = now_ns,
			    .idle = idle_ns};
	long ret = learned->ops->iterate(learned, age_cb, &c);

	if (!ret)
		ret = delete_keys(learned, &c.keys);
	for (size_t i = 0; ret > 0 && hooks && hooks->changed && i < c.keys.n;
	     i++)
		hooks->changed(hooks->ctx,
			       (const struct xvpc_ep_key *)c.keys.p + i, NULL);
	free(c.keys.p);
	return ret;
}

/* A notice for an entry this node holds: point it at the new place. */
static int notice_move(struct xvpc_mapbe *learned,
		       const struct xvpc_learn_hooks *hooks,
		       const struct xvpc_state *st,
		       const struct xvpc_state_ep *e,
		       struct xvpc_learn_stats *s)
{
	const struct xvpc_state_subnet *sn;
	struct xvpc_ep_key k = {.vpc_id = e->vpc, .ip = e->ip};
	struct xvpc_learned old, v;
	int err;

	if (learned->ops->lookup(learned, &k, &old))
		return 0; /* not held: nothing to correct */
	sn = xvpc_state_find_subnet(st, e->vpc, e->ip);
	if (!sn)
		return 0;
	if (old.ep.node_ip == e->node_ip && old.ep.vni == sn->vni &&
	    !memcmp(old.ep.mac, e->mac, 6) && !(old.ep.flags & XVPC_EP_NOMAC))
		return 0;
	xvpc_learn_value(&v, e->mac, e->node_ip, sn->vni, hooks_now(hooks));
	v.created_ns = old.created_ns;
	v.hits = old.hits;
	err = learned->ops->update(learned, &k, &v);
	if (err)
		return err;
	s->moved++;
	if (hooks && hooks->changed)
		hooks->changed(hooks->ctx, &k, &v.ep);
	return 0;
}

static int notices_apply(struct xvpc_mapbe *learned,
			 struct xvpc_learn_notices *held,
			 const struct xvpc_learn_hooks *hooks,
			 const struct xvpc_state *st, __be32 node_ip,
			 struct xvpc_learn_stats *s)
{
	__u64 *now = NULL;
	size_t n = 0;
	int first = 0;

	for (size_t i = 0; i < st->n_eps; i++) {
		const struct xvpc_state_ep *e = &st->eps[i];
		int err;

		if (!xvpc_learn_is_notice(st, node_ip, e))
			continue;
		if (held && !(n & (n + 1))) {
			__u64 *p = realloc(now, (n + 1) * 2 * sizeof(*p));

			if (!p) {
				free(now);
				return -ENOMEM;
			}
			now = p;
		}
		if (held) {
			struct xvpc_ep_key k = {.vpc_id = e->vpc, .ip = e->ip};

			now[n++] = ep_key_u64(&k);
		}
		err = learned ? notice_move(learned, hooks, st, e, s) : 0;
		if (err) {
			s->failed++;
			first = first ?: err;
		}
	}
	if (!held)
		return first;
	qsort(now, n, sizeof(*now), cmp_u64);
	/* A notice that left the state: the endpoint was deleted. */
	for (size_t i = 0; learned && i < held->n; i++) {
		struct xvpc_ep_key k = {.vpc_id = held->k[i] >> 32,
					.ip = (__be32)held->k[i]};

		if (u64_in(now, n, held->k[i]))
			continue;
		if (!learned->ops->delete (learned, &k)) {
			s->forgotten++;
			if (hooks && hooks->changed)
				hooks->changed(hooks->ctx, &k, NULL);
		}
	}
	free(held->k);
	held->k = now;
	held->n = n;
	return first;
}

int xvpc_learn_sync_post(struct xvpc_learn_plan *plan, struct xvpc_mapbe *vpcs,
			 struct xvpc_mapbe *learned,
			 struct xvpc_learn_notices *notices,
			 const struct xvpc_learn_hooks *hooks,
			 const struct xvpc_state *st, __be32 node_ip,
			 struct xvpc_learn_stats *s)
{
	int first = 0, err;

	for (size_t i = 0; plan && vpcs && i < plan->vpc_del.n; i++) {
		__u32 id = ((__u32 *)plan->vpc_del.p)[i];

		err = vpcs->ops->delete (vpcs, &id);
		if (err && err != -ENOENT) {
			s->failed++;
			first = first ?: err;
			continue;
		}
		s->vpcs_removed++;
	}
	for (size_t i = 0; plan && learned && i < plan->vpc_flush.n; i++) {
		__u32 id = ((__u32 *)plan->vpc_flush.p)[i];
		long n = xvpc_learn_flush(learned, id, false);

		if (n < 0) {
			pr_err("learn: flushing the learned entries of vpc %u "
			       "failed: %s",
			       id, strerror((int)-n));
			s->failed++;
			first = first ?: (int)n;
			continue;
		}
		s->flushed += n;
		pr_info("vpc %u left learn mode: %ld learned entries flushed",
			id, n);
		if (hooks && hooks->flushed)
			hooks->flushed(hooks->ctx, id);
	}
	xvpc_learn_plan_free(plan);
	err = notices_apply(learned, notices, hooks, st, node_ip, s);
	return first ?: err;
}
