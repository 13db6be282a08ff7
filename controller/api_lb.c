// SPDX-License-Identifier: GPL-2.0-only
/* Tenants' load balancers: /v1/loadbalancers (docs/api.md).
 *
 * A load balancer is one service of docs/state-format.md ("Services"):
 * (vpc, vip, port, protocol), backends, health check. The body's service
 * fields are checked by lib/state.c itself (the request becomes a one-VPC
 * state document that xvpc_state_parse() must accept), so the API and the
 * agent refuse the same things with the same ranges and defaults.
 *
 * The VIP is an address of the VPC's CIDR outside every subnet of the VPC:
 * clients reach it through their gateway (the datapath answers ARP only for
 * endpoints and the gateway), and it can never be a port's address or a
 * gateway. Subnet creation refuses a CIDR that covers a VIP (api_objects.c
 * calls api_lb_vip_in()).
 *
 * A public (north-south) load balancer is reached from outside the overlay
 * (docs/loadbalancer.md, "North-south"): its VIP lies in one of the
 * operator's --public-prefix ranges (none configured: refused) and outside
 * the VPC's CIDR, and public addresses are one space shared by all
 * tenants, so (vip, port, protocol) is unique among the public load
 * balancers of every tenant (a taken one is a 409 that does not say whose
 * it is). A backend (ip, port) serves at most one public load balancer of
 * its VPC and protocol (the backend's node finds the VIP of a reply by
 * it). `public` cannot change after creation.
 *
 * Records and index keys, written in one transaction:
 *   lb/<id>   tl/<tenant>/<id>, vl/<vpc>/<id>,
 *             lbk/<vpc>/<vip hex>/<port>/<protocol> (the service identity)
 *             lbp/<vip hex>/<port>/<protocol> = {"lb", "vpc"} (public only:
 *             the global identity, and the list of public services that
 *             api_state.c sends to every node)
 * Creation rewrites the VPC record, as subnet creation does, so a subnet
 * created meanwhile (which could cover the VIP) or a VPC deletion fails its
 * version check and retries. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"
#include "lbhealth.h"
#include "log.h"
#include "netutil.h"
#include "state.h"

static const char *proto_str(__u8 proto)
{
	return proto == IPPROTO_UDP ? "udp" : "tcp";
}

static void ident_key(char *key, size_t len, uint32_t vpc, __be32 vip,
		      __u16 port, __u8 proto)
{
	snprintf(key, len, "lbk/%010u/%08x/%05u/%s", vpc, ntohl(vip), port,
		 proto_str(proto));
}

static void public_key(char *key, size_t len, __be32 vip, __u16 port,
		       __u8 proto)
{
	snprintf(key, len, API_LB_PUBLIC_PREFIX "%08x/%05u/%s", ntohl(vip),
		 port, proto_str(proto));
}

static bool is_public(json_object *lb)
{
	json_object *p;

	return json_object_object_get_ex(lb, "public", &p) &&
	       json_object_get_boolean(p);
}

/* Read-only "backend_health": each backend (ip, port) with "healthy" as
 * its node last reported it (lbhealth.h; true when never reported). */
static void add_backend_health(struct api *api, json_object *lb)
{
	json_object *be, *arr = json_object_new_array();

	be = lbh_mark_backends(api->store, api_int(lb, "id"),
			       api_int(lb, "port"),
			       json_object_object_get(lb, "backends"));
	for (size_t j = 0; j < json_object_array_length(be); j++) {
		json_object *b = json_object_array_get_idx(be, j), *h, *o;

		o = json_object_new_object();
		json_object_object_add(
			o, "ip",
			json_object_new_string(api_str(b, "ip") ?: ""));
		json_object_object_add(
			o, "port",
			json_object_new_int64(api_int(b, "port")
						      ?: api_int(lb, "port")));
		h = json_object_object_get(b, "healthy");
		json_object_object_add(
			o, "healthy",
			json_object_new_boolean(!h ||
						json_object_get_boolean(h)));
		json_object_array_add(arr, o);
	}
	json_object_put(be);
	json_object_object_add(lb, "backend_health", arr);
}

static int reply_lb(struct api *api, struct api_ctx *c, uint32_t id, int status)
{
	json_object *o, *p;

	if (api_load_owned(api, c, "lb", id, &o, NULL, NULL))
		return -1;
	p = api_public(o);
	json_object_put(o);
	add_backend_health(api, p);
	return api_reply(c, status, p);
}

/* ---- the service, checked by lib/state.c ----------------------------- */

static const char *const hc_names[] = {
	"type", "interval_ms", "timeout_ms",	"rise",
	"fall", "path",	       "expect_status", NULL};

/* The body field a lib/state.c message is about: `field "X"` with the
 * backend or health check it sits in, or the object an unknown field was
 * found in. */
static void error_field(const char *msg, char *field, size_t len)
{
	const char *f = strstr(msg, "field \""), *be = strstr(msg, "backends[");
	const char *unknown = strstr(msg, "unknown field \"");
	char name[64] = "";
	unsigned int j = 0;

	if (unknown)
		f = unknown + strlen("unknown ");
	if (f)
		sscanf(f, "field \"%63[^\"]\"", name);
	if (be)
		sscanf(be, "backends[%u]", &j);
	if (!name[0]) {
		snprintf(field, len, "%s", be ? "backends" : "health_check");
		return;
	}
	if (!strncmp(name, "backends", 8) || !strncmp(name, "health_check", 12))
		snprintf(field, len, "%s", name);
	else if (be && (!unknown || unknown > be))
		snprintf(field, len, "backends[%u].%s", j, name);
	else if (unknown)
		snprintf(field, len, "health_check.%s", name);
	else {
		snprintf(field, len, "%s", name);
		for (int i = 0; hc_names[i]; i++)
			if (!strcmp(name, hc_names[i]))
				snprintf(field, len, "health_check.%s", name);
	}
}

/* What follows the place name of a lib/state.c message. */
static const char *error_text(const char *msg)
{
	const char *s = strstr(msg, "field \"");

	if (!s)
		s = strstr(msg, "fields \"");
	return s ? s : msg;
}

/* Checks the service fields (vpc, vip, port, protocol, backends,
 * health_check in the body's shapes) and returns the parsed, normalized
 * state (health check defaults filled) in *out. Fills a 400 naming the
 * field on error. */
static int check_service(struct api_ctx *c, uint32_t vpc, const char *vip,
			 int64_t port, const char *proto, bool pub,
			 json_object *backends, json_object *hc,
			 struct xvpc_state **out)
{
	json_object *doc = json_object_new_object(), *v, *s, *arr;
	char msg[XVPC_STATE_ERR_LEN], field[96];
	const char *txt;
	size_t len;
	int err;

	arr = json_object_new_array();
	v = json_object_new_object();
	json_object_object_add(v, "id", json_object_new_int64(vpc));
	json_object_array_add(arr, v);
	json_object_object_add(doc, "vpcs", arr);
	json_object_object_add(doc, "subnets", json_object_new_array());
	json_object_object_add(doc, "endpoints", json_object_new_array());
	s = json_object_new_object();
	json_object_object_add(s, "vpc", json_object_new_int64(vpc));
	json_object_object_add(s, "vip", json_object_new_string(vip));
	json_object_object_add(s, "port", json_object_new_int64(port));
	json_object_object_add(s, "protocol", json_object_new_string(proto));
	json_object_object_add(s, "backends",
			       backends ? json_object_get(backends)
					: json_object_new_array());
	if (hc)
		json_object_object_add(s, "health_check", json_object_get(hc));
	if (pub)
		json_object_object_add(s, "public", json_object_new_boolean(1));
	arr = json_object_new_array();
	json_object_array_add(arr, s);
	json_object_object_add(doc, "services", arr);
	txt = json_object_to_json_string_length(doc, JSON_C_TO_STRING_PLAIN,
						&len);
	err = xvpc_state_parse(txt, len, 0, out, msg, sizeof(msg));
	json_object_put(doc);
	if (err == -EINVAL) {
		error_field(msg, field, sizeof(field));
		if (strstr(msg, "unknown field \""))
			return api_fail(c, 400, "invalid_value", field,
					"unknown field \"%s\"", field);
		return api_fail(c, 400, "invalid_value", field, "%s",
				error_text(msg));
	}
	if (err)
		return api_fail(c, 500, "internal", NULL,
				"cannot check the service: %s", strerror(-err));
	return 0;
}

static json_object *hc_to_json(const struct xvpc_state_hc *hc)
{
	static const char *const types[] = {"none", "tcp", "http"};
	json_object *o = json_object_new_object();

	json_object_object_add(o, "type",
			       json_object_new_string(types[hc->type]));
	if (hc->type == XVPC_HC_NONE)
		return o;
	json_object_object_add(o, "interval_ms",
			       json_object_new_int64(hc->interval_ms));
	json_object_object_add(o, "timeout_ms",
			       json_object_new_int64(hc->timeout_ms));
	json_object_object_add(o, "rise", json_object_new_int64(hc->rise));
	json_object_object_add(o, "fall", json_object_new_int64(hc->fall));
	if (hc->type == XVPC_HC_HTTP) {
		json_object_object_add(o, "path",
				       json_object_new_string(hc->path));
		json_object_object_add(
			o, "expect_status",
			json_object_new_int64(hc->expect_status));
	}
	return o;
}

static json_object *backends_to_json(const struct xvpc_state_svc *s)
{
	json_object *arr = json_object_new_array_ext(s->n_backends);
	char ip[XVPC_IP_STRLEN];

	for (__u32 j = 0; j < s->n_backends; j++) {
		const struct xvpc_state_lb_backend *b = &s->backends[j];
		json_object *o = json_object_new_object();

		json_object_object_add(
			o, "ip",
			json_object_new_string(xvpc_fmt_ip(b->ip, ip)));
		if (b->port)
			json_object_object_add(o, "port",
					       json_object_new_int64(b->port));
		json_object_object_add(o, "weight",
				       json_object_new_int64(b->weight));
		json_object_array_add(arr, o);
	}
	return arr;
}

/* Sets the record's backends and health_check from a checked service. */
static void set_service(json_object *o, const struct xvpc_state_svc *s)
{
	json_object_object_add(o, "backends", backends_to_json(s));
	json_object_object_add(o, "health_check", hc_to_json(&s->hc));
}

/* ---- the VIP --------------------------------------------------------- */

struct keys {
	char (*k)[64];
	size_t n, cap;
	int err;
};

static int keys_add(const struct store_rec *r, void *arg)
{
	struct keys *ks = arg;

	if (ks->n == ks->cap) {
		size_t cap = ks->cap ? ks->cap * 2 : 16;
		void *p = realloc(ks->k, cap * sizeof(*ks->k));

		if (!p) {
			ks->err = -ENOMEM;
			return 1;
		}
		ks->k = p;
		ks->cap = cap;
	}
	snprintf(ks->k[ks->n++], sizeof(ks->k[0]), "%s", r->key);
	return 0;
}

/* 1 with *sub set when vip lies in a subnet of vpc, 0 when in none. */
static int vip_subnet(struct api *api, uint32_t vpc, __be32 vip, uint32_t *sub)
{
	struct keys ks = {0};
	char prefix[64], key[64];
	int err, found = 0;

	snprintf(prefix, sizeof(prefix), "vs/%010u/", vpc);
	err = store_list(api->store, prefix, NULL, 0, keys_add, &ks);
	if (err >= 0)
		err = ks.err;
	for (size_t i = 0; !err && !found && i < ks.n; i++) {
		json_object *s;
		__be32 net;
		__u8 plen;

		snprintf(key, sizeof(key), "subnet/%s",
			 strrchr(ks.k[i], '/') + 1);
		if (api_load(api, key, &s, NULL))
			continue;
		if (!xvpc_parse_cidr(api_str(s, "cidr"), &net, &plen) &&
		    xvpc_cidr_contains(net, plen, vip)) {
			found = 1;
			*sub = api_int(s, "id");
		}
		json_object_put(s);
	}
	free(ks.k);
	return err < 0 ? err : found;
}

int api_lb_vip_in(struct api *api, uint32_t vpc, __be32 net, __u8 plen,
		  uint32_t *lb, __be32 *vip)
{
	struct keys ks = {0};
	char prefix[64];
	int err, found = 0;

	snprintf(prefix, sizeof(prefix), "lbk/%010u/", vpc);
	err = store_list(api->store, prefix, NULL, 0, keys_add, &ks);
	if (err >= 0)
		err = ks.err;
	for (size_t i = 0; !err && !found && i < ks.n; i++) {
		unsigned int hex;
		json_object *r;

		if (sscanf(ks.k[i] + strlen(prefix), "%8x", &hex) != 1 ||
		    !xvpc_cidr_contains(net, plen, htonl(hex)))
			continue;
		found = 1;
		*vip = htonl(hex);
		*lb = 0;
		if (!api_load(api, ks.k[i], &r, NULL)) {
			*lb = api_int(r, "lb");
			json_object_put(r);
		}
	}
	free(ks.k);
	return err < 0 ? err : found;
}

int api_lb_in_vpc(struct api *api, uint32_t vpc)
{
	struct keys ks = {0};
	char prefix[64];
	int err;

	snprintf(prefix, sizeof(prefix), "vl/%010u/", vpc);
	err = store_list(api->store, prefix, NULL, 1, keys_add, &ks);
	free(ks.k);
	if (err < 0)
		return err;
	return ks.err ? ks.err : ks.n > 0;
}

/* The VIP rules beyond lib/state.c's (see the top of the file). */
static int check_vip(struct api *api, struct api_ctx *c, json_object *vpc,
		     __be32 vip)
{
	char ip[XVPC_IP_STRLEN];
	const char *cidr = api_str(vpc, "cidr");
	uint32_t sub = 0, id = api_int(vpc, "id");
	uint32_t host, last;
	__be32 net;
	__u8 plen;
	int err;

	xvpc_fmt_ip(vip, ip);
	if (xvpc_parse_cidr(cidr, &net, &plen))
		return api_fail(c, 500, "internal", NULL,
				"VPC %u record is damaged", id);
	host = ntohl(vip) - ntohl(net);
	last = plen ? (1u << (32 - plen)) - 1 : UINT32_MAX;
	if (!xvpc_cidr_contains(net, plen, vip) || host == 0 || host == last)
		return api_fail(c, 400, "invalid_value", "vip",
				"vip %s must be a host address of the VPC's "
				"%s",
				ip, cidr);
	err = vip_subnet(api, id, vip, &sub);
	if (err < 0)
		return api_fail_store(c, err);
	if (err)
		return api_fail(c, 400, "invalid_value", "vip",
				"vip %s is inside subnet %u: a VIP must be "
				"an address of the VPC outside its subnets",
				ip, sub);
	return 0;
}

/* A public VIP: in a --public-prefix range, outside the VPC's CIDR (the
 * tenant's private space, where a later subnet could take it). */
static int check_public_vip(struct api *api, struct api_ctx *c,
			    json_object *vpc, __be32 vip)
{
	char ip[XVPC_IP_STRLEN];
	const char *cidr = api_str(vpc, "cidr");
	bool in = false;
	__be32 net;
	__u8 plen;

	if (!api->n_public_prefix)
		return api_fail(c, 403, "forbidden", "public",
				"public load balancers are not enabled: the "
				"controller has no --public-prefix");
	xvpc_fmt_ip(vip, ip);
	for (int i = 0; !in && i < api->n_public_prefix; i++)
		in = xvpc_cidr_contains(api->public_prefix[i].net,
					api->public_prefix[i].plen, vip);
	if (!in)
		return api_fail(c, 400, "invalid_value", "vip",
				"vip %s is outside the public prefixes this "
				"controller hands out (--public-prefix)",
				ip);
	if (xvpc_parse_cidr(cidr, &net, &plen))
		return api_fail(c, 500, "internal", NULL,
				"VPC %lld record is damaged",
				(long long)api_int(vpc, "id"));
	if (xvpc_cidr_contains(net, plen, vip))
		return api_fail(c, 400, "invalid_value", "vip",
				"vip %s is inside the VPC's %s: a public VIP "
				"must be outside the VPC's CIDR",
				ip, cidr);
	return 0;
}

/* Whether load balancer record lb has the backend ip:port (its port
 * absent or 0: the load balancer's). */
static bool serves(json_object *lb, __be32 ip, int64_t port)
{
	json_object *be = json_object_object_get(lb, "backends");

	if (!json_object_is_type(be, json_type_array))
		return false;
	for (size_t m = 0; m < json_object_array_length(be); m++) {
		json_object *b = json_object_array_get_idx(be, m);
		__be32 bip;

		if (!xvpc_parse_ip(api_str(b, "ip") ?: "", &bip) && bip == ip &&
		    (api_int(b, "port") ?: api_int(lb, "port")) == port)
			return true;
	}
	return false;
}

/* Whether a backend of s (a public service of vpc) already serves another
 * public load balancer of the VPC with the same protocol: 1 with *other
 * and *j (the backend's index in s) set, 0 when none, or a store error. */
static int public_backend_taken(struct api *api, uint32_t vpc, uint32_t self,
				const struct xvpc_state_svc *s, uint32_t *other,
				__u32 *j)
{
	struct keys ks = {0};
	char prefix[64], key[64];
	int err, found = 0;

	snprintf(prefix, sizeof(prefix), "vl/%010u/", vpc);
	err = store_list(api->store, prefix, NULL, 0, keys_add, &ks);
	if (err >= 0)
		err = ks.err;
	for (size_t i = 0; !err && !found && i < ks.n; i++) {
		uint32_t id = strtoul(strrchr(ks.k[i], '/') + 1, NULL, 10);
		json_object *o;

		snprintf(key, sizeof(key), KF_ID, "lb", id);
		if (id == self || api_load(api, key, &o, NULL))
			continue;
		if (is_public(o) &&
		    !strcmp(api_str(o, "protocol") ?: "", proto_str(s->proto)))
			for (__u32 k = 0; !found && k < s->n_backends; k++) {
				const struct xvpc_state_lb_backend *b =
					&s->backends[k];

				if (serves(o, b->ip, b->port ?: s->port)) {
					found = 1;
					*other = id;
					*j = k;
				}
			}
		json_object_put(o);
	}
	free(ks.k);
	return err < 0 ? err : found;
}

/* The public service rules that need the store: a taken public
 * VIP:port/protocol (409 without its owner, unless it is the caller's)
 * and backends shared with another public load balancer of the VPC. */
static int check_public_store(struct api *api, struct api_ctx *c, uint32_t vpc,
			      uint32_t self, const struct xvpc_state_svc *s,
			      bool ident)
{
	char key[64], ip[XVPC_IP_STRLEN], field[32];
	uint32_t other;
	json_object *o;
	__u32 j;
	int err;

	xvpc_fmt_ip(s->vip, ip);
	public_key(key, sizeof(key), s->vip, s->port, s->proto);
	if (ident && !api_load(api, key, &o, NULL)) {
		uint32_t id = api_int(o, "lb");
		json_object *l;

		json_object_put(o);
		snprintf(key, sizeof(key), KF_ID, "lb", id);
		if (!api_load(api, key, &l, NULL)) {
			other = api_int(l, "tenant") == c->tenant ? id : 0;
			json_object_put(l);
			if (other)
				return api_fail(
					c, 409, "exists", "vip",
					"load balancer %u already serves the "
					"public %s:%u/%s",
					other, ip, s->port,
					proto_str(s->proto));
		}
		return api_fail(c, 409, "exists", "vip",
				"the public %s:%u/%s is taken", ip, s->port,
				proto_str(s->proto));
	}
	err = public_backend_taken(api, vpc, self, s, &other, &j);
	if (err < 0)
		return api_fail_store(c, err);
	if (!err)
		return 0;
	snprintf(field, sizeof(field), "backends[%u]", j);
	return api_fail(c, 409, "in_use", field,
			"backend %s:%u already serves public load balancer "
			"%u; a backend serves one public VIP",
			xvpc_fmt_ip(s->backends[j].ip, ip),
			s->backends[j].port ?: s->port, other);
}

/* ---- create ---------------------------------------------------------- */

static const struct api_field lb_fields[] = {
	{"vpc", F_INT, true, false},
	{"name", F_STR, false, true},
	{"vip", F_STR, true, false},
	{"port", F_INT, true, false},
	{"protocol", F_STR, true, false},
	{"backends", F_ARRAY, false, true},
	{"health_check", F_OBJECT, false, true},
	{"public", F_BOOL, false, false},
	{NULL, 0, false, false},
};

struct lb_req {
	uint32_t vpc;
	const char *name;
	bool pub;
	const struct xvpc_state_svc *svc;
};

static int lb_create_once(struct api *api, struct api_ctx *c,
			  const struct lb_req *r)
{
	const struct xvpc_state_svc *s = r->svc;
	char idem[256], key[128], ip[XVPC_IP_STRLEN];
	struct api_txb t = {0};
	json_object *vpc, *o;
	uint64_t vver;
	uint32_t id;
	int err;

	if (api_idem_lookup(api, c, "lb", idem, sizeof(idem), &id))
		return -1;
	if (id)
		return reply_lb(api, c, id, 200);
	if (api_load_owned(api, c, "vpc", r->vpc, &vpc, &vver, "vpc"))
		return -1;
	if (r->pub ? check_public_vip(api, c, vpc, s->vip) ||
			     check_public_store(api, c, r->vpc, 0, s, true)
		   : check_vip(api, c, vpc, s->vip)) {
		err = -1;
		goto out;
	}
	xvpc_fmt_ip(s->vip, ip);
	ident_key(key, sizeof(key), r->vpc, s->vip, s->port, s->proto);
	if (!api_load(api, key, &o, NULL)) {
		err = api_fail(c, 409, "exists", "vip",
			       "VPC %u already has load balancer %lld for "
			       "%s:%u/%s",
			       r->vpc, (long long)api_int(o, "lb"), ip, s->port,
			       proto_str(s->proto));
		json_object_put(o);
		goto out;
	}
	err = api_seq_next(api, "lb", &id);
	if (err) {
		err = err == -ENOSPC ? api_fail(c, 507, "exhausted", NULL,
						"no load balancer ids left")
				     : api_fail_store(c, err);
		goto out;
	}
	snprintf(key, sizeof(key), KF_ID, "vpc", r->vpc);
	api_txb_put(&t, key, vpc, vver);
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "tenant", json_object_new_int64(c->tenant));
	json_object_object_add(o, "vpc", json_object_new_int64(r->vpc));
	json_object_object_add(o, "name",
			       json_object_new_string(r->name ? r->name : ""));
	json_object_object_add(o, "vip", json_object_new_string(ip));
	json_object_object_add(o, "port", json_object_new_int64(s->port));
	json_object_object_add(o, "protocol",
			       json_object_new_string(proto_str(s->proto)));
	json_object_object_add(o, "public", json_object_new_boolean(r->pub));
	set_service(o, s);
	if (idem[0])
		json_object_object_add(o, "_idem",
				       json_object_new_string(idem));
	snprintf(key, sizeof(key), KF_ID, "lb", id);
	api_txb_put(&t, key, o, STORE_ABSENT);
	json_object_put(o);
	snprintf(key, sizeof(key), KF_IDX, "tl", c->tenant, id);
	api_txb_ref(&t, key, NULL, 0, STORE_ABSENT);
	snprintf(key, sizeof(key), KF_IDX, "vl", r->vpc, id);
	api_txb_ref(&t, key, NULL, 0, STORE_ABSENT);
	ident_key(key, sizeof(key), r->vpc, s->vip, s->port, s->proto);
	api_txb_ref(&t, key, "lb", id, STORE_ABSENT);
	if (r->pub) {
		o = json_object_new_object();
		json_object_object_add(o, "lb", json_object_new_int64(id));
		json_object_object_add(o, "vpc", json_object_new_int64(r->vpc));
		public_key(key, sizeof(key), s->vip, s->port, s->proto);
		api_txb_put(&t, key, o, STORE_ABSENT);
		json_object_put(o);
	}
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
	pr_debug("api: tenant %u created %sload balancer %u (VPC %u, "
		 "%s:%u/%s)",
		 c->tenant, r->pub ? "public " : "", id, r->vpc, ip, s->port,
		 proto_str(s->proto));
	err = reply_lb(api, c, id, 201);
out:
	json_object_put(vpc);
	return err;
}

static int retry(struct api_ctx *c, int ret)
{
	return ret == -EAGAIN ? api_fail_store(c, -EAGAIN) : ret;
}

int api_lb_create(struct api *api, struct api_ctx *c)
{
	struct xvpc_state *st = NULL;
	struct lb_req r = {0};
	json_object *body;
	int64_t vpc;
	int ret = -EAGAIN;

	if (api_parse_body(c, lb_fields, false, &body))
		return -1;
	vpc = api_int(body, "vpc");
	r.name = api_str(body, "name");
	r.pub = json_object_get_boolean(json_object_object_get(body, "public"));
	if (vpc < 1 || vpc > ID_MAX) {
		ret = api_fail(c, 404, "not_found", "vpc", "no VPC %lld",
			       (long long)vpc);
	} else if (r.name && !api_valid_name(r.name)) {
		ret = api_fail(c, 400, "invalid_value", "name",
			       "name must be 1 .. 63 characters of A-Z a-z "
			       "0-9 . _ -");
	} else if (!check_service(
			   c, vpc, api_str(body, "vip"), api_int(body, "port"),
			   api_str(body, "protocol"), r.pub,
			   json_object_object_get(body, "backends"),
			   json_object_object_get(body, "health_check"), &st)) {
		r.vpc = vpc;
		r.svc = &st->svcs[0];
		for (int i = 0; ret == -EAGAIN && i < API_RETRIES; i++)
			ret = lb_create_once(api, c, &r);
		ret = retry(c, ret);
	} else {
		ret = -1;
	}
	xvpc_state_free(st);
	json_object_put(body);
	return ret;
}

/* ---- list, get ------------------------------------------------------- */

int api_lb_list(struct api *api, struct api_ctx *c)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "tl/%010u/", c->tenant);
	return api_list_reply(api, c, prefix, "lb");
}

int api_lb_get(struct api *api, struct api_ctx *c)
{
	uint32_t id;

	if (api_param_id(c, &id))
		return -1;
	return reply_lb(api, c, id, 200);
}

/* ---- update ---------------------------------------------------------- */

static int lb_patch_once(struct api *api, struct api_ctx *c, uint32_t id,
			 json_object *body)
{
	struct xvpc_state *st = NULL;
	struct api_txb t = {0};
	json_object *o, *p, *be, *hc, *vpc = NULL;
	const char *name = api_str(body, "name");
	uint64_t ver, vver;
	char key[64];
	bool pub;
	int err;

	if (api_load_owned(api, c, "lb", id, &o, &ver, NULL))
		return -1;
	pub = is_public(o);
	if (!json_object_object_get_ex(body, "backends", &be))
		be = json_object_object_get(o, "backends");
	if (!json_object_object_get_ex(body, "health_check", &hc))
		hc = json_object_object_get(o, "health_check");
	if (check_service(c, api_int(o, "vpc"), api_str(o, "vip"),
			  api_int(o, "port"), api_str(o, "protocol"), pub, be,
			  hc, &st)) {
		json_object_put(o);
		return -1;
	}
	/* A public one: its backends against the VPC's other public load
	 * balancers, serialized with their changes by the VPC record's
	 * version (create rewrites it too). */
	if (pub && (api_load_owned(api, c, "vpc", api_int(o, "vpc"), &vpc,
				   &vver, "vpc") ||
		    check_public_store(api, c, api_int(o, "vpc"), id,
				       &st->svcs[0], false))) {
		xvpc_state_free(st);
		json_object_put(vpc);
		json_object_put(o);
		return -1;
	}
	set_service(o, &st->svcs[0]);
	xvpc_state_free(st);
	if (name)
		json_object_object_add(o, "name", json_object_new_string(name));
	snprintf(key, sizeof(key), KF_ID, "lb", id);
	api_txb_put(&t, key, o, ver);
	if (vpc) {
		snprintf(key, sizeof(key), KF_ID, "vpc",
			 (uint32_t)api_int(o, "vpc"));
		api_txb_put(&t, key, vpc, vver);
		json_object_put(vpc);
	}
	err = api_txb_commit(api, &t);
	if (err) {
		json_object_put(o);
		return err == -ECANCELED ? -EAGAIN : api_fail_store(c, err);
	}
	p = api_public(o);
	json_object_put(o);
	add_backend_health(api, p);
	return api_reply(c, 200, p);
}

int api_lb_patch(struct api *api, struct api_ctx *c)
{
	json_object *body;
	const char *name;
	uint32_t id;
	int ret = -EAGAIN;

	if (api_param_id(c, &id) || api_parse_body(c, lb_fields, true, &body))
		return -1;
	name = api_str(body, "name");
	if (name && !api_valid_name(name))
		ret = api_fail(c, 400, "invalid_value", "name",
			       "name must be 1 .. 63 characters of A-Z a-z "
			       "0-9 . _ -");
	for (int i = 0; ret == -EAGAIN && i < API_RETRIES; i++)
		ret = lb_patch_once(api, c, id, body);
	ret = retry(c, ret);
	json_object_put(body);
	return ret;
}

/* ---- delete ---------------------------------------------------------- */

int api_lb_delete(struct api *api, struct api_ctx *c)
{
	struct api_txb t = {0};
	json_object *o;
	char key[128];
	uint64_t ver;
	uint32_t id, vpc;
	__be32 vip = 0;
	__u8 proto;
	int err;

	if (api_param_id(c, &id) ||
	    api_load_owned(api, c, "lb", id, &o, &ver, NULL))
		return -1;
	vpc = api_int(o, "vpc");
	xvpc_parse_ip(api_str(o, "vip"), &vip);
	snprintf(key, sizeof(key), KF_ID, "lb", id);
	api_txb_op(&t, STORE_DEL, key, ver);
	snprintf(key, sizeof(key), KF_IDX, "tl", c->tenant, id);
	api_txb_op(&t, STORE_DEL, key, STORE_ANY);
	snprintf(key, sizeof(key), KF_IDX, "vl", vpc, id);
	api_txb_op(&t, STORE_DEL, key, STORE_ANY);
	proto = strcmp(api_str(o, "protocol") ?: "", "udp") ? IPPROTO_TCP
							    : IPPROTO_UDP;
	ident_key(key, sizeof(key), vpc, vip, api_int(o, "port"), proto);
	api_txb_op(&t, STORE_DEL, key, STORE_ANY);
	if (is_public(o)) {
		public_key(key, sizeof(key), vip, api_int(o, "port"), proto);
		api_txb_op(&t, STORE_DEL, key, STORE_ANY);
	}
	if (api_str(o, "_idem"))
		api_txb_op(&t, STORE_DEL, api_str(o, "_idem"), STORE_ANY);
	json_object_put(o);
	err = api_txb_commit(api, &t);
	if (err == -ECANCELED)
		return api_fail(c, 409, "conflict", NULL,
				"load balancer %u changed meanwhile; retry",
				id);
	if (err)
		return api_fail_store(c, err);
	/* Its backends' health reports; the leader's sweep finishes what
	 * fails here. */
	err = lbh_clear_lb(api->store, id);
	if (err)
		pr_debug("api: cannot clear the health reports of load "
			 "balancer %u yet: %s",
			 id, strerror(-err));
	pr_debug("api: tenant %u deleted load balancer %u", c->tenant, id);
	return api_reply(c, 204, NULL);
}
