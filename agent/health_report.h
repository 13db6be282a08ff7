/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Backend health reports to the controllers (docs/loadbalancer.md, "Health
 * reports"): the agent next to a load balancer backend probes it and POSTs
 * its health to /v1/nodes/{name}/health, so that every client node leaves a
 * down backend out of its tables.
 *
 * One thread with its own libcurl handle, never the datapath's: it reads
 * the node's local backend health from a source (agent/health.c in the
 * agent, a fake in tests) and sends a full report first, after any failed
 * request and every refresh_ms (the controller writes nothing for a report
 * that changes nothing, and it repairs reports the leader cleared while
 * this node looked down), and deltas of the entries that changed
 * otherwise. A backend that stops being local is cleared by a full report.
 * A failed request is retried after a backoff doubling from backoff_min_ms
 * to backoff_max_ms; changes meanwhile wait for it.
 */
#ifndef XVPC_AGENT_HEALTH_REPORT_H
#define XVPC_AGENT_HEALTH_REPORT_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

/* Backends per report the controller takes (POST /v1/nodes/{name}/health):
 * a node with more local backends is refused with a message. */
#define AGENT_HR_MAX 1024

/* One backend of a service that is local to this node, and its health. */
struct agent_hc_local {
	__u32 lb;    /* the load balancer's id (the service's "id"); 0: none,
			never reported (a state file's service) */
	__be32 addr; /* the backend's address */
	__u16 port;  /* host order: the backend's port (the service's when
			it has none) */
	bool up;
};

/* The node's local backends now: a malloc'd array in *out (NULL when n is
 * 0), freed by the caller. Called on the reporter's thread. -EAGAIN while
 * the set is not known yet (no state applied, probes without a verdict):
 * nothing is sent (a full report of nothing would clear the node's
 * earlier reports), and the source is asked again on the next change or
 * after backoff_min_ms. */
typedef int (*agent_hr_source_fn)(void *ctx, struct agent_hc_local **out,
				  size_t *n);

struct agent_hr_opts {
	const char *const *urls; /* the controllers' base URLs */
	int n_urls;
	const char *node_name;
	const char *token;
	agent_hr_source_fn source;
	void *source_ctx;
	/* Index of the URL to try first (the state source's); NULL: 0. */
	int (*current_url)(void *ctx);
	void *ctx;
	unsigned int timeout_ms;     /* per request; 0: 2000 */
	unsigned int refresh_ms;     /* a full report at least this often;
					0: 60000 */
	unsigned int backoff_min_ms; /* 0: 500 */
	unsigned int backoff_max_ms; /* 0: 30000 */
};

struct agent_hr_stats {
	__u64 full, deltas; /* reports accepted */
	__u64 failed;	    /* requests that failed (each URL tried) */
	__u64 entries;	    /* backends sent in accepted reports */
	long last_status;   /* HTTP status of the last answer; 0: none */
};

struct agent_hr;

int agent_hr_start(const struct agent_hr_opts *o, struct agent_hr **out);
/* The source's health changed: a delta goes out soon. Any thread; never
 * blocks on the network. */
void agent_hr_changed(struct agent_hr *hr);
/* Stops and joins the thread (a request in flight ends within its
 * timeout). */
void agent_hr_stop(struct agent_hr *hr);
void agent_hr_stats(struct agent_hr *hr, struct agent_hr_stats *st);

/* The report of entries e[0..n) (those with lb 0 left out):
 * {"full": full, "backends": [...]}; malloc'd. */
char *agent_hr_body(const struct agent_hc_local *e, size_t n, bool full);

#endif
