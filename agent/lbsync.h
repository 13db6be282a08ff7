/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Load balancer services of the desired state -> datapath, as a diff
 * (docs/loadbalancer.md, "Services in the agent"): a service whose
 * backends (after health filtering: a backend reported down by its node,
 * `down` in the state, or not up by the callback) are the ones last
 * applied is not touched; a new or changed one is set (its table swapped
 * atomically by lib/lb.h); a service in the maps but not in the state is
 * deleted.
 *
 * The maps are reached through ops so that the diff is tested without BPF.
 */
#ifndef XVPC_AGENT_LBSYNC_H
#define XVPC_AGENT_LBSYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "lb.h"
#include "state.h"

struct agent_lb_ops {
	int (*set)(void *ctx, const struct xvpc_lb_svc_key *key,
		   const struct xvpc_lb_backend_spec *be, __u32 n);
	/* North-south: a public service (key VPC XVPC_LB_PUBLIC) whose
	 * backends are endpoints of backend_vpc. NULL: -EOPNOTSUPP. */
	int (*set_public)(void *ctx, const struct xvpc_lb_svc_key *key,
			  __u32 backend_vpc,
			  const struct xvpc_lb_backend_spec *be, __u32 n);
	int (*del)(void *ctx, const struct xvpc_lb_svc_key *key);
	/* The services in the maps: a malloc'd array in *keys. */
	int (*list)(void *ctx, struct xvpc_lb_svc_key **keys, size_t *n);
};

/* Whether a backend of a service may take new flows (health). NULL: all. */
typedef bool (*agent_lb_up_fn)(void *ctx, const struct xvpc_state_svc *s,
			       const struct xvpc_state_lb_backend *b);

struct agent_lb_stats {
	__u64 added, changed, removed, unchanged, failed;
	__u64 backends_down; /* left out because unhealthy */
};

struct agent_lb_sync;
struct agent_lb_sync *agent_lb_sync_new(const struct agent_lb_ops *ops,
					void *ctx);
void agent_lb_sync_free(struct agent_lb_sync *ls);
/* Forget what was applied: the next run sets every service again (its
 * table is rebuilt identically, so no flow moves). */
void agent_lb_sync_invalidate(struct agent_lb_sync *ls);

/* Apply st's services. Returns 0 or the first error (everything else was
 * still applied; failures are counted in res). */
int agent_lb_sync(struct agent_lb_sync *ls, const struct xvpc_state *st,
		  agent_lb_up_fn up, void *up_ctx, struct agent_lb_stats *res);

/* The datapath key of a state service (a public one: VPC XVPC_LB_PUBLIC). */
void agent_lb_key(const struct xvpc_state_svc *s, struct xvpc_lb_svc_key *k);

#endif
