// SPDX-License-Identifier: GPL-2.0-only
/* Learning mode in the reconciler, against in-memory maps: xvpc_vpcs and
 * xvpc_nodes written as diffs, remote endpoints of learn-mode VPCs kept
 * out of xvpc_endpoints, move and delete notices applied to xvpc_learned,
 * push <-> learn switches, and the aging sweep. */
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

#include "agent/config.h"
#include "agent/learn.h"
#include "agent/mapbe.h"
#include "agent/reconcile.h"
#include "log.h"
#include "state.h"

#define NODE  "192.168.100.1"
#define OTHER "192.168.100.2"
#define GW1   "192.168.100.3"
#define GW2   "192.168.100.4"
#define SEC   1000000000ull

struct fixture {
	struct xvpc_rc_maps maps;
	struct xvpc_rc_env env;
	struct xvpc_learn_notices *notices;
	struct xvpc_learn_hooks hooks;
	int changed, deleted, flushed;
	__u64 now;
};

static int fake_ifindex(void *ctx, const char *ifname)
{
	(void)ctx;
	return strncmp(ifname, "xv", 2) ? -ENODEV : 100 + atoi(ifname + 2);
}

static void on_changed(void *ctx, const struct xvpc_ep_key *k,
		       const struct xvpc_ep *ep)
{
	struct fixture *f = ctx;

	(void)k;
	if (ep)
		f->changed++;
	else
		f->deleted++;
}

static void on_flushed(void *ctx, __u32 vpc)
{
	(void)vpc;
	((struct fixture *)ctx)->flushed++;
}

static __u64 fake_now(void *ctx)
{
	return ((struct fixture *)ctx)->now;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct xvpc_rc_maps *m;

	if (!f)
		return -1;
	*state = f;
	m = &f->maps;
	if (xvpc_mapbe_mem_new("vnis", 4, sizeof(struct xvpc_vni), 64,
			       &m->m[XVPC_RC_VNIS]) ||
	    xvpc_mapbe_mem_new("subnets", sizeof(struct xvpc_subnet_key),
			       sizeof(struct xvpc_subnet), 64,
			       &m->m[XVPC_RC_SUBNETS]) ||
	    xvpc_mapbe_mem_new("endpoints", sizeof(struct xvpc_ep_key),
			       sizeof(struct xvpc_ep), 1024,
			       &m->m[XVPC_RC_ENDPOINTS]) ||
	    xvpc_mapbe_mem_new("ifaces", 4, sizeof(struct xvpc_iface), 64,
			       &m->m[XVPC_RC_IFACES]) ||
	    xvpc_mapbe_mem_new("vpcs", 4, sizeof(struct xvpc_vpc), 64,
			       &m->vpcs) ||
	    xvpc_mapbe_mem_new("nodes", 4, sizeof(struct xvpc_node), 64,
			       &m->nodes) ||
	    xvpc_mapbe_mem_new("learned", sizeof(struct xvpc_ep_key),
			       sizeof(struct xvpc_learned), 1024, &m->learned))
		return -1;
	f->notices = xvpc_learn_notices_new();
	if (!f->notices)
		return -1;
	f->now = 1000 * SEC;
	f->hooks.ctx = f;
	f->hooks.changed = on_changed;
	f->hooks.flushed = on_flushed;
	f->hooks.now = fake_now;
	f->env.node_ip = inet_addr(NODE);
	f->env.ctx = f;
	f->env.ifindex = fake_ifindex;
	f->env.notices = f->notices;
	f->env.learn_hooks = &f->hooks;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (!f)
		return 0;
	for (int i = 0; i < XVPC_RC__COUNT; i++)
		xvpc_mapbe_destroy(f->maps.m[i]);
	xvpc_mapbe_destroy(f->maps.vpcs);
	xvpc_mapbe_destroy(f->maps.nodes);
	xvpc_mapbe_destroy(f->maps.learned);
	xvpc_learn_notices_free(f->notices);
	free(f);
	return 0;
}

/* VPC 7 (mode as given, gateways GW1 GW2 in learn mode) with subnet
 * 10.7.0.0/24 vni 700; VPC 8 in push mode with 10.8.0.0/24 vni 800.
 * Endpoints: 10.7.0.10 local (xv1), 10.8.0.10 local (xv2), 10.8.0.20
 * remote on OTHER; plus n_remote7 remote endpoints of VPC 7 10.7.0.<20+i>
 * on OTHER. Nodes: NODE, OTHER, GW1, GW2. */
static struct xvpc_state *mkstate(enum xvpc_state_mode mode7, int n_remote7,
				  const char *gw1)
{
	struct xvpc_state *st = xvpc_state_new();
	struct xvpc_state_vpc v7 = {.id = 7, .mode = mode7};
	struct xvpc_state_vpc v8 = {.id = 8};
	const char *nodes[] = {NODE, OTHER, GW1, GW2};
	char err[XVPC_STATE_ERR_LEN];

	assert_non_null(st);
	if (mode7 == XVPC_MODE_LEARN) {
		v7.n_gateways = 2;
		v7.gateways[0] = inet_addr(gw1);
		v7.gateways[1] = inet_addr(GW2);
	}
	assert_int_equal(xvpc_state_add_vpc(st, &v7), 0);
	assert_int_equal(xvpc_state_add_vpc(st, &v8), 0);
	for (__u32 i = 7; i <= 8; i++) {
		struct xvpc_state_subnet s = {
			.vpc = i,
			.net = htonl(0x0a000000 | i << 16),
			.plen = 24,
			.vni = i * 100,
			.gw_ip = htonl(0x0a000001 | i << 16),
			.gw_mac = {2, 0x78, 0, 0, 0, i},
		};
		struct xvpc_state_ep e = {
			.vpc = i,
			.ip = htonl(0x0a00000a | i << 16),
			.mac = {2, 0, 0, i, 0, 10},
			.node_ip = inet_addr(NODE),
		};

		snprintf(e.ifname, sizeof(e.ifname), "xv%u", i - 6);
		assert_int_equal(xvpc_state_add_subnet(st, &s), 0);
		assert_int_equal(xvpc_state_add_ep(st, &e), 0);
	}
	{
		struct xvpc_state_ep e = {.vpc = 8,
					  .ip = inet_addr("10.8.0.20"),
					  .mac = {2, 0, 0, 8, 0, 20},
					  .node_ip = inet_addr(OTHER)};

		assert_int_equal(xvpc_state_add_ep(st, &e), 0);
	}
	for (int i = 0; i < n_remote7; i++) {
		struct xvpc_state_ep e = {.vpc = 7,
					  .ip = htonl(0x0a070014 + i),
					  .mac = {2, 0, 0, 7, 0, 20 + i},
					  .node_ip = inet_addr(OTHER)};

		assert_int_equal(xvpc_state_add_ep(st, &e), 0);
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(xvpc_state_add_node(st, inet_addr(nodes[i])),
				 0);
	if (xvpc_state_validate(st, inet_addr(NODE), err, sizeof(err)))
		fail_msg("state invalid: %s", err);
	return st;
}

static void run(struct fixture *f, struct xvpc_state *st,
		struct xvpc_rc_result *res)
{
	assert_int_equal(xvpc_reconcile(&f->maps, &f->env, st, res), 0);
	xvpc_state_free(st);
}

static int has_ep(struct fixture *f, const char *ip, __u32 vpc)
{
	struct xvpc_ep_key k = {.vpc_id = vpc, .ip = inet_addr(ip)};
	struct xvpc_ep v;
	struct xvpc_mapbe *m = f->maps.m[XVPC_RC_ENDPOINTS];

	return !m->ops->lookup(m, &k, &v);
}

static long count_eps(struct fixture *f)
{
	struct xvpc_mapbe *m = f->maps.m[XVPC_RC_ENDPOINTS];

	return m->ops->count(m);
}

static void put_learned(struct fixture *f, const char *ip, const char *node,
			__u64 last_ns)
{
	struct xvpc_ep_key k = {.vpc_id = 7, .ip = inet_addr(ip)};
	struct xvpc_learned v = {
		.ep = {.mac = {2, 0, 0, 7, 0, 0xee},
		       .flags = XVPC_EP_LEARNED,
		       .node_ip = inet_addr(node),
		       .vni = 700},
		.created_ns = 5,
		.last_ns = last_ns,
		.hits = 42,
	};

	assert_int_equal(f->maps.learned->ops->update(f->maps.learned, &k, &v),
			 0);
}

static int get_learned(struct fixture *f, const char *ip,
		       struct xvpc_learned *v)
{
	struct xvpc_ep_key k = {.vpc_id = 7, .ip = inet_addr(ip)};

	return f->maps.learned->ops->lookup(f->maps.learned, &k, v);
}

static void test_vpcs_and_nodes(void **state)
{
	struct fixture *f = *state;
	struct xvpc_rc_result res;
	struct xvpc_vpc v;
	struct xvpc_node n;
	__u32 id = 7;
	__be32 ip = inet_addr(GW1);

	run(f, mkstate(XVPC_MODE_LEARN, 0, GW1), &res);
	assert_int_equal(res.learn.vpcs_written, 1);
	assert_int_equal(res.learn.nodes_written, 4);
	assert_int_equal(f->maps.vpcs->ops->count(f->maps.vpcs), 1);
	assert_int_equal(f->maps.vpcs->ops->lookup(f->maps.vpcs, &id, &v), 0);
	assert_int_equal(v.flags, XVPC_VPC_LEARN);
	assert_int_equal(v.n_gateways, 2);
	assert_int_equal(v.gateways[0], inet_addr(GW1));
	assert_int_equal(v.gateways[1], inet_addr(GW2));
	assert_int_equal(f->maps.nodes->ops->lookup(f->maps.nodes, &ip, &n), 0);
	/* The push-mode VPC has no entry. */
	id = 8;
	assert_int_equal(f->maps.vpcs->ops->lookup(f->maps.vpcs, &id, &v),
			 -ENOENT);

	/* Same state again: nothing written. */
	run(f, mkstate(XVPC_MODE_LEARN, 0, GW1), &res);
	assert_int_equal(res.learn.vpcs_written, 0);
	assert_int_equal(res.learn.nodes_written, 0);
	assert_int_equal(res.learn.nodes_removed, 0);

	/* This node becomes a gateway: the GATEWAY flag. */
	run(f, mkstate(XVPC_MODE_LEARN, 0, NODE), &res);
	assert_int_equal(res.learn.vpcs_written, 1);
	id = 7;
	assert_int_equal(f->maps.vpcs->ops->lookup(f->maps.vpcs, &id, &v), 0);
	assert_int_equal(v.flags, XVPC_VPC_LEARN | XVPC_VPC_GATEWAY);
	/* GW1 is no longer listed as a gateway but still a member. */
	assert_int_equal(f->maps.nodes->ops->count(f->maps.nodes), 4);
}

static void test_node_removed(void **state)
{
	struct fixture *f = *state;
	struct xvpc_rc_result res;
	struct xvpc_state *st;
	char err[XVPC_STATE_ERR_LEN];
	__be32 gone = inet_addr(OTHER), ip = inet_addr("192.168.100.9");
	struct xvpc_node n;

	run(f, mkstate(XVPC_MODE_PUSH, 0, GW1), &res);
	assert_int_equal(f->maps.nodes->ops->count(f->maps.nodes), 4);
	/* A stale member in the map goes; a new one comes. */
	st = mkstate(XVPC_MODE_PUSH, 0, GW1);
	st->nodes[1] = ip;
	assert_int_equal(
		xvpc_state_validate(st, inet_addr(NODE), err, sizeof(err)), 0);
	run(f, st, &res);
	assert_int_equal(res.learn.nodes_written, 1);
	assert_int_equal(res.learn.nodes_removed, 1);
	assert_int_equal(f->maps.nodes->ops->lookup(f->maps.nodes, &gone, &n),
			 -ENOENT);
	assert_int_equal(f->maps.nodes->ops->lookup(f->maps.nodes, &ip, &n), 0);
}

static void test_remote_not_pushed(void **state)
{
	struct fixture *f = *state;
	struct xvpc_rc_result res;

	run(f, mkstate(XVPC_MODE_LEARN, 3, GW1), &res);
	assert_int_equal(res.notices, 3);
	/* Local endpoints of both VPCs and the push-mode remote one. */
	assert_true(has_ep(f, "10.7.0.10", 7));
	assert_true(has_ep(f, "10.8.0.10", 8));
	assert_true(has_ep(f, "10.8.0.20", 8));
	assert_false(has_ep(f, "10.7.0.20", 7));
	assert_int_equal(count_eps(f), 3);
}

static void test_gateway_gets_everything(void **state)
{
	struct fixture *f = *state;
	struct xvpc_rc_result res;

	run(f, mkstate(XVPC_MODE_LEARN, 3, NODE), &res);
	assert_int_equal(res.notices, 0);
	assert_true(has_ep(f, "10.7.0.20", 7));
	assert_true(has_ep(f, "10.7.0.22", 7));
}

static void test_move_notice(void **state)
{
	struct fixture *f = *state;
	struct xvpc_rc_result res;
	struct xvpc_learned v;

	run(f, mkstate(XVPC_MODE_LEARN, 0, GW1), &res);
	/* Learned at GW2 (stale); 10.7.0.21 learned, no notice for it. */
	put_learned(f, "10.7.0.20", GW2, 900 * SEC);
	put_learned(f, "10.7.0.29", GW2, 900 * SEC);
	/* The notice: 10.7.0.20 and 10.7.0.21 live on OTHER. */
	run(f, mkstate(XVPC_MODE_LEARN, 2, GW1), &res);
	assert_int_equal(res.learn.moved, 1);
	assert_int_equal(f->changed, 1);
	assert_int_equal(get_learned(f, "10.7.0.20", &v), 0);
	assert_int_equal(v.ep.node_ip, inet_addr(OTHER));
	assert_int_equal(v.ep.flags, XVPC_EP_LEARNED | XVPC_EP_RESOLVED);
	assert_int_equal(v.ep.mac[5], 20);
	assert_int_equal(v.ep.vni, 700);
	assert_int_equal(v.created_ns, 5); /* kept */
	assert_int_equal(v.hits, 42);
	/* Not held: not created by a notice. */
	assert_int_not_equal(get_learned(f, "10.7.0.21", &v), 0);
	/* Untouched. */
	assert_int_equal(get_learned(f, "10.7.0.29", &v), 0);
	assert_int_equal(v.ep.node_ip, inet_addr(GW2));

	/* Again: already right, nothing moved. */
	run(f, mkstate(XVPC_MODE_LEARN, 2, GW1), &res);
	assert_int_equal(res.learn.moved, 0);
}

static void test_delete_notice(void **state)
{
	struct fixture *f = *state;
	struct xvpc_rc_result res;
	struct xvpc_learned v;

	run(f, mkstate(XVPC_MODE_LEARN, 2, GW1), &res);
	put_learned(f, "10.7.0.20", OTHER, 900 * SEC);
	put_learned(f, "10.7.0.21", OTHER, 900 * SEC);
	put_learned(f, "10.7.0.29", OTHER, 900 * SEC);
	/* 10.7.0.21 leaves the state: deleted. */
	run(f, mkstate(XVPC_MODE_LEARN, 1, GW1), &res);
	assert_int_equal(res.learn.forgotten, 1);
	assert_int_equal(f->deleted, 1);
	assert_int_equal(get_learned(f, "10.7.0.20", &v), 0);
	assert_int_not_equal(get_learned(f, "10.7.0.21", &v), 0);
	assert_int_equal(get_learned(f, "10.7.0.29", &v), 0);
}

static void test_push_to_learn_and_back(void **state)
{
	struct fixture *f = *state;
	struct xvpc_rc_result res;
	struct xvpc_learned v;
	__u32 id = 7;
	struct xvpc_vpc vv;
	struct xvpc_ep_key k8 = {.vpc_id = 8, .ip = inet_addr("10.8.0.99")};
	struct xvpc_learned l8 = {.ep = {.flags = XVPC_EP_LEARNED}};

	/* Push: remote endpoints of VPC 7 pushed. */
	run(f, mkstate(XVPC_MODE_PUSH, 3, GW1), &res);
	assert_int_equal(count_eps(f), 6);
	assert_true(has_ep(f, "10.7.0.21", 7));

	/* Learn: the controller's snapshot no longer lists them. */
	run(f, mkstate(XVPC_MODE_LEARN, 0, GW1), &res);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].removed, 3);
	assert_false(has_ep(f, "10.7.0.21", 7));
	assert_int_equal(f->maps.vpcs->ops->lookup(f->maps.vpcs, &id, &vv), 0);

	/* Something learned in VPC 7 (and one in VPC 8, left alone). */
	put_learned(f, "10.7.0.21", OTHER, 900 * SEC);
	put_learned(f, "10.7.0.22", OTHER, 900 * SEC);
	assert_int_equal(
		f->maps.learned->ops->update(f->maps.learned, &k8, &l8), 0);

	/* Back to push: pushed again, learned entries flushed, no entry. */
	run(f, mkstate(XVPC_MODE_PUSH, 3, GW1), &res);
	assert_int_equal(res.maps[XVPC_RC_ENDPOINTS].added, 3);
	assert_int_equal(res.learn.flushed, 2);
	assert_int_equal(res.learn.vpcs_removed, 1);
	assert_int_equal(f->flushed, 1);
	assert_true(has_ep(f, "10.7.0.21", 7));
	assert_int_not_equal(get_learned(f, "10.7.0.21", &v), 0);
	assert_int_equal(f->maps.learned->ops->count(f->maps.learned), 1);
	assert_int_equal(f->maps.vpcs->ops->lookup(f->maps.vpcs, &id, &vv),
			 -ENOENT);
}

static void test_aging(void **state)
{
	struct fixture *f = *state;
	struct xvpc_learned v;
	long n;

	put_learned(f, "10.7.0.20", OTHER, 1000 * SEC); /* idle 300 s */
	put_learned(f, "10.7.0.21", OTHER, 999 * SEC);	/* idle 301 s */
	put_learned(f, "10.7.0.22", OTHER, 1299 * SEC); /* idle 1 s */
	put_learned(f, "10.7.0.23", OTHER, 1400 * SEC); /* in the future */
	n = xvpc_learn_age(f->maps.learned, 1300 * SEC, 300 * SEC, &f->hooks);
	assert_int_equal(n, 1);
	assert_int_equal(f->deleted, 1);
	assert_int_not_equal(get_learned(f, "10.7.0.21", &v), 0);
	assert_int_equal(get_learned(f, "10.7.0.20", &v), 0);
	assert_int_equal(get_learned(f, "10.7.0.22", &v), 0);
	assert_int_equal(get_learned(f, "10.7.0.23", &v), 0);
	/* Later, everything but the future one is idle. */
	n = xvpc_learn_age(f->maps.learned, 1700 * SEC, 300 * SEC, NULL);
	assert_int_equal(n, 2);
	assert_int_equal(f->maps.learned->ops->count(f->maps.learned), 1);
	/* Empty map: nothing to do. */
	assert_int_equal(xvpc_learn_flush(f->maps.learned, 0, true), 1);
	assert_int_equal(
		xvpc_learn_age(f->maps.learned, 1700 * SEC, 300 * SEC, NULL),
		0);
}

static void test_without_learn_maps(void **state)
{
	struct fixture *f = *state;
	struct xvpc_rc_result res;

	/* Older callers without the learning maps: endpoints as before,
	 * remote endpoints of learn-mode VPCs still not pushed. */
	xvpc_mapbe_destroy(f->maps.vpcs);
	xvpc_mapbe_destroy(f->maps.nodes);
	xvpc_mapbe_destroy(f->maps.learned);
	f->maps.vpcs = f->maps.nodes = f->maps.learned = NULL;
	run(f, mkstate(XVPC_MODE_LEARN, 2, GW1), &res);
	assert_int_equal(res.notices, 2);
	assert_int_equal(count_eps(f), 3);
}

/* --learn-idle and `learn_idle =`: default 300, 1 .. 86400 seconds. */
static void test_config_learn_idle(void **unused)
{
	char *argv[] = {"xvpc-agent", "--underlay",   "ul0", "--state",
			"/x.json",    "--learn-idle", NULL,  NULL};
	const char *bad[] = {"0", "86401", "abc", "-5", "10s", ""};
	struct agent_config cfg;
	char err[AGENT_ERR_LEN];

	(void)unused;
	agent_config_defaults(&cfg);
	assert_int_equal(cfg.learn_idle_s, 300);
	argv[6] = "60";
	assert_int_equal(agent_config_load(&cfg, 7, argv, err, sizeof(err)), 0);
	assert_int_equal(cfg.learn_idle_s, 60);
	assert_int_equal(agent_config_parse_text(&cfg, "learn_idle = 86400\n",
						 "t", err, sizeof(err)),
			 0);
	assert_int_equal(cfg.learn_idle_s, 86400);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		argv[6] = (char *)bad[i];
		err[0] = '\0';
		assert_int_equal(
			agent_config_load(&cfg, 7, argv, err, sizeof(err)),
			-EINVAL);
		assert_non_null(strstr(err, "--learn-idle"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vpcs_and_nodes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_node_removed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_remote_not_pushed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gateway_gets_everything,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_move_notice, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_delete_notice, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_push_to_learn_and_back,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_aging, setup, teardown),
		cmocka_unit_test_setup_teardown(test_without_learn_maps, setup,
						teardown),
		cmocka_unit_test(test_config_learn_idle),
	};

	xvpc_log_set_level(XVPC_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
