// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel-reported ns per packet of the north-south load balancer's paths
 * (docs/loadbalancer.md, "North-south") through BPF_PROG_TEST_RUN, with the
 * method of bench_lb_datapath.c: the median of many repeat = 1 runs minus
 * the median of an empty program of the same type run the same way.
 *
 * Topology: selftests/fixture.h; public service 203.0.113.10:80/tcp with
 * 10 backends of VPC 1, the measured flow's backend a2 on the peer node
 * (so the LB node encapsulates), b1 local for the backend's-node paths.
 *   pass_off     SSH to the node, no public service (underlay tc)
 *   pass_on      the same with public services: the cost for unrelated
 *                underlay traffic of being an LB node
 *   syn          LB node: new flow (service, Maglev, conntrack write),
 *                DNAT, encapsulation
 *   established  LB node: conntrack hit, DNAT, encapsulation
 *   xdp_pass_on, xdp_established: the same in XDP
 *   decap        backend's node: plain VXLAN from a2 to b1 (for comparison)
 *   decap_ns     backend's node: F_NS VXLAN to b1, reverse entry refreshed
 *   reply        backend's reply: reverse entry, SNAT, out of the underlay
 *
 * The verdict of each path's last run is printed beside it (tc: 0 ok, 2
 * shot, 7 redirect; XDP: 2 pass, 4 redirect), so a path that took a wrong
 * turn shows.
 *
 * Usage: bench_lb_ns [--runs N]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "lb.h"
#include "log.h"

#include "../selftests/fixture.h"

#define VIP    "203.0.113.10"
#define CLIENT "198.51.100.7"
#define N_BE   10

static int empty_prog(enum bpf_prog_type type)
{
	struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};

	return bpf_prog_load(type, "xvpc_floor", "GPL", insns, 2, NULL);
}

static __u32 verdicts[16], n_verdicts; /* of each measured path's last run */

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* Median duration of @runs repeat = 1 runs; @reset (if any) is deleted
 * from conntrack before each run, outside the timed part. */
static int measure(int fd, const __u8 *pkt, size_t len, int ifindex, bool skb,
		   int runs, const struct xvpc_lb_ct_key *reset, double *ns)
{
	__u8 out[PKT_MAX + 128];
	struct __sk_buff ctx = {.ifindex = ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = len,
		    .data_out = out, .repeat = 1);
	int ct_fd = xvpc_dp_map_fd(dp, XVPC_M_LB_CT);
	__u32 *d = calloc(runs, sizeof(*d));
	int err = 0;

	if (!d)
		return -ENOMEM;
	if (skb) {
		o.ctx_in = &ctx;
		o.ctx_size_in = sizeof(ctx);
	}
	for (int i = 0; i < runs && !err; i++) {
		if (reset)
			bpf_map_delete_elem(ct_fd, reset);
		o.data_size_out = sizeof(out);
		err = bpf_prog_test_run_opts(fd, &o);
		d[i] = o.duration;
	}
	qsort(d, runs, sizeof(*d), cmp_u32);
	*ns = d[runs / 2];
	if (n_verdicts < 16)
		verdicts[n_verdicts++] = o.retval;
	free(d);
	return err;
}

/* A TCP ACK frame, optionally inside VXLAN from the peer node. */
static size_t tcp_frame(__u8 *buf, __u32 vx_flags, __u32 vni, const __u8 *smac,
			const __u8 *dmac, const char *src, const char *dst,
			__u16 sport, __u16 dport)
{
	struct pkt_inner in = {.smac = smac,
			       .dmac = dmac,
			       .src = src,
			       .dst = dst,
			       .proto = 6,
			       .payload = 20 + 18,
			       .sport = sport,
			       .dport = dport};
	struct pkt_outer o = {.on = vx_flags != 0,
			      .dmac = MAC_NODE,
			      .smac = MAC_PEER,
			      .src = PEER_NODE,
			      .dst = NODE,
			      .vx_flags = vx_flags,
			      .vni = vni};
	size_t len = pkt_build(buf, &o, &in), l4 = (vx_flags ? 50 : 0) + 34;

	buf[l4 + 12] = 0x50;
	buf[l4 + 13] = 0x10; /* ACK */
	return len;
}

static int set_public(bool on)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_LB_CONFIG);
	static __u32 saved;
	struct xvpc_lb_config cfg;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(fd, &zero, &cfg))
		return -errno;
	if (!on)
		saved = cfg.public_services;
	cfg.public_services = on ? saved : 0;
	return bpf_map_update_elem(fd, &zero, &cfg, 0) ? -errno : 0;
}

/* The first client port whose flow the table sends to @ip. */
static int find_sport(const struct xvpc_lb_backend_spec *be,
		      const struct xvpc_lb_svc_key *svc, __be32 ip, __u16 *out)
{
	struct xvpc_lb_backend *t = malloc(XVPC_MAGLEV_M_DEFAULT * sizeof(*t));
	struct xvpc_lb_ct_key k = {.src = pkt_ip(CLIENT),
				   .dst = svc->vip,
				   .dport = svc->port,
				   .proto = 6};
	struct xvpc_maglev_ctx *ctx = NULL;
	int err;

	err = !t ? -ENOMEM
		 : xvpc_maglev_ctx_new(XVPC_MAGLEV_M_DEFAULT, &ctx) ?:
		   xvpc_lb_build_table(ctx, be, N_BE, svc->port, t);
	*out = 0;
	for (__u32 p = 10000; !err && p < 65535 && !*out; p++) {
		k.sport = htons(p);
		if (t[xvpc_lb_flow_entry(&k, XVPC_MAGLEV_M_DEFAULT)].ip == ip)
			*out = p;
	}
	xvpc_maglev_ctx_free(ctx);
	free(t);
	return err ?: *out ? 0 : -ENOENT;
}

static int setup_ns(struct xvpc_lb_svc_key *svc, __u16 *sport)
{
	struct xvpc_lb_backend_spec be[N_BE];
	int err;

	*svc = (struct xvpc_lb_svc_key){.vpc_id = XVPC_LB_PUBLIC,
					.vip = pkt_ip(VIP),
					.port = htons(80),
					.proto = 6};
	be[0] = (struct xvpc_lb_backend_spec){pkt_ip("10.0.1.20"), htons(8080),
					      1};
	be[1] = (struct xvpc_lb_backend_spec){pkt_ip("10.0.2.10"), htons(8080),
					      1};
	for (int i = 2; i < N_BE; i++)
		be[i] = (struct xvpc_lb_backend_spec){htonl(0x0a000264 + i),
						      htons(8080), 1};
	err = sh("sysctl -qw net.ipv4.ip_forward=1 && "
		 "ip link set ul address 02:00:00:00:00:ff && "
		 "ip neigh replace " PEER_NODE " lladdr 02:00:00:00:00:fe "
		 "dev ul nud permanent")
		      ?: xvpc_lb_set_public_service(dp, svc, 1, be, N_BE, 0);
	return err ?: find_sport(be, svc, be[0].ip, sport);
}

int main(int argc, char **argv)
{
	double tc0, xdp0, pass_off, pass_on, xpass, syn, est, xest, dec, dns,
		reply;
	int runs = 100000, ul, xul, ep, tc_fd, xdp_fd, err;
	__u8 ssh[PKT_MAX], vip[PKT_MAX], vx[PKT_MAX], vxns[PKT_MAX],
		rep[PKT_MAX];
	size_t lssh, lvip, lvx, lvxns, lrep;
	struct xvpc_lb_svc_key svc;
	struct xvpc_lb_ct_key flow;
	__u16 sport;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
			runs = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--runs N]\n", argv[0]);
			return strcmp(argv[i], "--help") ? 2 : 0;
		}
	}
	if (runs < 1)
		runs = 1;
	xvpc_log_set_ident("bench_lb_ns");
	xvpc_log_hook_libs();
	err = setup() ?: setup_ns(&svc, &sport);
	if (err) {
		fprintf(stderr, "setup failed: %s\n", strerror(-err));
		return 1;
	}
	flow = (struct xvpc_lb_ct_key){.src = pkt_ip(CLIENT),
				       .dst = svc.vip,
				       .sport = htons(sport),
				       .dport = svc.port,
				       .proto = 6};
	tc_fd = empty_prog(BPF_PROG_TYPE_SCHED_CLS);
	xdp_fd = empty_prog(BPF_PROG_TYPE_XDP);
	if (tc_fd < 0 || xdp_fd < 0) {
		fprintf(stderr, "cannot load the floor programs: %s\n",
			strerror(errno));
		return 1;
	}
	ul = xvpc_dp_prog_fd(dp, XVPC_P_TC_DECAP);
	xul = xvpc_dp_prog_fd(dp, XVPC_P_XDP_DECAP);
	ep = xvpc_dp_prog_fd(dp, XVPC_P_FROM_EP);
	lssh = tcp_frame(ssh, 0, 0, MAC_PEER, MAC_NODE, CLIENT, NODE, sport,
			 22);
	lvip = tcp_frame(vip, 0, 0, MAC_PEER, MAC_NODE, CLIENT, VIP, sport, 80);
	lvx = tcp_frame(vx, 0x08000000, 102, MAC_GW, MAC_B1, "10.0.1.20",
			"10.0.2.10", 30000, 8080);
	lvxns = tcp_frame(vxns, 0x08000000 | XVPC_VXLAN_F_NS, 102, MAC_GW,
			  MAC_B1, CLIENT, "10.0.2.10", 30001, 8080);
	lrep = tcp_frame(rep, 0, 0, MAC_B1, MAC_GW, "10.0.2.10", CLIENT, 8080,
			 30001);
	err = measure(tc_fd, ssh, lssh, ifidx[P_UL], true, runs, NULL, &tc0) ?:
	      measure(xdp_fd, ssh, lssh, 0, false, runs, NULL, &xdp0) ?:
	      set_public(false) ?:
	      measure(ul, ssh, lssh, ifidx[P_UL], true, runs, NULL,
		      &pass_off) ?:
	      set_public(true) ?:
	      measure(ul, ssh, lssh, ifidx[P_UL], true, runs, NULL, &pass_on) ?:
	      measure(xul, ssh, lssh, 0, false, runs, NULL, &xpass) ?:
	      measure(ul, vip, lvip, ifidx[P_UL], true, runs, &flow, &syn) ?:
	      measure(ul, vip, lvip, ifidx[P_UL], true, runs, NULL, &est) ?:
	      measure(xul, vip, lvip, 0, false, runs, NULL, &xest) ?:
	      measure(ul, vx, lvx, ifidx[P_UL], true, runs, NULL, &dec) ?:
	      measure(ul, vxns, lvxns, ifidx[P_UL], true, runs, NULL, &dns) ?:
	      measure(ep, rep, lrep, ifidx[P_B1], true, runs, NULL, &reply);
	if (err) {
		fprintf(stderr, "measuring failed: %s\n", strerror(-err));
		return 1;
	}
	printf("ns per packet above an empty program of the same type "
	       "(median of %d runs; empty tc %.0f, empty XDP %.0f)\n",
	       runs, tc0, xdp0);
	/* verdicts[] in measuring order: the two floors first */
	printf("  path            ns  verdict\n");
	printf("  pass_off        %4.0f  %u\n", pass_off - tc0, verdicts[2]);
	printf("  pass_on         %4.0f  %u\n", pass_on - tc0, verdicts[3]);
	printf("  xdp_pass_on     %4.0f  %u\n", xpass - xdp0, verdicts[4]);
	printf("  syn             %4.0f  %u\n", syn - tc0, verdicts[5]);
	printf("  established     %4.0f  %u\n", est - tc0, verdicts[6]);
	printf("  xdp_established %4.0f  %u\n", xest - xdp0, verdicts[7]);
	printf("  decap           %4.0f  %u\n", dec - tc0, verdicts[8]);
	printf("  decap_ns        %4.0f  %u\n", dns - tc0, verdicts[9]);
	printf("  reply           %4.0f  %u\n", reply - tc0, verdicts[10]);
	xvpc_dp_close(dp);
	return 0;
}
