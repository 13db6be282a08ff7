/* SPDX-License-Identifier: GPL-2.0-only */
/* An HTTP answer's body collected by libcurl, bounded in size: the agent's
 * controller clients (state long-poll, miss resolution) share it. */
#ifndef XVPC_AGENT_HTTPBODY_H
#define XVPC_AGENT_HTTPBODY_H

#include <stdbool.h>
#include <stddef.h>

struct http_body {
	char *p; /* NUL-terminated, or NULL before any byte */
	size_t n, cap;
	size_t max; /* larger bodies are refused (too_large) */
	bool too_large;
};

/* CURLOPT_WRITEFUNCTION with CURLOPT_WRITEDATA = the struct http_body. */
size_t http_body_write(char *d, size_t sz, size_t nm, void *arg);
/* Empty it for the next answer (keeps the buffer). */
void http_body_reset(struct http_body *b);
void http_body_free(struct http_body *b);

#endif
