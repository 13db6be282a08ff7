/* SPDX-License-Identifier: GPL-2.0-only
 *
 * Resolver of learning-mode misses (docs/learning.md, "Agent").
 *
 * The events thread hands it each miss event (XVPC_EV_MISS). A miss of a
 * learn-mode VPC (this node not one of its gateways) is answered from a
 * cache when possible (positive answers kept pos_ttl, negative ones
 * neg_ttl), else queued once per (vpc, ip): further misses of a queued
 * address are coalesced. A worker thread sends the queue in batches (after
 * batch_ns, or at once when batch_max are queued) through a transport (the
 * controller's POST /v1/nodes/{name}/resolve, agent/resolve_http.h) and
 * installs each answer into xvpc_learned (flags LEARNED|RESOLVED). An ARP
 * miss answered this way gets its ARP reply sent into the VM's interface.
 *
 * Without a transport (state from a file) misses are counted and ignored.
 */
#ifndef XVPC_AGENT_RESOLVER_H
#define XVPC_AGENT_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "mapbe.h"
#include "state.h"
#include "xvpc_abi.h"

struct xvpc_rsv_answer {
	struct xvpc_ep_key key;
	bool found;
	__u8 mac[6];
	__be32 node_ip;
	__u32 vni;
};

struct xvpc_rsv_transport {
	/* Resolve keys[0..n): out[i] answers keys[i] (found or not). Called
	 * on the resolver's worker thread, without its lock. 0, or a
	 * negative errno when nothing was answered. */
	int (*resolve)(void *ctx, const struct xvpc_ep_key *keys, size_t n,
		       struct xvpc_rsv_answer *out);
	void (*destroy)(void *ctx);
	void *ctx;
};

struct xvpc_resolver_opts {
	__u64 pos_ttl_ns;  /* 0: 60 s */
	__u64 neg_ttl_ns;  /* 0: 1 s */
	__u32 cache_max;   /* 0: 65536 answers */
	__u32 batch_max;   /* 0: 256 queries per request */
	__u64 batch_ns;	   /* 0: 1 ms */
	__u32 pending_max; /* 0: 65536 queued or in flight */
	__be32 node_ip;	   /* answers pointing here are not installed */
	struct xvpc_mapbe *learned; /* where answers go (required) */
	struct xvpc_mapbe *ifaces;  /* for ARP replies; NULL: none sent */
	/* NULL: misses are counted and ignored. Owned by the resolver from
	 * xvpc_resolver_new() on, also when that fails. */
	struct xvpc_rsv_transport *transport;
	/* CLOCK_MONOTONIC ns for TTLs, latency and created_ns; NULL: the
	 * clock. */
	__u64 (*now)(void *ctx);
	/* Send a frame out of ifindex; NULL: an AF_PACKET socket. */
	int (*send_frame)(void *ctx, __u32 ifindex, const void *frame,
			  size_t len);
	/* Each answer installed, with its miss -> installed latency. */
	void (*installed)(void *ctx, const struct xvpc_ep_key *k,
			  __u64 latency_ns);
	void *ctx; /* for now, send_frame and installed */
	/* No worker thread: xvpc_resolver_poll() sends what is due. */
	bool no_thread;
};

/* Latency histogram bounds in seconds (le); the last bucket is +Inf. */
#define XVPC_RSV_LAT_BUCKETS 12
extern const double xvpc_rsv_lat_bounds[XVPC_RSV_LAT_BUCKETS];

struct xvpc_rsv_stats {
	__u64 misses;	   /* miss events received */
	__u64 ignored;	   /* not a learn-mode VPC of this node, or no
			    * controller to ask */
	__u64 cache_hits;  /* answered from the cache (positive) */
	__u64 neg_hits;	   /* answered "unknown" from the cache */
	__u64 coalesced;   /* same address already queued or in flight */
	__u64 queued;	   /* queries queued */
	__u64 dropped;	   /* queue full */
	__u64 requests;	   /* resolve requests sent */
	__u64 failures;	   /* requests that failed */
	__u64 found;	   /* answers with an endpoint */
	__u64 missing;	   /* answers without one */
	__u64 installed;   /* entries written into xvpc_learned */
	__u64 install_err; /* writes that failed */
	__u64 arp_replies; /* ARP replies sent into a VM */
	__u64 arp_err;	   /* ARP replies that could not be sent */
	__u64 cached;	   /* answers in the cache now */
	__u64 pending;	   /* queries queued or in flight now */
	__u64 lat_count;
	__u64 lat_sum_ns;
	__u64 lat_bucket[XVPC_RSV_LAT_BUCKETS + 1]; /* not cumulative */
};

struct xvpc_resolver;

int xvpc_resolver_new(const struct xvpc_resolver_opts *o,
		      struct xvpc_resolver **out);
/* Stops the worker; frees the transport. */
void xvpc_resolver_free(struct xvpc_resolver *r);

/* The learn-mode VPCs of this node (not a gateway of them) from the
 * applied state; the cache is flushed for VPCs that left. */
int xvpc_resolver_set_state(struct xvpc_resolver *r,
			    const struct xvpc_state *st);

/* A miss event (the events thread's on_event). */
void xvpc_resolver_on_event(struct xvpc_resolver *r,
			    const struct xvpc_event *ev);
/* Without a worker thread: send the batches that are due (all queued with
 * force). Returns the number of queries answered or a negative errno. */
int xvpc_resolver_poll(struct xvpc_resolver *r, bool force);

/* The learned entry of k moved (ep) or went away (ep NULL): the cache
 * follows. */
void xvpc_resolver_changed(struct xvpc_resolver *r, const struct xvpc_ep_key *k,
			   const struct xvpc_ep *ep);
void xvpc_resolver_flush_cache(struct xvpc_resolver *r);

void xvpc_resolver_stats(struct xvpc_resolver *r, struct xvpc_rsv_stats *out);
/* Latency quantile (0 < q < 1) in seconds from the histogram (upper bound
 * of the bucket), or -1 without samples. */
double xvpc_rsv_stats_quantile(const struct xvpc_rsv_stats *s, double q);

/* The 42-byte ARP reply "ip is at mac" to (to_mac, to_ip). */
#define XVPC_ARP_FRAME_LEN 42
void xvpc_build_arp_reply(__u8 *frame, const __u8 mac[6], __be32 ip,
			  const __u8 to_mac[6], __be32 to_ip);

#endif
