/* SPDX-License-Identifier: GPL-2.0-only
 *
 * The resolver's transport to the controllers: POST /v1/nodes/{name}/resolve
 * (docs/learning.md, "Controller") with its own libcurl handle, called on
 * the resolver's worker thread. The controller asked first is the one the
 * state source is connected to (current_url); on failure the others are
 * tried once each, in order.
 */
#ifndef XVPC_AGENT_RESOLVE_HTTP_H
#define XVPC_AGENT_RESOLVE_HTTP_H

#include <stddef.h>

#include "resolver.h"

#define XVPC_RESOLVE_MAX 1024 /* queries per request the controller takes */

struct xvpc_resolve_http_opts {
	const char *const *urls; /* base URLs, as for the state source */
	int n_urls;
	const char *node_name;
	const char *token;
	unsigned int timeout_ms; /* whole request; 0: 1000 */
	/* Index of the URL to try first; NULL: 0. */
	int (*current_url)(void *ctx);
	void *ctx;
};

int xvpc_resolve_http_new(const struct xvpc_resolve_http_opts *o,
			  struct xvpc_rsv_transport **out);

/* {"endpoints":[{"vpc":7,"ip":"10.7.0.5"},...]}; malloc'd. */
char *xvpc_resolve_body(const struct xvpc_ep_key *keys, size_t n);
/* Parse an answer to keys[0..n): out[i] for keys[i]; endpoints that were
 * not asked for are refused (-EINVAL with a message in why), keys
 * neither found nor missing are left not found. */
int xvpc_resolve_parse(const char *json, size_t len,
		       const struct xvpc_ep_key *keys, size_t n,
		       struct xvpc_rsv_answer *out, char *why, size_t whylen);

#endif
