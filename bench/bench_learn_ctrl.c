// SPDX-License-Identifier: GPL-2.0-only
/*
 * Learning mode, controller side (docs/learning.md): what a big VPC costs
 * in push mode and in learn mode.
 *
 * An in-process controller (the real API handlers, api_handle(), on the
 * embedded store in a tmpfs directory) holds one VPC of N x M endpoints:
 * N nodes, M bound ports each (default 1,000 x 64 = 64,000). Each
 * endpoint talks to P peers (default 10), picked by a fixed hash.
 *
 * push  every node's snapshot holds every endpoint. Entries per node: the
 *       endpoints in its snapshot. Control bytes: the snapshots of all N
 *       nodes. Snapshots are built for --sample nodes spread over the
 *       cluster (default 20; 0: all) and the bytes scaled to N: push
 *       snapshots differ only by the node's own ifnames.
 * learn the VPC switched to learn mode (PATCH): gateways designated. Every
 *       node's snapshot is built (non-gateways: own endpoints only). Each
 *       non-gateway node then resolves the distinct remote peers of its
 *       endpoints through POST /v1/nodes/{name}/resolve (the real
 *       handler), in requests of up to 1024. Entries per node: snapshot
 *       endpoints plus the endpoints learned. Control bytes: all
 *       snapshots plus every resolve request and answer body.
 *
 * changes  in each mode, CREATES ports are created on node 0 and a sample
 *       of the other nodes asks for the changes since just before
 *       (GET state?since=): the bytes a node receives for those creations
 *       (push: every one; learn: none on a non-gateway node; gateways
 *       are left out of the learn sample). The ports are deleted again
 *       afterwards.
 *
 * Bytes are JSON bodies, without HTTP headers. Prints a table, then one
 * JSON object on the last line of stdout (also written to --out FILE):
 * entries_per_node_push, entries_per_node_learn, control_bytes_push,
 * control_bytes_learn and the details.
 *
 * usage: bench_learn_ctrl [--nodes N] [--per-node M] [--peers P]
 *                         [--sample S] [--gateways G] [--dir DIR]
 *                         [--out FILE]
 */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "controller/api.h"
#include "log.h"

#define ADMIN	      "xva_bench_learn_admin_token"
#define RESOLVE_BATCH 1024
#define CREATES	      200

static struct {
	int nodes, per_node, peers, sample, gateways;
	const char *dir, *out;
} O = {
	.nodes = 1000,
	.per_node = 64,
	.peers = 10,
	.sample = 20,
	.gateways = 2,
};

static struct store *S;
static struct api A;
static char tenant_tok[128];
static char dir[256];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "bench_learn_ctrl: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

/* One request through the real handler; returns the status, the body in
 * *body (malloc'd, may be NULL) and its length in *len. */
static int call(const char *method, const char *path, const char *token,
		const char *req_body, char **body, size_t *len)
{
	char auth[160];
	struct api_req req = {
		.method = method,
		.path = path,
		.authorization = auth,
		.body = req_body ? req_body : "",
		.body_len = req_body ? strlen(req_body) : 0,
	};
	struct api_resp resp;

	snprintf(auth, sizeof(auth), "Bearer %s", token);
	api_handle(&A, &req, &resp);
	if (len)
		*len = resp.body ? strlen(resp.body) : 0;
	if (body)
		*body = resp.body;
	else
		free(resp.body);
	return resp.status;
}

static void must(int want, const char *method, const char *path,
		 const char *token, const char *req_body, char **body)
{
	char *b = NULL;
	int st = call(method, path, token, req_body, &b, NULL);

	if (st != want)
		die("%s %s %s: HTTP %d (want %d): %s", method, path,
		    req_body ?: "", st, want, b ?: "");
	if (body)
		*body = b;
	else
		free(b);
}

/* ---- setup ------------------------------------------------------------- */

static int n_eps(void)
{
	return O.nodes * O.per_node;
}

/* Endpoint i: 10.0.0.0/16 from .2 on (.1 is the gateway); on node
 * i / per_node. */
static void ep_ip(int i, char *buf, size_t len)
{
	unsigned int a = 2 + i;

	snprintf(buf, len, "10.%u.%u.%u", a >> 16, (a >> 8) & 0xff, a & 0xff);
}

static int ep_node(int i)
{
	return i / O.per_node;
}

static void setup(void)
{
	char body[256], ip[32], *b;
	json_object *o;
	double t0 = now_s();
	bool gen;

	snprintf(dir, sizeof(dir), "%s/xvpc-bench-learn-XXXXXX",
		 O.dir			    ? O.dir
		 : access("/dev/shm", W_OK) ? "/tmp"
					    : "/dev/shm");
	if (!mkdtemp(dir))
		die("cannot make a directory in %s: %s", O.dir ?: "/dev/shm",
		    strerror(errno));
	if (store_embed_open(dir, NULL, &S))
		die("cannot open the embedded store in %s", dir);
	if (api_init(&A, S, ADMIN, &gen))
		die("cannot start the API");
	A.vpc_gateways = O.gateways;
	must(201, "POST", "/v1/tenants", ADMIN, "{\"name\":\"bench\"}", &b);
	o = json_tokener_parse(b);
	snprintf(tenant_tok, sizeof(tenant_tok), "%s",
		 json_object_get_string(json_object_object_get(o, "token")));
	json_object_put(o);
	free(b);
	for (int n = 0; n < O.nodes; n++) {
		snprintf(body, sizeof(body),
			 "{\"name\":\"n%d\",\"ip\":\"172.16.%d.%d\"}", n,
			 (n + 1) >> 8, (n + 1) & 0xff);
		must(201, "POST", "/v1/nodes", ADMIN, body, NULL);
	}
	must(201, "POST", "/v1/vpcs", tenant_tok,
	     "{\"name\":\"big\",\"cidr\":\"10.0.0.0/16\"}", NULL);
	must(201, "POST", "/v1/subnets", tenant_tok,
	     "{\"vpc\":1,\"cidr\":\"10.0.0.0/16\",\"vni\":7000}", NULL);
	for (int i = 0; i < n_eps(); i++) {
		ep_ip(i, ip, sizeof(ip));
		snprintf(body, sizeof(body),
			 "{\"subnet\":1,\"ip\":\"%s\",\"node\":\"n%d\","
			 "\"ifname\":\"v%d\"}",
			 ip, ep_node(i), i % O.per_node);
		must(201, "POST", "/v1/ports", tenant_tok, body, NULL);
	}
	fprintf(stderr,
		"bench_learn_ctrl: %d nodes, %d endpoints set up in %.1f s "
		"(%s)\n",
		O.nodes, n_eps(), now_s() - t0, dir);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void teardown(void)
{
	api_fini(&A);
	store_close(S);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- traffic pattern ---------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Peer k of endpoint i (never i itself). */
static int peer(int i, int k)
{
	int j = mix((uint64_t)i * 64 + k) % (n_eps() - 1);

	return j >= i ? j + 1 : j;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* The distinct remote peers of node n's endpoints, sorted; returns their
 * number. */
static int remote_peers(int n, int *out)
{
	int k = 0, m = 0;

	for (int i = n * O.per_node; i < (n + 1) * O.per_node; i++)
		for (int p = 0; p < O.peers; p++) {
			int j = peer(i, p);

			if (ep_node(j) != n)
				out[k++] = j;
		}
	qsort(out, k, sizeof(*out), cmp_int);
	for (int i = 0; i < k; i++)
		if (!m || out[m - 1] != out[i])
			out[m++] = out[i];
	return m;
}

/* ---- measurements ------------------------------------------------------- */

struct snap {
	size_t bytes;
	int eps;
	double secs;
};

static struct snap snapshot(int n)
{
	struct snap r = {0};
	char path[64], *b;
	json_object *o;
	double t0 = now_s();

	snprintf(path, sizeof(path), "/v1/nodes/n%d/state", n);
	if (call("GET", path, ADMIN, NULL, &b, &r.bytes) != 200)
		die("GET %s failed: %s", path, b ?: "");
	r.secs = now_s() - t0;
	o = json_tokener_parse(b);
	r.eps = json_object_array_length(
		json_object_object_get(o, "endpoints"));
	json_object_put(o);
	free(b);
	return r;
}

struct mode_result {
	double entries_per_node;
	double bytes;	       /* snapshots (+ resolves) of all nodes */
	double snapshot_bytes; /* of all nodes */
	double snapshot_secs;  /* mean build time of one */
	int gateways;
	double nongw_entries; /* mean over non-gateway nodes (learn) */
	size_t resolve_bytes, resolve_requests, resolved, missing;
	double create_bytes;   /* per node, for CREATES creations */
	double create_changes; /* changes per node, idem */
	double resolve_secs;
	int max_entries;
};

static const char *query_since(void *arg, const char *name)
{
	return !strcmp(name, "since") ? arg : NULL;
}

/* Node n's changes since rev: the body's length, *changes their number. */
static size_t changes_of(int n, uint64_t rev, int *changes)
{
	char path[64], since[32], auth[160];
	struct api_req req = {
		.method = "GET",
		.path = path,
		.authorization = auth,
		.body = "",
		.query = query_since,
		.qarg = since,
	};
	struct api_resp resp;
	json_object *o;
	size_t len;

	snprintf(path, sizeof(path), "/v1/nodes/n%d/state", n);
	snprintf(since, sizeof(since), "%llu", (unsigned long long)rev);
	snprintf(auth, sizeof(auth), "Bearer %s", ADMIN);
	api_handle(&A, &req, &resp);
	if (resp.status != 200)
		die("GET %s?since=%s: %d %s", path, since, resp.status,
		    resp.body ?: "");
	len = strlen(resp.body);
	o = json_tokener_parse(resp.body);
	if (json_object_get_boolean(json_object_object_get(o, "snapshot")))
		die("GET %s?since=%s: a snapshot, not changes", path, since);
	*changes =
		json_object_array_length(json_object_object_get(o, "changes"));
	json_object_put(o);
	free(resp.body);
	return len;
}

static bool is_gateway(json_object *vpc, int n);

/* CREATES ports on node 0; what a sample of the other nodes receives
 * (learn mode: of the non-gateway nodes; vpc: the VPC's record, or NULL
 * in push mode). */
static void measure_creations(struct mode_result *r, json_object *vpc)
{
	int step = O.sample > 0 && O.sample < O.nodes - 1
			   ? (O.nodes - 1) / O.sample
			   : 1;
	uint64_t rev = store_revision(S);
	long long ids[CREATES];
	double bytes = 0, changes = 0;
	char body[256], path[64], *b;
	int done = 0;

	for (int i = 0; i < CREATES; i++) {
		json_object *o;

		snprintf(body, sizeof(body),
			 "{\"subnet\":1,\"ip\":\"10.0.255.%d\",\"node\":\"n0\","
			 "\"ifname\":\"c%d\"}",
			 1 + i, i);
		must(201, "POST", "/v1/ports", tenant_tok, body, &b);
		o = json_tokener_parse(b);
		ids[i] = json_object_get_int64(json_object_object_get(o, "id"));
		json_object_put(o);
		free(b);
	}
	for (int n = 1; n < O.nodes; n += step) {
		int c;

		if (vpc && is_gateway(vpc, n))
			continue;
		bytes += changes_of(n, rev, &c);
		changes += c;
		done++;
	}
	r->create_bytes = bytes / done;
	r->create_changes = changes / done;
	for (int i = 0; i < CREATES; i++) {
		snprintf(path, sizeof(path), "/v1/ports/%lld", ids[i]);
		must(204, "DELETE", path, tenant_tok, NULL, NULL);
	}
}

static void measure_push(struct mode_result *r)
{
	int step = O.sample > 0 && O.sample < O.nodes ? O.nodes / O.sample : 1;
	double eps = 0, bytes = 0, secs = 0;
	int done = 0;

	memset(r, 0, sizeof(*r));
	for (int n = 0; n < O.nodes; n += step) {
		struct snap s = snapshot(n);

		eps += s.eps;
		bytes += s.bytes;
		secs += s.secs;
		if (s.eps > r->max_entries)
			r->max_entries = s.eps;
		done++;
	}
	r->entries_per_node = eps / done;
	r->snapshot_bytes = bytes / done * O.nodes;
	r->bytes = r->snapshot_bytes;
	r->snapshot_secs = secs / done;
	measure_creations(r, NULL);
	fprintf(stderr,
		"bench_learn_ctrl: push: %d snapshots in %.1f s (scaled to "
		"%d nodes)\n",
		done, secs, O.nodes);
}

/* Resolves node n's peers; adds to r. Returns the number learned. */
static int resolve_node(int n, const int *peers, int m, struct mode_result *r)
{
	size_t cap = (size_t)RESOLVE_BATCH * 48 + 64, off;
	char *body = malloc(cap), path[64], ip[32], *ans;
	int learned = 0;

	if (!body)
		die("out of memory");
	snprintf(path, sizeof(path), "/v1/nodes/n%d/resolve", n);
	for (int start = 0; start < m; start += RESOLVE_BATCH) {
		int end = start + RESOLVE_BATCH < m ? start + RESOLVE_BATCH : m;
		json_object *o;
		size_t len;
		double t0;

		off = snprintf(body, cap, "{\"endpoints\":[");
		for (int i = start; i < end; i++) {
			ep_ip(peers[i], ip, sizeof(ip));
			off += snprintf(body + off, cap - off,
					"%s{\"vpc\":1,\"ip\":\"%s\"}",
					i > start ? "," : "", ip);
		}
		snprintf(body + off, cap - off, "]}");
		t0 = now_s();
		if (call("POST", path, ADMIN, body, &ans, &len) != 200)
			die("POST %s: %s", path, ans ?: "");
		r->resolve_secs += now_s() - t0;
		r->resolve_requests++;
		r->resolve_bytes += strlen(body) + len;
		o = json_tokener_parse(ans);
		learned += json_object_array_length(
			json_object_object_get(o, "endpoints"));
		r->missing += json_object_array_length(
			json_object_object_get(o, "missing"));
		json_object_put(o);
		free(ans);
	}
	free(body);
	r->resolved += learned;
	return learned;
}

static bool is_gateway(json_object *vpc, int n)
{
	json_object *g = json_object_object_get(vpc, "gateways");
	char name[16];

	snprintf(name, sizeof(name), "n%d", n);
	for (size_t i = 0; i < json_object_array_length(g); i++)
		if (!strcmp(json_object_get_string(
				    json_object_array_get_idx(g, i)),
			    name))
			return true;
	return false;
}

static void measure_learn(struct mode_result *r)
{
	int *peers = malloc(sizeof(int) * O.per_node * O.peers);
	double entries = 0, nongw = 0, secs = 0;
	json_object *vpc;
	char *b;

	if (!peers)
		die("out of memory");
	memset(r, 0, sizeof(*r));
	must(200, "PATCH", "/v1/vpcs/1", tenant_tok, "{\"mode\":\"learn\"}",
	     &b);
	vpc = json_tokener_parse(b);
	free(b);
	r->gateways = json_object_array_length(
		json_object_object_get(vpc, "gateways"));
	for (int n = 0; n < O.nodes; n++) {
		struct snap s = snapshot(n);
		int e = s.eps;

		r->snapshot_bytes += s.bytes;
		secs += s.secs;
		if (!is_gateway(vpc, n)) {
			int m = remote_peers(n, peers);

			e += resolve_node(n, peers, m, r);
			nongw += e;
		}
		entries += e;
		if (e > r->max_entries)
			r->max_entries = e;
	}
	measure_creations(r, vpc);
	json_object_put(vpc);
	free(peers);
	r->entries_per_node = entries / O.nodes;
	r->nongw_entries = nongw / (O.nodes - r->gateways);
	r->bytes = r->snapshot_bytes + r->resolve_bytes;
	r->snapshot_secs = secs / O.nodes;
	fprintf(stderr,
		"bench_learn_ctrl: learn: %d snapshots in %.1f s, %zu "
		"resolve requests in %.1f s\n",
		O.nodes, secs, r->resolve_requests, r->resolve_secs);
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: bench_learn_ctrl [--nodes N] [--per-node M] "
			"[--peers P] [--sample S]\n"
			"                        [--gateways G] [--dir DIR] "
			"[--out FILE]\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (!strcmp(a, "--nodes"))
			O.nodes = atoi(v);
		else if (!strcmp(a, "--per-node"))
			O.per_node = atoi(v);
		else if (!strcmp(a, "--peers"))
			O.peers = atoi(v);
		else if (!strcmp(a, "--sample"))
			O.sample = atoi(v);
		else if (!strcmp(a, "--gateways"))
			O.gateways = atoi(v);
		else if (!strcmp(a, "--dir"))
			O.dir = v;
		else if (!strcmp(a, "--out"))
			O.out = v;
		else
			usage();
	}
	if (O.nodes < 2 || O.nodes > 60000 || O.per_node < 1 || O.peers < 1 ||
	    O.peers > 64 || O.gateways < 1 || O.gateways > 4 || O.sample < 0 ||
	    (long)O.nodes * O.per_node > 65000)
		die("want 2 .. 60000 nodes, 1 .. 64 peers, 1 .. 4 gateways and "
		    "at most 64500 endpoints (one /16 subnet)");
}

static json_object *jd(double x)
{
	return json_object_new_double(x);
}

int main(int argc, char **argv)
{
	struct mode_result push, learn;
	json_object *out = json_object_new_object();
	const char *s;
	double t0 = now_s();

	parse_args(argc, argv);
	xvpc_log_set_level(getenv("BENCH_LOG") ? XVPC_LOG_INFO : XVPC_LOG_WARN);
	setup();
	measure_push(&push);
	measure_learn(&learn);
	teardown();

	printf("learning mode, controller: %d nodes x %d endpoints = %d, "
	       "%d peers each, %d gateways\n",
	       O.nodes, O.per_node, n_eps(), O.peers, learn.gateways);
	printf("%-34s %16s %16s\n", "", "push", "learn");
	printf("%-34s %16.1f %16.1f\n", "entries per node (mean)",
	       push.entries_per_node, learn.entries_per_node);
	printf("%-34s %16s %16.1f\n", "  non-gateway nodes (mean)", "-",
	       learn.nongw_entries);
	printf("%-34s %16d %16d\n", "  largest node", push.max_entries,
	       learn.max_entries);
	printf("%-34s %16.0f %16.0f\n", "snapshot bytes, all nodes",
	       push.snapshot_bytes, learn.snapshot_bytes);
	printf("%-34s %16s %16zu\n", "resolve bytes (requests+answers)", "-",
	       learn.resolve_bytes);
	printf("%-34s %16.0f %16.0f\n", "control bytes, total", push.bytes,
	       learn.bytes);
	printf("%-34s %16.2f %16.2f\n", "snapshot build ms (mean)",
	       push.snapshot_secs * 1e3, learn.snapshot_secs * 1e3);
	printf("%-34s %16s %16zu\n", "resolve requests", "-",
	       learn.resolve_requests);
	printf("%-34s %16s %16.1f\n", "resolve us per query", "-",
	       learn.resolved + learn.missing
		       ? learn.resolve_secs * 1e6 /
				 (learn.resolved + learn.missing)
		       : 0.0);
	printf("%-34s %16.1f %16.1f\n", "changes/node, 200 creations (*)",
	       push.create_changes, learn.create_changes);
	printf("%-34s %16.0f %16.0f\n", "  their bytes per node",
	       push.create_bytes, learn.create_bytes);
	printf("(*) learn: non-gateway nodes\n");
	printf("push snapshot bytes: %d of %d nodes measured, scaled\n",
	       O.sample > 0 && O.sample < O.nodes ? O.sample : O.nodes,
	       O.nodes);

	json_object_object_add(out, "nodes", json_object_new_int(O.nodes));
	json_object_object_add(out, "endpoints", json_object_new_int(n_eps()));
	json_object_object_add(out, "peers_per_endpoint",
			       json_object_new_int(O.peers));
	json_object_object_add(out, "gateways",
			       json_object_new_int(learn.gateways));
	json_object_object_add(out, "entries_per_node_push",
			       jd(push.entries_per_node));
	json_object_object_add(out, "entries_per_node_learn",
			       jd(learn.entries_per_node));
	json_object_object_add(out, "entries_per_nongateway_node_learn",
			       jd(learn.nongw_entries));
	json_object_object_add(out, "control_bytes_push", jd(push.bytes));
	json_object_object_add(out, "control_bytes_learn", jd(learn.bytes));
	json_object_object_add(out, "snapshot_bytes_learn",
			       jd(learn.snapshot_bytes));
	json_object_object_add(out, "resolve_bytes_learn",
			       json_object_new_int64(learn.resolve_bytes));
	json_object_object_add(out, "resolve_requests",
			       json_object_new_int64(learn.resolve_requests));
	json_object_object_add(out, "resolved",
			       json_object_new_int64(learn.resolved));
	json_object_object_add(out, "resolve_missing",
			       json_object_new_int64(learn.missing));
	json_object_object_add(out, "creations", json_object_new_int(CREATES));
	json_object_object_add(out, "creation_changes_per_node_push",
			       jd(push.create_changes));
	json_object_object_add(out, "creation_changes_per_node_learn",
			       jd(learn.create_changes));
	json_object_object_add(out, "creation_bytes_per_node_push",
			       jd(push.create_bytes));
	json_object_object_add(out, "creation_bytes_per_node_learn",
			       jd(learn.create_bytes));
	json_object_object_add(out, "snapshot_ms_push",
			       jd(push.snapshot_secs * 1e3));
	json_object_object_add(out, "snapshot_ms_learn",
			       jd(learn.snapshot_secs * 1e3));
	json_object_object_add(
		out, "push_sampled_nodes",
		json_object_new_int(O.sample > 0 && O.sample < O.nodes
					    ? O.sample
					    : O.nodes));
	json_object_object_add(out, "seconds", jd(now_s() - t0));
	s = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN);
	printf("%s\n", s);
	if (O.out) {
		FILE *f = fopen(O.out, "w");

		if (!f || fprintf(f, "%s\n", s) < 0 || fclose(f))
			die("cannot write %s: %s", O.out, strerror(errno));
	}
	json_object_put(out);
	return 0;
}
