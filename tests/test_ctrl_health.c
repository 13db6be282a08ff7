// SPDX-License-Identifier: GPL-2.0-only
/* POST /v1/nodes/{name}/health end to end: the real server on a loopback
 * ephemeral port with an embedded store in a temporary directory, driven
 * with libcurl.
 *
 *   tenant A, VPC 10.0.0.0/16, subnet 10.0.1.0/24:
 *     10.0.1.10 on n1 (the client), 10.0.1.20 on n2, 10.0.1.21 on n3
 *     load balancer LA 10.0.100.1:80 -> 10.0.1.20, 10.0.1.21:8080
 *   tenant B, VPC 10.0.0.0/16, subnet 10.0.1.0/24:
 *     10.0.1.20 on n3 (the same address as A's backend on n2)
 *     load balancer LB 10.0.100.1:80 -> 10.0.1.20
 *
 * Covered: a report reaches the client node's state (snapshot and change
 * stream) as "healthy": false, parsed by lib/state.c as `down`, and back;
 * a repeated report writes nothing; a full report clears the node's other
 * reports; a node reporting a backend not bound to it is refused, also
 * across tenants with the same address; every bad field is named and
 * changes nothing; a deleted load balancer's reports are gone; the
 * leader's sweep clears reports of a moved backend, of a down node and of
 * a backend taken out of its load balancer;
 * `backend_health` in GET /v1/loadbalancers/{id}; a public load balancer's
 * report reaches a node that gets only it. */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "controller/api.h"
#include "controller/lbhealth.h"
#include "log.h"
#include "netutil.h"
#include "state.h"

#define ADMIN "xva_health_test_admin_token_0"

struct fix {
	char dir[64];
	struct store *s;
	struct api api;
	struct http_server *srv;
	char base[64];
	char ta[128], tb[128];
	int64_t la, lb;	    /* the load balancers of A and B */
	int64_t port20;	    /* A's 10.0.1.20 */
	int64_t vpc, sub_a; /* A's */
};

static struct fix *F;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

struct buf {
	char *p;
	size_t n;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *arg)
{
	struct buf *b = arg;
	char *p = realloc(b->p, b->n + sz * nm + 1);

	if (!p)
		return 0;
	memcpy(p + b->n, d, sz * nm);
	b->p = p;
	b->n += sz * nm;
	p[b->n] = '\0';
	return sz * nm;
}

static long http(const char *method, const char *path, const char *token,
		 const char *body, json_object **out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct buf b = {0};
	char url[512], line[256];
	long status = 0;

	snprintf(url, sizeof(url), "%s%s", F->base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
	h = curl_slist_append(h, line);
	if (body) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (out)
		*out = b.p ? json_tokener_parse(b.p) : NULL;
	free(b.p);
	return status;
}

static const char *sget(json_object *o, const char *k)
{
	return json_object_get_string(json_object_object_get(o, k));
}

static int64_t iget(json_object *o, const char *k)
{
	return json_object_get_int64(json_object_object_get(o, k));
}

static int64_t create(const char *path, const char *token, const char *body)
{
	json_object *o = NULL;
	long st = http("POST", path, token, body, &o);
	int64_t id;

	if (st != 201)
		fail_msg("POST %s %s: %ld: %s", path, body, st,
			 o ? json_object_to_json_string(o) : "");
	id = iget(o, "id");
	json_object_put(o);
	return id;
}

static void new_tenant(const char *name, char *tok, size_t len)
{
	json_object *o;

	snprintf(tok, len, "{\"name\":\"%s\"}", name);
	assert_int_equal(http("POST", "/v1/tenants", ADMIN, tok, &o), 201);
	snprintf(tok, len, "%s", sget(o, "token"));
	json_object_put(o);
}

static int64_t add_port(const char *tok, int64_t sub, const char *ip,
			const char *node)
{
	static int n;
	char body[192];

	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"ip\":\"%s\",\"node\":\"%s\","
		 "\"ifname\":\"xh%d\"}",
		 (long long)sub, ip, node, n++);
	return create("/v1/ports", tok, body);
}

/* A tenant's VPC 10.0.0.0/16 with subnet 10.0.1.0/24: *vpc, returns the
 * subnet. */
static int64_t add_net(const char *tok, int64_t *vpc)
{
	char body[128];

	*vpc = create("/v1/vpcs", tok,
		      "{\"name\":\"v\",\"cidr\":\"10.0.0.0/16\"}");
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.0.1.0/24\"}",
		 (long long)*vpc);
	return create("/v1/subnets", tok, body);
}

static int64_t add_lb(const char *tok, int64_t vpc, const char *vip,
		      const char *backends)
{
	char body[512];

	snprintf(body, sizeof(body),
		 "{\"vpc\":%lld,\"vip\":\"%s\",\"port\":80,\"protocol\":"
		 "\"tcp\",\"backends\":%s}",
		 (long long)vpc, vip, backends);
	return create("/v1/loadbalancers", tok, body);
}

static int setup(void **state)
{
	int64_t vpc_b, sub_b;
	bool gen;

	F = calloc(1, sizeof(*F));
	if (!F)
		return -1;
	strcpy(F->dir, "/tmp/xvpc-hc-XXXXXX");
	if (!mkdtemp(F->dir))
		return -1;
	if (store_embed_open(F->dir, NULL, &F->s) ||
	    api_init(&F->api, F->s, ADMIN, &gen) ||
	    http_start(&F->api, "127.0.0.1:0", &F->srv))
		return -1;
	snprintf(F->base, sizeof(F->base), "http://127.0.0.1:%u",
		 http_port(F->srv));
	new_tenant("alpha", F->ta, sizeof(F->ta));
	new_tenant("beta", F->tb, sizeof(F->tb));
	create("/v1/nodes", ADMIN, "{\"name\":\"n1\",\"ip\":\"192.168.9.1\"}");
	create("/v1/nodes", ADMIN, "{\"name\":\"n2\",\"ip\":\"192.168.9.2\"}");
	create("/v1/nodes", ADMIN, "{\"name\":\"n3\",\"ip\":\"192.168.9.3\"}");
	F->sub_a = add_net(F->ta, &F->vpc);
	add_port(F->ta, F->sub_a, "10.0.1.10", "n1");
	F->port20 = add_port(F->ta, F->sub_a, "10.0.1.20", "n2");
	add_port(F->ta, F->sub_a, "10.0.1.21", "n3");
	F->la = add_lb(F->ta, F->vpc, "10.0.100.1",
		       "[{\"ip\":\"10.0.1.20\"},{\"ip\":\"10.0.1.21\","
		       "\"port\":8080}]");
	sub_b = add_net(F->tb, &vpc_b);
	add_port(F->tb, sub_b, "10.0.1.20", "n3");
	F->lb = add_lb(F->tb, vpc_b, "10.0.100.1", "[{\"ip\":\"10.0.1.20\"}]");
	*state = F;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (F->srv)
		http_stop(F->srv);
	if (F->s) {
		api_fini(&F->api);
		store_close(F->s);
	}
	nftw(F->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(F);
	return 0;
}

/* POSTs a report as node; returns the status, *changed the answer's. */
static long report(const char *node, const char *body, int64_t *changed,
		   json_object **err)
{
	char path[96];
	json_object *o = NULL;
	long st;

	snprintf(path, sizeof(path), "/v1/nodes/%s/health", node);
	st = http("POST", path, ADMIN, body, &o);
	if (changed)
		*changed = iget(o, "changed");
	if (err)
		*err = o;
	else
		json_object_put(o);
	return st;
}

static void report_ok(const char *node, int64_t lb, const char *ip, int port,
		      bool healthy, bool full, int64_t want_changed)
{
	char body[256];
	int64_t changed;
	json_object *o;
	long st;

	snprintf(body, sizeof(body),
		 "{\"full\":%s,\"backends\":[{\"loadbalancer\":%lld,"
		 "\"address\":\"%s\",\"port\":%d,\"healthy\":%s}]}",
		 full ? "true" : "false", (long long)lb, ip, port,
		 healthy ? "true" : "false");
	st = report(node, body, &changed, &o);
	if (st != 200)
		fail_msg("%s as %s: %ld: %s", body, node, st,
			 o ? json_object_to_json_string(o) : "");
	json_object_put(o);
	assert_int_equal(changed, want_changed);
}

/* The node's state, parsed by lib/state.c. */
static struct xvpc_state *node_state(const char *node)
{
	char path[96], msg[XVPC_STATE_ERR_LEN];
	struct xvpc_state *st = NULL;
	json_object *o;
	const char *txt;

	snprintf(path, sizeof(path), "/v1/nodes/%s/state", node);
	assert_int_equal(http("GET", path, ADMIN, NULL, &o), 200);
	txt = json_object_to_json_string(o);
	if (xvpc_state_parse(txt, strlen(txt), 0, &st, msg, sizeof(msg)))
		fail_msg("state of %s: %s", node, msg);
	json_object_put(o);
	return st;
}

/* Whether backend ip[:port] of load balancer id is down in st; -1 when
 * the service or backend is not there. */
static int down_in(const struct xvpc_state *st, int64_t id, const char *ip)
{
	__be32 a;

	xvpc_parse_ip(ip, &a);
	for (size_t i = 0; i < st->n_svcs; i++) {
		if (st->svcs[i].id != id)
			continue;
		for (__u32 j = 0; j < st->svcs[i].n_backends; j++)
			if (st->svcs[i].backends[j].ip == a)
				return st->svcs[i].backends[j].down;
	}
	return -1;
}

static int client_sees_down(int64_t id, const char *ip, const char *node)
{
	struct xvpc_state *st = node_state(node);
	int d = down_in(st, id, ip);

	xvpc_state_free(st);
	return d;
}

static int count_cb(const struct store_rec *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

static int count(const char *prefix)
{
	int n = 0;

	assert_true(store_list(F->s, prefix, NULL, 0, count_cb, &n) >= 0);
	return n;
}

static void test_down_and_up(void **state)
{
	char path[96];
	json_object *o, *chg, *bh;
	uint64_t rev0, rev1;
	bool seen = false;

	(void)state;
	assert_int_equal(client_sees_down(F->la, "10.0.1.20", "n1"), 0);
	rev0 = store_revision(F->s);
	report_ok("n2", F->la, "10.0.1.20", 80, false, false, 1);
	assert_int_equal(client_sees_down(F->la, "10.0.1.20", "n1"), 1);
	assert_int_equal(client_sees_down(F->la, "10.0.1.21", "n1"), 0);
	/* The change stream carries it as a service change. */
	snprintf(path, sizeof(path), "/v1/nodes/n1/state?since=%llu&wait=0",
		 (unsigned long long)rev0);
	assert_int_equal(http("GET", path, ADMIN, NULL, &o), 200);
	chg = json_object_object_get(o, "changes");
	for (size_t i = 0; i < json_object_array_length(chg); i++) {
		json_object *c = json_object_array_get_idx(chg, i), *be;

		if (strcmp(sget(c, "kind"), "service"))
			continue;
		be = json_object_object_get(json_object_object_get(c, "object"),
					    "backends");
		seen = json_object_object_get(json_object_array_get_idx(be, 0),
					      "healthy") &&
		       !json_object_get_boolean(json_object_object_get(
			       json_object_array_get_idx(be, 0), "healthy"));
	}
	assert_true(seen);
	json_object_put(o);
	/* The tenant sees it. */
	snprintf(path, sizeof(path), "/v1/loadbalancers/%lld",
		 (long long)F->la);
	assert_int_equal(http("GET", path, F->ta, NULL, &o), 200);
	bh = json_object_object_get(o, "backend_health");
	assert_int_equal(json_object_array_length(bh), 2);
	assert_false(json_object_get_boolean(json_object_object_get(
		json_object_array_get_idx(bh, 0), "healthy")));
	assert_int_equal(iget(json_object_array_get_idx(bh, 1), "port"), 8080);
	assert_true(json_object_get_boolean(json_object_object_get(
		json_object_array_get_idx(bh, 1), "healthy")));
	json_object_put(o);
	/* The same report again writes nothing. */
	rev1 = store_revision(F->s);
	report_ok("n2", F->la, "10.0.1.20", 80, false, false, 0);
	assert_int_equal(store_revision(F->s), rev1);
	/* Healthy again: back, and no record left. */
	report_ok("n2", F->la, "10.0.1.20", 80, true, false, 1);
	assert_int_equal(client_sees_down(F->la, "10.0.1.20", "n1"), 0);
	assert_int_equal(count(LBH_PREFIX), 0);
	assert_int_equal(count(LBH_NODE_PREFIX), 0);
	rev1 = store_revision(F->s);
	report_ok("n2", F->la, "10.0.1.20", 80, true, false, 0);
	assert_int_equal(store_revision(F->s), rev1);
}

static void test_full_clears_others(void **state)
{
	char body[256];
	int64_t l2, changed;

	(void)state;
	l2 = add_lb(F->ta, F->vpc, "10.0.100.2", "[{\"ip\":\"10.0.1.20\"}]");
	report_ok("n2", F->la, "10.0.1.20", 80, false, false, 1);
	report_ok("n2", l2, "10.0.1.20", 80, false, false, 1);
	report_ok("n3", F->la, "10.0.1.21", 8080, false, false, 1);
	assert_int_equal(client_sees_down(F->la, "10.0.1.20", "n1"), 1);
	assert_int_equal(client_sees_down(l2, "10.0.1.20", "n1"), 1);
	/* n2's full report lists only l2: LA's backend is up again, n3's
	 * report stays. */
	snprintf(body, sizeof(body),
		 "{\"full\":true,\"backends\":[{\"loadbalancer\":%lld,"
		 "\"address\":\"10.0.1.20\",\"port\":80,\"healthy\":false}]}",
		 (long long)l2);
	assert_int_equal(report("n2", body, &changed, NULL), 200);
	assert_int_equal(changed, 1);
	assert_int_equal(client_sees_down(F->la, "10.0.1.20", "n1"), 0);
	assert_int_equal(client_sees_down(l2, "10.0.1.20", "n1"), 1);
	assert_int_equal(client_sees_down(F->la, "10.0.1.21", "n1"), 1);
	/* An empty full report clears all of n2's. */
	assert_int_equal(
		report("n2", "{\"full\":true,\"backends\":[]}", &changed, NULL),
		200);
	assert_int_equal(changed, 1);
	assert_int_equal(client_sees_down(l2, "10.0.1.20", "n1"), 0);
	report_ok("n3", F->la, "10.0.1.21", 8080, true, true, 1);
	assert_int_equal(count(LBH_PREFIX), 0);
	assert_int_equal(count(LBH_NODE_PREFIX), 0);
}

/* A refused report: status, error field, nothing written. */
static void refused(const char *node, const char *body, long status,
		    const char *field)
{
	uint64_t rev = store_revision(F->s);
	json_object *o;
	long st = report(node, body, NULL, &o);
	const char *f = sget(json_object_object_get(o, "error"), "field");

	if (st != status || (field && (!f || strcmp(f, field))))
		fail_msg("%s: %ld (want %ld), field %s (want %s): %s", body, st,
			 status, f ?: "none", field ?: "none",
			 o ? json_object_to_json_string(o) : "");
	json_object_put(o);
	assert_int_equal(store_revision(F->s), rev);
}

static void test_other_nodes_refused(void **state)
{
	char body[512];

	(void)state;
	/* n3 hosts A's .21 and B's .20, not A's .20 (on n2). */
	snprintf(body, sizeof(body),
		 "{\"backends\":[{\"loadbalancer\":%lld,\"address\":"
		 "\"10.0.1.21\",\"port\":8080,\"healthy\":false},"
		 "{\"loadbalancer\":%lld,\"address\":\"10.0.1.20\",\"port\":80,"
		 "\"healthy\":false}]}",
		 (long long)F->la, (long long)F->la);
	refused("n3", body, 403, "backends[1].address");
	snprintf(body, sizeof(body),
		 "{\"backends\":[{\"loadbalancer\":%lld,\"address\":"
		 "\"10.0.1.21\",\"port\":8080,\"healthy\":false}]}",
		 (long long)F->la);
	refused("n2", body, 403, "backends[0].address");
	refused("n1", body, 403, "backends[0].address");
	/* Two tenants, one address: n3 takes B's .20 out, A's stays. */
	report_ok("n3", F->lb, "10.0.1.20", 80, false, false, 1);
	assert_int_equal(client_sees_down(F->la, "10.0.1.20", "n1"), 0);
	assert_int_equal(client_sees_down(F->lb, "10.0.1.20", "n3"), 1);
	/* n1 has no port of B's VPC: it does not get B's services. */
	assert_int_equal(client_sees_down(F->lb, "10.0.1.20", "n1"), -1);
	snprintf(body, sizeof(body),
		 "{\"backends\":[{\"loadbalancer\":%lld,\"address\":"
		 "\"10.0.1.20\",\"port\":80,\"healthy\":true}]}",
		 (long long)F->lb);
	refused("n2", body, 403, "backends[0].address");
	report_ok("n3", F->lb, "10.0.1.20", 80, true, false, 1);
}

static void test_bad_reports(void **state)
{
	char la[32], b[64][256];
	static const struct {
		const char *body; /* %s: LA's id */
		long status;
		const char *field;
	} cases[] = {
		{"", 400, NULL},
		{"[]", 400, NULL},
		{"{\"backends\":[]", 400, NULL},
		{"{}", 400, "backends"},
		{"{\"backends\":{}}", 400, "backends"},
		{"{\"full\":1,\"backends\":[]}", 400, "full"},
		{"{\"backends\":[],\"extra\":1}", 400, "extra"},
		{"{\"backends\":[1]}", 400, "backends[0]"},
		{"{\"backends\":[{\"loadbalancer\":%s,\"address\":\"10.0.1."
		 "20\",\"port\":80}]}",
		 400, "backends[0].healthy"},
		{"{\"backends\":[{\"address\":\"10.0.1.20\",\"port\":80,"
		 "\"healthy\":false}]}",
		 400, "backends[0].loadbalancer"},
		{"{\"backends\":[{\"loadbalancer\":0,\"address\":\"10.0.1.20\","
		 "\"port\":80,\"healthy\":false}]}",
		 400, "backends[0].loadbalancer"},
		{"{\"backends\":[{\"loadbalancer\":\"%s\",\"address\":\"10.0.1."
		 "20\",\"port\":80,\"healthy\":false}]}",
		 400, "backends[0].loadbalancer"},
		{"{\"backends\":[{\"loadbalancer\":%s,\"address\":\"10.0.1."
		 "300\",\"port\":80,\"healthy\":false}]}",
		 400, "backends[0].address"},
		{"{\"backends\":[{\"loadbalancer\":%s,\"address\":\"10.0.1."
		 "20\",\"port\":0,\"healthy\":false}]}",
		 400, "backends[0].port"},
		{"{\"backends\":[{\"loadbalancer\":%s,\"address\":\"10.0.1."
		 "20\",\"port\":65536,\"healthy\":false}]}",
		 400, "backends[0].port"},
		{"{\"backends\":[{\"loadbalancer\":%s,\"address\":\"10.0.1."
		 "20\",\"port\":80,\"healthy\":\"no\"}]}",
		 400, "backends[0].healthy"},
		{"{\"backends\":[{\"loadbalancer\":%s,\"address\":\"10.0.1."
		 "20\",\"port\":80,\"healthy\":false,\"weight\":1}]}",
		 400, "backends[0].weight"},
		/* Not a backend of LA (wrong port), unknown load balancer. */
		{"{\"backends\":[{\"loadbalancer\":%s,\"address\":\"10.0.1."
		 "20\",\"port\":81,\"healthy\":false}]}",
		 400, "backends[0]"},
		{"{\"backends\":[{\"loadbalancer\":999999,\"address\":\"10.0.1."
		 "20\",\"port\":80,\"healthy\":false}]}",
		 404, "backends[0].loadbalancer"},
		/* A good item then a repeat of it: nothing stored. */
		{"{\"backends\":[{\"loadbalancer\":%s,\"address\":\"10.0.1."
		 "20\",\"port\":80,\"healthy\":false},{\"loadbalancer\":%s,"
		 "\"address\":\"10.0.1.20\",\"port\":80,\"healthy\":true}]}",
		 400, "backends[1]"},
	};

	(void)state;
	snprintf(la, sizeof(la), "%lld", (long long)F->la);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(b[i], sizeof(b[i]), cases[i].body, la, la);
		refused("n2", b[i], cases[i].status, cases[i].field);
	}
	/* An unknown node; the tenant's token is not enough. */
	assert_int_equal(report("n9", "{\"backends\":[]}", NULL, NULL), 404);
	assert_int_equal(http("POST", "/v1/nodes/n2/health", F->ta,
			      "{\"backends\":[]}", NULL),
			 403);
	assert_int_equal(count(LBH_PREFIX), 0);
}

static void test_lb_deleted(void **state)
{
	char path[64];
	int64_t l3;

	(void)state;
	l3 = add_lb(F->ta, F->vpc, "10.0.100.3",
		    "[{\"ip\":\"10.0.1.20\"},{\"ip\":\"10.0.1.21\"}]");
	report_ok("n2", l3, "10.0.1.20", 80, false, false, 1);
	report_ok("n3", l3, "10.0.1.21", 80, false, false, 1);
	assert_int_equal(count(LBH_PREFIX), 2);
	snprintf(path, sizeof(path), "/v1/loadbalancers/%lld", (long long)l3);
	assert_int_equal(http("DELETE", path, F->ta, NULL, NULL), 204);
	assert_int_equal(count(LBH_PREFIX), 0);
	assert_int_equal(count(LBH_NODE_PREFIX), 0);
}

/* Sets node/<name>'s status as the leader does. */
static void set_node_status(const char *name, const char *status)
{
	char key[64], *val;
	struct store_op op = {STORE_PUT, key, NULL, 0, STORE_ANY};
	json_object *o;

	snprintf(key, sizeof(key), "node/%s", name);
	assert_int_equal(store_get(F->s, key, &val, NULL), 0);
	o = json_tokener_parse(val);
	free(val);
	json_object_object_add(o, "status", json_object_new_string(status));
	op.val = json_object_to_json_string(o);
	op.len = strlen(op.val);
	assert_int_equal(store_txn(F->s, &op, 1, NULL, NULL), 0);
	json_object_put(o);
}

static void test_sweep(void **state)
{
	char path[64];
	int removed;

	(void)state;
	/* Nothing stale: nothing removed. */
	report_ok("n2", F->la, "10.0.1.20", 80, false, false, 1);
	assert_int_equal(lbh_sweep(F->s, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(client_sees_down(F->la, "10.0.1.20", "n1"), 1);
	/* Its node is down: stale. */
	set_node_status("n2", "down");
	assert_int_equal(lbh_sweep(F->s, &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(client_sees_down(F->la, "10.0.1.20", "n1"), 0);
	set_node_status("n2", "up");
	/* The backend moves to n3: n2's report is stale, and n3 may now
	 * report it (n2 may not). */
	report_ok("n2", F->la, "10.0.1.20", 80, false, false, 1);
	snprintf(path, sizeof(path), "/v1/ports/%lld", (long long)F->port20);
	assert_int_equal(http("PATCH", path, F->ta,
			      "{\"node\":\"n3\",\"ifname\":\"xm3\"}", NULL),
			 200);
	assert_int_equal(lbh_sweep(F->s, &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(count(LBH_NODE_PREFIX), 0);
	report_ok("n3", F->la, "10.0.1.20", 80, false, false, 1);
	assert_int_equal(client_sees_down(F->la, "10.0.1.20", "n1"), 1);
	report_ok("n3", F->la, "10.0.1.20", 80, true, true, 1);
	assert_int_equal(http("PATCH", path, F->ta,
			      "{\"node\":\"n2\",\"ifname\":\"xm2\"}", NULL),
			 200);
}

/* A public load balancer goes to every node: one with no port in its VPC
 * (n4) sees its backend's report too, in its snapshot and its changes. */
static void test_public(void **state)
{
	char body[256], path[96];
	json_object *o, *chg;
	uint64_t rev;
	int64_t lp;
	bool seen = false;

	(void)state;
	F->api.public_prefix[0].net = htonl(0xcb007100); /* 203.0.113.0 */
	F->api.public_prefix[0].plen = 24;
	F->api.n_public_prefix = 1;
	create("/v1/nodes", ADMIN, "{\"name\":\"n4\",\"ip\":\"192.168.9.4\"}");
	snprintf(body, sizeof(body),
		 "{\"vpc\":%lld,\"vip\":\"203.0.113.10\",\"port\":80,"
		 "\"protocol\":\"tcp\",\"public\":true,\"backends\":[{\"ip\":"
		 "\"10.0.1.20\"}]}",
		 (long long)F->vpc);
	lp = create("/v1/loadbalancers", F->ta, body);
	assert_int_equal(client_sees_down(lp, "10.0.1.20", "n4"), 0);
	/* n4 gets only the public service of the VPC. */
	assert_int_equal(client_sees_down(F->la, "10.0.1.20", "n4"), -1);
	rev = store_revision(F->s);
	report_ok("n2", lp, "10.0.1.20", 80, false, false, 1);
	report_ok("n2", F->la, "10.0.1.20", 80, false, false, 1);
	assert_int_equal(client_sees_down(lp, "10.0.1.20", "n4"), 1);
	snprintf(path, sizeof(path), "/v1/nodes/n4/state?since=%llu&wait=0",
		 (unsigned long long)rev);
	assert_int_equal(http("GET", path, ADMIN, NULL, &o), 200);
	chg = json_object_object_get(o, "changes");
	for (size_t i = 0; i < json_object_array_length(chg); i++) {
		json_object *c = json_object_array_get_idx(chg, i);
		json_object *svc = json_object_object_get(c, "object");

		/* Only the public one: LA is not n4's. */
		assert_string_equal(sget(c, "kind"), "service");
		assert_string_equal(sget(svc, "vip"), "203.0.113.10");
		seen = true;
	}
	assert_true(seen);
	json_object_put(o);
}

/* A backend taken out of its load balancer: its report is stale (it would
 * otherwise come back down if the backend were added again). */
static void test_sweep_backend_removed(void **state)
{
	char path[64];
	int removed;

	(void)state;
	report_ok("n2", F->la, "10.0.1.20", 80, false, false, 1);
	snprintf(path, sizeof(path), "/v1/loadbalancers/%lld",
		 (long long)F->la);
	assert_int_equal(http("PATCH", path, F->ta,
			      "{\"backends\":[{\"ip\":\"10.0.1.21\","
			      "\"port\":8080}]}",
			      NULL),
			 200);
	assert_int_equal(lbh_sweep(F->s, &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(http("PATCH", path, F->ta,
			      "{\"backends\":[{\"ip\":\"10.0.1.20\"},"
			      "{\"ip\":\"10.0.1.21\",\"port\":8080}]}",
			      NULL),
			 200);
	assert_int_equal(client_sees_down(F->la, "10.0.1.20", "n1"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_down_and_up, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_full_clears_others, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_other_nodes_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_reports, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lb_deleted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_backend_removed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_public, setup, teardown),
	};
	int ret;

	xvpc_log_set_level(XVPC_LOG_WARN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return ret;
}
