// SPDX-License-Identifier: GPL-2.0-only
/* Learning mode in the controller (docs/learning.md, "Controller"), on the
 * embedded store, requests straight to api_handle():
 *   - VPC mode: "learn" on create, push <-> learn with PATCH, bad values
 *     refused with the field and nothing changed;
 *   - gateway designation: 2 of 4 nodes per VPC, spread, re-designated
 *     when a gateway node goes down or is deleted, filled up when nodes
 *     come;
 *   - node state: a non-gateway node gets its own endpoints, the gateways'
 *     addresses and the members; a gateway gets every endpoint; the
 *     documents pass the agent's own parser (lib/state.c);
 *   - change stream: moves and deletes reach a non-gateway node, creations
 *     do not; a mode switch gives a snapshot;
 *   - resolve: answers, missing, tenant isolation, bad bodies. */
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
#include <json-c/json.h>

#include "controller/api.h"
#include "controller/cluster.h"
#include "controller/gateways.h"
#include "netutil.h"
#include "state.h"

#define ADMIN "xva_learn_admin_token"
#define NODES 4

struct fix {
	char dir[64];
	struct store *s;
	struct api api;
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

static const char *query_since(void *arg, const char *name)
{
	return !strcmp(name, "since") ? arg : NULL;
}

/* One request; the status, *out the parsed body (may be NULL). since:
 * the ?since= of a state request, or NULL. */
static int callq(const char *method, const char *path, const char *token,
		 const char *body, const char *since, json_object **out)
{
	char auth[160];
	struct api_req req = {
		.method = method,
		.path = path,
		.authorization = auth,
		.body = body ? body : "",
		.body_len = body ? strlen(body) : 0,
		.query = since ? query_since : NULL,
		.qarg = (void *)since,
	};
	struct api_resp resp;

	snprintf(auth, sizeof(auth), "Bearer %s", token);
	api_handle(&F->api, &req, &resp);
	if (out)
		*out = resp.body ? json_tokener_parse(resp.body) : NULL;
	free(resp.body);
	return resp.status;
}

static int call(const char *method, const char *path, const char *token,
		const char *body, json_object **out)
{
	return callq(method, path, token, body, NULL, out);
}

static json_object *get(json_object *o, const char *k)
{
	return json_object_object_get(o, k);
}

static int64_t iget(json_object *o, const char *k)
{
	return json_object_get_int64(get(o, k));
}

static const char *sget(json_object *o, const char *k)
{
	return json_object_get_string(get(o, k));
}

/* POST that must answer want; returns the new object's id. */
static int64_t create(const char *path, const char *token, const char *body,
		      int want)
{
	json_object *o;
	int st = call("POST", path, token, body, &o);
	int64_t id;

	if (st != want)
		fail_msg("POST %s %s: %d (want %d): %s", path, body, st, want,
			 o ? json_object_to_json_string(o) : "");
	id = iget(o, "id");
	json_object_put(o);
	return id;
}

static void new_tenant(const char *name, char *tok, size_t len)
{
	json_object *o;
	char body[64];

	snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
	assert_int_equal(call("POST", "/v1/tenants", ADMIN, body, &o), 201);
	snprintf(tok, len, "%s", sget(o, "token"));
	json_object_put(o);
}

static void add_node(int i)
{
	char body[96];

	snprintf(body, sizeof(body),
		 "{\"name\":\"n%d\",\"ip\":\"192.168.50.%d\"}", i, i);
	create("/v1/nodes", ADMIN, body, 201);
}

static int setup(void **state)
{
	bool gen;

	F = calloc(1, sizeof(*F));
	if (!F)
		return -1;
	strcpy(F->dir, "/tmp/xvpc-learn-XXXXXX");
	if (!mkdtemp(F->dir) || store_embed_open(F->dir, NULL, &F->s) ||
	    api_init(&F->api, F->s, ADMIN, &gen))
		return -1;
	new_tenant("alpha", F->ta, sizeof(F->ta));
	new_tenant("beta", F->tb, sizeof(F->tb));
	for (int i = 1; i <= NODES; i++)
		add_node(i);
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

/* A VPC with one /16 subnet; returns the VPC id, *subnet the subnet's. */
static int64_t make_vpc(const char *tok, const char *name, int second,
			const char *mode, int64_t *subnet)
{
	char body[160];
	int64_t vpc;

	snprintf(body, sizeof(body),
		 "{\"name\":\"%s\",\"cidr\":\"10.%d.0.0/16\"%s%s%s}", name,
		 second, mode ? ",\"mode\":\"" : "", mode ? mode : "",
		 mode ? "\"" : "");
	vpc = create("/v1/vpcs", tok, body, 201);
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.%d.0.0/16\"}",
		 (long long)vpc, second);
	*subnet = create("/v1/subnets", tok, body, 201);
	return vpc;
}

static int64_t make_port(const char *tok, int64_t subnet, const char *ip,
			 int node)
{
	static int seq;
	char body[160];

	/* Interface names are unique on a node: one per port. */
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"ip\":\"%s\",\"node\":\"n%d\","
		 "\"ifname\":\"tap%d\"}",
		 (long long)subnet, ip, node, ++seq);
	return create("/v1/ports", tok, body, 201);
}

static json_object *get_vpc(const char *tok, int64_t id)
{
	char path[64];
	json_object *o;

	snprintf(path, sizeof(path), "/v1/vpcs/%lld", (long long)id);
	assert_int_equal(call("GET", path, tok, NULL, &o), 200);
	return o;
}

/* Whether node n<i> is a gateway of the VPC record v. */
static bool is_gw(json_object *v, int i)
{
	json_object *g = get(v, "gateways");
	char name[16];

	snprintf(name, sizeof(name), "n%d", i);
	for (size_t k = 0; g && k < json_object_array_length(g); k++)
		if (!strcmp(json_object_get_string(
				    json_object_array_get_idx(g, k)),
			    name))
			return true;
	return false;
}

static size_t n_gateways(json_object *v)
{
	json_object *g = get(v, "gateways");

	return g ? json_object_array_length(g) : 0;
}

/* A request that must fail with want and an error naming field (NULL:
 * any). */
static void expect_fail(const char *method, const char *path, const char *token,
			const char *body, int want, const char *field)
{
	json_object *o, *e;
	int st = call(method, path, token, body, &o);

	e = get(o, "error");
	if (st != want || !e)
		fail_msg("%s %s %s: status %d, want %d with an error: %s",
			 method, path, body ?: "", st, want,
			 o ? json_object_to_json_string(o) : "");
	if (field && (!sget(e, "field") || strcmp(sget(e, "field"), field)))
		fail_msg("%s %s %s: error field %s, want %s", method, path,
			 body ?: "", sget(e, "field") ?: "null", field);
	assert_true(strlen(sget(e, "message")) > 0);
	json_object_put(o);
}

/* ---- mode ------------------------------------------------------------ */

static void test_mode_create_and_switch(void **state)
{
	int64_t push, learn, sub;
	json_object *o;
	uint64_t rev;
	char path[64], key[64];

	(void)state;
	push = make_vpc(F->ta, "p", 1, NULL, &sub);
	learn = make_vpc(F->ta, "l", 2, "learn", &sub);
	o = get_vpc(F->ta, push);
	assert_string_equal(sget(o, "mode"), "push");
	assert_null(get(o, "gateways"));
	json_object_put(o);
	o = get_vpc(F->ta, learn);
	assert_string_equal(sget(o, "mode"), "learn");
	assert_int_equal(n_gateways(o), GW_DEFAULT);
	json_object_put(o);

	/* Bad values: 400 naming the field, nothing changed. */
	rev = store_revision(F->s);
	expect_fail("POST", "/v1/vpcs", F->ta,
		    "{\"name\":\"x\",\"cidr\":\"10.9.0.0/16\","
		    "\"mode\":\"flood\"}",
		    400, "mode");
	snprintf(path, sizeof(path), "/v1/vpcs/%lld", (long long)push);
	expect_fail("PATCH", path, F->ta, "{\"mode\":\"LEARN\"}", 400, "mode");
	expect_fail("PATCH", path, F->ta, "{\"mode\":1}", 400, "mode");
	expect_fail("PATCH", path, F->ta, "{\"gateways\":[\"n1\"]}", 400,
		    "gateways");
	expect_fail("PATCH", path, F->tb, "{\"mode\":\"learn\"}", 404, NULL);
	assert_int_equal(store_revision(F->s), rev);

	/* push -> learn: gateways designated, index written. */
	assert_int_equal(call("PATCH", path, F->ta, "{\"mode\":\"learn\"}", &o),
			 200);
	assert_string_equal(sget(o, "mode"), "learn");
	assert_int_equal(n_gateways(o), GW_DEFAULT);
	for (size_t i = 0; i < n_gateways(o); i++) {
		gw_key(key, sizeof(key),
		       json_object_get_string(json_object_array_get_idx(
			       get(o, "gateways"), i)),
		       push);
		assert_int_equal(store_get(F->s, key, NULL, NULL), 0);
	}
	json_object_put(o);
	/* learn -> push: gateways and their index gone. */
	assert_int_equal(call("PATCH", path, F->ta,
			      "{\"mode\":\"push\",\"name\":\"p2\"}", &o),
			 200);
	assert_string_equal(sget(o, "mode"), "push");
	assert_string_equal(sget(o, "name"), "p2");
	assert_null(get(o, "gateways"));
	json_object_put(o);
	for (int i = 1; i <= NODES; i++) {
		snprintf(key, sizeof(key), "n%d", i);
		gw_key(key, sizeof(key), key, push);
		assert_int_equal(store_get(F->s, key, NULL, NULL), -ENOENT);
	}
	/* Same mode again: no gateway change. */
	snprintf(path, sizeof(path), "/v1/vpcs/%lld", (long long)learn);
	o = get_vpc(F->ta, learn);
	assert_int_equal(
		call("PATCH", path, F->ta, "{\"mode\":\"learn\"}", NULL), 200);
	{
		json_object *again = get_vpc(F->ta, learn);

		assert_string_equal(
			json_object_to_json_string(get(o, "gateways")),
			json_object_to_json_string(get(again, "gateways")));
		json_object_put(again);
	}
	json_object_put(o);
	/* Deleting a learn VPC drops its gateway index. */
	snprintf(path, sizeof(path), "/v1/subnets/%lld", (long long)sub);
	assert_int_equal(call("DELETE", path, F->ta, NULL, NULL), 204);
	snprintf(path, sizeof(path), "/v1/vpcs/%lld", (long long)learn);
	assert_int_equal(call("DELETE", path, F->ta, NULL, NULL), 204);
	for (int i = 1; i <= NODES; i++) {
		snprintf(key, sizeof(key), "n%d", i);
		gw_key(key, sizeof(key), key, learn);
		assert_int_equal(store_get(F->s, key, NULL, NULL), -ENOENT);
	}
}

/* ---- gateways -------------------------------------------------------- */

/* Sets "status" of node n<i> as the leader's liveness duty does. */
static void set_status(int i, const char *status)
{
	struct store_op op = {STORE_PUT, NULL, NULL, 0, STORE_ANY};
	char key[32], val[128];

	snprintf(key, sizeof(key), "node/n%d", i);
	snprintf(
		val, sizeof(val),
		"{\"name\":\"n%d\",\"ip\":\"192.168.50.%d\",\"status\":\"%s\"}",
		i, i, status);
	op.key = key;
	op.val = val;
	op.len = strlen(val);
	assert_int_equal(store_txn(F->s, &op, 1, NULL, NULL), 0);
}

#define VPCS 6

static void count_loads(const int64_t *ids, int *load)
{
	memset(load, 0, sizeof(int) * (NODES + 1));
	for (int v = 0; v < VPCS; v++) {
		json_object *o = get_vpc(F->ta, ids[v]);

		assert_int_equal(n_gateways(o), 2);
		for (int i = 1; i <= NODES; i++)
			load[i] += is_gw(o, i);
		json_object_put(o);
	}
}

static void test_gateway_designation(void **state)
{
	int64_t ids[VPCS], sub;
	int load[NODES + 1], changed, total;

	(void)state;
	for (int v = 0; v < VPCS; v++) {
		char name[16];

		snprintf(name, sizeof(name), "v%d", v);
		ids[v] = make_vpc(F->ta, name, 10 + v, "learn", &sub);
	}
	/* 12 assignments over 4 nodes, fewest first: 3 each. */
	count_loads(ids, load);
	for (int i = 1; i <= NODES; i++)
		assert_int_equal(load[i], VPCS * 2 / NODES);
	/* The leader's run finds nothing to do. */
	assert_int_equal(gw_designate_all(F->s, 2, &changed), 0);
	assert_int_equal(changed, 0);

	/* n2 goes down: its VPCs get another gateway, spread over the 3
	 * others (4 each), and n2 serves none. */
	set_status(2, "down");
	assert_int_equal(gw_designate_all(F->s, 2, &changed), 0);
	assert_int_equal(changed, VPCS * 2 / NODES);
	count_loads(ids, load);
	assert_int_equal(load[2], 0);
	for (int i = 1; i <= NODES; i++)
		if (i != 2)
			assert_int_equal(load[i], VPCS * 2 / (NODES - 1));
	/* Back up: VPCs with 2 keep theirs. */
	set_status(2, "up");
	assert_int_equal(gw_designate_all(F->s, 2, &changed), 0);
	assert_int_equal(changed, 0);

	/* n4 deleted: re-designated away from it. */
	assert_int_equal(call("DELETE", "/v1/nodes/n4", ADMIN, NULL, NULL),
			 204);
	assert_int_equal(gw_designate_all(F->s, 2, &changed), 0);
	assert_true(changed > 0);
	count_loads(ids, load);
	assert_int_equal(load[4], 0);
	for (total = 0, changed = 1; changed <= 3; changed++)
		total += load[changed];
	assert_int_equal(total, VPCS * 2);

	/* Only n1 up: one gateway each; then n3 comes: two again. */
	set_status(2, "down");
	set_status(3, "down");
	assert_int_equal(gw_designate_all(F->s, 2, &changed), 0);
	for (int v = 0; v < VPCS; v++) {
		json_object *o = get_vpc(F->ta, ids[v]);

		assert_int_equal(n_gateways(o), 1);
		assert_true(is_gw(o, 1));
		json_object_put(o);
	}
	set_status(3, "up");
	assert_int_equal(gw_designate_all(F->s, 2, &changed), 0);
	assert_int_equal(changed, VPCS);
	for (int v = 0; v < VPCS; v++) {
		json_object *o = get_vpc(F->ta, ids[v]);

		assert_true(is_gw(o, 1) && is_gw(o, 3));
		json_object_put(o);
	}
	/* More gateways per VPC (--vpc-gateways 3) once n2 is up. */
	set_status(2, "up");
	assert_int_equal(gw_designate_all(F->s, 3, &changed), 0);
	assert_int_equal(changed, VPCS);
	{
		json_object *o = get_vpc(F->ta, ids[0]);

		assert_int_equal(n_gateways(o), 3);
		json_object_put(o);
	}
}

/* The leader's own duty, running: nodes n1 .. n3 poll their state, n4
 * does not, is marked down after a second and loses its gateway duties. */
static void test_leader_redesignates(void **state)
{
	struct cluster_opts co = {
		.store = F->s,
		.api = &F->api,
		.down_after_s = 1,
		.tick_ms = 50,
		.vpc_gateways = 2,
	};
	struct cluster *cl = NULL;
	int64_t ids[3], sub;
	int load[NODES + 1];
	bool done = false;

	(void)state;
	for (int v = 0; v < 3; v++) {
		char name[16];

		snprintf(name, sizeof(name), "v%d", v);
		ids[v] = make_vpc(F->ta, name, 20 + v, "learn", &sub);
	}
	memset(load, 0, sizeof(load));
	for (int v = 0; v < 3; v++) {
		json_object *o = get_vpc(F->ta, ids[v]);

		for (int i = 1; i <= NODES; i++)
			load[i] += is_gw(o, i);
		json_object_put(o);
	}
	assert_true(load[4] > 0);
	assert_int_equal(cluster_start(&co, &cl), 0);
	/* Bounded: at most 20 s, usually about one. */
	for (int round = 0; round < 200 && !done; round++) {
		done = true;
		for (int i = 1; i < NODES; i++) {
			char path[64];

			snprintf(path, sizeof(path), "/v1/nodes/n%d/state", i);
			call("GET", path, ADMIN, NULL, NULL);
		}
		for (int v = 0; v < 3; v++) {
			json_object *o = get_vpc(F->ta, ids[v]);

			done &= n_gateways(o) == 2 && !is_gw(o, 4);
			json_object_put(o);
		}
		if (!done)
			usleep(100 * 1000);
	}
	cluster_stop(cl);
	assert_true(done);
}

/* ---- node state ------------------------------------------------------ */

struct world {
	int64_t learn, lsub, push, psub;
	int gw[2];	     /* the learn VPC's gateway nodes */
	int plain;	     /* a node hosting ports, not a gateway */
	int64_t remote_port; /* a port of the learn VPC on another node */
};

/* Learn VPC 10.1/16 with 2 ports per node; push VPC 10.2/16 with a port on
 * n1 and n2. */
static void build_world(struct world *w)
{
	json_object *v;
	char ip[32];
	int k = 0;

	memset(w, 0, sizeof(*w));
	w->learn = make_vpc(F->ta, "big", 1, "learn", &w->lsub);
	w->push = make_vpc(F->ta, "small", 2, NULL, &w->psub);
	for (int i = 1; i <= NODES; i++)
		for (int j = 0; j < 2; j++) {
			snprintf(ip, sizeof(ip), "10.1.%d.%d", i, 10 + j);
			make_port(F->ta, w->lsub, ip, i);
		}
	make_port(F->ta, w->psub, "10.2.0.10", 1);
	make_port(F->ta, w->psub, "10.2.0.11", 2);
	v = get_vpc(F->ta, w->learn);
	for (int i = 1; i <= NODES; i++) {
		if (is_gw(v, i))
			w->gw[k++] = i;
		else
			w->plain = i;
	}
	json_object_put(v);
	assert_int_equal(k, 2);
}

static json_object *node_state(int i, const char *since)
{
	char path[64];
	json_object *o;

	snprintf(path, sizeof(path), "/v1/nodes/n%d/state", i);
	assert_int_equal(callq("GET", path, ADMIN, NULL, since, &o), 200);
	return o;
}

/* The number of endpoints of vpc in a snapshot. */
static int count_eps(json_object *st, int64_t vpc)
{
	json_object *e = get(st, "endpoints");
	int n = 0;

	for (size_t i = 0; i < json_object_array_length(e); i++)
		n += iget(json_object_array_get_idx(e, i), "vpc") == vpc;
	return n;
}

static json_object *find_vpc(json_object *st, int64_t id)
{
	json_object *v = get(st, "vpcs");

	for (size_t i = 0; i < json_object_array_length(v); i++)
		if (iget(json_object_array_get_idx(v, i), "id") == id)
			return json_object_array_get_idx(v, i);
	return NULL;
}

/* The document passes the agent's parser for that node. */
static void agent_parses(json_object *st, int node)
{
	const char *s = json_object_to_json_string(st);
	struct xvpc_state *parsed = NULL;
	char err[XVPC_STATE_ERR_LEN] = "", ip[32];
	json_object *copy = json_tokener_parse(s);
	__be32 a;

	/* "snapshot" belongs to the transport, not to the document. */
	json_object_object_del(copy, "snapshot");
	s = json_object_to_json_string(copy);
	snprintf(ip, sizeof(ip), "192.168.50.%d", node);
	xvpc_parse_ip(ip, &a);
	if (xvpc_state_parse(s, strlen(s), a, &parsed, err, sizeof(err)))
		fail_msg("node n%d: the agent refuses the state: %s", node,
			 err);
	assert_int_equal(parsed->n_nodes, NODES);
	xvpc_state_free(parsed);
	json_object_put(copy);
}

static void test_node_state_learn(void **state)
{
	json_object *st, *v, *g;
	struct world w;
	char ip[32];

	(void)state;
	build_world(&w);
	/* A node hosting ports, not a gateway: its own 2 endpoints. */
	st = node_state(w.plain, NULL);
	agent_parses(st, w.plain);
	v = find_vpc(st, w.learn);
	assert_non_null(v);
	assert_string_equal(sget(v, "mode"), "learn");
	g = get(v, "gateways");
	assert_int_equal(json_object_array_length(g), 2);
	for (int k = 0; k < 2; k++) {
		const char *have =
			json_object_get_string(json_object_array_get_idx(g, k));

		snprintf(ip, sizeof(ip), "192.168.50.%d", w.gw[0]);
		if (strcmp(have, ip))
			snprintf(ip, sizeof(ip), "192.168.50.%d", w.gw[1]);
		assert_string_equal(have, ip);
	}
	assert_string_not_equal(
		json_object_get_string(json_object_array_get_idx(g, 0)),
		json_object_get_string(json_object_array_get_idx(g, 1)));
	assert_int_equal(count_eps(st, w.learn), 2);
	assert_int_equal(json_object_array_length(get(st, "nodes")), NODES);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(
				    get(st, "nodes"), 0)),
			    "192.168.50.1");
	json_object_put(st);
	/* A gateway: all 8. */
	st = node_state(w.gw[0], NULL);
	agent_parses(st, w.gw[0]);
	assert_int_equal(count_eps(st, w.learn), 2 * NODES);
	json_object_put(st);
	/* A push VPC as before: no mode, no gateways, all its endpoints. */
	st = node_state(1, NULL);
	v = find_vpc(st, w.push);
	assert_non_null(v);
	assert_null(get(v, "mode"));
	assert_null(get(v, "gateways"));
	assert_int_equal(count_eps(st, w.push), 2);
	json_object_put(st);
}

static void test_gateway_without_ports(void **state)
{
	json_object *st, *v;
	int64_t vpc, sub;

	(void)state;
	/* A learn VPC without ports: its gateways get it anyway (empty),
	 * the other nodes do not. */
	vpc = make_vpc(F->ta, "g", 3, "learn", &sub);
	v = get_vpc(F->ta, vpc);
	for (int i = 1; i <= NODES; i++) {
		st = node_state(i, NULL);
		if (is_gw(v, i))
			assert_non_null(find_vpc(st, vpc));
		else
			assert_null(find_vpc(st, vpc));
		assert_int_equal(count_eps(st, vpc), 0);
		json_object_put(st);
	}
	json_object_put(v);
}

/* ---- change stream --------------------------------------------------- */

static bool has_change(json_object *ch, const char *op, const char *kind,
		       const char *ip, const char *node_ip)
{
	json_object *arr = get(ch, "changes");

	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *c = json_object_array_get_idx(arr, i),
			    *o = get(c, "object");

		if (!strcmp(sget(c, "op"), op) &&
		    !strcmp(sget(c, "kind"), kind) &&
		    (!ip || !strcmp(sget(o, "ip") ?: "", ip)) &&
		    (!node_ip || !strcmp(sget(o, "node_ip") ?: "", node_ip)))
			return true;
	}
	return false;
}

static void test_change_stream_learn(void **state)
{
	json_object *ch, *st;
	char since[32], path[64], body[96], ip[32];
	struct world w;
	int64_t port;
	int other;

	(void)state;
	build_world(&w);
	other = w.gw[0];
	snprintf(since, sizeof(since), "%llu",
		 (unsigned long long)store_revision(F->s));
	/* A creation on another node: nothing for the plain node, the
	 * gateway gets it. */
	port = make_port(F->ta, w.lsub, "10.1.200.1", other);
	ch = node_state(w.plain, since);
	assert_false(json_object_get_boolean(get(ch, "snapshot")));
	assert_int_equal(json_object_array_length(get(ch, "changes")), 0);
	json_object_put(ch);
	ch = node_state(w.gw[1], since);
	assert_true(has_change(ch, "put", "endpoint", "10.1.200.1", NULL));
	json_object_put(ch);
	/* A rename is not a move: nothing either. */
	snprintf(path, sizeof(path), "/v1/ports/%lld", (long long)port);
	assert_int_equal(call("PATCH", path, F->ta, "{\"name\":\"web\"}", NULL),
			 200);
	ch = node_state(w.plain, since);
	assert_int_equal(json_object_array_length(get(ch, "changes")), 0);
	json_object_put(ch);
	/* A move: the new node_ip. */
	snprintf(since, sizeof(since), "%llu",
		 (unsigned long long)store_revision(F->s));
	snprintf(body, sizeof(body), "{\"node\":\"n%d\",\"ifname\":\"tap9\"}",
		 w.gw[1]);
	assert_int_equal(call("PATCH", path, F->ta, body, NULL), 200);
	ch = node_state(w.plain, since);
	assert_false(json_object_get_boolean(get(ch, "snapshot")));
	snprintf(ip, sizeof(ip), "192.168.50.%d", w.gw[1]);
	assert_true(has_change(ch, "put", "endpoint", "10.1.200.1", ip));
	assert_int_equal(json_object_array_length(get(ch, "changes")), 1);
	json_object_put(ch);
	/* A delete. */
	snprintf(since, sizeof(since), "%llu",
		 (unsigned long long)store_revision(F->s));
	assert_int_equal(call("DELETE", path, F->ta, NULL, NULL), 204);
	ch = node_state(w.plain, since);
	assert_true(has_change(ch, "delete", "endpoint", "10.1.200.1", NULL));
	json_object_put(ch);
	/* A port of its own, in a VPC it gets already: as in push mode, the
	 * endpoint with its interface (its set of VPCs stays). */
	snprintf(since, sizeof(since), "%llu",
		 (unsigned long long)store_revision(F->s));
	make_port(F->ta, w.lsub, "10.1.201.1", w.plain);
	ch = node_state(w.plain, since);
	assert_false(json_object_get_boolean(get(ch, "snapshot")));
	snprintf(ip, sizeof(ip), "192.168.50.%d", w.plain);
	assert_true(has_change(ch, "put", "endpoint", "10.1.201.1", ip));
	assert_int_equal(json_object_array_length(get(ch, "changes")), 1);
	assert_non_null(get(json_object_array_get_idx(get(ch, "changes"), 0),
			    "object"));
	assert_non_null(get(
		get(json_object_array_get_idx(get(ch, "changes"), 0), "object"),
		"ifname"));
	json_object_put(ch);
	/* Its full state has its 3 endpoints of the VPC. */
	ch = node_state(w.plain, NULL);
	assert_int_equal(count_eps(ch, w.learn), 3);
	json_object_put(ch);
	/* A mode switch: a snapshot with every endpoint. */
	snprintf(since, sizeof(since), "%llu",
		 (unsigned long long)store_revision(F->s));
	snprintf(path, sizeof(path), "/v1/vpcs/%lld", (long long)w.learn);
	assert_int_equal(
		call("PATCH", path, F->ta, "{\"mode\":\"push\"}", NULL), 200);
	st = node_state(w.plain, since);
	assert_true(json_object_get_boolean(get(st, "snapshot")));
	assert_int_equal(count_eps(st, w.learn), 2 * NODES + 1);
	assert_null(get(find_vpc(st, w.learn), "mode"));
	json_object_put(st);
}

/* ---- resolve --------------------------------------------------------- */

static json_object *resolve(int node, const char *body, int want)
{
	char path[64];
	json_object *o;
	int st;

	snprintf(path, sizeof(path), "/v1/nodes/n%d/resolve", node);
	st = call("POST", path, ADMIN, body, &o);
	if (st != want)
		fail_msg("resolve n%d %s: %d (want %d): %s", node, body, st,
			 want, o ? json_object_to_json_string(o) : "");
	return o;
}

static void test_resolve(void **state)
{
	json_object *o, *e, *vpcb;
	int64_t bvpc, bsub, third, tsub;
	struct world w;
	int q;
	char body[512], *big;
	uint64_t rev;
	size_t off;

	(void)state;
	build_world(&w);
	/* The querying node q is a gateway of A's learn VPC. Tenant B's
	 * learn VPC (same addresses) has its port on the other gateway and
	 * its own gateways elsewhere (the two least loaded nodes), and A's
	 * third VPC a port on the other gateway: q is entitled to neither. */
	q = w.gw[1];
	bvpc = make_vpc(F->tb, "other", 1, "learn", &bsub);
	make_port(F->tb, bsub, "10.1.1.10", w.gw[0]);
	vpcb = get_vpc(F->tb, bvpc);
	assert_false(is_gw(vpcb, q));
	third = make_vpc(F->ta, "third", 3, NULL, &tsub);
	make_port(F->ta, tsub, "10.3.0.10", w.gw[0]);

	snprintf(body, sizeof(body),
		 "{\"endpoints\":[{\"vpc\":%lld,\"ip\":\"10.1.%d.11\"},"
		 "{\"vpc\":%lld,\"ip\":\"10.1.99.99\"},"
		 "{\"vpc\":%lld,\"ip\":\"10.1.1.10\"},"
		 "{\"vpc\":%lld,\"ip\":\"10.3.0.10\"}]}",
		 (long long)w.learn, w.gw[0], (long long)w.learn,
		 (long long)bvpc, (long long)third);
	rev = store_revision(F->s);
	o = resolve(q, body, 200);
	assert_true((uint64_t)iget(o, "revision") >= rev);
	/* Found: its own VPC's endpoint on the other gateway. */
	assert_int_equal(json_object_array_length(get(o, "endpoints")), 1);
	e = json_object_array_get_idx(get(o, "endpoints"), 0);
	assert_int_equal(iget(e, "vpc"), w.learn);
	assert_non_null(strstr(sget(e, "ip"), ".11"));
	assert_int_equal(strlen(sget(e, "mac")), 17);
	assert_true(iget(e, "vni") > 0);
	{
		char ip[32];

		snprintf(ip, sizeof(ip), "192.168.50.%d", w.gw[0]);
		assert_string_equal(sget(e, "node_ip"), ip);
	}
	/* Missing: an unused address, another tenant's VPC (an address in
	 * use there), a VPC the node has no duty in. */
	assert_int_equal(json_object_array_length(get(o, "missing")), 3);
	assert_int_equal(
		iget(json_object_array_get_idx(get(o, "missing"), 1), "vpc"),
		bvpc);
	assert_string_equal(
		sget(json_object_array_get_idx(get(o, "missing"), 1), "ip"),
		"10.1.1.10");
	json_object_put(o);
	/* The gateway of B's VPC is entitled to it. */
	for (int i = 1; i <= NODES; i++) {
		if (!is_gw(vpcb, i))
			continue;
		snprintf(
			body, sizeof(body),
			"{\"endpoints\":[{\"vpc\":%lld,\"ip\":\"10.1.1.10\"}]}",
			(long long)bvpc);
		o = resolve(i, body, 200);
		assert_int_equal(json_object_array_length(get(o, "endpoints")),
				 1);
		json_object_put(o);
	}
	json_object_put(vpcb);

	/* A VPC of many subnets: found in the last one. */
	{
		int64_t wide, wsub = 0;

		wide = create("/v1/vpcs", F->ta,
			      "{\"name\":\"wide\",\"cidr\":\"10.4.0.0/16\"}",
			      201);
		for (int i = 0; i < 70; i++) {
			snprintf(body, sizeof(body),
				 "{\"vpc\":%lld,\"cidr\":\"10.4.%d.0/24\"}",
				 (long long)wide, i);
			wsub = create("/v1/subnets", F->ta, body, 201);
		}
		make_port(F->ta, wsub, "10.4.69.10", q);
		make_port(F->ta, wsub, "10.4.69.11", w.gw[0]);
		snprintf(body, sizeof(body),
			 "{\"endpoints\":[{\"vpc\":%lld,\"ip\":\"10.4.69.11\"}]"
			 "}",
			 (long long)wide);
		o = resolve(q, body, 200);
		assert_int_equal(json_object_array_length(get(o, "endpoints")),
				 1);
		json_object_put(o);
	}

	/* Bad bodies: 400 naming the field; unknown node 404; tenants 403. */
	rev = store_revision(F->s);
	expect_fail("POST", "/v1/nodes/n1/resolve", ADMIN,
		    "{\"endpoints\":", 400, NULL);
	expect_fail("POST", "/v1/nodes/n1/resolve", ADMIN, "{}", 400,
		    "endpoints");
	expect_fail("POST", "/v1/nodes/n1/resolve", ADMIN,
		    "{\"endpoints\":[],\"x\":1}", 400, "x");
	expect_fail("POST", "/v1/nodes/n1/resolve", ADMIN, "{\"endpoints\":{}}",
		    400, "endpoints");
	expect_fail("POST", "/v1/nodes/n1/resolve", ADMIN, "{\"endpoints\":[]}",
		    400, "endpoints");
	expect_fail("POST", "/v1/nodes/n1/resolve", ADMIN,
		    "{\"endpoints\":[{\"vpc\":1,\"ip\":\"10.1.1.1\","
		    "\"mac\":\"x\"}]}",
		    400, "endpoints[0].mac");
	expect_fail("POST", "/v1/nodes/n1/resolve", ADMIN,
		    "{\"endpoints\":[{\"vpc\":1,\"ip\":\"10.1.1.1\"},"
		    "{\"vpc\":1,\"ip\":\"10.1.1.256\"}]}",
		    400, "endpoints[1].ip");
	expect_fail("POST", "/v1/nodes/n1/resolve", ADMIN,
		    "{\"endpoints\":[{\"vpc\":0,\"ip\":\"10.1.1.1\"}]}", 400,
		    "endpoints[0].vpc");
	expect_fail("POST", "/v1/nodes/n1/resolve", ADMIN,
		    "{\"endpoints\":[{\"ip\":\"10.1.1.1\"}]}", 400,
		    "endpoints[0].vpc");
	expect_fail("POST", "/v1/nodes/n1/resolve", ADMIN,
		    "{\"endpoints\":[5]}", 400, "endpoints[0]");
	expect_fail("POST", "/v1/nodes/nope/resolve", ADMIN,
		    "{\"endpoints\":[{\"vpc\":1,\"ip\":\"10.1.1.1\"}]}", 404,
		    NULL);
	expect_fail("POST", "/v1/nodes/n1/resolve", F->ta,
		    "{\"endpoints\":[{\"vpc\":1,\"ip\":\"10.1.1.1\"}]}", 403,
		    NULL);
	/* 1025 queries: too many; 1024: fine. */
	big = malloc(64 * 1026);
	assert_non_null(big);
	for (int n = 1024; n <= 1025; n++) {
		off = sprintf(big, "{\"endpoints\":[");
		for (int i = 0; i < n; i++)
			off += sprintf(big + off,
				       "%s{\"vpc\":%lld,\"ip\":"
				       "\"10.1.%d.%d\"}",
				       i ? "," : "", (long long)w.learn,
				       i / 250, 1 + i % 250);
		strcpy(big + off, "]}");
		if (n == 1025) {
			expect_fail("POST", "/v1/nodes/n1/resolve", ADMIN, big,
				    400, "endpoints");
		} else {
			o = resolve(1, big, 200);
			assert_int_equal(
				json_object_array_length(get(o, "endpoints")) +
					json_object_array_length(
						get(o, "missing")),
				1024);
			json_object_put(o);
		}
	}
	free(big);
	assert_int_equal(store_revision(F->s), rev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mode_create_and_switch,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gateway_designation, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_leader_redesignates, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_node_state_learn, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gateway_without_ports,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_change_stream_learn, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
