// SPDX-License-Identifier: GPL-2.0-only
/* The API without HTTP: every bad request gets a 4xx naming the field and
 * changes nothing (the store revision stays); objects map to the JSON the
 * docs promise. Requests go straight to api_handle(). */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "controller/api.h"

#define ADMIN "xva_test_admin_token"

struct fix {
	char dir[64];
	struct store *s;
	struct api api;
	char tok[128];
};

static struct fix *F;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int call(const char *method, const char *path, const char *token,
		const char *body, json_object **out)
{
	char auth[160];
	struct api_req req = {
		.method = method,
		.path = path,
		.authorization = auth,
		.body = body ? body : "",
		.body_len = body ? strlen(body) : 0,
	};
	struct api_resp resp;

	snprintf(auth, sizeof(auth), "Bearer %s", token);
	api_handle(&F->api, &req, &resp);
	if (out)
		*out = resp.body ? json_tokener_parse(resp.body) : NULL;
	free(resp.body);
	return resp.status;
}

static int setup(void **state)
{
	json_object *o;
	bool gen;

	F = calloc(1, sizeof(*F));
	strcpy(F->dir, "/tmp/xvpc-validate-XXXXXX");
	if (!mkdtemp(F->dir) || store_embed_open(F->dir, NULL, &F->s) ||
	    api_init(&F->api, F->s, ADMIN, &gen))
		return -1;
	if (call("POST", "/v1/tenants", ADMIN, "{\"name\":\"t1\"}", &o) != 201)
		return -1;
	snprintf(F->tok, sizeof(F->tok), "%s",
		 json_object_get_string(json_object_object_get(o, "token")));
	json_object_put(o);
	if (call("POST", "/v1/nodes", ADMIN,
		 "{\"name\":\"n1\",\"ip\":\"192.168.1.1\"}", NULL) != 201 ||
	    call("POST", "/v1/vpcs", F->tok,
		 "{\"name\":\"blue\",\"cidr\":\"10.0.0.0/16\"}", NULL) != 201 ||
	    call("POST", "/v1/subnets", F->tok,
		 "{\"vpc\":1,\"cidr\":\"10.0.1.0/24\",\"vni\":100}",
		 NULL) != 201 ||
	    call("POST", "/v1/ports", F->tok,
		 "{\"subnet\":1,\"ip\":\"10.0.1.10\"}", NULL) != 201)
		return -1;
	*state = F;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	api_fini(&F->api);
	store_close(F->s);
	nftw(F->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(F);
	return 0;
}

struct bad {
	const char *what;
	const char *method, *path, *body;
	int status;
	const char *code;
	const char *field; /* NULL: the error has a null field */
};

static const struct bad bads[] = {
	{"malformed JSON", "POST", "/v1/vpcs", "{\"name\":", 400,
	 "invalid_json", NULL},
	{"trailing data", "POST", "/v1/vpcs",
	 "{\"name\":\"a\",\"cidr\":\"10.1.0.0/16\"} x", 400, "invalid_json",
	 NULL},
	{"not an object", "POST", "/v1/vpcs", "[1]", 400, "invalid_json", NULL},
	{"empty body", "POST", "/v1/vpcs", "", 400, "invalid_json", NULL},
	{"unknown field", "POST", "/v1/vpcs",
	 "{\"name\":\"a\",\"cidr\":\"10.1.0.0/16\",\"colour\":\"red\"}", 400,
	 "unknown_field", "colour"},
	{"wrong type", "POST", "/v1/vpcs",
	 "{\"name\":5,\"cidr\":\"10.1.0.0/16\"}", 400, "invalid_type", "name"},
	{"missing field", "POST", "/v1/vpcs", "{\"name\":\"a\"}", 400,
	 "missing_field", "cidr"},
	{"host bits", "POST", "/v1/vpcs",
	 "{\"name\":\"a\",\"cidr\":\"10.1.0.1/16\"}", 400, "invalid_value",
	 "cidr"},
	{"bad name", "POST", "/v1/vpcs",
	 "{\"name\":\"a b\",\"cidr\":\"10.1.0.0/16\"}", 400, "invalid_value",
	 "name"},
	{"unknown mode", "POST", "/v1/vpcs",
	 "{\"name\":\"a\",\"cidr\":\"10.1.0.0/16\",\"mode\":\"flood\"}", 400,
	 "invalid_value", "mode"},
	{"subnet outside VPC", "POST", "/v1/subnets",
	 "{\"vpc\":1,\"cidr\":\"10.9.0.0/24\"}", 400, "invalid_value", "cidr"},
	{"subnet wider than VPC", "POST", "/v1/subnets",
	 "{\"vpc\":1,\"cidr\":\"10.0.0.0/8\"}", 400, "invalid_value", "cidr"},
	{"overlapping subnet", "POST", "/v1/subnets",
	 "{\"vpc\":1,\"cidr\":\"10.0.0.0/23\"}", 409, "overlap", "cidr"},
	{"VNI zero", "POST", "/v1/subnets",
	 "{\"vpc\":1,\"cidr\":\"10.0.2.0/24\",\"vni\":0}", 400, "invalid_value",
	 "vni"},
	{"VNI too big", "POST", "/v1/subnets",
	 "{\"vpc\":1,\"cidr\":\"10.0.2.0/24\",\"vni\":16777216}", 400,
	 "invalid_value", "vni"},
	{"VNI taken", "POST", "/v1/subnets",
	 "{\"vpc\":1,\"cidr\":\"10.0.2.0/24\",\"vni\":100}", 409, "in_use",
	 "vni"},
	{"gateway outside", "POST", "/v1/subnets",
	 "{\"vpc\":1,\"cidr\":\"10.0.2.0/24\",\"gateway_ip\":\"10.0.3.1\"}",
	 400, "invalid_value", "gateway_ip"},
	{"no such VPC", "POST", "/v1/subnets",
	 "{\"vpc\":99,\"cidr\":\"10.0.2.0/24\"}", 404, "not_found", "vpc"},
	{"ip outside subnet", "POST", "/v1/ports",
	 "{\"subnet\":1,\"ip\":\"10.0.2.5\"}", 400, "invalid_value", "ip"},
	{"network address", "POST", "/v1/ports",
	 "{\"subnet\":1,\"ip\":\"10.0.1.0\"}", 400, "reserved", "ip"},
	{"gateway address", "POST", "/v1/ports",
	 "{\"subnet\":1,\"ip\":\"10.0.1.1\"}", 400, "reserved", "ip"},
	{"broadcast address", "POST", "/v1/ports",
	 "{\"subnet\":1,\"ip\":\"10.0.1.255\"}", 400, "reserved", "ip"},
	{"address in use", "POST", "/v1/ports",
	 "{\"subnet\":1,\"ip\":\"10.0.1.10\"}", 409, "in_use", "ip"},
	{"not an address", "POST", "/v1/ports",
	 "{\"subnet\":1,\"ip\":\"10.0.1.300\"}", 400, "invalid_value", "ip"},
	{"node without ifname", "POST", "/v1/ports",
	 "{\"subnet\":1,\"node\":\"n1\"}", 400, "missing_field", "ifname"},
	{"unknown node", "POST", "/v1/ports",
	 "{\"subnet\":1,\"node\":\"nx\",\"ifname\":\"xv1\"}", 400,
	 "invalid_value", "node"},
	{"bad ifname", "POST", "/v1/ports",
	 "{\"subnet\":1,\"node\":\"n1\",\"ifname\":\"a/b\"}", 400,
	 "invalid_value", "ifname"},
	{"subnet as string", "POST", "/v1/ports", "{\"subnet\":\"1\"}", 400,
	 "invalid_type", "subnet"},
	{"read-only field", "PATCH", "/v1/vpcs/1", "{\"cidr\":\"10.2.0.0/16\"}",
	 400, "read_only", "cidr"},
	{"read-only port ip", "PATCH", "/v1/ports/1", "{\"ip\":\"10.0.1.11\"}",
	 400, "read_only", "ip"},
	{"subnet with ports", "DELETE", "/v1/subnets/1", NULL, 409, "in_use",
	 NULL},
	{"VPC with subnets", "DELETE", "/v1/vpcs/1", NULL, 409, "in_use", NULL},
	{"no such route", "GET", "/v1/nothing", NULL, 404, "not_found", NULL},
	{"wrong method", "PUT", "/v1/vpcs", NULL, 405, "method_not_allowed",
	 NULL},
	{"id not a number", "GET", "/v1/vpcs/abc", NULL, 404, "not_found",
	 NULL},
};

static void test_bad_requests(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *b = &bads[i];
		uint64_t rev = store_revision(F->s);
		json_object *o, *err, *f;
		int st;

		if (!b->status)
			continue;
		st = call(b->method, b->path, F->tok, b->body, &o);
		print_message("%s -> %d\n", b->what, st);
		assert_int_equal(st, b->status);
		assert_non_null(o);
		err = json_object_object_get(o, "error");
		assert_non_null(err);
		assert_string_equal(
			json_object_get_string(
				json_object_object_get(err, "code")),
			b->code);
		f = json_object_object_get(err, "field");
		if (b->field)
			assert_string_equal(json_object_get_string(f),
					    b->field);
		else
			assert_null(f);
		assert_non_null(json_object_get_string(
			json_object_object_get(err, "message")));
		json_object_put(o);
		/* Nothing changed. */
		assert_int_equal(store_revision(F->s), rev);
	}
}

static void test_too_large(void **state)
{
	struct api_req req = {
		.method = "POST",
		.path = "/v1/vpcs",
		.authorization = NULL,
		.body_too_large = true,
	};
	struct api_resp resp;
	char auth[160];

	(void)state;
	snprintf(auth, sizeof(auth), "Bearer %s", F->tok);
	req.authorization = auth;
	api_handle(&F->api, &req, &resp);
	assert_int_equal(resp.status, 413);
	assert_non_null(strstr(resp.body, "too_large"));
	free(resp.body);
}

static void test_auth(void **state)
{
	(void)state;
	assert_int_equal(call("GET", "/v1/vpcs", "xvt_not_a_token", NULL, NULL),
			 401);
	assert_int_equal(call("GET", "/v1/vpcs", "short", NULL, NULL), 401);
	/* Tenants cannot manage tenants or nodes; the admin owns no VPC. */
	assert_int_equal(call("GET", "/v1/tenants", F->tok, NULL, NULL), 403);
	assert_int_equal(call("POST", "/v1/nodes", F->tok,
			      "{\"name\":\"n2\",\"ip\":\"192.168.1.2\"}", NULL),
			 403);
	assert_int_equal(call("GET", "/v1/vpcs", ADMIN, NULL, NULL), 403);
	/* The document needs no token. */
	assert_int_equal(call("GET", "/v1/openapi.json", "", NULL, NULL), 200);
}

static const char *sget(json_object *o, const char *k)
{
	return json_object_get_string(json_object_object_get(o, k));
}

static void test_mapping(void **state)
{
	json_object *o;

	(void)state;
	assert_int_equal(call("POST", "/v1/subnets", F->tok,
			      "{\"vpc\":1,\"cidr\":\"10.0.4.0/22\","
			      "\"name\":\"web\"}",
			      &o),
			 201);
	assert_string_equal(sget(o, "cidr"), "10.0.4.0/22");
	assert_string_equal(sget(o, "gateway_ip"), "10.0.4.1");
	assert_string_equal(sget(o, "gateway_mac"), "02:78:76:70:63:01");
	assert_string_equal(sget(o, "name"), "web");
	assert_int_equal(json_object_get_int(json_object_object_get(o, "vpc")),
			 1);
	/* An allocated VNI, not the taken 100. */
	assert_true(json_object_get_int(json_object_object_get(o, "vni")) >= 1);
	assert_true(json_object_get_int(json_object_object_get(o, "vni")) !=
		    100);
	assert_null(json_object_object_get(o, "_idem"));
	json_object_put(o);

	assert_int_equal(call("POST", "/v1/ports", F->tok,
			      "{\"subnet\":1,\"node\":\"n1\","
			      "\"ifname\":\"xv1a\",\"name\":\"db\"}",
			      &o),
			 201);
	/* First free address after the gateway; MAC from the id. */
	assert_string_equal(sget(o, "ip"), "10.0.1.2");
	assert_string_equal(sget(o, "mac"), "02:00:00:00:00:02");
	assert_string_equal(sget(o, "node"), "n1");
	assert_string_equal(sget(o, "ifname"), "xv1a");
	json_object_put(o);

	/* PATCH: unbind, then bind again. */
	assert_int_equal(call("PATCH", "/v1/ports/2", F->tok,
			      "{\"node\":null,\"ifname\":null}", &o),
			 200);
	assert_null(json_object_object_get(o, "node"));
	json_object_put(o);
	assert_int_equal(call("PATCH", "/v1/ports/2", F->tok,
			      "{\"node\":\"n1\",\"ifname\":\"xv2\"}", &o),
			 200);
	assert_string_equal(sget(o, "ifname"), "xv2");
	json_object_put(o);

	/* Node state in the state-format shape. */
	assert_int_equal(call("GET", "/v1/nodes/n1/state", ADMIN, NULL, &o),
			 200);
	{
		json_object *eps = json_object_object_get(o, "endpoints");
		json_object *e;

		assert_int_equal(json_object_array_length(
					 json_object_object_get(o, "vpcs")),
				 1);
		assert_int_equal(json_object_array_length(
					 json_object_object_get(o, "subnets")),
				 2);
		/* Port 1 is unbound: only port 2 is an endpoint. */
		assert_int_equal(json_object_array_length(eps), 1);
		e = json_object_array_get_idx(eps, 0);
		assert_string_equal(sget(e, "ip"), "10.0.1.2");
		assert_string_equal(sget(e, "node_ip"), "192.168.1.1");
		assert_string_equal(sget(e, "ifname"), "xv2");
		assert_null(json_object_object_get(o, "snapshot"));
	}
	json_object_put(o);
}

static void test_pagination(void **state)
{
	json_object *o;
	char body[128];

	(void)state;
	for (int i = 0; i < 5; i++) {
		snprintf(body, sizeof(body),
			 "{\"name\":\"v%d\",\"cidr\":\"10.%d.0.0/16\"}", i,
			 50 + i);
		assert_int_equal(call("POST", "/v1/vpcs", F->tok, body, NULL),
				 201);
	}
	assert_int_equal(call("GET", "/v1/vpcs", F->tok, NULL, &o), 200);
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "items")),
		6);
	assert_null(json_object_object_get(o, "next"));
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_requests, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_too_large, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pagination, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
