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

struct xvpc_state_vpc {
	__u32 id;
	char name[XVPC_STATE_NAME_MAX];
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

struct xvpc_state {
	__u64 revision;
	struct xvpc_state_vpc *vpcs;
	size_t n_vpcs, cap_vpcs;
	struct xvpc_state_subnet *subnets;
	size_t n_subnets, cap_subnets;
	struct xvpc_state_ep *eps;
	size_t n_eps, cap_eps;
	bool validated; /* set by xvpc_state_validate(); cleared by adds */
};

struct xvpc_state *xvpc_state_new(void);
void xvpc_state_free(struct xvpc_state *st);

/* Builders: copy the object in; no validation until xvpc_state_validate(). */
int xvpc_state_add_vpc(struct xvpc_state *st, const struct xvpc_state_vpc *v);
int xvpc_state_add_subnet(struct xvpc_state *st,
			  const struct xvpc_state_subnet *s);
int xvpc_state_add_ep(struct xvpc_state *st, const struct xvpc_state_ep *e);

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
int xvpc_state_parse(const char *json, size_t len, __be32 node_ip,
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

#endif
