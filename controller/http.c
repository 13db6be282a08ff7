// SPDX-License-Identifier: GPL-2.0-only
/* libmicrohttpd glue: a thread per connection (state long-polls block), the
 * body collected up to API_BODY_MAX, then api_handle(). */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cloc.h"
#include "api.h"
#include "log.h"

#define HTTP_CONN_MIN	  64
#define HTTP_CONN_MAX	  65536
#define HTTP_FD_RESERVE	  256	       /* for the store, ZooKeeper, logs */
#define HTTP_THREAD_STACK (512 * 1024) /* a thread per connection */

struct http_server {
	struct MHD_Daemon *d;
	struct api *api;
	uint16_t port;
};

struct conn {
	char *body;
	size_t len, cap;
	bool too_large;
};

int http_parse_listen(const char *s, uint32_t *addr_be, uint16_t *port)
{
	char host[64], *colon, *end;
	struct in_addr a;
	unsigned long p;

	if (!s || strlen(s) >= sizeof(host))
		return -EINVAL;
	strcpy(host, s);
	colon = strrchr(host, ':');
	if (!colon || colon == host)
		return -EINVAL;
	*colon = '\0';
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p > 65535 || colon[1] == '-' ||
	    colon[1] == '+')
		return -EINVAL;
	if (inet_pton(AF_INET, host, &a) != 1)
		return -EINVAL;
	*addr_be = a.s_addr;
	*port = p;
	return 0;
}

static const char *query_get(void *arg, const char *name)
{
	return MHD_lookup_connection_value(arg, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result send_resp(struct MHD_Connection *mc, struct api_resp *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len = r->body ? strlen(r->body) : 0;

	resp = MHD_create_response_from_buffer(len, r->body ? r->body : "",
					       MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (r->body)
		MHD_add_response_header(resp, "Content-Type", r->content_type);
	if (r->batch_ms) {
		char v[16];

		snprintf(v, sizeof(v), "%u", r->batch_ms);
		MHD_add_response_header(resp, "X-Xvpc-Batch-Ms", v);
	}
	ret = MHD_queue_response(mc, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static int client_fd(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);

	return ci ? ci->connect_fd : -1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct conn *c = *con_cls;
	struct api_resp resp;
	struct api_req req;
	enum MHD_Result ret;
	const char *cl;

	(void)version;
	if (!c) {
		/* libmicrohttpd's thread: parse JSON without locale copies */
		xvpc_use_c_locale();
		c = calloc(1, sizeof(*c));
		if (!c)
			return MHD_NO;
		*con_cls = c;
		cl = MHD_lookup_connection_value(
			mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > API_BODY_MAX) {
			/* Answer now rather than read what we refuse. */
			struct api_resp r2 = {
				.status = 413,
				.content_type = "application/json",
			};

			r2.body = malloc(128);
			if (r2.body)
				snprintf(r2.body, 128,
					 "{\"error\":{\"code\":\"too_large\","
					 "\"field\":null,\"message\":\"request "
					 "body is larger than %u bytes\"}}",
					 (unsigned int)API_BODY_MAX);
			c->too_large = true;
			ret = send_resp(mc, &r2);
			free(r2.body);
			return ret;
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (!c->too_large && c->len + *upload_size > API_BODY_MAX) {
			c->too_large = true;
			free(c->body);
			c->body = NULL;
			c->len = c->cap = 0;
		}
		if (!c->too_large) {
			if (c->len + *upload_size + 1 > c->cap) {
				size_t cap = c->len + *upload_size + 1;
				char *p = realloc(c->body, cap);

				if (!p)
					return MHD_NO;
				c->body = p;
				c->cap = cap;
			}
			memcpy(c->body + c->len, upload, *upload_size);
			c->len += *upload_size;
			c->body[c->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	req = (struct api_req){
		.method = method,
		.path = url,
		.authorization = MHD_lookup_connection_value(
			mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
		.idempotency_key = MHD_lookup_connection_value(
			mc, MHD_HEADER_KIND, "Idempotency-Key"),
		.body = c->body ? c->body : "",
		.body_len = c->len,
		.body_too_large = c->too_large,
		.query = query_get,
		.qarg = mc,
		.client_fd = client_fd(mc),
	};
	api_handle(srv->api, &req, &resp);
	ret = send_resp(mc, &resp);
	free(resp.body);
	return ret;
}

static void on_done(void *cls, struct MHD_Connection *mc, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	struct conn *c = *con_cls;

	(void)cls;
	(void)mc;
	(void)toe;
	if (c) {
		free(c->body);
		free(c);
		*con_cls = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	pr_warn("http: %s", msg);
}

/* Connections the server accepts: one per agent's long-poll plus API
 * clients, so as many as the descriptors allow (libmicrohttpd's default is
 * FD_SETSIZE - 4, which 1000 agents reach). The soft descriptor limit is
 * raised to the hard one first (best effort). */
static unsigned int connection_limit(void)
{
	struct rlimit rl;
	rlim_t n;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return HTTP_CONN_MIN;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	n = rl.rlim_cur > HTTP_FD_RESERVE ? rl.rlim_cur - HTTP_FD_RESERVE : 0;
	if (n < HTTP_CONN_MIN)
		n = HTTP_CONN_MIN;
	return n > HTTP_CONN_MAX ? HTTP_CONN_MAX : (unsigned int)n;
}

int http_start(struct api *api, const char *listen, struct http_server **out)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct http_server *srv;
	const union MHD_DaemonInfo *info;
	uint32_t addr;
	uint16_t port;

	if (http_parse_listen(listen, &addr, &port)) {
		pr_err("http: bad listen address '%s' (want ADDR:PORT, e.g. "
		       "127.0.0.1:8470)",
		       listen);
		return -EINVAL;
	}
	sa.sin_addr.s_addr = addr;
	sa.sin_port = htons(port);
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->api = api;
	srv->d = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION |
			MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			MHD_USE_ERROR_LOG,
		port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
		mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &sa,
		MHD_OPTION_NOTIFY_COMPLETED, on_done, srv,
		MHD_OPTION_CONNECTION_LIMIT, connection_limit(),
		MHD_OPTION_THREAD_STACK_SIZE, (size_t)HTTP_THREAD_STACK,
		MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)(API_WAIT_MAX + 30), MHD_OPTION_END);
	if (!srv->d) {
		pr_err("http: cannot listen on %s (address in use, or not a "
		       "local address?)",
		       listen);
		free(srv);
		return -EADDRNOTAVAIL;
	}
	info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : port;
	pr_info("http: listening on %s:%u", inet_ntoa(sa.sin_addr), srv->port);
	*out = srv;
	return 0;
}

uint16_t http_port(const struct http_server *srv)
{
	return srv->port;
}

void http_stop(struct http_server *srv)
{
	if (!srv)
		return;
	srv->api->stopping = true;
	store_wake_all(srv->api->store);
	MHD_stop_daemon(srv->d);
	free(srv);
}
