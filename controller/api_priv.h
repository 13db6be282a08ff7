/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared by the API's source files (api.c, api_objects.c, api_state.c). */
#ifndef XVPC_CTRL_API_PRIV_H
#define XVPC_CTRL_API_PRIV_H

#include <json-c/json.h>
#include <linux/types.h>

#include "api.h"

#define API_RETRIES 64
#define ID_MAX	    0xffffffffu

struct api_ctx {
	const struct api_req *req;
	struct api_resp *resp;
	char param[64];	 /* the {id} or {name} of the path */
	uint32_t tenant; /* authenticated tenant; 0 for the admin */
	bool admin;
};

/* Store keys. Integer ids are zero padded so key order is id order. */
#define K_ADMIN "admin/token"
#define KF_ID	"%s/%010u"
#define KF_IDX	"%s/%010u/%010u"
/* Public load balancers: lbp/<vip hex>/<port>/<protocol> = {"lb", "vpc"}
 * (api_lb.c writes it, api_state.c lists it). */
#define API_LB_PUBLIC_PREFIX "lbp/"

/* Fills an error response {"error": {"code", "field", "message"}} and
 * returns -1 so handlers can `return api_fail(...)`. */
int api_fail(struct api_ctx *c, int status, const char *code, const char *field,
	     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Serializes obj (and drops it) as the response. Returns 0. */
int api_reply(struct api_ctx *c, int status, json_object *obj);
/* Maps a store error to a response (503/500). */
int api_fail_store(struct api_ctx *c, int err);

/* Reads and parses a JSON record; -ENOENT when absent. */
int api_load(struct api *api, const char *key, json_object **obj,
	     uint64_t *ver);
const char *api_str(json_object *o, const char *field);
int64_t api_int(json_object *o, const char *field);
/* Copy of o without the internal fields (those starting with '_'). */
json_object *api_public(json_object *o);
/* Puts a JSON record in an op; the string lives in strs[] (freed by
 * api_strs_free). */
struct api_strs {
	char *s[32];
	int n;
};
void api_op_put_json(struct store_op *op, struct api_strs *strs,
		     const char *key, json_object *obj, uint64_t expect);
void api_strs_free(struct api_strs *strs);

/* A multi-object store transaction being built: puts of JSON records,
 * index references, deletes and checks, committed at once. The keys and
 * values are copies owned by the builder until the commit. */
#define API_TXB_OPS 12
struct api_txb {
	struct store_op ops[API_TXB_OPS];
	size_t n;
	struct api_strs strs;
};
void api_txb_put(struct api_txb *t, const char *key, json_object *o,
		 uint64_t expect);
/* An index record: {"field": v}, or {} when field is NULL. */
void api_txb_ref(struct api_txb *t, const char *key, const char *field,
		 int64_t v, uint64_t expect);
/* A delete (STORE_DEL) or check (STORE_CHECK) of key. */
void api_txb_op(struct api_txb *t, enum store_op_type type, const char *key,
		uint64_t expect);
/* store_txn() of the ops, then the builder is empty again. */
int api_txb_commit(struct api *api, struct api_txb *t);

/* Loads kind/<id> owned by the caller's tenant. A missing object and
 * another tenant's object are the same 404 (a reply is filled and -1
 * returned); `field` names the body field that referred to it, if any. */
int api_load_owned(struct api *api, struct api_ctx *c, const char *kind,
		   uint32_t id, json_object **o, uint64_t *ver,
		   const char *field);

/* Body fields: what may appear, with which type. */
enum api_ftype {
	F_STR,
	F_INT,
	F_STR_OR_NULL,
	F_ARRAY,
	F_OBJECT,
	F_BOOL,
};

struct api_field {
	const char *name;
	enum api_ftype type;
	bool required; /* on create */
	bool patchable;
};

/* Parses the body against fields (patch: only patchable fields, none
 * required). On error the response is filled and -1 returned. */
int api_parse_body(struct api_ctx *c, const struct api_field *fields,
		   bool patch, json_object **out);
/* The path parameter as an id; fills a 404 when it is not one. */
int api_param_id(struct api_ctx *c, uint32_t *id);
/* ?limit= and ?after= (after as an id when ids is true). */
int api_list_params(struct api_ctx *c, bool ids, size_t *limit, char *after,
		    size_t after_len);
/* Lists objects: `index` is a prefix of keys whose last segment is an id
 * (or name) of a record under `primary` ("vpc"); the page is the reply. */
int api_list_reply(struct api *api, struct api_ctx *c, const char *index,
		   const char *primary);
bool api_valid_name(const char *s);
/* A new id of a kind (tenant, vpc, subnet, port): handed out from a block
 * of API_ID_BLOCK ids reserved in the store (seq/<kind>), so creations do
 * not all contend on one record; the next block is reserved ahead by the
 * request that takes the block's middle id, so the others never wait for
 * that commit. Ids grow; a restart skips the rest of the block and the
 * one reserved ahead. -ENOSPC when none is left. */
int api_seq_next(struct api *api, const char *kind, uint32_t *id);
/* Idempotency: when the request has a key, sets key (idem/<tenant>/<kind>/
 * <key>) and, when a previous request created the object, *id. */
int api_idem_lookup(struct api *api, struct api_ctx *c, const char *kind,
		    char *key, size_t key_len, uint32_t *id);

/* Handlers. */
int api_tenant_create(struct api *api, struct api_ctx *c);
int api_tenant_list(struct api *api, struct api_ctx *c);
int api_tenant_get(struct api *api, struct api_ctx *c);
int api_tenant_patch(struct api *api, struct api_ctx *c);
int api_tenant_delete(struct api *api, struct api_ctx *c);
int api_tenant_token(struct api *api, struct api_ctx *c);
int api_node_create(struct api *api, struct api_ctx *c);
int api_node_list(struct api *api, struct api_ctx *c);
int api_node_get(struct api *api, struct api_ctx *c);
int api_node_patch(struct api *api, struct api_ctx *c);
int api_node_delete(struct api *api, struct api_ctx *c);
int api_node_state(struct api *api, struct api_ctx *c);
int api_node_resolve(struct api *api, struct api_ctx *c);
/* Backend health reports of a node's agent (api_health.c). */
int api_node_health(struct api *api, struct api_ctx *c);
/* The VPCs a node is entitled to (it hosts a bound port in it, is one of
 * its gateways, or the VPC has a public load balancer): a malloc'd array
 * in *ids (the caller frees it). */
int api_node_entitled(struct api *api, const char *node, uint32_t **ids,
		      size_t *n);
/* A state long-poll that found nothing for its node up to since parks
 * (api_wake.c) until a change concerns it: one of its VPCs, its node's
 * indexes or ports, or every node. Returns 0 when it should look again
 * (a change, the deadline, every_ms passed, or the server stopping;
 * p->clean then says from where),
 * -EPIPE when its client has closed the connection. */
struct api_park {
	const char *node;
	const uint32_t *vpcs; /* every VPC the node gets */
	size_t n_vpcs;
	uint64_t since;
	long long deadline_ms; /* CLOCK_MONOTONIC */
	int every_ms;	       /* look at the client this often */
	int client_fd;
	/* Out: the changes up to here hold nothing for the node (the poll
	 * may look from there on). */
	uint64_t clean;
};
int api_park(struct api *api, struct api_park *p);
/* Stops the dispatcher (api_fini). */
void api_wake_fini(struct api *api);
/* The client closed its end (an agent killed mid-poll): the kernel has its
 * FIN or RST. fd <= 0: unknown, never gone. */
bool api_client_gone(int fd);
/* Frees the liveness table (api_fini). */
void api_seen_free(struct api *api);
int api_vpc_create(struct api *api, struct api_ctx *c);
int api_vpc_list(struct api *api, struct api_ctx *c);
int api_vpc_get(struct api *api, struct api_ctx *c);
int api_vpc_patch(struct api *api, struct api_ctx *c);
int api_vpc_delete(struct api *api, struct api_ctx *c);
int api_subnet_create(struct api *api, struct api_ctx *c);
int api_subnet_list(struct api *api, struct api_ctx *c);
int api_subnet_get(struct api *api, struct api_ctx *c);
int api_subnet_patch(struct api *api, struct api_ctx *c);
int api_subnet_delete(struct api *api, struct api_ctx *c);
int api_port_create(struct api *api, struct api_ctx *c);
int api_port_list(struct api *api, struct api_ctx *c);
int api_port_get(struct api *api, struct api_ctx *c);
int api_port_patch(struct api *api, struct api_ctx *c);
int api_port_delete(struct api *api, struct api_ctx *c);
/* Load balancers (api_lb.c). */
int api_lb_create(struct api *api, struct api_ctx *c);
int api_lb_list(struct api *api, struct api_ctx *c);
int api_lb_get(struct api *api, struct api_ctx *c);
int api_lb_patch(struct api *api, struct api_ctx *c);
int api_lb_delete(struct api *api, struct api_ctx *c);
/* 1 when vpc has a load balancer, 0 when not, or a store error. */
int api_lb_in_vpc(struct api *api, uint32_t vpc);
/* 1 with *lb and *vip when net/plen covers the VIP of a load balancer of
 * vpc, 0 when none, or a store error. */
int api_lb_vip_in(struct api *api, uint32_t vpc, __be32 net, __u8 plen,
		  uint32_t *lb, __be32 *vip);

#endif
