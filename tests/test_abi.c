// SPDX-License-Identifier: GPL-2.0-only
/* Sizes of every struct in maps/xvpc_abi.h: the BPF programs, pinned maps
 * and user space all read these layouts, so a change must be deliberate
 * (and bump XVPC_ABI_VERSION when it touches a pinned map). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "xvpc_abi.h"

/* xvpc_lb_flow_hash(10.0.1.10, 10.0.100.1, 10000, 80, TCP), as stored. */
#define XVPC_TEST_HASH_GOLDEN 0x5ad016f8u

_Static_assert(sizeof(struct xvpc_ep_key) == 8, "xvpc_ep_key");
_Static_assert(sizeof(struct xvpc_ep) == 20, "xvpc_ep");
_Static_assert(sizeof(struct xvpc_subnet_key) == 12, "xvpc_subnet_key");
_Static_assert(sizeof(struct xvpc_subnet) == 20, "xvpc_subnet");
_Static_assert(sizeof(struct xvpc_iface) == 28, "xvpc_iface");
_Static_assert(sizeof(struct xvpc_vni) == 8, "xvpc_vni");
_Static_assert(sizeof(struct xvpc_config) == 32, "xvpc_config");
_Static_assert(offsetof(struct xvpc_config, probe_ip) == 24, "probe_ip");
_Static_assert(sizeof(struct xvpc_counter) == 16, "xvpc_counter");
_Static_assert(sizeof(struct xvpc_ep_stats) == 32, "xvpc_ep_stats");
_Static_assert(sizeof(struct xvpc_event) == 24, "xvpc_event");
_Static_assert(sizeof(struct xvpc_lb_svc_key) == 12, "xvpc_lb_svc_key");
_Static_assert(sizeof(struct xvpc_lb_svc) == 20, "xvpc_lb_svc");
_Static_assert(sizeof(struct xvpc_lb_backend) == 8, "xvpc_lb_backend");
_Static_assert(sizeof(struct xvpc_lb_config) == 40, "xvpc_lb_config");
_Static_assert(sizeof(struct xvpc_lb_ct_key) == 20, "xvpc_lb_ct_key");
_Static_assert(sizeof(struct xvpc_lb_ct) == 32, "xvpc_lb_ct");
_Static_assert(offsetof(struct xvpc_lb_ct, last_ns) == 24, "last_ns");
_Static_assert(sizeof(struct xvpc_vpc) == 24, "xvpc_vpc");
_Static_assert(sizeof(struct xvpc_node) == 8, "xvpc_node");
_Static_assert(sizeof(struct xvpc_learned) == 48, "xvpc_learned");
_Static_assert(offsetof(struct xvpc_learned, ep) == 0, "learned ep first");
_Static_assert(sizeof(struct xvpc_lb_ns_key) == 12, "xvpc_lb_ns_key");
_Static_assert(sizeof(struct xvpc_lb_ns_vip) == 8, "xvpc_lb_ns_vip");

static void test_sizes(void **state)
{
	(void)state;
	/* The checks above fail the build; this records that they ran. */
	assert_int_equal(sizeof(struct xvpc_lb_ct), 32);
	assert_int_equal(XVPC_STAT_MAX, XVPC_DROP_PROBE + 1);
}

/* The flow hash decides every node's backend choice: pin its values so a
 * change (which would move flows between nodes of different versions) is
 * loud. */
static void test_flow_hash_golden(void **state)
{
	(void)state;
	assert_int_equal(
		xvpc_lb_flow_hash(0x0a01000a, 0x0164000a, 0x1027, 0x5000, 6),
		XVPC_TEST_HASH_GOLDEN);
	assert_int_not_equal(
		xvpc_lb_flow_hash(0x0a01000a, 0x0164000a, 0x1027, 0x5000, 17),
		XVPC_TEST_HASH_GOLDEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_flow_hash_golden),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
