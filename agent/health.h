/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Health checks of load balancer backends (docs/loadbalancer.md, "Health
 * checks"): one thread, non-blocking TCP connects (and an HTTP GET when
 * asked). Who probes a backend of a service the node applies depends on
 * where the backend is (agent_hc_classify):
 *   - an endpoint of the service's VPC on this node: probed here, through
 *     its host-side interface, from the node's probe address (a socket
 *     bound to the interface, to the probe address and to a source port of
 *     the probe range; the datapath lets the VM's answer up, bpf/probe.h);
 *   - another address of the VPC (an endpoint on another node): not probed
 *     here; its node probes it and the controller passes the verdict on
 *     ("healthy": false in the state, the backend's `down`);
 *   - an address outside the VPC's subnets: probed from the agent's
 *     network namespace with the node's routing, as before.
 * A probed backend starts up, leaves after `fall` consecutive failed probes
 * and comes back after `rise` successes; each change calls the callback
 * (from the checker's thread, no lock held).
 */
#ifndef XVPC_AGENT_HEALTH_H
#define XVPC_AGENT_HEALTH_H

#include <stdbool.h>

#include "state.h"

struct agent_hc;

typedef void (*agent_hc_changed_fn)(void *ctx);

int agent_hc_start(agent_hc_changed_fn changed, void *ctx,
		   struct agent_hc **out);

/* Prepares a local backend's interface for probes (the agent's default:
 * a permanent neighbour entry ip -> mac on it, so the kernel never ARPs
 * from the probe address, and rp_filter 0 on it, so the VM's answer from
 * an address the node has no route to is accepted). 0 or -errno. */
typedef int (*agent_hc_prepare_fn)(void *ctx, int ifindex, const char *ifname,
				   __be32 ip, const __u8 mac[6]);

struct agent_hc_probe {
	__be32 node_ip;		     /* which endpoints are local */
	__be32 probe_ip;	     /* 0: local VPC backends are not probed */
	__u16 port_min, port_max;    /* source ports of their probes */
	agent_hc_prepare_fn prepare; /* NULL: agent_hc_prepare_iface */
	void *prepare_ctx;
};

/* How local VPC backends are probed; call before agent_hc_set (the next
 * agent_hc_set applies a change). Without it, nothing is local and every
 * backend in a subnet of its VPC is left to the state's verdict. */
void agent_hc_set_probe(struct agent_hc *hc, const struct agent_hc_probe *p);
int agent_hc_prepare_iface(void *ctx, int ifindex, const char *ifname,
			   __be32 ip, const __u8 mac[6]);

enum agent_hc_where {
	AGENT_HC_PLAIN = 0, /* outside the VPC's subnets: probed from here */
	AGENT_HC_LOCAL,	    /* endpoint of the VPC on this node: probed
			     * through its interface */
	AGENT_HC_REMOTE,    /* in the VPC, not on this node: not probed */
};

/* Where backend address ip of service s is, seen from node_ip; for a local
 * one, *ep (if ep) is its endpoint. st must be validated. */
enum agent_hc_where agent_hc_classify(const struct xvpc_state *st,
				      __be32 node_ip,
				      const struct xvpc_state_svc *s, __be32 ip,
				      const struct xvpc_state_ep **ep);
/* Stops and joins the thread. Never call it holding a lock the callback
 * takes. */
void agent_hc_stop(struct agent_hc *hc);
/* Replace the set of probed backends with those of st's services that have
 * a health check; backends that stay keep their state. */
int agent_hc_set(struct agent_hc *hc, const struct xvpc_state *st);
/* Whether backend b of s may take new flows: a backend probed here
 * (local or plain) by its probes (up until `fall` failures); any other
 * (remote, not probed, or a service without a check) unless the state says
 * it is down (b->down). */
bool agent_hc_up(struct agent_hc *hc, const struct xvpc_state_svc *s,
		 const struct xvpc_state_lb_backend *b);
/*
 * Health of the backends probed through their interface (local VPC
 * endpoints), for the agent's report to the controller (POST
 * /v1/nodes/{name}/health, docs/api.md): one entry per (service, backend)
 * of st that agent_hc_set made a local target. Services with id 0 (state
 * files) are included; the reporter skips them. st must be the state last
 * given to agent_hc_set (the agent calls this under its lock, e.g. when
 * the change callback fired). *out is malloc'd (free() it), NULL when *n
 * is 0. 0 or -ENOMEM.
 */
struct agent_hc_health {
	__u32 svc_id; /* xvpc_state_svc.id: the load balancer's API id */
	__u32 vpc;
	__be32 vip;
	__u16 svc_port; /* host order */
	__u8 proto;
	bool up;
	bool checked; /* a probe has completed since the target appeared */
	__be32 ip;    /* backend */
	__u16 port;   /* backend port, host order (the service's if 0) */
};

int agent_hc_local_health(struct agent_hc *hc, const struct xvpc_state *st,
			  struct agent_hc_health **out, size_t *n);

/* Counters, for metrics and tests. */
void agent_hc_counts(struct agent_hc *hc, unsigned long *targets,
		     unsigned long *down, unsigned long *probes);

#endif
