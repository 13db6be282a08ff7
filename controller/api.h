/* SPDX-License-Identifier: GPL-2.0-only */
/* The controller's HTTP API (/v1/), independent of the HTTP library:
 * http.c turns a libmicrohttpd request into a struct api_req, api.c routes
 * it, checks the token and runs the handler against the store, and the
 * handler fills a struct api_resp. Documented in docs/api.md and
 * docs/openapi.json. */
#ifndef XVPC_CTRL_API_H
#define XVPC_CTRL_API_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define API_BODY_MAX	  (256 * 1024)
#define API_LIST_DEFAULT  100
#define API_LIST_MAX	  1000
#define API_WAIT_MAX	  300 /* seconds of a state long-poll */
#define API_GATEWAY_MAC	  "02:78:76:70:63:01"
#define API_TOKEN_PREFIX  "xvt_"
#define API_ADMIN_PREFIX  "xva_"
#define API_HINT_SLOTS	  4096
#define API_ID_BLOCK	  1024 /* one store commit per 1024 creations of a kind */
#define API_SEQ_KINDS	  5
#define API_SEEN_SLOTS	  1024
#define API_SEEN_EVERY_MS 5000
/* Change answers per second a controller aims to stay under: it asks its
 * agents (X-Xvpc-Batch-Ms on a node's state) to take changes no more often
 * than every pollers * 1000 / rate ms, at most API_BATCH_HINT_MAX_MS. */
#define API_ANSWER_RATE_DEFAULT 1250
#define API_BATCH_HINT_MAX_MS	1000
#define API_POLLERS_EVERY_MS	500  /* recount of the polling nodes */
#define API_POLLERS_WITHIN_MS	3000 /* a node polled this recently */
#define API_PUB_PREFIXES	16

struct api_seen;
struct api_waker;

struct api {
	struct store *store;
	char admin_token[128];
	volatile bool stopping; /* ends long-polls early */
	pthread_mutex_t hint_mu;
	/* Allocation hints: where the last search for a free address (per
	 * subnet, by id modulo the slot count) and VNI ended. Only hints: the
	 * store's uniqueness keys decide. */
	struct {
		uint32_t subnet;
		uint32_t offset;
	} ip_hint[API_HINT_SLOTS];
	uint32_t vni_hint;
	/* Node liveness, in memory only (no store commit): when each node's
	 * agent last polled its state here and how many of its long-polls
	 * are parked here now (hash of API_SEEN_SLOTS chains). The cluster
	 * duties read it with api_live_nodes(). */
	pthread_mutex_t seen_mu;
	struct api_seen *seen[API_SEEN_SLOTS];
	int seen_every_ms; /* longest sleep of an idle long-poll before it
			      looks again; 0: API_SEEN_EVERY_MS */
	int vpc_gateways;  /* gateways per learn-mode VPC; 0: GW_DEFAULT */
	/* Change answers per second to stay under; 0: the default, < 0: no
	 * hint. pollers: the nodes polling here, recounted at pollers_at. */
	int answer_rate;
	int pollers;
	long long pollers_at;
	/* Where public (north-south) load balancers may take their VIPs
	 * (--public-prefix); none: public load balancers are refused. */
	struct {
		uint32_t net; /* network byte order */
		uint8_t plen;
	} public_prefix[API_PUB_PREFIXES];
	int n_public_prefix;
	/* Ids are handed out from blocks reserved in the store (seq/<kind>);
	 * when half of a block is gone, the request that took the id reserves
	 * the next one, so the others do not wait for that commit. */
	pthread_mutex_t seq_mu;
	pthread_cond_t seq_cond; /* a reservation ahead ended */
	int id_block;		 /* ids per block; 0: API_ID_BLOCK */
	struct api_seq {
		int64_t next, end;   /* ids reserved, not yet handed out */
		int64_t anext, aend; /* the block reserved ahead, if any */
		bool reserving;	     /* a request is reserving it */
	} seq[API_SEQ_KINDS];
	/* Parked state long-polls and the thread that wakes those a change
	 * concerns (api_wake.c); started with the first parked poll. */
	struct api_waker *waker;
};

/* The long-poll dispatcher's figures (for tests and benchmarks). */
struct api_wake_stats {
	uint64_t parked;     /* polls parked now */
	uint64_t woken;	     /* polls woken by a change, since the start */
	uint64_t windows;    /* windows of the change feed dispatched */
	uint64_t dispatched; /* the revision dispatched up to */
};

/* All zero before the first parked poll. */
void api_wake_stats(struct api *api, struct api_wake_stats *st);

struct api_req {
	const char *method;
	const char *path; /* without the query string */
	const char *authorization;
	const char *idempotency_key;
	const char *body;
	size_t body_len;
	bool body_too_large;
	/* Query parameter getter; NULL when absent. */
	const char *(*query)(void *qarg, const char *name);
	void *qarg;
	/* The client's socket, so that a parked long-poll notices its agent
	 * is gone (and stops keeping the node alive); <= 0: unknown. */
	int client_fd;
};

struct api_resp {
	int status;
	char *body; /* malloc'ed JSON or NULL (204) */
	const char *content_type;
	unsigned int batch_ms; /* X-Xvpc-Batch-Ms when non-zero */
};

struct api_ctx;
typedef int (*api_handler)(struct api *api, struct api_ctx *c);

enum api_auth {
	API_AUTH_NONE,
	API_AUTH_ADMIN,
	API_AUTH_TENANT,
};

struct api_route {
	const char *method;
	const char *path; /* "/v1/vpcs/{id}": a {name} is one segment */
	api_handler fn;
	enum api_auth auth;
};

/* The route table the server serves; ends with a NULL method. */
extern const struct api_route api_routes[];

/* Sets the admin token: `token` when given (then stored), else the one in
 * the store, else a new one (stored; *generated set so main can print it
 * once). */
int api_init(struct api *api, struct store *store, const char *token,
	     bool *generated);
void api_fini(struct api *api);
/* Calls cb for every node whose agent polled this controller in the last
 * within_ms milliseconds or has a long-poll parked here now. cb runs under
 * the table's lock and must not call into the API. */
void api_live_nodes(struct api *api, long long within_ms,
		    void (*cb)(const char *node, void *arg), void *arg);
/* Handles one request; always fills resp (an error response on failure).
 */
void api_handle(struct api *api, const struct api_req *req,
		struct api_resp *resp);

/* The OpenAPI document served at /v1/openapi.json (docs/openapi.json). */
extern const char api_openapi_json[];

/* HTTP server (libmicrohttpd, a thread per connection). listen is
 * "ADDR:PORT"; port 0 picks one, see http_port(). */
struct http_server;
int http_start(struct api *api, const char *listen, struct http_server **out);
uint16_t http_port(const struct http_server *srv);
void http_stop(struct http_server *srv);
/* Parses "ADDR:PORT" (IPv4); 0 or -EINVAL. */
int http_parse_listen(const char *s, uint32_t *addr_be, uint16_t *port);

#endif
