// SPDX-License-Identifier: GPL-2.0-only
/*
 * Agent benchmark (make bench-agent, through bench/agent.sh):
 *
 *  reconcile  time and peak RSS to reconcile 1k, 10k and 100k endpoints
 *             into real BPF maps (the datapath loaded with no_pin: private
 *             maps, nothing attached), cold (empty maps) and as a 1% diff
 *             (0.5% changed, 0.25% removed, 0.25% added; median of 5).
 *             Each size runs in its own process so that peak RSS is its own.
 *  events     learning events drained per second from a perf buffer by the
 *             agent's own draining thread (agent/events.c), fed by
 *             bpf/evgen.bpf.c through BPF_PROG_TEST_RUN on the other CPU,
 *             and the share the kernel lost; unpaced, and paced at 500k/s.
 *
 * usage: bench_agent [--machine JSON] [--out FILE] [--sizes N,N,...]
 *                    [--events-secs S]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "agent/events.h"
#include "agent/reconcile.h"
#include "datapath.h"
#include "evgen.skel.h"
#include "log.h"
#include "state.h"

#define DIFF_RUNS 5

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Doubles printed readably: 3 decimals, or 6 significant digits below 1. */
static struct json_object *jd(double x)
{
	char buf[64];

	snprintf(buf, sizeof(buf), x >= 1 || x == 0 ? "%.3f" : "%.6g", x);
	return json_object_new_double_s(x, buf);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* ---- reconcile ---- */

/* n endpoints in VPC 1, 250 per /24 subnet of 10.0.0.0/8, on 8 remote
 * nodes. variant != 0 applies the 1% diff. */
static struct xvpc_state *make_state(int n, int variant)
{
	struct xvpc_state *st = xvpc_state_new();
	struct xvpc_state_vpc v = {.id = 1};
	int nsub = (n + 249) / 250, i;
	int step = 100; /* 1%: every 100th endpoint is touched */
	char err[XVPC_STATE_ERR_LEN];

	if (!st || xvpc_state_add_vpc(st, &v))
		return NULL;
	for (i = 0; i < nsub; i++) {
		struct xvpc_state_subnet s = {
			.vpc = 1,
			.net = htonl(0x0a000000 | i << 8),
			.plen = 24,
			.vni = 1000 + i,
			.gw_ip = htonl(0x0a000001 | i << 8),
			.gw_mac = {2, 0x78, 0, 0, i >> 8, i},
		};
		if (xvpc_state_add_subnet(st, &s))
			return NULL;
	}
	for (i = 0; i < n; i++) {
		int sub = i / 250, host = 2 + i % 250;
		struct xvpc_state_ep e = {
			.vpc = 1,
			.ip = htonl(0x0a000000 | sub << 8 | host),
			.mac = {2, 0, i >> 24, i >> 16, i >> 8, i},
			.node_ip = htonl(0xc0a86401 + i % 8),
		};

		if (variant && i % step == 0) {
			switch ((i / step) % 4) {
			case 0: /* changed: moved to another node */
			case 1:
				e.node_ip = htonl(0xc0a86401 + (i + 1) % 8);
				break;
			case 2: /* removed */
				continue;
			case 3: /* added: a new address instead */
				e.ip = htonl(0x0b000000 | i);
				break;
			}
		}
		if (xvpc_state_add_ep(st, &e))
			return NULL;
	}
	{
		/* Home of the added endpoints; in both states so that only
		 * endpoints differ. */
		struct xvpc_state_subnet s = {
			.vpc = 1,
			.net = htonl(0x0b000000),
			.plen = 8,
			.vni = 999,
			.gw_ip = htonl(0x0b000001),
			.gw_mac = {2, 0x78, 1, 0, 0, 1},
		};
		if (xvpc_state_add_subnet(st, &s))
			return NULL;
	}
	if (xvpc_state_validate(st, 0, err, sizeof(err))) {
		fprintf(stderr, "bench state invalid: %s\n", err);
		return NULL;
	}
	return st;
}

struct rc_result {
	double cold_ms, diff_ms, noop_ms, reread_ms;
	__u64 diff_entries;
	int err;
};

static int run_reconcile(int n, struct rc_result *r)
{
	static const enum xvpc_map_id ids[XVPC_RC__COUNT] = {
		[XVPC_RC_VNIS] = XVPC_M_VNIS,
		[XVPC_RC_SUBNETS] = XVPC_M_SUBNETS,
		[XVPC_RC_ENDPOINTS] = XVPC_M_ENDPOINTS,
		[XVPC_RC_IFACES] = XVPC_M_IFACES,
	};
	struct xvpc_dp_opts opts = {.no_pin = true};
	struct xvpc_state *a = make_state(n, 0), *b = make_state(n, 1);
	struct xvpc_rc_env env = {.node_ip = htonl(0xc0a864fe)};
	double diffs[DIFF_RUNS * 2];
	struct xvpc_rc_maps maps = {0};
	struct xvpc_rc_result res;
	struct xvpc_dp *dp = NULL;
	int err, i;

	memset(r, 0, sizeof(*r));
	if (!a || !b)
		return -ENOMEM;
	env.cache = xvpc_rc_cache_new();
	if (!env.cache)
		return -ENOMEM;
	err = xvpc_dp_open(&opts, &dp);
	if (err) {
		fprintf(stderr, "bench: cannot load the datapath: %s\n",
			strerror(-err));
		goto out;
	}
	for (i = 0; i < XVPC_RC__COUNT; i++) {
		err = xvpc_mapbe_bpf_new(xvpc_dp_map_fd(dp, ids[i]),
					 xvpc_dp_map_name(ids[i]), &maps.m[i]);
		if (err)
			goto out;
	}
	err = xvpc_reconcile(&maps, &env, a, &res);
	if (err)
		goto out;
	r->cold_ms = res.duration_ns / 1e6;
	if (res.maps[XVPC_RC_ENDPOINTS].added != (__u64)n) {
		fprintf(stderr, "bench: cold reconcile added %llu of %d\n",
			(unsigned long long)res.maps[XVPC_RC_ENDPOINTS].added,
			n);
		err = -EIO;
		goto out;
	}
	err = xvpc_reconcile(&maps, &env, a, &res);
	if (err)
		goto out;
	r->noop_ms = res.duration_ns / 1e6;
	/* A -> B and B -> A are both 1% diffs. */
	for (i = 0; i < DIFF_RUNS * 2; i++) {
		err = xvpc_reconcile(&maps, &env, i % 2 ? a : b, &res);
		if (err)
			goto out;
		diffs[i] = res.duration_ns / 1e6;
		r->diff_entries = res.maps[XVPC_RC_ENDPOINTS].added +
				  res.maps[XVPC_RC_ENDPOINTS].changed +
				  res.maps[XVPC_RC_ENDPOINTS].removed;
	}
	qsort(diffs, DIFF_RUNS * 2, sizeof(double), cmp_double);
	r->diff_ms = diffs[DIFF_RUNS];
	/* The same diff when the maps are read back first (start-up
	 * adoption, periodic drift repair). */
	for (i = 0; i < DIFF_RUNS * 2; i++) {
		xvpc_rc_cache_invalidate(env.cache);
		err = xvpc_reconcile(&maps, &env, i % 2 ? a : b, &res);
		if (err)
			goto out;
		diffs[i] = res.duration_ns / 1e6;
	}
	qsort(diffs, DIFF_RUNS * 2, sizeof(double), cmp_double);
	r->reread_ms = diffs[DIFF_RUNS];
out:
	for (i = 0; i < XVPC_RC__COUNT; i++)
		xvpc_mapbe_destroy(maps.m[i]);
	if (dp)
		xvpc_dp_close(dp);
	xvpc_rc_cache_free(env.cache);
	xvpc_state_free(a);
	xvpc_state_free(b);
	r->err = err;
	return err;
}

/* Runs one size in a child process; peak RSS from wait4(). */
static int reconcile_child(int n, struct rc_result *r, double *rss_mb)
{
	struct rusage ru;
	int pfd[2], status;
	pid_t pid;

	if (pipe(pfd))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		close(pfd[0]);
		run_reconcile(n, r);
		if (write(pfd[1], r, sizeof(*r)) != sizeof(*r))
			_exit(2);
		_exit(r->err ? 1 : 0);
	}
	close(pfd[1]);
	if (read(pfd[0], r, sizeof(*r)) != sizeof(*r))
		r->err = -EIO;
	close(pfd[0]);
	if (wait4(pid, &status, 0, &ru) < 0)
		return -errno;
	*rss_mb = ru.ru_maxrss / 1024.0;
	return r->err;
}

/* ---- events ---- */

struct gen_ctx {
	struct evgen_bpf *skel;
	double secs;
	double rate; /* events/s, 0: unpaced */
	__u64 runs;
	int err;
};

static void pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *generator(void *arg)
{
	struct gen_ctx *g = arg;
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	unsigned char pkt[64] = {0};
	int fd = bpf_program__fd(g->skel->progs.evgen);
	__u32 per_run = g->skel->data->n_events;
	double t0 = now_s(), t;

	pin_cpu(sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0);
	opts.data_in = pkt;
	opts.data_size_in = sizeof(pkt);
	opts.repeat = 1;
	while ((t = now_s()) - t0 < g->secs) {
		if (g->rate > 0 && g->runs * per_run > (t - t0) * g->rate) {
			/* Ahead of the pace: wait a little. */
			struct timespec ts = {0, 50000};

			nanosleep(&ts, NULL);
			continue;
		}
		if (bpf_prog_test_run_opts(fd, &opts)) {
			g->err = -errno;
			break;
		}
		g->runs++;
	}
	return NULL;
}

struct ev_result {
	__u64 generated, received, lost, bpf_failed;
	double secs, per_s, lost_ratio;
};

static int run_events(double secs, double rate, struct ev_result *r)
{
	struct agent_events_stats st;
	struct agent_events ev;
	struct gen_ctx g = {.secs = secs, .rate = rate};
	struct evgen_bpf *skel;
	pthread_t thr;
	double t0, t1;
	int err, i;

	memset(r, 0, sizeof(*r));
	skel = evgen_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "bench: cannot load evgen: %s\n",
			strerror(errno));
		return -errno;
	}
	skel->data->n_events = 256;
	g.skel = skel;
	agent_events_init(&ev, NULL, NULL);
	/* The draining thread inherits CPU 0; the generator takes CPU 1. */
	pin_cpu(0);
	err = agent_events_start(&ev, bpf_map__fd(skel->maps.evgen_events), 0);
	if (err)
		goto out;
	t0 = now_s();
	err = pthread_create(&thr, NULL, generator, &g);
	if (err) {
		err = -err;
		agent_events_stop(&ev);
		goto out;
	}
	pthread_join(thr, NULL);
	/* Let the drainer finish what is in the buffer (bounded). */
	for (i = 0; i < 500; i++) {
		agent_events_get_stats(&ev, &st);
		if (st.received + st.lost >= skel->bss->seq)
			break;
		usleep(2000);
	}
	t1 = now_s();
	agent_events_stop(&ev);
	agent_events_get_stats(&ev, &st);
	r->generated = skel->bss->seq;
	r->bpf_failed = skel->bss->failed;
	r->received = st.received;
	r->lost = st.lost;
	r->secs = t1 - t0;
	r->per_s = st.received / r->secs;
	r->lost_ratio = r->generated ? (double)r->lost / r->generated : 0;
	err = g.err;
out:
	evgen_bpf__destroy(skel);
	return err;
}

/* ---- main ---- */

static struct json_object *ev_json(const struct ev_result *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "generated",
			       json_object_new_int64(r->generated));
	json_object_object_add(o, "received",
			       json_object_new_int64(r->received));
	json_object_object_add(o, "lost", json_object_new_int64(r->lost));
	json_object_object_add(o, "seconds", jd(r->secs));
	json_object_object_add(o, "events_per_s", jd(r->per_s));
	json_object_object_add(o, "lost_ratio", jd(r->lost_ratio));
	return o;
}

int main(int argc, char **argv)
{
	const char *machine = "{}", *out = NULL, *sizes = "1000,10000,100000";
	struct json_object *top, *cold, *diff, *rss, *noop, *reread, *evo;
	static const double rates[] = {500e3, 1e6, 2e6, 4e6, 8e6};
	struct ev_result unpaced, paced, best;
	double ev_secs = 3;
	char *list, *tok, *save;
	int i, err, ret = 0;
	FILE *f;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--machine") && i + 1 < argc)
			machine = argv[++i];
		else if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out = argv[++i];
		else if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
			sizes = argv[++i];
		else if (!strcmp(argv[i], "--events-secs") && i + 1 < argc)
			ev_secs = atof(argv[++i]);
		else {
			fprintf(stderr,
				"usage: %s [--machine JSON] [--out FILE] "
				"[--sizes N,N,...] [--events-secs S]\n",
				argv[0]);
			return 2;
		}
	}
	xvpc_log_set_level(XVPC_LOG_WARN);
	xvpc_log_hook_libs();

	top = json_object_new_object();
	cold = json_object_new_object();
	diff = json_object_new_object();
	noop = json_object_new_object();
	rss = json_object_new_object();
	reread = json_object_new_object();
	json_object_object_add(top, "reconcile_cold_ms", cold);
	json_object_object_add(top, "reconcile_diff_ms", diff);
	json_object_object_add(top, "reconcile_noop_ms", noop);
	json_object_object_add(top, "reconcile_diff_reread_ms", reread);
	json_object_object_add(top, "peak_rss_mb", rss);

	printf("%-10s %10s %10s %10s %14s %8s %8s\n", "ENDPOINTS", "COLD_MS",
	       "DIFF1%_MS", "NOOP_MS", "DIFF_REREAD_MS", "DIFF_N", "RSS_MB");
	list = strdup(sizes);
	for (tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		struct rc_result r;
		double mb = 0;

		err = reconcile_child(atoi(tok), &r, &mb);
		if (err) {
			fprintf(stderr, "bench: reconcile %s failed: %s\n", tok,
				strerror(-err));
			ret = 1;
			continue;
		}
		printf("%-10s %10.2f %10.2f %10.2f %14.2f %8llu %8.1f\n", tok,
		       r.cold_ms, r.diff_ms, r.noop_ms, r.reread_ms,
		       (unsigned long long)r.diff_entries, mb);
		json_object_object_add(reread, tok, jd(r.reread_ms));
		json_object_object_add(cold, tok, jd(r.cold_ms));
		json_object_object_add(diff, tok, jd(r.diff_ms));
		json_object_object_add(noop, tok, jd(r.noop_ms));
		json_object_object_add(rss, tok, jd(mb));
	}
	free(list);

	printf("\n%-10s %12s %12s %10s %12s %10s\n", "EVENTS", "GENERATED",
	       "RECEIVED", "LOST", "PER_S", "LOST_RATIO");
	evo = json_object_new_object();
	json_object_object_add(top, "events", evo);
	err = run_events(ev_secs, 0, &unpaced);
	if (err) {
		fprintf(stderr, "bench: events failed: %s\n", strerror(-err));
		ret = 1;
	} else {
		printf("%-10s %12llu %12llu %10llu %12.0f %10.6f\n", "unpaced",
		       (unsigned long long)unpaced.generated,
		       (unsigned long long)unpaced.received,
		       (unsigned long long)unpaced.lost, unpaced.per_s,
		       unpaced.lost_ratio);
		json_object_object_add(evo, "unpaced", ev_json(&unpaced));
	}
	/* Paced: the highest offered rate drained with no loss. */
	best = (struct ev_result){0};
	for (i = 0; !err && i < (int)(sizeof(rates) / sizeof(*rates)); i++) {
		char name[32];

		err = run_events(ev_secs / 2, rates[i], &paced);
		if (err)
			break;
		snprintf(name, sizeof(name), "paced_%.0fk", rates[i] / 1000);
		printf("%-10s %12llu %12llu %10llu %12.0f %10.6f\n", name + 6,
		       (unsigned long long)paced.generated,
		       (unsigned long long)paced.received,
		       (unsigned long long)paced.lost, paced.per_s,
		       paced.lost_ratio);
		json_object_object_add(evo, name, ev_json(&paced));
		if (!paced.lost && paced.per_s > best.per_s)
			best = paced;
	}
	if (err) {
		fprintf(stderr, "bench: events failed: %s\n", strerror(-err));
		ret = 1;
	}
	json_object_object_add(top, "events_per_s", jd(best.per_s));
	json_object_object_add(top, "events_lost_ratio", jd(best.lost_ratio));
	json_object_object_add(
		top, "notes",
		json_object_new_string(
			"reconcile into real BPF maps (datapath loaded with "
			"no_pin); diff = 0.5% changed + 0.25% removed + 0.25% "
			"added, median of 10; events drained by agent/events.c "
			"on CPU 0 from bpf/evgen.bpf.c run via "
			"BPF_PROG_TEST_RUN on CPU 1, 256 events per run, perf "
			"buffer 256 pages per CPU"));
	json_object_object_add(top, "machine", json_tokener_parse(machine));
	if (out) {
		f = fopen(out, "w");
		if (!f) {
			fprintf(stderr, "bench: cannot write %s: %s\n", out,
				strerror(errno));
			ret = 1;
		} else {
			fprintf(f, "%s\n",
				json_object_to_json_string_ext(
					top, JSON_C_TO_STRING_PRETTY |
						     JSON_C_TO_STRING_SPACED));
			fclose(f);
		}
	}
	json_object_put(top);
	return ret;
}
