// SPDX-License-Identifier: GPL-2.0-only
/* Desired state, "services": parsing, defaults, every validation rule with
 * the field it names, and the round trip through the serializer. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "state.h"

#define BASE                                                                   \
	"\"vpcs\": [{\"id\": 1}], \"subnets\": [{\"vpc\": 1, \"cidr\": "       \
	"\"10.0.1.0/24\", \"vni\": 1001, \"gateway_ip\": \"10.0.1.1\", "       \
	"\"gateway_mac\": \"02:78:76:70:63:01\"}], \"endpoints\": [{\"vpc\": " \
	"1, \"ip\": \"10.0.1.10\", \"mac\": \"02:00:00:01:01:0a\", "           \
	"\"node_ip\": \"192.168.100.2\"}]"
#define DOC(svcs) "{" BASE ", \"services\": [" svcs "]}"
#define BE2                                                                   \
	"\"backends\": [{\"ip\": \"10.0.1.10\", \"port\": 8080, \"weight\": " \
	"2}, "                                                                \
	"{\"ip\": \"10.0.1.11\"}]"
#define SVC(extra)                                                             \
	"{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 80, \"protocol\": " \
	"\"tcp\", " BE2 extra "}"

static void expect_err(const char *json, const char *want1, const char *want2)
{
	struct xvpc_state *st = (void *)0x1;
	char err[XVPC_STATE_ERR_LEN] = "";
	int ret;

	ret = xvpc_state_parse(json, strlen(json), 0, &st, err, sizeof(err));
	if (ret != -EINVAL || !strstr(err, want1) ||
	    (want2 && !strstr(err, want2)))
		fail_msg("doc %s\n  ret %d, error \"%s\"\n  want \"%s\" %s",
			 json, ret, err, want1, want2 ? want2 : "");
	assert_ptr_equal(st, (void *)0x1);
}

#define HC_HTTP                                                      \
	", \"health_check\": {\"type\": \"http\", \"interval_ms\": " \
	"500, \"fall\": 2, \"path\": \"/healthz\"}"
#define UDP53                                                    \
	"{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 53, " \
	"\"protocol\": \"udp\", \"backends\": []}"

static void test_valid(void **unused)
{
	const char *doc = DOC(SVC(HC_HTTP) ", " UDP53);
	const struct xvpc_state_svc *s;
	struct xvpc_state *st = NULL;
	char err[XVPC_STATE_ERR_LEN] = "";

	(void)unused;
	assert_int_equal(
		xvpc_state_parse(doc, strlen(doc), 0, &st, err, sizeof(err)),
		0);
	assert_int_equal(st->n_svcs, 2);
	s = xvpc_state_find_svc(st, 1, inet_addr("10.0.100.100"), 80,
				IPPROTO_TCP);
	assert_non_null(s);
	assert_int_equal(s->n_backends, 2);
	assert_int_equal(s->backends[0].ip, inet_addr("10.0.1.10"));
	assert_int_equal(s->backends[0].port, 8080);
	assert_int_equal(s->backends[0].weight, 2);
	assert_int_equal(s->backends[1].port, 0); /* the service's */
	assert_int_equal(s->backends[1].weight, 1);
	/* given values, then the defaults */
	assert_int_equal(s->hc.type, XVPC_HC_HTTP);
	assert_int_equal(s->hc.interval_ms, 500);
	assert_int_equal(s->hc.timeout_ms, 500);
	assert_int_equal(s->hc.rise, 2);
	assert_int_equal(s->hc.fall, 2);
	assert_int_equal(s->hc.expect_status, 200);
	assert_string_equal(s->hc.path, "/healthz");
	s = xvpc_state_find_svc(st, 1, inet_addr("10.0.100.100"), 53,
				IPPROTO_UDP);
	assert_non_null(s);
	assert_int_equal(s->n_backends, 0);
	assert_int_equal(s->hc.type, XVPC_HC_NONE);
	assert_null(xvpc_state_find_svc(st, 1, inet_addr("10.0.100.100"), 53,
					IPPROTO_TCP));
	xvpc_state_free(st);
}

static void test_optional(void **unused)
{
	const char *doc = "{" BASE "}";
	struct xvpc_state *st = NULL;
	char *j = NULL;

	(void)unused;
	assert_int_equal(xvpc_state_parse(doc, strlen(doc), 0, &st, NULL, 0),
			 0);
	assert_int_equal(st->n_svcs, 0);
	/* A state without services serializes as before: no "services". */
	assert_int_equal(xvpc_state_to_json(st, false, &j), 0);
	assert_null(strstr(j, "services"));
	free(j);
	xvpc_state_free(st);
}

static void test_roundtrip(void **unused)
{
	const char *doc = DOC(
		SVC(", \"health_check\": {\"type\": \"tcp\", \"interval_ms\": "
		    "300, \"timeout_ms\": 100, \"rise\": 1, \"fall\": 4}"));
	struct xvpc_state *a = NULL, *b = NULL;
	char *j1 = NULL, *j2 = NULL;

	(void)unused;
	assert_int_equal(xvpc_state_parse(doc, strlen(doc), 0, &a, NULL, 0), 0);
	assert_int_equal(xvpc_state_to_json(a, true, &j1), 0);
	assert_int_equal(xvpc_state_parse(j1, strlen(j1), 0, &b, NULL, 0), 0);
	assert_int_equal(xvpc_state_to_json(b, true, &j2), 0);
	assert_string_equal(j1, j2);
	assert_int_equal(b->n_svcs, 1);
	assert_int_equal(b->svcs[0].hc.fall, 4);
	assert_int_equal(b->svcs[0].hc.timeout_ms, 100);
	assert_int_equal(b->svcs[0].backends[0].weight, 2);
	free(j1);
	free(j2);
	xvpc_state_free(a);
	xvpc_state_free(b);
}

static void test_errors(void **unused)
{
	(void)unused;
	expect_err(DOC(SVC(", \"color\": 1")), "services[0]",
		   "unknown field \"color\"");
	expect_err(DOC("{\"vpc\": 2, \"vip\": \"10.0.100.100\", \"port\": 80, "
		       "\"protocol\": \"tcp\", \"backends\": []}"),
		   "field \"vpc\"", "not listed");
	expect_err(DOC("{\"vpc\": 1, \"vip\": \"10.0.1.10\", \"port\": 80, "
		       "\"protocol\": \"tcp\", \"backends\": []}"),
		   "field \"vip\"", "endpoint");
	expect_err(DOC("{\"vpc\": 1, \"vip\": \"10.0.1.1\", \"port\": 80, "
		       "\"protocol\": \"tcp\", \"backends\": []}"),
		   "field \"vip\"", "gateway");
	expect_err(DOC("{\"vpc\": 1, \"vip\": \"10.0.1.300\", \"port\": 80, "
		       "\"protocol\": \"tcp\", \"backends\": []}"),
		   "field \"vip\"", "not an IPv4");
	expect_err(DOC("{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 0, "
		       "\"protocol\": \"tcp\", \"backends\": []}"),
		   "field \"port\"", "1 .. 65535");
	expect_err(DOC("{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": "
		       "65536, \"protocol\": \"tcp\", \"backends\": []}"),
		   "field \"port\"", "1 .. 65535");
	expect_err(DOC("{\"vpc\": 1, \"vip\": \"10.0.100.100\", "
		       "\"protocol\": \"tcp\", \"backends\": []}"),
		   "field \"port\"", "missing");
	expect_err(DOC("{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 80, "
		       "\"protocol\": \"sctp\", \"backends\": []}"),
		   "field \"protocol\"", "\"sctp\"");
	expect_err(DOC("{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 80, "
		       "\"protocol\": \"tcp\"}"),
		   "field \"backends\"", "missing");
	expect_err(DOC("{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 80, "
		       "\"protocol\": \"tcp\", \"backends\": [{\"ip\": "
		       "\"10.0.1.10\", \"weight\": 65536}]}"),
		   "backends[0].weight", "0 .. 65535");
	expect_err(DOC("{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 80, "
		       "\"protocol\": \"tcp\", \"backends\": [{\"ip\": "
		       "\"10.0.1.10\"}, {\"ip\": \"10.0.1.10\", \"port\": "
		       "80}]}"),
		   "backends[1]", "already backends[0]");
	expect_err(DOC("{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 80, "
		       "\"protocol\": \"tcp\", \"backends\": [{\"ip\": "
		       "\"0.0.0.0\"}]}"),
		   "backends[0].ip", NULL);
	expect_err(DOC("{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 80, "
		       "\"protocol\": \"tcp\", \"backends\": [3]}"),
		   "backends[0]", "must be an object");
	expect_err(DOC(SVC(", \"health_check\": {\"type\": \"icmp\"}")),
		   "health_check.type", "\"icmp\"");
	expect_err(DOC(SVC(", \"health_check\": {\"type\": \"tcp\", "
			   "\"interval_ms\": 50}")),
		   "health_check.interval_ms", "100 .. 3600000");
	expect_err(DOC(SVC(", \"health_check\": {\"type\": \"tcp\", "
			   "\"interval_ms\": 500, \"timeout_ms\": 600}")),
		   "health_check.timeout_ms", "interval_ms");
	expect_err(DOC(SVC(", \"health_check\": {\"type\": \"tcp\", "
			   "\"rise\": 0}")),
		   "health_check.rise", "1 .. 100");
	expect_err(DOC(SVC(", \"health_check\": {\"type\": \"tcp\", "
			   "\"fall\": 101}")),
		   "health_check.fall", "1 .. 100");
	expect_err(DOC(SVC(", \"health_check\": {\"type\": \"http\", "
			   "\"path\": \"no-slash\"}")),
		   "health_check.path", NULL);
	expect_err(DOC(SVC(", \"health_check\": {\"type\": \"http\", "
			   "\"expect_status\": 99}")),
		   "health_check.expect_status", "100 .. 599");
	expect_err(DOC(SVC(", \"health_check\": {\"type\": \"tcp\", "
			   "\"retries\": 3}")),
		   "unknown field \"retries\"", NULL);
	expect_err(DOC(SVC("") ", " SVC("")), "services[1]",
		   "same as "
		   "services[0]");
}

/* The builder path (the controller's) validates the same rules. */
/* Public (north-south) services: parsed, serialized only when true, and
 * each rule of docs/state-format.md refused with the field it names. */
#define PUB(vip, port, be)                                                    \
	"{\"vpc\": 1, \"vip\": \"" vip "\", \"port\": " #port                 \
	", \"protocol\": \"tcp\", \"public\": true, \"backends\": [{\"ip\": " \
	"\"" be "\", \"port\": 8080}]}"

static void test_public(void **unused)
{
	const char *doc =
		DOC(PUB("203.0.113.10", 80, "10.0.1.10") ", " SVC(""));
	const struct xvpc_state_svc *s;
	struct xvpc_state *st = NULL, *b = NULL;
	char *j = NULL;

	(void)unused;
	assert_int_equal(xvpc_state_parse(doc, strlen(doc), 0, &st, NULL, 0),
			 0);
	s = xvpc_state_find_svc(st, 1, inet_addr("203.0.113.10"), 80,
				IPPROTO_TCP);
	assert_non_null(s);
	assert_true(s->public);
	s = xvpc_state_find_svc(st, 1, inet_addr("10.0.100.100"), 80,
				IPPROTO_TCP);
	assert_non_null(s);
	assert_false(s->public);
	assert_int_equal(xvpc_state_to_json(st, false, &j), 0);
	assert_non_null(strstr(j, "\"public\":true"));
	assert_null(strstr(j, "\"public\":false"));
	assert_int_equal(xvpc_state_parse(j, strlen(j), 0, &b, NULL, 0), 0);
	assert_true(xvpc_state_find_svc(b, 1, inet_addr("203.0.113.10"), 80,
					IPPROTO_TCP)
			    ->public);
	free(j);
	xvpc_state_free(b);
	xvpc_state_free(st);

	expect_err(DOC("{\"vpc\": 1, \"vip\": \"203.0.113.10\", \"port\": 80, "
		       "\"protocol\": \"tcp\", \"public\": 1, \"backends\": "
		       "[]}"),
		   "\"public\"", "boolean");
	expect_err(DOC(PUB("10.0.1.77", 80, "10.0.1.10")), "\"vip\"",
		   "outside the VPC's subnets");
	expect_err(DOC(PUB("203.0.113.10", 80, "10.0.1.10") ", " PUB(
			   "203.0.113.10", 80, "10.0.1.11")),
		   "services[1]", "public, like services[0]");
	expect_err(DOC(PUB("203.0.113.10", 80, "10.0.1.10") ", " PUB(
			   "203.0.113.11", 80, "10.0.1.10")),
		   "\"backends[0]\"", "already serves public services[0]");
}

static void test_builder(void **unused)
{
	const char *doc = "{" BASE "}";
	struct xvpc_state_lb_backend be[2] = {
		{.ip = inet_addr("10.0.1.10"), .weight = 1},
		{.ip = inet_addr("10.0.1.11"), .weight = 70000},
	};
	struct xvpc_state_svc s = {
		.vpc = 1,
		.vip = inet_addr("10.0.100.100"),
		.port = 80,
		.proto = IPPROTO_TCP,
		.backends = be,
		.n_backends = 2,
	};
	struct xvpc_state *st = NULL;
	char err[XVPC_STATE_ERR_LEN] = "";

	(void)unused;
	assert_int_equal(xvpc_state_parse(doc, strlen(doc), 0, &st, NULL, 0),
			 0);
	assert_int_equal(xvpc_state_add_svc(st, &s), 0);
	be[1].weight = 1; /* the state holds its own copy */
	assert_int_equal(xvpc_state_validate(st, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "backends[1].weight"));
	st->svcs[0].backends[1].weight = 3;
	s.hc.type = XVPC_HC_TCP;
	s.vip = inet_addr("10.0.100.101");
	assert_int_equal(xvpc_state_add_svc(st, &s), 0);
	assert_int_equal(xvpc_state_validate(st, 0, err, sizeof(err)), 0);
	/* defaults filled in by validation */
	assert_int_equal(st->svcs[1].hc.interval_ms, 2000);
	assert_int_equal(st->svcs[1].hc.timeout_ms, 1000);
	assert_int_equal(st->svcs[1].hc.rise, 2);
	assert_int_equal(st->svcs[1].hc.fall, 3);
	xvpc_state_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_optional),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_public),
		cmocka_unit_test(test_builder),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
