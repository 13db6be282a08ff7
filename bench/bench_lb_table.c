// SPDX-License-Identifier: GPL-2.0-only
/* Maglev table generation benchmark (run by bench/lb.sh).
 *
 * For each table size M and backend count N (equal weights, identities
 * "10.a.b.c:80"): median build time over many runs with one reused context;
 * max/min entries per backend; disruption when one backend is removed:
 * moved/owned = entries that changed backend (the removed one's included)
 * / entries the removed one owned, so 1.0 is the ideal; collateral/owned =
 * the same without the removed one's entries. Both are summed over up to 10
 * removed backends spread over the set. Also whether adding the backend
 * back restores the table exactly.
 *
 * Prints a table; with --json FILE writes the figures there, with the
 * objects given by --machine and --ns-per-packet copied in. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "log.h"
#include "lb/maglev.h"

#define MAX_N	     1000
#define ID_LEN	     24
#define MAX_REMOVALS 10

struct run_cfg {
	__u32 m;
	__u32 n;
	int runs;
};

static const struct run_cfg cfgs[] = {
	{65537, 10, 201}, {65537, 100, 201}, {65537, 1000, 101},
	{655373, 10, 41}, {655373, 100, 41}, {655373, 1000, 21},
};

struct result {
	double build_ms; /* median */
	double min_ms;
	double portable_ms; /* median, baseline x86-64 code */
	double max_over_min;
	double moved_over_owned;      /* all changed entries / owned */
	double collateral_over_owned; /* changed, not the removed one's */
	double changed_fraction;      /* changed entries / m */
	bool restored;
};

struct backends {
	char ids[MAX_N][ID_LEN];
	struct xvpc_maglev_backend b[MAX_N];
	struct xvpc_maglev_backend less[MAX_N]; /* one removed */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void make_backends(struct backends *bk, __u32 n)
{
	for (__u32 i = 0; i < n; i++) {
		snprintf(bk->ids[i], ID_LEN, "10.%u.%u.%u:80", (i >> 16) & 0xff,
			 (i >> 8) & 0xff, (i & 0xff) + 1);
		bk->b[i].id = bk->ids[i];
		bk->b[i].id_len = strlen(bk->ids[i]);
		bk->b[i].weight = 1;
	}
}

static int time_builds(struct xvpc_maglev_ctx *ctx, const struct backends *bk,
		       const struct run_cfg *c, __u32 *table, double *median,
		       double *min)
{
	double *t = calloc(c->runs, sizeof(*t));
	int err;

	if (!t)
		return -ENOMEM;
	/* One warm-up build sizes the context and faults the table in. */
	err = xvpc_maglev_build(ctx, bk->b, c->n, table);
	for (int r = 0; r < c->runs && !err; r++) {
		double t0 = now_ms();

		err = xvpc_maglev_build(ctx, bk->b, c->n, table);
		t[r] = now_ms() - t0;
	}
	if (!err) {
		qsort(t, c->runs, sizeof(*t), cmp_double);
		*median = t[c->runs / 2];
		*min = t[0];
	}
	free(t);
	return err;
}

static int max_over_min(const __u32 *table, __u32 m, __u32 n, double *out)
{
	__u32 *counts = calloc(n, sizeof(*counts));
	__u32 lo = ~0u, hi = 0;
	int err;

	if (!counts)
		return -ENOMEM;
	err = xvpc_maglev_shares(table, m, n, counts);
	for (__u32 i = 0; i < n && !err; i++) {
		lo = counts[i] < lo ? counts[i] : lo;
		hi = counts[i] > hi ? counts[i] : hi;
	}
	if (!err)
		*out = lo ? (double)hi / lo : 0;
	free(counts);
	return err;
}

/* Removes backend `gone` from the set, rebuilds, compares; then builds the
 * full set again and checks it equals `full`. */
static int remove_one(struct xvpc_maglev_ctx *ctx, struct backends *bk, __u32 n,
		      __u32 gone, const __u32 *full, __u32 *table,
		      struct xvpc_maglev_disruption *d, bool *restored)
{
	__u32 m = xvpc_maglev_ctx_size(ctx);
	__u32 map[MAX_N];
	__u32 k = 0;
	int err;

	for (__u32 i = 0; i < n; i++)
		if (i != gone)
			bk->less[k++] = bk->b[i];
	err = xvpc_maglev_build(ctx, bk->less, n - 1, table);
	if (!err)
		err = xvpc_maglev_match(bk->b, n, bk->less, n - 1, map);
	if (!err)
		err = xvpc_maglev_disruption(full, n, table, n - 1, m, map, d);
	if (!err)
		err = xvpc_maglev_build(ctx, bk->b, n, table);
	if (!err)
		*restored = memcmp(full, table, m * sizeof(*table)) == 0;
	return err;
}

static int disruption(struct xvpc_maglev_ctx *ctx, struct backends *bk, __u32 n,
		      const __u32 *full, __u32 *table, struct result *res)
{
	__u32 m = xvpc_maglev_ctx_size(ctx);
	__u32 tries = n < MAX_REMOVALS ? n : MAX_REMOVALS;
	unsigned long moved = 0, owned = 0, changed = 0;
	int err = 0;

	res->restored = true;
	if (n < 2) {
		res->moved_over_owned = 0;
		return 0;
	}
	for (__u32 t = 0; t < tries && !err; t++) {
		struct xvpc_maglev_disruption d;
		bool restored = false;

		err = remove_one(ctx, bk, n, t * n / tries, full, table, &d,
				 &restored);
		moved += d.moved;
		owned += d.removed_owned;
		changed += d.changed;
		res->restored = res->restored && restored;
	}
	res->moved_over_owned = owned ? (double)changed / owned : 0;
	res->collateral_over_owned = owned ? (double)moved / owned : 0;
	res->changed_fraction = (double)changed / tries / m;
	return err;
}

static int run_one(const struct run_cfg *c, struct backends *bk,
		   struct result *res)
{
	struct xvpc_maglev_ctx *ctx = NULL;
	__u32 *full = NULL, *table = NULL;
	double unused;
	int err;

	err = xvpc_maglev_ctx_new(c->m, &ctx);
	if (err)
		return err;
	full = malloc(c->m * sizeof(*full));
	table = malloc(c->m * sizeof(*table));
	if (!full || !table) {
		err = -ENOMEM;
		goto out;
	}
	make_backends(bk, c->n);
	/* Baseline code first, then the code this CPU gets by default. */
	xvpc_maglev_ctx_set_portable(ctx, true);
	err = time_builds(ctx, bk, c, full, &res->portable_ms, &unused);
	xvpc_maglev_ctx_set_portable(ctx, false);
	if (!err)
		err = time_builds(ctx, bk, c, full, &res->build_ms,
				  &res->min_ms);
	if (!err)
		err = max_over_min(full, c->m, c->n, &res->max_over_min);
	if (!err)
		err = disruption(ctx, bk, c->n, full, table, res);
out:
	free(table);
	free(full);
	xvpc_maglev_ctx_free(ctx);
	return err;
}

static int add_object(json_object *root, const char *key, const char *text)
{
	json_object *o;

	if (!text)
		return 0;
	o = json_tokener_parse(text);
	if (!o) {
		pr_err("bench_lb_table: --%s is not valid JSON: %s\n", key,
		       text);
		return -EINVAL;
	}
	json_object_object_add(root, key, o);
	return 0;
}

static int write_json(const char *path, const char *machine,
		      const char *ns_per_packet, const struct result *res)
{
	json_object *root = json_object_new_object();
	json_object *build = json_object_new_object();
	json_object *mom = json_object_new_object();
	json_object *mxm = json_object_new_object();
	json_object *chg = json_object_new_object();
	json_object *col = json_object_new_object();
	json_object *rst = json_object_new_object();
	json_object *runs = json_object_new_object();
	json_object *mins = json_object_new_object();
	json_object *port = json_object_new_object();
	int err;

	for (size_t i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++) {
		char key[32];

		snprintf(key, sizeof(key), "%u/%u", cfgs[i].m, cfgs[i].n);
		json_object_object_add(build, key,
				       json_object_new_double(res[i].build_ms));
		json_object_object_add(
			mom, key,
			json_object_new_double(res[i].moved_over_owned));
		json_object_object_add(
			mxm, key, json_object_new_double(res[i].max_over_min));
		json_object_object_add(
			chg, key,
			json_object_new_double(res[i].changed_fraction));
		json_object_object_add(
			col, key,
			json_object_new_double(res[i].collateral_over_owned));
		json_object_object_add(
			rst, key, json_object_new_boolean(res[i].restored));
		json_object_object_add(mins, key,
				       json_object_new_double(res[i].min_ms));
		json_object_object_add(
			port, key, json_object_new_double(res[i].portable_ms));
		json_object_object_add(runs, key,
				       json_object_new_int(cfgs[i].runs));
	}
	json_object_object_add(root, "build_ms", build);
	json_object_object_add(root, "build_ms_min", mins);
	json_object_object_add(root, "build_ms_portable", port);
	json_object_object_add(root, "build_runs", runs);
	json_object_object_add(root, "moved_over_owned", mom);
	json_object_object_add(root, "collateral_over_owned", col);
	json_object_object_add(root, "changed_fraction_on_remove", chg);
	json_object_object_add(root, "restored_on_add", rst);
	json_object_object_add(root, "max_over_min", mxm);
	err = add_object(root, "ns_per_packet", ns_per_packet);
	if (!err)
		err = add_object(root, "machine", machine);
	if (!err &&
	    json_object_to_file_ext(path, root,
				    JSON_C_TO_STRING_PRETTY |
					    JSON_C_TO_STRING_NOSLASHESCAPE)) {
		pr_err("bench_lb_table: cannot write %s: %s\n", path,
		       json_util_get_last_err());
		err = -EIO;
	}
	json_object_put(root);
	return err;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--json FILE] [--machine JSON] "
		"[--ns-per-packet JSON]\n",
		prog);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", required_argument, NULL, 'j'},
		{"machine", required_argument, NULL, 'm'},
		{"ns-per-packet", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	const char *json = NULL, *machine = NULL, *ns = NULL;
	struct result res[sizeof(cfgs) / sizeof(cfgs[0])] = {};
	struct backends *bk;
	int opt, err = 0;

	xvpc_log_set_ident("bench_lb_table");
	while ((opt = getopt_long(argc, argv, "j:m:p:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = optarg;
			break;
		case 'm':
			machine = optarg;
			break;
		case 'p':
			ns = optarg;
			break;
		case 'h':
			usage(argv[0]);
			return 0;
		default:
			usage(argv[0]);
			return 2;
		}
	}
	bk = calloc(1, sizeof(*bk));
	if (!bk)
		return 1;

	printf("%-7s %5s %9s %8s %9s %8s %12s %11s %8s %9s\n", "M", "N",
	       "build_ms", "min_ms", "portable", "max/min", "moved/owned",
	       "collat/own", "changed", "restored");
	for (size_t i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]) && !err; i++) {
		err = run_one(&cfgs[i], bk, &res[i]);
		if (err) {
			pr_err("bench_lb_table: M=%u N=%u failed: %s\n",
			       cfgs[i].m, cfgs[i].n, strerror(-err));
			break;
		}
		printf("%-7u %5u %9.3f %8.3f %9.3f %8.4f %12.3f %11.3f %7.3f%% "
		       "%9s\n",
		       cfgs[i].m, cfgs[i].n, res[i].build_ms, res[i].min_ms,
		       res[i].portable_ms, res[i].max_over_min,
		       res[i].moved_over_owned, res[i].collateral_over_owned,
		       100 * res[i].changed_fraction,
		       res[i].restored ? "yes" : "NO");
		fflush(stdout);
	}
	if (!err && json)
		err = write_json(json, machine, ns, res);
	free(bk);
	return err ? 1 : 0;
}
