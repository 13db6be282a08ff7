// SPDX-License-Identifier: GPL-2.0-only
/*
 * What one applied change costs the agent (issue 4): one simulated agent,
 * the agent's own controller source (agent/source_ctrl.c, fed the bodies of
 * long-poll answers through agent_source_ctrl_feed(): the path an answer
 * takes once its body has arrived) and its reconciler (agent/reconcile.c,
 * with its cache) writing in-memory maps (agent/mapbe.c).
 *
 * The node holds a snapshot of one push-mode VPC with N ports, one on each
 * of N nodes (port 0 on this node), as bench/bench_control.c sets up; then
 * answers of the controller's format (docs/state-format.md) arrive:
 *
 *   add, move, delete   one remote endpoint put (new), put (other node),
 *                       delete, one change per answer
 *   local_add           one endpoint put on this node (with its ifname)
 *   batch_add/_delete   B remote endpoint puts / deletes in one answer
 *   empty               an answer without changes (the revision moves)
 *
 * For each: microseconds per answer and per change, split into feed
 * (parse, apply, validate, hand over), fetch and reconcile (with freeing
 * the state it replaces). CPU time of this single thread.
 *
 * http: the same source with its thread and libcurl, long-polling a minimal
 * HTTP/1.1 server on loopback in this process that answers each poll with
 * the next single-endpoint answer at once, and this loop fetching and
 * reconciling; the process's CPU time minus the server thread's, per
 * answer. http_empty: the same with answers without changes (nothing to
 * hand over): what a long-poll round trip alone costs.
 *
 * usage: bench_agent_apply [--ports N] [--reps R] [--batch B]
 *                          [--http-polls P] [--only PART] [--log 0|1]
 *                          [--out FILE]
 * --log 1: log at level info as the agent does by default (the source's
 * lines and the reconciler's result after each run), to stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent/reconcile.h"
#include "agent/source_ctrl.h"
#include "log.h"
#include "netutil.h"

#define VPC  1
#define VNI  100
#define NODE "sim0000"

struct opts {
	int ports;
	int reps;
	int batch;
	int http_polls;
	const char *only; /* run only this part (and the snapshot first) */
	bool log;	  /* log at info as the agent does (to stderr) */
	const char *out;
};

static struct opts O = {
	.ports = 1000,
	.reps = 2000,
	.batch = 100,
	.http_polls = 2000,
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "bench_agent_apply: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static __u64 cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static double proc_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- answers --------------------------------------------------------- */

static __be32 node_ip(int i)
{
	return htonl(0xac100000u + 1 + i); /* 172.16.0.1 + i */
}

/* Port i of the snapshot: 10.0.0.0/12 + 16 + i; added ones: 10.16/12. */
static __be32 port_ip(int i)
{
	return htonl(0x0a000000u + 16 + i);
}

static __be32 new_ip(int i)
{
	return htonl(0x0a100000u + 16 + i);
}

struct sbuf {
	char *p;
	size_t n;
	FILE *f;
};

static void sb_open(struct sbuf *b)
{
	b->p = NULL;
	b->n = 0;
	b->f = open_memstream(&b->p, &b->n);
	if (!b->f)
		die("open_memstream: %s", strerror(errno));
}

static void sb_close(struct sbuf *b)
{
	if (fclose(b->f))
		die("building an answer: %s", strerror(errno));
}

static void ep_json(FILE *f, __be32 ip, __be32 node, const char *ifname)
{
	char a[XVPC_IP_STRLEN], n[XVPC_IP_STRLEN];
	__u32 h = ntohl(ip);

	fprintf(f,
		"{\"vpc\":%d,\"ip\":\"%s\",\"mac\":\"02:00:%02x:%02x:%02x:"
		"%02x\",\"node_ip\":\"%s\"",
		VPC, xvpc_fmt_ip(ip, a), h >> 24, (h >> 16) & 0xff,
		(h >> 8) & 0xff, h & 0xff, xvpc_fmt_ip(node, n));
	if (ifname)
		fprintf(f, ",\"ifname\":\"%s\"", ifname);
	fputc('}', f);
}

/* mark: as a long-poll answer ("snapshot": true), else the plain GET's. */
static void snapshot_json(struct sbuf *b, __u64 rev, bool mark)
{
	char gw[XVPC_IP_STRLEN];

	sb_open(b);
	fprintf(b->f,
		"{\"revision\":%llu,%s\"vpcs\":[{\"id\":%d,\"name\":"
		"\"all\"}],\"subnets\":[",
		(unsigned long long)rev, mark ? "\"snapshot\":true," : "", VPC);
	for (int s = 0; s < 3; s++)
		fprintf(b->f,
			"%s{\"vpc\":%d,\"cidr\":\"10.%d.0.0/12\",\"vni\":%d,"
			"\"gateway_ip\":\"10.%d.0.1\",\"gateway_mac\":"
			"\"02:78:76:70:63:%02x\"}",
			s ? "," : "", VPC, 16 * s, VNI + s, 16 * s, s + 1);
	fputs("],\"endpoints\":[", b->f);
	for (int i = 0; i < O.ports; i++) {
		char ifn[IF_NAMESIZE];

		snprintf(ifn, sizeof(ifn), "b%d", i);
		if (i)
			fputc(',', b->f);
		ep_json(b->f, port_ip(i), node_ip(i), i ? NULL : ifn);
	}
	fputs("],\"services\":[],\"nodes\":[", b->f);
	for (int i = 0; i < O.ports; i++)
		fprintf(b->f, "%s\"%s\"", i ? "," : "",
			xvpc_fmt_ip(node_ip(i), gw));
	fputs("]}", b->f);
	sb_close(b);
}

/* One change of an endpoint. */
struct chg {
	bool put;
	__be32 ip, node;
	const char *ifname;
};

static void changes_json(struct sbuf *b, __u64 *rev, const struct chg *c, int n)
{
	__u64 first = *rev + 1;

	sb_open(b);
	fprintf(b->f, "{\"revision\":%llu,\"snapshot\":false,\"changes\":[",
		(unsigned long long)(*rev + (n ? n : 1)));
	for (int i = 0; i < n; i++) {
		fprintf(b->f,
			"%s{\"revision\":%llu,\"op\":\"%s\",\"kind\":"
			"\"endpoint\",\"object\":",
			i ? "," : "", (unsigned long long)(first + i),
			c[i].put ? "put" : "delete");
		ep_json(b->f, c[i].ip, c[i].node, c[i].ifname);
		fputc('}', b->f);
	}
	fputs("]}", b->f);
	sb_close(b);
	*rev += n ? n : 1;
}

/* ---- the simulated agent --------------------------------------------- */

struct sim {
	struct agent_source *src;
	struct xvpc_rc_maps maps;
	struct xvpc_rc_env env;
	struct xvpc_rc_cache *cache;
	struct xvpc_state *st;
	__u64 rev;
};

struct split {
	__u64 feed, fetch, reconcile;
	__u64 answers, changes;
	__u64 quick_eps; /* endpoints written by the quick path */
};

/* Every local interface exists: "b12" (snapshot) and "l12" (local_add)
 * get distinct indexes. */
static int fake_ifindex(void *ctx, const char *ifname)
{
	(void)ctx;
	return (ifname[0] == 'b' ? 1000000 : 2000000) + atoi(ifname + 1);
}

static void sim_init(struct sim *s, bool fed)
{
	struct agent_ctrl_opts o = {
		.node_name = NODE,
		.node_ip = node_ip(0),
	};
	int err;

	memset(s, 0, sizeof(*s));
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
		die("out of memory for the maps");
	s->cache = xvpc_rc_cache_new();
	if (!s->cache)
		die("out of memory for the cache");
	s->env.node_ip = node_ip(0);
	s->env.ifindex = fake_ifindex;
	s->env.cache = s->cache;
	if (!fed)
		return;
	err = agent_source_ctrl_new_fed(&o, &s->src);
	if (err)
		die("cannot make the source: %s", strerror(-err));
}

static void sim_fini(struct sim *s)
{
	if (s->src)
		agent_source_destroy(s->src);
	xvpc_state_free(s->st);
	for (int i = 0; i < XVPC_RC__COUNT; i++)
		xvpc_mapbe_destroy(s->maps.m[i]);
	xvpc_rc_cache_free(s->cache);
}

/* The agent's main loop body after the source said it has a state. */
static void sim_reconcile(struct sim *s, struct xvpc_state *st,
			  struct xvpc_rc_result *res)
{
	int err = xvpc_reconcile(&s->maps, &s->env, st, res);

	if (O.log)
		xvpc_rc_log_result(res);
	if (err)
		die("reconcile of revision %llu failed: %s",
		    (unsigned long long)st->revision, strerror(-err));
	xvpc_state_free(s->st);
	s->st = st;
}

/* One answer through feed, fetch and reconcile, timed into sp. */
static void deliver(struct sim *s, const struct sbuf *b, int n_changes,
		    struct split *sp)
{
	char why[512];
	struct xvpc_rc_result res;
	struct xvpc_state *st = NULL;
	__u64 t0, t1, t2, t3;
	int err;

	t0 = cpu_ns();
	err = agent_source_ctrl_feed(s->src, b->p, b->n, why, sizeof(why));
	t1 = cpu_ns();
	if (err)
		die("answer refused: %s (%s)", why, strerror(-err));
	err = s->src->ops->fetch(s->src, false, &st);
	t2 = cpu_ns();
	if (err < 0)
		die("fetch: %s", strerror(-err));
	if (err == 1)
		sim_reconcile(s, st, &res);
	t3 = cpu_ns();
	sp->feed += t1 - t0;
	sp->fetch += t2 - t1;
	sp->reconcile += t3 - t2;
	sp->answers++;
	sp->changes += n_changes;
	if (err == 1)
		sp->quick_eps += res.maps[XVPC_RC_ENDPOINTS].added +
				 res.maps[XVPC_RC_ENDPOINTS].changed +
				 res.maps[XVPC_RC_ENDPOINTS].removed;
}

static json_object *jd(double x)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.2f", x);
	return json_object_new_double_s(x, buf);
}

static void report(json_object *out, const char *name, const struct split *sp)
{
	double per_a = (sp->feed + sp->fetch + sp->reconcile) / 1e3 /
		       (sp->answers ? sp->answers : 1);
	double per_c = sp->changes ? (sp->feed + sp->fetch + sp->reconcile) /
					     1e3 / sp->changes
				   : 0;
	json_object *o = json_object_new_object();
	double a = sp->answers ? sp->answers : 1;

	json_object_object_add(o, "answers",
			       json_object_new_int64(sp->answers));
	json_object_object_add(o, "changes",
			       json_object_new_int64(sp->changes));
	json_object_object_add(o, "us_per_answer", jd(per_a));
	json_object_object_add(o, "us_per_change",
			       sp->changes ? jd(per_c) : NULL);
	json_object_object_add(o, "feed_us_per_answer", jd(sp->feed / 1e3 / a));
	json_object_object_add(o, "fetch_us_per_answer",
			       jd(sp->fetch / 1e3 / a));
	json_object_object_add(o, "reconcile_us_per_answer",
			       jd(sp->reconcile / 1e3 / a));
	json_object_object_add(out, name, o);
	printf("%-13s %7llu answers %8.2f us/answer %8.2f us/change  (feed "
	       "%7.2f, fetch %6.2f, reconcile %7.2f)\n",
	       name, (unsigned long long)sp->answers, per_a, per_c,
	       sp->feed / 1e3 / a, sp->fetch / 1e3 / a,
	       sp->reconcile / 1e3 / a);
}

static bool wanted(const char *name)
{
	return !O.only || !strcmp(O.only, name);
}

static void run_single(struct sim *s, json_object *out, const char *name,
		       int reps, struct chg (*mk)(int i))
{
	struct split sp = {0};

	if (!wanted(name))
		return;
	for (int i = 0; i < reps; i++) {
		struct chg c = mk(i);
		struct sbuf b;

		changes_json(&b, &s->rev, &c, 1);
		deliver(s, &b, 1, &sp);
		free(b.p);
	}
	report(out, name, &sp);
}

static struct chg mk_add(int i)
{
	return (struct chg){true, new_ip(i), node_ip(1 + i % (O.ports - 1)),
			    NULL};
}

static struct chg mk_move(int i)
{
	int p = 1 + i % (O.ports - 1);

	return (struct chg){true, port_ip(p), node_ip(1 + (p + i) % O.ports),
			    NULL};
}

static struct chg mk_delete(int i)
{
	struct chg c = mk_add(i);

	c.put = false;
	return c;
}

static char local_names[64][IF_NAMESIZE];

static struct chg mk_local(int i)
{
	snprintf(local_names[i % 64], IF_NAMESIZE, "l%d", i);
	return (struct chg){true, htonl(0x0a200000u + 16 + i), node_ip(0),
			    local_names[i % 64]};
}

static void run_batch(struct sim *s, json_object *out, const char *name,
		      int reps, bool put)
{
	struct chg *c = calloc(O.batch, sizeof(*c));
	struct split sp = {0};

	if (!wanted(name)) {
		free(c);
		return;
	}
	if (!c)
		die("out of memory");
	for (int r = 0; r < reps; r++) {
		struct sbuf b;

		for (int i = 0; i < O.batch; i++) {
			c[i] = mk_add(1000000 + r * O.batch + i);
			c[i].put = put;
		}
		changes_json(&b, &s->rev, c, O.batch);
		deliver(s, &b, O.batch, &sp);
		free(b.p);
	}
	free(c);
	report(out, name, &sp);
}

static void run_empty(struct sim *s, json_object *out, int reps)
{
	struct split sp = {0};

	if (!wanted("empty"))
		return;
	for (int i = 0; i < reps; i++) {
		struct sbuf b;

		changes_json(&b, &s->rev, NULL, 0);
		deliver(s, &b, 0, &sp);
		free(b.p);
	}
	report(out, "empty", &sp);
}

static void bench_fed(json_object *out)
{
	struct split sp = {0};
	struct sim s;
	struct sbuf b;
	int breps = O.reps / O.batch * 4;

	sim_init(&s, true);
	/* The same snapshot again and again: the first fills the maps, the
	 * others change nothing (the reconciler's full path all the same). */
	for (int i = 0; i < 10; i++) {
		s.rev = 1000 + i;
		snapshot_json(&b, s.rev, true);
		deliver(&s, &b, 0, &sp);
		free(b.p);
	}
	report(out, "snapshot", &sp);
	run_single(&s, out, "add", O.reps, mk_add);
	run_single(&s, out, "move", O.reps, mk_move);
	run_single(&s, out, "delete", O.reps, mk_delete);
	run_single(&s, out, "local_add", O.reps / 10 > 64 ? 64 : O.reps / 10,
		   mk_local);
	run_batch(&s, out, "batch_add", breps ? breps : 1, true);
	run_batch(&s, out, "batch_delete", breps ? breps : 1, false);
	run_empty(&s, out, O.reps);
	sim_fini(&s);
}

/* ---- HTTP: the thread and libcurl against a canned server ------------- */

struct srv {
	int lfd;
	uint16_t port;
	pthread_t th;
	__u64 rev;  /* of the snapshot, then of each answer */
	int polls;  /* change answers to give */
	int served; /* by the server thread */
	bool empty; /* answers without changes */
	bool go;    /* __atomic: answer polls */
	double cpu_s;
	bool stop; /* __atomic */
};

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= w;
	}
	return 0;
}

/* Head and body in one send: two would wait for a delayed ACK. */
static int answer(int fd, const struct sbuf *b)
{
	char *msg;
	int n = asprintf(&msg,
			 "HTTP/1.1 200 OK\r\nContent-Type: application/json"
			 "\r\nContent-Length: %zu\r\n\r\n%s",
			 b->n, b->p);
	int err;

	if (n < 0)
		return -1;
	err = send_all(fd, msg, n);
	free(msg);
	return err;
}

/* Whether to answer a poll now: held before go (the snapshot is being
 * taken) and after the last answer (the source waits until stopped). */
static bool may_answer(struct srv *v)
{
	while (!__atomic_load_n(&v->go, __ATOMIC_ACQUIRE)) {
		if (__atomic_load_n(&v->stop, __ATOMIC_ACQUIRE))
			return false;
		usleep(1000);
	}
	return v->served < v->polls;
}

/* One connection: every request ends with an empty line (no bodies:
 * GETs only, the node is not registered by the source). */
static void serve_conn(struct srv *v, int fd)
{
	char req[8192];
	size_t have = 0;

	while (!__atomic_load_n(&v->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		char *end;
		ssize_t r;

		if (poll(&pf, 1, 100) <= 0)
			continue;
		r = recv(fd, req + have, sizeof(req) - 1 - have, 0);
		if (r <= 0)
			return;
		have += r;
		req[have] = '\0';
		while ((end = strstr(req, "\r\n\r\n"))) {
			size_t used = end + 4 - req;
			struct sbuf b;

			if (!strstr(req, "since=")) {
				snapshot_json(&b, v->rev, false);
			} else if (may_answer(v)) {
				struct chg c = mk_add(v->served++);

				changes_json(&b, &v->rev, &c, !v->empty);
			} else {
				break; /* held */
			}
			if (answer(fd, &b)) {
				free(b.p);
				return;
			}
			free(b.p);
			memmove(req, req + used, have - used + 1);
			have -= used;
		}
	}
}

static void *srv_main(void *arg)
{
	struct srv *v = arg;
	struct timespec ts;
	int one = 1;

	while (!__atomic_load_n(&v->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd pf = {.fd = v->lfd, .events = POLLIN};
		int fd;

		if (poll(&pf, 1, 100) <= 0)
			continue;
		fd = accept(v->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		serve_conn(v, fd);
		close(fd);
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	v->cpu_s = ts.tv_sec + ts.tv_nsec / 1e9;
	return NULL;
}

static void srv_start(struct srv *v)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	v->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (v->lfd < 0 || bind(v->lfd, (void *)&sa, sizeof(sa)) ||
	    listen(v->lfd, 8) || getsockname(v->lfd, (void *)&sa, &len))
		die("cannot listen on loopback: %s", strerror(errno));
	v->port = ntohs(sa.sin_port);
	if (pthread_create(&v->th, NULL, srv_main, v))
		die("pthread_create failed");
}

static void srv_stop(struct srv *v)
{
	__atomic_store_n(&v->stop, true, __ATOMIC_RELEASE);
	pthread_join(v->th, NULL);
	close(v->lfd);
}

/* Whether the source is done with the polls: the last state is in (or,
 * for empty answers, its revision). */
static bool http_done(struct sim *s, const struct srv *v, bool have_snapshot)
{
	struct agent_ctrl_stats cs;

	if (!v->empty)
		return have_snapshot &&
		       s->st->n_eps >= (size_t)O.ports + v->polls;
	agent_source_ctrl_stats(s->src, &cs);
	return have_snapshot && cs.revision >= 1000 + (__u64)v->polls;
}

static void bench_http(json_object *out, const char *name, bool empty)
{
	struct srv v = {.rev = 1000, .polls = O.http_polls, .empty = empty};
	char url[64];
	const char *urls[] = {url};
	struct agent_ctrl_opts o = {
		.urls = urls,
		.n_urls = 1,
		.node_name = NODE,
		.node_ip = node_ip(0),
		.token = "xva_bench_agent_apply",
		.wait_s = 30,
		.no_register = true,
	};
	json_object *h = json_object_new_object();
	double c0 = 0, c1, t_end, us;
	struct timespec ts;
	struct sim s;
	int err;

	srv_start(&v);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", v.port);
	sim_init(&s, false);
	err = agent_source_ctrl_new(&o, &s.src);
	if (err)
		die("cannot start the source: %s", strerror(-err));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t_end = ts.tv_sec + 60;
	while (!http_done(&s, &v, c0)) {
		struct pollfd pf = {.fd = s.src->ops->fd(s.src),
				    .events = POLLIN};
		struct xvpc_rc_result res;
		struct xvpc_state *st;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (ts.tv_sec > t_end)
			die("the source did not get %d answers in 60 s",
			    v.polls);
		if (poll(&pf, 1, empty ? 5 : 100) <= 0)
			continue;
		if (s.src->ops->fetch(s.src, false, &st) != 1)
			continue;
		sim_reconcile(&s, st, &res);
		if (!c0) {
			/* Snapshot in: now the polls. */
			c0 = proc_cpu_s();
			__atomic_store_n(&v.go, true, __ATOMIC_RELEASE);
		}
	}
	c1 = proc_cpu_s();
	agent_source_destroy(s.src);
	s.src = NULL;
	srv_stop(&v);
	/* The server thread ran for the snapshot too: a small overcount of
	 * its share, subtracted whole. */
	us = ((c1 - c0) - v.cpu_s) * 1e6 / (v.polls ? v.polls : 1);
	json_object_object_add(h, "polls", json_object_new_int(v.polls));
	json_object_object_add(h, "us_per_answer", jd(us));
	json_object_object_add(h, "server_us_per_answer",
			       jd(v.cpu_s * 1e6 / (v.polls ? v.polls : 1)));
	json_object_object_add(out, name, h);
	printf("%-13s %7d answers %8.2f us/answer (%s; server %.2f us/answer "
	       "not counted)\n",
	       name, v.polls, us,
	       empty ? "thread and libcurl only"
		     : "thread, libcurl, feed, fetch, reconcile",
	       v.cpu_s * 1e6 / (v.polls ? v.polls : 1));
	sim_fini(&s);
}

/* ---- main ------------------------------------------------------------- */

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--ports N] [--reps R] [--batch B] "
		"[--http-polls P] [--only PART] [--log 0|1] [--out FILE]\n",
		prog);
	exit(2);
}

int main(int argc, char **argv)
{
	json_object *out = json_object_new_object();

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage(argv[0]);
		i++;
		if (!strcmp(a, "--ports"))
			O.ports = atoi(v);
		else if (!strcmp(a, "--reps"))
			O.reps = atoi(v);
		else if (!strcmp(a, "--batch"))
			O.batch = atoi(v);
		else if (!strcmp(a, "--http-polls"))
			O.http_polls = atoi(v);
		else if (!strcmp(a, "--only"))
			O.only = v;
		else if (!strcmp(a, "--log"))
			O.log = atoi(v);
		else if (!strcmp(a, "--out"))
			O.out = v;
		else
			usage(argv[0]);
	}
	if (O.ports < 2 || O.reps < 1 || O.batch < 1 || O.http_polls < 0)
		usage(argv[0]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	xvpc_log_set_level(getenv("BENCH_LOG") || O.log ? XVPC_LOG_INFO
							: XVPC_LOG_WARN);
	json_object_object_add(out, "ports", json_object_new_int(O.ports));
	json_object_object_add(out, "batch", json_object_new_int(O.batch));
	printf("one agent, one VPC of %d ports on %d nodes\n", O.ports,
	       O.ports);
	bench_fed(out);
	if (O.http_polls && wanted("http"))
		bench_http(out, "http", false);
	if (O.http_polls && wanted("http_empty"))
		bench_http(out, "http_empty", true);
	if (O.out &&
	    json_object_to_file_ext(O.out, out, JSON_C_TO_STRING_PRETTY))
		die("cannot write %s", O.out);
	json_object_put(out);
	return 0;
}
