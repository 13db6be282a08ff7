// SPDX-License-Identifier: GPL-2.0-only
/* The controller on ZooKeeper, against one real server (zk_harness):
 *   - the store conformance cases of test_ctrl_store.c on the ZooKeeper
 *     backend;
 *   - two members on one root: each sees the other's commits, conflicting
 *     writers get -ECANCELED, a member that joins later (after the bus was
 *     garbage-collected) recovers the whole state;
 *   - the HTTP API handlers on two members: a tenant and a VPC created on
 *     one are read on the other;
 *   - leader election: the first member leads, and when it stops the
 *     second takes over;
 *   - learning mode on two members: the gateways designated on one are
 *     served by the other, which resolves and builds learn-mode state
 *     from its own copy; the leader re-designates when a gateway node is
 *     marked down;
 *   - backend health reports: one made on one member is in the node state
 *     the other serves, and the leader clears it when the backend's port
 *     moves to another node. */
#define STORE_CASES_ONLY
#include "test_ctrl_store.c"

#include <json-c/json.h>

#include "controller/api.h"
#include "controller/cluster.h"
#include "zk_harness.h"

static struct zkh zkh;

static int group_setup(void **state)
{
	(void)state;
	if (zkh_start(&zkh, 1))
		return -1;
	zk_hosts = zkh.hosts;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return zkh_stop(&zkh);
}

struct members {
	char root[64];
	struct store *a, *b;
};

static int open_member(const char *root, struct store **s)
{
	struct store_zk_opts o = {.hosts = zkh.hosts, .root = root};

	return store_zk_open(&o, s);
}

static int members_setup(void **state)
{
	static int n;
	struct members *m = calloc(1, sizeof(*m));

	snprintf(m->root, sizeof(m->root), "/m%d-%d", (int)getpid(), ++n);
	if (open_member(m->root, &m->a) || open_member(m->root, &m->b))
		return -1;
	*state = m;
	return 0;
}

static int members_teardown(void **state)
{
	struct members *m = *state;

	store_close(m->a);
	store_close(m->b);
	free(m);
	return 0;
}

/* Waits (bounded) until s has reached revision rev. */
static void sync_to(struct store *s, uint64_t rev)
{
	for (int i = 0; i < 100 && store_revision(s) < rev; i++)
		store_wait(s, store_revision(s), 100);
	assert_true(store_revision(s) >= rev);
}

static void test_members_see_each_other(void **state)
{
	struct members *m = *state;
	uint64_t rev, va, vb;
	char *v = NULL;

	struct store_op op = {STORE_PUT, "x/1", "from-a", 6, STORE_ABSENT};

	assert_int_equal(store_txn(m->a, &op, 1, &rev, NULL), 0);
	sync_to(m->b, rev);
	assert_int_equal(store_get(m->b, "x/1", &v, &vb), 0);
	assert_string_equal(v, "from-a");
	free(v);
	assert_int_equal(store_get(m->a, "x/1", NULL, &va), 0);
	/* Same version and revision on both members. */
	assert_int_equal(va, vb);
	assert_int_equal(store_revision(m->a), store_revision(m->b));

	/* b updates with the version it read; a's copy of the version is
	 * now stale, whether or not a has seen b's commit yet. */
	op = (struct store_op){STORE_PUT, "x/1", "from-b", 6, vb};
	assert_int_equal(store_txn(m->b, &op, 1, &rev, NULL), 0);
	op = (struct store_op){STORE_PUT, "x/1", "lost", 4, va};
	assert_int_equal(store_txn(m->a, &op, 1, NULL, NULL), -ECANCELED);
	sync_to(m->a, rev);
	assert_int_equal(store_get(m->a, "x/1", &v, NULL), 0);
	assert_string_equal(v, "from-b");
	free(v);

	/* Creating the same key on both: exactly one wins. */
	op = (struct store_op){STORE_PUT, "x/2", "a", 1, STORE_ABSENT};
	struct store_op op2 = {STORE_PUT, "x/2", "b", 1, STORE_ABSENT};
	int ea = store_txn(m->a, &op, 1, NULL, NULL);
	int eb = store_txn(m->b, &op2, 1, NULL, NULL);

	assert_true((ea == 0 && eb == -ECANCELED) ||
		    (ea == -ECANCELED && eb == 0));
}

static int count_cb(const struct store_rec *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

static void test_new_member_recovers(void **state)
{
	struct members *m = *state;
	struct store *c = NULL;
	char key[32], val[32], *v = NULL;
	uint64_t rev = 0;
	int n = 0, deleted = 0;

	for (int i = 0; i < 200; i++) {
		struct store_op op = {STORE_PUT, key, val, 0, STORE_ANY};

		snprintf(key, sizeof(key), "r/%04d", i);
		snprintf(val, sizeof(val), "v%d", i);
		op.len = strlen(val);
		assert_int_equal(
			store_txn(i % 2 ? m->a : m->b, &op, 1, &rev, NULL), 0);
	}
	struct store_op del = {STORE_DEL, "r/0007", NULL, 0, STORE_ANY};

	sync_to(m->a, rev);
	assert_int_equal(store_txn(m->a, &del, 1, &rev, NULL), 0);
	/* Collect all but the last 10 messages: the new member cannot
	 * replay from the start, it must take the snapshot. */
	assert_int_equal(store_zk_gc(m->a, 10, &deleted), 0);
	assert_true(deleted > 150);
	assert_int_equal(open_member(m->root, &c), 0);
	assert_true(store_revision(c) >= rev);
	assert_int_equal(store_list(c, "r/", NULL, 0, count_cb, &n), 0);
	assert_int_equal(n, 199);
	assert_int_equal(store_get(c, "r/0199", &v, NULL), 0);
	assert_string_equal(v, "v199");
	free(v);
	assert_int_equal(store_get(c, "r/0007", NULL, NULL), -ENOENT);
	/* And it follows later commits. */
	struct store_op op = {STORE_PUT, "r/new", "n", 1, STORE_ABSENT};

	assert_int_equal(store_txn(m->b, &op, 1, &rev, NULL), 0);
	sync_to(c, rev);
	assert_int_equal(store_get(c, "r/new", NULL, NULL), 0);
	store_close(c);
}

/* ---- the API on two members ------------------------------------------ */

static const char *no_query(void *arg, const char *name)
{
	(void)arg;
	(void)name;
	return NULL;
}

static json_object *call(struct api *api, const char *method, const char *path,
			 const char *token, const char *body, int want)
{
	char auth[160];
	struct api_req req = {
		.method = method,
		.path = path,
		.authorization = auth,
		.body = body,
		.body_len = body ? strlen(body) : 0,
		.query = no_query,
	};
	struct api_resp resp = {0};
	json_object *o;

	snprintf(auth, sizeof(auth), "Bearer %s", token);
	api_handle(api, &req, &resp);
	if (resp.status != want)
		fprintf(stderr, "%s %s: %d %s\n", method, path, resp.status,
			resp.body ?: "");
	assert_int_equal(resp.status, want);
	o = resp.body ? json_tokener_parse(resp.body) : NULL;
	free(resp.body);
	return o;
}

static void test_api_on_two_members(void **state)
{
	struct members *m = *state;
	struct api a, b;
	bool gen;
	json_object *t, *v;
	char tok[128], path[64];

	assert_int_equal(api_init(&a, m->a, "admin-token-1", &gen), 0);
	assert_int_equal(api_init(&b, m->b, "admin-token-1", &gen), 0);
	t = call(&a, "POST", "/v1/tenants", "admin-token-1",
		 "{\"name\":\"acme\"}", 201);
	snprintf(tok, sizeof(tok), "%s",
		 json_object_get_string(json_object_object_get(t, "token")));
	json_object_put(t);
	/* The tenant's token works on the other member at once: a commit
	 * returns once the writer's copy has it, and b's copy follows. */
	sync_to(m->b, store_revision(m->a));
	v = call(&b, "POST", "/v1/vpcs", tok,
		 "{\"name\":\"v\",\"cidr\":\"10.0.0.0/16\"}", 201);
	snprintf(path, sizeof(path), "/v1/vpcs/%d",
		 json_object_get_int(json_object_object_get(v, "id")));
	json_object_put(v);
	sync_to(m->a, store_revision(m->b));
	v = call(&a, "GET", path, tok, NULL, 200);
	assert_string_equal(
		json_object_get_string(json_object_object_get(v, "cidr")),
		"10.0.0.0/16");
	json_object_put(v);
	api_fini(&a);
	api_fini(&b);
}

struct creator {
	struct api *api;
	const char *token, *body;
	int n, created;
	pthread_t th;
};

/* Creates n ports (no assertions off the test's thread): how many got 201. */
static void *creator_main(void *arg)
{
	struct creator *c = arg;
	char auth[160];

	snprintf(auth, sizeof(auth), "Bearer %s", c->token);
	for (int i = 0; i < c->n; i++) {
		struct api_req req = {
			.method = "POST",
			.path = "/v1/ports",
			.authorization = auth,
			.body = c->body,
			.body_len = strlen(c->body),
			.query = no_query,
		};
		struct api_resp resp = {0};

		api_handle(c->api, &req, &resp);
		c->created += resp.status == 201;
		if (resp.status != 201)
			fprintf(stderr, "port create: %d %s\n", resp.status,
				resp.body ?: "");
		free(resp.body);
	}
	return NULL;
}

/* Counts the port's host number (its address's last byte) in arg. */
static int port_host(const struct store_rec *r, void *arg)
{
	char *seen = arg;
	json_object *p = json_tokener_parse(r->val);
	const char *ip =
		json_object_get_string(json_object_object_get(p, "ip"));

	if (ip && strrchr(ip, '.'))
		seen[atoi(strrchr(ip, '.') + 1) & 0xff]++;
	json_object_put(p);
	return 0;
}

/* Two members allocating addresses in one subnet at once: every port is
 * created (a member that lost an address to the other retries elsewhere)
 * and no address is handed out twice. */
static void test_ports_on_two_members(void **state)
{
	struct members *m = *state;
	struct api a, b;
	struct creator ca = {.api = &a, .n = 40}, cb = {.api = &b, .n = 40};
	json_object *t, *o;
	char tok[128], body[96], seen[256] = {0};
	bool gen;
	int sn, ports = 0;

	assert_int_equal(api_init(&a, m->a, "admin-token-1", &gen), 0);
	assert_int_equal(api_init(&b, m->b, "admin-token-1", &gen), 0);
	t = call(&a, "POST", "/v1/tenants", "admin-token-1",
		 "{\"name\":\"alloc\"}", 201);
	snprintf(tok, sizeof(tok), "%s",
		 json_object_get_string(json_object_object_get(t, "token")));
	json_object_put(t);
	o = call(&a, "POST", "/v1/vpcs", tok,
		 "{\"name\":\"v\",\"cidr\":\"10.1.0.0/16\"}", 201);
	snprintf(body, sizeof(body), "{\"vpc\":%d,\"cidr\":\"10.1.1.0/24\"}",
		 json_object_get_int(json_object_object_get(o, "id")));
	json_object_put(o);
	o = call(&a, "POST", "/v1/subnets", tok, body, 201);
	sn = json_object_get_int(json_object_object_get(o, "id"));
	json_object_put(o);
	snprintf(body, sizeof(body), "{\"subnet\":%d}", sn);
	sync_to(m->b, store_revision(m->a));
	ca.token = cb.token = tok;
	ca.body = cb.body = body;
	assert_int_equal(pthread_create(&ca.th, NULL, creator_main, &ca), 0);
	assert_int_equal(pthread_create(&cb.th, NULL, creator_main, &cb), 0);
	pthread_join(ca.th, NULL);
	pthread_join(cb.th, NULL);
	assert_int_equal(ca.created, 40);
	assert_int_equal(cb.created, 40);
	sync_to(m->a, store_revision(m->b));
	/* Every port's address, read on a's copy. */
	assert_true(store_list(m->a, "port/", NULL, 0, port_host, seen) >= 0);
	for (int i = 0; i < 256; i++) {
		assert_true(seen[i] <= 1);
		ports += seen[i];
	}
	assert_int_equal(ports, 80);
	api_fini(&a);
	api_fini(&b);
}

/* ---- learning mode ---------------------------------------------------- */

static bool lists(json_object *arr, const char *s)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		if (!strcmp(json_object_get_string(
				    json_object_array_get_idx(arr, i)),
			    s))
			return true;
	return false;
}

struct learn_wait {
	struct api *api;
	const char *tok, *down;
};

/* The VPC's gateways no longer list the down node, and there are 2. */
static bool redesignated(void *arg)
{
	struct learn_wait *w = arg;
	json_object *v = call(w->api, "GET", "/v1/vpcs/1", w->tok, NULL, 200);
	json_object *g = json_object_object_get(v, "gateways");
	bool ok = json_object_array_length(g) == 2 && !lists(g, w->down);

	json_object_put(v);
	return ok;
}

static void test_learn_on_two_members(void **state)
{
	struct members *m = *state;
	struct cluster_opts co = {.zookeeper = true,
				  .root = m->root,
				  .api_addr = "127.0.0.1:1",
				  .tick_ms = 100};
	struct cluster *cl = NULL;
	struct learn_wait w;
	struct store_op op = {STORE_PUT, NULL, NULL, 0, STORE_ANY};
	json_object *t, *va, *vb, *o;
	char tok[128], body[256], gw[2][32], plain[64] = "", key[64], val[256];
	struct api a, b;
	bool gen;

	assert_int_equal(api_init(&a, m->a, "admin-token-1", &gen), 0);
	assert_int_equal(api_init(&b, m->b, "admin-token-1", &gen), 0);
	t = call(&a, "POST", "/v1/tenants", "admin-token-1",
		 "{\"name\":\"big\"}", 201);
	snprintf(tok, sizeof(tok), "%s",
		 json_object_get_string(json_object_object_get(t, "token")));
	json_object_put(t);
	for (int i = 1; i <= 4; i++) {
		snprintf(body, sizeof(body),
			 "{\"name\":\"n%d\",\"ip\":\"192.168.60.%d\"}", i, i);
		json_object_put(call(&a, "POST", "/v1/nodes", "admin-token-1",
				     body, 201));
	}
	json_object_put(call(&a, "POST", "/v1/vpcs", tok,
			     "{\"name\":\"v\",\"cidr\":\"10.0.0.0/16\","
			     "\"mode\":\"learn\"}",
			     201));
	json_object_put(call(&a, "POST", "/v1/subnets", tok,
			     "{\"vpc\":1,\"cidr\":\"10.0.0.0/16\"}", 201));
	for (int i = 1; i <= 4; i++) {
		snprintf(body, sizeof(body),
			 "{\"subnet\":1,\"ip\":\"10.0.0.%d\",\"node\":\"n%d\","
			 "\"ifname\":\"t%d\"}",
			 10 + i, i, i);
		json_object_put(call(&a, "POST", "/v1/ports", tok, body, 201));
	}
	/* Member b serves the same gateways. */
	sync_to(m->b, store_revision(m->a));
	va = call(&a, "GET", "/v1/vpcs/1", tok, NULL, 200);
	vb = call(&b, "GET", "/v1/vpcs/1", tok, NULL, 200);
	assert_string_equal(json_object_to_json_string(
				    json_object_object_get(va, "gateways")),
			    json_object_to_json_string(
				    json_object_object_get(vb, "gateways")));
	for (int k = 0; k < 2; k++)
		snprintf(gw[k], sizeof(gw[k]), "%s",
			 json_object_get_string(json_object_array_get_idx(
				 json_object_object_get(vb, "gateways"), k)));
	for (int i = 1; i <= 4 && !plain[0]; i++) {
		snprintf(key, sizeof(key), "n%d", i);
		if (!lists(json_object_object_get(vb, "gateways"), key))
			snprintf(plain, sizeof(plain), "%s", key);
	}
	json_object_put(va);
	json_object_put(vb);
	/* On b: a gateway's state lists all 4 endpoints, the plain node's
	 * its own; the plain node resolves the others. */
	snprintf(body, sizeof(body), "/v1/nodes/%s/state", gw[0]);
	o = call(&b, "GET", body, "admin-token-1", NULL, 200);
	assert_int_equal(json_object_array_length(
				 json_object_object_get(o, "endpoints")),
			 4);
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "nodes")),
		4);
	json_object_put(o);
	snprintf(body, sizeof(body), "/v1/nodes/%s/state", plain);
	o = call(&b, "GET", body, "admin-token-1", NULL, 200);
	assert_int_equal(json_object_array_length(
				 json_object_object_get(o, "endpoints")),
			 1);
	json_object_put(o);
	snprintf(key, sizeof(key), "/v1/nodes/%s/resolve", plain);
	o = call(&b, "POST", key, "admin-token-1",
		 "{\"endpoints\":[{\"vpc\":1,\"ip\":\"10.0.0.11\"},"
		 "{\"vpc\":1,\"ip\":\"10.0.0.12\"},"
		 "{\"vpc\":1,\"ip\":\"10.0.0.99\"}]}",
		 200);
	assert_int_equal(json_object_array_length(
				 json_object_object_get(o, "endpoints")),
			 2);
	assert_int_equal(
		json_object_array_length(json_object_object_get(o, "missing")),
		1);
	json_object_put(o);

	/* The leader (a) replaces a gateway marked down (written on b). */
	co.store = m->a;
	assert_int_equal(cluster_start(&co, &cl), 0);
	snprintf(key, sizeof(key), "node/%s", gw[0]);
	snprintf(val, sizeof(val),
		 "{\"name\":\"%s\",\"ip\":\"192.168.60.%s\",\"status\":"
		 "\"down\"}",
		 gw[0], gw[0] + 1);
	op.key = key;
	op.val = val;
	op.len = strlen(val);
	assert_int_equal(store_txn(m->b, &op, 1, NULL, NULL), 0);
	w = (struct learn_wait){.api = &b, .tok = tok, .down = gw[0]};
	assert_true(zkh_until(redesignated, &w, 10000));
	cluster_stop(cl);
	api_fini(&a);
	api_fini(&b);
}

/* ---- backend health reports ------------------------------------------- */

struct health_wait {
	struct api *api;
	bool want_down;
};

/* n1's state on the member shows the backend 10.0.0.20 down (or up). */
static bool n1_sees(void *arg)
{
	struct health_wait *w = arg;
	json_object *o = call(w->api, "GET", "/v1/nodes/n1/state",
			      "admin-token-1", NULL, 200);
	json_object *svc = json_object_array_get_idx(
		json_object_object_get(o, "services"), 0);
	json_object *b = json_object_array_get_idx(
		json_object_object_get(svc, "backends"), 0);
	json_object *h = json_object_object_get(b, "healthy");
	bool down = h && !json_object_get_boolean(h);

	json_object_put(o);
	return b && down == w->want_down;
}

/* A report made on one member is served by the other; the leader's sweep
 * clears it once the backend's port moved to another node. */
static void test_health_on_two_members(void **state)
{
	struct members *m = *state;
	struct cluster_opts co = {.zookeeper = true,
				  .root = m->root,
				  .api_addr = "127.0.0.1:1",
				  .tick_ms = 100};
	struct cluster *cl = NULL;
	struct health_wait w;
	json_object *t;
	char tok[128], body[256];
	struct api a, b;
	bool gen;

	assert_int_equal(api_init(&a, m->a, "admin-token-1", &gen), 0);
	assert_int_equal(api_init(&b, m->b, "admin-token-1", &gen), 0);
	t = call(&a, "POST", "/v1/tenants", "admin-token-1",
		 "{\"name\":\"hc\"}", 201);
	snprintf(tok, sizeof(tok), "%s",
		 json_object_get_string(json_object_object_get(t, "token")));
	json_object_put(t);
	for (int i = 1; i <= 3; i++) {
		snprintf(body, sizeof(body),
			 "{\"name\":\"n%d\",\"ip\":\"192.168.61.%d\"}", i, i);
		json_object_put(call(&a, "POST", "/v1/nodes", "admin-token-1",
				     body, 201));
	}
	json_object_put(call(&a, "POST", "/v1/vpcs", tok,
			     "{\"name\":\"v\",\"cidr\":\"10.0.0.0/16\"}", 201));
	json_object_put(call(&a, "POST", "/v1/subnets", tok,
			     "{\"vpc\":1,\"cidr\":\"10.0.0.0/24\"}", 201));
	json_object_put(call(&a, "POST", "/v1/ports", tok,
			     "{\"subnet\":1,\"ip\":\"10.0.0.10\",\"node\":"
			     "\"n1\",\"ifname\":\"h1\"}",
			     201));
	json_object_put(call(&a, "POST", "/v1/ports", tok,
			     "{\"subnet\":1,\"ip\":\"10.0.0.20\",\"node\":"
			     "\"n2\",\"ifname\":\"h2\"}",
			     201));
	json_object_put(call(&a, "POST", "/v1/loadbalancers", tok,
			     "{\"vpc\":1,\"vip\":\"10.0.100.1\",\"port\":80,"
			     "\"protocol\":\"tcp\",\"backends\":[{\"ip\":"
			     "\"10.0.0.20\"}]}",
			     201));
	/* n2 reports through a; b serves it. */
	json_object_put(call(&a, "POST", "/v1/nodes/n2/health", "admin-token-1",
			     "{\"full\":true,\"backends\":[{\"loadbalancer\":1,"
			     "\"address\":\"10.0.0.20\",\"port\":80,"
			     "\"healthy\":false}]}",
			     200));
	sync_to(m->b, store_revision(m->a));
	w = (struct health_wait){.api = &b, .want_down = true};
	assert_true(n1_sees(&w));
	/* The port moves to n3 (on b); the leader (a) clears n2's report. */
	co.store = m->a;
	assert_int_equal(cluster_start(&co, &cl), 0);
	json_object_put(call(&b, "PATCH", "/v1/ports/2", tok,
			     "{\"node\":\"n3\",\"ifname\":\"h3\"}", 200));
	w.want_down = false;
	assert_true(zkh_until(n1_sees, &w, 10000));
	cluster_stop(cl);
	api_fini(&a);
	api_fini(&b);
}

/* ---- leader election -------------------------------------------------- */

static bool is_leader(void *arg)
{
	return cluster_is_leader(arg);
}

static void test_leader_hands_over(void **state)
{
	struct members *m = *state;
	struct cluster_opts o = {.zookeeper = true, .root = m->root};
	struct cluster *ca = NULL, *cb = NULL;

	o.store = m->a;
	o.api_addr = "127.0.0.1:1";
	assert_int_equal(cluster_start(&o, &ca), 0);
	o.store = m->b;
	o.api_addr = "127.0.0.1:2";
	assert_int_equal(cluster_start(&o, &cb), 0);
	assert_true(zkh_until(is_leader, ca, 5000));
	assert_false(cluster_is_leader(cb));
	cluster_stop(ca);
	assert_true(zkh_until(is_leader, cb, 10000));
	cluster_stop(cb);
}

int main(void)
{
	const struct CMUnitTest cluster[] = {
		cmocka_unit_test_setup_teardown(test_members_see_each_other,
						members_setup,
						members_teardown),
		cmocka_unit_test_setup_teardown(test_new_member_recovers,
						members_setup,
						members_teardown),
		cmocka_unit_test_setup_teardown(test_api_on_two_members,
						members_setup,
						members_teardown),
		cmocka_unit_test_setup_teardown(test_leader_hands_over,
						members_setup,
						members_teardown),
		cmocka_unit_test_setup_teardown(test_ports_on_two_members,
						members_setup,
						members_teardown),
		cmocka_unit_test_setup_teardown(test_health_on_two_members,
						members_setup,
						members_teardown),
		cmocka_unit_test_setup_teardown(test_learn_on_two_members,
						members_setup,
						members_teardown),
	};
	int fails;

	/* One server for both groups. */
	if (group_setup(NULL))
		return 1;
	fails = cmocka_run_group_tests_name("store conformance, zookeeper",
					    store_cases, NULL, NULL);
	fails += cmocka_run_group_tests_name("controller cluster", cluster,
					     NULL, NULL);
	if (group_teardown(NULL))
		fails++;
	return fails;
}
