// SPDX-License-Identifier: GPL-2.0-only
/* End to end over HTTP: the real server (libmicrohttpd) on a loopback
 * ephemeral port with a temporary data directory, driven with libcurl.
 * Create/list/get/delete, two tenants with overlapping CIDRs, idempotency,
 * 401/404/409/400/413, node state and its long-poll, restart recovery. */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
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
#include "log.h"

#define ADMIN "xva_e2e_admin_token_0123"

struct fix {
	char dir[64];
	struct store *s;
	struct api api;
	struct http_server *srv;
	char base[64];
	char ta[128], tb[128]; /* tenants A and B */
};

static struct fix *F;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int start(void)
{
	bool gen;

	if (store_embed_open(F->dir, NULL, &F->s))
		return -1;
	if (api_init(&F->api, F->s, ADMIN, &gen))
		return -1;
	if (http_start(&F->api, "127.0.0.1:0", &F->srv))
		return -1;
	snprintf(F->base, sizeof(F->base), "http://127.0.0.1:%u",
		 http_port(F->srv));
	return 0;
}

static void stop(void)
{
	http_stop(F->srv);
	F->srv = NULL;
	api_fini(&F->api);
	store_close(F->s);
	F->s = NULL;
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
	if (token) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, line);
	}
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

/* Creates and returns the new object's id (asserting the status). */
static int64_t create(const char *path, const char *token, const char *body,
		      long want)
{
	json_object *o;
	int64_t id;
	long st = http("POST", path, token, body, NULL, &o);

	if (st != want)
		fail_msg("POST %s %s: %ld (want %ld): %s", path, body, st, want,
			 o ? json_object_to_json_string(o) : "");
	id = iget(o, "id");
	json_object_put(o);
	return id;
}

static const char *err_field(json_object *o)
{
	return sget(json_object_object_get(o, "error"), "field");
}

static const char *err_code(json_object *o)
{
	return sget(json_object_object_get(o, "error"), "code");
}

static void new_tenant(const char *name, char *tok, size_t len)
{
	json_object *o;

	assert_int_equal(http("POST", "/v1/tenants", ADMIN, NULL, NULL, NULL),
			 400);
	snprintf(tok, len, "{\"name\":\"%s\"}", name);
	assert_int_equal(http("POST", "/v1/tenants", ADMIN, tok, NULL, &o),
			 201);
	snprintf(tok, len, "%s", sget(o, "token"));
	json_object_put(o);
}

static int setup(void **state)
{
	F = calloc(1, sizeof(*F));
	strcpy(F->dir, "/tmp/xvpc-api-XXXXXX");
	if (!mkdtemp(F->dir) || start())
		return -1;
	new_tenant("alpha", F->ta, sizeof(F->ta));
	new_tenant("beta", F->tb, sizeof(F->tb));
	create("/v1/nodes", ADMIN, "{\"name\":\"n1\",\"ip\":\"192.168.9.1\"}",
	       201);
	create("/v1/nodes", ADMIN, "{\"name\":\"n2\",\"ip\":\"192.168.9.2\"}",
	       201);
	*state = F;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (F->s)
		stop();
	nftw(F->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(F);
	return 0;
}

static void test_crud_and_pagination(void **state)
{
	json_object *o, *items;
	int64_t v1, v2, s1, p1;
	char path[128];

	(void)state;
	v1 = create("/v1/vpcs", F->ta,
		    "{\"name\":\"one\",\"cidr\":\"10.0.0.0/16\"}", 201);
	v2 = create("/v1/vpcs", F->ta,
		    "{\"name\":\"two\",\"cidr\":\"10.1.0.0/16\"}", 201);
	create("/v1/vpcs", F->ta,
	       "{\"name\":\"three\",\"cidr\":\"10.2.0.0/16\"}", 201);
	/* Pages of one, following `next`. */
	assert_int_equal(http("GET", "/v1/vpcs?limit=1", F->ta, NULL, NULL, &o),
			 200);
	items = json_object_object_get(o, "items");
	assert_int_equal(json_object_array_length(items), 1);
	assert_int_equal(iget(json_object_array_get_idx(items, 0), "id"), v1);
	assert_int_equal(iget(o, "next"), v1);
	json_object_put(o);
	snprintf(path, sizeof(path), "/v1/vpcs?limit=1&after=%lld",
		 (long long)v1);
	assert_int_equal(http("GET", path, F->ta, NULL, NULL, &o), 200);
	items = json_object_object_get(o, "items");
	assert_int_equal(iget(json_object_array_get_idx(items, 0), "id"), v2);
	json_object_put(o);
	assert_int_equal(http("GET", "/v1/vpcs?limit=0", F->ta, NULL, NULL, &o),
			 400);
	assert_string_equal(err_field(o), "limit");
	json_object_put(o);

	/* PATCH a name, GET it back. */
	snprintf(path, sizeof(path), "/v1/vpcs/%lld", (long long)v1);
	assert_int_equal(
		http("PATCH", path, F->ta, "{\"name\":\"uno\"}", NULL, NULL),
		200);
	assert_int_equal(http("GET", path, F->ta, NULL, NULL, &o), 200);
	assert_string_equal(sget(o, "name"), "uno");
	assert_string_equal(sget(o, "mode"), "push");
	json_object_put(o);

	snprintf(path, sizeof(path), "{\"vpc\":%lld,\"cidr\":\"10.0.1.0/24\"}",
		 (long long)v1);
	s1 = create("/v1/subnets", F->ta, path, 201);
	snprintf(path, sizeof(path), "{\"subnet\":%lld}", (long long)s1);
	p1 = create("/v1/ports", F->ta, path, 201);

	/* Refused deletes: 409 and nothing goes. */
	snprintf(path, sizeof(path), "/v1/subnets/%lld", (long long)s1);
	assert_int_equal(http("DELETE", path, F->ta, NULL, NULL, &o), 409);
	assert_string_equal(err_code(o), "in_use");
	json_object_put(o);
	snprintf(path, sizeof(path), "/v1/vpcs/%lld", (long long)v1);
	assert_int_equal(http("DELETE", path, F->ta, NULL, NULL, NULL), 409);

	/* Delete bottom-up. */
	snprintf(path, sizeof(path), "/v1/ports/%lld", (long long)p1);
	assert_int_equal(http("DELETE", path, F->ta, NULL, NULL, NULL), 204);
	assert_int_equal(http("GET", path, F->ta, NULL, NULL, NULL), 404);
	assert_int_equal(http("DELETE", path, F->ta, NULL, NULL, NULL), 404);
	snprintf(path, sizeof(path), "/v1/subnets/%lld", (long long)s1);
	assert_int_equal(http("DELETE", path, F->ta, NULL, NULL, NULL), 204);
	snprintf(path, sizeof(path), "/v1/vpcs/%lld", (long long)v1);
	assert_int_equal(http("DELETE", path, F->ta, NULL, NULL, NULL), 204);
	assert_int_equal(http("GET", "/v1/vpcs", F->ta, NULL, NULL, &o), 200);
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "items")),
		2);
	json_object_put(o);

	/* A tenant with VPCs cannot be deleted; tenants list for admin. */
	assert_int_equal(http("GET", "/v1/tenants", ADMIN, NULL, NULL, &o),
			 200);
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "items")),
		2);
	assert_null(json_object_object_get(
		json_object_array_get_idx(json_object_object_get(o, "items"),
					  0),
		"token"));
	json_object_put(o);
	assert_int_equal(
		http("DELETE", "/v1/tenants/1", ADMIN, NULL, NULL, NULL), 409);
}

static void test_isolation_overlapping_cidrs(void **state)
{
	json_object *o;
	int64_t va, vb, sa, sb, pa, pb;
	char body[128], path[64];

	(void)state;
	va = create("/v1/vpcs", F->ta,
		    "{\"name\":\"prod\",\"cidr\":\"10.0.0.0/16\"}", 201);
	vb = create("/v1/vpcs", F->tb,
		    "{\"name\":\"prod\",\"cidr\":\"10.0.0.0/16\"}", 201);
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.0.1.0/24\"}",
		 (long long)va);
	sa = create("/v1/subnets", F->ta, body, 201);
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.0.1.0/24\"}",
		 (long long)vb);
	sb = create("/v1/subnets", F->tb, body, 201);
	/* The same address in both tenants. */
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"ip\":\"10.0.1.10\",\"node\":\"n1\","
		 "\"ifname\":\"xa\"}",
		 (long long)sa);
	pa = create("/v1/ports", F->ta, body, 201);
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"ip\":\"10.0.1.10\",\"node\":\"n1\","
		 "\"ifname\":\"xb\"}",
		 (long long)sb);
	pb = create("/v1/ports", F->tb, body, 201);
	assert_true(pa != pb);

	/* B cannot see or touch A's objects: 404, as if absent. */
	snprintf(path, sizeof(path), "/v1/vpcs/%lld", (long long)va);
	assert_int_equal(http("GET", path, F->tb, NULL, NULL, NULL), 404);
	assert_int_equal(http("DELETE", path, F->tb, NULL, NULL, NULL), 404);
	assert_int_equal(
		http("PATCH", path, F->tb, "{\"name\":\"x\"}", NULL, NULL),
		404);
	snprintf(path, sizeof(path), "/v1/ports/%lld", (long long)pa);
	assert_int_equal(http("GET", path, F->tb, NULL, NULL, NULL), 404);
	assert_int_equal(http("DELETE", path, F->tb, NULL, NULL, NULL), 404);
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.0.9.0/24\"}",
		 (long long)va);
	assert_int_equal(http("POST", "/v1/subnets", F->tb, body, NULL, &o),
			 404);
	assert_string_equal(err_field(o), "vpc");
	json_object_put(o);
	snprintf(body, sizeof(body), "{\"subnet\":%lld}", (long long)sa);
	assert_int_equal(http("POST", "/v1/ports", F->tb, body, NULL, NULL),
			 404);
	/* Lists hold only the caller's objects. */
	assert_int_equal(http("GET", "/v1/ports", F->tb, NULL, NULL, &o), 200);
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "items")),
		1);
	assert_int_equal(iget(json_object_array_get_idx(
				      json_object_object_get(o, "items"), 0),
			      "id"),
			 pb);
	json_object_put(o);
	/* Two VPCs on n1, each with its own subnet and endpoint. */
	assert_int_equal(
		http("GET", "/v1/nodes/n1/state", ADMIN, NULL, NULL, &o), 200);
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "vpcs")), 2);
	assert_int_equal(json_object_array_length(
				 json_object_object_get(o, "endpoints")),
			 2);
	json_object_put(o);
	assert_int_equal(
		http("GET", "/v1/nodes/n2/state", ADMIN, NULL, NULL, &o), 200);
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "vpcs")), 0);
	json_object_put(o);
}

static void test_idempotency(void **state)
{
	json_object *o;
	const char *b = "{\"name\":\"idem\",\"cidr\":\"10.7.0.0/16\"}";
	int64_t id1, id2;

	(void)state;
	assert_int_equal(http("POST", "/v1/vpcs", F->ta, b, "req-1", &o), 201);
	id1 = iget(o, "id");
	json_object_put(o);
	assert_int_equal(http("POST", "/v1/vpcs", F->ta, b, "req-1", &o), 200);
	id2 = iget(o, "id");
	json_object_put(o);
	assert_int_equal(id1, id2);
	/* Keys are per tenant: B's "req-1" is another request. */
	assert_int_equal(http("POST", "/v1/vpcs", F->tb, b, "req-1", &o), 201);
	json_object_put(o);
	assert_int_equal(http("GET", "/v1/vpcs", F->ta, NULL, NULL, &o), 200);
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "items")),
		1);
	json_object_put(o);
	assert_int_equal(http("POST", "/v1/vpcs", F->ta, b, "bad key!", &o),
			 400);
	assert_string_equal(err_field(o), "Idempotency-Key");
	json_object_put(o);
}

static void test_errors(void **state)
{
	json_object *o;
	char *big;

	(void)state;
	assert_int_equal(http("GET", "/v1/vpcs", NULL, NULL, NULL, &o), 401);
	assert_string_equal(err_code(o), "unauthorized");
	json_object_put(o);
	assert_int_equal(http("GET", "/v1/vpcs", "xvt_0000000000000000", NULL,
			      NULL, NULL),
			 401);
	assert_int_equal(http("GET", "/v1/vpcs/12345", F->ta, NULL, NULL, NULL),
			 404);
	assert_int_equal(
		http("POST", "/v1/vpcs", F->ta, "{\"name\":", NULL, &o), 400);
	assert_string_equal(err_code(o), "invalid_json");
	json_object_put(o);
	create("/v1/vpcs", F->ta, "{\"name\":\"a\",\"cidr\":\"10.0.0.0/16\"}",
	       201);
	create("/v1/subnets", F->ta, "{\"vpc\":1,\"cidr\":\"10.0.0.0/24\"}",
	       201);
	assert_int_equal(http("POST", "/v1/subnets", F->ta,
			      "{\"vpc\":1,\"cidr\":\"10.0.0.128/25\"}", NULL,
			      &o),
			 409);
	assert_string_equal(err_field(o), "cidr");
	json_object_put(o);
	/* 413: a body over 64 KiB, refused before it is read. */
	big = malloc(API_BODY_MAX + 100);
	memset(big, ' ', API_BODY_MAX + 99);
	big[API_BODY_MAX + 99] = '\0';
	big[0] = '{';
	big[API_BODY_MAX + 98] = '}';
	assert_int_equal(http("POST", "/v1/vpcs", F->ta, big, NULL, &o), 413);
	assert_string_equal(err_code(o), "too_large");
	json_object_put(o);
	free(big);
	/* The server still answers afterwards. */
	assert_int_equal(http("GET", "/v1/openapi.json", NULL, NULL, NULL, &o),
			 200);
	assert_string_equal(sget(o, "openapi"), "3.0.3");
	json_object_put(o);
}

struct poll {
	char path[128];
	long status;
	json_object *o;
};

static void *poll_thread(void *arg)
{
	struct poll *p = arg;

	p->status = http("GET", p->path, ADMIN, NULL, NULL, &p->o);
	return NULL;
}

static json_object *change_at(json_object *o, size_t i)
{
	return json_object_array_get_idx(json_object_object_get(o, "changes"),
					 i);
}

static void test_state_long_poll(void **state)
{
	struct poll p = {0};
	pthread_t th;
	json_object *o, *c;
	int64_t rev, vpc, sub;
	char body[160];

	(void)state;
	vpc = create("/v1/vpcs", F->ta,
		     "{\"name\":\"lp\",\"cidr\":\"10.5.0.0/16\"}", 201);
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.5.1.0/24\"}",
		 (long long)vpc);
	sub = create("/v1/subnets", F->ta, body, 201);
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"node\":\"n1\",\"ifname\":\"lp0\"}",
		 (long long)sub);
	create("/v1/ports", F->ta, body, 201);
	assert_int_equal(
		http("GET", "/v1/nodes/n1/state", ADMIN, NULL, NULL, &o), 200);
	rev = iget(o, "revision");
	json_object_put(o);

	/* Nothing changes: an empty answer after the wait, same revision. */
	snprintf(p.path, sizeof(p.path), "/v1/nodes/n1/state?since=%lld&wait=1",
		 (long long)rev);
	assert_int_equal(http("GET", p.path, ADMIN, NULL, NULL, &o), 200);
	assert_false(
		json_object_get_boolean(json_object_object_get(o, "snapshot")));
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "changes")),
		0);
	assert_int_equal(iget(o, "revision"), rev);
	json_object_put(o);

	/* A waiting poll wakes up with a port added on another node of the
	 * same VPC: one endpoint put, without ifname (not local). */
	snprintf(p.path, sizeof(p.path),
		 "/v1/nodes/n1/state?since=%lld&wait=20", (long long)rev);
	assert_int_equal(pthread_create(&th, NULL, poll_thread, &p), 0);
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"ip\":\"10.5.1.77\",\"node\":\"n2\","
		 "\"ifname\":\"lp1\"}",
		 (long long)sub);
	create("/v1/ports", F->ta, body, 201);
	pthread_join(th, NULL);
	assert_int_equal(p.status, 200);
	c = change_at(p.o, 0);
	assert_non_null(c);
	assert_string_equal(sget(c, "op"), "put");
	assert_string_equal(sget(c, "kind"), "endpoint");
	assert_string_equal(sget(json_object_object_get(c, "object"), "ip"),
			    "10.5.1.77");
	assert_string_equal(
		sget(json_object_object_get(c, "object"), "node_ip"),
		"192.168.9.2");
	assert_null(json_object_object_get(json_object_object_get(c, "object"),
					   "ifname"));
	rev = iget(p.o, "revision");
	json_object_put(p.o);

	/* Another tenant's change is not this node's business. */
	create("/v1/vpcs", F->tb,
	       "{\"name\":\"other\",\"cidr\":\"10.5.0.0/16\"}", 201);
	snprintf(p.path, sizeof(p.path), "/v1/nodes/n1/state?since=%lld&wait=0",
		 (long long)rev);
	assert_int_equal(http("GET", p.path, ADMIN, NULL, NULL, &o), 200);
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "changes")),
		0);
	assert_true(iget(o, "revision") > rev);
	json_object_put(o);

	/* Deleting the remote port: an endpoint delete naming it. */
	assert_int_equal(
		http("GET", "/v1/ports?limit=10", F->ta, NULL, NULL, &o), 200);
	snprintf(body, sizeof(body), "/v1/ports/%lld",
		 (long long)iget(json_object_array_get_idx(
					 json_object_object_get(o, "items"), 1),
				 "id"));
	json_object_put(o);
	assert_int_equal(http("DELETE", body, F->ta, NULL, NULL, NULL), 204);
	assert_int_equal(http("GET", p.path, ADMIN, NULL, NULL, &o), 200);
	c = change_at(o, 0);
	assert_non_null(c);
	assert_string_equal(sget(c, "op"), "delete");
	assert_string_equal(sget(json_object_object_get(c, "object"), "ip"),
			    "10.5.1.77");

	/* Moving the local port to n2 changes n1's set of VPCs: n1 gets a
	 * snapshot without it, n2 one with it. */
	rev = iget(o, "revision");
	json_object_put(o);
	assert_int_equal(
		http("GET", "/v1/ports?limit=1", F->ta, NULL, NULL, &o), 200);
	snprintf(body, sizeof(body), "/v1/ports/%lld",
		 (long long)iget(json_object_array_get_idx(
					 json_object_object_get(o, "items"), 0),
				 "id"));
	json_object_put(o);
	assert_int_equal(http("PATCH", body, F->ta,
			      "{\"node\":\"n2\",\"ifname\":\"mv0\"}", NULL,
			      NULL),
			 200);
	snprintf(p.path, sizeof(p.path), "/v1/nodes/n1/state?since=%lld&wait=0",
		 (long long)rev);
	assert_int_equal(http("GET", p.path, ADMIN, NULL, NULL, &o), 200);
	assert_true(
		json_object_get_boolean(json_object_object_get(o, "snapshot")));
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "vpcs")), 0);
	json_object_put(o);
	assert_int_equal(
		http("GET", "/v1/nodes/n2/state", ADMIN, NULL, NULL, &o), 200);
	c = json_object_array_get_idx(json_object_object_get(o, "endpoints"),
				      0);
	assert_non_null(c);
	assert_string_equal(sget(c, "ifname"), "mv0");
	assert_string_equal(sget(c, "node_ip"), "192.168.9.2");
	json_object_put(o);

	/* A revision the controller never had: a snapshot. */
	assert_int_equal(http("GET", "/v1/nodes/n1/state?since=999999&wait=0",
			      ADMIN, NULL, NULL, &o),
			 200);
	assert_true(
		json_object_get_boolean(json_object_object_get(o, "snapshot")));
	assert_int_equal(json_object_array_length(
				 json_object_object_get(o, "endpoints")),
			 0);
	json_object_put(o);
	assert_int_equal(
		http("GET", "/v1/nodes/n1/state?wait=x", ADMIN, NULL, NULL, &o),
		400);
	json_object_put(o);
	assert_int_equal(
		http("GET", "/v1/nodes/nx/state", ADMIN, NULL, NULL, NULL),
		404);
	assert_int_equal(
		http("GET", "/v1/nodes/n1/state", F->ta, NULL, NULL, NULL),
		403);
}

/* Waits (bounded) until the dispatcher has parked polls and dispatched
 * revision rev; fails the test otherwise. */
static struct api_wake_stats wake_wait(uint64_t parked, uint64_t rev)
{
	struct api_wake_stats st;

	for (int i = 0; i < 2000; i++) {
		api_wake_stats(&F->api, &st);
		if (st.parked == parked && st.dispatched >= rev)
			return st;
		usleep(5000);
	}
	fail_msg("dispatcher: %llu polls parked (want %llu), revision %llu "
		 "dispatched (want %llu)",
		 (unsigned long long)st.parked, (unsigned long long)parked,
		 (unsigned long long)st.dispatched, (unsigned long long)rev);
	return st;
}

static int64_t node_revision(const char *node)
{
	char path[64];
	json_object *o;
	int64_t rev;

	snprintf(path, sizeof(path), "/v1/nodes/%s/state", node);
	assert_int_equal(http("GET", path, ADMIN, NULL, NULL, &o), 200);
	rev = iget(o, "revision");
	json_object_put(o);
	return rev;
}

static void park(struct poll *p, pthread_t *th, const char *node, int64_t rev)
{
	snprintf(p->path, sizeof(p->path),
		 "/v1/nodes/%s/state?since=%lld&wait=20", node, (long long)rev);
	assert_int_equal(pthread_create(th, NULL, poll_thread, p), 0);
}

static bool has_vpc(json_object *o, int64_t vpc)
{
	json_object *v = json_object_object_get(o, "vpcs");

	for (size_t i = 0; i < json_object_array_length(v); i++)
		if (iget(json_object_array_get_idx(v, i), "id") == vpc)
			return true;
	return false;
}

/*
 * Parked polls wake only for changes that concern their node: a port in
 * VPC A does not wake the poll of a node hosting only VPC B (it stays
 * parked, and answers B's next change); a port created on a node new to A
 * answers that node's poll with A's snapshot; a port moved between nodes
 * answers both.
 */
static void test_state_wake_lists(void **state)
{
	struct poll p2 = {0}, p3 = {0};
	struct api_wake_stats st;
	pthread_t t2, t3;
	int64_t va, vb, sa, sb, port, rev;
	json_object *c;
	char body[192];

	(void)state;
	create("/v1/nodes", ADMIN, "{\"name\":\"n3\",\"ip\":\"192.168.9.3\"}",
	       201);
	va = create("/v1/vpcs", F->ta,
		    "{\"name\":\"wa\",\"cidr\":\"10.8.0.0/16\"}", 201);
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.8.1.0/24\"}",
		 (long long)va);
	sa = create("/v1/subnets", F->ta, body, 201);
	vb = create("/v1/vpcs", F->tb,
		    "{\"name\":\"wb\",\"cidr\":\"10.8.0.0/16\"}", 201);
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.8.1.0/24\"}",
		 (long long)vb);
	sb = create("/v1/subnets", F->tb, body, 201);
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"node\":\"n1\",\"ifname\":\"a0\"}",
		 (long long)sa);
	create("/v1/ports", F->ta, body, 201);
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"node\":\"n2\",\"ifname\":\"b0\"}",
		 (long long)sb);
	create("/v1/ports", F->tb, body, 201);

	/* n2 hosts only B: a port in A leaves its poll parked. */
	rev = node_revision("n2");
	park(&p2, &t2, "n2", rev);
	st = wake_wait(1, rev);
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"ip\":\"10.8.1.50\",\"node\":\"n1\","
		 "\"ifname\":\"a1\"}",
		 (long long)sa);
	create("/v1/ports", F->ta, body, 201);
	rev = store_revision(F->s);
	assert_int_equal(wake_wait(1, rev).woken, st.woken);
	/* A port of B (on n1, new to B) answers it. */
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"ip\":\"10.8.1.60\",\"node\":\"n1\","
		 "\"ifname\":\"b1\"}",
		 (long long)sb);
	create("/v1/ports", F->tb, body, 201);
	pthread_join(t2, NULL);
	assert_int_equal(p2.status, 200);
	assert_false(json_object_get_boolean(
		json_object_object_get(p2.o, "snapshot")));
	c = change_at(p2.o, 0);
	assert_non_null(c);
	assert_string_equal(sget(json_object_object_get(c, "object"), "ip"),
			    "10.8.1.60");
	assert_int_equal(iget(json_object_object_get(c, "object"), "vpc"), vb);
	assert_null(change_at(p2.o, 1));
	json_object_put(p2.o);

	/* n3 hosts nothing: a port of A created on it answers its poll
	 * with a snapshot holding A. */
	rev = node_revision("n3");
	park(&p3, &t3, "n3", rev);
	wake_wait(1, rev);
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"node\":\"n3\",\"ifname\":\"a3\"}",
		 (long long)sa);
	port = create("/v1/ports", F->ta, body, 201);
	pthread_join(t3, NULL);
	assert_int_equal(p3.status, 200);
	assert_true(json_object_get_boolean(
		json_object_object_get(p3.o, "snapshot")));
	assert_true(has_vpc(p3.o, va));
	json_object_put(p3.o);

	/* The port moves from n3 to n2: both polls answer, n3 without A,
	 * n2 with it. */
	rev = node_revision("n3");
	park(&p3, &t3, "n3", rev);
	park(&p2, &t2, "n2", rev);
	wake_wait(2, rev);
	snprintf(body, sizeof(body), "/v1/ports/%lld", (long long)port);
	assert_int_equal(http("PATCH", body, F->ta,
			      "{\"node\":\"n2\",\"ifname\":\"mv3\"}", NULL,
			      NULL),
			 200);
	pthread_join(t3, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(p3.status, 200);
	assert_int_equal(p2.status, 200);
	assert_false(has_vpc(p3.o, va));
	assert_true(has_vpc(p2.o, va));
	assert_true(has_vpc(p2.o, vb));
	json_object_put(p3.o);
	json_object_put(p2.o);
}

/* GET .../state?since=rev&wait=0 of node: the answer, its text in *txt. */
static json_object *changes_of(const char *node, int64_t rev, char **txt)
{
	char path[128];
	json_object *o;

	snprintf(path, sizeof(path), "/v1/nodes/%s/state?since=%lld&wait=0",
		 node, (long long)rev);
	assert_int_equal(http("GET", path, ADMIN, NULL, NULL, &o), 200);
	*txt = strdup(
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	return o;
}

/*
 * A port created on a node in a VPC it already gets answers its poll with
 * the change (the endpoint, with its interface), not a snapshot; one in a
 * VPC new to the node answers a snapshot holding that VPC.
 */
static void test_state_own_port_change(void **state)
{
	json_object *o, *c;
	int64_t va, vb, sa, sb, rev;
	char body[192], *txt;

	(void)state;
	va = create("/v1/vpcs", F->ta,
		    "{\"name\":\"oa\",\"cidr\":\"10.9.0.0/16\"}", 201);
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.9.1.0/24\"}",
		 (long long)va);
	sa = create("/v1/subnets", F->ta, body, 201);
	vb = create("/v1/vpcs", F->ta,
		    "{\"name\":\"ob\",\"cidr\":\"10.10.0.0/16\"}", 201);
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.10.1.0/24\"}",
		 (long long)vb);
	sb = create("/v1/subnets", F->ta, body, 201);
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"node\":\"n1\",\"ifname\":\"o0\"}",
		 (long long)sa);
	create("/v1/ports", F->ta, body, 201);
	/* A changes answer (a port of A on n2) keeps n1's view. */
	rev = node_revision("n1");
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"node\":\"n2\",\"ifname\":\"o1\"}",
		 (long long)sa);
	create("/v1/ports", F->ta, body, 201);
	o = changes_of("n1", rev, &txt);
	free(txt);
	assert_false(
		json_object_get_boolean(json_object_object_get(o, "snapshot")));
	rev = iget(o, "revision");
	json_object_put(o);

	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"ip\":\"10.9.1.40\",\"node\":\"n1\","
		 "\"ifname\":\"o2\"}",
		 (long long)sa);
	create("/v1/ports", F->ta, body, 201);
	o = changes_of("n1", rev, &txt);
	free(txt);
	assert_false(
		json_object_get_boolean(json_object_object_get(o, "snapshot")));
	c = change_at(o, 0);
	assert_non_null(c);
	assert_string_equal(sget(c, "op"), "put");
	assert_string_equal(sget(json_object_object_get(c, "object"), "ip"),
			    "10.9.1.40");
	assert_string_equal(sget(json_object_object_get(c, "object"), "ifname"),
			    "o2");
	assert_null(change_at(o, 1));
	rev = iget(o, "revision");
	json_object_put(o);

	/* B is new to n1: a snapshot with both VPCs. */
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"node\":\"n1\",\"ifname\":\"o3\"}",
		 (long long)sb);
	create("/v1/ports", F->ta, body, 201);
	o = changes_of("n1", rev, &txt);
	free(txt);
	assert_true(
		json_object_get_boolean(json_object_object_get(o, "snapshot")));
	assert_true(has_vpc(o, va));
	assert_true(has_vpc(o, vb));
	json_object_put(o);
}

static size_t on_hint(char *d, size_t sz, size_t nm, void *arg)
{
	long *hint = arg;

	if (sz * nm > 16 && !strncasecmp(d, "X-Xvpc-Batch-Ms:", 16))
		*hint = strtol(d + 16, NULL, 10);
	return sz * nm;
}

/* A node's state as its agent polls it: the X-Xvpc-Batch-Ms asked (-1:
 * none). */
static long batch_hint_of(const char *node)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct buf b = {0};
	char url[512], line[256];
	long hint = -1, status = 0;

	snprintf(url, sizeof(url), "%s/v1/nodes/%s/state", F->base, node);
	snprintf(line, sizeof(line), "Authorization: Bearer %s", ADMIN);
	h = curl_slist_append(h, line);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_hint);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hint);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	assert_int_equal(status, 200);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(b.p);
	return hint;
}

/* The batching a controller asks of its agents grows with the nodes that
 * poll it: pollers * 1000 / answer rate ms, capped; none when that is
 * nothing or the rate is off. */
static void test_state_batch_hint(void **state)
{
	(void)state;
	assert_int_equal(batch_hint_of("n1"), -1); /* default rate, 1 node */
	F->api.answer_rate = 10;		   /* answers/s */
	assert_int_equal(batch_hint_of("n2"), 100);
	/* The pollers are recounted every API_POLLERS_EVERY_MS. */
	usleep((API_POLLERS_EVERY_MS + 100) * 1000);
	assert_int_equal(batch_hint_of("n2"), 200);
	F->api.answer_rate = 1;
	assert_int_equal(batch_hint_of("n1"), API_BATCH_HINT_MAX_MS);
	F->api.answer_rate = -1;
	assert_int_equal(batch_hint_of("n1"), -1);
}

/* Whether the "nodes" of node n1's full state list ip. */
static bool lists_member(const char *ip)
{
	json_object *o, *arr;
	bool found = false;

	assert_int_equal(
		http("GET", "/v1/nodes/n1/state", ADMIN, NULL, NULL, &o), 200);
	arr = json_object_object_get(o, "nodes");
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		found = found ||
			!strcmp(json_object_get_string(
					json_object_array_get_idx(arr, i)),
				ip);
	json_object_put(o);
	return found;
}

/* The members a snapshot lists follow node creations, address changes
 * and deletions (they are kept between snapshots), and unrelated changes
 * keep them. */
static void test_state_members(void **state)
{
	(void)state;
	assert_true(lists_member("192.168.9.2"));
	create("/v1/nodes", ADMIN, "{\"name\":\"n5\",\"ip\":\"192.168.9.5\"}",
	       201);
	assert_true(lists_member("192.168.9.5"));
	create("/v1/vpcs", F->ta, "{\"name\":\"m\",\"cidr\":\"10.11.0.0/16\"}",
	       201);
	assert_true(lists_member("192.168.9.5"));
	assert_int_equal(http("PATCH", "/v1/nodes/n5", ADMIN,
			      "{\"ip\":\"192.168.9.6\"}", NULL, NULL),
			 200);
	assert_false(lists_member("192.168.9.5"));
	assert_true(lists_member("192.168.9.6"));
	assert_int_equal(
		http("DELETE", "/v1/nodes/n5", ADMIN, NULL, NULL, NULL), 204);
	assert_false(lists_member("192.168.9.6"));
	assert_true(lists_member("192.168.9.1"));
}

/* The node address of a remote endpoint in a changes answer: of the node
 * record as it is, also after the node was given another address (node
 * addresses are kept between answers). */
static void test_state_endpoint_address(void **state)
{
	json_object *o, *c;
	int64_t v, sn, rev;
	char body[192], *txt;

	(void)state;
	v = create("/v1/vpcs", F->ta,
		   "{\"name\":\"ea\",\"cidr\":\"10.12.0.0/16\"}", 201);
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.12.1.0/24\"}",
		 (long long)v);
	sn = create("/v1/subnets", F->ta, body, 201);
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"node\":\"n1\",\"ifname\":\"e0\"}",
		 (long long)sn);
	create("/v1/ports", F->ta, body, 201);
	for (int round = 0; round < 2; round++) {
		const char *want = round ? "192.168.9.7" : "192.168.9.2";

		rev = node_revision("n1");
		snprintf(body, sizeof(body),
			 "{\"subnet\":%lld,\"node\":\"n2\","
			 "\"ifname\":\"e%d\"}",
			 (long long)sn, round + 1);
		create("/v1/ports", F->ta, body, 201);
		o = changes_of("n1", rev, &txt);
		free(txt);
		assert_false(json_object_get_boolean(
			json_object_object_get(o, "snapshot")));
		c = change_at(o, 0);
		assert_non_null(c);
		assert_string_equal(
			sget(json_object_object_get(c, "object"), "node_ip"),
			want);
		json_object_put(o);
		assert_int_equal(http("PATCH", "/v1/nodes/n2", ADMIN,
				      "{\"ip\":\"192.168.9.7\"}", NULL, NULL),
				 200);
	}
}

/*
 * Polls from the same revision share one answer when they may (nodes that
 * get the VPC and own none of the changed ports), and only then: the owner
 * of a new port gets its snapshot, a node of another VPC nothing; the next
 * window (the nodes' views kept from the last one) likewise.
 */
static void test_state_shared_answers(void **state)
{
	json_object *o1, *o2, *o3, *o4, *c;
	char *t1, *t2, *t3, *t4, body[160], path[64];
	int64_t rev, vpc, sub, vpc_b, sub_b, port;

	(void)state;
	create("/v1/nodes", ADMIN, "{\"name\":\"n3\",\"ip\":\"192.168.9.3\"}",
	       201);
	create("/v1/nodes", ADMIN, "{\"name\":\"n4\",\"ip\":\"192.168.9.4\"}",
	       201);
	vpc = create("/v1/vpcs", F->ta,
		     "{\"name\":\"sh\",\"cidr\":\"10.6.0.0/16\"}", 201);
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.6.1.0/24\"}",
		 (long long)vpc);
	sub = create("/v1/subnets", F->ta, body, 201);
	vpc_b = create("/v1/vpcs", F->ta,
		       "{\"name\":\"sb\",\"cidr\":\"10.7.0.0/16\"}", 201);
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.7.1.0/24\"}",
		 (long long)vpc_b);
	sub_b = create("/v1/subnets", F->ta, body, 201);
	for (int i = 1; i <= 3; i++) {
		snprintf(
			body, sizeof(body),
			"{\"subnet\":%lld,\"node\":\"n%d\",\"ifname\":\"s%d\"}",
			(long long)sub, i, i);
		create("/v1/ports", F->ta, body, 201);
	}
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"node\":\"n4\",\"ifname\":\"b4\"}",
		 (long long)sub_b);
	create("/v1/ports", F->ta, body, 201);
	assert_int_equal(
		http("GET", "/v1/nodes/n1/state", ADMIN, NULL, NULL, &o1), 200);
	rev = iget(o1, "revision");
	json_object_put(o1);

	for (int round = 0; round < 2; round++) {
		/* Round 0: a new port on n3; round 1: it goes. */
		if (!round) {
			snprintf(body, sizeof(body),
				 "{\"subnet\":%lld,\"ip\":\"10.6.1.99\","
				 "\"node\":\"n3\",\"ifname\":\"s9\"}",
				 (long long)sub);
			port = create("/v1/ports", F->ta, body, 201);
		} else {
			snprintf(path, sizeof(path), "/v1/ports/%lld",
				 (long long)port);
			assert_int_equal(
				http("DELETE", path, F->ta, NULL, NULL, NULL),
				204);
		}
		o1 = changes_of("n1", rev, &t1);
		o2 = changes_of("n2", rev, &t2);
		o3 = changes_of("n3", rev, &t3);
		o4 = changes_of("n4", rev, &t4);
		/* n1 and n2: the same answer, one endpoint change. */
		assert_string_equal(t1, t2);
		assert_false(json_object_get_boolean(
			json_object_object_get(o1, "snapshot")));
		c = change_at(o1, 0);
		assert_non_null(c);
		assert_null(change_at(o1, 1));
		assert_string_equal(sget(c, "op"), round ? "delete" : "put");
		assert_string_equal(
			sget(json_object_object_get(c, "object"), "ip"),
			"10.6.1.99");
		assert_null(json_object_object_get(
			json_object_object_get(c, "object"), "ifname"));
		/* n3 owns the port: a snapshot, with the port's ifname. */
		assert_true(json_object_get_boolean(
			json_object_object_get(o3, "snapshot")));
		assert_string_not_equal(t1, t3);
		/* n4 gets another VPC: nothing. */
		assert_false(json_object_get_boolean(
			json_object_object_get(o4, "snapshot")));
		assert_null(change_at(o4, 0));
		assert_int_equal(iget(o4, "revision"), iget(o1, "revision"));
		rev = iget(o1, "revision");
		json_object_put(o1);
		json_object_put(o2);
		json_object_put(o3);
		json_object_put(o4);
		free(t1);
		free(t2);
		free(t3);
		free(t4);
	}
}

struct creator {
	char body[128];
	int ok;
};

static void *create_ports(void *arg)
{
	struct creator *cr = arg;

	for (int i = 0; i < 25; i++)
		if (http("POST", "/v1/ports", F->ta, cr->body, NULL, NULL) ==
		    201)
			cr->ok++;
	return NULL;
}

/* Four clients filling one subnet at once: every port gets its own
 * address, none is lost. */
static void test_concurrent_ports(void **state)
{
	struct creator cr[4];
	pthread_t th[4];
	json_object *o, *items;
	char seen[256] = {0}, ids[256] = {0};
	int64_t sub;
	int total = 0;

	(void)state;
	/* Blocks of 8 ids: the 100 creations reserve a dozen of them ahead
	 * while the others go on, and never hand out an id twice (a creation
	 * retried after an address conflict skips one). */
	F->api.id_block = 8;
	create("/v1/vpcs", F->ta, "{\"name\":\"c\",\"cidr\":\"10.8.0.0/16\"}",
	       201);
	sub = create("/v1/subnets", F->ta,
		     "{\"vpc\":1,\"cidr\":\"10.8.1.0/24\"}", 201);
	for (int i = 0; i < 4; i++) {
		cr[i].ok = 0;
		snprintf(
			cr[i].body, sizeof(cr[i].body),
			"{\"subnet\":%lld,\"node\":\"n%d\",\"ifname\":\"c%d\"}",
			(long long)sub, 1 + i % 2, i);
		assert_int_equal(
			pthread_create(&th[i], NULL, create_ports, &cr[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		total += cr[i].ok;
	}
	assert_int_equal(total, 100);
	assert_int_equal(
		http("GET", "/v1/ports?limit=1000", F->ta, NULL, NULL, &o),
		200);
	items = json_object_object_get(o, "items");
	assert_int_equal(json_object_array_length(items), 100);
	for (size_t i = 0; i < 100; i++) {
		const char *ip =
			sget(json_object_array_get_idx(items, i), "ip");
		int last;

		assert_int_equal(strncmp(ip, "10.8.1.", 7), 0);
		last = atoi(ip + 7);
		assert_in_range(last, 2, 254);
		assert_false(seen[last]);
		seen[last] = 1;
		last = (int)iget(json_object_array_get_idx(items, i), "id");
		assert_in_range(last, 1, 255);
		assert_false(ids[last]);
		ids[last] = 1;
	}
	json_object_put(o);
}

static void test_restart_recovery(void **state)
{
	json_object *o;
	int64_t vpc, sub, port, again;
	char body[128], path[64];

	(void)state;
	vpc = create("/v1/vpcs", F->ta,
		     "{\"name\":\"keep\",\"cidr\":\"10.3.0.0/16\"}", 201);
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.3.1.0/24\"}",
		 (long long)vpc);
	sub = create("/v1/subnets", F->ta, body, 201);
	snprintf(body, sizeof(body), "{\"subnet\":%lld}", (long long)sub);
	port = create("/v1/ports", F->ta, body, 201);
	assert_int_equal(
		http("GET", "/v1/nodes/n1/state", ADMIN, NULL, NULL, &o), 200);
	json_object_put(o);

	stop();
	assert_int_equal(start(), 0);

	/* Same objects, same tokens. */
	snprintf(path, sizeof(path), "/v1/ports/%lld", (long long)port);
	assert_int_equal(http("GET", path, F->ta, NULL, NULL, &o), 200);
	assert_string_equal(sget(o, "ip"), "10.3.1.2");
	json_object_put(o);
	assert_int_equal(http("GET", "/v1/nodes", ADMIN, NULL, NULL, &o), 200);
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "items")),
		2);
	json_object_put(o);
	/* Ids and addresses are not handed out twice. */
	snprintf(body, sizeof(body), "{\"subnet\":%lld}", (long long)sub);
	again = create("/v1/ports", F->ta, body, 201);
	assert_true(again > port);
	snprintf(path, sizeof(path), "/v1/ports/%lld", (long long)again);
	assert_int_equal(http("GET", path, F->ta, NULL, NULL, &o), 200);
	assert_string_equal(sget(o, "ip"), "10.3.1.3");
	json_object_put(o);
	/* The feed started over: an old revision gets a snapshot. */
	assert_int_equal(http("GET", "/v1/nodes/n1/state?since=1", ADMIN, NULL,
			      NULL, &o),
			 200);
	assert_true(
		json_object_get_boolean(json_object_object_get(o, "snapshot")));
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_crud_and_pagination, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_isolation_overlapping_cidrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idempotency, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_long_poll, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_state_shared_answers,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_wake_lists, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_state_own_port_change,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_endpoint_address,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_batch_hint, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_state_members, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_ports, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_restart_recovery, setup,
						teardown),
	};
	int ret;

	xvpc_log_set_level(XVPC_LOG_WARN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return ret;
}
