/* SPDX-License-Identifier: GPL-2.0-only
 *
 * Learning mode on the agent side (docs/learning.md, "Agent"): the maps
 * xvpc_vpcs and xvpc_nodes written from the state as a diff, move and
 * delete notices applied to xvpc_learned, flushing the learned entries of a
 * VPC that leaves learn mode, and the aging sweep.
 *
 * The reconciler calls xvpc_learn_sync_pre() before the endpoint maps are
 * written (a VPC switching to learn mode is flagged before its remote
 * entries go away) and xvpc_learn_sync_post() after them (a VPC switching
 * back is unflagged once its entries are pushed again).
 */
#ifndef XVPC_AGENT_LEARN_H
#define XVPC_AGENT_LEARN_H

#include <stdbool.h>
#include <linux/types.h>

#include "mapbe.h"
#include "state.h"
#include "xvpc_abi.h"

/* The xvpc_vpcs value of VPC v on the node node_ip; false for push mode
 * (no entry). */
bool xvpc_learn_vpc_value(const struct xvpc_state_vpc *v, __be32 node_ip,
			  struct xvpc_vpc *out);

/* True when e is a remote endpoint of a learn-mode VPC of which node_ip is
 * not a gateway: a move notice, never pushed. st must be validated. */
bool xvpc_learn_is_notice(const struct xvpc_state *st, __be32 node_ip,
			  const struct xvpc_state_ep *e);

/* The learned value for an endpoint the agent installs or moves. */
void xvpc_learn_value(struct xvpc_learned *v, const __u8 mac[6], __be32 node_ip,
		      __u32 vni, __u64 now_ns);

/* Keys of the notices a node held at its last reconcile, so that a notice
 * that leaves the state (the endpoint was deleted) deletes the entry. */
struct xvpc_learn_notices;
struct xvpc_learn_notices *xvpc_learn_notices_new(void);
void xvpc_learn_notices_free(struct xvpc_learn_notices *n);

struct xvpc_learn_hooks {
	void *ctx;
	/* A learned entry was moved by a notice, or deleted (ep NULL):
	 * the resolver's cache follows. */
	void (*changed)(void *ctx, const struct xvpc_ep_key *k,
			const struct xvpc_ep *ep);
	/* The learned entries of vpc were flushed (left learn mode). */
	void (*flushed)(void *ctx, __u32 vpc);
	/* CLOCK_MONOTONIC ns; NULL: the clock. */
	__u64 (*now)(void *ctx);
};

struct xvpc_learn_stats {
	__u64 vpcs_written, vpcs_removed;
	__u64 nodes_written, nodes_removed;
	__u64 moved;	 /* learned entries updated by a notice */
	__u64 forgotten; /* learned entries deleted: notice left the state */
	__u64 flushed;	 /* learned entries of VPCs that left learn mode */
	__u64 failed;
};

struct xvpc_learn_plan;

/* Each map may be NULL (skipped). pre: adds and changes of xvpc_vpcs, the
 * whole xvpc_nodes diff; *plan remembers what post must do. */
int xvpc_learn_sync_pre(struct xvpc_mapbe *vpcs, struct xvpc_mapbe *nodes,
			const struct xvpc_state *st, __be32 node_ip,
			struct xvpc_learn_stats *s,
			struct xvpc_learn_plan **plan);
/* post: removals from xvpc_vpcs, flushing, then the notices against
 * learned (notices may be NULL: moves only). Frees plan. */
int xvpc_learn_sync_post(struct xvpc_learn_plan *plan, struct xvpc_mapbe *vpcs,
			 struct xvpc_mapbe *learned,
			 struct xvpc_learn_notices *notices,
			 const struct xvpc_learn_hooks *hooks,
			 const struct xvpc_state *st, __be32 node_ip,
			 struct xvpc_learn_stats *s);
void xvpc_learn_plan_free(struct xvpc_learn_plan *plan);

/* Delete every learned entry with vpc_id == vpc (all VPCs when vpc is 0
 * and all is set). Returns the number deleted or a negative errno. */
long xvpc_learn_flush(struct xvpc_mapbe *learned, __u32 vpc, bool all);

/* Aging: delete entries whose last_ns is more than idle_ns before now_ns.
 * hooks->changed (if any) hears of each. Returns the number deleted or a
 * negative errno. */
long xvpc_learn_age(struct xvpc_mapbe *learned, __u64 now_ns, __u64 idle_ns,
		    const struct xvpc_learn_hooks *hooks);

__u64 xvpc_learn_now_ns(void);

#endif
