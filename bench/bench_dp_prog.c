// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel-reported ns per packet of each datapath path, through
 * BPF_PROG_TEST_RUN, beside an empty XDP program (the floor).
 *
 * With repeat = N the kernel runs the program again on the packet it already
 * rewrote, which measures an encapsulating or rewriting path wrongly (the
 * second run sees VXLAN, not the VM's frame). So every path is timed as many
 * repeat = 1 runs, each on a fresh copy of the frame, and the harness cost
 * of a repeat = 1 run, measured the same way on the floor program, is taken
 * off, for tc paths measured on an empty tc program, for XDP ones on the
 * empty XDP program:
 *   path = mean(path, repeat 1) - mean(empty same type, repeat 1)
 *          + floor (empty XDP, repeat N)
 *
 * Usage: bench_dp_prog [--json] [--runs N] [--only PATH]
 * (--only runs one path, for a profiler: perf record -e cpu-clock -a)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "log.h"

#include "../selftests/fixture.h"

struct path {
	const char *name;
	enum xvpc_prog_id prog;
	enum port in_port;
	struct pkt_outer outer;
	struct pkt_inner in;
};

static double path_ns[16];

static struct path paths[] = {
	{"encap",
	 XVPC_P_FROM_EP,
	 P_A1,
	 {},
	 {.smac = MAC_A1,
	  .dmac = MAC_A2,
	  .src = "10.0.1.10",
	  .dst = "10.0.1.20",
	  .proto = 17,
	  .payload = 18}},
	{"decap",
	 XVPC_P_XDP_DECAP,
	 P_UL,
	 {.on = true,
	  .dmac = MAC_NODE,
	  .smac = MAC_PEER,
	  .src = PEER_NODE,
	  .dst = NODE,
	  .vni = 101},
	 {.smac = MAC_A2,
	  .dmac = MAC_A1,
	  .src = "10.0.1.20",
	  .dst = "10.0.1.10",
	  .proto = 17,
	  .payload = 18}},
	{"decap_tc",
	 XVPC_P_TC_DECAP,
	 P_UL,
	 {.on = true,
	  .dmac = MAC_NODE,
	  .smac = MAC_PEER,
	  .src = PEER_NODE,
	  .dst = NODE,
	  .vni = 101},
	 {.smac = MAC_A2,
	  .dmac = MAC_A1,
	  .src = "10.0.1.20",
	  .dst = "10.0.1.10",
	  .proto = 17,
	  .payload = 18}},
	{"route",
	 XVPC_P_FROM_EP,
	 P_A1,
	 {},
	 {.smac = MAC_A1,
	  .dmac = MAC_GW,
	  .src = "10.0.1.10",
	  .dst = "10.0.2.10",
	  .proto = 17,
	  .payload = 18}},
	{"route_encap",
	 XVPC_P_FROM_EP,
	 P_A1,
	 {},
	 {.smac = MAC_A1,
	  .dmac = MAC_GW,
	  .src = "10.0.1.10",
	  .dst = "10.0.2.20",
	  .proto = 17,
	  .payload = 18}},
	{"arp",
	 XVPC_P_FROM_EP,
	 P_A1,
	 {},
	 {.smac = MAC_A1,
	  .dmac = MAC_BCAST,
	  .l3 = PKT_ARP,
	  .src = "10.0.1.10",
	  .dst = "10.0.1.1"}},
	/* Learning mode (docs/learning.md): see setup_learn(). */
	{"encap_learn",
	 XVPC_P_FROM_EP,
	 P_A1,
	 {},
	 {.smac = MAC_A1,
	  .dmac = MAC_A2,
	  .src = "10.0.1.10",
	  .dst = "10.0.1.50",
	  .proto = 17,
	  .payload = 18}},
	{"miss_gw",
	 XVPC_P_FROM_EP,
	 P_C1,
	 {},
	 {.smac = MAC_C1,
	  .dmac = MAC_C2,
	  .src = "10.0.1.10",
	  .dst = "10.0.1.99",
	  .proto = 17,
	  .payload = 18}},
};

/* encap_learn: 10.0.1.50 of VPC 1 is a learned entry (on the peer node);
 * miss_gw: VPC 2 is in learn mode with the peer node as its gateway, so
 * its unknown 10.0.1.99 goes there (one miss event per 100 ms). */
static int setup_learn(void)
{
	struct xvpc_ep_key k = {.vpc_id = 1, .ip = pkt_ip("10.0.1.50")};
	struct xvpc_learned l = {
		.ep = {.flags = XVPC_EP_LEARNED | XVPC_EP_RESOLVED,
		       .node_ip = pkt_ip(PEER_NODE),
		       .vni = 101},
	};

	memcpy(l.ep.mac, MAC_A2, 6);
	if (bpf_map_update_elem(xvpc_dp_map_fd(dp, XVPC_M_LEARNED), &k, &l, 0))
		return -errno;
	return set_learn_vpc(2, PEER_NODE, NULL);
}

/* An empty program of @type: XDP_PASS for XDP, TC_ACT_OK for tc (both 0
 * and 2 are fine: the verdict does not matter, only the cost). */
static int empty_prog(enum bpf_prog_type type)
{
	struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K,
		 .dst_reg = 0,
		 .imm = XDP_PASS},
		{.code = BPF_JMP | BPF_EXIT},
	};

	return bpf_prog_load(type, "xvpc_floor", "GPL", insns, 2, NULL);
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* Median kernel-reported duration per packet of @runs runs of @repeat
 * each: the median, because a run that an interrupt hits is not the cost
 * of the path. */
static int measure(int fd, const __u8 *pkt, size_t len, int ifindex, bool skb,
		   int repeat, int runs, double *ns)
{
	__u8 out[PKT_MAX + 128];
	struct __sk_buff ctx = {.ifindex = ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = len,
		    .data_out = out, .repeat = repeat);
	__u32 *d = calloc(runs, sizeof(*d));
	int err = 0;

	if (!d)
		return -ENOMEM;
	if (skb) {
		o.ctx_in = &ctx;
		o.ctx_size_in = sizeof(ctx);
	}
	for (int i = 0; i < runs && !err; i++) {
		o.data_size_out = sizeof(out);
		err = bpf_prog_test_run_opts(fd, &o);
		d[i] = o.duration;
	}
	qsort(d, runs, sizeof(*d), cmp_u32);
	*ns = d[runs / 2];
	free(d);
	return err;
}

int main(int argc, char **argv)
{
	double floor_n = 0, floor_1 = 0, tc_1 = 0, ns = 0;
	const char *only = NULL;
	bool json = false;
	int runs = 200000, fd, tc_fd, err;
	__u8 pkt[PKT_MAX];
	size_t len;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
			runs = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			only = argv[++i];
		} else {
			fprintf(stderr,
				"usage: %s [--json] [--runs N] [--only PATH]\n",
				argv[0]);
			return strcmp(argv[i], "--help") ? 2 : 0;
		}
	}
	xvpc_log_set_ident("bench_dp_prog");
	xvpc_log_hook_libs();
	err = setup() ?: setup_learn();
	if (err) {
		fprintf(stderr, "setup failed: %s\n", strerror(-err));
		return 1;
	}
	fd = empty_prog(BPF_PROG_TYPE_XDP);
	tc_fd = empty_prog(BPF_PROG_TYPE_SCHED_CLS);
	if (fd < 0 || tc_fd < 0) {
		fprintf(stderr, "cannot load the floor program: %s\n",
			strerror(errno));
		return 1;
	}
	len = pkt_build(pkt, &paths[0].outer, &paths[0].in);
	err = measure(fd, pkt, len, 0, false, 1000000, 21, &floor_n)
		      ?: measure(fd, pkt, len, 0, false, 1, runs, &floor_1)
		      ?: measure(tc_fd, pkt, len, ifidx[P_A1], true, 1, runs,
				 &tc_1);
	for (size_t i = 0; !err && i < sizeof(paths) / sizeof(*paths); i++) {
		struct path *p = &paths[i];

		if (only && strcmp(only, p->name))
			continue;
		len = pkt_build(pkt, &p->outer, &p->in);
		err = measure(xvpc_dp_prog_fd(dp, p->prog), pkt, len,
			      ifidx[p->in_port], p->prog != XVPC_P_XDP_DECAP, 1,
			      runs, &ns);
		path_ns[i] = ns -
			     (p->prog == XVPC_P_XDP_DECAP ? floor_1 : tc_1) +
			     floor_n;
	}
	if (err) {
		fprintf(stderr, "test run failed: %s\n", strerror(-err));
		return 1;
	}
	if (json) {
		printf("{\"floor\": %.1f, \"harness_xdp_repeat1\": %.1f, "
		       "\"harness_tc_repeat1\": %.1f",
		       floor_n, floor_1 - floor_n, tc_1 - floor_n);
		for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++)
			printf(", \"%s\": %.1f", paths[i].name, path_ns[i]);
		printf(", \"runs\": %d}\n", runs);
		return 0;
	}
	printf("%-12s %10s %10s\n", "path", "ns/pkt", "x floor");
	printf("%-12s %10.1f %10.2f\n", "floor", floor_n, 1.0);
	for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++)
		printf("%-12s %10.1f %10.2f\n", paths[i].name, path_ns[i],
		       path_ns[i] / floor_n);
	printf("(repeat=1 harness taken off: xdp %.1f ns, tc %.1f ns; %d runs "
	       "each)\n",
	       floor_1 - floor_n, tc_1 - floor_n, runs);
	return 0;
}
