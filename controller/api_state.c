// SPDX-License-Identifier: GPL-2.0-only
/* GET /v1/nodes/{name}/state: the desired state of one node in the format
 * of docs/state-format.md, and with ?since=REV&wait=S the changes after a
 * revision (long-poll). A node gets the VPCs in which it hosts a bound
 * port, and those it is a gateway of, with all their subnets. Endpoints:
 * all of a push-mode VPC, and all of a learn-mode VPC on its gateways;
 * other nodes of a learn-mode VPC get their own endpoints, and in the
 * change stream only moves and deletes of the others (docs/learning.md).
 * Every state lists the underlay addresses of all registered nodes. The
 * services (load balancers) of every VPC a node gets go with it: balancing
 * happens on the client's node. A backend that its own node reported down
 * (POST /v1/nodes/{name}/health, lbhealth.h) has "healthy": false there,
 * and a change of that report is a change of its service.
 *
 * Public (north-south) load balancers go to every node, since any node
 * may be an LB node (routers choose): with each, its VPC, all of the
 * VPC's subnets and endpoints, and, where the node gets the VPC only for
 * them, only the public services of it. A learn-mode VPC with a public
 * load balancer is presented to every node as a push-mode one (no mode,
 * all endpoints): an LB node must find the backend's node, the datapath
 * does not resolve on that path, and an agent installs another node's
 * endpoint of a learn-mode VPC only on its gateways. Creating or
 * deleting a public load balancer (its lbp/ index key) may change every
 * node's set of VPCs, or a VPC's mode: every poll answers a snapshot.
 *
 * Changes are computed from the store's change feed: per record, the first
 * old value and the last new value in the window, filtered by the node's
 * VPCs, in revision order. When the node's own set of VPCs may have
 * changed (a port bound to it in a VPC it did not get at the start of the
 * window, or its view of then is not known; a port unbound from it; it
 * became or stopped being a gateway, one of its VPCs switched mode, a node
 * record created, deleted or given another ip; not the leader's status
 * updates) or the feed no longer reaches back to REV, the answer is a full
 * snapshot. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_priv.h"
#include "gateways.h"
#include "lbhealth.h"
#include "log.h"
#include "netutil.h"
#include "store_mem.h"

struct idset {
	uint32_t *v;
	size_t n, cap;
};

static int idset_add(struct idset *s, uint32_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == id)
			return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		uint32_t *p = realloc(s->v, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->v = p;
		s->cap = cap;
	}
	s->v[s->n++] = id;
	return 0;
}

static bool idset_has(const struct idset *s, uint32_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == id)
			return true;
	return false;
}

struct collect {
	char **keys;
	size_t n, cap;
	int err;
};

static int collect_keys(const struct store_rec *r, void *arg)
{
	struct collect *c = arg;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		char **p = realloc(c->keys, cap * sizeof(*p));

		if (!p) {
			c->err = -ENOMEM;
			return 1;
		}
		c->keys = p;
		c->cap = cap;
	}
	c->keys[c->n] = strdup(r->key);
	if (!c->keys[c->n]) {
		c->err = -ENOMEM;
		return 1;
	}
	c->n++;
	return 0;
}

static void collect_free(struct collect *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->keys[i]);
	free(c->keys);
	c->keys = NULL;
	c->n = c->cap = 0;
}

/* What a node gets: its VPCs (bound ports and gateway duties) and its own
 * ports, from the np/<node>/ and gw/<node>/ indexes. */
struct own_port {
	uint32_t port, vpc;
};

struct nodeview {
	struct idset vpcs; /* every VPC the node gets */
	struct idset gw;   /* those it is a gateway of */
	struct idset pub; /* those with a public service (all nodes get them) */
	struct idset lbonly; /* those it gets only for public services */
	struct own_port *own;
	size_t n_own, cap_own;
	/* The revision at which vpcs, gw, pub, lbonly are exact (0: not
	 * known): a port created on the node in one of its VPCs after it
	 * leaves them as they are. */
	uint64_t rev;
	int err;
};

static int view_np(const struct store_rec *r, void *arg)
{
	struct nodeview *nv = arg;
	json_object *o = json_tokener_parse(r->val);
	uint32_t vpc = o ? api_int(o, "vpc") : 0;

	json_object_put(o);
	if (!vpc)
		return 0;
	if (nv->n_own == nv->cap_own) {
		size_t cap = nv->cap_own ? 2 * nv->cap_own : 16;
		struct own_port *p = realloc(nv->own, cap * sizeof(*p));

		if (!p) {
			nv->err = -ENOMEM;
			return 1;
		}
		nv->own = p;
		nv->cap_own = cap;
	}
	nv->own[nv->n_own].port = strtoul(strrchr(r->key, '/') + 1, NULL, 10);
	nv->own[nv->n_own++].vpc = vpc;
	nv->err = idset_add(&nv->vpcs, vpc);
	return nv->err ? 1 : 0;
}

static int view_gw(const struct store_rec *r, void *arg)
{
	struct nodeview *nv = arg;
	uint32_t vpc = strtoul(strrchr(r->key, '/') + 1, NULL, 10);

	nv->err = idset_add(&nv->gw, vpc) ?: idset_add(&nv->vpcs, vpc);
	return nv->err ? 1 : 0;
}

/* A public load balancer (lbp/ index): its VPC goes to every node. */
static int view_pub(const struct store_rec *r, void *arg)
{
	struct nodeview *nv = arg;
	json_object *o = json_tokener_parse(r->val);
	uint32_t vpc = o ? api_int(o, "vpc") : 0;

	json_object_put(o);
	if (!vpc)
		return 0;
	if (!idset_has(&nv->vpcs, vpc))
		nv->err = idset_add(&nv->lbonly, vpc)
				  ?: idset_add(&nv->vpcs, vpc);
	nv->err = nv->err ?: idset_add(&nv->pub, vpc);
	return nv->err ? 1 : 0;
}

static void nodeview_free(struct nodeview *nv)
{
	free(nv->vpcs.v);
	free(nv->gw.v);
	free(nv->pub.v);
	free(nv->lbonly.v);
	free(nv->own);
	memset(nv, 0, sizeof(*nv));
}

static int nodeview_load(struct api *api, const char *node, struct nodeview *nv)
{
	char prefix[128];
	int err;

	nodeview_free(nv);
	snprintf(prefix, sizeof(prefix), "np/%s/", node);
	err = store_list(api->store, prefix, NULL, 0, view_np, nv);
	if (err >= 0 && !nv->err) {
		snprintf(prefix, sizeof(prefix), "gw/%s/", node);
		err = store_list(api->store, prefix, NULL, 0, view_gw, nv);
	}
	if (err >= 0 && !nv->err)
		err = store_list(api->store, API_LB_PUBLIC_PREFIX, NULL, 0,
				 view_pub, nv);
	return err < 0 ? err : nv->err;
}

static bool hosts_port_in(const struct nodeview *nv, uint32_t vpc)
{
	for (size_t i = 0; i < nv->n_own; i++)
		if (nv->own[i].vpc == vpc)
			return true;
	return false;
}

int api_node_entitled(struct api *api, const char *node, uint32_t **ids,
		      size_t *n)
{
	struct nodeview nv = {0};
	int err = nodeview_load(api, node, &nv);

	*ids = NULL;
	*n = 0;
	if (!err) {
		*ids = nv.vpcs.v;
		*n = nv.vpcs.n;
		nv.vpcs.v = NULL;
	}
	nodeview_free(&nv);
	return err;
}

static bool is_learn(json_object *vpc)
{
	const char *m = api_str(vpc, "mode");

	return m && !strcmp(m, "learn");
}

/* Node addresses by name, looked up once per request (a chained hash). */
#define NI_SLOTS 256

struct ni_ent {
	struct ni_ent *next;
	char ip[16]; /* "" when the node is unknown */
	char name[];
};

struct nodeips {
	struct api *api;
	bool checked; /* the shared cache was checked (node_ip) */
	bool has_gen; /* gen: the shared cache's generation then */
	uint64_t gen;
	struct ni_ent *slot[NI_SLOTS];
};

static struct ni_ent **ni_slot(struct nodeips *ni, const char *name)
{
	uint32_t h = 2166136261u;

	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return &ni->slot[h % NI_SLOTS];
}

static struct ni_ent *ni_add(struct nodeips *ni, const char *name,
			     const char *ip)
{
	struct ni_ent **slot = ni_slot(ni, name);
	struct ni_ent *e = calloc(1, sizeof(*e) + strlen(name) + 1);

	if (!e)
		return NULL;
	strcpy(e->name, name);
	snprintf(e->ip, sizeof(e->ip), "%s", ip ?: "");
	e->next = *slot;
	*slot = e;
	return e;
}

static struct ni_ent *ni_find(struct nodeips *ni, const char *name)
{
	struct ni_ent *e;

	for (e = *ni_slot(ni, name); e; e = e->next)
		if (!strcmp(e->name, name))
			return e;
	return NULL;
}

static void ni_free(struct nodeips *ni);
static bool node_ip_same(const struct store_change *sc);

/*
 * Node addresses shared by the requests of a process (keyed by the api),
 * so that an answer does not load and parse a node record for each node
 * its ports are on. An entry is what the node's record said at or after
 * addr_rev; a node record created, deleted or readdressed after addr_rev
 * empties the cache (looked for once per request, at its first lookup),
 * and an address loaded before an emptying (addr_gen) is not kept.
 */
static pthread_mutex_t addr_mu = PTHREAD_MUTEX_INITIALIZER;
static struct nodeips addr_cache;
static uint64_t addr_rev, addr_gen;

static int addr_cb(const struct store_change *sc, void *arg)
{
	bool *moved = arg;

	if (strncmp(sc->key, "node/", 5) || node_ip_same(sc))
		return 0;
	*moved = true;
	return 1;
}

/* Under addr_mu: empties the cache (it starts exact at the current
 * revision). */
static void addr_reset(struct api *api)
{
	ni_free(&addr_cache);
	addr_cache.api = api;
	addr_rev = store_revision(api->store);
	addr_gen++;
}

/* Whether a node record was created, deleted or readdressed after the
 * cache's revision; if not, the cache is exact up to the revision walked
 * to. The walk runs outside addr_mu (the store may be committing). */
static void addr_check(struct api *api)
{
	struct store_scope all = {0}; /* node/ records are in every scope */
	uint64_t from, gen, upto;
	bool moved = false;
	int err;

	pthread_mutex_lock(&addr_mu);
	from = addr_rev;
	gen = addr_gen;
	pthread_mutex_unlock(&addr_mu);
	err = store_changes_scoped(api->store, from, &all, addr_cb, &moved,
				   &upto);
	pthread_mutex_lock(&addr_mu);
	if (addr_cache.api == api && (err || moved))
		addr_reset(api);
	else if (addr_cache.api == api && addr_gen == gen && upto > addr_rev)
		addr_rev = upto;
	pthread_mutex_unlock(&addr_mu);
}

/* The shared address of a node into ip: true if known; *gen the cache's
 * generation, for addr_keep. */
static bool addr_find(struct nodeips *ni, const char *name, char *ip,
		      uint64_t *gen)
{
	struct ni_ent *e;

	pthread_mutex_lock(&addr_mu);
	if (addr_cache.api != ni->api)
		addr_reset(ni->api);
	pthread_mutex_unlock(&addr_mu);
	if (!ni->checked)
		addr_check(ni->api);
	ni->checked = true;
	pthread_mutex_lock(&addr_mu);
	e = ni_find(&addr_cache, name);
	if (e)
		memcpy(ip, e->ip, sizeof(e->ip));
	*gen = addr_gen;
	pthread_mutex_unlock(&addr_mu);
	return e;
}

static void addr_keep(const struct api *api, const char *name, const char *ip,
		      uint64_t gen)
{
	pthread_mutex_lock(&addr_mu);
	if (addr_gen == gen && addr_cache.api == api &&
	    !ni_find(&addr_cache, name))
		ni_add(&addr_cache, name, ip);
	pthread_mutex_unlock(&addr_mu);
}

static void addr_forget(const struct api *api)
{
	pthread_mutex_lock(&addr_mu);
	if (addr_cache.api == api) {
		ni_free(&addr_cache);
		addr_cache.api = NULL;
		addr_gen++;
	}
	pthread_mutex_unlock(&addr_mu);
}

static const char *node_ip(struct nodeips *ni, const char *name)
{
	struct ni_ent *e = ni_find(ni, name);
	char ip[sizeof(e->ip)] = "";
	uint64_t gen;
	json_object *o;
	char key[128];

	if (e)
		return e->ip[0] ? e->ip : NULL;
	if (!addr_find(ni, name, ip, &gen)) {
		snprintf(key, sizeof(key), "node/%s", name);
		if (api_load(ni->api, key, &o, NULL))
			o = NULL;
		snprintf(ip, sizeof(ip), "%s", o ? api_str(o, "ip") ?: "" : "");
		json_object_put(o);
		addr_keep(ni->api, name, ip, gen);
	}
	e = ni_add(ni, name, ip);
	return e && e->ip[0] ? e->ip : NULL;
}

static void ni_free(struct nodeips *ni)
{
	for (size_t i = 0; i < NI_SLOTS; i++) {
		struct ni_ent *e = ni->slot[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
		ni->slot[i] = NULL;
	}
}

/* Adds s to the array of strings arr unless it is there. */
static void add_unique(json_object *arr, const char *s)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		if (!strcmp(json_object_get_string(
				    json_object_array_get_idx(arr, i)),
			    s))
			return;
	json_object_array_add(arr, json_object_new_string(s));
}

/* push: present a learn-mode VPC as a push-mode one (it has a public
 * load balancer: every node gets all of its endpoints). */
static json_object *vpc_state(json_object *v, struct nodeips *ni, bool push)
{
	json_object *o = json_object_new_object(), *g, *ips;

	json_object_object_add(o, "id",
			       json_object_new_int64(api_int(v, "id")));
	json_object_object_add(
		o, "name", json_object_new_string(api_str(v, "name") ?: ""));
	if (!is_learn(v) || push)
		return o;
	json_object_object_add(o, "mode", json_object_new_string("learn"));
	ips = json_object_new_array();
	if (json_object_object_get_ex(v, "gateways", &g) &&
	    json_object_is_type(g, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(g) &&
				   json_object_array_length(ips) < GW_MAX;
		     i++) {
			const char *ip = node_ip(
				ni, json_object_get_string(
					    json_object_array_get_idx(g, i)));

			if (ip)
				add_unique(ips, ip);
		}
	}
	json_object_object_add(o, "gateways", ips);
	return o;
}

static json_object *subnet_state(json_object *s)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "vpc",
			       json_object_new_int64(api_int(s, "vpc")));
	json_object_object_add(
		o, "cidr", json_object_new_string(api_str(s, "cidr") ?: ""));
	json_object_object_add(o, "vni",
			       json_object_new_int64(api_int(s, "vni")));
	json_object_object_add(
		o, "gateway_ip",
		json_object_new_string(api_str(s, "gateway_ip") ?: ""));
	json_object_object_add(
		o, "gateway_mac",
		json_object_new_string(api_str(s, "gateway_mac") ?: ""));
	return o;
}

/* NULL when the port is not bound to a known node. */
static json_object *endpoint_state(json_object *p, const char *node,
				   struct nodeips *ni)
{
	const char *pn = api_str(p, "node"), *ip;
	json_object *o;

	if (!pn || !(ip = node_ip(ni, pn)))
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "vpc",
			       json_object_new_int64(api_int(p, "vpc")));
	json_object_object_add(o, "ip",
			       json_object_new_string(api_str(p, "ip") ?: ""));
	json_object_object_add(o, "mac",
			       json_object_new_string(api_str(p, "mac") ?: ""));
	json_object_object_add(o, "node_ip", json_object_new_string(ip));
	if (!strcmp(pn, node))
		json_object_object_add(
			o, "ifname",
			json_object_new_string(api_str(p, "ifname") ?: ""));
	return o;
}

static bool lb_public(json_object *l)
{
	json_object *p;

	return json_object_object_get_ex(l, "public", &p) &&
	       json_object_get_boolean(p);
}

/* A load balancer record as a service of the state (its backends and
 * health check are stored in that shape already, checked by lib/state.c);
 * the health check only when there is one, as lib/state.c writes it.
 * Backends reported down by their node (lbhealth.h) get "healthy": false. */
static json_object *service_state(struct api *api, json_object *l)
{
	json_object *o = json_object_new_object(), *be, *hc;
	const char *type;

	json_object_object_add(o, "id",
			       json_object_new_int64(api_int(l, "id")));
	json_object_object_add(o, "vpc",
			       json_object_new_int64(api_int(l, "vpc")));
	json_object_object_add(o, "vip",
			       json_object_new_string(api_str(l, "vip") ?: ""));
	json_object_object_add(o, "port",
			       json_object_new_int64(api_int(l, "port")));
	json_object_object_add(
		o, "protocol",
		json_object_new_string(api_str(l, "protocol") ?: ""));
	be = lbh_mark_backends(api->store, api_int(l, "id"), api_int(l, "port"),
			       json_object_object_get(l, "backends"));
	json_object_object_add(o, "backends", be ?: json_object_new_array());
	hc = json_object_object_get(l, "health_check");
	type = hc ? api_str(hc, "type") : NULL;
	if (type && strcmp(type, "none"))
		json_object_object_add(o, "health_check", json_object_get(hc));
	if (lb_public(l))
		json_object_object_add(o, "public", json_object_new_boolean(1));
	return o;
}

/* The services of a VPC (only its public ones: pub_only), appended to
 * out. */
static int load_services(struct api *api, uint32_t vpc, bool pub_only,
			 json_object *out)
{
	struct collect c = {0};
	char prefix[64], key[64];
	int err;

	snprintf(prefix, sizeof(prefix), "vl/%010u/", vpc);
	err = store_list(api->store, prefix, NULL, 0, collect_keys, &c);
	if (err >= 0)
		err = c.err;
	for (size_t i = 0; !err && i < c.n; i++) {
		json_object *l;

		snprintf(key, sizeof(key), "lb/%s",
			 strrchr(c.keys[i], '/') + 1);
		if (api_load(api, key, &l, NULL))
			continue; /* deleted meanwhile */
		if (!pub_only || lb_public(l))
			json_object_array_add(out, service_state(api, l));
		json_object_put(l);
	}
	collect_free(&c);
	return err;
}

static int load_list(struct api *api, const char *index, const char *kind,
		     json_object *out, json_object *(*conv)(json_object *),
		     const char *node, struct nodeips *ni,
		     struct idset *cidrs_ok)
{
	struct collect c = {0};
	char key[128];
	int err;

	err = store_list(api->store, index, NULL, 0, collect_keys, &c);
	if (err >= 0)
		err = c.err;
	for (size_t i = 0; !err && i < c.n; i++) {
		json_object *o, *s;

		snprintf(key, sizeof(key), "%s/%s", kind,
			 strrchr(c.keys[i], '/') + 1);
		if (api_load(api, key, &o, NULL))
			continue; /* deleted meanwhile */
		if (conv) {
			s = conv(o);
			if (cidrs_ok)
				err = idset_add(cidrs_ok, api_int(o, "id"));
		} else if (!cidrs_ok ||
			   idset_has(cidrs_ok, api_int(o, "subnet"))) {
			/* An endpoint only with its subnet, so a snapshot
			 * read across commits is still valid; the changes
			 * after its revision add the rest. */
			s = endpoint_state(o, node, ni);
		} else {
			s = NULL;
		}
		if (s)
			json_object_array_add(out, s);
		json_object_put(o);
	}
	collect_free(&c);
	return err;
}

/* The node's own endpoints of one VPC (a learn-mode VPC it is not a
 * gateway of). */
static void load_own(struct api *api, const struct nodeview *nv, uint32_t vpc,
		     json_object *out, const char *node, struct nodeips *ni,
		     struct idset *cidrs_ok)
{
	char key[64];

	for (size_t i = 0; i < nv->n_own; i++) {
		json_object *o, *e;

		if (nv->own[i].vpc != vpc)
			continue;
		snprintf(key, sizeof(key), KF_ID, "port", nv->own[i].port);
		if (api_load(api, key, &o, NULL))
			continue; /* deleted meanwhile */
		e = idset_has(cidrs_ok, api_int(o, "subnet"))
			    ? endpoint_state(o, node, ni)
			    : NULL;
		if (e)
			json_object_array_add(out, e);
		json_object_put(o);
	}
}

struct members {
	struct nodeips *ni;
	__be32 *ips;
	char **names; /* of ips[i] */
	size_t n, cap;
	int err;
};

static void members_free(struct members *m)
{
	for (size_t i = 0; m->names && i < m->n; i++)
		free(m->names[i]);
	free(m->names);
	free(m->ips);
	m->names = NULL;
	m->ips = NULL;
	m->n = m->cap = 0;
}

static int add_member(const struct store_rec *r, void *arg)
{
	struct members *m = arg;
	json_object *o = json_tokener_parse(r->val);
	const char *name = r->key + strlen("node/"), *ip = api_str(o, "ip");
	__be32 a;

	if (!o || !ip || xvpc_parse_ip(ip, &a))
		goto out;
	if (!ni_find(m->ni, name))
		ni_add(m->ni, name, ip);
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 64;
		__be32 *p = realloc(m->ips, cap * sizeof(*p));
		char **q = p ? realloc(m->names, cap * sizeof(*q)) : NULL;

		if (p)
			m->ips = p;
		if (q)
			m->names = q;
		if (!q) {
			m->err = -ENOMEM;
			json_object_put(o);
			return 1;
		}
		m->cap = cap;
	}
	m->names[m->n] = strdup(name);
	if (!m->names[m->n]) {
		m->err = -ENOMEM;
		json_object_put(o);
		return 1;
	}
	m->ips[m->n++] = a;
out:
	json_object_put(o);
	return 0;
}

static int cmp_ip(const void *a, const void *b)
{
	uint32_t x = ntohl(*(const __be32 *)a), y = ntohl(*(const __be32 *)b);

	return (x > y) - (x < y);
}

/*
 * The members of the last listing, per process and keyed by the api:
 * reused while the change feed shows no node record created, deleted or
 * given another address after the revision they were exact at (every
 * snapshot lists them, and parsing every node record for each is what a
 * snapshot cost most at 1000 nodes).
 */
static pthread_mutex_t members_mu = PTHREAD_MUTEX_INITIALIZER;
static const struct api *members_api;
static uint64_t members_rev;
static struct members members_kept;

static int members_cb(const struct store_change *sc, void *arg)
{
	bool *moved = arg;

	if (strncmp(sc->key, "node/", 5) || node_ip_same(sc))
		return 0;
	*moved = true;
	return 1;
}

/* Under members_mu: whether the kept members are still exact. */
static bool members_valid(struct api *api)
{
	bool moved = false;
	uint64_t upto;

	if (members_api != api || !members_rev)
		return false;
	if (store_changes(api->store, members_rev, members_cb, &moved, &upto) ||
	    moved)
		return false;
	members_rev = upto;
	return true;
}

/* The kept members into ni, their addresses into m (no names). */
static int members_copy(struct nodeips *ni, struct members *m)
{
	const struct members *k = &members_kept;

	m->ips = malloc((k->n ? k->n : 1) * sizeof(*m->ips));
	if (!m->ips)
		return -ENOMEM;
	memcpy(m->ips, k->ips, k->n * sizeof(*m->ips));
	m->n = k->n;
	for (size_t i = 0; i < k->n; i++) {
		char ip[XVPC_IP_STRLEN];

		if (!ni_find(ni, k->names[i]))
			ni_add(ni, k->names[i], xvpc_fmt_ip(k->ips[i], ip));
	}
	return 0;
}

static void members_keep(const struct api *api, uint64_t rev, struct members *m)
{
	pthread_mutex_lock(&members_mu);
	members_free(&members_kept);
	members_kept = *m;
	members_kept.ni = NULL;
	members_api = api;
	members_rev = rev;
	memset(m, 0, sizeof(*m));
	pthread_mutex_unlock(&members_mu);
}

static void members_forget(const struct api *api)
{
	pthread_mutex_lock(&members_mu);
	if (members_api == api) {
		members_free(&members_kept);
		members_api = NULL;
		members_rev = 0;
	}
	pthread_mutex_unlock(&members_mu);
}

/* Top-level "nodes": the underlay addresses of all registered nodes, in
 * address order, each once. Fills the address cache on the way. */
static int add_members(struct api *api, struct nodeips *ni, json_object *top)
{
	struct members m = {.ni = ni};
	char buf[XVPC_IP_STRLEN];
	uint64_t r0 = store_revision(api->store);
	__be32 *sorted;
	bool kept;
	json_object *arr;
	int err = 0;

	pthread_mutex_lock(&members_mu);
	kept = members_valid(api);
	if (kept)
		err = members_copy(ni, &m);
	pthread_mutex_unlock(&members_mu);
	if (!kept) {
		err = store_list(api->store, "node/", NULL, 0, add_member, &m);
		if (err >= 0)
			err = m.err;
	}
	sorted = !err && m.n ? malloc(m.n * sizeof(*sorted)) : NULL;
	if (sorted) {
		memcpy(sorted, m.ips, m.n * sizeof(*sorted));
		qsort(sorted, m.n, sizeof(*sorted), cmp_ip);
		arr = json_object_new_array();
		for (size_t i = 0; i < m.n; i++)
			if (!i || sorted[i] != sorted[i - 1])
				json_object_array_add(
					arr, json_object_new_string(xvpc_fmt_ip(
						     sorted[i], buf)));
		json_object_object_add(top, "nodes", arr);
		free(sorted);
	} else if (!err && m.n) {
		err = -ENOMEM;
	}
	/* Exact at r0 only if nothing was committed while listing. */
	if (!err && !kept && store_revision(api->store) == r0)
		members_keep(api, r0, &m);
	members_free(&m);
	return err < 0 ? err : 0;
}

static int build_snapshot(struct api *api, const char *node, bool mark,
			  json_object **out)
{
	struct nodeips ni = {.api = api};
	struct nodeview nv = {0};
	struct idset subnets = {0};
	json_object *top, *jv, *js, *je, *jl;
	uint64_t rev = store_revision(api->store);
	char prefix[64], key[64];
	int err;

	top = json_object_new_object();
	jv = json_object_new_array();
	js = json_object_new_array();
	je = json_object_new_array();
	json_object_object_add(top, "revision", json_object_new_int64(rev));
	if (mark)
		json_object_object_add(top, "snapshot",
				       json_object_new_boolean(1));
	json_object_object_add(top, "vpcs", jv);
	json_object_object_add(top, "subnets", js);
	json_object_object_add(top, "endpoints", je);
	jl = json_object_new_array();
	json_object_object_add(top, "services", jl);
	err = add_members(api, &ni, top) ?: nodeview_load(api, node, &nv);
	for (size_t i = 0; !err && i < nv.vpcs.n; i++) {
		uint32_t id = nv.vpcs.v[i];
		bool learn, full;
		json_object *v;

		snprintf(key, sizeof(key), KF_ID, "vpc", id);
		if (api_load(api, key, &v, NULL))
			continue;
		learn = is_learn(v);
		full = !learn || idset_has(&nv.gw, id) ||
		       idset_has(&nv.pub, id);
		/* A gateway index left over from learn mode gives nothing. */
		if (!learn && !hosts_port_in(&nv, id) &&
		    !idset_has(&nv.pub, id)) {
			json_object_put(v);
			continue;
		}
		json_object_array_add(
			jv, vpc_state(v, &ni, idset_has(&nv.pub, id)));
		json_object_put(v);
		snprintf(prefix, sizeof(prefix), "vs/%010u/", id);
		err = load_list(api, prefix, "subnet", js, subnet_state, node,
				&ni, &subnets);
		snprintf(prefix, sizeof(prefix), "vp/%010u/", id);
		if (!err && full)
			err = load_list(api, prefix, "port", je, NULL, node,
					&ni, &subnets);
		else if (!err)
			load_own(api, &nv, id, je, node, &ni, &subnets);
		err = err
			      ?: load_services(api, id,
					       idset_has(&nv.lbonly, id), jl);
	}
	nodeview_free(&nv);
	ni_free(&ni);
	free(subnets.v);
	if (err) {
		json_object_put(top);
		return err;
	}
	*out = top;
	return 0;
}

/* ---- changes ------------------------------------------------------- */

/* The serialized answer of a window that other nodes' polls may take
 * (see "Sharing" below), with the VPCs and nodes it touches. */
struct share_answer {
	const struct api *api;
	uint64_t since, upto;
	struct idset vpcs;
	char **owners;
	size_t n_owners;
	char *body;
};

/* What a window touches, noted from the changes a poll walks (the nodes
 * named, duplicates and all, while the store is held; sorted into the
 * answer's owners after); ok false: its answer is not shareable. */
struct touch {
	struct share_answer a;
	char **names;
	size_t n_names, cap_names;
	bool ok;
};

static void answer_clear(struct share_answer *a);

static void touch_reset(struct touch *t)
{
	answer_clear(&t->a);
	for (size_t i = 0; i < t->n_names; i++)
		free(t->names[i]);
	free(t->names);
	t->names = NULL;
	t->n_names = t->cap_names = 0;
	t->ok = true;
}

static int touch_name(struct touch *t, const char *name, size_t len)
{
	char *n;

	if (t->n_names == t->cap_names) {
		size_t cap = t->cap_names ? t->cap_names * 2 : 16;
		char **p = realloc(t->names, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		t->names = p;
		t->cap_names = cap;
	}
	n = strndup(name, len);
	if (!n)
		return -ENOMEM;
	t->names[t->n_names++] = n;
	return 0;
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names noted become the answer's owners, each once. */
static void touch_owners(struct touch *t)
{
	size_t out = 0;

	qsort(t->names, t->n_names, sizeof(*t->names), by_str);
	for (size_t i = 0; i < t->n_names; i++) {
		if (out && !strcmp(t->names[out - 1], t->names[i]))
			free(t->names[i]);
		else
			t->names[out++] = t->names[i];
	}
	t->a.owners = t->names;
	t->a.n_owners = out;
	t->names = NULL;
	t->n_names = t->cap_names = 0;
}

/* The node a port's record (text) is bound to, as an owner. */
static int touch_port(struct touch *t, const char *val)
{
	char node[STORE_KEY_MAX];
	int has;

	if (!val)
		return 0;
	has = mem_str_field(val, "node", node, sizeof(node));
	if (has < 0)
		return -EINVAL;
	return has ? touch_name(t, node, strlen(node)) : 0;
}

/* Notes what one change of the window touches: the VPC and nodes of a port,
 * the node of an index record; anything else makes the answer the poll's
 * own. The walk (scoped or not) gives every change that can matter here:
 * other VPCs' changes mark the window foreign (not shared at all), other
 * nodes' port indexes come with their ports' records, gateway records and
 * node records are in every scope. */
static void touch_change(struct touch *t, const struct store_change *sc)
{
	const char *k = sc->key, *slash;
	int err = 0;

	if (!strncmp(k, "node/", 5)) {
		if (!node_ip_same(sc))
			t->ok = false;
	} else if (!strncmp(k, "np/", 3) || !strncmp(k, "gw/", 3)) {
		slash = strchr(k + 3, '/');
		err = touch_name(t, k + 3,
				 slash ? (size_t)(slash - k - 3)
				       : strlen(k + 3));
	} else if (!strncmp(k, "port/", 5)) {
		err = sc->vpc ? idset_add(&t->a.vpcs, sc->vpc) : -EINVAL;
		err = err ?: touch_port(t, sc->old_val)
			  ?: touch_port(t, sc->new_val);
	} else if (!strncmp(k, "vpc/", 4) || !strncmp(k, "subnet/", 7) ||
		   !strncmp(k, "lb/", 3) ||
		   !strncmp(k, LBH_PREFIX, strlen(LBH_PREFIX))) {
		t->ok = false;
	}
	if (err)
		t->ok = false;
}

struct chg {
	uint64_t rev; /* of the last change in the window */
	char *key;
	char *old_val; /* before the first change in the window */
	char *new_val; /* after the last one */
	size_t seq;
};

struct feed {
	const char *node;
	size_t node_prefix_len, gw_prefix_len;
	char node_prefix[128], gw_prefix[128];
	struct chg *c;
	size_t n, cap;
	struct idset switched;	  /* VPCs whose mode changed in the window */
	struct idset np_new;	  /* VPCs of ports created on the node */
	const struct idset *vpcs; /* the node's, once known: others skipped */
	bool foreign;		  /* the window touched a VPC not in vpcs */
	struct touch touch;	  /* for sharing the answer */
	bool need_snapshot;
	int err;
};

/* Whether a change of node/<name> leaves its underlay address as it was
 * (the leader's up/down status, for one): endpoints only carry the ip, so
 * no node needs a snapshot for it. */
static bool node_ip_same(const struct store_change *sc)
{
	json_object *o, *n;
	bool same;

	if (!sc->old_val || !sc->new_val)
		return false;
	o = json_tokener_parse(sc->old_val);
	n = json_tokener_parse(sc->new_val);
	same = o && n && api_str(o, "ip") && api_str(n, "ip") &&
	       !strcmp(api_str(o, "ip"), api_str(n, "ip"));
	json_object_put(o);
	json_object_put(n);
	return same;
}

/* Notes a VPC whose mode changed: its nodes need a snapshot, since the
 * set of endpoints they get changes as a whole. */
static int note_switch(struct feed *f, const struct store_change *sc)
{
	json_object *o, *n;
	int err = 0;

	if (!sc->old_val || !sc->new_val)
		return 0;
	o = json_tokener_parse(sc->old_val);
	n = json_tokener_parse(sc->new_val);
	if (o && n && is_learn(o) != is_learn(n))
		err = idset_add(&f->switched, api_int(n, "id"));
	json_object_put(o);
	json_object_put(n);
	return err;
}

/* A change of a record of a VPC the node does not get (the VPC the feed
 * noted for it, store_change.vpc): nothing for it. */
static bool foreign_change(const struct feed *f, const struct store_change *sc)
{
	return sc->vpc && !idset_has(f->vpcs, sc->vpc);
}

/* A port created on the node (its np/ index record): its VPC, or 0. */
static uint32_t np_created(const struct store_change *sc)
{
	json_object *o;
	uint32_t vpc;

	if (sc->old_val || !sc->new_val)
		return 0;
	o = json_tokener_parse(sc->new_val);
	vpc = o ? api_int(o, "vpc") : 0;
	json_object_put(o);
	return vpc;
}

/*
 * What a change is to this node, by its key: nothing (most keys of a
 * window: index records, other nodes' records), a reason for a snapshot
 * (1), a port created on the node (noted), or an object change to look at
 * (-1). Decided on the first letter before any string compare: a window
 * holds every change of every tenant, so this runs for each of them.
 * Every key it does not answer 0 for is in the store's node scope
 * (struct store_scope), which a walk with the node's VPCs goes by.
 */
static int feed_key(struct feed *f, const struct store_change *sc)
{
	const char *k = sc->key;
	uint32_t vpc;

	switch (k[0]) {
	case 'n':
		if (!strncmp(k, "node/", 5)) {
			if (node_ip_same(sc))
				return 0;
			break;
		}
		if (strncmp(k, f->node_prefix, f->node_prefix_len))
			return 0;
		/* Decided once the node's view is known (new_port_only). */
		vpc = np_created(sc);
		if (!vpc)
			break;
		f->err = idset_add(&f->np_new, vpc);
		return f->err ? 1 : 0;
	case 'g':
		if (strncmp(k, f->gw_prefix, f->gw_prefix_len))
			return 0;
		break;
	case 'l':
		if (!strncmp(k, API_LB_PUBLIC_PREFIX,
			     strlen(API_LB_PUBLIC_PREFIX)))
			break;
		return !strncmp(k, "lb/", 3) || !strncmp(k, LBH_PREFIX,
							 strlen(LBH_PREFIX))
			       ? -1
			       : 0;
	case 'v':
		return strncmp(k, "vpc/", 4) ? 0 : -1;
	case 's':
		return strncmp(k, "subnet/", 7) ? 0 : -1;
	case 'p':
		return strncmp(k, "port/", 5) ? 0 : -1;
	default:
		return 0;
	}
	f->need_snapshot = true;
	return 1;
}

static int feed_cb(const struct store_change *sc, void *arg)
{
	struct feed *f = arg;
	struct chg *c;
	int kind;

	if (f->touch.ok)
		touch_change(&f->touch, sc);
	kind = feed_key(f, sc);

	if (kind >= 0)
		return kind;
	if (f->vpcs && foreign_change(f, sc)) {
		f->foreign = true;
		return 0;
	}
	if (!strncmp(sc->key, "vpc/", 4)) {
		f->err = note_switch(f, sc);
		if (f->err)
			return 1;
	}
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		struct chg *p = realloc(f->c, cap * sizeof(*p));

		if (!p) {
			f->err = -ENOMEM;
			return 1;
		}
		f->c = p;
		f->cap = cap;
	}
	c = &f->c[f->n];
	c->rev = sc->rev;
	c->seq = f->n;
	c->key = strdup(sc->key);
	c->old_val = sc->old_val ? strdup(sc->old_val) : NULL;
	c->new_val = sc->new_val ? strdup(sc->new_val) : NULL;
	f->n++;
	if (!c->key || (sc->old_val && !c->old_val) ||
	    (sc->new_val && !c->new_val)) {
		f->err = -ENOMEM;
		return 1;
	}
	return 0;
}

/* The window from since into f: once the node's VPCs are known, only
 * the changes that can concern it (the store's scope index). */
static int feed_walk(struct api *api, struct feed *f, uint64_t since,
		     uint64_t *upto)
{
	struct store_scope sc = {.node = f->node};
	int err;

	touch_reset(&f->touch);
	if (!f->vpcs)
		return store_changes(api->store, since, feed_cb, f, upto);
	sc.vpcs = f->vpcs->v;
	sc.n_vpcs = f->vpcs->n;
	err = store_changes_scoped(api->store, since, &sc, feed_cb, f, upto);
	if (!err && sc.others)
		f->foreign = true;
	return err;
}

static void feed_free(struct feed *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->c[i].key);
		free(f->c[i].old_val);
		free(f->c[i].new_val);
	}
	free(f->c);
	f->c = NULL;
	f->n = f->cap = 0;
}

static int by_key_seq(const void *a, const void *b)
{
	const struct chg *x = a, *y = b;
	int d = strcmp(x->key, y->key);

	return d ? d : (x->seq > y->seq) - (x->seq < y->seq);
}

static int by_rev_seq(const void *a, const void *b)
{
	const struct chg *x = a, *y = b;

	if (x->rev != y->rev)
		return (x->rev > y->rev) - (x->rev < y->rev);
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Folds the changes of one key into one: first old value, last new. */
static void coalesce(struct feed *f)
{
	size_t out = 0;

	qsort(f->c, f->n, sizeof(*f->c), by_key_seq);
	for (size_t i = 0; i < f->n;) {
		size_t j = i + 1;
		struct chg g = f->c[i];

		while (j < f->n && !strcmp(f->c[j].key, g.key)) {
			free(f->c[j].key);
			free(f->c[j].old_val);
			free(g.new_val);
			g.new_val = f->c[j].new_val;
			g.rev = f->c[j].rev;
			g.seq = f->c[j].seq;
			j++;
		}
		f->c[out++] = g;
		i = j;
	}
	f->n = out;
	qsort(f->c, f->n, sizeof(*f->c), by_rev_seq);
}

static json_object *parse_or_null(const char *s)
{
	return s ? json_tokener_parse(s) : NULL;
}

/* The changes of an answer, as the text of a JSON array's items. */
struct chgbuf {
	char *p;
	size_t len, cap;
	size_t n; /* items */
	int err;
};

static void cb_append(struct chgbuf *b, const char *s, size_t len)
{
	if (b->err)
		return;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *p;

		while (b->len + len + 1 > cap)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, len);
	b->len += len;
	b->p[b->len] = '\0';
}

/* One item (the text of a change object) into the array. */
static void cb_item(struct chgbuf *b, const char *item, size_t len)
{
	if (b->n)
		cb_append(b, ",", 1);
	cb_append(b, item, len);
	b->n++;
}

static void cb_free(struct chgbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* The text of a change: {"revision","op","kind","object"}. Takes obj. */
static char *change_text(uint64_t rev, bool put, const char *kind,
			 json_object *obj, size_t *len)
{
	const char *os = json_object_to_json_string_ext(
		obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *t = NULL;
	int n;

	n = asprintf(&t,
		     "{\"revision\":%llu,\"op\":\"%s\",\"kind\":\"%s\","
		     "\"object\":%s}",
		     (unsigned long long)rev, put ? "put" : "delete", kind,
		     os ? os : "null");
	json_object_put(obj);
	if (n < 0)
		return NULL;
	*len = n;
	return t;
}

static void add_change(struct chgbuf *b, uint64_t rev, bool put,
		       const char *kind, json_object *obj)
{
	size_t len;
	char *t = change_text(rev, put, kind, obj, &len);

	if (!t) {
		b->err = -ENOMEM;
		return;
	}
	cb_item(b, t, len);
	free(t);
}

static bool on_node(json_object *port, const char *node)
{
	const char *pn = api_str(port, "node");

	return pn && !strcmp(pn, node);
}

/* An endpoint change of a learn-mode VPC for a node that is not one of its
 * gateways: its own endpoints as in push mode; of the others only moves
 * (put with the new node_ip) and deletes (also unbinding), never
 * creations. Takes ne and oe. */
static void partial_change(struct chgbuf *arr, const struct chg *c,
			   json_object *o, json_object *n, json_object *ne,
			   json_object *oe, const char *node)
{
	bool own = (o && on_node(o, node)) || (n && on_node(n, node));

	if (own || (ne && oe &&
		    strcmp(api_str(ne, "node_ip"), api_str(oe, "node_ip")))) {
		if (ne)
			add_change(arr, c->rev, true, "endpoint", ne);
		else if (oe)
			add_change(arr, c->rev, false, "endpoint",
				   json_object_get(oe));
		else
			json_object_put(ne);
	} else if (oe && !ne) {
		add_change(arr, c->rev, false, "endpoint", json_object_get(oe));
	} else {
		json_object_put(ne);
	}
	json_object_put(oe);
}

/* A backend's reported health changed (an lbh/ record, any): its load
 * balancer as it is now, if it still exists. */
static void health_change(struct chgbuf *arr, const struct chg *c,
			  const struct nodeview *nv, struct api *api,
			  json_object *any)
{
	json_object *l;
	char key[64];

	snprintf(key, sizeof(key), KF_ID, "lb", (uint32_t)api_int(any, "lb"));
	if (api_load(api, key, &l, NULL))
		return; /* deleted: its own change says so */
	if (!idset_has(&nv->lbonly, api_int(l, "vpc")) || lb_public(l))
		add_change(arr, c->rev, true, "service", service_state(api, l));
	json_object_put(l);
}

/*
 * The change items of remote endpoints, shared between answers: a port
 * created or changed is sent to every node of its VPC, and for all but
 * its own node (which also gets its interface) the item is the same text.
 * Keyed by the key and revision of the change (its new value, so also a
 * window that folded several changes of the key) and the generation of
 * the node addresses it embeds (addr_gen). Direct-mapped, replaced on
 * collision.
 */
#define EPC_SLOTS 4096
#define EPC_LOCKS 64

struct epc_ent {
	const struct api *api;
	uint64_t rev, gen;
	uint32_t vpc;
	char *key, *node; /* node: the port's */
	char *text;	  /* the item; one allocation with key and node */
	size_t len;
};

static struct epc_ent epc[EPC_SLOTS];
static pthread_mutex_t epc_mu[EPC_LOCKS];
static pthread_once_t epc_once = PTHREAD_ONCE_INIT;

static void epc_init(void)
{
	for (int i = 0; i < EPC_LOCKS; i++)
		pthread_mutex_init(&epc_mu[i], NULL);
}

static size_t epc_slot(const char *key, uint64_t rev)
{
	uint64_t h = 1469598103934665603ull ^ rev;

	for (const char *p = key; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h % EPC_SLOTS;
}

/* The address generation, the shared addresses checked for this request
 * first; the same for the rest of the request (an item cached under it
 * holds the addresses the request itself would use). */
static uint64_t addr_gen_now(struct nodeips *ni)
{
	uint64_t gen;

	if (ni->has_gen)
		return ni->gen;
	pthread_mutex_lock(&addr_mu);
	if (addr_cache.api != ni->api)
		addr_reset(ni->api);
	pthread_mutex_unlock(&addr_mu);
	if (!ni->checked)
		addr_check(ni->api);
	ni->checked = true;
	pthread_mutex_lock(&addr_mu);
	gen = addr_gen;
	pthread_mutex_unlock(&addr_mu);
	ni->gen = gen;
	ni->has_gen = true;
	return gen;
}

static void epc_keep(const struct api *api, const struct chg *c, uint64_t gen,
		     uint32_t vpc, const char *node, const char *text,
		     size_t len)
{
	size_t i = epc_slot(c->key, c->rev), kl = strlen(c->key) + 1,
	       nl = strlen(node) + 1;
	struct epc_ent *e = &epc[i];
	char *mem = malloc(len + 1 + kl + nl);

	if (!mem)
		return;
	memcpy(mem, text, len + 1);
	memcpy(mem + len + 1, c->key, kl);
	memcpy(mem + len + 1 + kl, node, nl);
	pthread_mutex_lock(&epc_mu[i % EPC_LOCKS]);
	free(e->text);
	e->api = api;
	e->rev = c->rev;
	e->gen = gen;
	e->vpc = vpc;
	e->text = mem;
	e->len = len;
	e->key = mem + len + 1;
	e->node = e->key + kl;
	pthread_mutex_unlock(&epc_mu[i % EPC_LOCKS]);
}

/* A cached item for the change, for a node other than the port's: 1 (added
 * to b, or the port is of a VPC the node does not get), 0 not cached or
 * not for this node (the caller builds it). */
static int epc_use(const struct api *api, const struct chg *c, uint64_t gen,
		   const char *node, const struct idset *vpcs,
		   const struct idset *partial, struct chgbuf *b)
{
	size_t i = epc_slot(c->key, c->rev);
	struct epc_ent *e = &epc[i];
	int ret = 0;

	pthread_mutex_lock(&epc_mu[i % EPC_LOCKS]);
	if (e->text && e->api == api && e->rev == c->rev && e->gen == gen &&
	    !strcmp(e->key, c->key) && strcmp(e->node, node) &&
	    !idset_has(partial, e->vpc)) {
		ret = 1;
		if (idset_has(vpcs, e->vpc))
			cb_item(b, e->text, e->len);
	}
	pthread_mutex_unlock(&epc_mu[i % EPC_LOCKS]);
	return ret;
}

static void epc_forget(const struct api *api)
{
	pthread_once(&epc_once, epc_init);
	for (size_t i = 0; i < EPC_SLOTS; i++) {
		pthread_mutex_lock(&epc_mu[i % EPC_LOCKS]);
		if (epc[i].api == api) {
			free(epc[i].text);
			memset(&epc[i], 0, sizeof(epc[i]));
		}
		pthread_mutex_unlock(&epc_mu[i % EPC_LOCKS]);
	}
}

/* A port put seen from a node it is not on, in a VPC the node gets
 * whole: its item from the cache or built and kept. 1 when done, 0 for
 * the caller to build (own port, learn-mode VPC, unbound or deleted). */
static int remote_endpoint(struct feed *f, const struct chg *c,
			   const struct idset *vpcs,
			   const struct idset *partial, struct nodeips *ni,
			   struct chgbuf *b)
{
	uint64_t gen;
	json_object *n, *ne;
	const char *pn;
	uint32_t vpc;
	char *text;
	size_t len;
	int ret = 0;

	if (strncmp(c->key, "port/", 5) || !c->new_val)
		return 0;
	pthread_once(&epc_once, epc_init);
	gen = addr_gen_now(ni);
	if (epc_use(ni->api, c, gen, f->node, vpcs, partial, b))
		return 1;
	n = json_tokener_parse(c->new_val);
	pn = n ? api_str(n, "node") : NULL;
	vpc = n ? api_int(n, "vpc") : 0;
	if (!pn || !strcmp(pn, f->node) || idset_has(partial, vpc))
		goto out;
	ne = endpoint_state(n, f->node, ni);
	if (!ne)
		goto out;
	text = change_text(c->rev, true, "endpoint", ne, &len);
	if (!text)
		goto out;
	epc_keep(ni->api, c, gen, vpc, pn, text, len);
	if (idset_has(vpcs, vpc))
		cb_item(b, text, len);
	free(text);
	ret = 1;
out:
	json_object_put(n);
	return ret;
}

/* Turns the coalesced feed into the node's changes. partial: the
 * learn-mode VPCs among the node's that it is not a gateway of. */
static void node_changes(struct feed *f, const struct nodeview *nv,
			 const struct idset *partial, struct nodeips *ni,
			 struct chgbuf *arr)
{
	const struct idset *vpcs = &nv->vpcs;

	for (size_t i = 0; i < f->n; i++) {
		struct chg *c = &f->c[i];
		json_object *o, *n, *any;
		bool is_vpc = !strncmp(c->key, "vpc/", 4);
		uint32_t vpc;

		if (remote_endpoint(f, c, vpcs, partial, ni, arr))
			continue;
		o = parse_or_null(c->old_val);
		n = parse_or_null(c->new_val);
		any = n ? n : o;
		vpc = any ? api_int(any, is_vpc ? "id" : "vpc") : 0;
		if (!any || !idset_has(vpcs, vpc))
			goto next;
		if (is_vpc) {
			add_change(
				arr, c->rev, n, "vpc",
				vpc_state(any, ni, idset_has(&nv->pub, vpc)));
		} else if (!strncmp(c->key, "subnet/", 7)) {
			add_change(arr, c->rev, n, "subnet", subnet_state(any));
		} else if (!strncmp(c->key, "lb/", 3)) {
			/* public never changes: any says it. */
			if (!idset_has(&nv->lbonly, vpc) || lb_public(any))
				add_change(arr, c->rev, n, "service",
					   service_state(ni->api, any));
		} else if (!strncmp(c->key, LBH_PREFIX, strlen(LBH_PREFIX))) {
			health_change(arr, c, nv, ni->api, any);
		} else {
			json_object *ne =
				n ? endpoint_state(n, f->node, ni) : NULL;
			json_object *oe =
				o ? endpoint_state(o, f->node, ni) : NULL;

			if (idset_has(partial, vpc)) {
				partial_change(arr, c, o, n, ne, oe, f->node);
				goto next;
			}
			if (ne)
				add_change(arr, c->rev, true, "endpoint", ne);
			else if (oe)
				add_change(arr, c->rev, false, "endpoint",
					   json_object_get(oe));
			json_object_put(oe);
		}
	next:
		json_object_put(o);
		json_object_put(n);
	}
}

/* The learn-mode VPCs of the node's that it is not a gateway of. */
static int partial_vpcs(struct api *api, const struct nodeview *nv,
			struct idset *partial)
{
	char key[64];
	int err = 0;

	partial->n = 0;
	for (size_t i = 0; !err && i < nv->vpcs.n; i++) {
		uint32_t id = nv->vpcs.v[i];
		json_object *v;

		if (idset_has(&nv->gw, id) || idset_has(&nv->pub, id))
			continue;
		snprintf(key, sizeof(key), KF_ID, "vpc", id);
		if (api_load(api, key, &v, NULL))
			continue;
		if (is_learn(v))
			err = idset_add(partial, id);
		json_object_put(v);
	}
	return err;
}

/* The node's ports created in the window are all in VPCs it got (fully)
 * at the window's start: its set of VPCs stays, no snapshot needed. */
static bool new_port_only(const struct idset *np_new, const struct nodeview *nv,
			  uint64_t since)
{
	if (!nv->rev || nv->rev > since)
		return false;
	for (size_t i = 0; i < np_new->n; i++)
		if (!idset_has(&nv->vpcs, np_new->v[i]) ||
		    idset_has(&nv->lbonly, np_new->v[i]))
			return false;
	return true;
}

static bool any_of(const struct idset *a, const struct idset *b)
{
	for (size_t i = 0; i < a->n; i++)
		if (idset_has(b, a->v[i]))
			return true;
	return false;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *v)
{
	char *end;

	if (!s || !*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || *end || *v > max ? -EINVAL : 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* ---- answers shared between polls -------------------------------------- */

/*
 * Long-polls parked at the same revision wake for the same change and would
 * each build the same answer. Two caches, per process, keyed by the api:
 *
 *  views    a node's VPCs and partial (learn-mode) VPCs, as of the revision
 *           of its last change answer: its next poll from that revision
 *           reuses them. Whatever changes them since is in that poll's
 *           window and answers a snapshot (as for a view loaded per poll).
 *  answers  the serialized answer of a window (since, upto] holding only
 *           port changes (and the indexes of nodes), with the VPCs and the
 *           nodes they touch: any node that gets all those VPCs, none of
 *           them partially, and owns none of those ports or index records
 *           gets exactly that answer.
 */
#define SHARE_VIEW_SLOTS 1024
#define SHARE_ANSWERS	 8

struct share_view {
	struct share_view *next;
	const struct api *api;
	uint64_t upto, vrev;
	struct idset vpcs, partial, pub, lbonly;
	char node[];
};

static pthread_mutex_t share_mu = PTHREAD_MUTEX_INITIALIZER;
static struct share_view *share_views[SHARE_VIEW_SLOTS];
static struct share_answer share_answers[SHARE_ANSWERS];
static unsigned int share_next;

static int idset_copy(struct idset *d, const struct idset *s)
{
	d->n = 0;
	for (size_t i = 0; i < s->n; i++)
		if (idset_add(d, s->v[i]))
			return -ENOMEM;
	return 0;
}

static struct share_view **view_slot(const char *node)
{
	uint32_t h = 2166136261u;

	for (const char *p = node; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return &share_views[h % SHARE_VIEW_SLOTS];
}

/* Under share_mu. */
static struct share_view *view_find(const struct api *api, const char *node)
{
	struct share_view *v = *view_slot(node);

	while (v && (v->api != api || strcmp(v->node, node)))
		v = v->next;
	return v;
}

/* The node's view for a poll from since, if it is known: 1, else 0. */
static int view_get(const struct api *api, const char *node, uint64_t since,
		    struct nodeview *nv, struct idset *partial)
{
	struct share_view *v;
	int ret = 0;

	pthread_mutex_lock(&share_mu);
	v = view_find(api, node);
	if (v && v->upto == since)
		nv->rev = v->vrev;
	if (v && v->upto == since)
		ret = idset_copy(&nv->vpcs, &v->vpcs)
			      ?: idset_copy(partial, &v->partial)
			      ?: idset_copy(&nv->pub, &v->pub)
			      ?: idset_copy(&nv->lbonly, &v->lbonly)
			      ?: 1;
	pthread_mutex_unlock(&share_mu);
	return ret < 0 ? 0 : ret;
}

static void view_put(const struct api *api, const char *node, uint64_t upto,
		     const struct nodeview *nv, const struct idset *partial)
{
	struct share_view *v;

	pthread_mutex_lock(&share_mu);
	v = view_find(api, node);
	if (!v) {
		v = calloc(1, sizeof(*v) + strlen(node) + 1);
		if (v) {
			struct share_view **slot = view_slot(node);

			v->api = api;
			strcpy(v->node, node);
			v->next = *slot;
			*slot = v;
		}
	}
	if (v) {
		v->upto = 0; /* never a revision a poll starts from */
		/* Exact at upto if it was at or before: this window changed
		 * nothing in it (else a snapshot, not here). */
		v->vrev = nv->rev && nv->rev <= upto ? upto : nv->rev;
		if (!idset_copy(&v->vpcs, &nv->vpcs) &&
		    !idset_copy(&v->partial, partial) &&
		    !idset_copy(&v->pub, &nv->pub) &&
		    !idset_copy(&v->lbonly, &nv->lbonly))
			v->upto = upto;
	}
	pthread_mutex_unlock(&share_mu);
}

/* Owners are sorted (touch_owners). */
static bool has_owner(const struct share_answer *a, const char *node)
{
	return a->n_owners && bsearch(&node, a->owners, a->n_owners,
				      sizeof(*a->owners), by_str);
}

static void answer_clear(struct share_answer *a)
{
	for (size_t i = 0; i < a->n_owners; i++)
		free(a->owners[i]);
	free(a->owners);
	free(a->vpcs.v);
	free(a->body);
	memset(a, 0, sizeof(*a));
}

/* The shared answer of the window from since for this node (a copy), or
 * NULL; *upto its revision. */
static char *answer_get(const struct api *api, const char *node, uint64_t since,
			const struct idset *vpcs, const struct idset *partial,
			uint64_t *upto)
{
	const struct share_answer *best = NULL;
	char *body = NULL;

	pthread_mutex_lock(&share_mu);
	for (int i = 0; i < SHARE_ANSWERS; i++) {
		const struct share_answer *a = &share_answers[i];
		bool fits = a->body && a->api == api && a->since == since &&
			    !has_owner(a, node);

		for (size_t k = 0; fits && k < a->vpcs.n; k++)
			fits = idset_has(vpcs, a->vpcs.v[k]) &&
			       !idset_has(partial, a->vpcs.v[k]);
		if (fits && (!best || a->upto > best->upto))
			best = a;
	}
	if (best) {
		body = strdup(best->body);
		*upto = best->upto;
	}
	pthread_mutex_unlock(&share_mu);
	return body;
}

/* Offers the answer body of the window (since, upto] that node got, with
 * what its walk noted the window touches (taken over). */
static void answer_put(struct api *api, const char *node, uint64_t since,
		       uint64_t upto, const struct idset *vpcs,
		       const struct idset *partial, const char *body,
		       struct touch *t)
{
	bool there = false;

	pthread_mutex_lock(&share_mu);
	for (int i = 0; i < SHARE_ANSWERS; i++)
		if (share_answers[i].body && share_answers[i].api == api &&
		    share_answers[i].since == since &&
		    share_answers[i].upto == upto)
			there = true;
	pthread_mutex_unlock(&share_mu);
	if (there || !t->ok)
		return;
	touch_owners(t);
	if (has_owner(&t->a, node))
		return;
	for (size_t k = 0; k < t->a.vpcs.n; k++)
		if (!idset_has(vpcs, t->a.vpcs.v[k]) ||
		    idset_has(partial, t->a.vpcs.v[k]))
			return;
	t->a.body = strdup(body);
	if (!t->a.body)
		return;
	t->a.api = api;
	t->a.since = since;
	t->a.upto = upto;
	pthread_mutex_lock(&share_mu);
	answer_clear(&share_answers[share_next % SHARE_ANSWERS]);
	share_answers[share_next++ % SHARE_ANSWERS] = t->a;
	memset(&t->a, 0, sizeof(t->a));
	pthread_mutex_unlock(&share_mu);
}

static void share_free(const struct api *api)
{
	members_forget(api);
	addr_forget(api);
	epc_forget(api);
	pthread_mutex_lock(&share_mu);
	for (int i = 0; i < SHARE_ANSWERS; i++)
		if (share_answers[i].api == api)
			answer_clear(&share_answers[i]);
	for (size_t i = 0; i < SHARE_VIEW_SLOTS; i++) {
		struct share_view **pp = &share_views[i], *v;

		while ((v = *pp)) {
			if (v->api != api) {
				pp = &v->next;
				continue;
			}
			*pp = v->next;
			free(v->vpcs.v);
			free(v->partial.v);
			free(v->pub.v);
			free(v->lbonly.v);
			free(v);
		}
	}
	pthread_mutex_unlock(&share_mu);
}

/* ---- node liveness ---------------------------------------------------- */

struct api_seen {
	struct api_seen *next;
	long long at_ms; /* end of the node's last poll here */
	int polls;	 /* long-polls parked here now */
	char node[];
};

/* Under seen_mu: the nodes that polled here lately (or are parked). */
static void count_pollers(struct api *api, long long now)
{
	int n = 0;

	for (size_t i = 0; i < API_SEEN_SLOTS; i++)
		for (struct api_seen *s = api->seen[i]; s; s = s->next)
			n += s->polls > 0 ||
			     now - s->at_ms <= API_POLLERS_WITHIN_MS;
	api->pollers = n;
	api->pollers_at = now;
}

/* The node's agent polls (delta +1 when a long-poll parks, -1 when it
 * ends, 0 for a plain request): note it in the in-memory table that the
 * cluster duties read for liveness. Nothing is written to the store, so
 * liveness moves neither the revision nor the change feed. On failure to
 * allocate, the node only looks down until a later poll. */
static void node_seen(struct api *api, const char *node, int delta)
{
	uint32_t h = 2166136261u;
	struct api_seen **slot, *s;

	for (const char *p = node; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	slot = &api->seen[h % API_SEEN_SLOTS];
	pthread_mutex_lock(&api->seen_mu);
	for (s = *slot; s && strcmp(s->node, node); s = s->next)
		;
	if (!s) {
		s = calloc(1, sizeof(*s) + strlen(node) + 1);
		if (!s) {
			pthread_mutex_unlock(&api->seen_mu);
			pr_debug("api: cannot note that node '%s' polled: %s",
				 node, strerror(ENOMEM));
			return;
		}
		strcpy(s->node, node);
		s->next = *slot;
		*slot = s;
	}
	s->at_ms = now_ms();
	s->polls += delta;
	if (s->polls < 0) /* its +1 found no memory */
		s->polls = 0;
	if (s->at_ms - api->pollers_at >= API_POLLERS_EVERY_MS)
		count_pollers(api, s->at_ms);
	pthread_mutex_unlock(&api->seen_mu);
}

/* How long a node's agent should batch changes (X-Xvpc-Batch-Ms): the
 * answers of all the nodes polling here within the answer rate. 0 when
 * that is no batching at all. */
static unsigned int batch_hint(struct api *api)
{
	int rate = api->answer_rate ?: API_ANSWER_RATE_DEFAULT;
	long long ms;

	if (rate < 0)
		return 0;
	pthread_mutex_lock(&api->seen_mu);
	ms = api->pollers * 1000LL / rate;
	pthread_mutex_unlock(&api->seen_mu);
	return ms < API_BATCH_HINT_MAX_MS ? ms : API_BATCH_HINT_MAX_MS;
}

void api_live_nodes(struct api *api, long long within_ms,
		    void (*cb)(const char *node, void *arg), void *arg)
{
	long long now = now_ms();

	pthread_mutex_lock(&api->seen_mu);
	for (size_t i = 0; i < API_SEEN_SLOTS; i++)
		for (struct api_seen *s = api->seen[i]; s; s = s->next)
			if (s->polls > 0 || now - s->at_ms <= within_ms)
				cb(s->node, arg);
	pthread_mutex_unlock(&api->seen_mu);
}

void api_seen_free(struct api *api)
{
	api_wake_fini(api);
	share_free(api);
	for (size_t i = 0; i < API_SEEN_SLOTS; i++) {
		struct api_seen *s = api->seen[i], *next;

		for (; s; s = next) {
			next = s->next;
			free(s);
		}
		api->seen[i] = NULL;
	}
}

static long long min_ll(long long a, long long b)
{
	return a < b ? a : b;
}

/* The answer of changes (the shared one, or arr's), offered to the polls
 * of other nodes from the same revision; the node's view is kept for its
 * next poll. Frees nv, partial, arr and shared. */
static int changes_reply(struct api *api, struct api_ctx *c, uint64_t since,
			 uint64_t upto, struct chgbuf *arr, struct nodeview *nv,
			 struct idset *partial, char *shared,
			 struct touch *touch)
{
	char *body = shared;
	size_t n = arr->n;

	if (!shared && !arr->err &&
	    asprintf(&body,
		     "{\"revision\":%llu,\"snapshot\":false,\"changes\":[%s]}",
		     (unsigned long long)upto, arr->p ? arr->p : "") < 0)
		body = NULL;
	cb_free(arr);
	view_put(api, c->param, upto, nv, partial);
	/* touch NULL: a window touching a VPC this node does not get (no
	 * node that gets all the window's VPCs has this answer). */
	if (!shared && n && body && touch)
		answer_put(api, c->param, since, upto, &nv->vpcs, partial, body,
			   touch);
	free(c->resp->body);
	c->resp->status = body ? 200 : 500;
	c->resp->body = body;
	nodeview_free(nv);
	free(partial->v);
	return 0;
}

static int node_state(struct api *api, struct api_ctx *c)
{
	const struct api_req *r = c->req;
	const char *qs = r->query ? r->query(r->qarg, "since") : NULL;
	const char *qw = r->query ? r->query(r->qarg, "wait") : NULL;
	struct feed f = {.node = c->param};
	struct nodeips ni = {.api = api};
	uint64_t since, wait = 0, upto;
	struct nodeview nv = {0};
	struct idset partial = {0};
	bool viewed = false;
	char *shared = NULL;
	struct chgbuf arr = {0};
	json_object *top;
	long long deadline;
	/* A parked poll looks at its client at least every second. */
	int every = min_ll(api->seen_every_ms ?: API_SEEN_EVERY_MS, 1000);
	struct api_park pk = {
		.node = c->param,
		.every_ms = every,
		.client_fd = r->client_fd,
	};
	char key[128];
	int err;

	snprintf(key, sizeof(key), "node/%s", c->param);
	err = store_get(api->store, key, NULL, NULL);
	if (err == -ENOENT)
		return api_fail(c, 404, "not_found", NULL, "no node '%s'",
				c->param);
	if (err)
		return api_fail_store(c, err);
	if (qw && parse_u64(qw, API_WAIT_MAX, &wait))
		return api_fail(c, 400, "invalid_value", "wait",
				"wait must be 0 .. %d seconds", API_WAIT_MAX);
	if (qw && !qs)
		return api_fail(c, 400, "missing_field", "since",
				"wait needs since");
	node_seen(api, c->param, 0);
	if (!qs) {
		err = build_snapshot(api, c->param, false, &top);
		return err ? api_fail_store(c, err) : api_reply(c, 200, top);
	}
	if (parse_u64(qs, UINT64_MAX, &since))
		return api_fail(c, 400, "invalid_value", "since",
				"since must be a revision (an integer >= 0)");
	snprintf(f.node_prefix, sizeof(f.node_prefix), "np/%s/", c->param);
	f.node_prefix_len = strlen(f.node_prefix);
	snprintf(f.gw_prefix, sizeof(f.gw_prefix), "gw/%s/", c->param);
	f.gw_prefix_len = strlen(f.gw_prefix);
	/* A revision from a controller ahead of this one: let this copy
	 * catch up first (revisions are the same on every member). */
	if (since > store_revision(api->store))
		store_wait(api->store, since - 1, 1000);
	deadline = now_ms() + (long long)wait * 1000;
	pk.deadline_ms = deadline;
	/* A parked poll keeps its node alive. */
	node_seen(api, c->param, 1);
	viewed = view_get(api, c->param, since, &nv, &partial);
	for (;;) {
		long long left;

		shared = viewed ? answer_get(api, c->param, since, &nv.vpcs,
					     &partial, &upto)
				: NULL;
		if (shared)
			break;
		f.vpcs = viewed ? &nv.vpcs : NULL;
		f.foreign = false;
		err = feed_walk(api, &f, since, &upto);
		if (err == -ERANGE || f.need_snapshot)
			break;
		if (err < 0 || f.err) {
			err = err < 0 ? err : f.err;
			break;
		}
		/* Once per request: whatever changes the node's view later
		 * (its ports, its gateway duties, a mode switch) is in the
		 * next windows and answers a snapshot. */
		if (!viewed) {
			uint64_t r0 = store_revision(api->store);

			err = nodeview_load(api, c->param, &nv)
				      ?: partial_vpcs(api, &nv, &partial);
			if (err)
				break;
			if (store_revision(api->store) == r0)
				nv.rev = r0;
			viewed = true;
		}
		if (any_of(&f.switched, &nv.vpcs) ||
		    (f.np_new.n && !new_port_only(&f.np_new, &nv, since))) {
			f.need_snapshot = true;
			break;
		}
		f.switched.n = 0;
		f.np_new.n = 0;
		coalesce(&f);
		node_changes(&f, &nv, &partial, &ni, &arr);
		feed_free(&f);
		left = deadline - now_ms();
		if (arr.n || arr.err || left <= 0 || api->stopping)
			break;
		/* Nothing for this node up to upto: park until a change
		 * concerns it (api_wake.c), then look again. */
		since = upto;
		pk.since = upto;
		pk.vpcs = nv.vpcs.v;
		pk.n_vpcs = nv.vpcs.n;
		if (api_client_gone(r->client_fd) || api_park(api, &pk)) {
			pr_info("node %s: its agent left a parked poll",
				c->param);
			break;
		}
		if (pk.clean > since)
			since = pk.clean;
	}
	node_seen(api, c->param, -1);
	feed_free(&f);
	free(f.switched.v);
	free(f.np_new.v);
	ni_free(&ni);
	if (!shared && (err == -ERANGE || f.need_snapshot)) {
		cb_free(&arr);
		nodeview_free(&nv);
		free(partial.v);
		touch_reset(&f.touch);
		err = build_snapshot(api, c->param, true, &top);
		return err ? api_fail_store(c, err) : api_reply(c, 200, top);
	}
	if (!shared && err) {
		cb_free(&arr);
		nodeview_free(&nv);
		free(partial.v);
		touch_reset(&f.touch);
		return api_fail_store(c, err);
	}
	err = changes_reply(api, c, since, upto, &arr, &nv, &partial, shared,
			    f.foreign ? NULL : &f.touch);
	touch_reset(&f.touch);
	return err;
}

/* A node's state (snapshot or changes, docs/api.md), with the batching the
 * controller asks of its agent. */
int api_node_state(struct api *api, struct api_ctx *c)
{
	int ret = node_state(api, c);

	if (c->resp->status == 200)
		c->resp->batch_ms = batch_hint(api);
	return ret;
}
