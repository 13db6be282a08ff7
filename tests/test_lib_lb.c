// SPDX-License-Identifier: GPL-2.0-only
/* The pure parts of the load balancer loader (lib/lb.c): validation of a
 * service and its backends, and the lookup table it installs. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "lb.h"
#include "log.h"

#define M 1021

struct fix {
	struct xvpc_maglev_ctx *ctx;
	struct xvpc_lb_backend t1[M], t2[M];
};

static const struct xvpc_lb_svc_key svc = {
	.vpc_id = 7, .vip = 0x0164000a, .port = 0x5000, .proto = 6};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	*state = f;
	return !f || xvpc_maglev_ctx_new(M, &f->ctx) ? -1 : 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	if (f)
		xvpc_maglev_ctx_free(f->ctx);
	free(f);
	return 0;
}

static struct xvpc_lb_backend_spec be(const char *ip, __u16 port, __u32 w)
{
	struct xvpc_lb_backend_spec b = {.port = htons(port), .weight = w};

	inet_pton(AF_INET, ip, &b.ip);
	return b;
}

static void test_validate_service(void **state)
{
	struct xvpc_lb_backend_spec b[2] = {be("10.0.2.5", 80, 1),
					    be("10.0.2.6", 80, 1)};
	struct xvpc_lb_svc_key k = svc;

	(void)state;
	assert_int_equal(xvpc_lb_validate(&k, b, 2, 0), 0);
	assert_int_equal(xvpc_lb_validate(&k, NULL, 0, 0), 0);
	k.proto = 1;
	assert_int_equal(xvpc_lb_validate(&k, b, 2, 0), -EINVAL);
	k = svc;
	k.port = 0;
	assert_int_equal(xvpc_lb_validate(&k, b, 2, 0), -EINVAL);
	k = svc;
	k.vip = 0;
	assert_int_equal(xvpc_lb_validate(&k, b, 2, 0), -EINVAL);
	assert_int_equal(xvpc_lb_validate(&svc, b, 2, 1000), -EINVAL);
	assert_int_equal(xvpc_lb_validate(NULL, b, 2, 0), -EINVAL);
	assert_int_equal(xvpc_lb_validate(&svc, NULL, 2, 0), -EINVAL);
}

static void test_validate_backends(void **state)
{
	struct xvpc_lb_backend_spec b[3] = {be("10.0.2.5", 80, 1),
					    be("10.0.2.5", 0, 1),
					    be("0.0.0.0", 80, 1)};

	(void)state;
	/* Port 0 is the service's port (80): the same backend twice. */
	assert_int_equal(xvpc_lb_validate(&svc, b, 2, 0), -EINVAL);
	assert_int_equal(xvpc_lb_validate(&svc, b + 2, 1, 0), -EINVAL);
	b[1].port = htons(81);
	assert_int_equal(xvpc_lb_validate(&svc, b, 2, 0), 0);
	/* More backends than table entries. */
	struct xvpc_lb_backend_spec *many = calloc(252, sizeof(*many));

	assert_non_null(many);
	for (int i = 0; i < 252; i++)
		many[i] = (struct xvpc_lb_backend_spec){htonl(0x0a000001 + i),
							0, 1};
	assert_int_equal(xvpc_lb_validate(&svc, many, 252, 251), -EINVAL);
	assert_int_equal(xvpc_lb_validate(&svc, many, 251, 251), 0);
	free(many);
}

static void test_table_entries(void **state)
{
	struct fix *f = *state;
	struct xvpc_lb_backend_spec b[2] = {be("10.0.2.5", 8080, 1),
					    be("10.0.2.6", 0, 3)};
	__u32 n5 = 0, n6 = 0;

	assert_int_equal(xvpc_lb_build_table(f->ctx, b, 2, svc.port, f->t1), 0);
	for (int k = 0; k < M; k++) {
		if (f->t1[k].ip == b[0].ip) {
			assert_int_equal(f->t1[k].port, htons(8080));
			n5++;
		} else {
			assert_int_equal(f->t1[k].ip, b[1].ip);
			assert_int_equal(f->t1[k].port, svc.port);
			n6++;
		}
	}
	/* Weights 1:3, each within one entry of its share. */
	assert_true(n5 >= M / 4 && n5 <= M / 4 + 1);
	assert_int_equal(n5 + n6, M);
}

static void test_table_order_independent(void **state)
{
	struct fix *f = *state;
	struct xvpc_lb_backend_spec a[3] = {be("10.0.2.5", 80, 1),
					    be("10.0.2.6", 80, 2),
					    be("10.0.3.1", 80, 1)};
	struct xvpc_lb_backend_spec r[3] = {a[2], a[0], a[1]};

	assert_int_equal(xvpc_lb_build_table(f->ctx, a, 3, svc.port, f->t1), 0);
	assert_int_equal(xvpc_lb_build_table(f->ctx, r, 3, svc.port, f->t2), 0);
	assert_memory_equal(f->t1, f->t2, sizeof(f->t1));
}

static void test_table_no_backends(void **state)
{
	struct fix *f = *state;
	struct xvpc_lb_backend_spec z[1] = {be("10.0.2.5", 80, 0)};

	f->t1[0].ip = 42;
	assert_int_equal(xvpc_lb_build_table(f->ctx, z, 0, svc.port, f->t1),
			 -ENOENT);
	assert_int_equal(xvpc_lb_build_table(f->ctx, z, 1, svc.port, f->t1),
			 -ENOENT);
	assert_int_equal(f->t1[0].ip, 42); /* unchanged on error */
}

static void test_flow_entry(void **state)
{
	struct xvpc_lb_ct_key k = {.vpc_id = 1,
				   .src = 0x0a01000a,
				   .dst = svc.vip,
				   .dport = svc.port,
				   .proto = 6};
	__u32 hit[8] = {0};

	(void)state;
	for (__u32 p = 1; p <= 8000; p++) {
		__u32 e;

		k.sport = htons(p);
		e = xvpc_lb_flow_entry(&k, M);
		assert_true(e < M);
		assert_int_equal(e, xvpc_lb_flow_entry(&k, M));
		hit[e * 8 / M]++;
	}
	/* Client ports spread over the table: each eighth gets 1000 +- 20%. */
	for (int i = 0; i < 8; i++)
		assert_true(hit[i] > 800 && hit[i] < 1200);
	assert_int_equal(xvpc_lb_flow_entry(&k, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validate_service),
		cmocka_unit_test(test_validate_backends),
		cmocka_unit_test_setup_teardown(test_table_entries, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_table_order_independent,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_no_backends, setup,
						teardown),
		cmocka_unit_test(test_flow_entry),
	};

	xvpc_log_set_ident("test_lib_lb"); /* refusals print what is wrong */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
