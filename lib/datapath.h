/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The datapath loader: loads the BPF programs through their skeletons,
 * pins maps and programs under a pin directory (XVPC_PIN_DIR by default),
 * attaches them, and hands out map fds. The node agent, xvpcctl, the
 * selftests and the benchmarks all use it.
 *
 * Restart policy: maps are pinned by name and always adopted when their ABI
 * version matches, never flushed. Programs are reloaded and swapped in
 * atomically (tc filter replace; the XDP program is kept when it is the same
 * code). So a restart of the agent never drops a packet.
 */
#ifndef XVPC_DATAPATH_H
#define XVPC_DATAPATH_H

#include <stdbool.h>
#include <linux/types.h>

#include "xvpc_abi.h"

enum xvpc_underlay_mode {
	XVPC_UNDERLAY_TC = 0, /* tc ingress: keeps GSO on veth underlays */
	XVPC_UNDERLAY_XDP,    /* XDP through libxdp's dispatcher */
};

enum xvpc_map_id {
	XVPC_M_ENDPOINTS = 0,
	XVPC_M_SUBNETS,
	XVPC_M_IFACES,
	XVPC_M_VNIS,
	XVPC_M_CONFIG,
	XVPC_M_STATS,
	XVPC_M_EP_STATS,
	XVPC_M_EVENTS,
	XVPC_M_MISS_RL,
	XVPC_M_LB_SERVICES,
	XVPC_M_LB_TABLES,
	XVPC_M_LB_CT,
	XVPC_M_LB_CONFIG,
	XVPC_M_VPCS,
	XVPC_M_NODES,
	XVPC_M_LEARNED,
	XVPC_M_LB_NS, /* north-south: backend -> public VIP (lib/lb.h) */
	XVPC_M__COUNT,
};

enum xvpc_prog_id {
	XVPC_P_FROM_EP = 0, /* tc ingress of an endpoint's host-side iface */
	XVPC_P_TC_DECAP,    /* tc ingress of the underlay */
	XVPC_P_XDP_DECAP,   /* XDP of the underlay */
	XVPC_P__COUNT,
};

struct xvpc_dp_opts {
	const char *pin_dir;	     /* NULL: XVPC_PIN_DIR */
	const char *underlay_ifname; /* NULL: load and pin, attach nothing */
	enum xvpc_underlay_mode mode;
	__be32 node_ip; /* 0: first IPv4 address of the underlay */
	bool no_pin;	/* selftests: private maps, nothing pinned */
};

struct xvpc_dp;

/* Load (or adopt) the datapath and attach it to the underlay. */
int xvpc_dp_open(const struct xvpc_dp_opts *opts, struct xvpc_dp **out);
/* Open the pinned maps only, for inspection (xvpcctl). */
int xvpc_dp_open_pinned(const char *pin_dir, struct xvpc_dp **out);
/* Release user-space handles; everything pinned stays and keeps working. */
void xvpc_dp_close(struct xvpc_dp *dp);
/* Detach from every interface in the ifaces map and the underlay, unpin all
 * and remove the pin directory. */
int xvpc_dp_uninstall(const char *pin_dir, const char *underlay_ifname);

int xvpc_dp_map_fd(const struct xvpc_dp *dp, enum xvpc_map_id id);
int xvpc_dp_prog_fd(const struct xvpc_dp *dp, enum xvpc_prog_id id);
const char *xvpc_dp_map_name(enum xvpc_map_id id);
const char *xvpc_dp_pin_dir(const struct xvpc_dp *dp);

/* Bind an endpoint to its host-side interface: write the binding, set the
 * interface MTU to underlay MTU - 50 and attach the endpoint program (tc
 * ingress, atomic replace). Idempotent. */
int xvpc_dp_bind_iface(struct xvpc_dp *dp, int ifindex,
		       const struct xvpc_iface *binding);
/* Detach the program (if the interface still exists) and drop the binding
 * and its counters. Idempotent: -ENOENT is not an error. */
int xvpc_dp_unbind_iface(struct xvpc_dp *dp, int ifindex);

/* Name of a counter index (enum xvpc_stat), e.g. "drop_spoof_mac". */
/* The health probe path (docs/loadbalancer.md, "Health checks"): the
 * node's probe address (0: off) and the probe sockets' source ports (host
 * order), written into xvpc_config. */
int xvpc_dp_set_probe(struct xvpc_dp *dp, __be32 probe_ip, __u16 port_min,
		      __u16 port_max);
const char *xvpc_stat_name(unsigned int stat);
/* Sum of a per-CPU counter over all CPUs. */
int xvpc_dp_read_stat(const struct xvpc_dp *dp, unsigned int stat,
		      struct xvpc_counter *out);

#endif
