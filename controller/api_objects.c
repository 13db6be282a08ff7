// SPDX-License-Identifier: GPL-2.0-only
/* Tenants' objects: VPCs, subnets, ports.
 *
 * Records (JSON) and the index keys written with them in one transaction:
 *   vpc/<id>     tv/<tenant>/<id>
 *   subnet/<id>  ts/<tenant>/<id>, vs/<vpc>/<id>, vni/<vni>
 *   port/<id>    sip/<subnet>/<ip>; its tp/<tenant>/<id>, vp/<vpc>/<id>
 *                and (while bound) np/<node>/<id> are derived by the
 *                store's copy (store_mem.h)
 * Races are settled by version checks: creating a subnet rewrites its VPC
 * (so overlap checks and VPC deletion serialize), a port checks its subnet
 * version and its address key, and deleting a subnet first marks it
 * (`_deleting`) so no port is added while it looks for ports. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_priv.h"
#include "gateways.h"
#include "log.h"
#include "netutil.h"

#define VNI_MAX 16777215u

static int reply_owned(struct api *api, struct api_ctx *c, const char *kind,
		       uint32_t id, int status)
{
	json_object *o, *p;

	if (api_load_owned(api, c, kind, id, &o, NULL, NULL))
		return -1;
	p = api_public(o);
	json_object_put(o);
	return api_reply(c, status, p);
}

static int bad_name(struct api_ctx *c)
{
	return api_fail(c, 400, "invalid_value", "name",
			"name must be 1 .. 63 characters of A-Z a-z 0-9 . _ -");
}

static int has_any_cb(const struct store_rec *r, void *arg)
{
	(void)r;
	*(int *)arg = 1;
	return 1;
}

static int has_any(struct api *api, const char *prefix)
{
	int found = 0;
	int err = store_list(api->store, prefix, NULL, 1, has_any_cb, &found);

	return err < 0 ? err : found;
}

/* Runs attempt() until it stops answering -EAGAIN (a lost race). */
#define RETRY(call)                                                           \
	({                                                                    \
		int __r = -EAGAIN;                                            \
		for (int __i = 0; __r == -EAGAIN && __i < API_RETRIES; __i++) \
			__r = (call);                                         \
		__r == -EAGAIN ? api_fail_store(c, -EAGAIN) : __r;            \
	})

/* Common PATCH of `name` (the only field the kind allows changing, besides
 * a port's binding). */
static int patch_name_once(struct api *api, struct api_ctx *c, const char *kind,
			   uint32_t id, const char *name)
{
	struct api_txb t = {0};
	json_object *o, *p;
	char key[64];
	uint64_t ver;
	int err;

	if (api_load_owned(api, c, kind, id, &o, &ver, NULL))
		return -1;
	if (name)
		json_object_object_add(o, "name", json_object_new_string(name));
	snprintf(key, sizeof(key), KF_ID, kind, id);
	api_txb_put(&t, key, o, ver);
	err = api_txb_commit(api, &t);
	if (err) {
		json_object_put(o);
		return err == -ECANCELED ? -EAGAIN : api_fail_store(c, err);
	}
	p = api_public(o);
	json_object_put(o);
	return api_reply(c, 200, p);
}

static int patch_name(struct api *api, struct api_ctx *c, const char *kind,
		      const struct api_field *fields)
{
	json_object *body;
	const char *name;
	uint32_t id;
	int ret;

	if (api_param_id(c, &id) || api_parse_body(c, fields, true, &body))
		return -1;
	name = api_str(body, "name");
	if (name && !api_valid_name(name))
		ret = bad_name(c);
	else
		ret = RETRY(patch_name_once(api, c, kind, id, name));
	json_object_put(body);
	return ret;
}

static int list_owned(struct api *api, struct api_ctx *c, const char *idx,
		      const char *kind)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "%s/%010u/", idx, c->tenant);
	return api_list_reply(api, c, prefix, kind);
}

/* ---- VPCs ---------------------------------------------------------- */

static const struct api_field vpc_fields[] = {
	{"name", F_STR, true, true},
	{"cidr", F_STR, true, false},
	{"mode", F_STR, false, true},
	{NULL, 0, false, false},
};

static int bad_mode(struct api_ctx *c, const char *mode)
{
	return api_fail(c, 400, "invalid_value", "mode",
			"mode must be \"push\" or \"learn\", not \"%s\"", mode);
}

static bool valid_mode(const char *mode)
{
	return !strcmp(mode, "push") || !strcmp(mode, "learn");
}

/* Designates the gateways of a VPC entering learn mode (gateways.h) and
 * adds them to its record o and the index changes to t. old: the
 * record's current list, or NULL. */
static int vpc_designate(struct api *api, struct api_txb *t, uint32_t id,
			 json_object *o, json_object *old)
{
	char names[GW_MAX][GW_NAME], keys[2 * GW_MAX][GW_NAME + 32];
	struct store_op ops[2 * GW_MAX];
	struct gw_view *v;
	size_t n;
	int count, err;

	err = gw_view_load(api->store, &v);
	if (err)
		return err;
	gw_pick(v, id, old, api->vpc_gateways ?: GW_DEFAULT, names, &count);
	gw_view_free(v);
	n = gw_index_ops(api->store, id, old, names, count, ops, keys);
	for (size_t i = 0; i < n; i++) {
		if (ops[i].type == STORE_DEL)
			api_txb_op(t, STORE_DEL, ops[i].key, STORE_ANY);
		else
			api_txb_ref(t, ops[i].key, NULL, 0, STORE_ANY);
	}
	gw_set(o, names, count);
	return 0;
}

/* Drops the gateways of a VPC leaving learn mode or being deleted. */
static void vpc_drop_gateways(struct api *api, struct api_txb *t, uint32_t id,
			      json_object *o)
{
	char keys[2 * GW_MAX][GW_NAME + 32];
	struct store_op ops[2 * GW_MAX];
	json_object *old = NULL;
	size_t n;

	if (!json_object_object_get_ex(o, "gateways", &old) ||
	    !json_object_is_type(old, json_type_array))
		return;
	n = gw_index_ops(api->store, id, old, NULL, 0, ops, keys);
	for (size_t i = 0; i < n; i++)
		api_txb_op(t, STORE_DEL, ops[i].key, STORE_ANY);
	json_object_object_del(o, "gateways");
}

static int vpc_create_once(struct api *api, struct api_ctx *c,
			   json_object *body)
{
	struct api_txb t = {0};
	char idem[256], key[64];
	json_object *o;
	uint32_t id;
	int err;

	if (api_idem_lookup(api, c, "vpc", idem, sizeof(idem), &id))
		return -1;
	if (id)
		return reply_owned(api, c, "vpc", id, 200);
	err = api_seq_next(api, "vpc", &id);
	if (err) {
		api_strs_free(&t.strs);
		return err == -ENOSPC ? api_fail(c, 507, "exhausted", NULL,
						 "no VPC ids left")
				      : api_fail_store(c, err);
	}
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "tenant", json_object_new_int64(c->tenant));
	json_object_object_add(o, "name",
			       json_object_new_string(api_str(body, "name")));
	json_object_object_add(o, "cidr",
			       json_object_new_string(api_str(body, "cidr")));
	/* "push": every node hosting one of its ports gets all of it;
	 * "learn": its gateways do, the others their own endpoints
	 * (api_state.c, docs/learning.md). */
	json_object_object_add(
		o, "mode",
		json_object_new_string(api_str(body, "mode") ?: "push"));
	if (!strcmp(api_str(o, "mode"), "learn")) {
		err = vpc_designate(api, &t, id, o, NULL);
		if (err) {
			json_object_put(o);
			api_strs_free(&t.strs);
			return api_fail_store(c, err);
		}
	}
	if (idem[0])
		json_object_object_add(o, "_idem",
				       json_object_new_string(idem));
	snprintf(key, sizeof(key), KF_ID, "vpc", id);
	api_txb_put(&t, key, o, STORE_ABSENT);
	json_object_put(o);
	snprintf(key, sizeof(key), KF_IDX, "tv", c->tenant, id);
	api_txb_ref(&t, key, NULL, 0, STORE_ABSENT);
	if (idem[0])
		api_txb_ref(&t, idem, "id", id, STORE_ABSENT);
	err = api_txb_commit(api, &t);
	if (err == -ECANCELED)
		return -EAGAIN;
	if (err)
		return api_fail_store(c, err);
	pr_debug("api: tenant %u created VPC %u", c->tenant, id);
	return reply_owned(api, c, "vpc", id, 201);
}

int api_vpc_create(struct api *api, struct api_ctx *c)
{
	json_object *body;
	const char *mode;
	__be32 net;
	__u8 plen;
	int ret;

	if (api_parse_body(c, vpc_fields, false, &body))
		return -1;
	mode = api_str(body, "mode");
	if (!api_valid_name(api_str(body, "name")))
		ret = bad_name(c);
	else if (xvpc_parse_cidr(api_str(body, "cidr"), &net, &plen) ||
		 plen < 1 || plen > 30)
		ret = api_fail(c, 400, "invalid_value", "cidr",
			       "cidr must be a network like 10.0.0.0/16 "
			       "(prefix 1 .. 30, no host bits)");
	else if (mode && !valid_mode(mode))
		ret = bad_mode(c, mode);
	else
		ret = RETRY(vpc_create_once(api, c, body));
	json_object_put(body);
	return ret;
}

int api_vpc_list(struct api *api, struct api_ctx *c)
{
	return list_owned(api, c, "tv", "vpc");
}

int api_vpc_get(struct api *api, struct api_ctx *c)
{
	uint32_t id;

	if (api_param_id(c, &id))
		return -1;
	return reply_owned(api, c, "vpc", id, 200);
}

/* PATCH of a VPC: its name and its mode. Entering learn mode designates
 * gateways; leaving it drops them. */
static int vpc_patch_once(struct api *api, struct api_ctx *c, uint32_t id,
			  json_object *body)
{
	const char *name = api_str(body, "name"), *mode = api_str(body, "mode");
	struct api_txb t = {0};
	json_object *o, *p;
	char key[64];
	uint64_t ver;
	int err;

	if (api_load_owned(api, c, "vpc", id, &o, &ver, NULL))
		return -1;
	if (name)
		json_object_object_add(o, "name", json_object_new_string(name));
	if (mode && strcmp(mode, api_str(o, "mode") ?: "push")) {
		json_object_object_add(o, "mode", json_object_new_string(mode));
		err = 0;
		if (!strcmp(mode, "learn"))
			err = vpc_designate(api, &t, id, o, NULL);
		else
			vpc_drop_gateways(api, &t, id, o);
		if (err) {
			json_object_put(o);
			api_strs_free(&t.strs);
			return api_fail_store(c, err);
		}
		pr_info("api: VPC %u switched to %s mode", id, mode);
	}
	snprintf(key, sizeof(key), KF_ID, "vpc", id);
	api_txb_put(&t, key, o, ver);
	err = api_txb_commit(api, &t);
	if (err) {
		json_object_put(o);
		return err == -ECANCELED ? -EAGAIN : api_fail_store(c, err);
	}
	p = api_public(o);
	json_object_put(o);
	return api_reply(c, 200, p);
}

int api_vpc_patch(struct api *api, struct api_ctx *c)
{
	json_object *body;
	const char *name, *mode;
	uint32_t id;
	int ret;

	if (api_param_id(c, &id) || api_parse_body(c, vpc_fields, true, &body))
		return -1;
	name = api_str(body, "name");
	mode = api_str(body, "mode");
	if (name && !api_valid_name(name))
		ret = bad_name(c);
	else if (mode && !valid_mode(mode))
		ret = bad_mode(c, mode);
	else
		ret = RETRY(vpc_patch_once(api, c, id, body));
	json_object_put(body);
	return ret;
}

int api_vpc_delete(struct api *api, struct api_ctx *c)
{
	struct api_txb t = {0};
	json_object *o;
	char key[64], prefix[64];
	uint64_t ver;
	uint32_t id;
	int err;

	if (api_param_id(c, &id) ||
	    api_load_owned(api, c, "vpc", id, &o, &ver, NULL))
		return -1;
	snprintf(prefix, sizeof(prefix), "vs/%010u/", id);
	err = has_any(api, prefix);
	if (err) {
		json_object_put(o);
		return err > 0 ? api_fail(c, 409, "in_use", NULL,
					  "VPC %u still has subnets; delete "
					  "them first",
					  id)
			       : api_fail_store(c, err);
	}
	err = api_lb_in_vpc(api, id);
	if (err) {
		json_object_put(o);
		return err > 0 ? api_fail(c, 409, "in_use", NULL,
					  "VPC %u still has load balancers; "
					  "delete them first",
					  id)
			       : api_fail_store(c, err);
	}
	/* A subnet created meanwhile rewrote the VPC: the check fails. */
	snprintf(key, sizeof(key), KF_ID, "vpc", id);
	api_txb_op(&t, STORE_DEL, key, ver);
	snprintf(key, sizeof(key), KF_IDX, "tv", c->tenant, id);
	api_txb_op(&t, STORE_DEL, key, STORE_ANY);
	if (api_str(o, "_idem"))
		api_txb_op(&t, STORE_DEL, api_str(o, "_idem"), STORE_ANY);
	vpc_drop_gateways(api, &t, id, o);
	json_object_put(o);
	err = api_txb_commit(api, &t);
	if (err == -ECANCELED)
		return api_fail(c, 409, "conflict", NULL,
				"VPC %u changed meanwhile; retry", id);
	if (err)
		return api_fail_store(c, err);
	return api_reply(c, 204, NULL);
}

/* ---- subnets ------------------------------------------------------- */

static const struct api_field subnet_fields[] = {
	{"vpc", F_INT, true, false},  {"cidr", F_STR, true, false},
	{"name", F_STR, false, true}, {"gateway_ip", F_STR, false, false},
	{"vni", F_INT, false, false}, {NULL, 0, false, false},
};

struct overlap {
	__be32 net;
	__u8 plen;
	uint32_t other;
	char other_cidr[XVPC_CIDR_STRLEN];
	struct api *api;
	char (*keys)[64];
	size_t n, cap;
};

static int collect_key(const struct store_rec *r, void *arg)
{
	struct overlap *ov = arg;

	if (ov->n == ov->cap) {
		size_t cap = ov->cap ? ov->cap * 2 : 16;
		void *p = realloc(ov->keys, cap * sizeof(*ov->keys));

		if (!p)
			return -ENOMEM;
		ov->keys = p;
		ov->cap = cap;
	}
	snprintf(ov->keys[ov->n++], 64, "subnet/%s", strrchr(r->key, '/') + 1);
	return 0;
}

/* 1 and the other subnet in ov when cidr overlaps a subnet of vpc. */
static int find_overlap(struct api *api, uint32_t vpc, struct overlap *ov)
{
	char prefix[64];
	int err, found = 0;

	snprintf(prefix, sizeof(prefix), "vs/%010u/", vpc);
	err = store_list(api->store, prefix, NULL, 0, collect_key, ov);
	for (size_t i = 0; !err && !found && i < ov->n; i++) {
		json_object *s;
		__be32 net;
		__u8 plen;

		if (api_load(api, ov->keys[i], &s, NULL))
			continue;
		if (!xvpc_parse_cidr(api_str(s, "cidr"), &net, &plen) &&
		    xvpc_cidr_overlap(net, plen, ov->net, ov->plen)) {
			found = 1;
			ov->other = api_int(s, "id");
			xvpc_fmt_cidr(net, plen, ov->other_cidr);
		}
		json_object_put(s);
	}
	free(ov->keys);
	ov->keys = NULL;
	ov->n = ov->cap = 0;
	return err < 0 ? err : found;
}

static int alloc_vni(struct api *api, uint32_t *vni)
{
	char key[32];
	uint32_t start;
	int err;

	pthread_mutex_lock(&api->hint_mu);
	start = api->vni_hint;
	pthread_mutex_unlock(&api->hint_mu);
	for (uint32_t i = 0; i < VNI_MAX; i++) {
		uint32_t v = 1 + (start + i) % VNI_MAX;

		snprintf(key, sizeof(key), "vni/%08u", v);
		err = store_get(api->store, key, NULL, NULL);
		if (err == -ENOENT) {
			pthread_mutex_lock(&api->hint_mu);
			api->vni_hint = v;
			pthread_mutex_unlock(&api->hint_mu);
			*vni = v;
			return 0;
		}
		if (err)
			return err;
	}
	return -ENOSPC;
}

struct subnet_req {
	uint32_t vpc;
	__be32 net, gw;
	__u8 plen;
	int64_t vni; /* 0: allocate */
	const char *name;
	char cidr[XVPC_CIDR_STRLEN];
};

/* A subnet may not cover a load balancer's VIP (api_lb.c). */
static int subnet_covers_vip(struct api *api, struct api_ctx *c,
			     const struct subnet_req *r)
{
	char ip[XVPC_IP_STRLEN];
	uint32_t lb;
	__be32 vip;
	int err = api_lb_vip_in(api, r->vpc, r->net, r->plen, &lb, &vip);

	if (err < 0)
		return api_fail_store(c, err);
	if (err)
		return api_fail(c, 409, "in_use", "cidr",
				"%s covers %s, the VIP of load balancer %u",
				r->cidr, xvpc_fmt_ip(vip, ip), lb);
	return 0;
}

static int subnet_create_once(struct api *api, struct api_ctx *c,
			      const struct subnet_req *r)
{
	struct overlap ov = {.net = r->net, .plen = r->plen};
	struct api_txb t = {0};
	char idem[256], key[64], ipbuf[XVPC_IP_STRLEN];
	json_object *vpc, *o;
	__be32 vnet;
	__u8 vplen;
	uint64_t vver;
	uint32_t id, vni;
	int err;

	if (api_idem_lookup(api, c, "subnet", idem, sizeof(idem), &id))
		return -1;
	if (id)
		return reply_owned(api, c, "subnet", id, 200);
	if (api_load_owned(api, c, "vpc", r->vpc, &vpc, &vver, "vpc"))
		return -1;
	if (xvpc_parse_cidr(api_str(vpc, "cidr"), &vnet, &vplen) ||
	    r->plen < vplen || !xvpc_cidr_contains(vnet, vplen, r->net)) {
		err = api_fail(c, 400, "invalid_value", "cidr",
			       "%s is not inside the VPC's %s", r->cidr,
			       api_str(vpc, "cidr"));
		goto out;
	}
	err = find_overlap(api, r->vpc, &ov);
	if (err > 0) {
		err = api_fail(c, 409, "overlap", "cidr",
			       "%s overlaps subnet %u (%s) of VPC %u", r->cidr,
			       ov.other, ov.other_cidr, r->vpc);
		goto out;
	}
	if (err) {
		err = api_fail_store(c, err);
		goto out;
	}
	err = subnet_covers_vip(api, c, r);
	if (err)
		goto out;
	if (r->vni) {
		vni = r->vni;
		snprintf(key, sizeof(key), "vni/%08u", vni);
		if (!store_get(api->store, key, NULL, NULL)) {
			err = api_fail(c, 409, "in_use", "vni",
				       "VNI %u is taken", vni);
			goto out;
		}
	} else {
		err = alloc_vni(api, &vni);
		if (err) {
			err = err == -ENOSPC ? api_fail(c, 507, "exhausted",
							"vni", "no VNI left")
					     : api_fail_store(c, err);
			goto out;
		}
	}
	err = api_seq_next(api, "subnet", &id);
	if (err) {
		err = api_fail_store(c, err);
		goto out;
	}
	/* Rewriting the VPC serializes subnet changes within it. */
	snprintf(key, sizeof(key), KF_ID, "vpc", r->vpc);
	api_txb_put(&t, key, vpc, vver);
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "tenant", json_object_new_int64(c->tenant));
	json_object_object_add(o, "vpc", json_object_new_int64(r->vpc));
	json_object_object_add(o, "name", json_object_new_string(r->name));
	json_object_object_add(o, "cidr", json_object_new_string(r->cidr));
	json_object_object_add(
		o, "gateway_ip",
		json_object_new_string(xvpc_fmt_ip(r->gw, ipbuf)));
	json_object_object_add(o, "gateway_mac",
			       json_object_new_string(API_GATEWAY_MAC));
	json_object_object_add(o, "vni", json_object_new_int64(vni));
	if (idem[0])
		json_object_object_add(o, "_idem",
				       json_object_new_string(idem));
	snprintf(key, sizeof(key), KF_ID, "subnet", id);
	api_txb_put(&t, key, o, STORE_ABSENT);
	json_object_put(o);
	snprintf(key, sizeof(key), KF_IDX, "ts", c->tenant, id);
	api_txb_ref(&t, key, NULL, 0, STORE_ABSENT);
	snprintf(key, sizeof(key), KF_IDX, "vs", r->vpc, id);
	api_txb_ref(&t, key, NULL, 0, STORE_ABSENT);
	snprintf(key, sizeof(key), "vni/%08u", vni);
	api_txb_ref(&t, key, "subnet", id, STORE_ABSENT);
	if (idem[0])
		api_txb_ref(&t, idem, "id", id, STORE_ABSENT);
	err = api_txb_commit(api, &t);
	if (err == -ECANCELED) {
		err = -EAGAIN;
		goto out;
	}
	if (err) {
		err = api_fail_store(c, err);
		goto out;
	}
	err = reply_owned(api, c, "subnet", id, 201);
out:
	json_object_put(vpc);
	return err;
}

int api_subnet_create(struct api *api, struct api_ctx *c)
{
	struct subnet_req r = {0};
	json_object *body;
	const char *gw;
	int64_t vpc;
	uint32_t host;
	int ret;

	if (api_parse_body(c, subnet_fields, false, &body))
		return -1;
	vpc = api_int(body, "vpc");
	r.vni = api_int(body, "vni");
	r.name = api_str(body, "name") ?: "";
	gw = api_str(body, "gateway_ip");
	if (vpc < 1 || vpc > ID_MAX) {
		ret = api_fail(c, 404, "not_found", "vpc", "no VPC %lld",
			       (long long)vpc);
		goto out;
	}
	r.vpc = vpc;
	if (*r.name && !api_valid_name(r.name)) {
		ret = bad_name(c);
		goto out;
	}
	if (xvpc_parse_cidr(api_str(body, "cidr"), &r.net, &r.plen) ||
	    r.plen > 30) {
		ret = api_fail(c, 400, "invalid_value", "cidr",
			       "cidr must be a network like 10.0.1.0/24 "
			       "(prefix up to /30, no host bits)");
		goto out;
	}
	xvpc_fmt_cidr(r.net, r.plen, r.cidr);
	if (json_object_object_get_ex(body, "vni", NULL) &&
	    (r.vni < 1 || r.vni > VNI_MAX)) {
		ret = api_fail(c, 400, "invalid_value", "vni",
			       "vni must be 1 .. %u", VNI_MAX);
		goto out;
	}
	r.gw = htonl(ntohl(r.net) + 1);
	if (gw) {
		host = 0;
		if (!xvpc_parse_ip(gw, &r.gw))
			host = ntohl(r.gw) - ntohl(r.net);
		if (xvpc_parse_ip(gw, &r.gw) ||
		    !xvpc_cidr_contains(r.net, r.plen, r.gw) || host == 0 ||
		    host == (1u << (32 - r.plen)) - 1) {
			ret = api_fail(c, 400, "invalid_value", "gateway_ip",
				       "gateway_ip must be a host address "
				       "inside %s",
				       r.cidr);
			goto out;
		}
	}
	ret = RETRY(subnet_create_once(api, c, &r));
out:
	json_object_put(body);
	return ret;
}

int api_subnet_list(struct api *api, struct api_ctx *c)
{
	return list_owned(api, c, "ts", "subnet");
}

int api_subnet_get(struct api *api, struct api_ctx *c)
{
	uint32_t id;

	if (api_param_id(c, &id))
		return -1;
	return reply_owned(api, c, "subnet", id, 200);
}

int api_subnet_patch(struct api *api, struct api_ctx *c)
{
	return patch_name(api, c, "subnet", subnet_fields);
}

int api_subnet_delete(struct api *api, struct api_ctx *c)
{
	struct api_txb t = {0};
	json_object *o;
	char key[64], prefix[64];
	uint64_t ver;
	uint32_t id;
	int err, ports;

	if (api_param_id(c, &id) ||
	    api_load_owned(api, c, "subnet", id, &o, &ver, NULL))
		return -1;
	snprintf(prefix, sizeof(prefix), "sip/%010u/", id);
	ports = has_any(api, prefix);
	if (ports) {
		json_object_put(o);
		return ports > 0 ? api_fail(c, 409, "in_use", NULL,
					    "subnet %u still has ports; "
					    "delete them first",
					    id)
				 : api_fail_store(c, ports);
	}
	/* Mark, then look again: a port created after the mark fails its
	 * version check, one created before it is found. */
	snprintf(key, sizeof(key), KF_ID, "subnet", id);
	json_object_object_add(o, "_deleting", json_object_new_boolean(1));
	api_txb_put(&t, key, o, ver);
	err = store_txn(api->store, t.ops, t.n, &ver, NULL);
	api_strs_free(&t.strs);
	t.n = 0;
	if (err)
		goto out;
	ports = has_any(api, prefix);
	if (ports) {
		json_object_object_del(o, "_deleting");
		api_txb_put(&t, key, o, ver);
		api_txb_commit(api, &t);
		json_object_put(o);
		return ports > 0 ? api_fail(c, 409, "in_use", NULL,
					    "subnet %u still has ports; "
					    "delete them first",
					    id)
				 : api_fail_store(c, ports);
	}
	api_txb_op(&t, STORE_DEL, key, ver);
	snprintf(key, sizeof(key), KF_IDX, "ts", c->tenant, id);
	api_txb_op(&t, STORE_DEL, key, STORE_ANY);
	snprintf(key, sizeof(key), KF_IDX, "vs", (uint32_t)api_int(o, "vpc"),
		 id);
	api_txb_op(&t, STORE_DEL, key, STORE_ANY);
	snprintf(key, sizeof(key), "vni/%08u", (uint32_t)api_int(o, "vni"));
	api_txb_op(&t, STORE_DEL, key, STORE_ANY);
	if (api_str(o, "_idem"))
		api_txb_op(&t, STORE_DEL, api_str(o, "_idem"), STORE_ANY);
	err = api_txb_commit(api, &t);
out:
	json_object_put(o);
	if (err == -ECANCELED)
		return api_fail(c, 409, "conflict", NULL,
				"subnet %u changed meanwhile; retry", id);
	if (err)
		return api_fail_store(c, err);
	return api_reply(c, 204, NULL);
}

/* ---- ports --------------------------------------------------------- */

static const struct api_field port_fields[] = {
	{"subnet", F_INT, true, false},
	{"ip", F_STR, false, false},
	{"name", F_STR, false, true},
	{"node", F_STR_OR_NULL, false, true},
	{"ifname", F_STR_OR_NULL, false, true},
	{NULL, 0, false, false},
};

static bool valid_ifname(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 15 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s == '/' || *s == ':' || *s > '~')
			return false;
	return true;
}

static void ip_key(char *key, size_t len, uint32_t subnet, __be32 ip)
{
	snprintf(key, len, "sip/%010u/%08x", subnet, ntohl(ip));
}

static int alloc_ip(struct api *api, uint32_t subnet, __be32 net, __u8 plen,
		    __be32 gw, __be32 *out)
{
	uint32_t hosts = (1u << (32 - plen)) - 2,
		 slot = subnet % API_HINT_SLOTS;
	uint32_t start = 0;
	char key[64];
	int err;

	pthread_mutex_lock(&api->hint_mu);
	if (api->ip_hint[slot].subnet == subnet)
		start = api->ip_hint[slot].offset;
	pthread_mutex_unlock(&api->hint_mu);
	for (uint32_t i = 0; i < hosts; i++) {
		uint32_t off = 1 + (start + i) % hosts;
		__be32 ip = htonl(ntohl(net) + off);

		if (ip == gw)
			continue;
		ip_key(key, sizeof(key), subnet, ip);
		err = store_get(api->store, key, NULL, NULL);
		if (err == -ENOENT) {
			pthread_mutex_lock(&api->hint_mu);
			api->ip_hint[slot].subnet = subnet;
			api->ip_hint[slot].offset = off;
			pthread_mutex_unlock(&api->hint_mu);
			*out = ip;
			return 0;
		}
		if (err)
			return err;
	}
	return -ENOSPC;
}

/* After a conflict on an allocated address (another controller took the
 * same one a moment before): this one goes on from a random place in the
 * subnet, so controllers allocating in the same subnets stop meeting. A
 * single writer never conflicts and allocates in order. */
static void ip_scatter(struct api *api, uint32_t subnet, uint32_t hosts)
{
	uint32_t slot = subnet % API_HINT_SLOTS;
	struct timespec ts;
	uint64_t x;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ subnet;
	x ^= x >> 29;
	pthread_mutex_lock(&api->hint_mu);
	api->ip_hint[slot].subnet = subnet;
	api->ip_hint[slot].offset = hosts ? (uint32_t)(x % hosts) : 0;
	pthread_mutex_unlock(&api->hint_mu);
}

/* Checks the node a port binds to; fills the response on error. */
static int check_node(struct api *api, struct api_ctx *c, const char *node,
		      uint64_t *ver)
{
	char key[128];
	json_object *o;
	int err;

	if (!api_valid_name(node))
		return api_fail(c, 400, "invalid_value", "node",
				"node must be a node name");
	snprintf(key, sizeof(key), "node/%s", node);
	err = api_load(api, key, &o, ver);
	if (err == -ENOENT)
		return api_fail(c, 400, "invalid_value", "node",
				"no node '%s' is registered", node);
	if (err)
		return api_fail_store(c, err);
	err = json_object_object_get_ex(o, "_deleting", NULL);
	json_object_put(o);
	if (err)
		return api_fail(c, 409, "conflict", "node",
				"node '%s' is being deleted", node);
	return 0;
}

struct port_req {
	uint32_t subnet;
	const char *ip, *name, *node, *ifname;
};

static int port_create_once(struct api *api, struct api_ctx *c,
			    const struct port_req *r)
{
	struct api_txb t = {0};
	char idem[256], key[128], ipbuf[XVPC_IP_STRLEN], mac[XVPC_MAC_STRLEN];
	json_object *sub, *o;
	uint64_t sver, nver = 0;
	uint32_t id, vpc, hosts;
	__be32 net, gw, ip;
	__u8 plen, m[6];
	int err;

	if (api_idem_lookup(api, c, "port", idem, sizeof(idem), &id))
		return -1;
	if (id)
		return reply_owned(api, c, "port", id, 200);
	if (api_load_owned(api, c, "subnet", r->subnet, &sub, &sver, "subnet"))
		return -1;
	if (json_object_object_get_ex(sub, "_deleting", NULL)) {
		err = api_fail(c, 409, "conflict", "subnet",
			       "subnet %u is being deleted", r->subnet);
		goto out;
	}
	vpc = api_int(sub, "vpc");
	if (xvpc_parse_cidr(api_str(sub, "cidr"), &net, &plen) ||
	    xvpc_parse_ip(api_str(sub, "gateway_ip"), &gw)) {
		err = api_fail(c, 500, "internal", NULL,
			       "subnet %u record is damaged", r->subnet);
		goto out;
	}
	if (r->node && check_node(api, c, r->node, &nver)) {
		err = -1;
		goto out;
	}
	if (r->ip) {
		hosts = (1u << (32 - plen)) - 1;
		if (xvpc_parse_ip(r->ip, &ip) ||
		    !xvpc_cidr_contains(net, plen, ip)) {
			err = api_fail(c, 400, "invalid_value", "ip",
				       "ip '%s' is not an address inside "
				       "subnet %u (%s)",
				       r->ip, r->subnet, api_str(sub, "cidr"));
			goto out;
		}
		if (ip == net || ip == gw || ntohl(ip) - ntohl(net) == hosts) {
			err = api_fail(c, 400, "reserved", "ip",
				       "ip %s is reserved (network, gateway "
				       "or broadcast address)",
				       r->ip);
			goto out;
		}
		ip_key(key, sizeof(key), r->subnet, ip);
		if (!store_get(api->store, key, NULL, NULL)) {
			err = api_fail(c, 409, "in_use", "ip",
				       "ip %s is in use in subnet %u", r->ip,
				       r->subnet);
			goto out;
		}
	} else {
		err = alloc_ip(api, r->subnet, net, plen, gw, &ip);
		if (err) {
			err = err == -ENOSPC
				      ? api_fail(c, 409, "exhausted", "subnet",
						 "subnet %u has no free "
						 "address",
						 r->subnet)
				      : api_fail_store(c, err);
			goto out;
		}
	}
	err = api_seq_next(api, "port", &id);
	if (err) {
		err = api_fail_store(c, err);
		goto out;
	}
	/* Locally administered unicast, unique because the id is. */
	m[0] = 0x02;
	m[1] = 0x00;
	m[2] = id >> 24;
	m[3] = id >> 16;
	m[4] = id >> 8;
	m[5] = id;
	xvpc_fmt_mac(m, mac);
	snprintf(key, sizeof(key), KF_ID, "subnet", r->subnet);
	api_txb_op(&t, STORE_CHECK, key, sver);
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "tenant", json_object_new_int64(c->tenant));
	json_object_object_add(o, "vpc", json_object_new_int64(vpc));
	json_object_object_add(o, "subnet", json_object_new_int64(r->subnet));
	json_object_object_add(o, "name",
			       json_object_new_string(r->name ? r->name : ""));
	json_object_object_add(o, "ip",
			       json_object_new_string(xvpc_fmt_ip(ip, ipbuf)));
	json_object_object_add(o, "mac", json_object_new_string(mac));
	json_object_object_add(
		o, "node", r->node ? json_object_new_string(r->node) : NULL);
	json_object_object_add(o, "ifname",
			       r->node ? json_object_new_string(r->ifname)
				       : NULL);
	if (idem[0])
		json_object_object_add(o, "_idem",
				       json_object_new_string(idem));
	snprintf(key, sizeof(key), KF_ID, "port", id);
	api_txb_put(&t, key, o, STORE_ABSENT);
	/* Its tp/, vp/ and np/ index records come with it (store_mem.h). */
	ip_key(key, sizeof(key), r->subnet, ip);
	api_txb_ref(&t, key, "port", id, STORE_ABSENT);
	if (r->node) {
		snprintf(key, sizeof(key), "node/%s", r->node);
		api_txb_op(&t, STORE_CHECK, key, nver);
	}
	if (idem[0])
		api_txb_ref(&t, idem, "id", id, STORE_ABSENT);
	err = api_txb_commit(api, &t);
	if (err == -ECANCELED) {
		if (!r->ip)
			ip_scatter(api, r->subnet, (1u << (32 - plen)) - 2);
		err = -EAGAIN;
	} else if (err) {
		err = api_fail_store(c, err);
	} else {
		/* The record as committed: no need to read it back. */
		err = api_reply(c, 201, api_public(o));
	}
	json_object_put(o);
out:
	json_object_put(sub);
	return err;
}

/* node and ifname go together: both strings, or both absent/null. */
static int check_binding(struct api_ctx *c, const char *node,
			 const char *ifname, bool ifname_null)
{
	if (node && !ifname)
		return api_fail(c, 400, "missing_field", "ifname",
				"ifname is required with node");
	if (!node && ifname && !ifname_null)
		return api_fail(c, 400, "invalid_value", "ifname",
				"ifname needs a node");
	if (ifname && !valid_ifname(ifname))
		return api_fail(c, 400, "invalid_value", "ifname",
				"ifname must be an interface name (1 .. 15 "
				"characters, no '/', ':' or spaces)");
	return 0;
}

int api_port_create(struct api *api, struct api_ctx *c)
{
	struct port_req r = {0};
	json_object *body;
	int64_t subnet;
	int ret;

	if (api_parse_body(c, port_fields, false, &body))
		return -1;
	subnet = api_int(body, "subnet");
	r.ip = api_str(body, "ip");
	r.name = api_str(body, "name");
	r.node = api_str(body, "node");
	r.ifname = api_str(body, "ifname");
	if (subnet < 1 || subnet > ID_MAX)
		ret = api_fail(c, 404, "not_found", "subnet", "no subnet %lld",
			       (long long)subnet);
	else if (r.name && !api_valid_name(r.name))
		ret = bad_name(c);
	else if (check_binding(c, r.node, r.ifname, false))
		ret = -1;
	else {
		r.subnet = subnet;
		ret = RETRY(port_create_once(api, c, &r));
	}
	json_object_put(body);
	return ret;
}

int api_port_list(struct api *api, struct api_ctx *c)
{
	return list_owned(api, c, "tp", "port");
}

int api_port_get(struct api *api, struct api_ctx *c)
{
	uint32_t id;

	if (api_param_id(c, &id))
		return -1;
	return reply_owned(api, c, "port", id, 200);
}

static int port_patch_once(struct api *api, struct api_ctx *c, uint32_t id,
			   json_object *body)
{
	struct api_txb t = {0};
	json_object *o, *p;
	const char *old_node, *node, *ifname, *name;
	char key[128], node_copy[64] = "";
	uint64_t ver, nver = 0;
	bool has_node, has_if;
	int err;

	if (api_load_owned(api, c, "port", id, &o, &ver, NULL))
		return -1;
	old_node = api_str(o, "node");
	if (old_node)
		snprintf(node_copy, sizeof(node_copy), "%s", old_node);
	has_node = json_object_object_get_ex(body, "node", NULL);
	has_if = json_object_object_get_ex(body, "ifname", NULL);
	node = has_node ? api_str(body, "node") : api_str(o, "node");
	ifname = has_if ? api_str(body, "ifname")
			: (node ? api_str(o, "ifname") : NULL);
	name = api_str(body, "name");
	if (check_binding(c, node, ifname, true) ||
	    (node && (!old_node || strcmp(node, old_node)) &&
	     check_node(api, c, node, &nver))) {
		json_object_put(o);
		return -1;
	}
	if (name)
		json_object_object_add(o, "name", json_object_new_string(name));
	/* Take copies before the object's strings are replaced. */
	json_object_object_add(o, "node",
			       node ? json_object_new_string(node) : NULL);
	json_object_object_add(o, "ifname",
			       ifname && node ? json_object_new_string(ifname)
					      : NULL);
	node = api_str(o, "node");
	snprintf(key, sizeof(key), KF_ID, "port", id);
	api_txb_put(&t, key, o, ver); /* and its np/ record moves with it */
	if (node && (!node_copy[0] || strcmp(node, node_copy))) {
		snprintf(key, sizeof(key), "node/%s", node);
		api_txb_op(&t, STORE_CHECK, key, nver);
	}
	err = api_txb_commit(api, &t);
	if (err) {
		json_object_put(o);
		return err == -ECANCELED ? -EAGAIN : api_fail_store(c, err);
	}
	p = api_public(o);
	json_object_put(o);
	return api_reply(c, 200, p);
}

int api_port_patch(struct api *api, struct api_ctx *c)
{
	json_object *body;
	const char *name;
	uint32_t id;
	int ret;

	if (api_param_id(c, &id) || api_parse_body(c, port_fields, true, &body))
		return -1;
	name = api_str(body, "name");
	if (name && !api_valid_name(name))
		ret = bad_name(c);
	else
		ret = RETRY(port_patch_once(api, c, id, body));
	json_object_put(body);
	return ret;
}

int api_port_delete(struct api *api, struct api_ctx *c)
{
	struct api_txb t = {0};
	json_object *o;
	char key[128];
	uint64_t ver;
	uint32_t id, subnet;
	__be32 ip = 0;
	int err;

	if (api_param_id(c, &id) ||
	    api_load_owned(api, c, "port", id, &o, &ver, NULL))
		return -1;
	subnet = api_int(o, "subnet");
	xvpc_parse_ip(api_str(o, "ip"), &ip);
	snprintf(key, sizeof(key), KF_ID, "port", id);
	api_txb_op(&t, STORE_DEL, key, ver); /* with its index records */
	ip_key(key, sizeof(key), subnet, ip);
	api_txb_op(&t, STORE_DEL, key, STORE_ANY);
	if (api_str(o, "_idem"))
		api_txb_op(&t, STORE_DEL, api_str(o, "_idem"), STORE_ANY);
	json_object_put(o);
	err = api_txb_commit(api, &t);
	if (err == -ECANCELED)
		return api_fail(c, 409, "conflict", NULL,
				"port %u changed meanwhile; retry", id);
	if (err)
		return api_fail_store(c, err);
	return api_reply(c, 204, NULL);
}
