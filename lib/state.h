/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The desired state of one node (docs/state-format.md): VPCs, subnets and
 * endpoints, a strict JSON parser and validator, and a serializer.
 *
 * Life cycle: xvpc_state_new() or xvpc_state_parse(), then the add
 * functions (builders, e.g. for the controller), then xvpc_state_validate()
 * before use. Parsing validates on its own. A validated state keeps its
 * subnets sorted by (vpc, net) so xvpc_state_find_subnet() is a binary
 * search.
 *
 * Byte order as in maps/xvpc_abi.h: addresses network order, the rest host.
 */
#ifndef XVPC_STATE_H
#define XVPC_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <net/if.h>
#include <linux/types.h>

#define XVPC_STATE_NAME_MAX 64 /* VPC name, including the NUL */
#define XVPC_STATE_ERR_LEN  256

#define XVPC_STATE_GATEWAYS_MAX 4 /* = XVPC_MAX_GATEWAYS */

/* Distribution mode of a VPC (docs/learning.md). */
enum xvpc_state_mode {
	XVPC_MODE_PUSH = 0, /* every endpoint of the VPC is in the state */
	XVPC_MODE_LEARN,    /* local endpoints only; the rest is learned */
};

struct xvpc_state_vpc {
	__u32 id;
	char name[XVPC_STATE_NAME_MAX];
	enum xvpc_state_mode mode;
	/* learn mode: underlay addresses of the VPC's gateway nodes, which
	 * hold its full table (a gateway node's own state lists every
	 * endpoint of the VPC). */
	__u32 n_gateways;
	__be32 gateways[XVPC_STATE_GATEWAYS_MAX];
};

struct xvpc_state_subnet {
	__u32 vpc;
	__be32 net;
	__u8 plen;
	__u32 vni;
	__be32 gw_ip;
	__u8 gw_mac[6];
};

struct xvpc_state_ep {
	__u32 vpc;
	__be32 ip;
	__u8 mac[6];
	__be32 node_ip;
	char ifname[IF_NAMESIZE]; /* "" when not given */
};

/* Load balancer services (docs/state-format.md, "services"). */
#define XVPC_STATE_LB_BACKENDS_MAX 4096 /* backends of one service */
#define XVPC_STATE_HC_PATH_MAX	   128	/* HTTP path, including the NUL */

enum xvpc_state_hc_type {
	XVPC_HC_NONE = 0, /* every backend counts as up */
	XVPC_HC_TCP,	  /* a TCP connect that completes */
	XVPC_HC_HTTP,	  /* GET path answered with expect_status */
};

struct xvpc_state_hc {
	enum xvpc_state_hc_type type;
	__u32 interval_ms;   /* between probes of one backend */
	__u32 timeout_ms;    /* of one probe; <= interval_ms */
	__u32 rise;	     /* consecutive successes to come back */
	__u32 fall;	     /* consecutive failures to leave */
	__u32 expect_status; /* HTTP only */
	char path[XVPC_STATE_HC_PATH_MAX]; /* HTTP only */
};

struct xvpc_state_lb_backend {
	__be32 ip;
	__u16 port;   /* host order; 0: the service's port */
	__u32 weight; /* 0 .. 65535; 0: in the service, no new flows */
	/* Reported down by the agent next to it ("healthy": false in the
	 * state; docs/loadbalancer.md, "Health checks"): left out of the
	 * tables like a backend that fails a local probe. */
	bool down;
};

struct xvpc_state_svc {
	__u32 id; /* the load balancer's id in the API; 0: none (state file) */
	__u32 vpc;
	__be32 vip;
	__u16 port;				/* host order */
	__u8 proto;				/* IPPROTO_TCP or IPPROTO_UDP */
	struct xvpc_state_lb_backend *backends; /* owned by the state */
	__u32 n_backends;
	struct xvpc_state_hc hc;
	/* North-south: the VIP is a public address outside the VPC's
	 * subnets, reached from outside the overlay through any node that has
	 * the service (docs/loadbalancer.md, "North-south"). */
	bool public;
};

struct xvpc_state {
	__u64 revision;
	struct xvpc_state_vpc *vpcs;
	size_t n_vpcs, cap_vpcs;
	struct xvpc_state_subnet *subnets;
	size_t n_subnets, cap_subnets;
	struct xvpc_state_ep *eps;
	size_t n_eps, cap_eps;
	struct xvpc_state_svc *svcs;
	size_t n_svcs, cap_svcs;
	/* Underlay addresses of the cluster's member nodes: the only nodes
	 * that may teach this one an endpoint (learn mode). */
	__be32 *nodes;
	size_t n_nodes, cap_nodes;
	bool validated; /* set by xvpc_state_validate(); cleared by adds */
};

struct xvpc_state *xvpc_state_new(void);
void xvpc_state_free(struct xvpc_state *st);

/* Builders: copy the object in; no validation until xvpc_state_validate(). */
int xvpc_state_add_vpc(struct xvpc_state *st, const struct xvpc_state_vpc *v);
int xvpc_state_add_subnet(struct xvpc_state *st,
			  const struct xvpc_state_subnet *s);
int xvpc_state_add_ep(struct xvpc_state *st, const struct xvpc_state_ep *e);
int xvpc_state_add_node(struct xvpc_state *st, __be32 node_ip);
/* Copies s and its backends array. A zero hc gets the defaults of
 * xvpc_state_hc_defaults() when validated. */
int xvpc_state_add_svc(struct xvpc_state *st, const struct xvpc_state_svc *s);
/* Fill the unset (0) fields of a health check with the documented
 * defaults: interval 2000 ms, timeout min(1000, interval), rise 2, fall 3,
 * path "/", expect_status 200. */
void xvpc_state_hc_defaults(struct xvpc_state_hc *hc);

/*
 * Check every rule of docs/state-format.md. node_ip is this node's underlay
 * address (network order), used for "ifname is required for local
 * endpoints"; 0 skips that rule (the controller validates for all nodes).
 * On error returns -EINVAL and writes a message naming the object and the
 * field into err (if not NULL). Sorts the subnets.
 */
int xvpc_state_validate(struct xvpc_state *st, __be32 node_ip, char *err,
			size_t errlen);

/* Parse and validate a JSON document. Unknown fields, wrong types and every
 * broken rule are errors (-EINVAL with a message); *out is set only on
 * success. */
struct json_object;
/* The first key of @o that is not in the NULL-terminated @allowed, or NULL:
 * every strict JSON reader of the project refuses unknown fields with it. */
const char *xvpc_json_unknown_field(struct json_object *o,
				    const char *const *allowed);

int xvpc_state_parse(const char *json, size_t len, __be32 node_ip,
		     struct xvpc_state **out, char *err, size_t errlen);
/* Same, from a document already parsed (strictly: JSON_TOKENER_STRICT, as
 * xvpc_state_parse does); top is only read. */
int xvpc_state_from_json(struct json_object *top, __be32 node_ip,
			 struct xvpc_state **out, char *err, size_t errlen);
/* Same, from a file; -errno with a message when it cannot be read. */
int xvpc_state_parse_file(const char *path, __be32 node_ip,
			  struct xvpc_state **out, char *err, size_t errlen);

/* Serialize to the same format. Returns a malloc'd NUL-terminated string in
 * *out (the caller frees it). pretty: indented, else one line. */
int xvpc_state_to_json(const struct xvpc_state *st, bool pretty, char **out);

/* The subnet of vpc that contains ip, or NULL. Needs a validated state. */
const struct xvpc_state_subnet *
xvpc_state_find_subnet(const struct xvpc_state *st, __u32 vpc, __be32 ip);

/* The VPC with that id, or NULL. Needs a validated state (binary search). */
const struct xvpc_state_vpc *xvpc_state_find_vpc(const struct xvpc_state *st,
						 __u32 id);

/* The service (vpc, vip, port, proto), or NULL. Linear. */
const struct xvpc_state_svc *xvpc_state_find_svc(const struct xvpc_state *st,
						 __u32 vpc, __be32 vip,
						 __u16 port, __u8 proto);

#endif
