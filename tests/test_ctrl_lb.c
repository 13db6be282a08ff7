// SPDX-License-Identifier: GPL-2.0-only
/* /v1/loadbalancers end to end: the real server (libmicrohttpd) on a
 * loopback ephemeral port with an embedded store in a temporary directory,
 * driven with libcurl; then xvpcctl's lb commands against it.
 *
 * Covered: create/get/list/update/delete, every validation error answered
 * with its field and changing nothing (the store's revision stays), the VIP
 * rules, tenant isolation, idempotency, deletes refused while in use, the
 * node state (snapshot and change stream) carrying the services of the VPCs
 * the node receives, and the CLI (tables, --json, backends edits).
 * Public (north-south) load balancers: refused without --public-prefix,
 * the VIP rules, one public VIP:port/protocol across tenants (a 409 that
 * does not say whose), a backend in one public service, `public` read-only;
 * every node gets them with their VPC's subnets and endpoints (learn mode
 * too) and only the public services of a VPC it has no port in; the change
 * stream (service and endpoint changes; a public service created or
 * deleted answers a snapshot). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#include "cli/cli.h"
#include "controller/api.h"
#include "log.h"
#include "state.h"

#define ADMIN "xva_lb_test_admin_token_0"

/* cli/main.c is not in libcli.a: what the commands use of it. */
static char last_error[512];

int cli_error(const struct cli_ctx *ctx, int err, const char *fmt, ...)
{
	va_list ap;

	(void)ctx;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return err ? err : -EINVAL;
}

bool cli_is_help(const char *arg)
{
	return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

int cli_dispatch(struct cli_ctx *ctx, const char *prefix,
		 const struct cli_cmd *cmds, int argc, char **argv)
{
	if (argc < 1)
		return cli_error(ctx, -EINVAL, "%s: no command", prefix);
	for (; cmds->name; cmds++)
		if (!strcmp(cmds->name, argv[0]))
			return cmds->fn(ctx, argc - 1, argv + 1);
	return cli_error(ctx, -EINVAL, "%s: unknown command '%s'", prefix,
			 argv[0]);
}

struct fix {
	char dir[64];
	char out[96];
	struct store *s;
	struct api api;
	struct http_server *srv;
	char base[64];
	char ta[128], tb[128]; /* tenants A and B */
	int64_t vpc, subnet;   /* A's: 10.0.0.0/16, 10.0.1.0/24 */
	int64_t vpc_b;	       /* B's: 10.0.0.0/16 */
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

/* One request; returns the status, *out the parsed body (or NULL). */
static long http(const char *method, const char *path, const char *token,
		 const char *body, const char *idem, json_object **out)
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
	if (idem) {
		snprintf(line, sizeof(line), "Idempotency-Key: %s", idem);
		h = curl_slist_append(h, line);
	}
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

static const char *err_field(json_object *o)
{
	return sget(json_object_object_get(o, "error"), "field");
}

static const char *err_code(json_object *o)
{
	return sget(json_object_object_get(o, "error"), "code");
}

/* POSTs, asserts the status, returns the id. */
static int64_t create(const char *path, const char *token, const char *body,
		      long want)
{
	json_object *o = NULL;
	long st = http("POST", path, token, body, NULL, &o);
	int64_t id;

	if (st != want)
		fail_msg("POST %s %s: %ld (want %ld): %s", path, body, st, want,
			 o ? json_object_to_json_string(o) : "");
	id = iget(o, "id");
	json_object_put(o);
	return id;
}

static void new_tenant(const char *name, char *tok, size_t len)
{
	json_object *o;

	snprintf(tok, len, "{\"name\":\"%s\"}", name);
	assert_int_equal(http("POST", "/v1/tenants", ADMIN, tok, NULL, &o),
			 201);
	snprintf(tok, len, "%s", sget(o, "token"));
	json_object_put(o);
}

static int setup(void **state)
{
	char body[160];
	bool gen;

	F = calloc(1, sizeof(*F));
	strcpy(F->dir, "/tmp/xvpc-lb-XXXXXX");
	if (!F || !mkdtemp(F->dir))
		return -1;
	snprintf(F->out, sizeof(F->out), "%s/stdout", F->dir);
	if (store_embed_open(F->dir, NULL, &F->s) ||
	    api_init(&F->api, F->s, ADMIN, &gen) ||
	    http_start(&F->api, "127.0.0.1:0", &F->srv))
		return -1;
	snprintf(F->base, sizeof(F->base), "http://127.0.0.1:%u",
		 http_port(F->srv));
	new_tenant("alpha", F->ta, sizeof(F->ta));
	new_tenant("beta", F->tb, sizeof(F->tb));
	create("/v1/nodes", ADMIN, "{\"name\":\"n1\",\"ip\":\"192.168.9.1\"}",
	       201);
	create("/v1/nodes", ADMIN, "{\"name\":\"n2\",\"ip\":\"192.168.9.2\"}",
	       201);
	F->vpc = create("/v1/vpcs", F->ta,
			"{\"name\":\"a\",\"cidr\":\"10.0.0.0/16\"}", 201);
	F->vpc_b = create("/v1/vpcs", F->tb,
			  "{\"name\":\"b\",\"cidr\":\"10.0.0.0/16\"}", 201);
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.0.1.0/24\"}",
		 (long long)F->vpc);
	F->subnet = create("/v1/subnets", F->ta, body, 201);
	/* A client of the VPC on n1: n1 receives the VPC, n2 does not. */
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"ip\":\"10.0.1.10\",\"node\":\"n1\","
		 "\"ifname\":\"xa1\"}",
		 (long long)F->subnet);
	create("/v1/ports", F->ta, body, 201);
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

/* A create body for A's VPC. */
static void lb_body(char *buf, size_t len, const char *vip, int port,
		    const char *rest)
{
	snprintf(buf, len,
		 "{\"vpc\":%lld,\"vip\":\"%s\",\"port\":%d,\"protocol\":"
		 "\"tcp\"%s%s}",
		 (long long)F->vpc, vip, port, rest[0] ? "," : "", rest);
}

static void test_crud(void **state)
{
	json_object *o, *be, *hc, *items;
	char body[512], path[64];
	int64_t id, id2;

	(void)state;
	lb_body(body, sizeof(body), "10.0.100.1", 80,
		"\"name\":\"web\",\"backends\":[{\"ip\":\"10.0.1.10\","
		"\"port\":8080,\"weight\":2},{\"ip\":\"10.0.1.11\"}],"
		"\"health_check\":{\"type\":\"http\",\"path\":\"/healthz\","
		"\"interval_ms\":500}");
	assert_int_equal(
		http("POST", "/v1/loadbalancers", F->ta, body, NULL, &o), 201);
	id = iget(o, "id");
	assert_true(id >= 1);
	assert_int_equal(iget(o, "vpc"), F->vpc);
	assert_int_equal(iget(o, "port"), 80);
	assert_string_equal(sget(o, "vip"), "10.0.100.1");
	assert_string_equal(sget(o, "protocol"), "tcp");
	assert_string_equal(sget(o, "name"), "web");
	be = json_object_object_get(o, "backends");
	assert_int_equal(json_object_array_length(be), 2);
	assert_int_equal(iget(json_object_array_get_idx(be, 0), "weight"), 2);
	assert_int_equal(iget(json_object_array_get_idx(be, 0), "port"), 8080);
	/* Defaults filled as lib/state.c does: weight 1, no port. */
	assert_int_equal(iget(json_object_array_get_idx(be, 1), "weight"), 1);
	assert_null(json_object_object_get(json_object_array_get_idx(be, 1),
					   "port"));
	hc = json_object_object_get(o, "health_check");
	assert_string_equal(sget(hc, "type"), "http");
	assert_int_equal(iget(hc, "interval_ms"), 500);
	assert_int_equal(iget(hc, "timeout_ms"), 500);
	assert_int_equal(iget(hc, "rise"), 2);
	assert_int_equal(iget(hc, "fall"), 3);
	assert_int_equal(iget(hc, "expect_status"), 200);
	assert_string_equal(sget(hc, "path"), "/healthz");
	assert_null(json_object_object_get(o, "_idem"));
	json_object_put(o);

	/* Another port of the same VIP, UDP, no health check. */
	lb_body(body, sizeof(body), "10.0.100.1", 53, "");
	memcpy(strstr(body, "tcp"), "udp", 3);
	id2 = create("/v1/loadbalancers", F->ta, body, 201);
	snprintf(path, sizeof(path), "/v1/loadbalancers/%lld", (long long)id2);
	assert_int_equal(http("GET", path, F->ta, NULL, NULL, &o), 200);
	assert_string_equal(sget(o, "protocol"), "udp");
	assert_string_equal(
		sget(json_object_object_get(o, "health_check"), "type"),
		"none");
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "backends")),
		0);
	json_object_put(o);

	/* List, a page at a time. */
	assert_int_equal(
		http("GET", "/v1/loadbalancers?limit=1", F->ta, NULL, NULL, &o),
		200);
	items = json_object_object_get(o, "items");
	assert_int_equal(json_object_array_length(items), 1);
	assert_int_equal(iget(json_object_array_get_idx(items, 0), "id"), id);
	assert_int_equal(iget(o, "next"), id);
	json_object_put(o);
	snprintf(path, sizeof(path), "/v1/loadbalancers?limit=1&after=%lld",
		 (long long)id);
	assert_int_equal(http("GET", path, F->ta, NULL, NULL, &o), 200);
	items = json_object_object_get(o, "items");
	assert_int_equal(iget(json_object_array_get_idx(items, 0), "id"), id2);
	assert_null(json_object_object_get(o, "next"));
	json_object_put(o);

	/* PATCH backends and weights; the health check stays. */
	snprintf(path, sizeof(path), "/v1/loadbalancers/%lld", (long long)id);
	assert_int_equal(http("PATCH", path, F->ta,
			      "{\"backends\":[{\"ip\":\"10.0.1.12\","
			      "\"weight\":0},{\"ip\":\"10.0.1.10\",\"port\":"
			      "8080,\"weight\":7}]}",
			      NULL, &o),
			 200);
	be = json_object_object_get(o, "backends");
	assert_int_equal(json_object_array_length(be), 2);
	assert_string_equal(sget(json_object_array_get_idx(be, 0), "ip"),
			    "10.0.1.12");
	assert_int_equal(iget(json_object_array_get_idx(be, 0), "weight"), 0);
	assert_int_equal(iget(json_object_array_get_idx(be, 1), "weight"), 7);
	assert_int_equal(
		iget(json_object_object_get(o, "health_check"), "interval_ms"),
		500);
	json_object_put(o);
	/* PATCH the health check (replaced whole: defaults again) and name. */
	assert_int_equal(http("PATCH", path, F->ta,
			      "{\"name\":\"web2\",\"health_check\":{\"type\":"
			      "\"tcp\"}}",
			      NULL, &o),
			 200);
	hc = json_object_object_get(o, "health_check");
	assert_string_equal(sget(hc, "type"), "tcp");
	assert_int_equal(iget(hc, "interval_ms"), 2000);
	assert_int_equal(iget(hc, "timeout_ms"), 1000);
	assert_null(json_object_object_get(hc, "path"));
	assert_string_equal(sget(o, "name"), "web2");
	json_object_put(o);
	assert_int_equal(http("GET", path, F->ta, NULL, NULL, &o), 200);
	assert_string_equal(sget(o, "name"), "web2");
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "backends")),
		2);
	json_object_put(o);

	/* Delete; the identity is free again. */
	assert_int_equal(http("DELETE", path, F->ta, NULL, NULL, NULL), 204);
	assert_int_equal(http("GET", path, F->ta, NULL, NULL, NULL), 404);
	assert_int_equal(http("DELETE", path, F->ta, NULL, NULL, NULL), 404);
	lb_body(body, sizeof(body), "10.0.100.1", 80, "");
	create("/v1/loadbalancers", F->ta, body, 201);
}

struct bad {
	const char *what;
	const char *body; /* %lld: A's VPC */
	long status;
	const char *code;
	const char *field;
};

static const struct bad bad_creates[] = {
	{"no vip", "{\"vpc\":%lld,\"port\":80,\"protocol\":\"tcp\"}", 400,
	 "missing_field", "vip"},
	{"vip not an address",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100\",\"port\":80,\"protocol\":\"tcp\"}",
	 400, "invalid_value", "vip"},
	{"vip 0.0.0.0",
	 "{\"vpc\":%lld,\"vip\":\"0.0.0.0\",\"port\":80,\"protocol\":\"tcp\"}",
	 400, "invalid_value", "vip"},
	{"vip outside the VPC",
	 "{\"vpc\":%lld,\"vip\":\"10.9.0.1\",\"port\":80,\"protocol\":\"tcp\"}",
	 400, "invalid_value", "vip"},
	{"vip the VPC's network address",
	 "{\"vpc\":%lld,\"vip\":\"10.0.0.0\",\"port\":80,\"protocol\":\"tcp\"}",
	 400, "invalid_value", "vip"},
	{"vip the VPC's broadcast",
	 "{\"vpc\":%lld,\"vip\":\"10.0.255.255\",\"port\":80,\"protocol\":"
	 "\"tcp\"}",
	 400, "invalid_value", "vip"},
	{"vip a port's address",
	 "{\"vpc\":%lld,\"vip\":\"10.0.1.10\",\"port\":80,\"protocol\":"
	 "\"tcp\"}",
	 400, "invalid_value", "vip"},
	{"vip a gateway",
	 "{\"vpc\":%lld,\"vip\":\"10.0.1.1\",\"port\":80,\"protocol\":\"tcp\"}",
	 400, "invalid_value", "vip"},
	{"vip inside a subnet",
	 "{\"vpc\":%lld,\"vip\":\"10.0.1.99\",\"port\":80,\"protocol\":"
	 "\"tcp\"}",
	 400, "invalid_value", "vip"},
	{"port 0",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":0,\"protocol\":"
	 "\"tcp\"}",
	 400, "invalid_value", "port"},
	{"port 65536",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":65536,\"protocol\":"
	 "\"tcp\"}",
	 400, "invalid_value", "port"},
	{"port a string",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":\"80\",\"protocol\":"
	 "\"tcp\"}",
	 400, "invalid_type", "port"},
	{"protocol icmp",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"icmp\"}",
	 400, "invalid_value", "protocol"},
	{"backends not an array",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"backends\":{}}",
	 400, "invalid_type", "backends"},
	{"backend not an object",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"backends\":[\"10.0.1.10\"]}",
	 400, "invalid_value", "backends[0]"},
	{"backend ip 0.0.0.0",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"backends\":[{\"ip\":\"0.0.0.0\"}]}",
	 400, "invalid_value", "backends[0].ip"},
	{"backend without ip",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"backends\":[{\"ip\":\"10.0.1.10\"},{\"port\":80}]}",
	 400, "invalid_value", "backends[1].ip"},
	{"backend port 65536",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"backends\":[{\"ip\":\"10.0.1.10\",\"port\":65536}]}",
	 400, "invalid_value", "backends[0].port"},
	{"backend weight 65536",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"backends\":[{\"ip\":\"10.0.1.10\",\"weight\":65536}]}",
	 400, "invalid_value", "backends[0].weight"},
	{"backend unknown field",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"backends\":[{\"ip\":\"10.0.1.10\",\"wieght\":2}]}",
	 400, "invalid_value", "backends[0].wieght"},
	{"same backend twice (port absent = service port)",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"backends\":[{\"ip\":\"10.0.1.10\"},{\"ip\":\"10.0.1.10\","
	 "\"port\":80}]}",
	 400, "invalid_value", "backends[1]"},
	{"health type icmp",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"health_check\":{\"type\":\"icmp\"}}",
	 400, "invalid_value", "health_check.type"},
	{"health without type",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"health_check\":{\"rise\":2}}",
	 400, "invalid_value", "health_check.type"},
	{"health interval 50",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"health_check\":{\"type\":\"tcp\",\"interval_ms\":50}}",
	 400, "invalid_value", "health_check.interval_ms"},
	{"health timeout over interval",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"health_check\":{\"type\":\"tcp\",\"interval_ms\":500,"
	 "\"timeout_ms\":600}}",
	 400, "invalid_value", "health_check.timeout_ms"},
	{"health rise 0",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"health_check\":{\"type\":\"tcp\",\"rise\":0}}",
	 400, "invalid_value", "health_check.rise"},
	{"health fall 101",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"health_check\":{\"type\":\"tcp\",\"fall\":101}}",
	 400, "invalid_value", "health_check.fall"},
	{"health path without /",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"health_check\":{\"type\":\"http\",\"path\":\"healthz\"}}",
	 400, "invalid_value", "health_check.path"},
	{"health status 700",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"health_check\":{\"type\":\"http\",\"expect_status\":700}}",
	 400, "invalid_value", "health_check.expect_status"},
	{"health unknown field",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"health_check\":{\"type\":\"tcp\",\"retries\":3}}",
	 400, "invalid_value", "health_check.retries"},
	{"health not an object",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"health_check\":\"tcp\"}",
	 400, "invalid_type", "health_check"},
	{"unknown field",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"algo\":\"rr\"}",
	 400, "unknown_field", "algo"},
	{"bad name",
	 "{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\","
	 "\"name\":\"a b\"}",
	 400, "invalid_value", "name"},
	{"no such VPC",
	 "{\"vpc\":9999%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
	 "\"tcp\"}",
	 404, "not_found", "vpc"},
	{"taken identity",
	 "{\"vpc\":%lld,\"vip\":\"10.0.200.1\",\"port\":443,\"protocol\":"
	 "\"tcp\"}",
	 409, "exists", "vip"},
};

/* Asserts the answer and that the store did not move. */
static void expect_refused(const char *method, const char *path,
			   const char *token, const char *body, long status,
			   const char *code, const char *field,
			   const char *what)
{
	uint64_t rev = store_revision(F->s);
	json_object *o = NULL;
	long st = http(method, path, token, body, NULL, &o);

	if (st != status || strcmp(err_code(o) ?: "", code) ||
	    (field && strcmp(err_field(o) ?: "", field)))
		fail_msg("%s: %s %s: %ld %s (want %ld %s field %s)", what,
			 method, path, st,
			 o ? json_object_to_json_string(o) : "", status, code,
			 field ? field : "null");
	if (store_revision(F->s) != rev)
		fail_msg("%s: the store changed", what);
	json_object_put(o);
}

static void test_validation(void **state)
{
	char body[1024], path[64], *big;
	json_object *o, *before;
	size_t off;
	int64_t id;

	(void)state;
	lb_body(body, sizeof(body), "10.0.200.1", 443,
		"\"backends\":[{\"ip\":\"10.0.1.10\"}]");
	id = create("/v1/loadbalancers", F->ta, body, 201);
	for (size_t i = 0; i < sizeof(bad_creates) / sizeof(bad_creates[0]);
	     i++) {
		const struct bad *b = &bad_creates[i];

		snprintf(body, sizeof(body), b->body, (long long)F->vpc);
		expect_refused("POST", "/v1/loadbalancers", F->ta, body,
			       b->status, b->code, b->field, b->what);
	}

	/* 4097 backends: one too many (the body limit lets it through). */
	big = malloc(200000);
	off = snprintf(big, 200000,
		       "{\"vpc\":%lld,\"vip\":\"10.0.100.9\",\"port\":80,"
		       "\"protocol\":\"tcp\",\"backends\":[",
		       (long long)F->vpc);
	for (int i = 0; i < 4097; i++)
		off += snprintf(big + off, 200000 - off,
				"%s{\"ip\":\"10.0.%d.%d\"}", i ? "," : "",
				2 + i / 250, 1 + i % 250);
	snprintf(big + off, 200000 - off, "]}");
	expect_refused("POST", "/v1/loadbalancers", F->ta, big, 400,
		       "invalid_value", "backends", "4097 backends");
	/* 4096 pass. */
	*strrchr(big, '{') = '\0';
	strcpy(big + strlen(big) - 1, "]}");
	create("/v1/loadbalancers", F->ta, big, 201);
	free(big);

	/* Bad updates change nothing either. */
	snprintf(path, sizeof(path), "/v1/loadbalancers/%lld", (long long)id);
	assert_int_equal(http("GET", path, F->ta, NULL, NULL, &before), 200);
	expect_refused("PATCH", path, F->ta, "{\"vip\":\"10.0.100.2\"}", 400,
		       "read_only", "vip", "patch vip");
	expect_refused("PATCH", path, F->ta, "{\"port\":81}", 400, "read_only",
		       "port", "patch port");
	expect_refused("PATCH", path, F->ta,
		       "{\"backends\":[{\"ip\":\"10.0.1.10\"},{\"ip\":"
		       "\"10.0.1.10\"}]}",
		       400, "invalid_value", "backends[1]",
		       "patch dup backend");
	expect_refused("PATCH", path, F->ta,
		       "{\"name\":\"ok\",\"health_check\":{\"type\":\"http\","
		       "\"expect_status\":99}}",
		       400, "invalid_value", "health_check.expect_status",
		       "patch status");
	expect_refused("PATCH", "/v1/loadbalancers/99999", F->ta,
		       "{\"name\":\"x\"}", 404, "not_found", NULL,
		       "patch absent");
	assert_int_equal(http("GET", path, F->ta, NULL, NULL, &o), 200);
	assert_string_equal(json_object_to_json_string(o),
			    json_object_to_json_string(before));
	json_object_put(o);
	json_object_put(before);

	/* A subnet may not cover a VIP; a VPC with load balancers stays. */
	snprintf(body, sizeof(body),
		 "{\"vpc\":%lld,\"cidr\":\"10.0.200.0/24\"}",
		 (long long)F->vpc);
	expect_refused("POST", "/v1/subnets", F->ta, body, 409, "in_use",
		       "cidr", "subnet over a VIP");
	snprintf(body, sizeof(body),
		 "{\"vpc\":%lld,\"cidr\":\"10.0.201.0/24\"}",
		 (long long)F->vpc);
	create("/v1/subnets", F->ta, body, 201);
	snprintf(path, sizeof(path), "/v1/vpcs/%lld", (long long)F->vpc_b);
	/* B's VPC has none: its delete is not refused for A's. */
	assert_int_equal(http("DELETE", path, F->tb, NULL, NULL, NULL), 204);
	snprintf(body, sizeof(body),
		 "{\"name\":\"empty\",\"cidr\":"
		 "\"10.5.0.0/16\"}");
	id = create("/v1/vpcs", F->ta, body, 201);
	snprintf(body, sizeof(body),
		 "{\"vpc\":%lld,\"vip\":\"10.5.0.5\",\"port\":80,\"protocol\":"
		 "\"tcp\"}",
		 (long long)id);
	create("/v1/loadbalancers", F->ta, body, 201);
	snprintf(path, sizeof(path), "/v1/vpcs/%lld", (long long)id);
	expect_refused("DELETE", path, F->ta, NULL, 409, "in_use", NULL,
		       "VPC with a load balancer");
}

static void test_isolation(void **state)
{
	char body[512], path[64];
	json_object *o;
	int64_t id;

	(void)state;
	lb_body(body, sizeof(body), "10.0.100.1", 80,
		"\"backends\":[{\"ip\":\"10.0.1.10\"}]");
	id = create("/v1/loadbalancers", F->ta, body, 201);
	snprintf(path, sizeof(path), "/v1/loadbalancers/%lld", (long long)id);
	expect_refused("GET", path, F->tb, NULL, 404, "not_found", NULL,
		       "B gets A's");
	expect_refused("PATCH", path, F->tb, "{\"backends\":[]}", 404,
		       "not_found", NULL, "B patches A's");
	expect_refused("DELETE", path, F->tb, NULL, 404, "not_found", NULL,
		       "B deletes A's");
	/* B cannot put one in A's VPC, but may use the same addresses in
	 * its own. */
	expect_refused("POST", "/v1/loadbalancers", F->tb, body, 404,
		       "not_found", "vpc", "B in A's VPC");
	snprintf(
		body, sizeof(body),
		"{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
		"\"tcp\"}",
		(long long)F->vpc_b);
	create("/v1/loadbalancers", F->tb, body, 201);
	assert_int_equal(
		http("GET", "/v1/loadbalancers", F->tb, NULL, NULL, &o), 200);
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "items")),
		1);
	assert_int_equal(iget(json_object_array_get_idx(
				      json_object_object_get(o, "items"), 0),
			      "vpc"),
			 F->vpc_b);
	json_object_put(o);
	/* The admin token owns no load balancers. */
	expect_refused("GET", "/v1/loadbalancers", ADMIN, NULL, 403,
		       "forbidden", NULL, "admin");
	assert_int_equal(http("GET", path, F->ta, NULL, NULL, NULL), 200);
}

static void test_idempotency(void **state)
{
	char body[512];
	json_object *o;
	int64_t id;

	(void)state;
	lb_body(body, sizeof(body), "10.0.100.1", 80, "");
	assert_int_equal(
		http("POST", "/v1/loadbalancers", F->ta, body, "k-1", &o), 201);
	id = iget(o, "id");
	json_object_put(o);
	assert_int_equal(
		http("POST", "/v1/loadbalancers", F->ta, body, "k-1", &o), 200);
	assert_int_equal(iget(o, "id"), id);
	json_object_put(o);
	/* The key is per tenant: B's request with it is its own. */
	assert_int_equal(
		http("GET", "/v1/loadbalancers", F->ta, NULL, NULL, &o), 200);
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "items")),
		1);
	json_object_put(o);
	snprintf(body, sizeof(body), "/v1/loadbalancers/%lld", (long long)id);
	assert_int_equal(http("DELETE", body, F->ta, NULL, NULL, NULL), 204);
	/* Forgotten with the object. */
	lb_body(body, sizeof(body), "10.0.100.1", 80, "");
	assert_int_equal(
		http("POST", "/v1/loadbalancers", F->ta, body, "k-1", &o), 201);
	assert_true(iget(o, "id") != id);
	json_object_put(o);
}

/* The node's snapshot, checked by the agent's own parser. */
static json_object *snapshot(const char *node, struct xvpc_state **st)
{
	char path[64], err[XVPC_STATE_ERR_LEN];
	const char *txt;
	json_object *o;

	snprintf(path, sizeof(path), "/v1/nodes/%s/state", node);
	assert_int_equal(http("GET", path, ADMIN, NULL, NULL, &o), 200);
	txt = json_object_to_json_string(o);
	if (xvpc_state_parse(txt, strlen(txt), 0, st, err, sizeof(err)))
		fail_msg("snapshot of %s rejected: %s", node, err);
	return o;
}

/* The changes after rev (one answer, no wait). */
static json_object *changes(int64_t rev)
{
	char path[96];
	json_object *o;

	snprintf(path, sizeof(path), "/v1/nodes/n1/state?since=%lld&wait=0",
		 (long long)rev);
	assert_int_equal(http("GET", path, ADMIN, NULL, NULL, &o), 200);
	assert_false(
		json_object_get_boolean(json_object_object_get(o, "snapshot")));
	return o;
}

/* The one service change of an answer. Creating a load balancer also
 * rewrites its VPC (to serialize with subnet creation): a put of the same
 * VPC may come with it, nothing else. */
static json_object *only_change(json_object *answer, const char *op)
{
	json_object *arr = json_object_object_get(answer, "changes"),
		    *svc = NULL;

	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *c = json_object_array_get_idx(arr, i);

		if (!strcmp(sget(c, "kind"), "vpc")) {
			assert_string_equal(sget(c, "op"), "put");
			continue;
		}
		assert_string_equal(sget(c, "kind"), "service");
		assert_null(svc);
		svc = c;
	}
	assert_non_null(svc);
	assert_string_equal(sget(svc, "op"), op);
	return json_object_object_get(svc, "object");
}

static void test_node_state(void **state)
{
	struct xvpc_state *st = NULL;
	json_object *o, *a, *obj;
	char body[512], path[64];
	int64_t id, rev;

	(void)state;
	lb_body(body, sizeof(body), "10.0.100.1", 80,
		"\"backends\":[{\"ip\":\"10.0.1.10\",\"port\":8080,"
		"\"weight\":3}],\"health_check\":{\"type\":\"tcp\"}");
	id = create("/v1/loadbalancers", F->ta, body, 201);
	/* B's service in its own VPC goes to no node (no port of it). */
	snprintf(
		body, sizeof(body),
		"{\"vpc\":%lld,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":"
		"\"tcp\"}",
		(long long)F->vpc_b);
	create("/v1/loadbalancers", F->tb, body, 201);

	/* n1 hosts a client of A's VPC: it gets the service. */
	o = snapshot("n1", &st);
	assert_int_equal(st->n_svcs, 1);
	assert_int_equal(st->svcs[0].vpc, F->vpc);
	assert_int_equal(st->svcs[0].port, 80);
	assert_int_equal(st->svcs[0].n_backends, 1);
	assert_int_equal(st->svcs[0].backends[0].port, 8080);
	assert_int_equal(st->svcs[0].backends[0].weight, 3);
	assert_int_equal(st->svcs[0].hc.type, XVPC_HC_TCP);
	assert_int_equal(st->svcs[0].hc.interval_ms, 2000);
	rev = iget(o, "revision");
	xvpc_state_free(st);
	json_object_put(o);
	/* n2 receives no VPC, so no service. */
	o = snapshot("n2", &st);
	assert_int_equal(st->n_svcs, 0);
	xvpc_state_free(st);
	json_object_put(o);

	/* Changes: an update is a put of the whole service... */
	snprintf(path, sizeof(path), "/v1/loadbalancers/%lld", (long long)id);
	assert_int_equal(http("PATCH", path, F->ta,
			      "{\"backends\":[{\"ip\":\"10.0.1.11\"}],"
			      "\"health_check\":{\"type\":\"none\"}}",
			      NULL, NULL),
			 200);
	a = changes(rev);
	obj = only_change(a, "put");
	assert_int_equal(iget(obj, "vpc"), F->vpc);
	assert_string_equal(sget(obj, "vip"), "10.0.100.1");
	assert_int_equal(iget(obj, "port"), 80);
	assert_string_equal(sget(obj, "protocol"), "tcp");
	assert_string_equal(
		sget(json_object_array_get_idx(
			     json_object_object_get(obj, "backends"), 0),
		     "ip"),
		"10.0.1.11");
	assert_null(json_object_object_get(obj, "health_check"));
	rev = iget(a, "revision");
	json_object_put(a);
	/* ... B's changes are not n1's ... */
	snprintf(
		body, sizeof(body),
		"{\"vpc\":%lld,\"vip\":\"10.0.100.2\",\"port\":80,\"protocol\":"
		"\"tcp\"}",
		(long long)F->vpc_b);
	create("/v1/loadbalancers", F->tb, body, 201);
	a = changes(rev);
	assert_int_equal(
		json_object_array_length(json_object_object_get(a, "changes")),
		0);
	rev = iget(a, "revision");
	json_object_put(a);
	/* ... a new one is a put, a deleted one a delete with its
	 * identity. */
	lb_body(body, sizeof(body), "10.0.100.1", 443, "");
	create("/v1/loadbalancers", F->ta, body, 201);
	a = changes(rev);
	obj = only_change(a, "put");
	assert_int_equal(iget(obj, "port"), 443);
	rev = iget(a, "revision");
	json_object_put(a);
	assert_int_equal(http("DELETE", path, F->ta, NULL, NULL, NULL), 204);
	a = changes(rev);
	obj = only_change(a, "delete");
	assert_int_equal(iget(obj, "port"), 80);
	assert_string_equal(sget(obj, "vip"), "10.0.100.1");
	json_object_put(a);
	o = snapshot("n1", &st);
	assert_int_equal(st->n_svcs, 1);
	assert_int_equal(st->svcs[0].port, 443);
	xvpc_state_free(st);
	json_object_put(o);
}

/* ---- public load balancers -------------------------------------------- */

/* Lets the controller hand out public VIPs in 203.0.113.0/24, and in
 * 10.0.0.0/8 (which covers the VPCs' CIDRs: refused there). */
static void public_prefixes(void)
{
	F->api.public_prefix[0].net = htonl(0xcb007100);
	F->api.public_prefix[0].plen = 24;
	F->api.public_prefix[1].net = htonl(0x0a000000);
	F->api.public_prefix[1].plen = 8;
	F->api.n_public_prefix = 2;
}

/* A public create body for VPC vpc. */
static void pub_body(char *buf, size_t len, int64_t vpc, const char *vip,
		     int port, const char *proto, const char *backends)
{
	snprintf(buf, len,
		 "{\"vpc\":%lld,\"vip\":\"%s\",\"port\":%d,\"protocol\":"
		 "\"%s\",\"public\":true,\"backends\":[%s]}",
		 (long long)vpc, vip, port, proto, backends);
}

static void test_public_api(void **state)
{
	char body[512], path[64], other[64];
	json_object *o;
	const char *msg;
	int64_t id, id2, idb;

	(void)state;
	pub_body(body, sizeof(body), F->vpc, "203.0.113.10", 80, "tcp",
		 "{\"ip\":\"10.0.1.10\",\"port\":8080}");
	expect_refused("POST", "/v1/loadbalancers", F->ta, body, 403,
		       "forbidden", "public", "no --public-prefix");
	public_prefixes();
	pub_body(body, sizeof(body), F->vpc, "198.51.100.1", 80, "tcp", "");
	expect_refused("POST", "/v1/loadbalancers", F->ta, body, 400,
		       "invalid_value", "vip", "outside the public prefixes");
	pub_body(body, sizeof(body), F->vpc, "10.0.200.1", 80, "tcp", "");
	expect_refused("POST", "/v1/loadbalancers", F->ta, body, 400,
		       "invalid_value", "vip", "inside the VPC's CIDR");
	lb_body(body, sizeof(body), "10.0.100.1", 80, "\"public\":\"yes\"");
	expect_refused("POST", "/v1/loadbalancers", F->ta, body, 400,
		       "invalid_type", "public", "public not a boolean");

	pub_body(body, sizeof(body), F->vpc, "203.0.113.10", 80, "tcp",
		 "{\"ip\":\"10.0.1.10\",\"port\":8080}");
	assert_int_equal(
		http("POST", "/v1/loadbalancers", F->ta, body, NULL, &o), 201);
	id = iget(o, "id");
	assert_true(
		json_object_get_boolean(json_object_object_get(o, "public")));
	json_object_put(o);
	/* The same public VIP:port/protocol from another tenant: taken,
	 * without a word about whose. */
	pub_body(body, sizeof(body), F->vpc_b, "203.0.113.10", 80, "tcp", "");
	expect_refused("POST", "/v1/loadbalancers", F->tb, body, 409, "exists",
		       "vip", "public VIP of another tenant");
	assert_int_equal(
		http("POST", "/v1/loadbalancers", F->tb, body, NULL, &o), 409);
	msg = sget(json_object_object_get(o, "error"), "message");
	assert_string_equal(msg, "the public 203.0.113.10:80/tcp is taken");
	json_object_put(o);
	/* The owner hears which of its load balancers has it. */
	pub_body(body, sizeof(body), F->vpc, "203.0.113.10", 80, "tcp", "");
	assert_int_equal(
		http("POST", "/v1/loadbalancers", F->ta, body, NULL, &o), 409);
	snprintf(other, sizeof(other), "load balancer %lld ", (long long)id);
	assert_non_null(strstr(
		sget(json_object_object_get(o, "error"), "message"), other));
	json_object_put(o);
	/* Another port, or protocol, of the VIP is another service. */
	pub_body(body, sizeof(body), F->vpc_b, "203.0.113.10", 81, "tcp", "");
	create("/v1/loadbalancers", F->tb, body, 201);
	pub_body(body, sizeof(body), F->vpc_b, "203.0.113.10", 80, "udp", "");
	create("/v1/loadbalancers", F->tb, body, 201);
	/* A backend serves one public VIP (per protocol). */
	pub_body(body, sizeof(body), F->vpc, "203.0.113.11", 80, "tcp",
		 "{\"ip\":\"10.0.1.11\"},{\"ip\":\"10.0.1.10\",\"port\":8080}");
	expect_refused("POST", "/v1/loadbalancers", F->ta, body, 409, "in_use",
		       "backends[1]", "backend of another public service");
	pub_body(body, sizeof(body), F->vpc, "203.0.113.11", 8080, "tcp",
		 "{\"ip\":\"10.0.1.11\"},{\"ip\":\"10.0.1.10\",\"port\":8081}");
	id2 = create("/v1/loadbalancers", F->ta, body, 201);
	snprintf(path, sizeof(path), "/v1/loadbalancers/%lld", (long long)id2);
	expect_refused("PATCH", path, F->ta,
		       "{\"backends\":[{\"ip\":\"10.0.1.10\",\"port\":8080}]}",
		       409, "in_use", "backends[0]",
		       "PATCH to a backend of another public service");
	/* The backend's port defaults to the service's: 10.0.1.11:8080. */
	assert_int_equal(http("PATCH", path, F->ta,
			      "{\"backends\":[{\"ip\":\"10.0.1.11\"},"
			      "{\"ip\":\"10.0.1.12\",\"weight\":3}]}",
			      NULL, &o),
			 200);
	assert_true(
		json_object_get_boolean(json_object_object_get(o, "public")));
	json_object_put(o);
	expect_refused("PATCH", path, F->ta, "{\"public\":false}", 400,
		       "read_only", "public", "PATCH public");
	/* An east-west one says public false. */
	lb_body(body, sizeof(body), "10.0.100.1", 80, "\"public\":false");
	assert_int_equal(
		http("POST", "/v1/loadbalancers", F->ta, body, NULL, &o), 201);
	assert_false(
		json_object_get_boolean(json_object_object_get(o, "public")));
	json_object_put(o);
	/* Deleted, the public VIP:port is free for anyone. */
	snprintf(path, sizeof(path), "/v1/loadbalancers/%lld", (long long)id);
	assert_int_equal(http("DELETE", path, F->ta, NULL, NULL, NULL), 204);
	pub_body(body, sizeof(body), F->vpc_b, "203.0.113.10", 80, "tcp", "");
	idb = create("/v1/loadbalancers", F->tb, body, 201);
	assert_true(idb > id2);
}

/* The changes after rev for node; the answer must be (or not be) a
 * snapshot. */
static json_object *node_changes(const char *node, int64_t rev,
				 bool snapshot_wanted)
{
	char path[128];
	json_object *o;

	snprintf(path, sizeof(path), "/v1/nodes/%s/state?since=%lld&wait=0",
		 node, (long long)rev);
	assert_int_equal(http("GET", path, ADMIN, NULL, NULL, &o), 200);
	assert_int_equal(
		json_object_get_boolean(json_object_object_get(o, "snapshot")),
		snapshot_wanted);
	return o;
}

/* The change of kind in answer, asserting there is exactly one. */
static json_object *one_of_kind(json_object *answer, const char *kind,
				const char *op)
{
	json_object *arr = json_object_object_get(answer, "changes"), *r = NULL;

	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *c = json_object_array_get_idx(arr, i);

		if (strcmp(sget(c, "kind"), kind))
			continue;
		assert_null(r);
		r = c;
	}
	assert_non_null(r);
	assert_string_equal(sget(r, "op"), op);
	return json_object_object_get(r, "object");
}

static bool has_ep(const struct xvpc_state *st, const char *ip)
{
	__be32 a;

	assert_int_equal(inet_pton(AF_INET, ip, &a), 1);
	for (size_t i = 0; i < st->n_eps; i++)
		if (st->eps[i].ip == a)
			return true;
	return false;
}

/* A node that hosts no port of A's VPC and is none of its gateways. */
static const char *lb_only_node(void)
{
	static const char *const names[] = {"n2", "n3", "n4"};
	char path[64];
	json_object *o, *gw;
	const char *pick = NULL;

	snprintf(path, sizeof(path), "/v1/vpcs/%lld", (long long)F->vpc);
	assert_int_equal(http("GET", path, F->ta, NULL, NULL, &o), 200);
	gw = json_object_object_get(o, "gateways");
	for (int i = 0; !pick && i < 3; i++) {
		bool is_gw = false;

		for (size_t j = 0; j < json_object_array_length(gw); j++)
			is_gw |= !strcmp(
				json_object_get_string(
					json_object_array_get_idx(gw, j)),
				names[i]);
		if (!is_gw)
			pick = names[i];
	}
	json_object_put(o);
	assert_non_null(pick);
	return pick;
}

static void test_public_state(void **state)
{
	struct xvpc_state *st = NULL;
	char body[512], path[64];
	json_object *o, *a, *obj;
	const char *node;
	int64_t id, ew, rev;

	(void)state;
	public_prefixes();
	create("/v1/nodes", ADMIN, "{\"name\":\"n3\",\"ip\":\"192.168.9.3\"}",
	       201);
	create("/v1/nodes", ADMIN, "{\"name\":\"n4\",\"ip\":\"192.168.9.4\"}",
	       201);
	/* Learn mode: a node with no port of the VPC would get none of its
	 * endpoints; as an LB node it gets them all. */
	snprintf(path, sizeof(path), "/v1/vpcs/%lld", (long long)F->vpc);
	assert_int_equal(
		http("PATCH", path, F->ta, "{\"mode\":\"learn\"}", NULL, NULL),
		200);
	node = lb_only_node();
	lb_body(body, sizeof(body), "10.0.100.1", 80,
		"\"backends\":[{\"ip\":\"10.0.1.10\"}]");
	ew = create("/v1/loadbalancers", F->ta, body, 201);
	o = snapshot(node, &st);
	assert_int_equal(st->n_vpcs, 0);
	assert_int_equal(st->n_svcs, 0);
	rev = iget(o, "revision");
	xvpc_state_free(st);
	json_object_put(o);

	pub_body(body, sizeof(body), F->vpc, "203.0.113.10", 80, "tcp",
		 "{\"ip\":\"10.0.1.10\",\"port\":8080}");
	id = create("/v1/loadbalancers", F->ta, body, 201);
	/* Its VPC came to the node: a snapshot. */
	a = node_changes(node, rev, true);
	json_object_put(a);
	o = snapshot(node, &st);
	assert_int_equal(st->n_vpcs, 1);
	assert_int_equal(st->vpcs[0].id, F->vpc);
	/* Presented as push mode: the agent installs every endpoint. */
	assert_int_equal(st->vpcs[0].mode, XVPC_MODE_PUSH);
	assert_int_equal(st->n_subnets, 1);
	assert_true(has_ep(st, "10.0.1.10"));
	/* Only the public service of the VPC. */
	assert_int_equal(st->n_svcs, 1);
	assert_true(st->svcs[0].public);
	assert_int_equal(st->svcs[0].port, 80);
	assert_int_equal(st->svcs[0].backends[0].port, 8080);
	rev = iget(o, "revision");
	xvpc_state_free(st);
	json_object_put(o);
	/* n1 hosts a port: both services, the VPC in push mode too. */
	o = snapshot("n1", &st);
	assert_int_equal(st->n_svcs, 2);
	assert_int_equal(st->vpcs[0].mode, XVPC_MODE_PUSH);
	xvpc_state_free(st);
	json_object_put(o);

	/* Changes: a new backend port reaches the LB node (learn mode and
	 * all) ... */
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"ip\":\"10.0.1.11\",\"node\":\"n1\","
		 "\"ifname\":\"xa2\"}",
		 (long long)F->subnet);
	create("/v1/ports", F->ta, body, 201);
	a = node_changes(node, rev, false);
	obj = one_of_kind(a, "endpoint", "put");
	assert_string_equal(sget(obj, "ip"), "10.0.1.11");
	assert_string_equal(sget(obj, "node_ip"), "192.168.9.1");
	rev = iget(a, "revision");
	json_object_put(a);
	/* ... an update of the public service ... */
	snprintf(path, sizeof(path), "/v1/loadbalancers/%lld", (long long)id);
	assert_int_equal(http("PATCH", path, F->ta,
			      "{\"backends\":[{\"ip\":\"10.0.1.11\","
			      "\"port\":8080}]}",
			      NULL, NULL),
			 200);
	a = node_changes(node, rev, false);
	obj = one_of_kind(a, "service", "put");
	assert_true(
		json_object_get_boolean(json_object_object_get(obj, "public")));
	assert_string_equal(
		sget(json_object_array_get_idx(
			     json_object_object_get(obj, "backends"), 0),
		     "ip"),
		"10.0.1.11");
	rev = iget(a, "revision");
	json_object_put(a);
	/* ... not one of the east-west service ... */
	snprintf(path, sizeof(path), "/v1/loadbalancers/%lld", (long long)ew);
	assert_int_equal(http("PATCH", path, F->ta,
			      "{\"backends\":[{\"ip\":\"10.0.1.11\"}]}", NULL,
			      NULL),
			 200);
	a = node_changes(node, rev, false);
	assert_int_equal(
		json_object_array_length(json_object_object_get(a, "changes")),
		0);
	rev = iget(a, "revision");
	json_object_put(a);
	/* ... and deleting the public service takes the VPC away: a
	 * snapshot without it. */
	snprintf(path, sizeof(path), "/v1/loadbalancers/%lld", (long long)id);
	assert_int_equal(http("DELETE", path, F->ta, NULL, NULL, NULL), 204);
	a = node_changes(node, rev, true);
	assert_int_equal(
		json_object_array_length(json_object_object_get(a, "vpcs")), 0);
	json_object_put(a);
	/* n1 gets the VPC back in learn mode, its east-west service kept. */
	o = snapshot("n1", &st);
	assert_int_equal(st->vpcs[0].mode, XVPC_MODE_LEARN);
	assert_int_equal(st->n_svcs, 1);
	xvpc_state_free(st);
	json_object_put(o);
}

/* ---- xvpcctl lb ----------------------------------------------------- */

/* Runs `xvpcctl lb ARGS` as tenant A with stdout captured in *out. */
static int run(bool json, char **out, int argc, ...)
{
	struct cli_ctx ctx = {.json = json, .api = F->base, .token = F->ta};
	char *argv[24];
	va_list ap;
	int saved, fd, ret;
	FILE *f;
	long n;

	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = open(F->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	last_error[0] = '\0';
	ret = cmd_lb(&ctx, argc, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	f = fopen(F->out, "r");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	*out = calloc(1, n + 1);
	if (fread(*out, 1, n, f) != (size_t)n)
		(*out)[0] = '\0';
	fclose(f);
	return ret;
}

static void test_cli(void **state)
{
	char vpc[16], *out;
	json_object *o, *be, *hc;

	(void)state;
	snprintf(vpc, sizeof(vpc), "%lld", (long long)F->vpc);
	assert_int_equal(run(true, &out, 17, "create", "--vpc", vpc, "--vip",
			     "10.0.100.1", "--port", "80", "--backend",
			     "10.0.1.10:8080:2", "--backend", "10.0.1.11",
			     "--health", "http:/healthz:204", "--interval",
			     "1000", "--name", "web"),
			 0);
	o = json_tokener_parse(out);
	assert_non_null(o);
	assert_int_equal(iget(o, "id"), 1);
	assert_string_equal(sget(o, "protocol"), "tcp");
	be = json_object_object_get(o, "backends");
	assert_int_equal(json_object_array_length(be), 2);
	assert_int_equal(iget(json_object_array_get_idx(be, 0), "port"), 8080);
	assert_int_equal(iget(json_object_array_get_idx(be, 0), "weight"), 2);
	hc = json_object_object_get(o, "health_check");
	assert_string_equal(sget(hc, "path"), "/healthz");
	assert_int_equal(iget(hc, "expect_status"), 204);
	assert_int_equal(iget(hc, "interval_ms"), 1000);
	json_object_put(o);
	free(out);

	/* Human table. */
	assert_int_equal(run(false, &out, 1, "list"), 0);
	assert_non_null(strstr(out, "VIP"));
	assert_non_null(strstr(out, "10.0.100.1:80"));
	assert_non_null(strstr(out, "web"));
	assert_non_null(strstr(out, "http:/healthz:204"));
	free(out);
	assert_int_equal(run(false, &out, 2, "show", "1"), 0);
	assert_non_null(strstr(out, "10.0.100.1:80/tcp"));
	assert_non_null(strstr(out, "10.0.1.11"));
	free(out);

	/* Backends: add, remove, reweight in one update. */
	assert_int_equal(run(true, &out, 8, "backends", "1", "--add",
			     "10.0.1.12::5", "--remove", "10.0.1.11",
			     "--weight", "10.0.1.10:8080=9"),
			 0);
	o = json_tokener_parse(out);
	assert_int_equal(json_object_array_length(o), 2);
	assert_string_equal(sget(json_object_array_get_idx(o, 0), "ip"),
			    "10.0.1.10");
	assert_int_equal(iget(json_object_array_get_idx(o, 0), "weight"), 9);
	assert_string_equal(sget(json_object_array_get_idx(o, 1), "ip"),
			    "10.0.1.12");
	assert_int_equal(iget(json_object_array_get_idx(o, 1), "weight"), 5);
	json_object_put(o);
	free(out);
	assert_int_equal(run(false, &out, 2, "backends", "1"), 0);
	assert_non_null(strstr(out, "10.0.1.12"));
	assert_null(strstr(out, "10.0.1.11"));
	free(out);
	/* Removing what is not there changes nothing. */
	assert_int_equal(
		run(false, &out, 4, "backends", "1", "--remove", "10.0.1.99"),
		-ENOENT);
	assert_non_null(strstr(last_error, "not a backend"));
	free(out);

	/* Health check replaced. */
	assert_int_equal(run(true, &out, 6, "health", "1", "--health", "tcp",
			     "--fall", "5"),
			 0);
	o = json_tokener_parse(out);
	hc = json_object_object_get(o, "health_check");
	assert_string_equal(sget(hc, "type"), "tcp");
	assert_int_equal(iget(hc, "fall"), 5);
	assert_int_equal(iget(hc, "interval_ms"), 2000);
	json_object_put(o);
	free(out);

	/* The backends' reported health: 10.0.1.10 is n1's port, and n1
	 * reports it down. */
	assert_int_equal(
		http("POST", "/v1/nodes/n1/health", ADMIN,
		     "{\"backends\":[{\"loadbalancer\":1,\"address\":"
		     "\"10.0.1.10\",\"port\":8080,\"healthy\":false}]}",
		     NULL, NULL),
		200);
	assert_int_equal(run(false, &out, 2, "health", "1"), 0);
	assert_non_null(strstr(out, "health check tcp/2000ms"));
	assert_non_null(strstr(out, "10.0.1.10        8080   down"));
	assert_non_null(strstr(out, "10.0.1.12        80     up"));
	free(out);
	assert_int_equal(run(true, &out, 2, "health", "1"), 0);
	o = json_tokener_parse(out);
	assert_int_equal(json_object_array_length(o), 2);
	assert_false(json_object_get_boolean(json_object_object_get(
		json_object_array_get_idx(o, 0), "healthy")));
	json_object_put(o);
	free(out);

	/* The API's refusal reaches the user with its field; bad usage
	 * never reaches the server. */
	assert_int_equal(run(false, &out, 7, "create", "--vpc", vpc, "--vip",
			     "10.0.1.50", "--port", "80"),
			 -EINVAL);
	assert_non_null(strstr(last_error, "field 'vip'"));
	free(out);
	assert_int_equal(run(false, &out, 10, "create", "--vpc", vpc, "--vip",
			     "10.0.100.2", "--port", "80", "--health", "tcp",
			     "--rise"),
			 -EINVAL);
	free(out);
	assert_int_equal(run(false, &out, 5, "create", "--vpc", vpc, "--vip",
			     "10.0.100.2"),
			 -EINVAL);
	assert_non_null(strstr(last_error, "--port"));
	free(out);
	assert_int_equal(
		run(false, &out, 4, "backends", "1", "--add", "10.0.1.20:x"),
		-EINVAL);
	free(out);
	assert_int_equal(run(false, &out, 2, "create", "--help"), 0);
	assert_non_null(strstr(out, "--backend IP[:PORT[:WEIGHT]]"));
	free(out);

	assert_int_equal(run(false, &out, 2, "delete", "1"), 0);
	assert_non_null(strstr(out, "deleted lb 1"));
	free(out);
	assert_int_equal(run(false, &out, 2, "list", "--json"), 0);
	o = json_tokener_parse(out);
	assert_int_equal(json_object_array_length(o), 0);
	json_object_put(o);
	free(out);
}

/* xvpcctl lb create --public; show and list mark it. */
static void test_public_cli(void **state)
{
	char vpc[16], *out;
	json_object *o;

	(void)state;
	public_prefixes();
	snprintf(vpc, sizeof(vpc), "%lld", (long long)F->vpc);
	assert_int_equal(run(false, &out, 10, "create", "--public", "--vpc",
			     vpc, "--vip", "203.0.113.20", "--port", "80",
			     "--backend", "10.0.1.10:8080"),
			 0);
	assert_non_null(strstr(out, "203.0.113.20:80/tcp (public)"));
	free(out);
	assert_int_equal(run(false, &out, 1, "list"), 0);
	assert_non_null(strstr(out, "tcp,pub"));
	free(out);
	assert_int_equal(run(true, &out, 2, "show", "1"), 0);
	o = json_tokener_parse(out);
	assert_true(
		json_object_get_boolean(json_object_object_get(o, "public")));
	json_object_put(o);
	free(out);
	/* Refused: the API's message comes through. */
	F->api.n_public_prefix = 0;
	assert_int_not_equal(run(false, &out, 8, "create", "--public", "--vpc",
				 vpc, "--vip", "203.0.113.21", "--port", "80"),
			     0);
	free(out);
	assert_non_null(strstr(last_error, "--public-prefix"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_crud, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validation, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_isolation, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_idempotency, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_node_state, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_api, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_public_state, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_public_cli, setup,
						teardown),
	};
	int ret;

	xvpc_log_set_level(XVPC_LOG_WARN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return ret;
}
