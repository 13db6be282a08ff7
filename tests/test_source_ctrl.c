// SPDX-License-Identifier: GPL-2.0-only
/*
 * The agent's controller source against the real controller (store, API and
 * HTTP server in this process, on a loopback ephemeral port, temporary data
 * directory): registration and snapshot, incremental changes reconciled
 * into in-memory maps, resuming after a controller restart, failover from a
 * dead URL and from a controller stopped mid-stream to another one serving
 * the same data, load balancers arriving as service changes, and, against
 * a fake server, answers that are garbled or invalid (services included):
 * each is an error and changes nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "agent/reconcile.h"
#include "agent/source_ctrl.h"
#include "controller/api.h"
#include "log.h"

#define ADMIN	"xva_srcctl_admin_token_0123"
#define N1_IP	"192.168.100.1"
#define N2_IP	"192.168.100.2"
#define SYNC_MS 20000 /* bound of every wait, never a timing assertion */

struct ctl {
	struct store *s;
	struct api api;
	struct http_server *srv;
	uint16_t port;
	bool up;
};

struct fix {
	char dir[64];
	struct ctl c;
	char base[64];
	char tenant[128];
	struct xvpc_rc_maps maps;
	struct xvpc_rc_env env;
	struct xvpc_rc_cache *cache;
	struct agent_source *src;
	struct xvpc_state *st; /* last state reconciled */
	long long vpc, subnet;
	unsigned int batch_ms; /* the source's pacing (0: off) */
};

static struct fix *F;

/* ---- controller in this process -------------------------------------- */

static int ctl_start(struct ctl *c, const char *dir, uint16_t port)
{
	char listen[32];
	bool gen;

	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	if (store_embed_open(dir, NULL, &c->s))
		return -1;
	if (api_init(&c->api, c->s, ADMIN, &gen) ||
	    http_start(&c->api, listen, &c->srv)) {
		store_close(c->s);
		return -1;
	}
	c->port = http_port(c->srv);
	c->up = true;
	return 0;
}

static void ctl_stop(struct ctl *c)
{
	if (!c->up)
		return;
	http_stop(c->srv);
	api_fini(&c->api);
	store_close(c->s);
	c->up = false;
}

/* A loopback port nothing listens on (bound, then released). */
static uint16_t free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port = 0;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (void *)&sa, sizeof(sa)) &&
	    !getsockname(fd, (void *)&sa, &len))
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* ---- API client -------------------------------------------------------- */

struct buf {
	char *p;
	size_t n;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *arg)
{
	struct buf *b = arg;
	char *p = realloc(b->p, b->n + sz * nm + 1);

	if (!p)
		return 0;
	memcpy(p + b->n, d, sz * nm);
	b->p = p;
	b->n += sz * nm;
	p[b->n] = '\0';
	return sz * nm;
}

static long http(const char *method, const char *path, const char *token,
		 const char *body, json_object **out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct buf b = {0};
	char url[512], line[256];
	long status = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", F->c.port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
	h = curl_slist_append(h, line);
	if (body) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (out)
		*out = b.p ? json_tokener_parse(b.p) : NULL;
	free(b.p);
	return status;
}

static long long create(const char *path, const char *token, long want,
			const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static long long create(const char *path, const char *token, long want,
			const char *fmt, ...)
{
	char body[512];
	json_object *o = NULL;
	long long id;
	va_list ap;
	long st;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	st = http("POST", path, token, body, &o);
	if (st != want)
		fail_msg("POST %s %s: %ld (want %ld): %s", path, body, st, want,
			 o ? json_object_to_json_string(o) : "");
	id = json_object_get_int64(json_object_object_get(o, "id"));
	if (!strcmp(path, "/v1/tenants"))
		snprintf(F->tenant, sizeof(F->tenant), "%s",
			 json_object_get_string(
				 json_object_object_get(o, "token")));
	json_object_put(o);
	return id;
}

static long long port_on(const char *node, const char *ip, const char *ifname)
{
	return create("/v1/ports", F->tenant, 201,
		      "{\"subnet\":%lld,\"ip\":\"%s\",\"node\":\"%s\","
		      "\"ifname\":\"%s\"}",
		      F->subnet, ip, node, ifname);
}

/* ---- the simulated agent ------------------------------------------------ */

static int fake_ifindex(void *ctx, const char *ifname)
{
	(void)ctx;
	return 100 + (int)strlen(ifname);
}

static int make_maps(void)
{
	return xvpc_mapbe_mem_new("vnis", 4, sizeof(struct xvpc_vni), 64,
				  &F->maps.m[XVPC_RC_VNIS]) ?:
	       xvpc_mapbe_mem_new("subnets", sizeof(struct xvpc_subnet_key),
				  sizeof(struct xvpc_subnet), 64,
				  &F->maps.m[XVPC_RC_SUBNETS]) ?:
	       xvpc_mapbe_mem_new("endpoints", sizeof(struct xvpc_ep_key),
				  sizeof(struct xvpc_ep), 1024,
				  &F->maps.m[XVPC_RC_ENDPOINTS]) ?:
	       xvpc_mapbe_mem_new("ifaces", 4, sizeof(struct xvpc_iface), 64,
				  &F->maps.m[XVPC_RC_IFACES]);
}

static int start_source(const char *const *urls, int n, bool no_register)
{
	struct agent_ctrl_opts o = {
		.urls = urls,
		.n_urls = n,
		.node_name = "n1",
		.node_ip = inet_addr(N1_IP),
		.token = ADMIN,
		.wait_s = 5,
		.connect_timeout_ms = 500,
		.retry_max_ms = 200,
		.no_register = no_register,
		.batch_ms = F->batch_ms,
	};

	return agent_source_ctrl_new(&o, &F->src);
}

static int start_source_at(uint16_t port)
{
	char url[64];
	const char *urls[] = {url};

	snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
	return start_source(urls, 1, false);
}

static struct agent_ctrl_stats stats(void)
{
	struct agent_ctrl_stats s;

	agent_source_ctrl_stats(F->src, &s);
	return s;
}

static bool ep_lookup(const char *ip, struct xvpc_ep *val)
{
	struct xvpc_mapbe *m = F->maps.m[XVPC_RC_ENDPOINTS];
	struct xvpc_ep_key k = {.vpc_id = F->vpc, .ip = inet_addr(ip)};
	struct xvpc_ep v;

	return !m->ops->lookup(m, &k, val ? val : &v);
}

static long n_eps(void)
{
	struct xvpc_mapbe *m = F->maps.m[XVPC_RC_ENDPOINTS];

	return m->ops->count(m);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

typedef bool (*pred_fn)(const void *arg);

/* The agent's loop: wait for the source, fetch, reconcile; until pred
 * holds (true) or SYNC_MS passes (false). */
static bool sync_until(pred_fn pred, const void *arg)
{
	long long end = now_ms() + SYNC_MS;

	while (!pred(arg)) {
		struct pollfd p = {.fd = F->src->ops->fd(F->src),
				   .events = POLLIN};
		struct xvpc_rc_result res;
		struct xvpc_state *st;

		if (now_ms() > end)
			return false;
		poll(&p, 1, 100);
		if (F->src->ops->fetch(F->src, false, &st) != 1)
			continue;
		assert_int_equal(xvpc_reconcile(&F->maps, &F->env, st, &res),
				 0);
		xvpc_state_free(F->st);
		F->st = st;
	}
	return true;
}

static bool has_ep(const void *ip)
{
	return ep_lookup(ip, NULL);
}

static bool lacks_ep(const void *ip)
{
	return !ep_lookup(ip, NULL);
}

static bool has_paced(const void *unused)
{
	(void)unused;
	return stats().paced > 0;
}

static bool has_state(const void *unused)
{
	(void)unused;
	return F->st != NULL;
}

/* The service of F->vpc on port *arg in the last state, or NULL. */
static const struct xvpc_state_svc *svc_on(int port)
{
	for (size_t i = 0; F->st && i < F->st->n_svcs; i++)
		if (F->st->svcs[i].vpc == F->vpc && F->st->svcs[i].port == port)
			return &F->st->svcs[i];
	return NULL;
}

static bool has_svc(const void *port)
{
	return svc_on(*(const int *)port) != NULL;
}

static bool lacks_svc(const void *port)
{
	return svc_on(*(const int *)port) == NULL;
}

/* The service on port 80 has *arg backends. */
static bool svc80_backends(const void *n)
{
	const struct xvpc_state_svc *sv = svc_on(80);

	return sv && sv->n_backends == *(const __u32 *)n;
}

static bool errors_above(const void *n)
{
	return stats().errors > *(const __u64 *)n;
}

static bool rejected_at_least(const void *n)
{
	return stats().rejected >= *(const __u64 *)n;
}

/* ---- fixtures ------------------------------------------------------------ */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int setup(void **state)
{
	F = calloc(1, sizeof(*F));
	if (!F)
		return -1;
	*state = F;
	strcpy(F->dir, "/tmp/xvpc-srcctl-XXXXXX");
	if (!mkdtemp(F->dir) || make_maps())
		return -1;
	F->cache = xvpc_rc_cache_new();
	F->env.node_ip = inet_addr(N1_IP);
	F->env.ifindex = fake_ifindex;
	F->env.cache = F->cache;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	agent_source_destroy(F->src);
	ctl_stop(&F->c);
	xvpc_state_free(F->st);
	for (int i = 0; i < XVPC_RC__COUNT; i++)
		xvpc_mapbe_destroy(F->maps.m[i]);
	xvpc_rc_cache_free(F->cache);
	nftw(F->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(F);
	return 0;
}

/* A controller with a tenant, a VPC and a subnet, node n2 registered and
 * hosting a port, so that n1 joins the VPC with its first port. */
static void populate(void)
{
	create("/v1/tenants", ADMIN, 201, "{\"name\":\"t1\"}");
	create("/v1/nodes", ADMIN, 201, "{\"name\":\"n2\",\"ip\":\"%s\"}",
	       N2_IP);
	F->vpc = create("/v1/vpcs", F->tenant, 201,
			"{\"name\":\"v\",\"cidr\":\"10.9.0.0/16\"}");
	F->subnet = create("/v1/subnets", F->tenant, 201,
			   "{\"vpc\":%lld,\"cidr\":\"10.9.1.0/24\"}", F->vpc);
	port_on("n2", "10.9.1.5", "xv5");
}

/* n1 registered by its source and bound to the VPC with one port. */
static void join(void)
{
	assert_true(sync_until(has_state, NULL));
	assert_int_equal(F->st->n_vpcs, 0);
	port_on("n1", "10.9.1.10", "xv10");
	assert_true(sync_until(has_ep, "10.9.1.10"));
	assert_true(sync_until(has_ep, "10.9.1.5"));
}

/* ---- tests ----------------------------------------------------------------- */

static void test_snapshot_then_changes(void **state)
{
	struct agent_ctrl_stats s;
	struct xvpc_ep ep;
	json_object *o;
	long long p, sub2;
	char path[64];
	__u64 snaps;

	(void)state;
	assert_int_equal(ctl_start(&F->c, F->dir, 0), 0);
	populate();
	assert_int_equal(start_source_at(F->c.port), 0);
	join();
	/* The source registered its node. */
	assert_int_equal(http("GET", "/v1/nodes/n1", ADMIN, NULL, &o), 200);
	assert_string_equal(
		json_object_get_string(json_object_object_get(o, "ip")), N1_IP);
	json_object_put(o);
	assert_true(ep_lookup("10.9.1.10", &ep));
	assert_true(ep.flags & XVPC_EP_LOCAL);
	assert_true(ep_lookup("10.9.1.5", &ep));
	assert_false(ep.flags & XVPC_EP_LOCAL);
	assert_int_equal(ep.node_ip, inet_addr(N2_IP));
	snaps = stats().snapshots;

	/* Incremental from here: a port on n2 comes and goes, a subnet is
	 * added with a port in it. */
	p = port_on("n2", "10.9.1.20", "xv20");
	assert_true(sync_until(has_ep, "10.9.1.20"));
	snprintf(path, sizeof(path), "/v1/ports/%lld", p);
	assert_int_equal(http("DELETE", path, F->tenant, NULL, NULL), 204);
	assert_true(sync_until(lacks_ep, "10.9.1.20"));
	sub2 = create("/v1/subnets", F->tenant, 201,
		      "{\"vpc\":%lld,\"cidr\":\"10.9.2.0/24\"}", F->vpc);
	create("/v1/ports", F->tenant, 201,
	       "{\"subnet\":%lld,\"ip\":\"10.9.2.7\",\"node\":\"n2\","
	       "\"ifname\":\"xv7\"}",
	       sub2);
	assert_true(sync_until(has_ep, "10.9.2.7"));
	assert_int_equal(n_eps(), 3);
	assert_int_equal(F->st->n_subnets, 2);
	s = stats();
	assert_int_equal(s.snapshots, snaps);
	assert_true(s.updates >= 3);
	assert_true(s.changes >= 4);
	assert_int_equal(s.rejected, 0);
	assert_true(s.connected);
	assert_int_equal(F->st->revision, s.revision);
}

/*
 * Pacing: the first AGENT_CTRL_BURST answers with changes come as fast as
 * the changes; then the source waits batch_ms before its next poll, and
 * the changes made meanwhile come in one answer. batch_ms is long (8 s)
 * so that creating the ports inside the wait is certain; nothing is timed.
 */
static void test_pacing(void **state)
{
	static const char *const ips[] = {"10.9.1.30", "10.9.1.31", "10.9.1.32",
					  "10.9.1.33", "10.9.1.34"};
	char ip[32], ifn[16];
	__u64 updates;
	int i;

	(void)state;
	F->batch_ms = 8000;
	assert_int_equal(ctl_start(&F->c, F->dir, 0), 0);
	populate();
	assert_int_equal(start_source_at(F->c.port), 0);
	join();
	/* One port at a time until the burst is spent: each comes alone. */
	for (i = 0; i < AGENT_CTRL_BURST; i++) {
		snprintf(ip, sizeof(ip), "10.9.1.%d", 100 + i);
		snprintf(ifn, sizeof(ifn), "xb%d", i);
		updates = stats().updates;
		port_on("n2", ip, ifn);
		assert_true(sync_until(has_ep, ip));
		assert_int_equal(stats().updates, updates + 1);
	}
	/* Its tokens spent, the source holds its next poll back (it counts
	 * that once it is back from handing over the last answer). */
	assert_true(sync_until(has_paced, NULL));
	/* The source now waits: five changes, one answer. */
	updates = stats().updates;
	for (i = 0; i < 5; i++) {
		snprintf(ifn, sizeof(ifn), "xc%d", i);
		port_on("n2", ips[i], ifn);
	}
	for (i = 0; i < 5; i++)
		assert_true(sync_until(has_ep, ips[i]));
	assert_int_equal(stats().updates, updates + 1);
	/* (and, having spent its token, it waits again) */
	assert_true(stats().paced >= 1);
	assert_int_equal(stats().rejected, 0);
}

/* A controller that asks for a longer interval (X-Xvpc-Batch-Ms: many
 * nodes poll it) gets it: the agent's own interval is a millisecond here,
 * the controller's a second. */
static void test_pacing_hint(void **state)
{
	static const char *const ips[] = {"10.9.1.40", "10.9.1.41", "10.9.1.42",
					  "10.9.1.43", "10.9.1.44"};
	char ip[32], ifn[16];
	__u64 updates;
	int i;

	(void)state;
	F->batch_ms = 1;
	assert_int_equal(ctl_start(&F->c, F->dir, 0), 0);
	F->c.api.answer_rate = 1; /* one node: 1000 ms */
	populate();
	assert_int_equal(start_source_at(F->c.port), 0);
	join();
	for (i = 0; stats().paced == 0; i++) {
		assert_true(i < 2 * AGENT_CTRL_BURST);
		snprintf(ip, sizeof(ip), "10.9.1.%d", 100 + i);
		snprintf(ifn, sizeof(ifn), "xb%d", i);
		port_on("n2", ip, ifn);
		assert_true(sync_until(has_ep, ip));
	}
	assert_int_equal(stats().hint_ms, API_BATCH_HINT_MAX_MS);
	updates = stats().updates;
	for (i = 0; i < 5; i++) {
		snprintf(ifn, sizeof(ifn), "xc%d", i);
		port_on("n2", ips[i], ifn);
	}
	for (i = 0; i < 5; i++)
		assert_true(sync_until(has_ep, ips[i]));
	/* One answer (two if creating them took the better part of the
	 * second), not five. */
	assert_true(stats().updates <= updates + 2);
	assert_int_equal(stats().rejected, 0);
}

static void test_resume_after_restart(void **state)
{
	struct agent_ctrl_stats before, after;
	uint16_t port;

	(void)state;
	assert_int_equal(ctl_start(&F->c, F->dir, 0), 0);
	populate();
	assert_int_equal(start_source_at(F->c.port), 0);
	join();
	before = stats();

	/* Same data, same address: the source resumes from its revision.
	 * Restarted once the source has seen it down (a parked long-poll is
	 * answered on shutdown, and a quick restart could come before the
	 * next request). */
	port = F->c.port;
	ctl_stop(&F->c);
	assert_true(sync_until(errors_above, &before.errors));
	assert_int_equal(ctl_start(&F->c, F->dir, port), 0);
	port_on("n2", "10.9.1.30", "xv30");
	assert_true(sync_until(has_ep, "10.9.1.30"));
	assert_true(ep_lookup("10.9.1.10", NULL));
	assert_int_equal(n_eps(), 3);
	after = stats();
	assert_true(after.revision > before.revision);
	assert_true(after.errors > before.errors); /* it did notice */
	/* No snapshot: the new change came as a change after the revision
	 * it held, which the restarted controller still serves. */
	assert_int_equal(after.snapshots, before.snapshots);
	assert_int_equal(after.rejected, 0);
}

static void test_failover_from_dead_url(void **state)
{
	char dead[64], live[64];
	const char *urls[] = {dead, live};
	struct agent_ctrl_stats s;

	(void)state;
	assert_int_equal(ctl_start(&F->c, F->dir, 0), 0);
	populate();
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%u", free_port());
	snprintf(live, sizeof(live), "http://127.0.0.1:%u/", F->c.port);
	assert_int_equal(start_source(urls, 2, false), 0);
	join();
	s = stats();
	assert_int_equal(s.url, 1);
	assert_true(s.failovers >= 1);
	assert_true(s.connected);
}

static void test_failover_mid_stream(void **state)
{
	char a[64], b[64];
	const char *urls[] = {a, b};
	struct agent_ctrl_stats s;
	uint16_t port_b = free_port();
	__u64 snaps;

	(void)state;
	assert_int_equal(ctl_start(&F->c, F->dir, 0), 0);
	populate();
	snprintf(a, sizeof(a), "http://127.0.0.1:%u", F->c.port);
	snprintf(b, sizeof(b), "http://127.0.0.1:%u", port_b);
	assert_int_equal(start_source(urls, 2, false), 0);
	join();
	s = stats();
	assert_int_equal(s.url, 0);
	snaps = s.snapshots;

	/* A dies while the source long-polls it; B takes over the data. */
	ctl_stop(&F->c);
	assert_int_equal(ctl_start(&F->c, F->dir, port_b), 0);
	port_on("n2", "10.9.1.40", "xv40");
	assert_true(sync_until(has_ep, "10.9.1.40"));
	assert_int_equal(n_eps(), 3);
	s = stats();
	assert_int_equal(s.url, 1);
	assert_true(s.failovers >= 1);
	assert_int_equal(s.snapshots, snaps); /* resumed on B */
	assert_int_equal(s.rejected, 0);
}

/* Load balancers made through the API reach the agent as "service"
 * changes (put, update, delete), without a snapshot, and survive the
 * copies the source hands over. */
static void test_services(void **state)
{
	const struct xvpc_state_svc *sv;
	int p80 = 80, p53 = 53;
	__u32 two = 2;
	long long lb80;
	char path[64];
	__u64 snaps;

	(void)state;
	assert_int_equal(ctl_start(&F->c, F->dir, 0), 0);
	populate();
	assert_int_equal(start_source_at(F->c.port), 0);
	join();
	snaps = stats().snapshots;
	lb80 = create("/v1/loadbalancers", F->tenant, 201,
		      "{\"vpc\":%lld,\"vip\":\"10.9.100.1\",\"port\":80,"
		      "\"protocol\":\"tcp\",\"backends\":[{\"ip\":"
		      "\"10.9.1.5\",\"port\":8080,\"weight\":3}],"
		      "\"health_check\":{\"type\":\"http\",\"path\":\"/hz\"}}",
		      F->vpc);
	assert_true(sync_until(has_svc, &p80));
	sv = svc_on(80);
	assert_int_equal(sv->vip, inet_addr("10.9.100.1"));
	assert_int_equal(sv->proto, IPPROTO_TCP);
	assert_int_equal(sv->n_backends, 1);
	assert_int_equal(sv->backends[0].ip, inet_addr("10.9.1.5"));
	assert_int_equal(sv->backends[0].port, 8080);
	assert_int_equal(sv->backends[0].weight, 3);
	assert_int_equal(sv->hc.type, XVPC_HC_HTTP);
	assert_string_equal(sv->hc.path, "/hz");
	assert_int_equal(sv->hc.interval_ms, 2000);

	/* An update replaces the service's backends. */
	snprintf(path, sizeof(path), "/v1/loadbalancers/%lld", lb80);
	assert_int_equal(http("PATCH", path, F->tenant,
			      "{\"backends\":[{\"ip\":\"10.9.1.5\"},"
			      "{\"ip\":\"10.9.1.10\",\"weight\":0}]}",
			      NULL),
			 200);
	assert_true(sync_until(svc80_backends, &two));
	sv = svc_on(80);
	assert_int_equal(sv->backends[0].port, 0);
	assert_int_equal(sv->backends[1].weight, 0);
	assert_int_equal(sv->hc.type, XVPC_HC_HTTP);

	/* A second one; then the first goes. */
	create("/v1/loadbalancers", F->tenant, 201,
	       "{\"vpc\":%lld,\"vip\":\"10.9.100.1\",\"port\":53,"
	       "\"protocol\":\"udp\"}",
	       F->vpc);
	assert_true(sync_until(has_svc, &p53));
	assert_int_equal(svc_on(53)->proto, IPPROTO_UDP);
	assert_int_equal(svc_on(53)->n_backends, 0);
	assert_int_equal(http("DELETE", path, F->tenant, NULL, NULL), 204);
	assert_true(sync_until(lacks_svc, &p80));
	assert_int_equal(F->st->n_svcs, 1);
	assert_non_null(svc_on(53));
	/* All of it came as changes. */
	assert_int_equal(stats().snapshots, snaps);
	assert_int_equal(stats().rejected, 0);
	assert_int_equal(F->st->revision, stats().revision);
}

/* ---- a fake controller that answers garbage ------------------------------- */

static const char good_snapshot[] =
	"{\"revision\":5,\"vpcs\":[{\"id\":1,\"name\":\"v\"}],"
	"\"subnets\":[{\"vpc\":1,\"cidr\":\"10.0.1.0/24\",\"vni\":100,"
	"\"gateway_ip\":\"10.0.1.1\",\"gateway_mac\":\"02:78:76:70:63:01\"}],"
	"\"endpoints\":[{\"vpc\":1,\"ip\":\"10.0.1.10\","
	"\"mac\":\"02:00:00:00:00:0a\",\"node_ip\":\"192.168.100.2\"},"
	"{\"vpc\":1,\"ip\":\"10.0.1.20\",\"mac\":\"02:00:00:00:00:14\","
	"\"node_ip\":\"192.168.100.2\",\"ifname\":\"veth9\"}]}";

#define PUT_99                                                             \
	"{\"revision\":6,\"op\":\"put\",\"kind\":\"endpoint\",\"object\":" \
	"{\"vpc\":1,\"ip\":\"10.0.1.99\",\"mac\":\"02:00:00:00:00:63\","   \
	"\"node_ip\":\"192.168.100.2\"}}"

/* Each is refused as a whole: the good first change must not show. */
static const char *const bad_answers[] = {
	"this is not JSON",
	"{\"revision\":7,\"snapshot\":false,\"changes\":[" PUT_99 ",",
	"{\"revision\":7,\"snapshot\":false,\"changes\":[" PUT_99
	",{\"revision\":7,\"op\":\"put\",\"kind\":\"endpoint\",\"object\":"
	"{\"vpc\":1,\"ip\":\"10.0.1.11\",\"mac\":\"02:00:00:00:00:0b\","
	"\"node_ip\":\"192.168.100.2\",\"colour\":\"red\"}}]}",
	/* An endpoint outside every subnet: the state after it is invalid. */
	"{\"revision\":7,\"snapshot\":false,\"changes\":[" PUT_99
	",{\"revision\":7,\"op\":\"put\",\"kind\":\"endpoint\",\"object\":"
	"{\"vpc\":1,\"ip\":\"10.0.9.1\",\"mac\":\"02:00:00:00:00:0c\","
	"\"node_ip\":\"192.168.100.2\"}}]}",
	"{\"revision\":7,\"snapshot\":false,\"changes\":[" PUT_99
	",{\"revision\":7,\"op\":\"rename\",\"kind\":\"vpc\",\"object\":"
	"{\"id\":1}}]}",
	"{\"revision\":7,\"snapshot\":false,\"changes\":[" PUT_99 "],"
	"\"extra\":1}",
	"{\"revision\":7,\"snapshot\":true,\"vpcs\":[{\"id\":1}],"
	"\"subnets\":[],\"endpoints\":[{\"vpc\":1,\"ip\":\"10.0.1.99\"}]}",
	/* Revision going backwards without a snapshot. */
	"{\"revision\":3,\"snapshot\":false,\"changes\":[]}",
	/* A service with a weight out of range. */
	"{\"revision\":7,\"snapshot\":false,\"changes\":[" PUT_99
	",{\"revision\":7,\"op\":\"put\",\"kind\":\"service\",\"object\":"
	"{\"vpc\":1,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":\"tcp\","
	"\"backends\":[{\"ip\":\"10.0.1.10\",\"weight\":70000}]}}]}",
	/* A service of a VPC the state does not hold. */
	"{\"revision\":7,\"snapshot\":false,\"changes\":[" PUT_99
	",{\"revision\":7,\"op\":\"put\",\"kind\":\"service\",\"object\":"
	"{\"vpc\":2,\"vip\":\"10.0.100.1\",\"port\":80,\"protocol\":\"tcp\","
	"\"backends\":[]}}]}",
	/* A service whose VIP is an endpoint's address. */
	"{\"revision\":7,\"snapshot\":false,\"changes\":[" PUT_99
	",{\"revision\":7,\"op\":\"put\",\"kind\":\"service\",\"object\":"
	"{\"vpc\":1,\"vip\":\"10.0.1.10\",\"port\":80,\"protocol\":\"tcp\","
	"\"backends\":[]}}]}",
	/* Endpoint changes only (validated by what they change): an
	 * interface name another endpoint of the node has, ... */
	"{\"revision\":7,\"snapshot\":false,\"changes\":[" PUT_99
	",{\"revision\":7,\"op\":\"put\",\"kind\":\"endpoint\",\"object\":"
	"{\"vpc\":1,\"ip\":\"10.0.1.12\",\"mac\":\"02:00:00:00:00:0c\","
	"\"node_ip\":\"192.168.100.2\",\"ifname\":\"veth9\"}}]}",
	/* ... the subnet's gateway address, a broadcast MAC. */
	"{\"revision\":7,\"snapshot\":false,\"changes\":[" PUT_99
	",{\"revision\":7,\"op\":\"put\",\"kind\":\"endpoint\",\"object\":"
	"{\"vpc\":1,\"ip\":\"10.0.1.1\",\"mac\":\"02:00:00:00:00:0d\","
	"\"node_ip\":\"192.168.100.2\"}}]}",
	"{\"revision\":7,\"snapshot\":false,\"changes\":[" PUT_99
	",{\"revision\":7,\"op\":\"put\",\"kind\":\"endpoint\",\"object\":"
	"{\"vpc\":1,\"ip\":\"10.0.1.13\",\"mac\":\"ff:ff:ff:ff:ff:ff\","
	"\"node_ip\":\"192.168.100.2\"}}]}",
	/* An unknown kind. */
	"{\"revision\":7,\"snapshot\":false,\"changes\":[" PUT_99
	",{\"revision\":7,\"op\":\"put\",\"kind\":\"gateway\",\"object\":"
	"{\"vpc\":1}}]}",
};

#define N_BAD (sizeof(bad_answers) / sizeof(bad_answers[0]))

struct fake {
	int lfd;
	int stop[2];
	uint16_t port;
	pthread_t th;
	unsigned int polls; /* answers to ?since= so far */
};

static void fake_answer(struct fake *f, int fd)
{
	char req[8192], head[256];
	const char *body;
	size_t n = 0;
	ssize_t r;

	/* Headers, and a short body for POST (the node registration). */
	while (n < sizeof(req) - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (poll(&p, 1, 2000) <= 0)
			return;
		r = read(fd, req + n, sizeof(req) - 1 - n);
		if (r <= 0)
			return;
		n += r;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n") &&
		    (strncmp(req, "POST", 4) || strstr(req, "\"ip\"")))
			break;
	}
	if (!strncmp(req, "POST", 4))
		body = "{\"name\":\"n1\",\"ip\":\"192.168.100.1\"}";
	else if (!strstr(req, "since="))
		body = good_snapshot;
	else
		body = bad_answers[f->polls++ % N_BAD];
	snprintf(head, sizeof(head),
		 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		 strlen(body));
	if (write(fd, head, strlen(head)) < 0 ||
	    write(fd, body, strlen(body)) < 0)
		return;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		struct pollfd p[2] = {{.fd = f->lfd, .events = POLLIN},
				      {.fd = f->stop[0], .events = POLLIN}};
		int fd;

		if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
			break;
		fd = accept(f->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		fake_answer(f, fd);
		close(fd);
	}
	return NULL;
}

static int fake_start(struct fake *f)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || bind(f->lfd, (void *)&sa, sizeof(sa)) ||
	    listen(f->lfd, 16) || getsockname(f->lfd, (void *)&sa, &len) ||
	    pipe(f->stop))
		return -1;
	f->port = ntohs(sa.sin_port);
	return pthread_create(&f->th, NULL, fake_main, f) ? -1 : 0;
}

static void fake_stop(struct fake *f)
{
	if (write(f->stop[1], "x", 1) == 1)
		pthread_join(f->th, NULL);
	close(f->stop[0]);
	close(f->stop[1]);
	close(f->lfd);
}

static void test_bad_answers_change_nothing(void **state)
{
	struct fake f = {0};
	struct agent_ctrl_stats s;
	__u64 want = N_BAD;

	(void)state;
	assert_int_equal(fake_start(&f), 0);
	F->vpc = 1;
	assert_int_equal(start_source_at(f.port), 0);
	assert_true(sync_until(has_ep, "10.0.1.10"));
	/* Every bad answer once (each followed by a fresh snapshot). */
	assert_true(sync_until(rejected_at_least, &want));
	s = stats();
	assert_int_equal(s.revision, 5);
	agent_source_destroy(F->src);
	F->src = NULL;
	fake_stop(&f);
	/* Drain what the source handed over: still the snapshot. */
	assert_int_equal(F->st->revision, 5);
	assert_int_equal(F->st->n_eps, 2);
	assert_int_equal(n_eps(), 2);
	assert_true(ep_lookup("10.0.1.10", NULL));
	assert_false(ep_lookup("10.0.1.99", NULL));
	assert_int_equal(F->st->n_svcs, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_snapshot_then_changes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_pacing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pacing_hint, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_resume_after_restart,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_failover_from_dead_url,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_failover_mid_stream, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_services, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_answers_change_nothing,
						setup, teardown),
	};

	xvpc_log_set_level(getenv("XVPC_TEST_LOG") ? XVPC_LOG_DEBUG
						   : XVPC_LOG_WARN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
