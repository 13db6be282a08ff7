/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * State source: the controllers (docs/agent.md, "From controllers").
 *
 * A thread per source registers the node (POST /v1/nodes), takes a snapshot
 * (GET /v1/nodes/{name}/state), then long-polls for the changes after the
 * revision it holds (?since=REV&wait=S). Changes are applied to a copy of
 * the current state, which is validated as a whole before it replaces it,
 * so a bad answer changes nothing. Each new state is handed to the agent
 * through the source interface (fd + fetch); if the agent is slower than
 * the changes, it gets the newest state only.
 *
 * The URLs are tried in order: any failure (connection refused, timeout,
 * HTTP error, rejected answer) moves to the next one, and the source
 * resumes there from the revision it holds (or takes the snapshot that
 * controller sends when that revision is too old or not its own).
 */
#ifndef XVPC_AGENT_SOURCE_CTRL_H
#define XVPC_AGENT_SOURCE_CTRL_H

#include <stdbool.h>
#include <linux/types.h>

#include "source.h"

struct agent_ctrl_opts {
	const char *const *urls; /* base URLs ("http://host:port"), in order */
	int n_urls;
	const char *node_name;
	__be32 node_ip; /* registered, and used to validate the state */
	const char *token;
	unsigned int wait_s;		 /* long-poll wait; 0: 30 */
	unsigned int connect_timeout_ms; /* 0: 1000 */
	unsigned int retry_max_ms;	 /* backoff cap once every URL failed;
				      0: 2000 */
	bool no_register; /* the node is registered by someone else */
	/* Pacing of change answers (docs/agent.md, "Batching"): after
	 * AGENT_CTRL_BURST answers with changes in a row, at most one every
	 * batch_ms, so under a sustained change rate each answer carries all
	 * the changes of that interval; an isolated change still comes at
	 * once. 0: no pacing. The agent's default is
	 * AGENT_CTRL_BATCH_MS_DEFAULT. */
	unsigned int batch_ms;
};

#define AGENT_CTRL_BATCH_MS_DEFAULT 100
#define AGENT_CTRL_BURST	    4
/* A controller may ask for a longer interval (X-Xvpc-Batch-Ms on its
 * answers, when many nodes poll it); taken up to this, while pacing is on. */
#define AGENT_CTRL_HINT_MAX_MS 1000

struct agent_ctrl_stats {
	__u64 revision;	      /* of the state held (also after empty polls) */
	__u64 snapshots;      /* snapshots taken */
	__u64 updates;	      /* change answers that changed something */
	__u64 changes;	      /* changes applied */
	__u64 errors;	      /* failed requests */
	__u64 rejected;	      /* answers refused as malformed or invalid */
	__u64 failovers;      /* moves to another URL */
	__u64 paced;	      /* polls held back by the pacing */
	unsigned int hint_ms; /* the controller's last X-Xvpc-Batch-Ms */
	int url;	      /* index of the URL in use */
	bool connected;	      /* the last request succeeded */
};

int agent_source_ctrl_new(const struct agent_ctrl_opts *o,
			  struct agent_source **out);
/*
 * For benchmarks and tests: the same source without its thread and without
 * HTTP (urls and token may be left out). agent_source_ctrl_feed() hands it
 * the body of a long-poll answer as if it had just arrived (a snapshot
 * answer first): it goes through exactly what the thread does with it, and
 * fetch then returns the new state. Returns 0, or -errno with a message in
 * why (nothing of the answer applied); -EBUSY on a source with its thread.
 */
int agent_source_ctrl_new_fed(const struct agent_ctrl_opts *o,
			      struct agent_source **out);
int agent_source_ctrl_feed(struct agent_source *s, const char *body, size_t len,
			   char *why, size_t whylen);
/* A consistent copy of the counters (s must be a controller source). */
void agent_source_ctrl_stats(struct agent_source *s,
			     struct agent_ctrl_stats *out);

#endif
