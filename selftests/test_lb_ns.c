// SPDX-License-Identifier: GPL-2.0-only
/*
 * North-south load balancer through BPF_PROG_TEST_RUN: a table of steps run
 * in order (conntrack makes them stateful). Each step: {description, what
 * to change first, program, ingress port, input frame (plain or VXLAN from
 * the peer node, with its flags), verdict, counter, expected output frame
 * (and whether it is VXLAN-encapsulated to the peer with F_NS), receiving
 * endpoint, expected conntrack entry}. Underlay steps run through the tc
 * program, then the XDP one.
 *
 * This node is at once an LB node and a backend's node. Topology: fixture.h,
 * plus
 *   public web  203.0.113.10:80/tcp, backends of VPC 1:
 *                 b1 10.0.2.10:8080 (local), a2 10.0.1.20:8080 (node .2)
 *   public void 203.0.113.11:80/tcp, no backends
 *   public dns  203.0.113.10:53/udp -> b1 10.0.2.10:5353
 *   client 198.51.100.7, outside the overlay. Its source ports are picked
 *   at start so that each flow hashes to the backend the step names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "lb.h"
#include "log.h"
#include "netutil.h"
#include "pktbuild.h"

#include "fixture.h"

#define VIP    "203.0.113.10"
#define VOID   "203.0.113.11"
#define CLIENT "198.51.100.7"
#define TBL_M  251

#define SYN 0x02
#define ACK 0x10

static const __u8 MAC_ROUTER[6] = {2, 0, 0, 0, 0, 0x77};

enum which { FROM_EP, UL_BOTH }; /* UL_BOTH: underlay tc, then XDP */

/* Client ports: S_A2 hashes to a2, S_B1 to b1 in the first table. */
enum sport { S_NONE, S_A2, S_B1, S_DEC, S_SPOOF, S_UDP, S_UDP0, S__MAX };
static __u16 sports[S__MAX];

struct flow {
	const __u8 *smac, *dmac;
	const char *src, *dst;
	enum sport s;	/* the client's port, by name */
	__u16 port;	/* the other side's port */
	bool reply;	/* from the backend: ports swapped */
	bool udp;	/* else TCP */
	bool zero_csum; /* UDP without checksum */
	__u8 flags;	/* TCP */
	__u8 ttl;
};

enum ct_check { CT_ANY = 0, CT_FWD_TO, CT_REV_NS, CT_NONE };

struct step {
	const char *desc;
	void (*before)(void);
	enum which prog;
	enum port in_port;
	__u32 vx_flags; /* nonzero: VXLAN from the peer node, vni vx_vni */
	__u32 vx_vni;
	struct flow in;
	int truncate;
	int verdict;
	unsigned int stat;
	bool check_out;
	__u32 out_vni; /* nonzero: the output is VXLAN F_NS to the peer */
	struct flow out;
	enum port to_port;
	enum ct_check ct;
	const char *ct_ip; /* CT_FWD_TO: the backend; CT_REV_NS: the backend */
	__u16 ct_port;
};

static struct xvpc_lb_svc_key key_web, key_void, key_dns;
static struct xvpc_lb_backend_spec web_be[2];

/* ---- frames ---- */

static __u16 l4_csum(const __u8 *ip, const __u8 *l4, size_t len)
{
	__u8 buf[PKT_MAX + 12];

	memcpy(buf, ip + 12, 8);
	buf[8] = 0;
	buf[9] = ip[9];
	buf[10] = len >> 8;
	buf[11] = len & 0xff;
	memcpy(buf + 12, l4, len);
	return pkt_csum(buf, len + 12);
}

static size_t frame(__u8 *buf, __u32 vx_flags, __u32 vni, const struct flow *f)
{
	__u16 cport = sports[f->s];
	struct pkt_inner in = {
		.smac = f->smac,
		.dmac = f->dmac,
		.src = f->src,
		.dst = f->dst,
		.proto = f->udp ? 17 : 6,
		.ttl = f->ttl,
		.payload = 32,
		.sport = f->reply ? f->port : cport,
		.dport = f->reply ? cport : f->port,
	};
	struct pkt_outer o = {.on = vx_flags != 0,
			      .dmac = MAC_NODE,
			      .smac = MAC_PEER,
			      .src = PEER_NODE,
			      .dst = NODE,
			      .vx_flags = vx_flags,
			      .vni = vni};
	size_t len = pkt_build(buf, &o, &in);
	__u8 *ip = buf + (vx_flags ? 50 : 0) + 14, *l4 = ip + 20;
	__u16 c;

	if (f->udp) {
		l4[4] = 0;
		l4[5] = 32;
		l4[6] = l4[7] = 0;
	} else {
		l4[12] = 0x50;
		l4[13] = f->flags;
		l4[16] = l4[17] = 0;
	}
	c = l4_csum(ip, l4, 32);
	if (!f->zero_csum)
		memcpy(l4 + (f->udp ? 6 : 16), &c, 2);
	return len;
}

/* Outer headers of the LB node's output: IPv4/UDP 4789 from this node to
 * the peer, VXLAN with the I and NS flags and @vni. */
static bool outer_ok(const __u8 *o, __u32 vni, bool xdp)
{
	__be32 src = pkt_ip(NODE), dst = pkt_ip(PEER_NODE);
	__be32 fl = htonl(0x08000000 | XVPC_VXLAN_F_NS), v = htonl(vni << 8);

	/* tc: the kernel fills the MACs later (bpf_redirect_neigh); XDP:
	 * from the FIB and the neighbour table, in the frame. */
	if (xdp && (memcmp(o, MAC_PEER, 6) || memcmp(o + 6, MAC_NODE, 6)))
		return false;
	return o[14] == 0x45 && o[23] == 17 && !memcmp(o + 26, &src, 4) &&
	       !memcmp(o + 30, &dst, 4) && o[36] == XVPC_VXLAN_PORT >> 8 &&
	       o[37] == (XVPC_VXLAN_PORT & 0xff) && !memcmp(o + 42, &fl, 4) &&
	       !memcmp(o + 46, &v, 4) &&
	       pkt_csum(o + 14, 20) == 0; /* outer IPv4 checksum */
}

/* ---- conntrack ---- */

static bool ct_ok(const struct step *s)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_LB_CT);
	struct xvpc_lb_ct_key k = {.proto = s->in.udp ? 17 : 6};
	struct xvpc_lb_ct v;
	int err;

	if (s->ct == CT_ANY)
		return true;
	if (s->ct == CT_REV_NS) {
		k.vpc_id = 1;
		k.src = pkt_ip(s->ct_ip);
		k.dst = pkt_ip(CLIENT);
		k.sport = htons(s->ct_port);
		k.dport = htons(sports[s->in.s]);
		err = bpf_map_lookup_elem(fd, &k, &v);
		return !err && v.dir == XVPC_LB_CT_REV &&
		       (v.flags & XVPC_LB_CT_F_NS) && v.nat.ip == pkt_ip(VIP) &&
		       v.nat.port == htons(80);
	}
	k.vpc_id = XVPC_LB_PUBLIC;
	k.src = pkt_ip(s->in.src);
	k.dst = pkt_ip(s->in.dst);
	k.sport = htons(sports[s->in.s]);
	k.dport = htons(s->in.port);
	err = bpf_map_lookup_elem(fd, &k, &v);
	if (s->ct == CT_NONE)
		return err != 0;
	return !err && v.dir == XVPC_LB_CT_FWD && v.nat.ip == pkt_ip(s->ct_ip);
}

static void forget_flow(const struct step *s)
{
	struct xvpc_lb_ct_key k = {
		.vpc_id = XVPC_LB_PUBLIC,
		.src = pkt_ip(s->in.src),
		.dst = pkt_ip(s->in.dst),
		.sport = htons(sports[s->in.s]),
		.dport = htons(s->in.port),
		.proto = s->in.udp ? 17 : 6,
	};

	bpf_map_delete_elem(xvpc_dp_map_fd(dp, XVPC_M_LB_CT), &k);
}

/* ---- state changes between steps ---- */

static void only_b1(void)
{
	if (xvpc_lb_set_public_service(dp, &key_web, 1, web_be, 1, TBL_M))
		fprintf(stderr, "  cannot replace the service\n");
}

static void not_member(void)
{
	__be32 peer = pkt_ip(PEER_NODE);

	bpf_map_delete_elem(xvpc_dp_map_fd(dp, XVPC_M_NODES), &peer);
}

/* ---- the table ---- */

#define TO_VIP(S, FL)                                                \
	{                                                            \
		.smac = MAC_ROUTER, .dmac = MAC_NODE, .src = CLIENT, \
		.dst = VIP, .s = S, .port = 80, .flags = FL          \
	}
#define TO_BE(MAC, IP, S, FL, TTL)                                             \
	{                                                                      \
		.smac = MAC_GW, .dmac = MAC, .src = CLIENT, .dst = IP, .s = S, \
		.port = 8080, .flags = FL, .ttl = TTL                          \
	}
#define REPLY(SRC, PORT, S, TTL)                                           \
	{                                                                  \
		.smac = MAC_B1, .dmac = MAC_GW, .src = SRC, .dst = CLIENT, \
		.s = S, .port = PORT, .reply = true, .flags = SYN | ACK,   \
		.ttl = TTL                                                 \
	}
#define NS (0x08000000 | XVPC_VXLAN_F_NS)

static const struct step steps[] = {
	{"public VIP, SYN hashing to a2: DNAT, VXLAN F_NS to its node, client "
	 "source kept",
	 NULL, UL_BOTH, P_UL, 0, 0, TO_VIP(S_A2, SYN), 0, TC_ACT_REDIRECT,
	 XVPC_STAT_LB_NEW, true, 101, TO_BE(MAC_A2, "10.0.1.20", S_A2, SYN, 63),
	 P_NONE, CT_FWD_TO, "10.0.1.20", 0},
	{"public VIP, SYN hashing to local b1: DNAT, delivered, reverse entry",
	 NULL, UL_BOTH, P_UL, 0, 0, TO_VIP(S_B1, SYN), 0, TC_ACT_REDIRECT,
	 XVPC_STAT_LB_NEW, true, 0, TO_BE(MAC_B1, "10.0.2.10", S_B1, SYN, 63),
	 P_B1, CT_FWD_TO, "10.0.2.10", 0},
	{"second packet after a2 left the table: conntrack keeps it on a2",
	 only_b1, UL_BOTH, P_UL, 0, 0, TO_VIP(S_A2, ACK), 0, TC_ACT_REDIRECT,
	 XVPC_STAT_LB_EST, true, 101, TO_BE(MAC_A2, "10.0.1.20", S_A2, ACK, 63),
	 P_NONE, CT_FWD_TO, "10.0.1.20", 0},
	{"backend's node: F_NS VXLAN to local b1 delivered, reverse entry "
	 "written",
	 NULL, UL_BOTH, P_UL, NS, 102,
	 TO_BE(MAC_B1, "10.0.2.10", S_DEC, SYN, 63), 0, TC_ACT_REDIRECT,
	 XVPC_STAT_DECAP, true, 0, TO_BE(MAC_B1, "10.0.2.10", S_DEC, SYN, 63),
	 P_B1, CT_REV_NS, "10.0.2.10", 8080},
	{"backend's reply: source back to VIP:80, out of the underlay as plain "
	 "IPv4",
	 NULL, FROM_EP, P_B1, 0, 0, REPLY("10.0.2.10", 8080, S_DEC, 0), 0,
	 TC_ACT_REDIRECT, XVPC_STAT_LB_REPLY, true, 0,
	 REPLY(VIP, 80, S_DEC, 63), P_NONE, CT_ANY, NULL, 0},
	{"reply of a local backend balanced here goes out the same way", NULL,
	 FROM_EP, P_B1, 0, 0, REPLY("10.0.2.10", 8080, S_B1, 0), 0,
	 TC_ACT_REDIRECT, XVPC_STAT_LB_REPLY, true, 0, REPLY(VIP, 80, S_B1, 63),
	 P_NONE, CT_ANY, NULL, 0},
	{"F_NS VXLAN to an endpoint that is no public backend: dropped",
	 NULL,
	 UL_BOTH,
	 P_UL,
	 NS,
	 101,
	 TO_BE(MAC_A3, "10.0.1.40", S_SPOOF, SYN, 63),
	 0,
	 TC_ACT_SHOT,
	 XVPC_DROP_INNER_SPOOF,
	 false,
	 0,
	 {},
	 P_NONE,
	 CT_ANY,
	 NULL,
	 0},
	{"F_NS VXLAN with the inner TCP header cut short: dropped",
	 NULL,
	 UL_BOTH,
	 P_UL,
	 NS,
	 102,
	 TO_BE(MAC_B1, "10.0.2.10", S_SPOOF, SYN, 63),
	 50 + 14 + 20 + 10,
	 TC_ACT_SHOT,
	 XVPC_DROP_MALFORMED,
	 false,
	 0,
	 {},
	 P_NONE,
	 CT_ANY,
	 NULL,
	 0},
	{"F_NS VXLAN with the VNI's reserved byte set: dropped",
	 NULL,
	 UL_BOTH,
	 P_UL,
	 NS,
	 102,
	 TO_BE(MAC_B1, "10.0.2.10", S_DEC, ACK, 63),
	 -1,
	 TC_ACT_SHOT,
	 XVPC_DROP_VXLAN_FLAGS,
	 false,
	 0,
	 {},
	 P_NONE,
	 CT_ANY,
	 NULL,
	 0},
	{"unrelated underlay traffic (SSH to the node) passes untouched",
	 NULL,
	 UL_BOTH,
	 P_UL,
	 0,
	 0,
	 {.smac = MAC_ROUTER,
	  .dmac = MAC_NODE,
	  .src = CLIENT,
	  .dst = NODE,
	  .s = S_A2,
	  .port = 22,
	  .flags = SYN},
	 0,
	 TC_ACT_OK,
	 XVPC_STAT_PASS,
	 true,
	 0,
	 {.smac = MAC_ROUTER,
	  .dmac = MAC_NODE,
	  .src = CLIENT,
	  .dst = NODE,
	  .s = S_A2,
	  .port = 22,
	  .flags = SYN},
	 P_NONE,
	 CT_ANY,
	 NULL,
	 0},
	{"public VIP in a frame for another node's MAC (flooded): passes",
	 NULL,
	 UL_BOTH,
	 P_UL,
	 0,
	 0,
	 {.smac = MAC_ROUTER,
	  .dmac = MAC_PEER,
	  .src = CLIENT,
	  .dst = VIP,
	  .s = S_A2,
	  .port = 80,
	  .flags = ACK},
	 0,
	 TC_ACT_OK,
	 XVPC_STAT_PASS,
	 false,
	 0,
	 {},
	 P_NONE,
	 CT_ANY,
	 NULL,
	 0},
	{"another port of the public VIP passes to the kernel",
	 NULL,
	 UL_BOTH,
	 P_UL,
	 0,
	 0,
	 {.smac = MAC_ROUTER,
	  .dmac = MAC_NODE,
	  .src = CLIENT,
	  .dst = VIP,
	  .s = S_A2,
	  .port = 81,
	  .flags = SYN},
	 0,
	 TC_ACT_OK,
	 XVPC_STAT_PASS,
	 false,
	 0,
	 {},
	 P_NONE,
	 CT_NONE,
	 NULL,
	 0},
	{"truncated TCP header to the public VIP passes to the kernel",
	 NULL,
	 UL_BOTH,
	 P_UL,
	 0,
	 0,
	 TO_VIP(S_SPOOF, SYN),
	 14 + 20 + 10,
	 TC_ACT_OK,
	 XVPC_STAT_PASS,
	 false,
	 0,
	 {},
	 P_NONE,
	 CT_NONE,
	 NULL,
	 0},
	{"public VIP without backends: drop_lb_no_backend",
	 NULL,
	 UL_BOTH,
	 P_UL,
	 0,
	 0,
	 {.smac = MAC_ROUTER,
	  .dmac = MAC_NODE,
	  .src = CLIENT,
	  .dst = VOID,
	  .s = S_A2,
	  .port = 80,
	  .flags = SYN},
	 0,
	 TC_ACT_SHOT,
	 XVPC_DROP_LB_NO_BACKEND,
	 false,
	 0,
	 {},
	 P_NONE,
	 CT_NONE,
	 NULL,
	 0},
	{"public UDP VIP: DNAT with the checksum rewritten, to local b1",
	 NULL,
	 UL_BOTH,
	 P_UL,
	 0,
	 0,
	 {.smac = MAC_ROUTER,
	  .dmac = MAC_NODE,
	  .src = CLIENT,
	  .dst = VIP,
	  .s = S_UDP,
	  .port = 53,
	  .udp = true},
	 0,
	 TC_ACT_REDIRECT,
	 XVPC_STAT_LB_NEW,
	 true,
	 0,
	 {.smac = MAC_GW,
	  .dmac = MAC_B1,
	  .src = CLIENT,
	  .dst = "10.0.2.10",
	  .s = S_UDP,
	  .port = 5353,
	  .udp = true,
	  .ttl = 63},
	 P_B1,
	 CT_FWD_TO,
	 "10.0.2.10",
	 0},
	{"public UDP VIP, datagram without checksum: stays 0",
	 NULL,
	 UL_BOTH,
	 P_UL,
	 0,
	 0,
	 {.smac = MAC_ROUTER,
	  .dmac = MAC_NODE,
	  .src = CLIENT,
	  .dst = VIP,
	  .s = S_UDP0,
	  .port = 53,
	  .udp = true,
	  .zero_csum = true},
	 0,
	 TC_ACT_REDIRECT,
	 XVPC_STAT_LB_NEW,
	 true,
	 0,
	 {.smac = MAC_GW,
	  .dmac = MAC_B1,
	  .src = CLIENT,
	  .dst = "10.0.2.10",
	  .s = S_UDP0,
	  .port = 5353,
	  .udp = true,
	  .zero_csum = true,
	  .ttl = 63},
	 P_B1,
	 CT_FWD_TO,
	 "10.0.2.10",
	 0},
	{"F_NS VXLAN from a node that is no member: dropped",
	 not_member,
	 UL_BOTH,
	 P_UL,
	 NS,
	 102,
	 TO_BE(MAC_B1, "10.0.2.10", S_DEC, ACK, 63),
	 0,
	 TC_ACT_SHOT,
	 XVPC_DROP_NOT_MEMBER,
	 false,
	 0,
	 {},
	 P_NONE,
	 CT_ANY,
	 NULL,
	 0},
};

/* ---- running ---- */

static void hexdump(const char *what, const __u8 *b, size_t n)
{
	fprintf(stderr, "    %s (%zu bytes):", what, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%s%02x", i % 16 ? " " : "\n      ", b[i]);
	fprintf(stderr, "\n");
}

static int xdp_verdict(int tc)
{
	return tc == TC_ACT_REDIRECT ? XDP_REDIRECT
	       : tc == TC_ACT_OK     ? XDP_PASS
				     : XDP_DROP;
}

static bool out_ok(const struct step *s, const __u8 *out, size_t len, bool xdp)
{
	__u8 want[PKT_MAX];
	size_t wlen = frame(want, 0, 0, &s->out), off = s->out_vni ? 50 : 0;

	if (len == wlen + off && !memcmp(out + off, want, wlen) &&
	    (!s->out_vni || outer_ok(out, s->out_vni, xdp)))
		return true;
	hexdump("got", out, len);
	hexdump("want (inner)", want, wlen);
	return false;
}

static int run_step(const struct step *s, bool xdp)
{
	__u8 in[PKT_MAX], out[PKT_MAX + 128];
	struct __sk_buff skb = {.ifindex = ifidx[s->in_port]}, skb_out = {};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1);
	size_t len = frame(in, s->vx_flags, s->vx_vni, &s->in);
	int verdict = xdp ? xdp_verdict(s->verdict) : s->verdict;
	__u64 before = stat_pkts(s->stat),
	      tx = s->to_port ? ep_tx(s->to_port) : 0;
	enum xvpc_prog_id id = xdp		    ? XVPC_P_XDP_DECAP
			       : s->prog == FROM_EP ? XVPC_P_FROM_EP
						    : XVPC_P_TC_DECAP;
	bool ok = true;
	int err;

	if (xdp && s->stat == XVPC_STAT_LB_NEW)
		forget_flow(s); /* a new flow again, for the XDP program */
	if (s->truncate > 0 && (size_t)s->truncate < len)
		len = s->truncate;
	if (s->truncate < 0)
		in[49] = 1; /* the reserved byte after the VNI */
	o.data_size_in = len;
	if (!xdp) {
		o.ctx_in = &skb;
		o.ctx_size_in = sizeof(skb);
		o.ctx_out = &skb_out;
		o.ctx_size_out = sizeof(skb_out);
	}
	err = bpf_prog_test_run_opts(xvpc_dp_prog_fd(dp, id), &o);
	if (err) {
		fprintf(stderr, "  test run failed: %s\n", strerror(-err));
		return -1;
	}
	if ((int)o.retval != verdict) {
		fprintf(stderr, "  verdict %u, want %d (reason %u)\n", o.retval,
			verdict, skb_out.cb[0]);
		ok = false;
	}
	if (stat_pkts(s->stat) != before + 1) {
		fprintf(stderr, "  counter %s did not grow by one\n",
			xvpc_stat_name(s->stat));
		ok = false;
	}
	if (s->to_port && ep_tx(s->to_port) != tx + 1) {
		fprintf(stderr, "  not delivered to port %s\n",
			port_names[s->to_port]);
		ok = false;
	}
	if (s->check_out && !out_ok(s, out, o.data_size_out, xdp))
		ok = false;
	if (!ct_ok(s)) {
		fprintf(stderr, "  conntrack entry is not as expected\n");
		ok = false;
	}
	return ok ? 0 : -1;
}

/* The first client port from @from whose flow the table sends to @ip. */
static int find_sport(const struct xvpc_lb_backend *table, const char *ip,
		      __u16 from, __u16 *out)
{
	struct xvpc_lb_ct_key k = {.src = pkt_ip(CLIENT),
				   .dst = pkt_ip(VIP),
				   .dport = htons(80),
				   .proto = 6};

	for (__u32 p = from; p < 65535; p++) {
		k.sport = htons(p);
		if (table[xvpc_lb_flow_entry(&k, TBL_M)].ip == pkt_ip(ip)) {
			*out = p;
			return 0;
		}
	}
	return -ENOENT;
}

static int ns_setup(void)
{
	struct xvpc_lb_backend table[TBL_M];
	__be32 peer = pkt_ip(PEER_NODE);
	struct xvpc_lb_backend_spec dns_be;
	struct xvpc_node member = {};
	struct xvpc_maglev_ctx *ctx;
	int err;

	key_web = (struct xvpc_lb_svc_key){.vpc_id = XVPC_LB_PUBLIC,
					   .vip = pkt_ip(VIP),
					   .port = htons(80),
					   .proto = 6};
	key_void = key_web;
	key_void.vip = pkt_ip(VOID);
	key_dns = key_web;
	key_dns.port = htons(53);
	key_dns.proto = 17;
	dns_be = (struct xvpc_lb_backend_spec){pkt_ip("10.0.2.10"), htons(5353),
					       1};
	web_be[0] = (struct xvpc_lb_backend_spec){pkt_ip("10.0.2.10"),
						  htons(8080), 1};
	web_be[1] = (struct xvpc_lb_backend_spec){pkt_ip("10.0.1.20"),
						  htons(8080), 1};
	err = xvpc_lb_set_public_service(dp, &key_web, 1, web_be, 2, TBL_M)
		      ?: xvpc_lb_set_public_service(dp, &key_void, 1, NULL, 0,
						    TBL_M)
		      ?: xvpc_lb_set_public_service(dp, &key_dns, 1, &dns_be, 1,
						    TBL_M);
	if (err)
		return err;
	err = xvpc_maglev_ctx_new(TBL_M, &ctx);
	if (err)
		return err;
	err = xvpc_lb_build_table(ctx, web_be, 2, key_web.port, table) ?:
	      find_sport(table, "10.0.1.20", 10000, &sports[S_A2]) ?:
	      find_sport(table, "10.0.2.10", 10000, &sports[S_B1]);
	xvpc_maglev_ctx_free(ctx);
	/* The XDP program takes the next hop's MACs from the neighbour table:
	 * the peer node's entry, and this node's MAC on the underlay; the
	 * kernel's FIB helper answers only where forwarding is on. */
	err = sh("sysctl -qw net.ipv4.ip_forward=1 && "
		 "ip link set ul address 02:00:00:00:00:ff && "
		 "ip neigh replace " PEER_NODE " lladdr 02:00:00:00:00:fe "
		 "dev ul nud permanent");
	if (err)
		return err;
	/* The peer node is a member: its F_NS packets are accepted. */
	err = bpf_map_update_elem(xvpc_dp_map_fd(dp, XVPC_M_NODES), &peer,
				  &member, 0);
	if (err)
		return -errno;
	sports[S_DEC] = 30000;
	sports[S_SPOOF] = 30001;
	sports[S_UDP] = 30002;
	sports[S_UDP0] = 30003;
	return err;
}

/* ---- the loader's side ---- */

/* xvpc_lb_ns entries of public VIP:@port. */
static int count_ns(__u16 port)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_LB_NS), n = 0;
	struct xvpc_lb_ns_key k, next, *prev = NULL;
	struct xvpc_lb_ns_vip v;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		prev = &k;
		n += !bpf_map_lookup_elem(fd, &k, &v) && v.port == htons(port);
	}
	return n;
}

/* Conntrack entries of public VIP:@port, forward and reverse. */
static int count_ns_ct(__u16 port)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_LB_CT), n = 0;
	struct xvpc_lb_ct_key k, next, *prev = NULL;
	struct xvpc_lb_ct v;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(fd, &k, &v))
			continue;
		n += ((v.flags & XVPC_LB_CT_F_NS) &&
		      v.nat.port == htons(port)) ||
		     (!k.vpc_id && k.dport == htons(port));
	}
	return n;
}

static int loader_checks(void)
{
	struct xvpc_lb_svc_key other = key_web;
	struct xvpc_lb_config cfg;
	int fail = 0, err;
	__u32 zero = 0;

	/* b1 (after only_b1) serves web: another public VIP may not. */
	other.port = htons(8080);
	err = xvpc_lb_set_public_service(dp, &other, 1, web_be, 1, TBL_M);
	printf("%s loader: a backend of two public VIPs is refused (%d)\n",
	       err == -EEXIST ? "ok  " : "FAIL", err);
	fail += err != -EEXIST;
	err = xvpc_lb_set_service(dp, &key_web, web_be, 1, TBL_M);
	printf("%s loader: VPC 0 is refused for an east-west service (%d)\n",
	       err == -EINVAL ? "ok  " : "FAIL", err);
	fail += err != -EINVAL;
	bpf_map_lookup_elem(xvpc_dp_map_fd(dp, XVPC_M_LB_CONFIG), &zero, &cfg);
	printf("%s loader: 3 public services counted (%u)\n",
	       cfg.public_services == 3 ? "ok  " : "FAIL", cfg.public_services);
	fail += cfg.public_services != 3;
	err = xvpc_lb_delete_service(dp, &key_web);
	printf("%s loader: delete: xvpc_lb_ns %d entries, %d conntrack "
	       "entries left\n",
	       !err && !count_ns(80) && !count_ns_ct(80) ? "ok  " : "FAIL",
	       count_ns(80), count_ns_ct(80));
	fail += err || count_ns(80) || count_ns_ct(80);
	/* the other public service keeps its own */
	printf("%s loader: the UDP service keeps its xvpc_lb_ns entry (%d) and "
	       "its conntrack (%d)\n",
	       count_ns(53) == 1 && count_ns_ct(53) == 4 ? "ok  " : "FAIL",
	       count_ns(53), count_ns_ct(53));
	fail += count_ns(53) != 1 || count_ns_ct(53) != 4;
	return fail;
}

int main(void)
{
	int pass = 0, fail = 0, f;

	xvpc_log_set_ident("test_lb_ns");
	xvpc_log_hook_libs();
	if (setup() || ns_setup()) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
		const struct step *s = &steps[i];
		int runs = s->prog == UL_BOTH ? 2 : 1;

		if (s->before)
			s->before();
		for (int r = 0; r < runs; r++) {
			int rc = run_step(s, r == 1);

			printf("%s [%s] %s\n", rc ? "FAIL" : "ok  ",
			       r == 1		    ? "xdp ul"
			       : s->prog == FROM_EP ? "tc ep"
						    : "tc ul",
			       s->desc);
			rc ? fail++ : pass++;
		}
	}
	f = loader_checks();
	fail += f;
	pass += 5 - f;
	xvpc_dp_close(dp);
	printf("test_lb_ns: %d passed, %d failed\n", pass, fail);
	return fail ? 1 : 0;
}
