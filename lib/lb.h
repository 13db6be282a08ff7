/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Load balancer services in the datapath maps (docs/loadbalancer.md,
 * "Datapath"): set or replace a service with its weighted backends, delete
 * one, list them. The agent calls these; the selftests and the benchmark
 * too.
 *
 * A service's Maglev table is built in user space (lb/maglev.h) into a new
 * inner array, which then replaces the old one in xvpc_lb_tables with a
 * single map update: a packet sees the old table or the new one, never half
 * of each. Conntrack entries of a replaced service stay (established flows
 * keep their backend); those of a deleted service are flushed.
 *
 * Functions return 0 or a negative errno and change nothing on bad input.
 */
#ifndef XVPC_LIB_LB_H
#define XVPC_LIB_LB_H

#include <stddef.h>
#include <linux/types.h>

#include "datapath.h"
#include "lb/maglev.h"
#include "xvpc_abi.h"

/* One backend as the caller gives it. Its Maglev identity is "ip:port", so
 * every node builds the same table from the same backends. */
struct xvpc_lb_backend_spec {
	__be32 ip;
	__be16 port; /* 0: the service's port */
	__u32 weight;
};

struct xvpc_lb_service_info {
	struct xvpc_lb_svc_key key;
	struct xvpc_lb_svc svc;
};

/* Pure checks, no maps: a TCP or UDP service with a VIP and a port, at most
 * m backends, none duplicated, none at 0.0.0.0, m 0 (the default) or an
 * allowed Maglev size. -EINVAL with a message saying what is wrong. */
int xvpc_lb_validate(const struct xvpc_lb_svc_key *key,
		     const struct xvpc_lb_backend_spec *be, __u32 n, __u32 m);

/* Pure: the lookup table of a service: table[0..m-1] (m is the context's
 * size). Backend ports of 0 become @svc_port. -ENOENT when no backend has a
 * weight; otherwise as xvpc_maglev_build(). */
int xvpc_lb_build_table(struct xvpc_maglev_ctx *ctx,
			const struct xvpc_lb_backend_spec *be, __u32 n,
			__be16 svc_port, struct xvpc_lb_backend *table);

/* Pure: the table entry a flow hashes to, as the datapath computes it. */
__u32 xvpc_lb_flow_entry(const struct xvpc_lb_ct_key *flow, __u32 m);

/* Set or replace a service. m = 0: XVPC_MAGLEV_M_DEFAULT. A service
 * without weighted backends is kept, and the datapath drops its packets
 * with drop_lb_no_backend. -ENOSPC when every slot is taken. */
int xvpc_lb_set_service(struct xvpc_dp *dp, const struct xvpc_lb_svc_key *key,
			const struct xvpc_lb_backend_spec *be, __u32 n,
			__u32 m);
/* North-south (docs/loadbalancer.md, "North-south"): set or replace a
 * public service, key->vpc_id == XVPC_LB_PUBLIC, whose backends are
 * endpoints of @backend_vpc; also writes xvpc_lb_ns (backend -> VIP:port)
 * and removes the entries of backends no longer listed. -EEXIST (nothing
 * changed) when a backend ip:port already serves another public VIP:port.
 * xvpc_lb_set_service() refuses key->vpc_id == XVPC_LB_PUBLIC. */
int xvpc_lb_set_public_service(struct xvpc_dp *dp,
			       const struct xvpc_lb_svc_key *key,
			       __u32 backend_vpc,
			       const struct xvpc_lb_backend_spec *be, __u32 n,
			       __u32 m);
/* Delete a service, its table and its conntrack entries (and, for a
 * public one, its xvpc_lb_ns entries). -ENOENT. */
int xvpc_lb_delete_service(struct xvpc_dp *dp,
			   const struct xvpc_lb_svc_key *key);
/* Up to @max services into @out; *count gets how many exist. */
int xvpc_lb_list_services(struct xvpc_dp *dp, struct xvpc_lb_service_info *out,
			  size_t max, size_t *count);
/* Conntrack timeouts; 0 keeps the built-in default (xvpc_abi.h). */
int xvpc_lb_set_timeouts(struct xvpc_dp *dp, __u64 tcp_ns, __u64 closing_ns,
			 __u64 udp_ns);

#endif
