/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Load balancer views for xvpcctl (cli/cmd_lbmaps.c), computed from the
 * maps only, never written: the services with each backend's share of the
 * lookup table (`map dump lb_services`), and which backend a flow gets and
 * why (`trace`), decided as bpf/lb.h and bpf/lb_ns.h decide it.
 *
 * They take an open datapath, pinned (xvpcctl) or private (tests).
 */
#ifndef XVPC_CLI_LBVIEW_H
#define XVPC_CLI_LBVIEW_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>

#include "xvpc_abi.h"

struct xvpc_dp;
struct json_object;

/* Every service, sorted by VPC, VIP, port and protocol:
 * {"services": [{"vpc", "public", "backend_vpc", "vip", "port", "proto",
 *   "slot", "m", "backends", "flows", "table": [{"ip", "port", "entries",
 *   "share", "flows"}]}]}. share: entries * 100 / m; flows: live forward
 * conntrack entries. */
int lbv_services_json(struct xvpc_dp *dp, struct json_object **out);
/* The human table of lbv_services_json()'s answer. */
void lbv_services_print(FILE *f, struct json_object *top);

/* Where the packet is. */
enum lbv_where {
	LBV_FROM_EP = 0, /* endpoint program: lb_from_ep() */
	LBV_PUBLIC,	 /* underlay, plain IPv4 to this node: lb_ns_match() */
	LBV_DECAP,	 /* underlay, after decapsulation: lb_reply_skb() */
};

enum lbv_kind {
	LBV_NONE = 0,	/* not load-balanced: the packet goes its way */
	LBV_OFF,	/* no service on this node: nothing looked up */
	LBV_CONNTRACK,	/* forward entry: its backend */
	LBV_MAGLEV,	/* new flow: the table entry's backend */
	LBV_REPLY,	/* reverse entry: source back to VIP:port */
	LBV_NO_BACKEND, /* service without backends: drop_lb_no_backend */
};

struct lbv_explain {
	enum lbv_kind kind;
	struct xvpc_lb_svc_key svc_key; /* kind MAGLEV, CONNTRACK, NO_BACKEND */
	struct xvpc_lb_svc svc;
	bool has_svc;
	struct xvpc_lb_backend be; /* the backend, or VIP:port for REPLY */
	__u32 hash, entry;	   /* MAGLEV */
	bool ct_found;		   /* an entry under the packet's tuple */
	struct xvpc_lb_ct ct;
	double age_s, idle_s;
	bool ct_expired; /* it exists but the datapath would not use it */
	char text[256];	 /* one line: what and why */
};

/* @key: the packet's tuple as it arrives (vpc_id: the endpoint's VPC,
 * XVPC_LB_PUBLIC for LBV_PUBLIC, the VNI's VPC for LBV_DECAP); @tcp_flags
 * as on the wire (0 for UDP). Reads the maps, writes nothing. */
int lbv_explain(struct xvpc_dp *dp, enum lbv_where where,
		const struct xvpc_lb_ct_key *key, __u8 tcp_flags,
		struct lbv_explain *out);
struct json_object *lbv_explain_json(const struct lbv_explain *e);

/* The conntrack entries a test run of the packet may write, as they were
 * before it; lbv_guard_undo() puts them back (an entry the run created is
 * deleted, one it replaced is restored, one it closed is reopened; a
 * refresh of a live entry's idle time stays, as from a real packet). */
#define LBV_GUARD_KEYS 3
struct lbv_guard {
	struct xvpc_lb_ct_key key[LBV_GUARD_KEYS];
	struct xvpc_lb_ct before[LBV_GUARD_KEYS];
	bool had[LBV_GUARD_KEYS];
	int n;
};

void lbv_guard_take(struct xvpc_dp *dp, const struct lbv_explain *e,
		    const struct xvpc_lb_ct_key *key, struct lbv_guard *g);
/* *created: entries the run wrote (now taken back). */
int lbv_guard_undo(struct xvpc_dp *dp, const struct lbv_guard *g, int *created);

#endif
