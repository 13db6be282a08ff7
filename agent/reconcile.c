// SPDX-License-Identifier: GPL-2.0-only
/* Reconciliation: desired state -> map contents, applied as a diff. */
#include <errno.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "netutil.h"
#include "reconcile.h"

#define DEFAULT_CHUNK 4096
#define MAX_ERR_LOGS  5

static const char *const rc_names[XVPC_RC__COUNT] = {
	[XVPC_RC_VNIS] = "vnis",
	[XVPC_RC_SUBNETS] = "subnets",
	[XVPC_RC_ENDPOINTS] = "endpoints",
	[XVPC_RC_IFACES] = "ifaces",
};

static const __u32 rc_key_size[XVPC_RC__COUNT] = {
	[XVPC_RC_VNIS] = sizeof(__u32),
	[XVPC_RC_SUBNETS] = sizeof(struct xvpc_subnet_key),
	[XVPC_RC_ENDPOINTS] = sizeof(struct xvpc_ep_key),
	[XVPC_RC_IFACES] = sizeof(__u32),
};

static const __u32 rc_val_size[XVPC_RC__COUNT] = {
	[XVPC_RC_VNIS] = sizeof(struct xvpc_vni),
	[XVPC_RC_SUBNETS] = sizeof(struct xvpc_subnet),
	[XVPC_RC_ENDPOINTS] = sizeof(struct xvpc_ep),
	[XVPC_RC_IFACES] = sizeof(struct xvpc_iface),
};

const char *xvpc_rc_map_name(enum xvpc_rc_map id)
{
	return id < XVPC_RC__COUNT ? rc_names[id] : "?";
}

/* Packed records: key then value. */
struct recs {
	unsigned char *data;
	size_t n, cap;
	size_t ksz, vsz;
};

static void recs_init(struct recs *r, size_t ksz, size_t vsz)
{
	memset(r, 0, sizeof(*r));
	r->ksz = ksz;
	r->vsz = vsz;
}

static unsigned char *rec_at(const struct recs *r, size_t i)
{
	return r->data + i * (r->ksz + r->vsz);
}

static int recs_reserve(struct recs *r, size_t want)
{
	void *p;

	if (want <= r->cap)
		return 0;
	p = realloc(r->data, want * (r->ksz + r->vsz));
	if (!p)
		return -ENOMEM;
	r->data = p;
	r->cap = want;
	return 0;
}

static int recs_add(struct recs *r, const void *key, const void *val)
{
	unsigned char *p;

	if (r->n == r->cap && recs_reserve(r, r->cap ? r->cap * 2 : 256))
		return -ENOMEM;
	p = rec_at(r, r->n++);
	memcpy(p, key, r->ksz);
	memcpy(p + r->ksz, val, r->vsz);
	return 0;
}

/* memcmp with a constant size for the sizes we use, so it is inlined. */
static inline bool bytes_eq(const void *a, const void *b, size_t n)
{
	switch (n) {
	case 4:
		return !memcmp(a, b, 4);
	case 8:
		return !memcmp(a, b, 8);
	case 12:
		return !memcmp(a, b, 12);
	case 20:
		return !memcmp(a, b, 20);
	case 28:
		return !memcmp(a, b, 28);
	default:
		return !memcmp(a, b, n);
	}
}

/* Hash index over the keys of a recs: slots hold index + 1. */
struct index {
	__u32 *slots;
	size_t mask;
};

static __u64 hash_key(const void *p, size_t len)
{
	__u64 h = 0x9e3779b97f4a7c15ull;

	/* Keys are whole 32-bit words. */
	for (size_t i = 0; i + 4 <= len; i += 4) {
		__u32 w;

		memcpy(&w, (const unsigned char *)p + i, 4);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
	}
	return h ^ (h >> 32);
}

static int index_build(struct index *ix, const struct recs *r)
{
	size_t cap = 64;

	while (cap < r->n * 2)
		cap *= 2;
	ix->slots = calloc(cap, sizeof(*ix->slots));
	if (!ix->slots)
		return -ENOMEM;
	ix->mask = cap - 1;
	for (size_t i = 0; i < r->n; i++) {
		size_t h = hash_key(rec_at(r, i), r->ksz) & ix->mask;

		while (ix->slots[h])
			h = (h + 1) & ix->mask;
		ix->slots[h] = i + 1;
	}
	return 0;
}

/* Index of key in r, or -1. */
static long index_find(const struct index *ix, const struct recs *r,
		       const void *key)
{
	size_t h = hash_key(key, r->ksz) & ix->mask;

	for (; ix->slots[h]; h = (h + 1) & ix->mask)
		if (bytes_eq(rec_at(r, ix->slots[h] - 1), key, r->ksz))
			return ix->slots[h] - 1;
	return -1;
}

/* ---- cache of what the maps hold ---- */

/* The desired state the maps were last brought to, as far as the quick
 * path compares it: what it did not compare (services) is not in the maps. */
struct prev {
	struct xvpc_state_vpc *vpcs;
	struct xvpc_state_subnet *subnets;
	struct xvpc_state_ep *eps;
	__be32 *nodes;
	size_t n_vpcs, n_subnets, n_eps, n_nodes, cap_eps;
	__be32 node_ip;
	__u64 pending, notices;
	bool valid;
};

struct xvpc_rc_cache {
	struct recs have[XVPC_RC__COUNT];
	bool valid;
	struct prev prev;
	struct index ep_ix; /* over have[XVPC_RC_ENDPOINTS]; slots NULL: none */
	unsigned int quick_runs; /* since the last full run */
};

struct xvpc_rc_cache *xvpc_rc_cache_new(void)
{
	return calloc(1, sizeof(struct xvpc_rc_cache));
}

static void prev_free(struct prev *p)
{
	free(p->vpcs);
	free(p->subnets);
	free(p->eps);
	free(p->nodes);
	memset(p, 0, sizeof(*p));
}

void xvpc_rc_cache_invalidate(struct xvpc_rc_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < XVPC_RC__COUNT; i++) {
		free(c->have[i].data);
		memset(&c->have[i], 0, sizeof(c->have[i]));
	}
	prev_free(&c->prev);
	free(c->ep_ix.slots);
	memset(&c->ep_ix, 0, sizeof(c->ep_ix));
	c->quick_runs = 0;
	c->valid = false;
}

void xvpc_rc_cache_free(struct xvpc_rc_cache *c)
{
	xvpc_rc_cache_invalidate(c);
	free(c);
}

/* ---- desired contents ---- */

struct plan {
	struct recs want[XVPC_RC__COUNT];
	struct recs have[XVPC_RC__COUNT];
	/* The diff: keys+values to write (with whether each is new), keys to
	 * remove. */
	struct recs upd[XVPC_RC__COUNT];
	bool *upd_new[XVPC_RC__COUNT];
	struct recs del[XVPC_RC__COUNT];
	struct recs kept[XVPC_RC__COUNT]; /* learned entries left alone */
	__u32 upd_done[XVPC_RC__COUNT];	  /* applied so far (for the retry) */
};

static int env_ifindex(const struct xvpc_rc_env *env, const char *ifname)
{
	unsigned int idx;

	if (env->ifindex)
		return env->ifindex(env->ctx, ifname);
	idx = if_nametoindex(ifname);
	return idx ? (int)idx : -ENODEV;
}

static int build_want(struct plan *p, const struct xvpc_rc_env *env,
		      const struct xvpc_state *st, struct xvpc_rc_result *res)
{
	struct recs *w = p->want;
	int err;

	err = recs_reserve(&w[XVPC_RC_VNIS], st->n_subnets) ?:
	      recs_reserve(&w[XVPC_RC_SUBNETS], st->n_subnets) ?:
	      recs_reserve(&w[XVPC_RC_ENDPOINTS], st->n_eps);
	if (err)
		return err;
	for (size_t i = 0; i < st->n_subnets; i++) {
		const struct xvpc_state_subnet *s = &st->subnets[i];
		struct xvpc_subnet_key sk = {
			.prefixlen = 32 + s->plen,
			.vpc_id = s->vpc,
			.addr = s->net,
		};
		struct xvpc_subnet sv = {
			.vni = s->vni,
			.gw_ip = s->gw_ip,
			.plen = s->plen,
			.net = s->net,
		};
		struct xvpc_vni vv = {.vpc_id = s->vpc};
		__u32 vni = s->vni;

		memcpy(sv.gw_mac, s->gw_mac, 6);
		err = recs_add(&w[XVPC_RC_SUBNETS], &sk, &sv)
			      ?: recs_add(&w[XVPC_RC_VNIS], &vni, &vv);
		if (err)
			return err;
	}

	for (size_t i = 0; i < st->n_eps; i++) {
		const struct xvpc_state_ep *e = &st->eps[i];
		const struct xvpc_state_subnet *s;
		struct xvpc_ep_key ek = {.vpc_id = e->vpc, .ip = e->ip};
		struct xvpc_ep ev = {.node_ip = e->node_ip};
		char ip[XVPC_IP_STRLEN];

		s = xvpc_state_find_subnet(st, e->vpc, e->ip);
		if (!s)
			return -EINVAL; /* not validated */
		if (xvpc_learn_is_notice(st, env->node_ip, e)) {
			res->notices++;
			continue;
		}
		memcpy(ev.mac, e->mac, 6);
		ev.vni = s->vni;
		if (env->node_ip && e->node_ip == env->node_ip) {
			struct xvpc_iface b = {
				.vpc_id = e->vpc,
				.ip = e->ip,
				.vni = s->vni,
			};
			int idx = env_ifindex(env, e->ifname);
			__u32 key;

			if (idx <= 0) {
				res->pending++;
				pr_debug("endpoint vpc %u %s: interface %s not "
					 "found (%s), left pending",
					 e->vpc, xvpc_fmt_ip(e->ip, ip),
					 e->ifname,
					 strerror(idx ? -idx : ENODEV));
				continue;
			}
			key = idx;
			memcpy(b.mac, e->mac, 6);
			b.gw_ip = s->gw_ip;
			memcpy(b.gw_mac, s->gw_mac, 6);
			ev.flags = XVPC_EP_LOCAL;
			ev.ifindex = idx;
			err = recs_add(&w[XVPC_RC_IFACES], &key, &b);
			if (err)
				return err;
		}
		err = recs_add(&w[XVPC_RC_ENDPOINTS], &ek, &ev);
		if (err)
			return err;
	}
	return 0;
}

static int have_cb(const void *key, const void *val, void *arg)
{
	return recs_add(arg, key, val);
}

/* ---- diff ---- */

static int diff_map(struct plan *p, enum xvpc_rc_map id,
		    struct xvpc_rc_map_stats *ms)
{
	struct recs *want = &p->want[id], *have = &p->have[id];
	struct index hix = {0}, wix = {0};
	bool *seen = NULL;
	size_t nnew = 0;
	int err;

	err = index_build(&hix, have) ?: index_build(&wix, want);
	if (err)
		goto out;
	seen = calloc(have->n + 1, sizeof(*seen));
	p->upd_new[id] = calloc(want->n + 1, sizeof(bool));
	if (!seen || !p->upd_new[id]) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < want->n; i++) {
		const unsigned char *w = rec_at(want, i);
		long h = index_find(&hix, have, w);

		/* Duplicate desired key (two endpoints on one interface):
		 * the first one wins. */
		if (index_find(&wix, want, w) != (long)i) {
			char ip[XVPC_IP_STRLEN];

			if (id == XVPC_RC_IFACES)
				pr_warn("ifindex %u is named by two local "
					"endpoints; %s keeps the first",
					*(const __u32 *)w,
					xvpc_fmt_ip(
						((const struct xvpc_iface *)(w +
									     4))
							->ip,
						ip));
			continue;
		}
		if (h >= 0) {
			seen[h] = true;
			if (bytes_eq(rec_at(have, h) + have->ksz, w + want->ksz,
				     want->vsz)) {
				ms->unchanged++;
				continue;
			}
		}
		p->upd_new[id][p->upd[id].n] = h < 0;
		nnew += h < 0;
		err = recs_add(&p->upd[id], w, w + want->ksz);
		if (err)
			goto out;
	}
	for (size_t i = 0; i < have->n; i++) {
		const unsigned char *h = rec_at(have, i);

		if (seen[i])
			continue;
		if (id == XVPC_RC_ENDPOINTS &&
		    (((const struct xvpc_ep *)(h + have->ksz))->flags &
		     XVPC_EP_LEARNED)) {
			ms->kept++;
			err = recs_add(&p->kept[id], h, h + have->ksz);
			if (err)
				goto out;
			continue;
		}
		err = recs_add(&p->del[id], h, h + have->ksz);
		if (err)
			goto out;
	}
	pr_debug("reconcile %s: want %zu, have %zu: %zu new, %zu changed, %zu "
		 "to remove",
		 rc_names[id], want->n, have->n, nnew, p->upd[id].n - nnew,
		 p->del[id].n);
out:
	free(hix.slots);
	free(wix.slots);
	free(seen);
	return err;
}

/* ---- apply ---- */

static bool is_full(int err)
{
	return err == -E2BIG || err == -ENOSPC;
}

/* Pack n keys (and values) of r starting at i into contiguous arrays. */
static void pack(const struct recs *r, size_t i, __u32 n, unsigned char *keys,
		 unsigned char *vals)
{
	for (__u32 j = 0; j < n; j++) {
		const unsigned char *p = rec_at(r, i + j);

		memcpy(keys + (size_t)j * r->ksz, p, r->ksz);
		if (vals)
			memcpy(vals + (size_t)j * r->vsz, p + r->ksz, r->vsz);
	}
}

/* Writes p->upd[id] from p->upd_done[id] on. Returns 0, -ENOSPC when the
 * map is full (upd_done says where it stopped), or the first other error
 * (the failing entries are skipped and counted). */
static int apply_updates(struct plan *p, enum xvpc_rc_map id,
			 const struct xvpc_rc_maps *maps,
			 const struct xvpc_rc_env *env,
			 struct xvpc_rc_map_stats *ms, unsigned char *kbuf,
			 unsigned char *vbuf, __u32 chunk)
{
	struct xvpc_mapbe *m = maps->m[id];
	struct recs *u = &p->upd[id];
	int first_err = 0, nerr = 0;

	while (p->upd_done[id] < u->n) {
		size_t i = p->upd_done[id];
		__u32 n = u->n - i < chunk ? u->n - i : chunk, applied;
		int err;

		if (id == XVPC_RC_IFACES && env->bind) {
			const unsigned char *r = rec_at(u, i);

			n = 1;
			applied = 0;
			err = env->bind(
				env->ctx, *(const __u32 *)r,
				(const struct xvpc_iface *)(r + u->ksz));
			if (!err)
				applied = 1;
		} else {
			pack(u, i, n, kbuf, vbuf);
			applied = n;
			err = m->ops->update_batch(m, kbuf, vbuf, &applied);
			if (!err)
				applied = n;
		}
		for (__u32 j = 0; j < applied; j++) {
			if (p->upd_new[id][i + j])
				ms->added++;
			else
				ms->changed++;
		}
		p->upd_done[id] += applied;
		if (!err)
			continue;
		if (is_full(err))
			return -ENOSPC;
		/* Skip the failing entry and go on. */
		if (nerr++ < MAX_ERR_LOGS)
			pr_err("reconcile %s: writing an entry failed: %s",
			       rc_names[id], strerror(-err));
		if (!first_err)
			first_err = err;
		ms->failed++;
		p->upd_done[id]++;
	}
	return first_err;
}

static int apply_deletes(struct plan *p, enum xvpc_rc_map id,
			 const struct xvpc_rc_maps *maps,
			 const struct xvpc_rc_env *env,
			 struct xvpc_rc_map_stats *ms, unsigned char *kbuf,
			 __u32 chunk)
{
	struct xvpc_mapbe *m = maps->m[id];
	struct recs *d = &p->del[id];
	int first_err = 0;

	for (size_t i = 0; i < d->n;) {
		__u32 n = d->n - i < chunk ? d->n - i : chunk, applied;
		int err;

		if (id == XVPC_RC_IFACES && env->unbind) {
			n = 1;
			err = env->unbind(env->ctx,
					  *(const __u32 *)rec_at(d, i));
			applied = err ? 0 : 1;
		} else {
			pack(d, i, n, kbuf, NULL);
			applied = n;
			err = m->ops->delete_batch(m, kbuf, &applied);
			if (!err)
				applied = n;
		}
		ms->removed += applied;
		i += applied;
		if (!err)
			continue;
		pr_err("reconcile %s: removing an entry failed: %s",
		       rc_names[id], strerror(-err));
		if (!first_err)
			first_err = err;
		ms->failed++;
		i++;
	}
	return first_err;
}

/* ---- quick path: a few remote endpoints changed ---- */

/*
 * When the new state differs from the one the maps were last brought to
 * only in a few endpoints, in VPCs that are not in learn mode, only their keys of the endpoints map are written: O(changes)
 * instead of building and diffing the whole desired contents (up to
 * RC_QUICK_MAX changed endpoints, or up to RC_QUICK_BATCH while they are
 * at most a quarter of the endpoints: a batch of changes in one answer). The changed
 * endpoints are found by comparing the endpoint arrays (the sources keep
 * their order and append new ones): the part between the longest common
 * prefix and suffix. A new local endpoint binds its interface first (a
 * port created on this node); anything else (a snapshot, a subnet or VPC
 * change, a local endpoint changed or gone, an interface missing or bound
 * to another endpoint, a pending interface, a resync with nothing changed,
 * every RC_QUICK_EVERY runs) takes the full path.
 */
#define RC_QUICK_MAX   64
#define RC_QUICK_BATCH 1024
#define RC_QUICK_EVERY 1024

static bool arr_eq(const void *a, size_t na, const void *b, size_t nb,
		   size_t sz)
{
	return na == nb && (!na || !memcmp(a, b, na * sz));
}

static bool is_local(const struct xvpc_rc_env *env,
		     const struct xvpc_state_ep *e)
{
	return env->node_ip && e->node_ip == env->node_ip;
}

static void *dup_arr(const void *a, size_t n, size_t sz)
{
	void *d = malloc(n ? n * sz : 1);

	if (d && n)
		memcpy(d, a, n * sz);
	return d;
}

/* Room for n endpoints in prev (grown by half again: ports come one by
 * one, and each is one more). */
static int prev_eps_room(struct prev *pv, size_t n)
{
	size_t cap = pv->cap_eps + pv->cap_eps / 2;
	void *p;

	if (n <= pv->cap_eps)
		return 0;
	if (cap < n)
		cap = n;
	p = realloc(pv->eps, cap * sizeof(*pv->eps));
	if (!p)
		return -ENOMEM;
	pv->eps = p;
	pv->cap_eps = cap;
	return 0;
}

static int prev_eps_set(struct prev *pv, const struct xvpc_state *st)
{
	int err = prev_eps_room(pv, st->n_eps);

	if (err)
		return err;
	if (st->n_eps)
		memcpy(pv->eps, st->eps, st->n_eps * sizeof(*st->eps));
	pv->n_eps = st->n_eps;
	return 0;
}

/* After a quick run: prev's endpoints become st's, which differ only in
 * the window [pre, n - suf); the common suffix moves if the window
 * changed size (nothing to move when the new endpoints are appended). */
static int prev_eps_window(struct prev *pv, const struct xvpc_state *st,
			   size_t pre, size_t suf)
{
	size_t nm = st->n_eps - pre - suf;
	int err = prev_eps_room(pv, st->n_eps);

	if (err)
		return err;
	if (pv->n_eps != st->n_eps && suf)
		memmove(&pv->eps[pre + nm], &pv->eps[pv->n_eps - suf],
			suf * sizeof(*pv->eps));
	if (nm)
		memcpy(&pv->eps[pre], &st->eps[pre], nm * sizeof(*st->eps));
	pv->n_eps = st->n_eps;
	return 0;
}

/* After a complete full run: remember st. */
static int prev_set(struct prev *pv, const struct xvpc_state *st,
		    const struct xvpc_rc_env *env,
		    const struct xvpc_rc_result *res)
{
	prev_free(pv);
	pv->vpcs = dup_arr(st->vpcs, st->n_vpcs, sizeof(*st->vpcs));
	pv->subnets = dup_arr(st->subnets, st->n_subnets, sizeof(*st->subnets));
	pv->nodes = dup_arr(st->nodes, st->n_nodes, sizeof(*st->nodes));
	if (!pv->vpcs || !pv->subnets || !pv->nodes || prev_eps_set(pv, st)) {
		prev_free(pv);
		return -ENOMEM;
	}
	pv->n_vpcs = st->n_vpcs;
	pv->n_subnets = st->n_subnets;
	pv->n_nodes = st->n_nodes;
	pv->node_ip = env->node_ip;
	pv->pending = res->pending;
	pv->notices = res->notices;
	pv->valid = true;
	return 0;
}

static bool same_frame(const struct prev *pv, const struct xvpc_state *st)
{
	if (!arr_eq(pv->vpcs, pv->n_vpcs, st->vpcs, st->n_vpcs,
		    sizeof(*st->vpcs)) ||
	    !arr_eq(pv->subnets, pv->n_subnets, st->subnets, st->n_subnets,
		    sizeof(*st->subnets)) ||
	    !arr_eq(pv->nodes, pv->n_nodes, st->nodes, st->n_nodes,
		    sizeof(*st->nodes)))
		return false;
	for (size_t i = 0; i < st->n_vpcs; i++)
		if (st->vpcs[i].mode == XVPC_MODE_LEARN)
			return false;
	return true;
}

/* The interface binding of local endpoint e (in subnet s) at key idx. */
static void iface_of(const struct xvpc_state_ep *e,
		     const struct xvpc_state_subnet *s, struct xvpc_iface *b)
{
	memset(b, 0, sizeof(*b));
	b->vpc_id = e->vpc;
	b->ip = e->ip;
	b->vni = s->vni;
	memcpy(b->mac, e->mac, 6);
	b->gw_ip = s->gw_ip;
	memcpy(b->gw_mac, s->gw_mac, 6);
}

/* The interfaces map's record of key idx in the cache, or NULL (a node
 * has few local endpoints: a scan). */
static unsigned char *iface_have(const struct xvpc_rc_cache *c, __u32 idx)
{
	const struct recs *r = &c->have[XVPC_RC_IFACES];

	for (size_t i = 0; i < r->n; i++)
		if (!memcmp(rec_at(r, i), &idx, sizeof(idx)))
			return rec_at(r, i);
	return NULL;
}

/* A new local endpoint the quick path can take: its interface is there
 * and its index bound to nothing else. */
static bool quick_local_ok(const struct xvpc_rc_cache *c,
			   const struct xvpc_rc_env *env,
			   const struct xvpc_state *st,
			   const struct xvpc_state_ep *e)
{
	const struct xvpc_state_subnet *s =
		xvpc_state_find_subnet(st, e->vpc, e->ip);
	int idx = env_ifindex(env, e->ifname);
	const unsigned char *rec;
	struct xvpc_iface b;

	if (!s || idx <= 0)
		return false;
	rec = iface_have(c, idx);
	iface_of(e, s, &b);
	return !rec || !memcmp(rec + sizeof(__u32), &b, sizeof(b));
}

/* The changed endpoints: [*pre, n - *suf) of both arrays. */
static bool quick_window(const struct xvpc_rc_cache *c,
			 const struct xvpc_rc_env *env,
			 const struct xvpc_state *st, size_t *pre, size_t *suf)
{
	const struct prev *pv = &c->prev;
	size_t n = pv->n_eps < st->n_eps ? pv->n_eps : st->n_eps, p = 0, s = 0;
	size_t om, nm;

	if (!c->valid || !pv->valid || pv->node_ip != env->node_ip ||
	    pv->pending || c->quick_runs >= RC_QUICK_EVERY ||
	    !same_frame(pv, st))
		return false;
	/* Blocks first: the common prefix is most of the array. */
	while (p + 64 <= n &&
	       !memcmp(&pv->eps[p], &st->eps[p], 64 * sizeof(*st->eps)))
		p += 64;
	while (p < n && !memcmp(&pv->eps[p], &st->eps[p], sizeof(*st->eps)))
		p++;
	while (s < n - p &&
	       !memcmp(&pv->eps[pv->n_eps - 1 - s], &st->eps[st->n_eps - 1 - s],
		       sizeof(*st->eps)))
		s++;
	om = pv->n_eps - p - s;
	nm = st->n_eps - p - s;
	if (!om && !nm) /* nothing changed: a resync takes the full path */
		return false;
	/* A batch is worth it while it is small against the whole (the
	 * deletes of the window are matched against its puts: bounded). */
	if (om + nm > RC_QUICK_MAX &&
	    (om + nm > RC_QUICK_BATCH || (om + nm) * 4 > st->n_eps))
		return false;
	for (size_t i = 0; i < om; i++)
		if (is_local(env, &pv->eps[p + i]))
			return false;
	for (size_t i = 0; i < nm; i++)
		if (is_local(env, &st->eps[p + i]) &&
		    !quick_local_ok(c, env, st, &st->eps[p + i]))
			return false;
	*pre = p;
	*suf = s;
	return true;
}

/* Slot of key in ix, or -1. */
static long index_slot(const struct index *ix, const struct recs *r,
		       const void *key)
{
	size_t h = hash_key(key, r->ksz) & ix->mask;

	for (; ix->slots[h]; h = (h + 1) & ix->mask)
		if (bytes_eq(rec_at(r, ix->slots[h] - 1), key, r->ksz))
			return h;
	return -1;
}

/* Record i (the last one, just added) into ix; grows it by a rebuild. */
static int index_insert(struct index *ix, const struct recs *r, size_t i)
{
	size_t h;

	if (r->n * 2 > ix->mask + 1) {
		free(ix->slots);
		return index_build(ix, r);
	}
	h = hash_key(rec_at(r, i), r->ksz) & ix->mask;
	while (ix->slots[h])
		h = (h + 1) & ix->mask;
	ix->slots[h] = i + 1;
	return 0;
}

/* Empties slot i, moving back the entries of its probe run that may not
 * stay behind a hole (linear probing, no tombstones). */
static void index_unslot(struct index *ix, const struct recs *r, size_t i)
{
	size_t j = i;

	for (;;) {
		size_t k;

		j = (j + 1) & ix->mask;
		if (!ix->slots[j])
			break;
		k = hash_key(rec_at(r, ix->slots[j] - 1), r->ksz) & ix->mask;
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		ix->slots[i] = ix->slots[j];
		i = j;
	}
	ix->slots[i] = 0;
}

/* Removes record i (at slot) from r and ix: the last record takes its
 * place. */
static void recs_remove(struct recs *r, struct index *ix, size_t slot, size_t i)
{
	size_t last = r->n - 1;

	index_unslot(ix, r, slot);
	if (i != last) {
		long ls = index_slot(ix, r, rec_at(r, last));

		ix->slots[ls] = i + 1;
		memcpy(rec_at(r, i), rec_at(r, last), r->ksz + r->vsz);
	}
	r->n--;
}

/* Brings the endpoints map's key k to e (NULL: absent). */
/* Binds local endpoint e's interface (before its endpoint is written, as
 * the full path does) and marks ev local. */
static int quick_iface(struct xvpc_rc_cache *c, const struct xvpc_rc_maps *maps,
		       const struct xvpc_rc_env *env,
		       const struct xvpc_state_ep *e,
		       const struct xvpc_state_subnet *s, struct xvpc_ep *ev,
		       struct xvpc_rc_map_stats *ms)
{
	struct xvpc_mapbe *m = maps->m[XVPC_RC_IFACES];
	int idx = env_ifindex(env, e->ifname);
	__u32 key = idx, n = 1;
	struct xvpc_iface b;
	unsigned char *rec;
	int err;

	if (idx <= 0)
		return -ENODEV; /* gone since quick_window: a full run */
	iface_of(e, s, &b);
	rec = iface_have(c, key);
	ev->flags = XVPC_EP_LOCAL;
	ev->ifindex = idx;
	if (rec && !memcmp(rec + sizeof(key), &b, sizeof(b))) {
		ms->unchanged++;
		return 0;
	}
	err = env->bind ? env->bind(env->ctx, idx, &b)
			: m->ops->update_batch(m, &key, &b, &n);
	if (err)
		return err;
	if (rec) {
		memcpy(rec + sizeof(key), &b, sizeof(b));
		ms->changed++;
		return 0;
	}
	ms->added++;
	return recs_add(&c->have[XVPC_RC_IFACES], &key, &b);
}

static int quick_one(struct xvpc_rc_cache *c, const struct xvpc_rc_maps *maps,
		     const struct xvpc_rc_env *env, const struct xvpc_state *st,
		     const struct xvpc_ep_key *k, const struct xvpc_state_ep *e,
		     struct xvpc_rc_result *res)
{
	struct xvpc_mapbe *m = maps->m[XVPC_RC_ENDPOINTS];
	struct xvpc_rc_map_stats *ms = &res->maps[XVPC_RC_ENDPOINTS];
	struct recs *have = &c->have[XVPC_RC_ENDPOINTS];
	long slot = index_slot(&c->ep_ix, have, k);
	long h = slot < 0 ? -1 : (long)c->ep_ix.slots[slot] - 1;
	unsigned char *rec = h < 0 ? NULL : rec_at(have, h);
	const struct xvpc_state_subnet *s;
	struct xvpc_ep ev = {.node_ip = 0};
	__u32 n = 1;
	int err;

	if (!e) {
		if (!rec)
			return 0;
		if (((const struct xvpc_ep *)(rec + have->ksz))->flags &
		    XVPC_EP_LEARNED) {
			ms->kept++;
			return 0;
		}
		err = m->ops->delete_batch(m, k, &n);
		if (err)
			return err;
		ms->removed++;
		recs_remove(have, &c->ep_ix, slot, h);
		return 0;
	}
	s = xvpc_state_find_subnet(st, e->vpc, e->ip);
	if (!s)
		return -EINVAL; /* not validated */
	ev.node_ip = e->node_ip;
	memcpy(ev.mac, e->mac, 6);
	ev.vni = s->vni;
	if (is_local(env, e)) {
		err = quick_iface(c, maps, env, e, s, &ev,
				  &res->maps[XVPC_RC_IFACES]);
		if (err)
			return err;
	}
	if (rec && bytes_eq(rec + have->ksz, &ev, sizeof(ev))) {
		ms->unchanged++;
		return 0;
	}
	err = m->ops->update_batch(m, k, &ev, &n);
	if (err)
		return err;
	if (rec) {
		memcpy(rec + have->ksz, &ev, sizeof(ev));
		ms->changed++;
		return 0;
	}
	ms->added++;
	err = recs_add(have, k, &ev);
	return err ?: index_insert(&c->ep_ix, have, have->n - 1);
}

static bool in_window(const struct xvpc_state_ep *w, size_t n,
		      const struct xvpc_state_ep *e)
{
	for (size_t i = 0; i < n; i++)
		if (w[i].vpc == e->vpc && w[i].ip == e->ip)
			return true;
	return false;
}

/* Any error: the caller drops the cache and takes the full path. */
static int reconcile_quick(const struct xvpc_rc_maps *maps,
			   const struct xvpc_rc_env *env,
			   const struct xvpc_state *st,
			   struct xvpc_rc_result *res, size_t pre, size_t suf)
{
	struct xvpc_rc_cache *c = env->cache;
	struct prev *pv = &c->prev;
	size_t om = pv->n_eps - pre - suf, nm = st->n_eps - pre - suf;
	struct xvpc_rc_map_stats *ms = &res->maps[XVPC_RC_ENDPOINTS];
	int err = 0;

	if (!c->ep_ix.slots &&
	    index_build(&c->ep_ix, &c->have[XVPC_RC_ENDPOINTS]))
		return -ENOMEM;
	res->pending = pv->pending;
	res->notices = pv->notices;
	for (size_t i = 0; !err && i < nm; i++) {
		const struct xvpc_state_ep *e = &st->eps[pre + i];
		struct xvpc_ep_key k = {.vpc_id = e->vpc, .ip = e->ip};

		err = quick_one(c, maps, env, st, &k, e, res);
	}
	for (size_t i = 0; !err && i < om; i++) {
		const struct xvpc_state_ep *o = &pv->eps[pre + i];
		struct xvpc_ep_key k = {.vpc_id = o->vpc, .ip = o->ip};

		if (!in_window(&st->eps[pre], nm, o))
			err = quick_one(c, maps, env, st, &k, NULL, res);
	}
	if (!err)
		err = prev_eps_window(pv, st, pre, suf);
	c->quick_runs++;
	pr_debug("reconcile endpoints (quick): %zu changed endpoints, %llu "
		 "added, %llu changed, %llu removed",
		 om + nm, (unsigned long long)ms->added,
		 (unsigned long long)ms->changed,
		 (unsigned long long)ms->removed);
	return err;
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int xvpc_reconcile(const struct xvpc_rc_maps *maps,
		   const struct xvpc_rc_env *env, const struct xvpc_state *st,
		   struct xvpc_rc_result *res)
{
	/* Adds in dependency order, removals in reverse. An interface is
	 * bound (program attached) before its endpoint becomes deliverable:
	 * a VM that receives its first packet answers through its program
	 * (its ARP request would be lost otherwise, and retried a second
	 * later: a migrated VM's first reply); it is unbound after. */
	static const enum xvpc_rc_map order[] = {XVPC_RC_VNIS, XVPC_RC_SUBNETS,
						 XVPC_RC_IFACES,
						 XVPC_RC_ENDPOINTS};
	__u32 chunk = env->chunk ? env->chunk : DEFAULT_CHUNK;
	unsigned char *kbuf = NULL, *vbuf = NULL;
	bool full[XVPC_RC__COUNT] = {0}, cached = false;
	struct xvpc_learn_plan *lplan = NULL;
	int lerr;
	__u64 t0 = now_ns();
	struct plan p;
	size_t max_ksz = 0, max_vsz = 0, pre, suf;
	bool quick = true;
	int ret = 0, err;
	int i;

	memset(res, 0, sizeof(*res));
	for (i = 0; i < XVPC_RC__COUNT; i++) {
		if (rc_key_size[i] > max_ksz)
			max_ksz = rc_key_size[i];
		if (rc_val_size[i] > max_vsz)
			max_vsz = rc_val_size[i];
	}
	memset(&p, 0, sizeof(p));
	if (!st->validated) {
		pr_err("reconcile: the desired state was not validated");
		return -EINVAL;
	}
	for (i = 0; i < XVPC_RC__COUNT; i++) {
		struct xvpc_mapbe *m = maps->m[i];

		if (!m || m->key_size != rc_key_size[i] ||
		    m->value_size != rc_val_size[i]) {
			pr_err("reconcile: map %s is missing or has the wrong "
			       "key/value size (%u/%u, want %u/%u)",
			       rc_names[i], m ? m->key_size : 0,
			       m ? m->value_size : 0, rc_key_size[i],
			       rc_val_size[i]);
			return -EINVAL;
		}
		recs_init(&p.want[i], rc_key_size[i], rc_val_size[i]);
		recs_init(&p.have[i], rc_key_size[i], rc_val_size[i]);
		recs_init(&p.upd[i], rc_key_size[i], rc_val_size[i]);
		recs_init(&p.del[i], rc_key_size[i], rc_val_size[i]);
		recs_init(&p.kept[i], rc_key_size[i], rc_val_size[i]);
	}
	if (env->cache && quick_window(env->cache, env, st, &pre, &suf)) {
		err = reconcile_quick(maps, env, st, res, pre, suf);
		res->quick = !err;
		if (!err)
			goto out;
		pr_warn("reconcile: the quick path failed (%s): reading the "
			"maps back for a full run",
			strerror(-err));
		xvpc_rc_cache_invalidate(env->cache);
		memset(res, 0, sizeof(*res));
	}
	quick = false;
	kbuf = malloc((size_t)chunk * max_ksz);
	vbuf = malloc((size_t)chunk * max_vsz);
	if (!kbuf || !vbuf) {
		ret = -ENOMEM;
		goto out;
	}
	ret = build_want(&p, env, st, res);
	if (ret) {
		pr_err("reconcile: building the desired map contents failed: "
		       "%s",
		       strerror(-ret));
		goto out;
	}
	/* Not fatal: the endpoint maps are written all the same. */
	lerr = xvpc_learn_sync_pre(maps->vpcs, maps->nodes, st, env->node_ip,
				   &res->learn, &lplan);
	if (lerr == -ENOMEM) {
		ret = lerr;
		goto out;
	}
	cached = env->cache && env->cache->valid;
	for (i = 0; i < XVPC_RC__COUNT; i++) {
		if (cached) {
			/* Take the cache's records: they describe the map. */
			free(p.have[i].data);
			p.have[i] = env->cache->have[i];
			memset(&env->cache->have[i], 0,
			       sizeof(env->cache->have[i]));
			ret = 0;
		} else {
			ret = maps->m[i]->ops->iterate(maps->m[i], have_cb,
						       &p.have[i]);
		}
		if (ret) {
			pr_err("reconcile: reading map %s failed: %s",
			       rc_names[i], strerror(-ret));
			goto out;
		}
		ret = diff_map(&p, i, &res->maps[i]);
		if (ret)
			goto out;
	}

	for (i = 0; i < XVPC_RC__COUNT; i++) {
		enum xvpc_rc_map id = order[i];

		err = apply_updates(&p, id, maps, env, &res->maps[id], kbuf,
				    vbuf, chunk);
		if (err == -ENOSPC) {
			full[id] = true;
			pr_warn("reconcile %s: map full (%u entries) after %u "
				"of %zu writes; retrying after removals",
				rc_names[id], maps->m[id]->max_entries,
				p.upd_done[id], p.upd[id].n);
		} else if (err && !ret) {
			ret = err;
		}
	}
	for (i = XVPC_RC__COUNT - 1; i >= 0; i--) {
		enum xvpc_rc_map id = order[i];

		err = apply_deletes(&p, id, maps, env, &res->maps[id], kbuf,
				    chunk);
		if (err && !ret)
			ret = err;
	}
	for (i = 0; i < XVPC_RC__COUNT; i++) {
		enum xvpc_rc_map id = order[i];
		__u64 left;

		if (!full[id])
			continue;
		err = apply_updates(&p, id, maps, env, &res->maps[id], kbuf,
				    vbuf, chunk);
		if (err != -ENOSPC) {
			if (err && !ret)
				ret = err;
			continue;
		}
		left = p.upd[id].n - p.upd_done[id];
		res->maps[id].full = 1;
		res->maps[id].failed += left;
		pr_err("reconcile %s: map full (max_entries %u): %llu entries "
		       "of the desired state are NOT installed",
		       rc_names[id], maps->m[id]->max_entries,
		       (unsigned long long)left);
		ret = -ENOSPC;
	}
	err = xvpc_learn_sync_post(lplan, maps->vpcs, maps->learned,
				   env->notices, env->learn_hooks, st,
				   env->node_ip, &res->learn);
	lplan = NULL;
	err = err ?: lerr;
	if (err) {
		pr_err("reconcile: the learning maps are not fully written: "
		       "%s",
		       strerror(-err));
		if (!ret)
			ret = err;
	}
out:
	xvpc_learn_plan_free(lplan);
	if (env->cache && !quick) {
		/* After a complete run the maps hold exactly want (+ kept
		 * learned entries): that is the next run's "have". After any
		 * error, the next run reads the maps again. */
		xvpc_rc_cache_invalidate(env->cache);
		for (i = 0; !ret && i < XVPC_RC__COUNT; i++) {
			for (size_t k = 0; k < p.kept[i].n && !ret; k++) {
				const unsigned char *r = rec_at(&p.kept[i], k);

				ret = recs_add(&p.want[i], r,
					       r + p.kept[i].ksz);
			}
			if (ret) {
				xvpc_rc_cache_invalidate(env->cache);
				ret = 0; /* only the cache is lost */
				break;
			}
			env->cache->have[i] = p.want[i];
			memset(&p.want[i], 0, sizeof(p.want[i]));
			env->cache->valid = i == XVPC_RC__COUNT - 1;
		}
		if (env->cache->valid &&
		    prev_set(&env->cache->prev, st, env, res))
			pr_debug("reconcile: out of memory noting the state: "
				 "the next run takes the full path");
	}
	for (i = 0; i < XVPC_RC__COUNT; i++) {
		free(p.kept[i].data);
		free(p.want[i].data);
		free(p.have[i].data);
		free(p.upd[i].data);
		free(p.del[i].data);
		free(p.upd_new[i]);
	}
	free(kbuf);
	free(vbuf);
	res->duration_ns = now_ns() - t0;
	return ret;
}

void xvpc_rc_log_result(const struct xvpc_rc_result *res)
{
	const struct xvpc_rc_map_stats *e = &res->maps[XVPC_RC_ENDPOINTS];

	if (res->quick) {
		/* A few remote endpoints: one line (one per change). */
		pr_info("reconcile endpoints (quick): %llu added, %llu "
			"changed, "
			"%llu removed, %llu unchanged, %llu learned kept in "
			"%.3f ms",
			(unsigned long long)e->added,
			(unsigned long long)e->changed,
			(unsigned long long)e->removed,
			(unsigned long long)e->unchanged,
			(unsigned long long)e->kept, res->duration_ns / 1e6);
		return;
	}
	for (int i = 0; i < XVPC_RC__COUNT; i++) {
		const struct xvpc_rc_map_stats *m = &res->maps[i];

		pr_info("reconcile %-9s: %llu added, %llu changed, %llu "
			"removed, %llu unchanged, %llu learned kept, %llu "
			"failed%s",
			rc_names[i], (unsigned long long)m->added,
			(unsigned long long)m->changed,
			(unsigned long long)m->removed,
			(unsigned long long)m->unchanged,
			(unsigned long long)m->kept,
			(unsigned long long)m->failed,
			m->full ? " (map full)" : "");
	}
	if (res->learn.vpcs_written || res->learn.vpcs_removed ||
	    res->learn.nodes_written || res->learn.nodes_removed ||
	    res->learn.moved || res->learn.forgotten || res->learn.flushed ||
	    res->learn.failed)
		pr_info("reconcile learning: vpcs %llu written %llu removed, "
			"nodes %llu written %llu removed, learned %llu moved "
			"%llu forgotten %llu flushed, %llu failed",
			(unsigned long long)res->learn.vpcs_written,
			(unsigned long long)res->learn.vpcs_removed,
			(unsigned long long)res->learn.nodes_written,
			(unsigned long long)res->learn.nodes_removed,
			(unsigned long long)res->learn.moved,
			(unsigned long long)res->learn.forgotten,
			(unsigned long long)res->learn.flushed,
			(unsigned long long)res->learn.failed);
	if (res->pending)
		pr_warn("reconcile: %llu local endpoints wait for their "
			"interface",
			(unsigned long long)res->pending);
	pr_info("reconcile: done in %.3f ms", res->duration_ns / 1e6);
}
