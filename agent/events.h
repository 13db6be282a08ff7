/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Learning events: a thread drains the datapath's perf buffer (map
 * xvpc_events, struct xvpc_event), counts what it receives and what the
 * kernel lost, and hands each event to a resolver (the controller client
 * plugs in there; the default one logs at debug level).
 */
#ifndef XVPC_AGENT_EVENTS_H
#define XVPC_AGENT_EVENTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "xvpc_abi.h"

struct xvpc_resolver_ops {
	/* Called on the events thread, one event at a time. */
	void (*on_event)(void *ctx, const struct xvpc_event *ev);
	/* The kernel dropped n events on cpu (buffer full). */
	void (*on_lost)(void *ctx, int cpu, __u64 n);
};

/* Logs each event at debug level. */
extern const struct xvpc_resolver_ops xvpc_default_resolver;

struct agent_events_stats {
	__u64 received;	  /* decoded and handed to the resolver */
	__u64 lost;	  /* reported lost by the kernel */
	__u64 malformed;  /* wrong size or unknown type */
	__u64 by_type[4]; /* index enum xvpc_event_type (0: other) */
};

struct agent_events {
	const struct xvpc_resolver_ops *resolver;
	void *resolver_ctx;
	struct perf_buffer *pb;
	pthread_t thread;
	bool running;
	volatile bool stop;
	/* Updated by the events thread with atomic adds; read with
	 * agent_events_get_stats(). */
	struct agent_events_stats stats;
};

/* Decode one sample: 0, or -EINVAL for a wrong size or unknown type. */
int agent_event_decode(const void *data, size_t size, struct xvpc_event *out);
/* A printable one-line description ("miss vpc 1 10.0.1.10 -> 10.0.1.99
 * ifindex 7 reason drop_no_endpoint"). */
void agent_event_format(const struct xvpc_event *ev, char *buf, size_t len);

/* Set up (no thread yet). resolver NULL: the default resolver. */
void agent_events_init(struct agent_events *ev,
		       const struct xvpc_resolver_ops *resolver, void *ctx);
/* The sample and lost handlers the perf buffer calls; public so that tests
 * can feed samples. */
void agent_events_sample(void *ctx, int cpu, void *data, __u32 size);
void agent_events_lost(void *ctx, int cpu, __u64 n);

/* Open a perf buffer on map_fd (page_cnt pages per CPU, a power of two; 0:
 * 256) and start the draining thread. */
int agent_events_start(struct agent_events *ev, int map_fd, size_t page_cnt);
/* Drain what is there without a thread (benchmarks, tests): returns the
 * number of events handled or a negative errno. */
int agent_events_open(struct agent_events *ev, int map_fd, size_t page_cnt);
int agent_events_poll(struct agent_events *ev, int timeout_ms);
/* Stop the thread (if any) and free the perf buffer. */
void agent_events_stop(struct agent_events *ev);
void agent_events_get_stats(const struct agent_events *ev,
			    struct agent_events_stats *out);

#endif
