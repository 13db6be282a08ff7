/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * State sources: where the desired state comes from. The file source
 * (standalone nodes) is one implementation; the controller long-poll client
 * is another, plugged in through the same ops.
 */
#ifndef XVPC_AGENT_SOURCE_H
#define XVPC_AGENT_SOURCE_H

#include <stdbool.h>
#include <linux/types.h>

#include "state.h"
#include "xvpc_abi.h"

struct agent_source;

struct agent_source_ops {
	const char *name;
	/* A descriptor the main loop polls for input, or -1. */
	int (*fd)(struct agent_source *s);
	/* Called when fd is readable, or with force on SIGHUP and at start.
	 * Returns 1 with a new validated state in *out (the caller owns
	 * it), 0 when nothing changed, or a negative errno (the source has
	 * logged why; the agent keeps its current state). */
	int (*fetch)(struct agent_source *s, bool force,
		     struct xvpc_state **out);
	/* Optional: endpoints deleted by changes since the last call that
	 * the state did not hold (remote endpoints of learn-mode VPCs, whose
	 * learned entries go). Returns how many; *out is malloc'd (or
	 * NULL), the caller frees it. */
	size_t (*take_gone)(struct agent_source *s, struct xvpc_ep_key **out);
	void (*destroy)(struct agent_source *s);
};

struct agent_source {
	const struct agent_source_ops *ops;
};

/* Desired state from a JSON file, re-read when it changes (inotify on its
 * directory: editors and `mv` replace files) or on force. node_ip is this
 * node's address for validation. */
int agent_source_file_new(const char *path, __be32 node_ip,
			  struct agent_source **out);
void agent_source_destroy(struct agent_source *s);

#endif
