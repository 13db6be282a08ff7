/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent core: owns the datapath handle, the map backends over its maps,
 * the current desired state and the counters that metrics report. The main
 * loop (agent/main.c) feeds it states, link events and timers.
 */
#ifndef XVPC_AGENT_AGENT_H
#define XVPC_AGENT_AGENT_H

#include <pthread.h>
#include <stdio.h>

#include "config.h"
#include "datapath.h"
#include "events.h"
#include "health.h"
#include "lbsync.h"
#include "netlink.h"
#include "learn.h"
#include "reconcile.h"
#include "resolver.h"
#include "state.h"

struct agent_rc_stats {
	__u64 runs;
	__u64 errors;
	__u64 full; /* runs that hit a full map */
	__u64 added[XVPC_RC__COUNT];
	__u64 changed[XVPC_RC__COUNT];
	__u64 removed[XVPC_RC__COUNT];
	__u64 failed[XVPC_RC__COUNT];
	__u64 last_ns;
	__u64 sum_ns;
	__u64 pending;
	__u64 revision;
	int last_err;
	__u64 unbound_gone; /* bindings dropped because the iface vanished */
};

/* Learning mode: what reconciles and sweeps did to xvpc_learned. */
struct agent_learn_stats {
	__u64 sweeps;
	__u64 aged; /* deleted by the sweep: idle longer than learn_idle */
	__u64 moved;
	__u64 forgotten;
	__u64 flushed;
	__u64 failed;
	__u64 notices; /* remote endpoints of learn-mode VPCs in the state */
};

struct agent {
	const struct agent_config *cfg;
	__be32 node_ip;
	struct xvpc_dp *dp;
	struct xvpc_rc_maps maps;
	struct xvpc_rc_env env;
	struct xvpc_rc_cache *cache;
	struct xvpc_state *state; /* last desired state applied */
	struct agent_events events;
	pthread_mutex_t lock; /* rc, state */
	struct agent_rc_stats rc;
	struct agent_lb_sync *lbsync; /* services -> lib/lb.h, as a diff */
	struct agent_hc *hc;	      /* backend health checks */
	struct agent_hr *hr; /* health reports to the controllers, or NULL */
	bool probe_on;	     /* probe address on lo, in the datapath's config */
	struct agent_lb_stats lb_last;
	__u64 lb_errors;
	bool resync_wanted;
	/* Learning mode (docs/learning.md). */
	struct xvpc_resolver *resolver;
	struct xvpc_learn_notices *notices;
	struct xvpc_learn_hooks learn_hooks;
	struct agent_learn_stats learn;
	__u64 next_age_ms;
};

/* Open (or adopt) the datapath and set up the map backends. */
int agent_open(struct agent *a, const struct agent_config *cfg, __be32 node_ip);
/* Starts reporting the health of this node's local backends to the
 * controllers (agent/health_report.h; o's source is the agent's own). */
struct agent_hr_opts;
int agent_report_start(struct agent *a, const struct agent_hr_opts *o);
void agent_close(struct agent *a);
/* Start the resolver of learning-mode misses and hand it the events
 * (before agent_events_start). transport NULL: misses are counted and
 * ignored (state from a file); it is owned by the resolver. */
int agent_learn_start(struct agent *a, struct xvpc_rsv_transport *transport);
/* Endpoints deleted that the state did not hold: their learned entries
 * and cached answers go. */
void agent_learn_forget(struct agent *a, const struct xvpc_ep_key *keys,
			size_t n);
/* The aging sweep, when due (every AGENT_AGE_EVERY_MS). */
#define AGENT_AGE_EVERY_MS 10000
void agent_learn_tick(struct agent *a, __u64 now_ms);
/* Reconcile to st; takes ownership of st (it becomes the current state,
 * also when reconciling fails part-way, so that a resync retries it). */
int agent_apply(struct agent *a, struct xvpc_state *st);
/* Reconcile the current state again (link events; with reread, the maps
 * are read back instead of trusting the cache: timer, SIGHUP). */
int agent_resync(struct agent *a, bool reread);
/* Link watcher callback (ctx: the agent). */
void agent_on_link(void *ctx, const struct agent_link_event *e);
/* Prometheus text of everything the agent and the datapath count. */
int agent_metrics_render(struct agent *a, FILE *out);
/* 0 when healthy, else -errno with a reason in why. */
int agent_health(struct agent *a, char *why, size_t len);

#endif
