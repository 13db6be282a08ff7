/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reconciliation: desired state in, map contents out, applied as a diff
 * against what the maps hold now (add, change, remove; never a flush).
 *
 * Order, so that forwarding never sees a dangling reference: adds and
 * changes first (vnis, subnets, endpoints, then interface bindings), then
 * removals in reverse (bindings, endpoints, subnets, vnis). Writes go in
 * batches of env->chunk entries. A full map (-E2BIG/-ENOSPC) is logged,
 * counted in the result and returned (-ENOSPC) after everything else was
 * applied; the adds that did not fit are retried once after the removals.
 *
 * Endpoint entries flagged XVPC_EP_LEARNED that are not in the desired state
 * are left alone (learning owns them); a desired entry replaces them.
 *
 * Learning mode (docs/learning.md): xvpc_vpcs and xvpc_nodes are written
 * from the state (vpcs first, with the other adds; their removals last).
 * A remote endpoint of a learn-mode VPC of which this node is not a gateway
 * is a move notice: it is never pushed; it corrects the learned entry of
 * that address if there is one, and deletes it when it leaves the state.
 * A VPC that leaves learn mode has its learned entries flushed.
 */
#ifndef XVPC_RECONCILE_H
#define XVPC_RECONCILE_H

#include <linux/types.h>

#include "learn.h"
#include "mapbe.h"
#include "state.h"
#include "xvpc_abi.h"

enum xvpc_rc_map {
	XVPC_RC_VNIS = 0,
	XVPC_RC_SUBNETS,
	XVPC_RC_ENDPOINTS,
	XVPC_RC_IFACES,
	XVPC_RC__COUNT,
};

struct xvpc_rc_maps {
	struct xvpc_mapbe *m[XVPC_RC__COUNT];
	/* Learning mode (agent/learn.h); each may be NULL: not written. */
	struct xvpc_mapbe *vpcs;
	struct xvpc_mapbe *nodes;
	struct xvpc_mapbe *learned;
};

/* What the maps held after the last complete reconcile, so that the next
 * one diffs against memory instead of reading every map back (a 1% diff of
 * 100k endpoints then costs milliseconds). Invalidate it whenever something
 * else may have written the maps (link events, periodic drift repair); an
 * incomplete reconcile invalidates it on its own. */
struct xvpc_rc_cache;
struct xvpc_rc_cache *xvpc_rc_cache_new(void);
void xvpc_rc_cache_invalidate(struct xvpc_rc_cache *c);
void xvpc_rc_cache_free(struct xvpc_rc_cache *c);

struct xvpc_rc_env {
	__be32 node_ip; /* endpoints with this node_ip are local */
	__u32 chunk;	/* entries per batch; 0: 4096 */
	void *ctx;	/* passed to the callbacks */
	/* ifname -> ifindex (> 0) or negative errno. NULL: if_nametoindex. */
	int (*ifindex)(void *ctx, const char *ifname);
	/* Bind / unbind a local interface (xvpc_dp_bind_iface and
	 * xvpc_dp_unbind_iface in the agent). NULL: write the ifaces map. */
	int (*bind)(void *ctx, int ifindex, const struct xvpc_iface *b);
	int (*unbind)(void *ctx, int ifindex);
	/* NULL: read the maps on every run. */
	struct xvpc_rc_cache *cache;
	/* Notices held at the last run, so that one that leaves the state
	 * deletes its learned entry. NULL: moves only. */
	struct xvpc_learn_notices *notices;
	/* Hear of learned entries moved, deleted or flushed. */
	const struct xvpc_learn_hooks *learn_hooks;
};

struct xvpc_rc_map_stats {
	__u64 added;
	__u64 changed;
	__u64 removed;
	__u64 unchanged;
	__u64 kept;   /* learned entries left in place */
	__u64 failed; /* entries not applied (full map or another error) */
	int full;     /* the map was full */
};

struct xvpc_rc_result {
	struct xvpc_rc_map_stats maps[XVPC_RC__COUNT];
	__u64 pending; /* local endpoints whose interface does not exist yet */
	__u64 notices; /* remote endpoints of learn-mode VPCs: not pushed */
	struct xvpc_learn_stats learn;
	__u64 duration_ns;
	bool quick; /* the quick path: only endpoints were written */
};

const char *xvpc_rc_map_name(enum xvpc_rc_map id);

/* Reconcile maps to st. Returns 0, -ENOSPC when a map was full (the rest was
 * applied), or another negative errno (res says what was applied). */
int xvpc_reconcile(const struct xvpc_rc_maps *maps,
		   const struct xvpc_rc_env *env, const struct xvpc_state *st,
		   struct xvpc_rc_result *res);

/* One log line per map with the counts, and the duration; after a quick
 * run, one line with the endpoints' counts and the duration. */
void xvpc_rc_log_result(const struct xvpc_rc_result *res);

#endif
