// SPDX-License-Identifier: GPL-2.0-only
/* Desired-state parser: every validation rule of docs/state-format.md has a
 * case that breaks it and names the object and field in the error. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "state.h"

#define VPCS "\"vpcs\": [{\"id\": 1, \"name\": \"blue\"}, {\"id\": 2}]"
#define SUB1                                                      \
	"{\"vpc\": 1, \"cidr\": \"10.0.1.0/24\", \"vni\": 1001, " \
	"\"gateway_ip\": \"10.0.1.1\", \"gateway_mac\": "         \
	"\"02:78:76:70:63:01\"}"
#define SUB2                                                      \
	"{\"vpc\": 2, \"cidr\": \"10.0.1.0/24\", \"vni\": 2001, " \
	"\"gateway_ip\": \"10.0.1.1\", \"gateway_mac\": "         \
	"\"02:78:76:70:63:01\"}"
#define SUBS "\"subnets\": [" SUB1 ", " SUB2 "]"
#define EP1                                                                    \
	"{\"vpc\": 1, \"ip\": \"10.0.1.10\", \"mac\": \"02:00:00:01:01:0a\", " \
	"\"node_ip\": \"192.168.100.1\", \"ifname\": \"xv1a\"}"
#define EP2                                                                    \
	"{\"vpc\": 2, \"ip\": \"10.0.1.10\", \"mac\": \"02:00:00:02:01:0a\", " \
	"\"node_ip\": \"192.168.100.2\"}"
#define EPS	 "\"endpoints\": [" EP1 ", " EP2 "]"
#define DOC(...) "{\"revision\": 7, " __VA_ARGS__ "}"

static __be32 node_ip(void)
{
	return inet_addr("192.168.100.1");
}

static void expect_err(const char *json, const char *want1, const char *want2)
{
	struct xvpc_state *st = (void *)0x1;
	char err[XVPC_STATE_ERR_LEN] = "";
	int ret;

	ret = xvpc_state_parse(json, strlen(json), node_ip(), &st, err,
			       sizeof(err));
	if (ret != -EINVAL || !strstr(err, want1) ||
	    (want2 && !strstr(err, want2)))
		fail_msg("doc %s\n  ret %d, error \"%s\"\n  want \"%s\"%s%s",
			 json, ret, err, want1, want2 ? " and " : "",
			 want2 ? want2 : "");
	assert_ptr_equal(st, (void *)0x1); /* untouched on error */
}

static void test_valid(void **unused)
{
	const char *doc = DOC(VPCS ", " SUBS ", " EPS);
	struct xvpc_state *st = NULL;
	char err[XVPC_STATE_ERR_LEN] = "";
	const struct xvpc_state_subnet *s;

	(void)unused;
	assert_int_equal(xvpc_state_parse(doc, strlen(doc), node_ip(), &st, err,
					  sizeof(err)),
			 0);
	assert_non_null(st);
	assert_true(st->validated);
	assert_int_equal(st->revision, 7);
	assert_int_equal(st->n_vpcs, 2);
	assert_string_equal(st->vpcs[0].name, "blue");
	assert_int_equal(st->n_subnets, 2);
	assert_int_equal(st->n_eps, 2);
	assert_string_equal(st->eps[0].ifname, "xv1a");
	assert_string_equal(st->eps[1].ifname, "");
	s = xvpc_state_find_subnet(st, 2, inet_addr("10.0.1.77"));
	assert_non_null(s);
	assert_int_equal(s->vni, 2001);
	assert_null(xvpc_state_find_subnet(st, 3, inet_addr("10.0.1.77")));
	assert_null(xvpc_state_find_subnet(st, 1, inet_addr("10.0.2.1")));
	xvpc_state_free(st);
}

static void test_empty_and_revision_default(void **unused)
{
	const char *doc = "{\"vpcs\": [], \"subnets\": [], \"endpoints\": []}";
	struct xvpc_state *st = NULL;

	(void)unused;
	assert_int_equal(xvpc_state_parse(doc, strlen(doc), 0, &st, NULL, 0),
			 0);
	assert_int_equal(st->revision, 0);
	assert_int_equal(st->n_eps, 0);
	xvpc_state_free(st);
}

static void test_roundtrip(void **unused)
{
	const char *doc = DOC(VPCS ", " SUBS ", " EPS);
	struct xvpc_state *a = NULL, *b = NULL;
	char *j1 = NULL, *j2 = NULL;

	(void)unused;
	assert_int_equal(
		xvpc_state_parse(doc, strlen(doc), node_ip(), &a, NULL, 0), 0);
	assert_int_equal(xvpc_state_to_json(a, true, &j1), 0);
	assert_int_equal(
		xvpc_state_parse(j1, strlen(j1), node_ip(), &b, NULL, 0), 0);
	assert_int_equal(xvpc_state_to_json(b, false, &j2), 0);
	free(j1);
	assert_int_equal(xvpc_state_to_json(a, false, &j1), 0);
	assert_string_equal(j1, j2);
	assert_non_null(strstr(j1, "\"gateway_mac\":\"02:78:76:70:63:01\""));
	assert_non_null(strstr(j1, "\"cidr\":\"10.0.1.0/24\""));
	free(j1);
	free(j2);
	xvpc_state_free(a);
	xvpc_state_free(b);
}

static void test_builder(void **unused)
{
	struct xvpc_state *st = xvpc_state_new();
	struct xvpc_state_vpc v = {.id = 5};
	struct xvpc_state_subnet s = {.vpc = 5,
				      .net = inet_addr("10.5.0.0"),
				      .plen = 16,
				      .vni = 5,
				      .gw_ip = inet_addr("10.5.0.1"),
				      .gw_mac = {2, 0, 0, 0, 0, 1}};
	struct xvpc_state_ep e = {.vpc = 5,
				  .ip = inet_addr("10.5.3.4"),
				  .mac = {2, 0, 0, 0, 3, 4},
				  .node_ip = inet_addr("192.168.100.1")};
	char err[XVPC_STATE_ERR_LEN] = "";

	(void)unused;
	assert_non_null(st);
	assert_int_equal(xvpc_state_add_vpc(st, &v), 0);
	assert_int_equal(xvpc_state_add_subnet(st, &s), 0);
	assert_int_equal(xvpc_state_add_ep(st, &e), 0);
	/* Local endpoint without ifname: fine for the controller (node 0),
	 * an error on the node itself. */
	assert_int_equal(xvpc_state_validate(st, 0, err, sizeof(err)), 0);
	assert_int_equal(xvpc_state_validate(st, node_ip(), err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "\"ifname\": required"));
	assert_false(st->validated);
	xvpc_state_free(st);
}

/* Syntax and structure. */
static void test_syntax(void **unused)
{
	(void)unused;
	expect_err("", "not valid JSON", NULL);
	expect_err("{\"vpcs\": [", "not valid JSON", NULL);
	expect_err("{\"vpcs\": [],}", "not valid JSON", NULL);
	expect_err("[]", "must be an object", NULL);
	expect_err(DOC(VPCS ", " SUBS ", " EPS) " x", "offset 504", NULL);
	expect_err(DOC(VPCS ", " SUBS ", " EPS ", \"extra\": 1"),
		   "state: unknown field \"extra\"", NULL);
	expect_err(DOC(SUBS ", " EPS), "state: field \"vpcs\" is missing",
		   NULL);
	expect_err(DOC(VPCS ", " EPS), "field \"subnets\" is missing", NULL);
	expect_err(DOC(VPCS ", " SUBS), "field \"endpoints\" is missing", NULL);
	expect_err("{\"revision\": -1, " VPCS ", " SUBS ", " EPS "}",
		   "\"revision\"", NULL);
	expect_err("{\"revision\": \"7\", " VPCS ", " SUBS ", " EPS "}",
		   "field \"revision\" must be an integer, not a string", NULL);
	expect_err(DOC("\"vpcs\": {}, " SUBS ", " EPS),
		   "field \"vpcs\" must be an array", NULL);
	expect_err(DOC("\"vpcs\": [1], " SUBS ", " EPS),
		   "vpcs[0]: must be an object", NULL);
}

static void test_vpcs(void **unused)
{
	(void)unused;
	expect_err(DOC("\"vpcs\": [{\"id\": 0}], \"subnets\": [], "
		       "\"endpoints\": []"),
		   "vpcs[0]: field \"id\"", NULL);
	expect_err(DOC("\"vpcs\": [{\"id\": 4294967296}], \"subnets\": [], "
		       "\"endpoints\": []"),
		   "vpcs[0]: field \"id\"", NULL);
	expect_err(DOC("\"vpcs\": [{\"id\": 1.5}], \"subnets\": [], "
		       "\"endpoints\": []"),
		   "vpcs[0]: field \"id\" must be an integer", NULL);
	expect_err(DOC("\"vpcs\": [{\"name\": \"x\"}], \"subnets\": [], "
		       "\"endpoints\": []"),
		   "vpcs[0]: field \"id\" is missing", NULL);
	expect_err(DOC("\"vpcs\": [{\"id\": 1, \"nmae\": \"x\"}], "
		       "\"subnets\": [], \"endpoints\": []"),
		   "vpcs[0]: unknown field \"nmae\"", NULL);
	expect_err(DOC("\"vpcs\": [{\"id\": 1}, {\"id\": 1}], \"subnets\": [], "
		       "\"endpoints\": []"),
		   "VPC 1 listed twice", NULL);
	expect_err(DOC("\"vpcs\": [{\"id\": 1, \"name\": \"0123456789012345678"
		       "9012345678901234567890123456789012345678901234\"}], "
		       "\"subnets\": [], \"endpoints\": []"),
		   "vpcs[0]: field \"name\": longer than", NULL);
}

#define SUBDOC(sub) \
	DOC(VPCS ", \"subnets\": [" SUB1 ", " sub "], \"endpoints\": []")

static void test_subnets(void **unused)
{
	(void)unused;
	expect_err(SUBDOC("{\"vpc\": 3, \"cidr\": \"10.9.0.0/24\", \"vni\": 9, "
			  "\"gateway_ip\": \"10.9.0.1\", "
			  "\"gateway_mac\": \"02:00:00:00:00:01\"}"),
		   "subnets[1] (10.9.0.0/24): field \"vpc\"",
		   "not listed in \"vpcs\"");
	expect_err(SUBDOC("{\"vpc\": 1, \"cidr\": \"10.9.0.1/24\", \"vni\": 9, "
			  "\"gateway_ip\": \"10.9.0.1\", "
			  "\"gateway_mac\": \"02:00:00:00:00:01\"}"),
		   "subnets[1]: field \"cidr\"", "no host bits");
	expect_err(SUBDOC("{\"vpc\": 1, \"cidr\": \"10.9.0.0/33\", \"vni\": 9, "
			  "\"gateway_ip\": \"10.9.0.1\", "
			  "\"gateway_mac\": \"02:00:00:00:00:01\"}"),
		   "subnets[1]: field \"cidr\"", NULL);
	expect_err(SUBDOC("{\"vpc\": 1, \"cidr\": \"10.0.0.0/16\", \"vni\": 9, "
			  "\"gateway_ip\": \"10.0.0.1\", "
			  "\"gateway_mac\": \"02:00:00:00:00:01\"}"),
		   "field \"cidr\": 10.0.1.0/24 overlaps 10.0.0.0/16", NULL);
	expect_err(SUBDOC("{\"vpc\": 1, \"cidr\": \"10.9.0.0/24\", \"vni\": 0, "
			  "\"gateway_ip\": \"10.9.0.1\", "
			  "\"gateway_mac\": \"02:00:00:00:00:01\"}"),
		   "subnets[1] (10.9.0.0/24): field \"vni\"", "1 .. 16777215");
	expect_err(SUBDOC("{\"vpc\": 1, \"cidr\": \"10.9.0.0/24\", "
			  "\"vni\": 16777216, \"gateway_ip\": \"10.9.0.1\", "
			  "\"gateway_mac\": \"02:00:00:00:00:01\"}"),
		   "subnets[1] (10.9.0.0/24): field \"vni\"", NULL);
	expect_err(SUBDOC("{\"vpc\": 1, \"cidr\": \"10.9.0.0/24\", "
			  "\"vni\": 1001, \"gateway_ip\": \"10.9.0.1\", "
			  "\"gateway_mac\": \"02:00:00:00:00:01\"}"),
		   "subnets[1] (10.9.0.0/24): field \"vni\": 1001 is already "
		   "used by subnets[0]",
		   NULL);
	expect_err(SUBDOC("{\"vpc\": 1, \"cidr\": \"10.9.0.0/24\", \"vni\": 9, "
			  "\"gateway_ip\": \"10.8.0.1\", "
			  "\"gateway_mac\": \"02:00:00:00:00:01\"}"),
		   "subnets[1] (10.9.0.0/24): field \"gateway_ip\"",
		   "not inside");
	expect_err(SUBDOC("{\"vpc\": 1, \"cidr\": \"10.9.0.0/24\", \"vni\": 9, "
			  "\"gateway_ip\": \"10.9.0.x\", "
			  "\"gateway_mac\": \"02:00:00:00:00:01\"}"),
		   "field \"gateway_ip\": \"10.9.0.x\" is not an IPv4", NULL);
	expect_err(SUBDOC("{\"vpc\": 1, \"cidr\": \"10.9.0.0/24\", \"vni\": 9, "
			  "\"gateway_ip\": \"10.9.0.1\", "
			  "\"gateway_mac\": \"03:00:00:00:00:01\"}"),
		   "subnets[1] (10.9.0.0/24): field \"gateway_mac\"",
		   "unicast");
	expect_err(SUBDOC("{\"vpc\": 1, \"cidr\": \"10.9.0.0/24\", \"vni\": 9, "
			  "\"gateway_ip\": \"10.9.0.1\", "
			  "\"gateway_mac\": \"00:00:00:00:00:00\"}"),
		   "field \"gateway_mac\"", "unicast");
	expect_err(SUBDOC("{\"vpc\": 1, \"cidr\": \"10.9.0.0/24\", \"vni\": 9, "
			  "\"gateway_ip\": \"10.9.0.1\", "
			  "\"gateway_mac\": \"02:00:00:00:01\"}"),
		   "field \"gateway_mac\"", "not a MAC address");
	expect_err(SUBDOC("{\"vpc\": 1, \"cidr\": \"10.9.0.0/24\", \"vni\": 9, "
			  "\"gateway_ip\": \"10.9.0.1\"}"),
		   "subnets[1] (10.9.0.0/24): field \"gateway_mac\" is missing",
		   NULL);
	expect_err(SUBDOC("{\"vpc\": 1, \"cidr\": \"10.9.0.0/24\", \"vni\": 9, "
			  "\"gateway_ip\": \"10.9.0.1\", \"gw\": 1, "
			  "\"gateway_mac\": \"02:00:00:00:00:01\"}"),
		   "subnets[1]: unknown field \"gw\"", NULL);
}

#define EPDOC(ep) DOC(VPCS ", " SUBS ", \"endpoints\": [" EP1 ", " ep "]")
#define EPF(vpc, ip, mac, node, rest)                                   \
	"{\"vpc\": " vpc ", \"ip\": \"" ip "\", \"mac\": \"" mac "\", " \
	"\"node_ip\": \"" node "\"" rest "}"

static void test_endpoints(void **unused)
{
	(void)unused;
	expect_err(EPDOC(EPF("3", "10.0.1.20", "02:00:00:00:00:14",
			     "192.168.100.2", "")),
		   "endpoints[1] (vpc 3, 10.0.1.20): field \"vpc\"",
		   "not listed in \"vpcs\"");
	expect_err(EPDOC(EPF("1", "10.0.2.20", "02:00:00:00:00:14",
			     "192.168.100.2", "")),
		   "endpoints[1] (vpc 1, 10.0.2.20): field \"ip\"",
		   "not inside any subnet of VPC 1");
	expect_err(EPDOC(EPF("1", "10.0.1.1", "02:00:00:00:00:14",
			     "192.168.100.2", "")),
		   "endpoints[1] (vpc 1, 10.0.1.1): field \"ip\"",
		   "gateway_ip");
	expect_err(EPDOC(EPF("1", "10.0.1.10", "02:00:00:00:00:14",
			     "192.168.100.2", "")),
		   "endpoints[1] (vpc 1, 10.0.1.10): fields \"vpc\", \"ip\": "
		   "same as endpoints[0]",
		   NULL);
	expect_err(EPDOC(EPF("1", "10.0.1.20", "01:00:5e:00:00:14",
			     "192.168.100.2", "")),
		   "endpoints[1] (vpc 1, 10.0.1.20): field \"mac\"", "unicast");
	expect_err(
		EPDOC(EPF("1", "10.0.1.20", "nonsense", "192.168.100.2", "")),
		"endpoints[1] (vpc 1, 10.0.1.20): field \"mac\"", "not a MAC");
	expect_err(EPDOC(EPF("1", "10.0.1.20", "02:00:00:00:00:14",
			     "192.168.100", "")),
		   "endpoints[1] (vpc 1, 10.0.1.20): field \"node_ip\"",
		   "not an IPv4");
	expect_err(EPDOC(EPF("1", "10.0.1.20", "02:00:00:00:00:14", "0.0.0.0",
			     "")),
		   "endpoints[1] (vpc 1, 10.0.1.20): field \"node_ip\"", NULL);
	expect_err(
		EPDOC(EPF("1", "10.0.1.20", "02:00:00:00:00:14",
			  "192.168.100.1", "")),
		"endpoints[1] (vpc 1, 10.0.1.20): field \"ifname\": required",
		NULL);
	expect_err(EPDOC(EPF("1", "10.0.1.20", "02:00:00:00:00:14",
			     "192.168.100.1", ", \"ifname\": \"a/b\"")),
		   "endpoints[1] (vpc 1, 10.0.1.20): field \"ifname\"",
		   "not a valid interface name");
	expect_err(EPDOC(EPF("1", "10.0.1.20", "02:00:00:00:00:14",
			     "192.168.100.1",
			     ", \"ifname\": \"0123456789abcdefg\"")),
		   "field \"ifname\"", "not a valid interface name");
	expect_err(EPDOC(EPF("1", "10.0.1.20", "02:00:00:00:00:14",
			     "192.168.100.1", ", \"ifname\": 5")),
		   "field \"ifname\" must be a string", NULL);
	expect_err(EPDOC(EPF("1", "10.0.1.20", "02:00:00:00:00:14",
			     "192.168.100.2", ", \"ifnmae\": \"x\"")),
		   "endpoints[1]: unknown field \"ifnmae\"", NULL);
	expect_err(EPDOC("{\"vpc\": 1, \"ip\": \"10.0.1.20\", "
			 "\"node_ip\": \"192.168.100.2\"}"),
		   "endpoints[1] (vpc 1, 10.0.1.20): field \"mac\" is missing",
		   NULL);
	expect_err(
		EPDOC(EPF("1", "10.0.1.20", "02:00:00:00:00:14",
			  "192.168.100.1", ", \"ifname\": \"xv1a\"")),
		"endpoints[1] (vpc 1, 10.0.1.20): field \"ifname\": \"xv1a\" "
		"is already used by endpoints[0]",
		NULL);
	expect_err(EPDOC("{\"vpc\": 1, \"mac\": \"02:00:00:00:00:14\", "
			 "\"node_ip\": \"192.168.100.2\"}"),
		   "endpoints[1]: field \"ip\" is missing", NULL);
}

#define LVPCS                                                              \
	"\"vpcs\": [{\"id\": 1, \"name\": \"blue\", \"mode\": \"learn\", " \
	"\"gateways\": [\"192.168.100.3\", \"192.168.100.4\"]}, {\"id\": 2}]"
#define NODES                                                \
	"\"nodes\": [\"192.168.100.4\", \"192.168.100.1\", " \
	"\"192.168.100.2\", \"192.168.100.3\"]"
#define LDOC(vpcs, nodes) DOC(vpcs ", " SUBS ", " EPS nodes)

static void test_learn_fields(void **unused)
{
	const char *doc = LDOC(LVPCS, ", " NODES);
	struct xvpc_state *a = NULL, *b = NULL;
	const struct xvpc_state_vpc *v;
	char *j1 = NULL, *j2 = NULL;

	(void)unused;
	assert_int_equal(
		xvpc_state_parse(doc, strlen(doc), node_ip(), &a, NULL, 0), 0);
	v = xvpc_state_find_vpc(a, 1);
	assert_non_null(v);
	assert_int_equal(v->mode, XVPC_MODE_LEARN);
	assert_int_equal(v->n_gateways, 2);
	assert_int_equal(v->gateways[0], inet_addr("192.168.100.3"));
	assert_int_equal(v->gateways[1], inet_addr("192.168.100.4"));
	v = xvpc_state_find_vpc(a, 2);
	assert_int_equal(v->mode, XVPC_MODE_PUSH);
	assert_int_equal(v->n_gateways, 0);
	assert_int_equal(a->n_nodes, 4);

	/* Round trip: the same document again, mode and nodes kept. */
	assert_int_equal(xvpc_state_to_json(a, false, &j1), 0);
	assert_non_null(strstr(j1, "\"mode\":\"learn\""));
	assert_non_null(strstr(j1, "\"gateways\":[\"192.168.100.3\","
				   "\"192.168.100.4\"]"));
	assert_non_null(strstr(j1, "\"nodes\":["));
	assert_int_equal(
		xvpc_state_parse(j1, strlen(j1), node_ip(), &b, NULL, 0), 0);
	assert_int_equal(xvpc_state_to_json(b, false, &j2), 0);
	assert_string_equal(j1, j2);
	assert_int_equal(b->n_nodes, 4);
	assert_int_equal(xvpc_state_find_vpc(b, 1)->mode, XVPC_MODE_LEARN);
	free(j1);
	free(j2);
	xvpc_state_free(a);
	xvpc_state_free(b);

	/* Push mode and no nodes: serialized without the new fields. */
	doc = DOC(VPCS ", " SUBS ", " EPS);
	assert_int_equal(
		xvpc_state_parse(doc, strlen(doc), node_ip(), &a, NULL, 0), 0);
	assert_int_equal(xvpc_state_to_json(a, false, &j1), 0);
	assert_null(strstr(j1, "\"mode\""));
	assert_null(strstr(j1, "\"gateways\""));
	assert_null(strstr(j1, "\"nodes\""));
	free(j1);
	xvpc_state_free(a);

	/* "mode": "push" spelled out is the default. */
	doc = LDOC("\"vpcs\": [{\"id\": 1, \"mode\": \"push\"}, {\"id\": 2}]",
		   "");
	assert_int_equal(
		xvpc_state_parse(doc, strlen(doc), node_ip(), &a, NULL, 0), 0);
	assert_int_equal(xvpc_state_find_vpc(a, 1)->mode, XVPC_MODE_PUSH);
	xvpc_state_free(a);
}

static void test_learn_errors(void **unused)
{
	(void)unused;
	expect_err(LDOC("\"vpcs\": [{\"id\": 1, \"mode\": \"pull\"}, "
			"{\"id\": 2}]",
			""),
		   "vpcs[0]", "\"mode\"");
	expect_err(
		LDOC("\"vpcs\": [{\"id\": 1, \"mode\": 1}, {\"id\": 2}]", ""),
		"vpcs[0]", "\"mode\"");
	expect_err(LDOC("\"vpcs\": [{\"id\": 1, \"mode\": \"learn\", "
			"\"gateways\": [\"10.0.0.1\", \"10.0.0.2\", "
			"\"10.0.0.3\", \"10.0.0.4\", \"10.0.0.5\"]}, "
			"{\"id\": 2}]",
			""),
		   "vpcs[0]", "\"gateways\"");
	expect_err(LDOC("\"vpcs\": [{\"id\": 1, \"gateways\": "
			"[\"10.0.0.1\"]}, {\"id\": 2}]",
			""),
		   "vpcs[0]", "\"gateways\"");
	expect_err(LDOC("\"vpcs\": [{\"id\": 1, \"mode\": \"learn\", "
			"\"gateways\": [\"10.0.0.1\", \"10.0.0.1\"]}, "
			"{\"id\": 2}]",
			""),
		   "vpcs[0]", "listed twice");
	expect_err(LDOC("\"vpcs\": [{\"id\": 1, \"mode\": \"learn\", "
			"\"gateways\": [\"nope\"]}, {\"id\": 2}]",
			""),
		   "vpcs[0]", "\"gateways");
	expect_err(LDOC(VPCS, ", \"nodes\": [\"192.168.100.1\", "
			      "\"192.168.100.2\", \"192.168.100.1\"]"),
		   "nodes", "192.168.100.1 listed twice");
	expect_err(LDOC(VPCS, ", \"nodes\": [\"192.168.100.1\", 7]"), "nodes",
		   NULL);
	expect_err(LDOC(VPCS, ", \"nodes\": [\"0.0.0.0\"]"), "nodes", NULL);
	expect_err(LDOC(VPCS, ", \"nodes\": \"192.168.100.1\""), "nodes", NULL);
}

static void test_file(void **unused)
{
	char path[] = "/tmp/xvpc-test-state.XXXXXX";
	const char *doc = DOC(VPCS ", " SUBS ", " EPS);
	struct xvpc_state *st = NULL;
	char err[XVPC_STATE_ERR_LEN] = "";
	int fd;

	(void)unused;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
	close(fd);
	assert_int_equal(
		xvpc_state_parse_file(path, node_ip(), &st, err, sizeof(err)),
		0);
	xvpc_state_free(st);
	unlink(path);
	assert_int_equal(
		xvpc_state_parse_file(path, node_ip(), &st, err, sizeof(err)),
		-ENOENT);
	assert_non_null(strstr(err, "cannot open"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_empty_and_revision_default),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_builder),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_vpcs),
		cmocka_unit_test(test_subnets),
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_learn_fields),
		cmocka_unit_test(test_learn_errors),
		cmocka_unit_test(test_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
