// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel-reported ns per packet of the load balancer's paths through
 * BPF_PROG_TEST_RUN, with the method of bench_dp_prog.c: every path is
 * timed as many repeat = 1 runs (a translated packet must not be fed to the
 * program again), the median taken, the cost of a repeat = 1 run of an
 * empty program of the same type taken off, and the floor (an empty XDP
 * program, repeat = N) added back:
 *   path = median(path, repeat 1) - median(empty tc, repeat 1) + floor
 * The repeat = 1 runs are interleaved: ROUNDS rounds, each timing every
 * path in turn, so that a noisy stretch of the machine falls on all paths
 * alike and the ratios hold even when the absolute figures move.
 *
 * Paths (client a1 of fixture.h, service 10.0.100.1:80/tcp with 10
 * backends, the flow's backend b1 local):
 *   syn          new flow: service lookup, Maglev table, two conntrack
 *                writes, DNAT, routed, delivered (its conntrack entry is
 *                deleted before each run, outside the timed part)
 *   established  conntrack hit, DNAT, routed, delivered
 *   reply        reply of b1: reverse entry, SNAT, routed, delivered
 *   route        the same frame sent to b1's own address: no translation,
 *                the path every packet takes anyway (LB on, no service hit)
 *   route_lb_off the same with no service on the node (no LB lookups):
 *                reported as the floor, the cheapest the datapath
 *                forwards this frame; the empty program is reported too
 * Also the user-space time to replace a service's table (build + new inner
 * map + swap) at M = 65537 with 100 backends: swap_ms.
 *
 * Usage: bench_lb_datapath [--json] [--runs N]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "lb.h"
#include "log.h"

#include "../selftests/fixture.h"

#define VIP	 "10.0.100.1"
#define N_BE	 10
#define N_SWAP	 100
#define SWAP_RUN 21
#define ROUNDS	 50 /* rounds of the interleaved measurement */

/* The paths timed, in the order of a round (syn leaves the conntrack
 * entries that established and reply find). */
enum { P_HARNESS, P_SYN, P_EST, P_REPLY, P_ROUTE, P_OFF, P_N };

static int empty_prog(enum bpf_prog_type type)
{
	struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};

	return bpf_prog_load(type, "xvpc_floor", "GPL", insns, 2, NULL);
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* services = 0 in the LB config turns the conntrack lookups off. */
static int lb_switch(bool on)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_LB_CONFIG);
	static __u32 saved;
	struct xvpc_lb_config cfg;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(fd, &zero, &cfg))
		return -errno;
	if (!on)
		saved = cfg.services;
	cfg.services = on ? saved : 0;
	return bpf_map_update_elem(fd, &zero, &cfg, 0) ? -errno : 0;
}

/* One timed path: a program, a frame and how to prepare each run. */
struct path {
	int fd;
	__u8 pkt[PKT_MAX];
	size_t len;
	int ifindex;
	const struct xvpc_lb_ct_key *reset; /* deleted before each run */
	bool lb_off;			    /* no services on the node */
	__u32 *d;			    /* durations, ns */
	int n;
};

/* @runs more repeat = 1 runs of @p, appended to its durations; @reset
 * (if any) is deleted before each run, outside the timed part. */
static int sample(struct path *p, int runs)
{
	__u8 out[PKT_MAX + 128];
	struct __sk_buff ctx = {.ifindex = p->ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->pkt,
		    .data_size_in = p->len, .data_out = out, .repeat = 1,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx));
	int ct_fd = xvpc_dp_map_fd(dp, XVPC_M_LB_CT);
	int err = p->lb_off ? lb_switch(false) : 0;

	for (int i = 0; i < runs && !err; i++) {
		if (p->reset)
			bpf_map_delete_elem(ct_fd, p->reset);
		o.data_size_out = sizeof(out);
		err = bpf_prog_test_run_opts(p->fd, &o);
		p->d[p->n++] = o.duration;
	}
	if (p->lb_off)
		lb_switch(true);
	return err;
}

static double median(struct path *p)
{
	qsort(p->d, p->n, sizeof(*p->d), cmp_u32);
	return p->d[p->n / 2];
}

/* Median of an XDP program's duration at repeat = @repeat (no rewrite). */
static int measure_repeat(int fd, const __u8 *pkt, size_t len, int repeat,
			  double *ns)
{
	__u32 d[21];
	int err = 0;

	for (int i = 0; i < 21 && !err; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt,
			    .data_size_in = len, .repeat = repeat);

		err = bpf_prog_test_run_opts(fd, &o);
		d[i] = o.duration;
	}
	qsort(d, 21, sizeof(*d), cmp_u32);
	*ns = d[10];
	return err;
}

/* A TCP frame a1 -> @dst:@dport (or b1's reply) with valid headers. */
static size_t tcp_frame(__u8 *buf, const __u8 *smac, const char *src,
			const char *dst, __u16 sport, __u16 dport)
{
	struct pkt_inner in = {.smac = smac,
			       .dmac = MAC_GW,
			       .src = src,
			       .dst = dst,
			       .proto = 6,
			       .payload = 20 + 18,
			       .sport = sport,
			       .dport = dport};
	size_t len = pkt_build(buf, NULL, &in);

	buf[14 + 20 + 12] = 0x50;
	buf[14 + 20 + 13] = 0x10; /* ACK */
	return len;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Median time to replace a table of 65537 entries for N_SWAP backends. */
static int measure_swap(double *ms)
{
	struct xvpc_lb_svc_key k = {.vpc_id = 1,
				    .vip = pkt_ip("10.0.100.9"),
				    .port = htons(80),
				    .proto = 6};
	struct xvpc_lb_backend_spec be[N_SWAP];
	double t[SWAP_RUN];
	int err = 0;

	for (int i = 0; i < N_SWAP; i++)
		be[i] = (struct xvpc_lb_backend_spec){htonl(0x0a030000 + i + 1),
						      htons(80), 1};
	for (int r = 0; r < SWAP_RUN && !err; r++) {
		double t0 = now_ms();

		/* Every other run without the last backend: a real change. */
		err = xvpc_lb_set_service(dp, &k, be, N_SWAP - (r & 1), 0);
		t[r] = now_ms() - t0;
	}
	qsort(t, SWAP_RUN, sizeof(*t), cmp_dbl);
	*ms = t[SWAP_RUN / 2];
	return err ?: xvpc_lb_delete_service(dp, &k);
}

int main(int argc, char **argv)
{
	struct xvpc_lb_svc_key svc = {
		.vpc_id = 1, .vip = pkt_ip(VIP), .port = htons(80), .proto = 6};
	struct xvpc_lb_backend_spec be[N_BE];
	struct xvpc_lb_ct_key syn_key = {.vpc_id = 1,
					 .src = pkt_ip("10.0.1.10"),
					 .dst = pkt_ip(VIP),
					 .dport = htons(80),
					 .proto = 6};
	double floor_n, floor_tc1 = 0, syn = 0, est = 0, reply = 0, route = 0,
			off = 0, swap_ms;
	int runs = 200000, xdp_fd, tc_fd, fd, err;
	struct path paths[P_N] = {0};
	__u8 pkt[PKT_MAX];
	bool json = false;
	__u16 sport = 0;
	size_t len;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
			runs = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--json] [--runs N]\n",
				argv[0]);
			return strcmp(argv[i], "--help") ? 2 : 0;
		}
	}
	if (runs < 1)
		runs = 1;
	xvpc_log_set_ident("bench_lb_datapath");
	xvpc_log_hook_libs();
	err = setup();
	if (err) {
		fprintf(stderr, "setup failed: %s\n", strerror(-err));
		return 1;
	}
	/* b1 (local) and nine addresses of subnet B hosted nowhere: only b1's
	 * flows are measured, so the others need no endpoint. */
	be[0] = (struct xvpc_lb_backend_spec){pkt_ip("10.0.2.10"), htons(8080),
					      1};
	for (int i = 1; i < N_BE; i++)
		be[i] = (struct xvpc_lb_backend_spec){htonl(0x0a000264 + i),
						      htons(8080), 1};
	err = xvpc_lb_set_service(dp, &svc, be, N_BE, 0);
	if (err) {
		fprintf(stderr, "cannot set the service: %s\n", strerror(-err));
		return 1;
	}
	{
		struct xvpc_lb_backend *t =
			malloc(XVPC_MAGLEV_M_DEFAULT * sizeof(*t));
		struct xvpc_maglev_ctx *ctx = NULL;

		err = !t ? -ENOMEM
			 : xvpc_maglev_ctx_new(XVPC_MAGLEV_M_DEFAULT, &ctx) ?:
			   xvpc_lb_build_table(ctx, be, N_BE, svc.port, t);
		for (__u32 p = 10000; !err && p < 65535 && !sport; p++) {
			syn_key.sport = htons(p);
			if (t[xvpc_lb_flow_entry(&syn_key,
						 XVPC_MAGLEV_M_DEFAULT)]
				    .ip == be[0].ip)
				sport = p;
		}
		xvpc_maglev_ctx_free(ctx);
		free(t);
		if (err || !sport) {
			fprintf(stderr, "no flow maps to b1\n");
			return 1;
		}
	}
	xdp_fd = empty_prog(BPF_PROG_TYPE_XDP);
	tc_fd = empty_prog(BPF_PROG_TYPE_SCHED_CLS);
	if (xdp_fd < 0 || tc_fd < 0) {
		fprintf(stderr, "cannot load the floor programs: %s\n",
			strerror(errno));
		return 1;
	}
	fd = xvpc_dp_prog_fd(dp, XVPC_P_FROM_EP);
	len = tcp_frame(pkt, MAC_A1, "10.0.1.10", VIP, sport, 80);
	err = measure_repeat(xdp_fd, pkt, len, 1000000, &floor_n);
	for (int i = 0; i < P_N; i++) {
		struct path *q = &paths[i];

		q->fd = i == P_HARNESS ? tc_fd : fd;
		q->ifindex = ifidx[i == P_REPLY ? P_B1 : P_A1];
		q->reset = i == P_SYN ? &syn_key : NULL;
		q->lb_off = i == P_OFF;
		if (i == P_REPLY)
			q->len = tcp_frame(q->pkt, MAC_B1, "10.0.2.10",
					   "10.0.1.10", 8080, sport);
		else if (i == P_ROUTE || i == P_OFF)
			q->len = tcp_frame(q->pkt, MAC_A1, "10.0.1.10",
					   "10.0.2.10", sport, 8080);
		else
			q->len = tcp_frame(q->pkt, MAC_A1, "10.0.1.10", VIP,
					   sport, 80);
		q->d = calloc(runs, sizeof(*q->d));
		if (!q->d)
			err = -ENOMEM;
	}
	/* Interleaved: every round times each path in turn, so that a noisy
	 * stretch of the machine falls on all of them alike. */
	for (int r = 0; r < ROUNDS && !err; r++)
		for (int i = 0; i < P_N && !err; i++)
			err = sample(&paths[i],
				     runs / ROUNDS + (r < runs % ROUNDS));
	if (!err) {
		floor_tc1 = median(&paths[P_HARNESS]);
		syn = median(&paths[P_SYN]);
		est = median(&paths[P_EST]);
		reply = median(&paths[P_REPLY]);
		route = median(&paths[P_ROUTE]);
		off = median(&paths[P_OFF]);
	}
	for (int i = 0; i < P_N; i++)
		free(paths[i].d);
	if (!err)
		err = measure_swap(&swap_ms);
	if (err) {
		fprintf(stderr, "measurement failed: %s\n", strerror(-err));
		return 1;
	}
	syn += floor_n - floor_tc1;
	est += floor_n - floor_tc1;
	reply += floor_n - floor_tc1;
	route += floor_n - floor_tc1;
	off += floor_n - floor_tc1;
	if (json) {
		printf("{\"floor\": %.1f, \"syn\": %.1f, \"established\": "
		       "%.1f, "
		       "\"reply\": %.1f, \"route\": %.1f, "
		       "\"route_lb_off\": %.1f, \"empty_program\": %.1f, "
		       "\"harness_tc_repeat1\": %.1f, "
		       "\"established_over_floor\": %.2f, "
		       "\"syn_over_floor\": %.2f, "
		       "\"established_over_route\": %.2f, "
		       "\"established_over_empty_program\": %.2f, "
		       "\"table_swap_ms\": %.3f, \"runs\": %d}\n",
		       off, syn, est, reply, route, off, floor_n,
		       floor_tc1 - floor_n, est / off, syn / off, est / route,
		       est / floor_n, swap_ms, runs);
		return 0;
	}
	printf("%-14s %10s %10s %10s\n", "path", "ns/pkt", "x floor",
	       "x route");
	printf("%-14s %10.1f %10s %10s\n", "empty_program", floor_n, "", "");
	printf("%-14s %10.1f %10.2f %10.2f\n", "floor", off, 1.0, off / route);
	printf("%-14s %10.1f %10.2f %10.2f\n", "route", route, route / off,
	       1.0);
	printf("%-14s %10.1f %10.2f %10.2f\n", "syn", syn, syn / off,
	       syn / route);
	printf("%-14s %10.1f %10.2f %10.2f\n", "established", est, est / off,
	       est / route);
	printf("%-14s %10.1f %10.2f %10.2f\n", "reply", reply, reply / off,
	       reply / route);
	printf("(floor: the same frame through the same program on a node "
	       "without services; tc repeat=1 harness taken off: %.1f ns; %d "
	       "runs each; table swap at M=65537, N=%d: %.3f ms)\n",
	       floor_tc1 - floor_n, runs, N_SWAP, swap_ms);
	return 0;
}
