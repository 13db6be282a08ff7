/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Health checks of load balancer backends (docs/loadbalancer.md, "Health
 * checks"): one thread, non-blocking TCP connects (and an HTTP GET when
 * asked), run from the agent's network namespace to each backend of the
 * services the node applies. A backend starts up, leaves after `fall`
 * consecutive failed probes and comes back after `rise` successes; each
 * change calls the callback (from the checker's thread, no lock held).
 */
#ifndef XVPC_AGENT_HEALTH_H
#define XVPC_AGENT_HEALTH_H

#include <stdbool.h>

#include "state.h"

struct agent_hc;

typedef void (*agent_hc_changed_fn)(void *ctx);

int agent_hc_start(agent_hc_changed_fn changed, void *ctx,
		   struct agent_hc **out);
/* Stops and joins the thread. Never call it holding a lock the callback
 * takes. */
void agent_hc_stop(struct agent_hc *hc);
/* Replace the set of probed backends with those of st's services that have
 * a health check; backends that stay keep their state. */
int agent_hc_set(struct agent_hc *hc, const struct xvpc_state *st);
/* Whether backend b of s is up (true for services without a check and for
 * backends not probed yet). */
bool agent_hc_up(struct agent_hc *hc, const struct xvpc_state_svc *s,
		 const struct xvpc_state_lb_backend *b);
/* Counters, for metrics and tests. */
void agent_hc_counts(struct agent_hc *hc, unsigned long *targets,
		     unsigned long *down, unsigned long *probes);

#endif
