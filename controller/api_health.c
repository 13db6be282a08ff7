// SPDX-License-Identifier: GPL-2.0-only
/* POST /v1/nodes/{name}/health: the agent next to load balancer backends
 * reports their health (docs/loadbalancer.md, "Health reports",
 * docs/api.md).
 *
 *   {"full": bool,
 *    "backends": [{"loadbalancer": 7, "address": "10.0.1.5", "port": 80,
 *                  "healthy": false}, ...]}                   0 .. 1024
 *   -> {"revision": R, "changed": N}
 *
 * A node reports only backends that are ports bound to itself in the load
 * balancer's VPC (so no node can take another node's backends out), and
 * only (address, port) pairs the load balancer has. The whole report is
 * checked before anything is written: one bad item refuses it all, naming
 * the item. "full": true is the node's complete set: its earlier reports
 * not in it are cleared. Only transitions are written (lbhealth.h), in one
 * transaction; a report that changes nothing commits nothing. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"
#include "lbhealth.h"
#include "log.h"
#include "netutil.h"

#define HEALTH_MAX 1024

struct item {
	uint32_t lb, vpc;
	__be32 ip;
	uint16_t port;
	bool healthy;
};

static const struct api_field health_fields[] = {
	{"full", F_BOOL, false, false},
	{"backends", F_ARRAY, true, false},
	{NULL, 0, false, false},
};

static const char *const item_fields[] = {"loadbalancer", "address", "port",
					  "healthy", NULL};

/* The field of item i, or -1 with a 400 when it is missing. */
static int item_get(struct api_ctx *c, json_object *q, size_t i,
		    const char *name, json_object **v)
{
	char field[64];

	snprintf(field, sizeof(field), "backends[%zu].%s", i, name);
	if (json_object_object_get_ex(q, name, v))
		return 0;
	return api_fail(c, 400, "missing_field", field,
			"field '%s' is required", field);
}

/* Checks the shape of item i. */
static int check_item(struct api_ctx *c, json_object *q, size_t i,
		      struct item *it)
{
	json_object *l, *a, *p, *h;
	char field[64];
	int64_t v;

	snprintf(field, sizeof(field), "backends[%zu]", i);
	if (!json_object_is_type(q, json_type_object))
		return api_fail(c, 400, "invalid_type", field,
				"%s must be an object {\"loadbalancer\", "
				"\"address\", \"port\", \"healthy\"}",
				field);
	json_object_object_foreach(q, key, val)
	{
		int k = 0;

		(void)val;
		while (item_fields[k] && strcmp(item_fields[k], key))
			k++;
		if (!item_fields[k]) {
			snprintf(field, sizeof(field), "backends[%zu].%.32s", i,
				 key);
			return api_fail(c, 400, "unknown_field", field,
					"unknown field '%s'", field);
		}
	}
	if (item_get(c, q, i, "loadbalancer", &l) ||
	    item_get(c, q, i, "address", &a) || item_get(c, q, i, "port", &p) ||
	    item_get(c, q, i, "healthy", &h))
		return -1;
	v = json_object_get_int64(l);
	snprintf(field, sizeof(field), "backends[%zu].loadbalancer", i);
	if (!json_object_is_type(l, json_type_int) || v < 1 || v > ID_MAX)
		return api_fail(c, 400, "invalid_value", field,
				"%s must be a load balancer id (1 .. %u)",
				field, ID_MAX);
	it->lb = v;
	snprintf(field, sizeof(field), "backends[%zu].address", i);
	if (!json_object_is_type(a, json_type_string) ||
	    xvpc_parse_ip(json_object_get_string(a), &it->ip))
		return api_fail(c, 400, "invalid_value", field,
				"%s must be an IPv4 address as a string",
				field);
	v = json_object_get_int64(p);
	snprintf(field, sizeof(field), "backends[%zu].port", i);
	if (!json_object_is_type(p, json_type_int) || v < 1 || v > 65535)
		return api_fail(c, 400, "invalid_value", field,
				"%s must be a port (1 .. 65535)", field);
	it->port = v;
	snprintf(field, sizeof(field), "backends[%zu].healthy", i);
	if (!json_object_is_type(h, json_type_boolean))
		return api_fail(c, 400, "invalid_type", field,
				"%s must be a boolean", field);
	it->healthy = json_object_get_boolean(h);
	return 0;
}

/* The load balancer records a report names, each read once. */
struct lb_cache {
	struct {
		uint32_t id;
		json_object *o;
	} * e;
	size_t n;
};

static void lb_cache_free(struct lb_cache *lc)
{
	for (size_t i = 0; i < lc->n; i++)
		json_object_put(lc->e[i].o);
	free(lc->e);
}

/* Load balancer id from the cache or the store (then cached; the cache
 * has room for every item of the report). */
static int lb_get(struct api *api, struct lb_cache *lc, uint32_t id,
		  json_object **o)
{
	char key[64];
	int err;

	for (size_t i = 0; i < lc->n; i++)
		if (lc->e[i].id == id) {
			*o = lc->e[i].o;
			return 0;
		}
	snprintf(key, sizeof(key), KF_ID, "lb", id);
	err = api_load(api, key, o, NULL);
	if (!err) {
		lc->e[lc->n].id = id;
		lc->e[lc->n++].o = *o;
	}
	return err;
}

/* Checks item i against the store: its load balancer, that it is one of
 * its backends, and that the backend is a port of this node. */
static int check_owner(struct api *api, struct api_ctx *c, struct lb_cache *lc,
		       size_t i, struct item *it)
{
	char field[64], ip[XVPC_IP_STRLEN];
	json_object *lb;
	int err;

	snprintf(field, sizeof(field), "backends[%zu].loadbalancer", i);
	err = lb_get(api, lc, it->lb, &lb);
	if (err == -ENOENT)
		return api_fail(c, 404, "not_found", field,
				"%s: no load balancer %u", field, it->lb);
	if (err)
		return api_fail_store(c, err);
	it->vpc = api_int(lb, "vpc");
	xvpc_fmt_ip(it->ip, ip);
	snprintf(field, sizeof(field), "backends[%zu]", i);
	if (!lbh_lb_has_backend(lb, it->ip, it->port))
		return api_fail(c, 400, "invalid_value", field,
				"%s: %s:%u is not a backend of load balancer "
				"%u",
				field, ip, it->port, it->lb);
	err = lbh_port_on(api->store, it->vpc, it->ip, c->param);
	if (err < 0)
		return api_fail_store(c, err);
	snprintf(field, sizeof(field), "backends[%zu].address", i);
	if (!err)
		return api_fail(c, 403, "forbidden", field,
				"%s: %s is not a port bound to node '%s' in "
				"VPC %u: a node reports only its own "
				"backends",
				field, ip, c->param, it->vpc);
	return 0;
}

static bool same(const struct item *a, const struct item *b)
{
	return a->lb == b->lb && a->ip == b->ip && a->port == b->port;
}

/* Checks the whole report; *its (malloc'd) gets its *n items. */
static int check_report(struct api *api, struct api_ctx *c, json_object *arr,
			struct item **its, size_t *n)
{
	struct lb_cache lc = {0};

	*n = json_object_array_length(arr);
	*its = NULL;
	if (*n > HEALTH_MAX)
		return api_fail(c, 400, "invalid_value", "backends",
				"backends must list at most %d backends, not "
				"%zu",
				HEALTH_MAX, *n);
	*its = calloc(*n ?: 1, sizeof(**its));
	if (!*its)
		return api_fail(c, 500, "internal", NULL, "out of memory");
	for (size_t i = 0; i < *n; i++) {
		char field[32];

		if (check_item(c, json_object_array_get_idx(arr, i), i,
			       &(*its)[i]))
			goto bad;
		for (size_t k = 0; k < i; k++)
			if (same(&(*its)[k], &(*its)[i])) {
				snprintf(field, sizeof(field), "backends[%zu]",
					 i);
				api_fail(c, 400, "invalid_value", field,
					 "%s repeats backends[%zu]", field, k);
				goto bad;
			}
	}
	lc.e = calloc(*n ?: 1, sizeof(*lc.e));
	if (!lc.e) {
		api_fail(c, 500, "internal", NULL, "out of memory");
		goto bad;
	}
	for (size_t i = 0; i < *n; i++)
		if (check_owner(api, c, &lc, i, &(*its)[i]))
			goto bad;
	lb_cache_free(&lc);
	return 0;
bad:
	lb_cache_free(&lc);
	free(*its);
	*its = NULL;
	return -1;
}

/* The ops of one commit, with their keys and values. */
struct batch {
	struct store_op *ops;
	char **strs;
	size_t n, cap, n_strs;
};

static int batch_add(struct batch *b, enum store_op_type type, const char *key,
		     const char *val, uint64_t expect)
{
	char *k = strdup(key), *v = val ? strdup(val) : NULL;

	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 16;
		struct store_op *o = realloc(b->ops, cap * sizeof(*o));
		char **s = o ? realloc(b->strs, 2 * cap * sizeof(*s)) : NULL;

		if (o)
			b->ops = o;
		if (s)
			b->strs = s;
		if (!o || !s) {
			free(k);
			free(v);
			return -ENOMEM;
		}
		b->cap = cap;
	}
	if (!k || (val && !v)) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	b->strs[b->n_strs++] = k;
	if (v)
		b->strs[b->n_strs++] = v;
	b->ops[b->n++] =
		(struct store_op){type, k, v, v ? strlen(v) : 0, expect};
	return 0;
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n_strs; i++)
		free(b->strs[i]);
	free(b->strs);
	free(b->ops);
	memset(b, 0, sizeof(*b));
}

/* Adds the deletion of the down record at key (version ver, by node
 * `owner`) and of its node index. */
static int add_clear(struct api *api, struct batch *b, const char *key,
		     uint64_t ver, const char *owner)
{
	char nkey[STORE_KEY_MAX];
	uint32_t lb;
	__be32 ip;
	uint16_t port;
	int err = batch_add(b, STORE_DEL, key, NULL, ver);

	if (err || !owner || lbh_parse_key(key, &lb, &ip, &port))
		return err;
	lbh_node_key(nkey, sizeof(nkey), owner, lb, ip, port);
	if (store_get(api->store, nkey, NULL, NULL))
		return 0;
	return batch_add(b, STORE_DEL, nkey, NULL, STORE_ANY);
}

/* The down record of item it, reported by this node. */
static json_object *down_rec(struct api_ctx *c, const struct item *it)
{
	json_object *o = json_object_new_object();
	char ip[XVPC_IP_STRLEN];

	json_object_object_add(o, "lb", json_object_new_int64(it->lb));
	json_object_object_add(o, "vpc", json_object_new_int64(it->vpc));
	json_object_object_add(o, "node", json_object_new_string(c->param));
	json_object_object_add(o, "ip",
			       json_object_new_string(xvpc_fmt_ip(it->ip, ip)));
	json_object_object_add(o, "port", json_object_new_int64(it->port));
	return o;
}

/* Adds the ops that bring item it to its reported state, if any (a
 * record of another node, from before the backend moved here, is taken
 * over); *changed counts the items that change. */
static int add_item(struct api *api, struct api_ctx *c, struct batch *b,
		    const struct item *it, size_t *changed)
{
	char key[64], nkey[STORE_KEY_MAX];
	const char *owner = NULL;
	json_object *o = NULL, *rec;
	uint64_t ver = STORE_ABSENT;
	int err;

	lbh_key(key, sizeof(key), it->lb, it->ip, it->port);
	err = api_load(api, key, &o, &ver);
	if (err && err != -ENOENT)
		return err;
	if (err)
		ver = STORE_ABSENT;
	err = 0;
	if (o)
		owner = api_str(o, "node");
	if (!o == it->healthy &&
	    (it->healthy || (owner && !strcmp(owner, c->param)))) {
		json_object_put(o);
		return 0; /* as reported already */
	}
	(*changed)++;
	if (it->healthy) {
		err = add_clear(api, b, key, ver, owner);
		json_object_put(o);
		return err;
	}
	/* Down: new, or taken over from another node. */
	if (o && owner) {
		lbh_node_key(nkey, sizeof(nkey), owner, it->lb, it->ip,
			     it->port);
		if (!store_get(api->store, nkey, NULL, NULL))
			err = batch_add(b, STORE_DEL, nkey, NULL, STORE_ANY);
	}
	json_object_put(o);
	rec = down_rec(c, it);
	err = err
		      ?: batch_add(b, STORE_PUT, key,
				   json_object_to_json_string_ext(
					   rec, JSON_C_TO_STRING_PLAIN),
				   ver);
	json_object_put(rec);
	lbh_node_key(nkey, sizeof(nkey), c->param, it->lb, it->ip, it->port);
	if (!err && store_get(api->store, nkey, NULL, NULL) == -ENOENT)
		err = batch_add(b, STORE_PUT, nkey, "{}", STORE_ABSENT);
	return err;
}

struct node_recs {
	char (*k)[STORE_KEY_MAX];
	size_t n, cap;
	int err;
};

static int node_rec(const struct store_rec *r, void *arg)
{
	struct node_recs *nr = arg;

	if (nr->n == nr->cap) {
		size_t cap = nr->cap ? 2 * nr->cap : 16;
		void *p = realloc(nr->k, cap * sizeof(*nr->k));

		if (!p) {
			nr->err = -ENOMEM;
			return 1;
		}
		nr->k = p;
		nr->cap = cap;
	}
	snprintf(nr->k[nr->n++], sizeof(nr->k[0]), "%s", r->key);
	return 0;
}

/* A full report: clears this node's records that it does not list. */
static int add_rest(struct api *api, struct api_ctx *c, struct batch *b,
		    const struct item *its, size_t n, size_t *changed)
{
	struct node_recs nr = {0};
	char prefix[STORE_KEY_MAX], key[64];
	int err;

	snprintf(prefix, sizeof(prefix), LBH_NODE_PREFIX "%s/", c->param);
	err = store_list(api->store, prefix, NULL, 0, node_rec, &nr);
	if (err >= 0)
		err = nr.err;
	for (size_t i = 0; !err && i < nr.n; i++) {
		struct item it = {0};
		bool listed = false;
		uint64_t ver;

		if (lbh_parse_key(nr.k[i], &it.lb, &it.ip, &it.port))
			continue;
		for (size_t k = 0; k < n && !listed; k++)
			listed = same(&its[k], &it);
		if (listed)
			continue;
		lbh_key(key, sizeof(key), it.lb, it.ip, it.port);
		err = store_get(api->store, key, NULL, &ver);
		if (err == -ENOENT) { /* the index alone */
			err = batch_add(b, STORE_DEL, nr.k[i], NULL, STORE_ANY);
		} else if (!err) {
			err = add_clear(api, b, key, ver, c->param);
			(*changed)++;
		}
	}
	free(nr.k);
	return err;
}

static int report_once(struct api *api, struct api_ctx *c,
		       const struct item *its, size_t n, bool full,
		       size_t *changed)
{
	struct batch b = {0};
	int err = 0;

	*changed = 0;
	for (size_t i = 0; !err && i < n; i++)
		err = add_item(api, c, &b, &its[i], changed);
	if (!err && full)
		err = add_rest(api, c, &b, its, n, changed);
	if (!err && b.n)
		err = store_txn(api->store, b.ops, b.n, NULL, NULL);
	batch_free(&b);
	return err;
}

int api_node_health(struct api *api, struct api_ctx *c)
{
	struct item *its = NULL;
	json_object *body, *top;
	size_t n, changed = 0;
	char key[128];
	bool full;
	int err, ret;

	snprintf(key, sizeof(key), "node/%s", c->param);
	err = store_get(api->store, key, NULL, NULL);
	if (err == -ENOENT)
		return api_fail(c, 404, "not_found", NULL, "no node '%s'",
				c->param);
	if (err)
		return api_fail_store(c, err);
	if (api_parse_body(c, health_fields, false, &body))
		return -1;
	full = json_object_get_boolean(json_object_object_get(body, "full"));
	ret = check_report(api, c, json_object_object_get(body, "backends"),
			   &its, &n);
	json_object_put(body);
	if (ret)
		return ret;
	err = -ECANCELED;
	for (int i = 0; err == -ECANCELED && i < API_RETRIES; i++)
		err = report_once(api, c, its, n, full, &changed);
	free(its);
	if (err)
		return api_fail_store(c, err);
	if (changed)
		pr_debug("api: node %s reported backend health (%zu changes%s)",
			 c->param, changed, full ? ", full" : "");
	top = json_object_new_object();
	json_object_object_add(
		top, "revision",
		json_object_new_int64(store_revision(api->store)));
	json_object_object_add(top, "changed", json_object_new_int64(changed));
	return api_reply(c, 200, top);
}
