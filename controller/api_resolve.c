// SPDX-License-Identifier: GPL-2.0-only
/* POST /v1/nodes/{name}/resolve: a learn-mode node asks for the endpoints
 * it missed (docs/learning.md, docs/api.md).
 *
 *   {"endpoints": [{"vpc": 7, "ip": "10.7.0.5"}, ...]}      1 .. 1024
 *   -> {"revision": R,
 *       "endpoints": [{"vpc", "ip", "mac", "node_ip", "vni"}, ...],
 *       "missing": [{"vpc", "ip"}, ...]}
 *
 * Only the VPCs the node is entitled to (it hosts a bound port in it or is
 * one of its gateways) are answered; any other query is "missing", as is
 * an address with no bound port, so a node never learns another tenant's
 * endpoints. Served from the member's copy of the store, by key: per VPC
 * its subnets once (vs/<vpc>/), then per query the subnet holding the
 * address, its sip/<subnet>/<ip> index record, the port and its node. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"
#include "log.h"
#include "netutil.h"

#define RESOLVE_MAX   1024
#define RESOLVE_NODES 64 /* node addresses cached per request */

struct rs_subnet {
	uint32_t id, vni;
	__be32 net;
	__u8 plen;
};

/* One entitled VPC and its subnets, read once per request. */
struct rs_vpc {
	uint32_t id;
	bool loaded;
	struct rs_subnet *sub; /* malloc'd */
	int n_sub, cap_sub;
	int err;
};

/* A direct-mapped cache slot (by a hash of the name). */
struct rs_node {
	char name[64];		 /* "" when free */
	char ip[XVPC_IP_STRLEN]; /* "" when unknown */
};

struct resolver {
	struct api *api;
	struct rs_vpc *vpcs;
	size_t n_vpcs;
	struct rs_node *nodes; /* RESOLVE_NODES slots */
	int err;	       /* a store error: the request fails */
};

static int add_subnet(const struct store_rec *r, void *arg)
{
	struct rs_vpc *v = arg;

	if (v->n_sub == v->cap_sub) {
		int cap = v->cap_sub ? 2 * v->cap_sub : 8;
		struct rs_subnet *p = realloc(v->sub, cap * sizeof(*p));

		if (!p) {
			v->err = -ENOMEM;
			return 1;
		}
		v->sub = p;
		v->cap_sub = cap;
	}
	/* A listing callback must not call the store: the id now, the
	 * record afterwards (sub_fill). */
	v->sub[v->n_sub++].id = strtoul(strrchr(r->key, '/') + 1, NULL, 10);
	return 0;
}

/* Reads the subnet records of v (after the listing). */
static void sub_fill(struct resolver *rs, struct rs_vpc *v)
{
	int out = 0;

	for (int i = 0; i < v->n_sub; i++) {
		struct rs_subnet s = v->sub[i];
		char key[64];
		json_object *o;

		snprintf(key, sizeof(key), KF_ID, "subnet", s.id);
		if (api_load(rs->api, key, &o, NULL))
			continue;
		s.vni = api_int(o, "vni");
		if (!xvpc_parse_cidr(api_str(o, "cidr"), &s.net, &s.plen))
			v->sub[out++] = s;
		json_object_put(o);
	}
	v->n_sub = out;
}

static struct rs_vpc *rs_vpc(struct resolver *rs, uint32_t id)
{
	char prefix[64];

	for (size_t i = 0; i < rs->n_vpcs; i++) {
		struct rs_vpc *v = &rs->vpcs[i];

		if (v->id != id)
			continue;
		if (!v->loaded) {
			int err;

			snprintf(prefix, sizeof(prefix), "vs/%010u/", id);
			v->n_sub = 0;
			err = store_list(rs->api->store, prefix, NULL, 0,
					 add_subnet, v);
			if (err < 0 || v->err) {
				/* Not "missing": the answer would lie. */
				rs->err = err < 0 ? err : v->err;
				v->n_sub = 0;
			}
			sub_fill(rs, v);
			v->loaded = true;
		}
		return v;
	}
	return NULL; /* not entitled */
}

static const char *rs_node_ip(struct resolver *rs, const char *name)
{
	uint32_t h = 2166136261u;
	struct rs_node *n;
	char key[128];
	json_object *o;

	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	n = &rs->nodes[h % RESOLVE_NODES];
	if (!strcmp(n->name, name))
		return n->ip[0] ? n->ip : NULL;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->ip[0] = '\0';
	snprintf(key, sizeof(key), "node/%s", name);
	if (!api_load(rs->api, key, &o, NULL)) {
		snprintf(n->ip, sizeof(n->ip), "%s", api_str(o, "ip") ?: "");
		json_object_put(o);
	}
	return n->ip[0] ? n->ip : NULL;
}

/* The endpoint (vpc, ip) as the answer lists it, or NULL. */
static json_object *rs_lookup(struct resolver *rs, uint32_t vpc, __be32 ip)
{
	struct rs_vpc *v = rs_vpc(rs, vpc);
	const struct rs_subnet *s = NULL;
	json_object *ref, *port, *e = NULL;
	const char *node, *nip;
	char key[64];

	for (int i = 0; v && i < v->n_sub; i++)
		if (xvpc_cidr_contains(v->sub[i].net, v->sub[i].plen, ip))
			s = &v->sub[i];
	if (!s)
		return NULL;
	snprintf(key, sizeof(key), "sip/%010u/%08x", s->id, ntohl(ip));
	if (api_load(rs->api, key, &ref, NULL))
		return NULL;
	snprintf(key, sizeof(key), KF_ID, "port",
		 (uint32_t)api_int(ref, "port"));
	json_object_put(ref);
	if (api_load(rs->api, key, &port, NULL))
		return NULL;
	node = api_str(port, "node");
	nip = node ? rs_node_ip(rs, node) : NULL;
	if (nip && (uint32_t)api_int(port, "vpc") == vpc) {
		e = json_object_new_object();
		json_object_object_add(e, "vpc", json_object_new_int64(vpc));
		json_object_object_add(
			e, "ip", json_object_new_string(api_str(port, "ip")));
		json_object_object_add(
			e, "mac",
			json_object_new_string(api_str(port, "mac") ?: ""));
		json_object_object_add(e, "node_ip",
				       json_object_new_string(nip));
		json_object_object_add(e, "vni", json_object_new_int64(s->vni));
	}
	json_object_put(port);
	return e;
}

/* Checks one query; fills the response and returns -1 when it is bad. */
static int check_query(struct api_ctx *c, json_object *q, size_t i,
		       uint32_t *vpc, __be32 *ip)
{
	json_object *v, *a;
	char field[64];
	int64_t id;

	snprintf(field, sizeof(field), "endpoints[%zu]", i);
	if (!json_object_is_type(q, json_type_object))
		return api_fail(c, 400, "invalid_type", field,
				"%s must be an object {\"vpc\", \"ip\"}",
				field);
	json_object_object_foreach(q, key, val)
	{
		(void)val;
		if (strcmp(key, "vpc") && strcmp(key, "ip")) {
			snprintf(field, sizeof(field), "endpoints[%zu].%.32s",
				 i, key);
			return api_fail(c, 400, "unknown_field", field,
					"unknown field '%s'", field);
		}
	}
	snprintf(field, sizeof(field), "endpoints[%zu].vpc", i);
	if (!json_object_object_get_ex(q, "vpc", &v))
		return api_fail(c, 400, "missing_field", field,
				"field '%s' is required", field);
	id = json_object_get_int64(v);
	if (!json_object_is_type(v, json_type_int) || id < 1 || id > ID_MAX)
		return api_fail(c, 400, "invalid_value", field,
				"%s must be a VPC id (1 .. %u)", field, ID_MAX);
	snprintf(field, sizeof(field), "endpoints[%zu].ip", i);
	if (!json_object_object_get_ex(q, "ip", &a))
		return api_fail(c, 400, "missing_field", field,
				"field '%s' is required", field);
	if (!json_object_is_type(a, json_type_string) ||
	    xvpc_parse_ip(json_object_get_string(a), ip))
		return api_fail(c, 400, "invalid_value", field,
				"%s must be an IPv4 address as a string",
				field);
	*vpc = id;
	return 0;
}

static const struct api_field resolve_fields[] = {
	{"endpoints", F_ARRAY, true, false},
	{NULL, 0, false, false},
};

struct query {
	uint32_t vpc;
	__be32 ip;
};

/* Checks every query before answering any: a bad body answers nothing.
 * On success *qs (malloc'd) holds the *n queries. */
static int check_queries(struct api_ctx *c, json_object *arr, struct query **qs,
			 size_t *n)
{
	*n = json_object_array_length(arr);
	*qs = NULL;
	if (*n < 1 || *n > RESOLVE_MAX)
		return api_fail(c, 400, "invalid_value", "endpoints",
				"endpoints must list 1 .. %d queries, not %zu",
				RESOLVE_MAX, *n);
	*qs = calloc(*n, sizeof(**qs));
	if (!*qs)
		return api_fail(c, 500, "internal", NULL, "out of memory");
	for (size_t i = 0; i < *n; i++)
		if (check_query(c, json_object_array_get_idx(arr, i), i,
				&(*qs)[i].vpc, &(*qs)[i].ip)) {
			free(*qs);
			*qs = NULL;
			return -1;
		}
	return 0;
}

static void add_missing(json_object *arr, uint32_t vpc, __be32 ip)
{
	json_object *m = json_object_new_object();
	char buf[XVPC_IP_STRLEN];

	json_object_object_add(m, "vpc", json_object_new_int64(vpc));
	json_object_object_add(m, "ip",
			       json_object_new_string(xvpc_fmt_ip(ip, buf)));
	json_object_array_add(arr, m);
}

static int answer(struct api *api, struct api_ctx *c, const struct query *qs,
		  size_t n)
{
	struct resolver rs = {.api = api};
	uint64_t rev = store_revision(api->store);
	json_object *top, *found, *missing;
	uint32_t *ids = NULL;
	size_t n_ids = 0;
	int err;

	err = api_node_entitled(api, c->param, &ids, &n_ids);
	if (err)
		return api_fail_store(c, err);
	rs.vpcs = calloc(n_ids ?: 1, sizeof(*rs.vpcs));
	rs.nodes = calloc(RESOLVE_NODES, sizeof(*rs.nodes));
	if (!rs.vpcs || !rs.nodes) {
		free(rs.vpcs);
		free(rs.nodes);
		free(ids);
		return api_fail(c, 500, "internal", NULL, "out of memory");
	}
	for (size_t i = 0; i < n_ids; i++)
		rs.vpcs[i].id = ids[i];
	rs.n_vpcs = n_ids;
	free(ids);
	found = json_object_new_array();
	missing = json_object_new_array();
	for (size_t i = 0; i < n && !rs.err; i++) {
		json_object *e = rs_lookup(&rs, qs[i].vpc, qs[i].ip);

		if (e)
			json_object_array_add(found, e);
		else
			add_missing(missing, qs[i].vpc, qs[i].ip);
	}
	for (size_t i = 0; i < rs.n_vpcs; i++)
		free(rs.vpcs[i].sub);
	free(rs.vpcs);
	free(rs.nodes);
	if (rs.err) {
		json_object_put(found);
		json_object_put(missing);
		return api_fail_store(c, rs.err);
	}
	top = json_object_new_object();
	json_object_object_add(top, "revision", json_object_new_int64(rev));
	json_object_object_add(top, "endpoints", found);
	json_object_object_add(top, "missing", missing);
	return api_reply(c, 200, top);
}

int api_node_resolve(struct api *api, struct api_ctx *c)
{
	struct query *qs;
	json_object *body;
	char key[128];
	size_t n;
	int err, ret;

	snprintf(key, sizeof(key), "node/%s", c->param);
	err = store_get(api->store, key, NULL, NULL);
	if (err == -ENOENT)
		return api_fail(c, 404, "not_found", NULL, "no node '%s'",
				c->param);
	if (err)
		return api_fail_store(c, err);
	if (api_parse_body(c, resolve_fields, false, &body))
		return -1;
	ret = check_queries(c, json_object_object_get(body, "endpoints"), &qs,
			    &n);
	json_object_put(body);
	if (ret)
		return ret;
	ret = answer(api, c, qs, n);
	free(qs);
	return ret;
}
