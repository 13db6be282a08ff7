// SPDX-License-Identifier: GPL-2.0-only
/* Reconciliation diff against the in-memory map backend: add, change,
 * remove, idempotence, learned entries, pending interfaces, full maps. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "agent/mapbe.h"
#include "agent/reconcile.h"
#include "state.h"

#define NODE "192.168.100.1"

struct fixture {
	struct xvpc_rc_maps maps;
	struct xvpc_rc_env env;
	int binds, unbinds;
	int missing_if; /* ifindex resolver fails for "gone*" names */
};

/* Fake interfaces: "xvN" has ifindex 100 + N; "gone*" does not exist. */
static int fake_ifindex(void *ctx, const char *ifname)
{
	(void)ctx;
	if (!strncmp(ifname, "xv", 2))
		return 100 + atoi(ifname + 2);
	return -ENODEV;
}

static int fake_bind(void *ctx, int ifindex, const struct xvpc_iface *b)
{
	struct fixture *f = ctx;
	__u32 key = ifindex;

	f->binds++;
	return f->maps.m[XVPC_RC_IFACES]->ops->update(f->maps.m[XVPC_RC_IFACES],
						      &key, b);
}

static int fake_unbind(void *ctx, int ifindex)
{
	struct fixture *f = ctx;
	__u32 key = ifindex;

	f->unbinds++;
	f->maps.m[XVPC_RC_IFACES]->ops->delete (f->maps.m[XVPC_RC_IFACES],
						&key);
	return 0;
}

static int make_maps(struct fixture *f, __u32 max_eps)
{
	return xvpc_mapbe_mem_new("vnis", 4, sizeof(struct xvpc_vni), 64,
				  &f->maps.m[XVPC_RC_VNIS]) ?:
	       xvpc_mapbe_mem_new("subnets", sizeof(struct xvpc_subnet_key),
				  sizeof(struct xvpc_subnet), 64,
				  &f->maps.m[XVPC_RC_SUBNETS]) ?:
	       xvpc_mapbe_mem_new("endpoints", sizeof(struct xvpc_ep_key),
				  sizeof(struct xvpc_ep), max_eps,
				  &f->maps.m[XVPC_RC_ENDPOINTS]) ?:
	       xvpc_mapbe_mem_new("ifaces", 4, sizeof(struct xvpc_iface), 64,
				  &f->maps.m[XVPC_RC_IFACES]);
}

static int setup_n(void **state, __u32 max_eps)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	if (make_maps(f, max_eps))
		return -1;
	f->env.node_ip = inet_addr(NODE);
	f->env.chunk = 3; /* small, so batching crosses chunk borders */
	f->env.ctx = f;
	f->env.ifindex = fake_ifindex;
	f->env.bind = fake_bind;
	f->env.unbind = fake_unbind;
	return 0;
}

static int setup(void **state)
{
	return setup_n(state, 1024);
}

static int setup_small(void **state)
{
	return setup_n(state, 4);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (!f)
		return 0;
	for (int i = 0; i < XVPC_RC__COUNT; i++)
		xvpc_mapbe_destroy(f->maps.m[i]);
	free(f);
	return 0;
}

/* A state with one VPC, subnets 10.0.1.0/24 (vni 101) and 10.0.2.0/24 (vni
 * 102), and n endpoints 10.0.1.<10+i>: the first `local` on this node with
 * ifname xv<i>, the others on 192.168.100.2. */
static struct xvpc_state *mkstate(int n, int local)
{
	struct xvpc_state *st = xvpc_state_new();
	struct xvpc_state_vpc v = {.id = 1};
	char err[XVPC_STATE_ERR_LEN];

	assert_non_null(st);
	assert_int_equal(xvpc_state_add_vpc(st, &v), 0);
	for (int i = 1; i <= 2; i++) {
		struct xvpc_state_subnet s = {
			.vpc = 1,
			.net = htonl(0x0a000000 | i << 8),
			.plen = 24,
			.vni = 100 + i,
			.gw_ip = htonl(0x0a000001 | i << 8),
			.gw_mac = {2, 0x78, 0, 0, 0, i},
		};
		assert_int_equal(xvpc_state_add_subnet(st, &s), 0);
	}
	for (int i = 0; i < n; i++) {
		struct xvpc_state_ep e = {
			.vpc = 1,
			.ip = htonl(0x0a00010a + i),
			.mac = {2, 0, 0, 1, i >> 8, i & 0xff},
			.node_ip =
				inet_addr(i < local ? NODE : "192.168.100.2"),
		};
		if (i < local)
			snprintf(e.ifname, sizeof(e.ifname), "xv%d", i);
		assert_int_equal(xvpc_state_add_ep(st, &e), 0);
	}
	if (xvpc_state_validate(st, inet_addr(NODE), err, sizeof(err)))
		fail_msg("state invalid: %s", err);
	return st;
}

static long count(struct fixture *f, enum xvpc_rc_map id)
{
	return f->maps.m[id]->ops->count(f->maps.m[id]);
}

static struct xvpc_ep get_ep(struct fixture *f, const char *ip, int *ret)
{
	struct xvpc_ep_key k = {.vpc_id = 1, .ip = inet_addr(ip)};
	struct xvpc_ep v = {0};
	struct xvpc_mapbe *m = f->maps.m[XVPC_RC_ENDPOINTS];

	*ret = m->ops->lookup(m, &k, &v);
	return v;
}

static void test_cold_add(void **state)
{
	struct fixture *f = *state;
	struct xvpc_state *st = mkstate(10, 2);
	struct xvpc_rc_result res;
	struct xvpc_subnet_key sk = {
		.prefixlen = 56, .vpc_id = 1, .addr = inet_addr("10.0.2.0")};
	struct xvpc_subnet sv;
	struct xvpc_iface b;
	struct xvpc_vni vv;
	struct xvpc_ep ep;
	__u32 key;
	int ret;

	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, st, &res), 0);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].added, 10);
	assert_int_equal(res.maps[XVPC_RC_SUBNETS].added, 2);
	assert_int_equal(res.maps[XVPC_RC_VNIS].added, 2);
	assert_int_equal(res.maps[XVPC_RC_IFACES].added, 2);
	assert_int_equal(f->binds, 2);
	assert_int_equal(count(f, XVPC_RC_ENDPOINTS), 10);

	/* Local endpoint: LOCAL flag, ifindex of its interface, VNI. */
	ep = get_ep(f, "10.0.1.11", &ret);
	assert_int_equal(ret, 0);
	assert_int_equal(ep.flags, XVPC_EP_LOCAL);
	assert_int_equal(ep.ifindex, 101);
	assert_int_equal(ep.vni, 101);
	assert_int_equal(ep.node_ip, inet_addr(NODE));
	assert_int_equal(ep.mac[5], 1);
	/* Remote endpoint: no flag, no ifindex. */
	ep = get_ep(f, "10.0.1.19", &ret);
	assert_int_equal(ret, 0);
	assert_int_equal(ep.flags, 0);
	assert_int_equal(ep.ifindex, 0);
	assert_int_equal(ep.node_ip, inet_addr("192.168.100.2"));

	/* Subnet LPM key: 32 + plen; value carries gateway and net. */
	assert_int_equal(f->maps.m[XVPC_RC_SUBNETS]->ops->lookup(
				 f->maps.m[XVPC_RC_SUBNETS], &sk, &sv),
			 0);
	assert_int_equal(sv.vni, 102);
	assert_int_equal(sv.plen, 24);
	assert_int_equal(sv.gw_ip, inet_addr("10.0.2.1"));
	assert_int_equal(sv.net, inet_addr("10.0.2.0"));
	assert_int_equal(sv.gw_mac[5], 2);

	key = 102;
	assert_int_equal(f->maps.m[XVPC_RC_VNIS]->ops->lookup(
				 f->maps.m[XVPC_RC_VNIS], &key, &vv),
			 0);
	assert_int_equal(vv.vpc_id, 1);

	key = 100;
	assert_int_equal(f->maps.m[XVPC_RC_IFACES]->ops->lookup(
				 f->maps.m[XVPC_RC_IFACES], &key, &b),
			 0);
	assert_int_equal(b.ip, inet_addr("10.0.1.10"));
	assert_int_equal(b.vni, 101);
	assert_int_equal(b.gw_ip, inet_addr("10.0.1.1"));
	xvpc_state_free(st);
}

static void test_idempotent(void **state)
{
	struct fixture *f = *state;
	struct xvpc_state *st = mkstate(20, 3);
	struct xvpc_rc_result res;

	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, st, &res), 0);
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, st, &res), 0);
	for (int i = 0; i < XVPC_RC__COUNT; i++) {
		assert_int_equal(res.maps[i].added, 0);
		assert_int_equal(res.maps[i].changed, 0);
		assert_int_equal(res.maps[i].removed, 0);
	}
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].unchanged, 20);
	assert_int_equal(f->binds, 3); /* not bound again */
	xvpc_state_free(st);
}

static void test_change_and_remove(void **state)
{
	struct fixture *f = *state;
	struct xvpc_state *a = mkstate(10, 2), *b = mkstate(6, 1);
	struct xvpc_rc_result res;
	struct xvpc_ep ep;
	int ret;

	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, a, &res), 0);
	/* b: endpoints 6..9 gone, endpoint 1 moved to another node (its
	 * interface unbound), endpoint 3 got a new MAC. */
	b->eps[3].mac[0] = 0x06;
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, b, &res), 0);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].added, 0);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].changed, 2);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].removed, 4);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].unchanged, 4);
	assert_int_equal(res.maps[XVPC_RC_IFACES].removed, 1);
	assert_int_equal(f->unbinds, 1);
	assert_int_equal(count(f, XVPC_RC_ENDPOINTS), 6);
	assert_int_equal(count(f, XVPC_RC_IFACES), 1);
	ep = get_ep(f, "10.0.1.11", &ret);
	assert_int_equal(ret, 0);
	assert_int_equal(ep.flags, 0);
	assert_int_equal(ep.ifindex, 0);
	ep = get_ep(f, "10.0.1.13", &ret);
	assert_int_equal(ret, 0);
	assert_int_equal(ep.mac[0], 0x06);
	get_ep(f, "10.0.1.18", &ret);
	assert_int_equal(ret, -ENOENT);

	/* Everything gone: the maps end empty. */
	xvpc_state_free(a);
	a = mkstate(0, 0);
	a->n_subnets = 0;
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, a, &res), 0);
	assert_int_equal(res.maps[XVPC_RC_SUBNETS].removed, 2);
	for (int i = 0; i < XVPC_RC__COUNT; i++)
		assert_int_equal(count(f, i), 0);
	xvpc_state_free(a);
	xvpc_state_free(b);
}

static void test_learned_kept(void **state)
{
	struct fixture *f = *state;
	struct xvpc_state *st = mkstate(2, 0);
	struct xvpc_mapbe *m = f->maps.m[XVPC_RC_ENDPOINTS];
	struct xvpc_ep_key k1 = {.vpc_id = 1, .ip = inet_addr("10.0.1.50")};
	struct xvpc_ep_key k2 = {.vpc_id = 1, .ip = inet_addr("10.0.1.10")};
	struct xvpc_ep learned = {.flags = XVPC_EP_LEARNED,
				  .node_ip = inet_addr("192.168.100.3")};
	struct xvpc_rc_result res;
	struct xvpc_ep ep;
	int ret;

	assert_int_equal(m->ops->update(m, &k1, &learned), 0);
	assert_int_equal(m->ops->update(m, &k2, &learned), 0);
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, st, &res), 0);
	/* k1 stays (learning owns it), k2 is replaced by the pushed entry. */
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].kept, 1);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].changed, 1);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].added, 1);
	get_ep(f, "10.0.1.50", &ret);
	assert_int_equal(ret, 0);
	ep = get_ep(f, "10.0.1.10", &ret);
	assert_int_equal(ep.flags, 0);
	assert_int_equal(ep.node_ip, inet_addr("192.168.100.2"));
	xvpc_state_free(st);
}

static void test_pending_interface(void **state)
{
	struct fixture *f = *state;
	struct xvpc_state *st = mkstate(3, 2);
	struct xvpc_rc_result res;
	int ret;

	snprintf(st->eps[0].ifname, sizeof(st->eps[0].ifname), "gone0");
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, st, &res), 0);
	assert_int_equal(res.pending, 1);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].added, 2);
	get_ep(f, "10.0.1.10", &ret);
	assert_int_equal(ret, -ENOENT); /* never installed half-bound */
	assert_int_equal(count(f, XVPC_RC_IFACES), 1);

	/* The interface appears: the next reconcile binds it. */
	snprintf(st->eps[0].ifname, sizeof(st->eps[0].ifname), "xv7");
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, st, &res), 0);
	assert_int_equal(res.pending, 0);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].added, 1);
	assert_int_equal(res.maps[XVPC_RC_IFACES].added, 1);
	assert_int_equal(count(f, XVPC_RC_IFACES), 2);
	xvpc_state_free(st);
}

static void test_default_bind_writes_map(void **state)
{
	struct fixture *f = *state;
	struct xvpc_state *st = mkstate(4, 4);
	struct xvpc_rc_result res;

	f->env.bind = NULL;
	f->env.unbind = NULL;
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, st, &res), 0);
	assert_int_equal(count(f, XVPC_RC_IFACES), 4);
	assert_int_equal(f->binds, 0);
	st->n_eps = 1;
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, st, &res), 0);
	assert_int_equal(count(f, XVPC_RC_IFACES), 1);
	xvpc_state_free(st);
}

/* Endpoints map holds 4: 6 endpoints do not fit. The error is returned and
 * counted, the rest of the state is applied. */
static void test_full_map(void **state)
{
	struct fixture *f = *state;
	struct xvpc_state *st = mkstate(6, 0);
	struct xvpc_rc_result res;

	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, st, &res), -ENOSPC);
	assert_true(res.maps[XVPC_RC_ENDPOINTS].full);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].added, 4);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].failed, 2);
	assert_int_equal(res.maps[XVPC_RC_SUBNETS].added, 2);
	assert_int_equal(count(f, XVPC_RC_ENDPOINTS), 4);
	xvpc_state_free(st);
}

/* Full only until the removals ran: replacing 4 endpoints by 4 others
 * succeeds through the retry after removals. */
static void test_full_then_removals(void **state)
{
	struct fixture *f = *state;
	struct xvpc_state *a = mkstate(4, 0), *b = mkstate(8, 0);
	struct xvpc_rc_result res;

	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, a, &res), 0);
	memmove(b->eps, b->eps + 4, 4 * sizeof(*b->eps));
	b->n_eps = 4;
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, b, &res), 0);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].added, 4);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].removed, 4);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].failed, 0);
	assert_false(res.maps[XVPC_RC_ENDPOINTS].full);
	xvpc_state_free(a);
	xvpc_state_free(b);
}

static void test_unvalidated_rejected(void **state)
{
	struct fixture *f = *state;
	struct xvpc_state *st = mkstate(1, 0);
	struct xvpc_rc_result res;
	struct xvpc_state_ep e = st->eps[0];

	xvpc_state_add_ep(st, &e); /* clears validated */
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, st, &res), -EINVAL);
	assert_int_equal(count(f, XVPC_RC_ENDPOINTS), 0);
	xvpc_state_free(st);
}

/* With a cache, the second run diffs against memory: an entry removed
 * behind the reconciler's back is only noticed once the cache is
 * invalidated (what the agent does on link events and periodic resyncs). */
static void test_cache(void **state)
{
	struct fixture *f = *state;
	struct xvpc_state *a = mkstate(10, 2), *b = mkstate(10, 2);
	struct xvpc_mapbe *m = f->maps.m[XVPC_RC_ENDPOINTS];
	struct xvpc_ep_key k = {.vpc_id = 1, .ip = inet_addr("10.0.1.15")};
	struct xvpc_rc_result res;
	int ret;

	f->env.cache = xvpc_rc_cache_new();
	assert_non_null(f->env.cache);
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, a, &res), 0);
	b->eps[1].mac[0] = 0x0a; /* a local one: the full path */
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, b, &res), 0);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].changed, 1);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].unchanged, 9);
	assert_int_equal(m->ops->delete (m, &k), 0);
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, b, &res), 0);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].added, 0);
	get_ep(f, "10.0.1.15", &ret);
	assert_int_equal(ret, -ENOENT);
	xvpc_rc_cache_invalidate(f->env.cache);
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, b, &res), 0);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].added, 1);
	get_ep(f, "10.0.1.15", &ret);
	assert_int_equal(ret, 0);
	/* Back to a: same result as without a cache. */
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, a, &res), 0);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].changed, 1);
	assert_int_equal(count(f, XVPC_RC_ENDPOINTS), 10);
	xvpc_rc_cache_free(f->env.cache);
	f->env.cache = NULL;
	xvpc_state_free(a);
	xvpc_state_free(b);
}

/* A full map invalidates the cache: the next run reads the map. */
static void test_cache_after_full(void **state)
{
	struct fixture *f = *state;
	struct xvpc_state *st = mkstate(6, 0);
	struct xvpc_rc_result res;

	f->env.cache = xvpc_rc_cache_new();
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, st, &res), -ENOSPC);
	st->n_eps = 4;
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, st, &res), 0);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].unchanged, 4);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].added, 0);
	xvpc_rc_cache_free(f->env.cache);
	f->env.cache = NULL;
	xvpc_state_free(st);
}

/* In-memory backend on its own: many inserts and deletes keep lookups
 * right across growth and backward-shift deletion. */
static void test_mem_backend(void **unused)
{
	struct xvpc_mapbe *m;
	__u32 k, v;
	long n = 0;

	(void)unused;
	assert_int_equal(xvpc_mapbe_mem_new("t", 4, 4, 5000, &m), 0);
	for (k = 0; k < 5000; k++)
		assert_int_equal(m->ops->update(m, &k, &k), 0);
	k = 5000;
	assert_int_equal(m->ops->update(m, &k, &k), -E2BIG);
	for (k = 0; k < 5000; k += 2)
		assert_int_equal(m->ops->delete (m, &k), 0);
	for (k = 0; k < 5000; k++) {
		int ret = m->ops->lookup(m, &k, &v);

		if (k % 2) {
			assert_int_equal(ret, 0);
			assert_int_equal(v, k);
			n++;
		} else {
			assert_int_equal(ret, -ENOENT);
		}
	}
	assert_int_equal(m->ops->count(m), n);
	xvpc_mapbe_destroy(m);
}

/* ---- quick path: random change sequences ---- */

struct prop {
	struct xvpc_state_ep eps[300];
	int n;
	__u8 used[2][256]; /* [subnet][host] */
	__u8 gw_mac_last;
	unsigned int seed;
};

static unsigned int prop_rand(struct prop *p)
{
	p->seed = p->seed * 1103515245u + 12345u;
	return p->seed >> 8;
}

static struct xvpc_state *prop_state(const struct prop *p)
{
	struct xvpc_state *st = xvpc_state_new();
	struct xvpc_state_vpc v = {.id = 1};
	char err[XVPC_STATE_ERR_LEN];

	assert_non_null(st);
	assert_int_equal(xvpc_state_add_vpc(st, &v), 0);
	for (int i = 1; i <= 2; i++) {
		struct xvpc_state_subnet s;

		memset(&s, 0, sizeof(s));
		s.vpc = 1;
		s.net = htonl(0x0a000000 | i << 8);
		s.plen = 24;
		s.vni = 100 + i;
		s.gw_ip = htonl(0x0a000001 | i << 8);
		s.gw_mac[0] = 2;
		s.gw_mac[5] = i == 2 ? p->gw_mac_last : 1;
		assert_int_equal(xvpc_state_add_subnet(st, &s), 0);
	}
	for (int i = 0; i < p->n; i++)
		assert_int_equal(xvpc_state_add_ep(st, &p->eps[i]), 0);
	if (xvpc_state_validate(st, inet_addr(NODE), err, sizeof(err)))
		fail_msg("state invalid: %s", err);
	return st;
}

static void prop_add(struct prop *p, bool local)
{
	struct xvpc_state_ep *e = &p->eps[p->n];
	unsigned int sn, host;

	if (p->n == 300)
		return;
	do {
		sn = prop_rand(p) % 2;
		host = 10 + prop_rand(p) % 240;
	} while (p->used[sn][host]);
	p->used[sn][host] = 1;
	memset(e, 0, sizeof(*e));
	e->vpc = 1;
	e->ip = htonl(0x0a000000 | (sn + 1) << 8 | host);
	e->mac[0] = 2;
	e->mac[4] = sn;
	e->mac[5] = host;
	e->node_ip = htonl(0xc0a86402 + prop_rand(p) % 8); /* 192.168.100.2+ */
	if (local) {
		e->node_ip = inet_addr(NODE);
		snprintf(e->ifname, sizeof(e->ifname), "xv%u", sn * 256 + host);
	}
	p->n++;
}

static void prop_del(struct prop *p)
{
	int i;
	__u32 h;

	if (!p->n)
		return;
	i = prop_rand(p) % p->n;
	h = ntohl(p->eps[i].ip);
	p->used[((h >> 8) & 0xff) - 1][h & 0xff] = 0;
	memmove(&p->eps[i], &p->eps[i + 1], (p->n - i - 1) * sizeof(p->eps[0]));
	p->n--;
}

static void prop_step(struct prop *p)
{
	unsigned int r = prop_rand(p) % 100, k;

	if (r < 40) {
		prop_add(p, false);
	} else if (r < 65) {
		prop_del(p);
	} else if (r < 85 && p->n) {
		struct xvpc_state_ep *e = &p->eps[prop_rand(p) % p->n];

		if (e->ifname[0])
			e->mac[3]++;
		else
			e->node_ip = htonl(0xc0a86402 + prop_rand(p) % 8);
	} else if (r < 90) {
		prop_add(p, true);
	} else if (r < 93) {
		p->gw_mac_last++; /* a subnet change: the full path */
	} else {
		/* Many at once: more than the quick path takes. */
		for (k = 0; k < 40; k++)
			prop_rand(p) % 2 ? prop_add(p, false) : prop_del(p);
	}
}

struct cmp_ctx {
	struct xvpc_mapbe *other;
	long n;
};

static int cmp_cb(const void *key, const void *val, void *arg)
{
	struct cmp_ctx *c = arg;
	unsigned char v[64];

	assert_true(c->other->value_size <= sizeof(v));
	assert_int_equal(c->other->ops->lookup(c->other, key, v), 0);
	assert_memory_equal(v, val, c->other->value_size);
	c->n++;
	return 0;
}

static void maps_equal(struct fixture *a, struct fixture *b)
{
	for (int i = 0; i < XVPC_RC__COUNT; i++) {
		struct cmp_ctx c = {.other = b->maps.m[i]};

		assert_int_equal(
			a->maps.m[i]->ops->iterate(a->maps.m[i], cmp_cb, &c),
			0);
		assert_int_equal(c.n, count(b, i));
	}
}

/* Learned entries, in both fixtures' maps: 10.0.2.200 .. 10.0.2.209. */
static void add_learned(struct fixture *f)
{
	struct xvpc_mapbe *m = f->maps.m[XVPC_RC_ENDPOINTS];

	for (int i = 0; i < 10; i++) {
		struct xvpc_ep_key k = {.vpc_id = 1,
					.ip = htonl(0x0a0002c8 + i)};
		struct xvpc_ep v = {.node_ip = inet_addr("192.168.100.9"),
				    .flags = XVPC_EP_LEARNED,
				    .vni = 102,
				    .mac = {2, 9, 9, 9, 9, i}};

		assert_int_equal(m->ops->update(m, &k, &v), 0);
	}
}

/* Deletes anywhere, of the last one, adds (appended): what moves the
 * common suffix of the quick path's window, step after step. */
static void prop_step_deletes(struct prop *p)
{
	unsigned int r = prop_rand(p) % 100;

	if (p->n > 60 || (p->n > 20 && r < 45)) {
		prop_del(p);
	} else if (p->n > 20 && r < 70) {
		__u32 h = ntohl(p->eps[p->n - 1].ip);

		p->used[((h >> 8) & 0xff) - 1][h & 0xff] = 0;
		p->n--;
	} else {
		prop_add(p, false);
	}
}

/*
 * Random change sequences: the agent's reconciler with its cache (the quick
 * path whenever it applies) gives after every step exactly the maps that a
 * full reconcile without a cache gives from the same start.
 */
static int quick_matches_full(struct fixture *f, unsigned int seed,
			      void (*next)(struct prop *p))
{
	struct fixture g = {0};
	struct prop p = {.seed = seed, .gw_mac_last = 1};
	struct xvpc_rc_result res;
	int quick = 0, quick_binds = 0;

	assert_int_equal(make_maps(&g, 1024), 0);
	g.env = f->env;
	g.env.ctx = &g;
	f->env.cache = xvpc_rc_cache_new();
	assert_non_null(f->env.cache);
	add_learned(f);
	add_learned(&g);
	for (int i = 0; i < 30; i++)
		prop_add(&p, i < 3);
	for (int step = 0; step < 600; step++) {
		struct xvpc_state *st = prop_state(&p);

		assert_int_equal(xvpc_reconcile(&f->maps, &f->env, st, &res),
				 0);
		/* The full path always counts the unchanged VNIs. */
		quick += !res.maps[XVPC_RC_VNIS].unchanged;
		quick_binds += res.quick && res.maps[XVPC_RC_IFACES].added;
		assert_int_equal(xvpc_reconcile(&g.maps, &g.env, st, &res), 0);
		maps_equal(f, &g);
		maps_equal(&g, f);
		xvpc_state_free(st);
		next(&p);
	}
	assert_true(quick > 200);
	xvpc_rc_cache_free(f->env.cache);
	f->env.cache = NULL;
	for (int i = 0; i < XVPC_RC__COUNT; i++)
		xvpc_mapbe_destroy(g.maps.m[i]);
	return quick_binds;
}

/* Ports created on this node among the others (as on a busy node: the
 * quick path binds their interfaces), remote ones created and deleted,
 * local ones changed and deleted (the full path). */
static void prop_step_local(struct prop *p)
{
	unsigned int r = prop_rand(p) % 100;
	int local = 0;

	for (int i = 0; i < p->n; i++)
		local += !!p->eps[i].ifname[0];
	if (r < 35) {
		prop_add(p, local < 48); /* the ifaces map holds 64 */
	} else if (r < 65) {
		prop_add(p, false);
	} else if (r < 90 || p->n > 250) {
		prop_del(p);
	} else if (p->n) {
		p->eps[prop_rand(p) % p->n].mac[3]++;
	}
}

static void test_quick_matches_full(void **state)
{
	quick_matches_full(*state, 7, prop_step);
}

/* The same with many local endpoints: new ones go the quick path too. */
static void test_quick_local_matches_full(void **state)
{
	struct fixture *f = *state;
	int binds0 = f->binds;

	assert_true(quick_matches_full(f, 11, prop_step_local) > 50);
	assert_true(f->binds > binds0);
}

/* The same with deletes that shift the rest of the endpoints. */
static void test_quick_deletes_match_full(void **state)
{
	for (unsigned int seed = 1; seed <= 4; seed++) {
		quick_matches_full(*state, seed, prop_step_deletes);
		/* Next seed: from empty maps again. */
		teardown(state);
		assert_int_equal(setup(state), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cold_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idempotent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_change_and_remove, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_learned_kept, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pending_interface, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_default_bind_writes_map,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_map, setup_small,
						teardown),
		cmocka_unit_test_setup_teardown(test_full_then_removals,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_unvalidated_rejected,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_after_full,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_quick_deletes_match_full,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_quick_local_matches_full,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_quick_matches_full, setup,
						teardown),
		cmocka_unit_test(test_mem_backend),
	};

	xvpc_log_set_level(XVPC_LOG_ERROR + 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
