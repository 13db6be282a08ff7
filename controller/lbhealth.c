// SPDX-License-Identifier: GPL-2.0-only
/* Reported backend health in the store (lbhealth.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lbhealth.h"
#include "log.h"
#include "netutil.h"

void lbh_key(char *buf, size_t len, uint32_t lb, __be32 ip, uint16_t port)
{
	snprintf(buf, len, LBH_PREFIX "%010u/%08x/%05u", lb, ntohl(ip), port);
}

void lbh_node_key(char *buf, size_t len, const char *node, uint32_t lb,
		  __be32 ip, uint16_t port)
{
	snprintf(buf, len, LBH_NODE_PREFIX "%s/%010u/%08x/%05u", node, lb,
		 ntohl(ip), port);
}

int lbh_parse_key(const char *key, uint32_t *lb, __be32 *ip, uint16_t *port)
{
	unsigned int l, a, p;
	int end = 0;

	if (!strncmp(key, LBH_NODE_PREFIX, strlen(LBH_NODE_PREFIX))) {
		key = strchr(key + strlen(LBH_NODE_PREFIX), '/');
		if (!key)
			return -EINVAL;
		key++;
	} else if (!strncmp(key, LBH_PREFIX, strlen(LBH_PREFIX))) {
		key += strlen(LBH_PREFIX);
	} else {
		return -EINVAL;
	}
	if (sscanf(key, "%10u/%8x/%5u%n", &l, &a, &p, &end) != 3 || key[end] ||
	    p > 0xffff)
		return -EINVAL;
	*lb = l;
	*ip = htonl(a);
	*port = p;
	return 0;
}

/* The JSON record at key; -ENOENT when absent, -EINVAL when damaged. */
static int load(struct store *s, const char *key, json_object **o,
		uint64_t *ver)
{
	char *val = NULL;
	int err = store_get(s, key, &val, ver);

	*o = NULL;
	if (err)
		return err;
	*o = json_tokener_parse(val);
	free(val);
	if (!*o || !json_object_is_type(*o, json_type_object)) {
		json_object_put(*o);
		*o = NULL;
		return -EINVAL;
	}
	return 0;
}

static int64_t jint(json_object *o, const char *field)
{
	return json_object_get_int64(json_object_object_get(o, field));
}

static const char *jstr(json_object *o, const char *field)
{
	json_object *v;

	if (!json_object_object_get_ex(o, field, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Records of a prefix, copied out of the listing (whose callback must not
 * call the store). */
struct recs {
	struct rec {
		char *key, *val;
		uint64_t ver;
	} * r;
	size_t n, cap;
	int err;
};

static int recs_add(const struct store_rec *sr, void *arg)
{
	struct recs *rs = arg;

	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? 2 * rs->cap : 16;
		struct rec *p = realloc(rs->r, cap * sizeof(*p));

		if (!p) {
			rs->err = -ENOMEM;
			return 1;
		}
		rs->r = p;
		rs->cap = cap;
	}
	rs->r[rs->n].key = strdup(sr->key);
	rs->r[rs->n].val = strdup(sr->val);
	rs->r[rs->n].ver = sr->version;
	if (!rs->r[rs->n].key || !rs->r[rs->n].val) {
		free(rs->r[rs->n].key);
		free(rs->r[rs->n].val);
		rs->err = -ENOMEM;
		return 1;
	}
	rs->n++;
	return 0;
}

static void recs_free(struct recs *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->r[i].key);
		free(rs->r[i].val);
	}
	free(rs->r);
	memset(rs, 0, sizeof(*rs));
}

static int recs_list(struct store *s, const char *prefix, struct recs *rs)
{
	int err = store_list(s, prefix, NULL, 0, recs_add, rs);

	return err < 0 ? err : rs->err;
}

/* The subnet of vpc holding ip: 1 with *sub, 0 when none. */
static int subnet_of(struct store *s, uint32_t vpc, __be32 ip, uint32_t *sub)
{
	struct recs rs = {0};
	char prefix[64], key[64];
	int err, found = 0;

	snprintf(prefix, sizeof(prefix), "vs/%010u/", vpc);
	err = recs_list(s, prefix, &rs);
	for (size_t i = 0; !err && !found && i < rs.n; i++) {
		json_object *o;
		__be32 net;
		__u8 plen;

		snprintf(key, sizeof(key), "subnet/%s",
			 strrchr(rs.r[i].key, '/') + 1);
		if (load(s, key, &o, NULL))
			continue;
		if (!xvpc_parse_cidr(jstr(o, "cidr") ?: "", &net, &plen) &&
		    xvpc_cidr_contains(net, plen, ip)) {
			*sub = jint(o, "id");
			found = 1;
		}
		json_object_put(o);
	}
	recs_free(&rs);
	return err < 0 ? err : found;
}

bool lbh_lb_has_backend(json_object *lb, __be32 ip, uint16_t port)
{
	json_object *be = json_object_object_get(lb, "backends");

	for (size_t j = 0; j < json_object_array_length(be); j++) {
		json_object *b = json_object_array_get_idx(be, j);
		__be32 bip;

		if (!xvpc_parse_ip(jstr(b, "ip") ?: "", &bip) && bip == ip &&
		    (jint(b, "port") ?: jint(lb, "port")) == port)
			return true;
	}
	return false;
}

int lbh_port_on(struct store *s, uint32_t vpc, __be32 ip, const char *node)
{
	json_object *ref, *port;
	const char *pn;
	char key[64];
	uint32_t sub;
	int err, on;

	err = subnet_of(s, vpc, ip, &sub);
	if (err <= 0)
		return err;
	snprintf(key, sizeof(key), "sip/%010u/%08x", sub, ntohl(ip));
	err = load(s, key, &ref, NULL);
	if (err)
		return err == -ENOENT || err == -EINVAL ? 0 : err;
	snprintf(key, sizeof(key), "port/%010u", (uint32_t)jint(ref, "port"));
	json_object_put(ref);
	err = load(s, key, &port, NULL);
	if (err)
		return err == -ENOENT || err == -EINVAL ? 0 : err;
	pn = jstr(port, "node");
	on = pn && !strcmp(pn, node) && (uint32_t)jint(port, "vpc") == vpc;
	json_object_put(port);
	return on;
}

json_object *lbh_mark_backends(struct store *s, uint32_t lb, int64_t lb_port,
			       json_object *backends)
{
	struct recs rs = {0};
	json_object *copy = NULL;
	char prefix[64];

	if (!json_object_is_type(backends, json_type_array))
		return json_object_new_array();
	snprintf(prefix, sizeof(prefix), LBH_PREFIX "%010u/", lb);
	/* A store error shows every backend up, as before any report. */
	if (recs_list(s, prefix, &rs) || !rs.n) {
		recs_free(&rs);
		return json_object_get(backends);
	}
	if (json_object_deep_copy(backends, &copy, NULL)) {
		recs_free(&rs);
		return NULL;
	}
	for (size_t j = 0; j < json_object_array_length(copy); j++) {
		json_object *b = json_object_array_get_idx(copy, j);
		int64_t port = jint(b, "port") ?: lb_port;
		__be32 ip;
		char key[64];

		if (xvpc_parse_ip(jstr(b, "ip") ?: "", &ip))
			continue;
		lbh_key(key, sizeof(key), lb, ip, port);
		for (size_t i = 0; i < rs.n; i++)
			if (!strcmp(rs.r[i].key, key))
				json_object_object_add(
					b, "healthy",
					json_object_new_boolean(0));
	}
	recs_free(&rs);
	return copy;
}

/* Deletes the record r (of lbh/) and its node index, unless it changed
 * meanwhile. */
static int drop(struct store *s, const struct rec *r)
{
	struct store_op ops[2] = {
		{STORE_DEL, r->key, NULL, 0, r->ver},
	};
	json_object *o = json_tokener_parse(r->val);
	const char *node = o ? jstr(o, "node") : NULL;
	uint32_t lb;
	__be32 ip;
	uint16_t port;
	char key[STORE_KEY_MAX];
	size_t n = 1;
	int err;

	if (node && !lbh_parse_key(r->key, &lb, &ip, &port)) {
		lbh_node_key(key, sizeof(key), node, lb, ip, port);
		if (!store_get(s, key, NULL, NULL))
			ops[n++] = (struct store_op){STORE_DEL, key, NULL, 0,
						     STORE_ANY};
	}
	err = store_txn(s, ops, n, NULL, NULL);
	json_object_put(o);
	return err == -ECANCELED ? 0 : err;
}

int lbh_clear_lb(struct store *s, uint32_t lb)
{
	struct recs rs = {0};
	char prefix[64];
	int err;

	snprintf(prefix, sizeof(prefix), LBH_PREFIX "%010u/", lb);
	err = recs_list(s, prefix, &rs);
	for (size_t i = 0; !err && i < rs.n; i++)
		err = drop(s, &rs.r[i]);
	recs_free(&rs);
	return err;
}

/* Whether node/<node> exists and is not marked down by the leader. */
static int node_up(struct store *s, const char *node)
{
	json_object *o;
	const char *st;
	char key[STORE_KEY_MAX];
	int err, up;

	snprintf(key, sizeof(key), "node/%s", node);
	err = load(s, key, &o, NULL);
	if (err)
		return err == -ENOENT || err == -EINVAL ? 0 : err;
	st = jstr(o, "status");
	up = !st || strcmp(st, "down");
	json_object_put(o);
	return up;
}

/* 1 when record r still stands, 0 when stale, or a store error. */
static int valid(struct store *s, const struct rec *r)
{
	json_object *o = json_tokener_parse(r->val), *l;
	const char *node = o ? jstr(o, "node") : NULL;
	char key[64];
	uint32_t lb, vpc;
	__be32 ip;
	uint16_t port;
	int ok;

	if (!node || lbh_parse_key(r->key, &lb, &ip, &port)) {
		json_object_put(o);
		return 0;
	}
	snprintf(key, sizeof(key), "lb/%010u", lb);
	ok = load(s, key, &l, NULL);
	if (ok) {
		json_object_put(o);
		return ok == -ENOENT || ok == -EINVAL ? 0 : ok;
	}
	vpc = jint(l, "vpc");
	ok = lbh_lb_has_backend(l, ip, port);
	json_object_put(l);
	if (!ok) {
		json_object_put(o);
		return 0;
	}
	ok = node_up(s, node);
	if (ok > 0)
		ok = lbh_port_on(s, vpc, ip, node);
	json_object_put(o);
	return ok;
}

int lbh_sweep(struct store *s, int *removed)
{
	struct recs rs = {0};
	int err, n = 0;

	err = recs_list(s, LBH_PREFIX, &rs);
	for (size_t i = 0; !err && i < rs.n; i++) {
		int ok = valid(s, &rs.r[i]);

		if (ok < 0) {
			err = ok;
		} else if (!ok) {
			err = drop(s, &rs.r[i]);
			n += !err;
		}
	}
	recs_free(&rs);
	if (removed)
		*removed = n;
	if (n)
		pr_info("load balancer health: cleared %d stale reports", n);
	return err;
}
