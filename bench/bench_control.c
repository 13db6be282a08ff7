// SPDX-License-Identifier: GPL-2.0-only
/*
 * Control-plane benchmark (make bench-control, through bench/control.sh).
 *
 * Simulated agents: the agent's own controller source (agent/source_ctrl.c,
 * one thread and one keep-alive connection each) and its reconciler
 * (agent/reconcile.c) writing in-memory maps (agent/mapbe.c), many in this
 * process. Worker threads (one per CPU by default) play the agents' main
 * loops: each owns a share of the agents, waits on their sources' fds,
 * fetches and reconciles.
 *
 * Against a running controller (or several, --url repeated: agent i uses
 * the list rotated by i, so the load spreads and each has failover):
 *
 *  setup    a tenant, N nodes and V VPCs (--vpcs), each spanning K nodes
 *           (--span): VPC v has a port on nodes (v * N / V + j) mod N,
 *           j = 0 .. K-1, so with K > N / V neighbouring VPCs overlap and
 *           every node hosts one or more VPCs. A node's agent gets the
 *           VPCs it hosts ports in, and only those. V = 1, K = N is the
 *           broadcast case: one VPC on every node, every change goes to
 *           every agent.
 *  sync     N agents start, register, take their snapshot.
 *  idle     (--idle-secs S, default 0: skipped) nothing changes for S
 *           seconds while every agent's long-poll is parked: the
 *           controller's CPU and the agents' polls meanwhile.
 *  apply    M times, one after the other: change i creates a port in VPC
 *           (i mod V) on its member node (i / V mod K); the latency of an
 *           interested agent (one of the VPC's K nodes) is the time from
 *           the API call returning to that agent having the port's endpoint
 *           in its maps. p50, p99, max over all (change, interested agent).
 *  ports    C API clients create bound ports as fast as the controller
 *           takes them, for S seconds, spread over the VPCs as the changes
 *           are, while the interested agents keep applying; then the time
 *           until every agent caught up. ports/s (sustained) = ports
 *           created / (S + that time): a backlog left to the agents
 *           counts; the API's own rate is reported beside.
 *
 * usage: bench_control --url URL [--url URL...] --token ADMIN --agents N
 *                      [--vpcs V] [--span K] [--changes M]
 *                      [--ports-secs S] [--clients C] [--workers W]
 *                      [--store NAME] [--ctl-pid PID...] [--idle-secs S]
 *                      [--batch-ms MS] [--out FILE]
 * Writes one JSON object (the figures of this run) to --out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "cloc.h"
#include "agent/reconcile.h"
#include "agent/source_ctrl.h"
#include "controller/api.h"
#include "log.h"
#include "netutil.h"

#define MAX_URLS	  8
#define MAX_PIDS	  8
#define SYNC_TIMEOUT_S	  120
#define APPLY_TIMEOUT_S	  30
#define APPLY_GIVE_UP	  3 /* changes that miss an agent: stop there */
#define CATCHUP_TIMEOUT_S 120

struct opts {
	const char *urls[MAX_URLS];
	int n_urls;
	const char *token;
	int agents;
	int vpcs; /* V: VPCs (default 1) */
	int span; /* K: nodes each VPC spans (default: all) */
	int changes;
	double ports_secs;
	double idle_secs;
	int clients;
	int workers;
	const char *store;
	int pids[MAX_PIDS];
	int n_pids;
	const char *out;
	const char *inproc; /* data dir of an in-process controller */
	int feed;	    /* its change feed length (0: default) */
	int batch_ms;	    /* the agents' answer pacing (agent default) */
};

static struct opts O = {
	.changes = 0,
	.ports_secs = 5,
	.clients = 16,
	.store = "embedded",
	.batch_ms = AGENT_CTRL_BATCH_MS_DEFAULT,
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "bench_control: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

/* ---- API client --------------------------------------------------------- */

struct cli {
	CURL *c;
	struct curl_slist *h;
	char *b;
	size_t n;
	int url;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *arg)
{
	struct cli *c = arg;
	char *p = realloc(c->b, c->n + sz * nm + 1);

	if (!p)
		return 0;
	memcpy(p + c->n, d, sz * nm);
	c->b = p;
	c->n += sz * nm;
	p[c->n] = '\0';
	return sz * nm;
}

static void cli_init(struct cli *c, const char *token, int url)
{
	char line[512];

	memset(c, 0, sizeof(*c));
	c->c = curl_easy_init();
	snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
	c->h = curl_slist_append(NULL, line);
	c->h = curl_slist_append(c->h, "Content-Type: application/json");
	c->url = url % O.n_urls;
	curl_easy_setopt(c->c, CURLOPT_HTTPHEADER, c->h);
	curl_easy_setopt(c->c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->c, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c->c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c->c, CURLOPT_NOSIGNAL, 1L);
}

static void cli_fini(struct cli *c)
{
	curl_slist_free_all(c->h);
	curl_easy_cleanup(c->c);
	free(c->b);
}

/* POST; returns the status (0: no answer), *out the parsed body. */
static long cli_post(struct cli *c, const char *path, const char *body,
		     json_object **out)
{
	char url[512];
	long status = 0;

	snprintf(url, sizeof(url), "%s%s", O.urls[c->url], path);
	c->n = 0;
	curl_easy_setopt(c->c, CURLOPT_URL, url);
	curl_easy_setopt(c->c, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(c->c) == CURLE_OK)
		curl_easy_getinfo(c->c, CURLINFO_RESPONSE_CODE, &status);
	if (out)
		*out = c->n ? json_tokener_parse(c->b) : NULL;
	return status;
}

static long cli_get(struct cli *c, const char *path, json_object **out)
{
	char url[512];
	long status = 0;

	snprintf(url, sizeof(url), "%s%s", O.urls[c->url], path);
	c->n = 0;
	curl_easy_setopt(c->c, CURLOPT_URL, url);
	curl_easy_setopt(c->c, CURLOPT_HTTPGET, 1L);
	if (curl_easy_perform(c->c) == CURLE_OK)
		curl_easy_getinfo(c->c, CURLINFO_RESPONSE_CODE, &status);
	*out = c->n ? json_tokener_parse(c->b) : NULL;
	return status;
}

static long long post_id(struct cli *c, const char *path, const char *body,
			 const char *field, char *str, size_t len)
{
	json_object *o = NULL;
	long st = cli_post(c, path, body, &o);
	long long id;

	if (st != 201 && st != 200)
		die("POST %s %s: HTTP %ld %s", path, body, st,
		    c->n ? c->b : "");
	id = json_object_get_int64(json_object_object_get(o, "id"));
	if (str)
		snprintf(str, len, "%s",
			 json_object_get_string(
				 json_object_object_get(o, field)));
	json_object_put(o);
	return id;
}

/* ---- setup ---------------------------------------------------------------- */

static char tenant_token[256];
/* Per VPC: its id and its subnets (ports of the setup, of the apply
 * changes, of the ports phase). */
struct bvpc {
	long long id, sub_base, sub_lat, sub_load;
	long ports; /* __atomic: endpoints it has (every member gets them) */
};
static struct bvpc *vpcs;

static void node_name(int i, char *buf, size_t len)
{
	snprintf(buf, len, "sim%04d", i);
}

static __be32 node_ip(int i)
{
	return htonl(0xac100000u + 1 + i); /* 172.16.0.1 + i */
}

struct par {
	int n;
	int next; /* __atomic */
	void (*fn)(struct cli *c, int i);
	const char *token;
};

static void *par_main(void *arg)
{
	struct par *p = arg;
	static int seq;
	struct cli c;
	int i;

	cli_init(&c, p->token, __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	while ((i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED)) < p->n)
		p->fn(&c, i);
	cli_fini(&c);
	return NULL;
}

static void parallel(int n, const char *token, void (*fn)(struct cli *, int))
{
	struct par p = {.n = n, .fn = fn, .token = token};
	pthread_t th[64];
	int k = O.clients < 64 ? O.clients : 64;

	for (int i = 0; i < k; i++)
		if (pthread_create(&th[i], NULL, par_main, &p))
			die("pthread_create failed");
	for (int i = 0; i < k; i++)
		pthread_join(th[i], NULL);
}

static void make_node(struct cli *c, int i)
{
	char body[128], name[32], ip[XVPC_IP_STRLEN];

	node_name(i, name, sizeof(name));
	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"ip\":\"%s\"}", name,
		 xvpc_fmt_ip(node_ip(i), ip));
	post_id(c, "/v1/nodes", body, NULL, NULL, 0);
}

/* Member j of VPC v: its node. */
static int member(int v, int j)
{
	return (int)(((long long)v * O.agents / O.vpcs + j) % O.agents);
}

static void make_vpc(struct cli *c, int v)
{
	static const char *const cidr[] = {"10.0.0.0/12", "10.16.0.0/12",
					   "10.32.0.0/12"};
	long long *sub[] = {&vpcs[v].sub_base, &vpcs[v].sub_lat,
			    &vpcs[v].sub_load};
	char body[128];

	snprintf(body, sizeof(body),
		 "{\"name\":\"v%d\",\"cidr\":\"10.0.0.0/8\"}", v);
	vpcs[v].id = post_id(c, "/v1/vpcs", body, NULL, NULL, 0);
	for (int k = 0; k < 3; k++) {
		snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"%s\"}",
			 vpcs[v].id, cidr[k]);
		*sub[k] = post_id(c, "/v1/subnets", body, NULL, NULL, 0);
	}
}

/* Port i of the setup: member i mod K of VPC i / K. */
static void make_port(struct cli *c, int i)
{
	int v = i / O.span, n = member(v, i % O.span);
	char body[160], name[32];

	node_name(n, name, sizeof(name));
	snprintf(body, sizeof(body),
		 "{\"subnet\":%lld,\"node\":\"%s\",\"ifname\":\"b%d\"}",
		 vpcs[v].sub_base, name, i);
	post_id(c, "/v1/ports", body, NULL, NULL, 0);
	__atomic_fetch_add(&vpcs[v].ports, 1, __ATOMIC_RELAXED);
}

/* Nodes whose record says "status": "up" (-1: no node has a status). */
static int nodes_up(struct cli *c)
{
	char path[128] = "/v1/nodes?limit=1000";
	int up = 0, with_status = 0;

	for (;;) {
		json_object *o = NULL, *items, *next;
		size_t n;

		if (cli_get(c, path, &o) != 200 ||
		    !json_object_object_get_ex(o, "items", &items)) {
			json_object_put(o);
			return -1;
		}
		n = json_object_array_length(items);
		for (size_t i = 0; i < n; i++) {
			json_object *st;

			if (json_object_object_get_ex(
				    json_object_array_get_idx(items, i),
				    "status", &st)) {
				with_status++;
				up += !strcmp(json_object_get_string(st), "up");
			}
		}
		next = json_object_object_get(o, "next");
		if (!next || json_object_is_type(next, json_type_null)) {
			json_object_put(o);
			break;
		}
		snprintf(path, sizeof(path), "/v1/nodes?limit=1000&after=%s",
			 json_object_get_string(next));
		json_object_put(o);
	}
	return with_status ? up : -1;
}

/*
 * The leader writes each node's liveness into its record, and any node
 * record change sends every agent a full snapshot: let that first marking
 * happen before the agents connect, so that it is not measured.
 */
static void wait_nodes_marked(void)
{
	double t0 = now_s(), end = t0 + 60;
	struct cli c;
	int up = -1;

	cli_init(&c, O.token, 0);
	while (now_s() < end) {
		up = nodes_up(&c);
		if (up == O.agents || (up < 0 && now_s() - t0 > 3))
			break;
		usleep(200000);
	}
	cli_fini(&c);
	if (up >= 0)
		fprintf(stderr, "bench_control: %d of %d nodes marked up\n", up,
			O.agents);
}

/* Waits until every controller answers GET path with 200: a member has
 * another member's commit a few ms after it (docs/api.md, "Several
 * controllers"), and the next step of the setup may go to any member. */
static void wait_visible(const char *token, const char *path)
{
	for (int u = 0; u < O.n_urls; u++) {
		struct cli c;
		long st = 0;

		cli_init(&c, token, u);
		for (int i = 0; i < 1000; i++) {
			json_object *o = NULL;

			st = cli_get(&c, path, &o);
			json_object_put(o);
			if (st == 200)
				break;
			usleep(10000);
		}
		cli_fini(&c);
		if (st != 200)
			die("GET %s on %s: HTTP %ld after 10 s", path,
			    O.urls[u], st);
	}
}

static void setup(void)
{
	char path[64];
	struct cli c;

	cli_init(&c, O.token, 0);
	post_id(&c, "/v1/tenants", "{\"name\":\"bench\"}", "token",
		tenant_token, sizeof(tenant_token));
	cli_fini(&c);
	wait_visible(tenant_token, "/v1/vpcs");
	parallel(O.agents, O.token, make_node);
	for (int n = 0; n < O.agents && O.n_urls > 1; n++) {
		char name[32];

		node_name(n, name, sizeof(name));
		snprintf(path, sizeof(path), "/v1/nodes/%s", name);
		wait_visible(O.token, path);
	}
	parallel(O.vpcs, tenant_token, make_vpc);
	for (int v = 0; v < O.vpcs; v++) {
		snprintf(path, sizeof(path), "/v1/subnets/%lld",
			 vpcs[v].sub_load);
		wait_visible(tenant_token, path);
	}
	parallel(O.vpcs * O.span, tenant_token, make_port);
	wait_nodes_marked();
}

/* ---- simulated agents ------------------------------------------------------ */

struct sim {
	int id;
	struct agent_source *src;
	struct xvpc_rc_maps maps;
	struct xvpc_rc_env env;
	struct xvpc_rc_cache *cache;
	struct xvpc_state *st;
	long n_eps; /* __atomic: endpoints in its map */
	unsigned int done_gen;
	unsigned int want_gen; /* __atomic: the change it is interested in */
	int *vpcs;	       /* indexes of the VPCs it hosts */
	int n_vpcs;
	double applied_at;
	__u64 applies;
};

static struct sim *sims;
/* The change being measured: its endpoint key and generation. */
static __be32 target_ip;
static long long target_vpc;
static unsigned int target_gen; /* __atomic */
static int done_count;		/* __atomic */
static bool workers_stop;	/* __atomic */
static __u64 rc_errors;		/* __atomic */

/* Every local interface exists: "b12" (setup), "l12" (apply), "w12"
 * (ports) get distinct indexes. */
static int fake_ifindex(void *ctx, const char *ifname)
{
	(void)ctx;
	return (ifname[0] == 'b'   ? 1
		: ifname[0] == 'l' ? 2
				   : 3) *
		       10000000 +
	       atoi(ifname + 1);
}

static void sim_init(struct sim *s, int i)
{
	char name[32], url_buf[MAX_URLS][256];
	const char *urls[MAX_URLS];
	struct agent_ctrl_opts o = {
		.urls = urls,
		.n_urls = O.n_urls,
		.node_name = name,
		.node_ip = node_ip(i),
		.token = O.token,
		.wait_s = 30,
		.batch_ms = O.batch_ms,
	};
	int err;

	s->id = i;
	node_name(i, name, sizeof(name));
	for (int k = 0; k < O.n_urls; k++) {
		snprintf(url_buf[k], sizeof(url_buf[k]), "%s",
			 O.urls[(i + k) % O.n_urls]);
		urls[k] = url_buf[k];
	}
	if (xvpc_mapbe_mem_new("vnis", 4, sizeof(struct xvpc_vni), 1 << 16,
			       &s->maps.m[XVPC_RC_VNIS]) ||
	    xvpc_mapbe_mem_new("subnets", sizeof(struct xvpc_subnet_key),
			       sizeof(struct xvpc_subnet), 1 << 16,
			       &s->maps.m[XVPC_RC_SUBNETS]) ||
	    xvpc_mapbe_mem_new("endpoints", sizeof(struct xvpc_ep_key),
			       sizeof(struct xvpc_ep), 1 << 20,
			       &s->maps.m[XVPC_RC_ENDPOINTS]) ||
	    xvpc_mapbe_mem_new("ifaces", 4, sizeof(struct xvpc_iface), 1 << 16,
			       &s->maps.m[XVPC_RC_IFACES]))
		die("out of memory for the maps of agent %d", i);
	s->cache = xvpc_rc_cache_new();
	s->env.node_ip = node_ip(i);
	s->env.ifindex = fake_ifindex;
	s->env.cache = s->cache;
	err = agent_source_ctrl_new(&o, &s->src);
	if (err)
		die("agent %d: cannot start its source: %s", i, strerror(-err));
}

/* Which VPCs each node hosts (sims[i].vpcs); every node hosts one. */
static void hosts(void)
{
	for (int v = 0; v < O.vpcs; v++) {
		for (int j = 0; j < O.span; j++) {
			struct sim *s = &sims[member(v, j)];
			int *p = realloc(s->vpcs, (s->n_vpcs + 1) * sizeof(*p));

			if (!p)
				die("out of memory");
			s->vpcs = p;
			s->vpcs[s->n_vpcs++] = v;
		}
	}
	for (int i = 0; i < O.agents; i++)
		if (!sims[i].n_vpcs)
			die("--vpcs %d --span %d leaves node %d without a VPC",
			    O.vpcs, O.span, i);
}

static void sim_fini(struct sim *s)
{
	agent_source_destroy(s->src);
	xvpc_state_free(s->st);
	for (int i = 0; i < XVPC_RC__COUNT; i++)
		xvpc_mapbe_destroy(s->maps.m[i]);
	xvpc_rc_cache_free(s->cache);
	free(s->vpcs);
}

/* The agent's main loop body: fetch the newest state and reconcile. */
static void sim_apply(struct sim *s)
{
	struct xvpc_mapbe *m = s->maps.m[XVPC_RC_ENDPOINTS];
	struct xvpc_rc_result res;
	struct xvpc_state *st;
	struct xvpc_ep_key k;
	struct xvpc_ep v;
	unsigned int gen;

	if (s->src->ops->fetch(s->src, false, &st) != 1)
		return;
	if (xvpc_reconcile(&s->maps, &s->env, st, &res))
		__atomic_fetch_add(&rc_errors, 1, __ATOMIC_RELAXED);
	xvpc_state_free(s->st);
	s->st = st;
	s->applies++;
	__atomic_store_n(&s->n_eps, m->ops->count(m), __ATOMIC_RELEASE);
	gen = __atomic_load_n(&target_gen, __ATOMIC_ACQUIRE);
	if (s->done_gen == gen ||
	    __atomic_load_n(&s->want_gen, __ATOMIC_ACQUIRE) != gen)
		return;
	k.vpc_id = target_vpc;
	k.ip = target_ip;
	if (m->ops->lookup(m, &k, &v))
		return;
	s->applied_at = now_s();
	s->done_gen = gen;
	__atomic_fetch_add(&done_count, 1, __ATOMIC_RELEASE);
}

struct worker {
	pthread_t th;
	int ep;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[64];

	xvpc_use_c_locale();

	while (!__atomic_load_n(&workers_stop, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(w->ep, ev, 64, 100);

		for (int i = 0; i < n; i++)
			sim_apply(ev[i].data.ptr);
	}
	return NULL;
}

/* ---- measurements ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p)
{
	size_t i = (size_t)(p * (n - 1) + 0.5);

	return n ? v[i < n ? i : n - 1] : 0;
}

static int synced;

/* The endpoints agent i should have: all of every VPC it hosts. */
static long want_eps(int i)
{
	long n = 0;

	for (int k = 0; k < sims[i].n_vpcs; k++)
		n += __atomic_load_n(&vpcs[sims[i].vpcs[k]].ports,
				     __ATOMIC_ACQUIRE);
	return n;
}

/* Every agent has every endpoint of its VPCs (the counts of now). */
static bool all_have(double timeout_s)
{
	double end = now_s() + timeout_s;
	long *want = calloc(O.agents, sizeof(*want));

	if (!want)
		die("out of memory");
	for (int i = 0; i < O.agents; i++)
		want[i] = want_eps(i);
	for (;;) {
		int ok = 0;

		for (int i = 0; i < O.agents; i++)
			ok += __atomic_load_n(&sims[i].n_eps,
					      __ATOMIC_ACQUIRE) >= want[i];
		synced = ok;
		if (ok == O.agents)
			break;
		if (now_s() > end) {
			fprintf(stderr,
				"bench_control: only %d of %d agents had all "
				"endpoints of their VPCs\n",
				ok, O.agents);
			break;
		}
		usleep(2000);
	}
	free(want);
	return synced == O.agents;
}

/* CPU seconds used so far by a process (utime + stime). */
static double cpu_s(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return 0;
	}
	fclose(f);
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2,
			 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			 "%lu %lu",
			 &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static long proc_status(int pid, const char *field)
{
	char path[64], line[256];
	size_t fl = strlen(field);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, fl) && line[fl] == ':')
			v = atol(line + fl + 1);
	fclose(f);
	return v;
}

/* The machine's busy and stolen CPU seconds so far (/proc/stat): on a VM
 * the host takes some of the guest's time (steal), which a run's figures
 * depend on. */
static void machine_cpu(double *busy, double *steal)
{
	unsigned long long v[8] = {0};
	char line[512];
	FILE *f = fopen("/proc/stat", "r");
	long hz = sysconf(_SC_CLK_TCK);

	*busy = *steal = 0;
	if (!f)
		return;
	if (fgets(line, sizeof(line), f) &&
	    sscanf(line, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		*busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
		*steal = (double)v[7] / hz;
	}
	fclose(f);
}

static double ctl_cpu(void)
{
	double t = 0;

	for (int i = 0; i < O.n_pids; i++)
		t += cpu_s(O.pids[i]);
	return t;
}

static struct json_object *jd(double x)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.3f", x);
	return json_object_new_double_s(x, buf);
}

/* The idle phase: the controller's CPU (cores) while nothing changes,
 * and the agents' answers meanwhile that changed something (none). */
static void measure_idle(json_object *out)
{
	double c0 = ctl_cpu(), t0 = now_s(), c1, t1;
	__u64 u0 = 0, u1 = 0;
	struct agent_ctrl_stats st;

	for (int i = 0; i < O.agents; i++) {
		agent_source_ctrl_stats(sims[i].src, &st);
		u0 += st.updates + st.snapshots;
	}
	usleep((useconds_t)(O.idle_secs * 1e6));
	c1 = ctl_cpu();
	t1 = now_s();
	for (int i = 0; i < O.agents; i++) {
		agent_source_ctrl_stats(sims[i].src, &st);
		u1 += st.updates + st.snapshots;
	}
	json_object_object_add(out, "idle_controller_cpu",
			       O.n_pids ? jd((c1 - c0) / (t1 - t0)) : NULL);
	json_object_object_add(out, "idle_updates",
			       json_object_new_int64(u1 - u0));
	printf("%-9s %5d agents  idle %.1f s: controller %.3f cores, %llu "
	       "state updates\n",
	       O.store, O.agents, t1 - t0, O.n_pids ? (c1 - c0) / (t1 - t0) : 0,
	       (unsigned long long)(u1 - u0));
}

/* The apply phase; fills the latency figures into out. */
static int measure_apply(json_object *out)
{
	size_t n = (size_t)O.changes * O.span, k = 0, timeouts = 0;
	int incomplete = 0, made = 0, api_errors = 0;
	double cpu0 = self_cpu_s(), ctl0 = ctl_cpu(), cpu1, ctl1;
	double *lat = calloc(n ? n : 1, sizeof(*lat));
	double *per_change_max =
		calloc(O.changes ? O.changes : 1, sizeof(double));
	struct cli c;

	if (!lat || !per_change_max)
		die("out of memory");
	cli_init(&c, tenant_token, 0);
	for (int i = 0; i < O.changes; i++) {
		char body[192], name[32], ip[XVPC_IP_STRLEN];
		__be32 a = htonl(0x0a100000u + 16 + i); /* 10.16.0.16 + i */
		int v = i % O.vpcs, on = member(v, i / O.vpcs % O.span);
		double t0, end;
		long st;

		node_name(on, name, sizeof(name));
		snprintf(body, sizeof(body),
			 "{\"subnet\":%lld,\"ip\":\"%s\",\"node\":\"%s\","
			 "\"ifname\":\"l%d\"}",
			 vpcs[v].sub_lat, xvpc_fmt_ip(a, ip), name, i);
		__atomic_store_n(&done_count, 0, __ATOMIC_RELEASE);
		target_ip = a;
		target_vpc = vpcs[v].id;
		for (int j = 0; j < O.span; j++)
			__atomic_store_n(&sims[member(v, j)].want_gen, i + 1,
					 __ATOMIC_RELEASE);
		__atomic_store_n(&target_gen, i + 1, __ATOMIC_RELEASE);
		c.url = i % O.n_urls;
		st = cli_post(&c, "/v1/ports", body, NULL);
		t0 = now_s();
		if (st != 201) {
			/* Counted, not measured; the next change goes on. */
			fprintf(stderr,
				"bench_control: creating port %s: HTTP %ld "
				"%s\n",
				ip, st, c.n ? c.b : "");
			if (++api_errors > 10)
				break;
			usleep(100000);
			continue;
		}
		__atomic_fetch_add(&vpcs[v].ports, 1, __ATOMIC_RELEASE);
		end = t0 + APPLY_TIMEOUT_S;
		while (__atomic_load_n(&done_count, __ATOMIC_ACQUIRE) <
			       O.span &&
		       now_s() < end)
			usleep(200);
		made++;
		if (__atomic_load_n(&done_count, __ATOMIC_ACQUIRE) < O.span)
			incomplete++;
		for (int m = 0; m < O.span; m++) {
			int j = member(v, m);
			double d;

			if (sims[j].done_gen != (unsigned int)i + 1) {
				timeouts++;
				continue;
			}
			d = (sims[j].applied_at - t0) * 1000;
			if (getenv("BENCH_DEBUG") && d > 50)
				fprintf(stderr,
					"change %d agent %d: %.1f ms%s\n", i, j,
					d, j == on ? " (its node)" : "");
			lat[k++] = d > 0 ? d : 0;
			if (lat[k - 1] > per_change_max[i])
				per_change_max[i] = lat[k - 1];
		}
		if (incomplete >= APPLY_GIVE_UP) {
			fprintf(stderr,
				"bench_control: %d changes did not reach every "
				"agent within %d s: stopping after %d\n",
				incomplete, APPLY_TIMEOUT_S, made);
			break;
		}
		/* Let the controllers' other long-polls settle. */
		usleep(20000);
	}
	cli_fini(&c);
	cpu1 = self_cpu_s();
	ctl1 = ctl_cpu();
	/* What one change costs: the simulated agents (sources, reconcile,
	 * and for no_liveness the controller too) and the controller. */
	json_object_object_add(out, "apply_agents_cpu_us_per_agent_change",
			       made ? jd((cpu1 - cpu0) * 1e6 / made / O.span)
				    : NULL);
	json_object_object_add(out, "apply_controller_cpu_us_per_agent_change",
			       made && O.n_pids
				       ? jd((ctl1 - ctl0) * 1e6 / made / O.span)
				       : NULL);
	json_object_object_add(out, "apply_interested_agents",
			       json_object_new_int(O.span));
	qsort(lat, k, sizeof(*lat), cmp_double);
	qsort(per_change_max, made, sizeof(double), cmp_double);
	/* No sample (every create failed): no figure rather than 0. */
	json_object_object_add(out, "apply_p50_ms",
			       k ? jd(pct(lat, k, 0.50)) : NULL);
	json_object_object_add(out, "apply_p99_ms",
			       k ? jd(pct(lat, k, 0.99)) : NULL);
	json_object_object_add(out, "apply_max_ms", k ? jd(lat[k - 1]) : NULL);
	json_object_object_add(out, "apply_all_agents_p50_ms",
			       jd(pct(per_change_max, made, 0.5)));
	json_object_object_add(out, "apply_changes", json_object_new_int(made));
	json_object_object_add(out, "apply_api_errors",
			       json_object_new_int(api_errors));
	json_object_object_add(out, "apply_incomplete_changes",
			       json_object_new_int(incomplete));
	json_object_object_add(out, "apply_samples", json_object_new_int64(k));
	json_object_object_add(out, "apply_missed",
			       json_object_new_int64(timeouts));
	printf("%-9s %5d agents  apply p50 %7.2f ms  p99 %7.2f ms  max %7.2f "
	       "ms  (%zu samples, %zu missed)\n",
	       O.store, O.agents, pct(lat, k, 0.50), pct(lat, k, 0.99),
	       k ? lat[k - 1] : 0, k, timeouts);
	free(lat);
	free(per_change_max);
	return made;
}

struct load {
	double end;
	long ok;     /* __atomic */
	long failed; /* __atomic */
	int seq;     /* __atomic */
};

static struct load L;

static void *load_main(void *arg)
{
	struct cli c;
	long me = (long)arg;

	cli_init(&c, tenant_token, me);
	while (now_s() < L.end) {
		int i = __atomic_fetch_add(&L.seq, 1, __ATOMIC_RELAXED);
		int v = i % O.vpcs;
		char body[160], name[32];

		node_name(member(v, i / O.vpcs % O.span), name, sizeof(name));
		snprintf(body, sizeof(body),
			 "{\"subnet\":%lld,\"node\":\"%s\",\"ifname\":"
			 "\"w%d\"}",
			 vpcs[v].sub_load, name, i);
		if (cli_post(&c, "/v1/ports", body, NULL) == 201) {
			__atomic_fetch_add(&L.ok, 1, __ATOMIC_RELAXED);
			__atomic_fetch_add(&vpcs[v].ports, 1, __ATOMIC_RELEASE);
		} else
			__atomic_fetch_add(&L.failed, 1, __ATOMIC_RELAXED);
	}
	cli_fini(&c);
	return NULL;
}

static void measure_ports(json_object *out)
{
	pthread_t th[256];
	int k = O.clients < 256 ? O.clients : 256;
	double t0, t1, c0, c1, s0, s1, t2, b0, b1, st0, st1;
	bool caught;

	memset(&L, 0, sizeof(L));
	c0 = ctl_cpu();
	s0 = self_cpu_s();
	machine_cpu(&b0, &st0);
	t0 = now_s();
	L.end = t0 + O.ports_secs;
	for (long i = 0; i < k; i++)
		if (pthread_create(&th[i], NULL, load_main, (void *)i))
			die("pthread_create failed");
	for (int i = 0; i < k; i++)
		pthread_join(th[i], NULL);
	t1 = now_s();
	c1 = ctl_cpu();
	s1 = self_cpu_s();
	machine_cpu(&b1, &st1);
	caught = all_have(CATCHUP_TIMEOUT_S);
	t2 = now_s();
	/* Sustained: until every interested agent has applied them, so a
	 * backlog left to the agents counts (the API's own rate beside). */
	json_object_object_add(out, "ports_per_s",
			       L.ok && caught ? jd(L.ok / (t2 - t0)) : NULL);
	json_object_object_add(out, "ports_api_per_s",
			       L.ok ? jd(L.ok / (t1 - t0)) : NULL);
	json_object_object_add(out, "ports_created",
			       json_object_new_int64(L.ok));
	json_object_object_add(out, "ports_failed",
			       json_object_new_int64(L.failed));
	json_object_object_add(out, "ports_clients", json_object_new_int(k));
	json_object_object_add(out, "ports_secs", jd(t1 - t0));
	json_object_object_add(out, "ports_catchup_ms",
			       caught ? jd((t2 - t1) * 1000) : NULL);
	json_object_object_add(out, "ports_controller_cpu",
			       O.n_pids ? jd((c1 - c0) / (t1 - t0)) : NULL);
	json_object_object_add(out, "ports_agents_cpu",
			       jd((s1 - s0) / (t1 - t0)));
	json_object_object_add(out, "ports_machine_busy_cores",
			       jd((b1 - b0) / (t1 - t0)));
	json_object_object_add(out, "ports_machine_steal_cores",
			       jd((st1 - st0) / (t1 - t0)));
	printf("%-9s %5d agents  %.0f ports/s sustained (%ld created, %ld "
	       "failed, %d clients, API %.0f/s for %.1f s, every agent had "
	       "them %.0f ms later); CPU: controller %.2f, simulated agents "
	       "%.2f, machine busy %.2f, stolen by the host %.2f cores\n",
	       O.store, O.agents, L.ok / (t2 - t0), L.ok, L.failed, k,
	       L.ok / (t1 - t0), t1 - t0, (t2 - t1) * 1000,
	       O.n_pids ? (c1 - c0) / (t1 - t0) : 0, (s1 - s0) / (t1 - t0),
	       (b1 - b0) / (t1 - t0), (st1 - st0) / (t1 - t0));
}

/* ---- in-process controller (diagnostic) ----------------------------------- */

/*
 * The controller's store, API and HTTP server in this process, without its
 * cluster duties (no liveness marking) and without the per-poll "seen"
 * writes: what the distribution path itself costs.
 */
static struct store *ip_store;
static struct api ip_api;
static struct http_server *ip_srv;
static char ip_url[64];

static void start_inproc(void)
{
	struct store_embed_opts so = {.feed_changes = O.feed};
	bool gen;

	if (store_embed_open(O.inproc, &so, &ip_store))
		die("cannot open an embedded store in %s", O.inproc);
	if (api_init(&ip_api, ip_store, O.token, &gen))
		die("cannot start the API");
	ip_api.seen_every_ms = 1 << 30;
	if (http_start(&ip_api, "127.0.0.1:0", &ip_srv))
		die("cannot start the HTTP server");
	snprintf(ip_url, sizeof(ip_url), "http://127.0.0.1:%u",
		 http_port(ip_srv));
	O.urls[0] = ip_url;
}

static void stop_inproc(void)
{
	if (!ip_srv)
		return;
	http_stop(ip_srv);
	api_fini(&ip_api);
	store_close(ip_store);
}

/* ---- main ---------------------------------------------------------------- */

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s --url URL [--url URL...] --token ADMIN --agents N "
		"[--changes M]\n"
		"          [--ports-secs S] [--clients C] [--workers W] "
		"[--store NAME]\n"
		"          [--ctl-pid PID...] [--idle-secs S] [--batch-ms MS] "
		"[--out FILE]\n",
		prog);
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage(argv[0]);
		i++;
		if (!strcmp(a, "--url") && O.n_urls < MAX_URLS)
			O.urls[O.n_urls++] = v;
		else if (!strcmp(a, "--token"))
			O.token = v;
		else if (!strcmp(a, "--agents"))
			O.agents = atoi(v);
		else if (!strcmp(a, "--vpcs"))
			O.vpcs = atoi(v);
		else if (!strcmp(a, "--span"))
			O.span = atoi(v);
		else if (!strcmp(a, "--changes"))
			O.changes = atoi(v);
		else if (!strcmp(a, "--ports-secs"))
			O.ports_secs = atof(v);
		else if (!strcmp(a, "--idle-secs"))
			O.idle_secs = atof(v);
		else if (!strcmp(a, "--clients"))
			O.clients = atoi(v);
		else if (!strcmp(a, "--workers"))
			O.workers = atoi(v);
		else if (!strcmp(a, "--store"))
			O.store = v;
		else if (!strcmp(a, "--ctl-pid") && O.n_pids < MAX_PIDS)
			O.pids[O.n_pids++] = atoi(v);
		else if (!strcmp(a, "--out"))
			O.out = v;
		else if (!strcmp(a, "--inproc"))
			O.inproc = v;
		else if (!strcmp(a, "--batch-ms"))
			O.batch_ms = atoi(v);
		else if (!strcmp(a, "--feed"))
			O.feed = atoi(v);
		else
			usage(argv[0]);
	}
	if (O.inproc && !O.n_urls)
		O.urls[O.n_urls++] = "(in process)";
	if (!O.n_urls || !O.token || O.agents < 1 || O.clients < 1)
		usage(argv[0]);
	if (!O.vpcs)
		O.vpcs = 1;
	if (!O.span)
		O.span = O.agents;
	if (O.vpcs < 1 || O.span < 1 || O.span > O.agents ||
	    (long long)O.vpcs * O.span < O.agents)
		die("--vpcs %d --span %d: each VPC spans 1 .. %d nodes, and "
		    "together they must cover every node",
		    O.vpcs, O.span, O.agents);
	if (!O.changes)
		O.changes = O.agents >= 1000 && O.vpcs == 1 ? 100 : 300;
	if (!O.workers)
		O.workers = sysconf(_SC_NPROCESSORS_ONLN);
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	struct worker *w;
	json_object *out = json_object_new_object();
	double t0, t_sync;
	long threads = -1, rss = -1;

	parse_args(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	xvpc_log_set_level(getenv("BENCH_LOG") ? XVPC_LOG_INFO : XVPC_LOG_WARN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* Two sockets and an eventfd per agent, and the clients. */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	if (O.inproc)
		start_inproc();
	vpcs = calloc(O.vpcs, sizeof(*vpcs));
	sims = calloc(O.agents, sizeof(*sims));
	if (!vpcs || !sims)
		die("out of memory");
	hosts();
	t0 = now_s();
	setup();
	fprintf(stderr,
		"bench_control: %s, %d nodes and ports set up in %.1f s\n",
		O.store, O.agents, now_s() - t0);

	w = calloc(O.workers, sizeof(*w));
	if (!w)
		die("out of memory");
	for (int i = 0; i < O.workers; i++) {
		w[i].ep = epoll_create1(EPOLL_CLOEXEC);
		if (w[i].ep < 0)
			die("epoll_create1: %s", strerror(errno));
	}
	t0 = now_s();
	for (int i = 0; i < O.agents; i++) {
		struct epoll_event ev = {.events = EPOLLIN,
					 .data.ptr = &sims[i]};

		sim_init(&sims[i], i);
		if (epoll_ctl(w[i % O.workers].ep, EPOLL_CTL_ADD,
			      sims[i].src->ops->fd(sims[i].src), &ev))
			die("epoll_ctl: %s", strerror(errno));
	}
	for (int i = 0; i < O.workers; i++)
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]))
			die("pthread_create failed");
	json_object_object_add(out, "store", json_object_new_string(O.store));
	json_object_object_add(out, "agents", json_object_new_int(O.agents));
	json_object_object_add(out, "controllers",
			       json_object_new_int(O.n_urls));
	json_object_object_add(out, "vpcs", json_object_new_int(O.vpcs));
	json_object_object_add(out, "vpc_span_nodes",
			       json_object_new_int(O.span));
	if (!all_have(SYNC_TIMEOUT_S)) {
		char why[160];

		snprintf(why, sizeof(why),
			 "only %d of %d agents had their snapshot %d s after "
			 "they started",
			 synced, O.agents, SYNC_TIMEOUT_S);
		printf("%-9s %5d agents  %s\n", O.store, O.agents, why);
		json_object_object_add(out, "apply_p50_ms", NULL);
		json_object_object_add(out, "apply_p99_ms", NULL);
		json_object_object_add(out, "apply_max_ms", NULL);
		json_object_object_add(out, "ports_per_s", NULL);
		json_object_object_add(out, "failed",
				       json_object_new_string(why));
		json_object_object_add(out, "synced_agents",
				       json_object_new_int(synced));
		if (O.n_pids)
			json_object_object_add(
				out, "controller_threads",
				json_object_new_int64(
					proc_status(O.pids[0], "Threads")));
		goto done;
	}
	t_sync = now_s() - t0;
	printf("%-9s %5d agents  connected and synced in %.1f s\n", O.store,
	       O.agents, t_sync);
	if (O.n_pids) {
		threads = proc_status(O.pids[0], "Threads");
		rss = proc_status(O.pids[0], "VmRSS");
	}

	json_object_object_add(out, "sync_s", jd(t_sync));
	json_object_object_add(out, "controller_threads",
			       json_object_new_int64(threads));
	json_object_object_add(out, "controller_rss_kib",
			       json_object_new_int64(rss));
	if (O.idle_secs > 0)
		measure_idle(out);
	measure_apply(out);
	measure_ports(out);
	json_object_object_add(out, "reconcile_errors",
			       json_object_new_int64(rc_errors));

	{
		__u64 snaps = 0, updates = 0, errors = 0, failovers = 0;
		__u64 paced = 0;
		unsigned int hint = 0;

		for (int i = 0; i < O.agents; i++) {
			struct agent_ctrl_stats s;

			agent_source_ctrl_stats(sims[i].src, &s);
			snaps += s.snapshots;
			updates += s.updates;
			errors += s.errors;
			failovers += s.failovers;
			paced += s.paced;
			if (s.hint_ms > hint)
				hint = s.hint_ms;
		}
		json_object_object_add(out, "agent_batch_ms",
				       json_object_new_int64(O.batch_ms));
		json_object_object_add(out, "agent_paced_polls",
				       json_object_new_int64(paced));
		/* The longest interval a controller asked for (its answer
		 * rate, X-Xvpc-Batch-Ms), as last seen by an agent. */
		json_object_object_add(out, "agent_batch_hint_ms",
				       json_object_new_int64(hint));
		json_object_object_add(out, "agent_snapshots",
				       json_object_new_int64(snaps));
		json_object_object_add(out, "agent_updates",
				       json_object_new_int64(updates));
		json_object_object_add(out, "agent_errors",
				       json_object_new_int64(errors));
		json_object_object_add(out, "agent_failovers",
				       json_object_new_int64(failovers));
	}

done:
	__atomic_store_n(&workers_stop, true, __ATOMIC_RELEASE);
	for (int i = 0; i < O.workers; i++) {
		pthread_join(w[i].th, NULL);
		close(w[i].ep);
	}
	for (int i = 0; i < O.agents; i++)
		sim_fini(&sims[i]);
	stop_inproc();
	if (O.out &&
	    json_object_to_file_ext(O.out, out, JSON_C_TO_STRING_PRETTY))
		die("cannot write %s", O.out);
	json_object_put(out);
	free(sims);
	free(vpcs);
	free(w);
	return 0;
}
