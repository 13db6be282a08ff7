// SPDX-License-Identifier: GPL-2.0-only
/* Maglev table generation (lb/maglev.c): the properties a user of the load
 * balancer relies on. Each test builds its tables in the fixture's buffers,
 * freed in the teardown even when an assertion fails. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "lb/hash.h"
#include "lb/maglev.h"

#define M      XVPC_MAGLEV_M_DEFAULT
#define MAX_M  655373 /* the largest allowed size */
#define MAX_N  1000
#define ID_LEN 32

/* Permutation of "10.0.2.5:80" at M = 65537, also computed by an
 * independent SipHash implementation; FNV-1a of the table of ten backends
 * make_backends() gives. */
#define GOLDEN_OFFSET	 55899
#define GOLDEN_SKIP	 35103
#define GOLDEN_TABLE_FNV 0x28dd51ffe87b2e61ULL

struct fix {
	struct xvpc_maglev_ctx *ctx; /* M entries */
	char ids[MAX_N + 1][ID_LEN];
	struct xvpc_maglev_backend b[MAX_N + 1];
	struct xvpc_maglev_backend b2[MAX_N + 1];
	__u32 map[MAX_N + 1];
	__u32 counts[MAX_N + 1];
	__u32 *t1, *t2, *t3; /* MAX_M entries each */
	__u32 *ref;	     /* the reference implementation's table */
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	f->t1 = malloc(MAX_M * sizeof(__u32));
	f->t2 = malloc(MAX_M * sizeof(__u32));
	f->t3 = malloc(MAX_M * sizeof(__u32));
	f->ref = malloc(MAX_M * sizeof(__u32));
	if (!f->t1 || !f->t2 || !f->t3 || !f->ref)
		return -1;
	return xvpc_maglev_ctx_new(M, &f->ctx) ? -1 : 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	if (!f)
		return 0;
	xvpc_maglev_ctx_free(f->ctx);
	free(f->t1);
	free(f->t2);
	free(f->t3);
	free(f->ref);
	free(f);
	return 0;
}

/* n backends "10.0.x.y:80", listed in identity order, weight 1. */
static void make_backends(struct fix *f, __u32 n)
{
	for (__u32 i = 0; i < n; i++) {
		snprintf(f->ids[i], ID_LEN, "10.0.%03u.%03u:80", i / 250,
			 i % 250 + 1);
		f->b[i].id = f->ids[i];
		f->b[i].id_len = strlen(f->ids[i]);
		f->b[i].weight = 1;
	}
}

/* The paper's pseudo-code, written independently of lb/maglev.c: the full
 * permutation computed with modulo, round robin in identity order, each
 * backend walking to its next free entry. */
static void reference_build(const struct xvpc_maglev_backend *b, __u32 n,
			    __u32 m, __u32 *entry, __u32 *next)
{
	__u32 offset[MAX_N], skip[MAX_N], filled = 0;

	for (__u32 i = 0; i < n; i++) {
		assert_int_equal(xvpc_maglev_permutation(b[i].id, b[i].id_len,
							 m, &offset[i],
							 &skip[i]),
				 0);
		next[i] = 0;
	}
	for (__u32 k = 0; k < m; k++)
		entry[k] = XVPC_MAGLEV_NONE;
	for (;;) {
		for (__u32 i = 0; i < n; i++) {
			__u32 c = (offset[i] + (__u64)next[i] * skip[i]) % m;

			while (entry[c] != XVPC_MAGLEV_NONE) {
				next[i]++;
				c = (offset[i] + (__u64)next[i] * skip[i]) % m;
			}
			entry[c] = i;
			next[i]++;
			if (++filled == m)
				return;
		}
	}
}

static void test_siphash_reference_vectors(void **state)
{
	__u8 key_bytes[16], msg[15];
	struct xvpc_sipkey key;

	(void)state;
	for (int i = 0; i < 16; i++)
		key_bytes[i] = i;
	for (int i = 0; i < 15; i++)
		msg[i] = i;
	key = xvpc_sipkey_from_bytes(key_bytes);
	/* From the SipHash paper's appendix and reference test vectors. */
	assert_true(xvpc_siphash24(&key, msg, 0) == 0x726fdb47dd0e0e31ULL);
	assert_true(xvpc_siphash24(&key, msg, 15) == 0xa129ca6149be45e5ULL);
}

static bool is_prime(__u32 v)
{
	if (v < 2)
		return false;
	for (__u32 d = 2; d * d <= v; d++)
		if (v % d == 0)
			return false;
	return true;
}

static void test_sizes(void **state)
{
	const __u32 want[] = {251, 4099, 65537, 655373};
	struct xvpc_maglev_ctx *ctx = NULL;
	size_t count;
	const __u32 *sizes = xvpc_maglev_sizes(&count);

	(void)state;
	assert_true(count >= 4);
	for (size_t i = 0; i < count; i++) {
		assert_true(is_prime(sizes[i]));
		assert_true(i == 0 || sizes[i] > sizes[i - 1]);
	}
	for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++)
		assert_true(xvpc_maglev_size_ok(want[i]));
	/* Not prime, prime but not listed, zero. */
	assert_int_equal(xvpc_maglev_ctx_new(65536, &ctx), -EINVAL);
	assert_int_equal(xvpc_maglev_ctx_new(65539, &ctx), -EINVAL);
	assert_int_equal(xvpc_maglev_ctx_new(0, &ctx), -EINVAL);
	assert_null(ctx);
	assert_int_equal(xvpc_maglev_ctx_new(251, &ctx), 0);
	assert_int_equal(xvpc_maglev_ctx_size(ctx), 251);
	xvpc_maglev_ctx_free(ctx);
}

/* Equal weights: exactly the paper's table, at several sizes. */
static void test_matches_paper(void **state)
{
	static const struct {
		__u32 m, n;
	} cases[] = {
		{251, 7},     {251, 251},  {1021, 37},	 {4099, 10},
		{4099, 100},  {16381, 50}, {M, 1},	 {M, 10},
		{M, 100},     {M, 1000},   {131071, 20}, {262147, 300},
		{MAX_M, 100},
	};
	struct fix *f = *state;

	for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
		struct xvpc_maglev_ctx *ctx = NULL;
		__u32 m = cases[c].m;
		int err;

		make_backends(f, cases[c].n);
		assert_int_equal(xvpc_maglev_ctx_new(m, &ctx), 0);
		err = xvpc_maglev_build(ctx, f->b, cases[c].n, f->t1);
		xvpc_maglev_ctx_free(ctx);
		assert_int_equal(err, 0);
		reference_build(f->b, cases[c].n, m, f->ref, f->map);
		assert_memory_equal(f->t1, f->ref, m * sizeof(__u32));
	}
}

/* Same inputs, same table: again with the same context, with a fresh one,
 * and in reverse and shuffled input order (compared by identity). */
static void test_deterministic(void **state)
{
	struct fix *f = *state;
	struct xvpc_maglev_ctx *ctx2 = NULL;
	const __u32 n = 100;
	__u32 seed = 12345;

	make_backends(f, n);
	for (__u32 i = 0; i < n; i++)
		f->b[i].weight = 1 + i % 3;
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, n, f->t1), 0);
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, n, f->t2), 0);
	assert_memory_equal(f->t1, f->t2, M * sizeof(__u32));
	assert_int_equal(xvpc_maglev_ctx_new(M, &ctx2), 0);
	assert_int_equal(xvpc_maglev_build(ctx2, f->b, n, f->t2), 0);
	xvpc_maglev_ctx_free(ctx2);
	assert_memory_equal(f->t1, f->t2, M * sizeof(__u32));

	for (int order = 0; order < 2; order++) {
		for (__u32 i = 0; i < n; i++)
			f->b2[i] = f->b[n - 1 - i];
		if (order == 1) {
			for (__u32 i = n - 1; i > 0; i--) {
				struct xvpc_maglev_backend tmp;
				__u32 j;

				seed = seed * 1103515245 + 12345;
				j = (seed >> 8) % (i + 1);
				tmp = f->b2[i];
				f->b2[i] = f->b2[j];
				f->b2[j] = tmp;
			}
		}
		assert_int_equal(xvpc_maglev_build(f->ctx, f->b2, n, f->t2), 0);
		for (__u32 k = 0; k < M; k++)
			assert_ptr_equal(f->b[f->t1[k]].id, f->b2[f->t2[k]].id);
	}
}

/* The baseline code and the x86-64-v3 copy (where this CPU has it) build
 * the same tables. */
static void test_portable_same(void **state)
{
	static const __u32 ns[] = {1, 10, 100, 1000};
	struct fix *f = *state;
	struct xvpc_maglev_ctx *portable = NULL;

	assert_int_equal(xvpc_maglev_ctx_new(M, &portable), 0);
	xvpc_maglev_ctx_set_portable(portable, true);
	for (size_t c = 0; c < sizeof(ns) / sizeof(*ns); c++) {
		for (int weighted = 0; weighted < 2; weighted++) {
			make_backends(f, ns[c]);
			for (__u32 i = 0; weighted && i < ns[c]; i++)
				f->b[i].weight = 1 + i % 7;
			assert_int_equal(
				xvpc_maglev_build(f->ctx, f->b, ns[c], f->t1),
				0);
			assert_int_equal(
				xvpc_maglev_build(portable, f->b, ns[c], f->t2),
				0);
			if (memcmp(f->t1, f->t2, M * sizeof(__u32))) {
				xvpc_maglev_ctx_free(portable);
				fail_msg("n=%u weighted=%d: tables differ",
					 ns[c], weighted);
			}
		}
	}
	xvpc_maglev_ctx_free(portable);
}

/* A fixed input gives a fixed table on every machine and every release:
 * a change here moves every flow of a cluster during an upgrade. */
static void test_golden(void **state)
{
	struct fix *f = *state;
	__u32 offset, skip;
	__u64 h = 1469598103934665603ULL;

	assert_int_equal(
		xvpc_maglev_permutation("10.0.2.5:80", 11, M, &offset, &skip),
		0);
	assert_int_equal(offset, GOLDEN_OFFSET);
	assert_int_equal(skip, GOLDEN_SKIP);
	make_backends(f, 10);
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, 10, f->t1), 0);
	for (__u32 k = 0; k < M; k++)
		h = (h ^ f->t1[k]) * 1099511628211ULL;
	assert_true(h == GOLDEN_TABLE_FNV);
}

/* |count - exact share| < 1 entry (no integer count can do better), which
 * is within 1% of the share for every backend with >= 100 entries. */
static void assert_shares(struct fix *f, __u32 n)
{
	__u64 total = 0;

	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, n, f->t1), 0);
	assert_int_equal(xvpc_maglev_shares(f->t1, M, n, f->counts), 0);
	for (__u32 i = 0; i < n; i++)
		total += f->b[i].weight;
	for (__u32 i = 0; i < n; i++) {
		double exact = (double)M * f->b[i].weight / total;
		double err = fabs(f->counts[i] - exact);

		if (err >= 1.0 || (exact >= 100 && err > 0.01 * exact))
			fail_msg("n=%u backend %u weight %u: %u entries, "
				 "share %.3f",
				 n, i, f->b[i].weight, f->counts[i], exact);
	}
}

static void test_shares_equal_weights(void **state)
{
	static const __u32 ns[] = {1, 2, 3, 10, 100, 500, 1000};
	struct fix *f = *state;

	for (size_t c = 0; c < sizeof(ns) / sizeof(*ns); c++) {
		make_backends(f, ns[c]);
		assert_shares(f, ns[c]);
		/* Equal weights: every backend within 1% even at N = 1000
		 * (65 or 66 entries for 65.537). */
		for (__u32 i = 0; i < ns[c]; i++)
			assert_true(fabs(f->counts[i] - (double)M / ns[c]) <=
				    0.01 * M / ns[c]);
	}
}

static void test_shares_unequal_weights(void **state)
{
	static const __u32 ns[] = {2, 10, 100, 1000};
	struct fix *f = *state;

	for (size_t c = 0; c < sizeof(ns) / sizeof(*ns); c++) {
		make_backends(f, ns[c]);
		for (__u32 i = 0; i < ns[c]; i++)
			f->b[i].weight = 1 + i % 4;
		assert_shares(f, ns[c]);
		for (__u32 i = 0; i < ns[c]; i++)
			f->b[i].weight = 1 + (i * 7919) % 100;
		assert_shares(f, ns[c]);
	}
	/* Weights far apart: one huge, the rest tiny. */
	make_backends(f, 50);
	f->b[7].weight = 1000000;
	assert_shares(f, 50);
	f->b[7].weight = 0xffffffffu;
	assert_shares(f, 50);
}

/* Removes backend `gone` of n; returns all changed entries / entries it
 * owned, checks the bookkeeping, and that adding it back (at the end of the
 * array this time) restores the table. */
static double remove_and_restore(struct fix *f, __u32 n, __u32 gone,
				 double *collateral)
{
	struct xvpc_maglev_disruption d;
	__u32 k = 0;

	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, n, f->t1), 0);
	assert_int_equal(xvpc_maglev_shares(f->t1, M, n, f->counts), 0);
	for (__u32 i = 0; i < n; i++)
		if (i != gone)
			f->b2[k++] = f->b[i];
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b2, n - 1, f->t2), 0);
	assert_int_equal(xvpc_maglev_match(f->b, n, f->b2, n - 1, f->map), 0);
	assert_int_equal(f->map[gone], XVPC_MAGLEV_NONE);
	assert_int_equal(
		xvpc_maglev_disruption(f->t1, n, f->t2, n - 1, M, f->map, &d),
		0);
	assert_int_equal(d.removed_owned, f->counts[gone]);
	assert_int_equal(d.added_owned, 0);
	assert_int_equal(d.changed, d.removed_owned + d.moved);

	f->b2[n - 1] = f->b[gone];
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b2, n, f->t3), 0);
	for (__u32 e = 0; e < M; e++)
		assert_ptr_equal(f->b[f->t1[e]].id, f->b2[f->t3[e]].id);
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, n, f->t3), 0);
	assert_memory_equal(f->t1, f->t3, M * sizeof(__u32));

	*collateral = (double)d.moved / d.removed_owned;
	return (double)d.changed / d.removed_owned;
}

static void test_disruption(void **state)
{
	struct fix *f = *state;
	double ratio, collateral;

	make_backends(f, 100);
	for (__u32 gone = 0; gone < 100; gone += 33) {
		ratio = remove_and_restore(f, 100, gone, &collateral);
		print_message("N=100 remove %u: moved/owned %.3f "
			      "(collateral %.3f)\n",
			      gone, ratio, collateral);
		assert_true(ratio <= 2.0);
	}
	make_backends(f, 10);
	ratio = remove_and_restore(f, 10, 4, &collateral);
	print_message("N=10 remove 4: moved/owned %.3f\n", ratio);
	assert_true(ratio <= 1.2);
	/* Weighted sets restore too. */
	make_backends(f, 30);
	for (__u32 i = 0; i < 30; i++)
		f->b[i].weight = 1 + i % 5;
	ratio = remove_and_restore(f, 30, 12, &collateral);
	assert_true(ratio <= 2.0);
}

static __u32 lcg(__u32 *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 8;
}

/* Random sets (fixed seed): sizes, counts, weights 0..9. Every build
 * either has no weight and says -ENOENT, or gives each backend its exact
 * share to within one entry, the same table in another input order, and
 * the same table from the baseline code. */
static void test_random_sets(void **state)
{
	static const __u32 sizes[] = {251, 1021, 4099, 16381, M};
	struct fix *f = *state;
	__u32 seed = 2016;

	for (int iter = 0; iter < 120; iter++) {
		__u32 m = sizes[lcg(&seed) % 5];
		__u32 n = 1 + lcg(&seed) % (m < 300 ? m : 300);
		struct xvpc_maglev_ctx *ctx = NULL, *portable = NULL;
		__u64 total = 0;
		int err, err2, err3 = -1;

		make_backends(f, n);
		for (__u32 i = 0; i < n; i++) {
			f->b[i].weight = lcg(&seed) % 10;
			total += f->b[i].weight;
		}
		for (__u32 i = 0; i < n; i++)
			f->b2[i] = f->b[(i * 7 + 3) % n];
		if (n % 7 == 0) /* not a permutation then */
			for (__u32 i = 0; i < n; i++)
				f->b2[i] = f->b[n - 1 - i];
		err = xvpc_maglev_ctx_new(m, &ctx);
		err2 = xvpc_maglev_ctx_new(m, &portable);
		if (!err && !err2) {
			xvpc_maglev_ctx_set_portable(portable, true);
			err = xvpc_maglev_build(ctx, f->b, n, f->t1);
			err2 = xvpc_maglev_build(ctx, f->b2, n, f->t2);
			err3 = xvpc_maglev_build(portable, f->b, n, f->t3);
		}
		xvpc_maglev_ctx_free(ctx);
		xvpc_maglev_ctx_free(portable);
		if (total == 0) {
			assert_int_equal(err, -ENOENT);
			continue;
		}
		assert_int_equal(err, 0);
		assert_int_equal(err2, 0);
		assert_int_equal(err3, 0);
		assert_memory_equal(f->t1, f->t3, m * sizeof(__u32));
		assert_int_equal(xvpc_maglev_shares(f->t1, m, n, f->counts), 0);
		for (__u32 i = 0; i < n; i++) {
			double exact = (double)m * f->b[i].weight / total;

			if (fabs(f->counts[i] - exact) >= 1.0)
				fail_msg("m=%u n=%u backend %u: %u entries, "
					 "share %.3f",
					 m, n, i, f->counts[i], exact);
		}
		for (__u32 k = 0; k < m; k++)
			assert_ptr_equal(f->b[f->t1[k]].id, f->b2[f->t2[k]].id);
	}
}

static void test_one_backend(void **state)
{
	struct fix *f = *state;

	make_backends(f, 1);
	f->b[0].weight = 17;
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, 1, f->t1), 0);
	for (__u32 k = 0; k < M; k++)
		assert_int_equal(f->t1[k], 0);
}

static void test_refused(void **state)
{
	struct fix *f = *state;
	struct xvpc_maglev_ctx *small = NULL;

	make_backends(f, 252);
	memset(f->t1, 0xab, M * sizeof(__u32));
	memcpy(f->t2, f->t1, M * sizeof(__u32));

	/* Zero backends, or all of weight 0: a VIP without backends. */
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, 0, f->t1), -ENOENT);
	assert_int_equal(xvpc_maglev_build(f->ctx, NULL, 0, f->t1), -ENOENT);
	for (__u32 i = 0; i < 3; i++)
		f->b[i].weight = 0;
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, 3, f->t1), -ENOENT);
	f->b[0].weight = f->b[1].weight = f->b[2].weight = 1;

	/* M smaller than N. */
	assert_int_equal(xvpc_maglev_ctx_new(251, &small), 0);
	assert_int_equal(xvpc_maglev_build(small, f->b, 252, f->t1), -EINVAL);
	assert_int_equal(xvpc_maglev_build(small, f->b, 251, f->t1), 0);
	xvpc_maglev_ctx_free(small);
	memcpy(f->t1, f->t2, M * sizeof(__u32));

	/* Duplicate identity, even with a different weight. */
	f->b[5].id = f->ids[2];
	f->b[5].id_len = strlen(f->ids[2]);
	f->b[5].weight = 3;
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, 10, f->t1), -EINVAL);
	make_backends(f, 10);

	/* Bad identities and arguments. */
	f->b[3].id_len = 0;
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, 10, f->t1), -EINVAL);
	f->b[3].id_len = XVPC_MAGLEV_ID_MAX + 1;
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, 10, f->t1), -EINVAL);
	f->b[3].id_len = 4;
	f->b[3].id = NULL;
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, 10, f->t1), -EINVAL);
	make_backends(f, 10);
	assert_int_equal(xvpc_maglev_build(f->ctx, NULL, 10, f->t1), -EINVAL);
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, 10, NULL), -EINVAL);
	assert_int_equal(xvpc_maglev_build(NULL, f->b, 10, f->t1), -EINVAL);

	/* None of that touched the table. */
	assert_memory_equal(f->t1, f->t2, M * sizeof(__u32));
}

static void test_weight_zero_gets_nothing(void **state)
{
	struct fix *f = *state;

	make_backends(f, 10);
	f->b[3].weight = 0;
	f->b[8].weight = 0;
	assert_int_equal(xvpc_maglev_build(f->ctx, f->b, 10, f->t1), 0);
	assert_int_equal(xvpc_maglev_shares(f->t1, M, 10, f->counts), 0);
	assert_int_equal(f->counts[3], 0);
	assert_int_equal(f->counts[8], 0);
	/* The others split the table as if those two were absent. */
	for (__u32 i = 0; i < 10; i++)
		if (i != 3 && i != 8)
			assert_true(f->counts[i] == M / 8 ||
				    f->counts[i] == M / 8 + 1);
}

static void test_helpers(void **state)
{
	const __u32 old_t[6] = {0, 1, 2, 0, 1, 2};
	const __u32 new_t[6] = {0, 1, 1, 0, 2, 1};
	const __u32 old_to_new[3] = {0, 1, XVPC_MAGLEV_NONE};
	const __u32 bad_map[3] = {0, 7, XVPC_MAGLEV_NONE};
	struct xvpc_maglev_backend a[2] = {
		{.id = "x", .id_len = 1, .weight = 1},
		{.id = "yy", .id_len = 2, .weight = 1},
	};
	struct xvpc_maglev_backend b[3] = {
		{.id = "z", .id_len = 1, .weight = 1},
		{.id = "yy", .id_len = 2, .weight = 1},
		{.id = "y", .id_len = 1, .weight = 1},
	};
	struct xvpc_maglev_disruption d;
	__u32 counts[3], map[2];

	(void)state;
	assert_int_equal(xvpc_maglev_shares(old_t, 6, 3, counts), 0);
	assert_int_equal(counts[0], 2);
	assert_int_equal(counts[2], 2);
	assert_int_equal(xvpc_maglev_shares(old_t, 6, 2, counts), -EINVAL);

	/* Old 0,1,2 -> new 0,1 plus new 2 added. Entry 2: removed -> kept;
	 * 4: kept -> added; 5: removed -> kept. */
	assert_int_equal(
		xvpc_maglev_disruption(old_t, 3, new_t, 3, 6, old_to_new, &d),
		0);
	assert_int_equal(d.changed, 3);
	assert_int_equal(d.removed_owned, 2);
	assert_int_equal(d.added_owned, 1);
	assert_int_equal(d.moved, 0);
	assert_int_equal(
		xvpc_maglev_disruption(old_t, 3, new_t, 3, 6, bad_map, &d),
		-EINVAL);

	assert_int_equal(xvpc_maglev_match(a, 2, b, 3, map), 0);
	assert_int_equal(map[0], XVPC_MAGLEV_NONE);
	assert_int_equal(map[1], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash_reference_vectors),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_helpers),
		cmocka_unit_test_setup_teardown(test_matches_paper, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_deterministic, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_golden, setup, teardown),
		cmocka_unit_test_setup_teardown(test_portable_same, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shares_equal_weights,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_shares_unequal_weights,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_disruption, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_random_sets, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_one_backend, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_weight_zero_gets_nothing,
						setup, teardown),
	};

	/* Refusals are expected here; keep their warnings out of the log. */
	xvpc_log_set_level(XVPC_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
