// SPDX-License-Identifier: GPL-2.0-only
/*
 * Load balancer datapath through BPF_PROG_TEST_RUN: a table of steps run in
 * order, because conntrack makes them stateful. Each step: {description,
 * what to change first, program, ingress port, input frame, verdict,
 * counter, expected output frame, receiving endpoint, expected conntrack}.
 *
 * Topology: fixture.h, plus
 *   VPC 1  web  10.0.100.1:80/tcp -> b1 10.0.2.10:8080 (local)
 *                                    a3 10.0.1.40:8080 (local)
 *                                    a2 10.0.1.20:8080 (node 192.168.1.2)
 *          dns  10.0.100.1:53/udp -> b1 10.0.2.10:53
 *          void 10.0.100.2:80/tcp -> no backends
 *   client a1 10.0.1.10 (local). Source ports are picked at start so that
 *   each flow hashes to the backend the step names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "lb.h"
#include "log.h"
#include "netutil.h"
#include "pktbuild.h"

#include "fixture.h"

#define VIP   "10.0.100.1"
#define VOID  "10.0.100.2"
#define TBL_M 251

#define FIN 0x01
#define SYN 0x02
#define RST 0x04
#define ACK 0x10

enum which { FROM_EP, TC_DECAP, XDP_DECAP };

/* Source ports, found at start: S_B1 hashes to b1 in the first table. */
enum sport { S_NONE, S_B1, S_B1_2, S_A2, S_A3, S_UDP, S_UDP0, S__MAX };
static __u16 sports[S__MAX];

struct flow {
	const __u8 *smac, *dmac;
	const char *src, *dst;
	enum sport s; /* client port, by name */
	__u16 port;   /* the other side's port */
	bool reply;   /* from the backend: ports swapped */
	__u8 proto;   /* 6 or 17 */
	__u8 flags;   /* TCP */
	__u8 ttl;
	bool zero_csum; /* UDP without checksum */
};

enum ct_check { CT_ANY = 0, CT_TO, CT_NOT_TO, CT_CLOSING, CT_NONE };

struct step {
	const char *desc;
	void (*before)(void);
	enum which prog;
	enum port in_port;
	bool outer; /* VXLAN from the peer node around the frame */
	struct flow in;
	int truncate;
	int verdict;
	unsigned int stat;
	bool check_out;
	bool out_encap; /* compare the inner frame after 50 bytes */
	struct flow out;
	enum port to_port;
	enum ct_check ct; /* the forward entry of the input's flow */
	const char *ct_ip;
};

static const struct xvpc_lb_svc_key web = {
	.vpc_id = 1, .port = __builtin_bswap16(80), .proto = 6};
static const struct xvpc_lb_svc_key dns = {
	.vpc_id = 1, .port = __builtin_bswap16(53), .proto = 17};
static const struct xvpc_lb_svc_key nothing = {
	.vpc_id = 1, .port = __builtin_bswap16(80), .proto = 6};

static struct xvpc_lb_svc_key key_web, key_dns, key_void;
static struct xvpc_lb_backend_spec web_be[3], dns_be[1];

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

static size_t frame(__u8 *buf, bool outer, const struct flow *f)
{
	__u16 hl = f->proto == 6 ? 20 : 8, payload = hl + 12;
	__u16 cport = sports[f->s];
	struct pkt_inner in = {
		.smac = f->smac,
		.dmac = f->dmac,
		.src = f->src,
		.dst = f->dst,
		.proto = f->proto,
		.ttl = f->ttl,
		.payload = payload,
		.sport = f->reply ? f->port : cport,
		.dport = f->reply ? cport : f->port,
	};
	struct pkt_outer o = {.on = outer,
			      .dmac = MAC_NODE,
			      .smac = MAC_PEER,
			      .src = PEER_NODE,
			      .dst = NODE,
			      .vni = 101};
	size_t len = pkt_build(buf, &o, &in);
	__u8 *ip = buf + (outer ? 50 : 0) + 14, *l4 = ip + 20;
	__u16 c;

	if (f->proto == 6) {
		l4[12] = 0x50;
		l4[13] = f->flags;
		l4[16] = l4[17] = 0;
	} else {
		l4[4] = payload >> 8;
		l4[5] = payload & 0xff;
		l4[6] = l4[7] = 0;
	}
	if (!f->zero_csum) {
		c = l4_csum(ip, l4, payload);
		memcpy(l4 + (f->proto == 6 ? 16 : 6), &c, 2);
	}
	return len;
}

/* ---- conntrack ---- */

static struct xvpc_lb_ct_key fwd_key(const struct flow *f)
{
	struct xvpc_lb_ct_key k = {
		.vpc_id = 1,
		.src = pkt_ip(f->src),
		.dst = pkt_ip(f->dst),
		.sport = htons(sports[f->s]),
		.dport = htons(f->port),
		.proto = f->proto,
	};
	return k;
}

static int ct_get(const struct flow *f, struct xvpc_lb_ct *v)
{
	struct xvpc_lb_ct_key k = fwd_key(f);

	return bpf_map_lookup_elem(xvpc_dp_map_fd(dp, XVPC_M_LB_CT), &k, v);
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* ---- state changes between steps ---- */

static const struct flow F_B1 = {
	.src = "10.0.1.10", .dst = VIP, .s = S_B1, .port = 80, .proto = 6};

static void drop_b1(void)
{
	/* b1 leaves the table: a3 and a2 only. */
	if (xvpc_lb_set_service(dp, &key_web, web_be + 1, 2, TBL_M))
		fprintf(stderr, "  cannot replace the service\n");
}

static void age_b1_flow(void)
{
	struct xvpc_lb_ct_key k = fwd_key(&F_B1);
	struct xvpc_lb_ct v;
	int fd = xvpc_dp_map_fd(dp, XVPC_M_LB_CT);

	if (bpf_map_lookup_elem(fd, &k, &v)) {
		fprintf(stderr, "  no entry to age\n");
		return;
	}
	v.last_ns = now_ns() - XVPC_LB_TCP_TIMEOUT_NS - 1000000000ull;
	bpf_map_update_elem(fd, &k, &v, BPF_EXIST);
}

static void delete_web(void)
{
	if (xvpc_lb_delete_service(dp, &key_web))
		fprintf(stderr, "  cannot delete the service\n");
}

/* ---- the table ---- */

#define TCP_IN(S, FL)                                                   \
	{                                                               \
		.smac = MAC_A1, .dmac = MAC_GW, .src = "10.0.1.10",     \
		.dst = VIP, .s = S, .port = 80, .proto = 6, .flags = FL \
	}
#define TCP_TO_B1(S, FL)                                              \
	{                                                             \
		.smac = MAC_GW, .dmac = MAC_B1, .src = "10.0.1.10",   \
		.dst = "10.0.2.10", .s = S, .port = 8080, .proto = 6, \
		.flags = FL, .ttl = 63                                \
	}

static const struct step steps[] = {
	{"SYN to the VIP: Maglev picks local b1, DNAT, routed to it", NULL,
	 FROM_EP, P_A1, false, TCP_IN(S_B1, SYN), 0, TC_ACT_REDIRECT,
	 XVPC_STAT_LB_NEW, true, false, TCP_TO_B1(S_B1, SYN), P_B1, CT_TO,
	 "10.0.2.10"},
	{"SYN hashing to remote a2: DNAT, then VXLAN to its node",
	 NULL,
	 FROM_EP,
	 P_A1,
	 false,
	 TCP_IN(S_A2, SYN),
	 0,
	 TC_ACT_REDIRECT,
	 XVPC_STAT_LB_NEW,
	 true,
	 true,
	 {.smac = MAC_GW,
	  .dmac = MAC_A2,
	  .src = "10.0.1.10",
	  .dst = "10.0.1.20",
	  .s = S_A2,
	  .port = 8080,
	  .proto = 6,
	  .flags = SYN,
	  .ttl = 63},
	 P_NONE,
	 CT_TO,
	 "10.0.1.20"},
	{"ACK of the flow: conntrack hit, same backend", NULL, FROM_EP, P_A1,
	 false, TCP_IN(S_B1, ACK), 0, TC_ACT_REDIRECT, XVPC_STAT_LB_EST, true,
	 false, TCP_TO_B1(S_B1, ACK), P_B1, CT_TO, "10.0.2.10"},
	{"reply of local b1: source back to VIP:80, routed to the client",
	 NULL,
	 FROM_EP,
	 P_B1,
	 false,
	 {.smac = MAC_B1,
	  .dmac = MAC_GW,
	  .src = "10.0.2.10",
	  .dst = "10.0.1.10",
	  .s = S_B1,
	  .port = 8080,
	  .reply = true,
	  .proto = 6,
	  .flags = SYN | ACK},
	 0,
	 TC_ACT_REDIRECT,
	 XVPC_STAT_LB_REPLY,
	 true,
	 false,
	 {.smac = MAC_GW,
	  .dmac = MAC_A1,
	  .src = VIP,
	  .dst = "10.0.1.10",
	  .s = S_B1,
	  .port = 80,
	  .reply = true,
	  .proto = 6,
	  .flags = SYN | ACK,
	  .ttl = 63},
	 P_A1,
	 CT_ANY,
	 NULL},
	{"reply of remote a2, decapsulated: source back to VIP:80",
	 NULL,
	 TC_DECAP,
	 P_UL,
	 true,
	 {.smac = MAC_A2,
	  .dmac = MAC_A1,
	  .src = "10.0.1.20",
	  .dst = "10.0.1.10",
	  .s = S_A2,
	  .port = 8080,
	  .reply = true,
	  .proto = 6,
	  .flags = SYN | ACK},
	 0,
	 TC_ACT_REDIRECT,
	 XVPC_STAT_LB_REPLY,
	 true,
	 false,
	 {.smac = MAC_A2,
	  .dmac = MAC_A1,
	  .src = VIP,
	  .dst = "10.0.1.10",
	  .s = S_A2,
	  .port = 80,
	  .reply = true,
	  .proto = 6,
	  .flags = SYN | ACK},
	 P_A1,
	 CT_ANY,
	 NULL},
	{"established flow stays on b1 after b1 left the table", drop_b1,
	 FROM_EP, P_A1, false, TCP_IN(S_B1, ACK), 0, TC_ACT_REDIRECT,
	 XVPC_STAT_LB_EST, true, false, TCP_TO_B1(S_B1, ACK), P_B1, CT_TO,
	 "10.0.2.10"},
	{"a new flow that hashed to b1 goes to another backend now",
	 NULL,
	 FROM_EP,
	 P_A1,
	 false,
	 TCP_IN(S_B1_2, SYN),
	 0,
	 TC_ACT_REDIRECT,
	 XVPC_STAT_LB_NEW,
	 false,
	 false,
	 {},
	 P_NONE,
	 CT_NOT_TO,
	 "10.0.2.10"},
	{"expired entry is absent: the flow is balanced anew",
	 age_b1_flow,
	 FROM_EP,
	 P_A1,
	 false,
	 TCP_IN(S_B1, ACK),
	 0,
	 TC_ACT_REDIRECT,
	 XVPC_STAT_LB_NEW,
	 false,
	 false,
	 {},
	 P_NONE,
	 CT_NOT_TO,
	 "10.0.2.10"},
	{"RST closes the entry (short timeout)",
	 NULL,
	 FROM_EP,
	 P_A1,
	 false,
	 TCP_IN(S_A2, RST | ACK),
	 0,
	 TC_ACT_REDIRECT,
	 XVPC_STAT_LB_EST,
	 false,
	 false,
	 {},
	 P_NONE,
	 CT_CLOSING,
	 NULL},
	{"SYN on a closed entry is a new flow",
	 NULL,
	 FROM_EP,
	 P_A1,
	 false,
	 TCP_IN(S_A2, SYN),
	 0,
	 TC_ACT_REDIRECT,
	 XVPC_STAT_LB_NEW,
	 false,
	 false,
	 {},
	 P_NONE,
	 CT_TO,
	 "10.0.1.20"},
	{"SYN to a3 (local, same subnet as the client)",
	 NULL,
	 FROM_EP,
	 P_A1,
	 false,
	 TCP_IN(S_A3, SYN),
	 0,
	 TC_ACT_REDIRECT,
	 XVPC_STAT_LB_NEW,
	 true,
	 false,
	 {.smac = MAC_GW,
	  .dmac = MAC_A3,
	  .src = "10.0.1.10",
	  .dst = "10.0.1.40",
	  .s = S_A3,
	  .port = 8080,
	  .proto = 6,
	  .flags = SYN,
	  .ttl = 63},
	 P_A3,
	 CT_TO,
	 "10.0.1.40"},
	{"FIN from the client closes the entry",
	 NULL,
	 FROM_EP,
	 P_A1,
	 false,
	 TCP_IN(S_A3, FIN | ACK),
	 0,
	 TC_ACT_REDIRECT,
	 XVPC_STAT_LB_EST,
	 false,
	 false,
	 {},
	 P_NONE,
	 CT_CLOSING,
	 NULL},
	{"UDP: first datagram creates the flow, checksum rewritten",
	 NULL,
	 FROM_EP,
	 P_A1,
	 false,
	 {.smac = MAC_A1,
	  .dmac = MAC_GW,
	  .src = "10.0.1.10",
	  .dst = VIP,
	  .s = S_UDP,
	  .port = 53,
	  .proto = 17},
	 0,
	 TC_ACT_REDIRECT,
	 XVPC_STAT_LB_NEW,
	 true,
	 false,
	 {.smac = MAC_GW,
	  .dmac = MAC_B1,
	  .src = "10.0.1.10",
	  .dst = "10.0.2.10",
	  .s = S_UDP,
	  .port = 53,
	  .proto = 17,
	  .ttl = 63},
	 P_B1,
	 CT_TO,
	 "10.0.2.10"},
	{"UDP without checksum keeps checksum 0",
	 NULL,
	 FROM_EP,
	 P_A1,
	 false,
	 {.smac = MAC_A1,
	  .dmac = MAC_GW,
	  .src = "10.0.1.10",
	  .dst = VIP,
	  .s = S_UDP0,
	  .port = 53,
	  .proto = 17,
	  .zero_csum = true},
	 0,
	 TC_ACT_REDIRECT,
	 XVPC_STAT_LB_NEW,
	 true,
	 false,
	 {.smac = MAC_GW,
	  .dmac = MAC_B1,
	  .src = "10.0.1.10",
	  .dst = "10.0.2.10",
	  .s = S_UDP0,
	  .port = 53,
	  .proto = 17,
	  .ttl = 63,
	  .zero_csum = true},
	 P_B1,
	 CT_TO,
	 "10.0.2.10"},
	{"VIP without backends: drop_lb_no_backend",
	 NULL,
	 FROM_EP,
	 P_A1,
	 false,
	 {.smac = MAC_A1,
	  .dmac = MAC_GW,
	  .src = "10.0.1.10",
	  .dst = VOID,
	  .s = S_B1,
	  .port = 80,
	  .proto = 6,
	  .flags = SYN},
	 0,
	 TC_ACT_SHOT,
	 XVPC_DROP_LB_NO_BACKEND,
	 false,
	 false,
	 {},
	 P_NONE,
	 CT_NONE,
	 NULL},
	{"truncated TCP header to the VIP is not balanced",
	 NULL,
	 FROM_EP,
	 P_A1,
	 false,
	 TCP_IN(S_UDP, SYN),
	 14 + 20 + 12,
	 TC_ACT_SHOT,
	 XVPC_DROP_NO_SUBNET,
	 false,
	 false,
	 {},
	 P_NONE,
	 CT_NONE,
	 NULL},
	{"another port of the VIP is no service",
	 NULL,
	 FROM_EP,
	 P_A1,
	 false,
	 {.smac = MAC_A1,
	  .dmac = MAC_GW,
	  .src = "10.0.1.10",
	  .dst = VIP,
	  .s = S_B1,
	  .port = 81,
	  .proto = 6,
	  .flags = SYN},
	 0,
	 TC_ACT_SHOT,
	 XVPC_DROP_NO_SUBNET,
	 false,
	 false,
	 {},
	 P_NONE,
	 CT_NONE,
	 NULL},
	{"service deleted: conntrack flushed, VIP unreachable",
	 delete_web,
	 FROM_EP,
	 P_A1,
	 false,
	 TCP_IN(S_A2, ACK),
	 0,
	 TC_ACT_SHOT,
	 XVPC_DROP_NO_SUBNET,
	 false,
	 false,
	 {},
	 P_NONE,
	 CT_NONE,
	 NULL},
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

static bool check_ct(const struct step *s)
{
	struct xvpc_lb_ct v;
	int err = ct_get(&s->in, &v);
	__be32 want = pkt_ip(s->ct_ip);

	switch (s->ct) {
	case CT_ANY:
		return true;
	case CT_NONE:
		return err != 0;
	case CT_TO:
		return !err && v.dir == XVPC_LB_CT_FWD && v.nat.ip == want;
	case CT_NOT_TO:
		return !err && v.dir == XVPC_LB_CT_FWD && v.nat.ip != want;
	case CT_CLOSING:
		return !err && v.state == XVPC_LB_CT_CLOSING;
	}
	return false;
}

static int run_step(const struct step *s, enum which prog)
{
	__u8 in[PKT_MAX], out[PKT_MAX + 128], want[PKT_MAX];
	struct __sk_buff skb = {.ifindex = ifidx[s->in_port]}, skb_out = {};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1);
	size_t len = frame(in, s->outer, &s->in), wlen, off;
	int verdict = prog == XDP_DECAP ? xdp_verdict(s->verdict) : s->verdict;
	__u64 before = stat_pkts(s->stat),
	      tx = s->to_port ? ep_tx(s->to_port) : 0;
	bool ok = true;
	int fd, err;

	if (s->truncate > 0 && (size_t)s->truncate < len)
		len = s->truncate;
	o.data_size_in = len;
	if (prog != XDP_DECAP) {
		o.ctx_in = &skb;
		o.ctx_size_in = sizeof(skb);
		o.ctx_out = &skb_out;
		o.ctx_size_out = sizeof(skb_out);
	}
	fd = xvpc_dp_prog_fd(dp, prog == FROM_EP    ? XVPC_P_FROM_EP
				 : prog == TC_DECAP ? XVPC_P_TC_DECAP
						    : XVPC_P_XDP_DECAP);
	err = bpf_prog_test_run_opts(fd, &o);
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
	if (s->check_out) {
		wlen = frame(want, false, &s->out);
		off = s->out_encap ? 50 : 0;
		if (o.data_size_out != wlen + off ||
		    memcmp(out + off, want, wlen)) {
			hexdump("got", out, o.data_size_out);
			hexdump("want", want, wlen);
			ok = false;
		}
	}
	if (!check_ct(s)) {
		fprintf(stderr, "  conntrack entry is not as expected\n");
		ok = false;
	}
	return ok ? 0 : -1;
}

/* The first source port from @from whose flow the table sends to @ip. */
static int find_sport(const struct xvpc_lb_backend *table, __u8 proto,
		      __u16 port, const char *ip, __u16 from, __u16 *out)
{
	struct xvpc_lb_ct_key k = {.vpc_id = 1,
				   .src = pkt_ip("10.0.1.10"),
				   .dst = pkt_ip(VIP),
				   .dport = htons(port),
				   .proto = proto};

	for (__u32 p = from; p < 65535; p++) {
		k.sport = htons(p);
		if (table[xvpc_lb_flow_entry(&k, TBL_M)].ip == pkt_ip(ip)) {
			*out = p;
			return 0;
		}
	}
	return -ENOENT;
}

static int lb_setup(void)
{
	struct xvpc_lb_backend table[TBL_M];
	struct xvpc_maglev_ctx *ctx;
	int err;

	key_web = web;
	key_web.vip = pkt_ip(VIP);
	key_dns = dns;
	key_dns.vip = pkt_ip(VIP);
	key_void = nothing;
	key_void.vip = pkt_ip(VOID);
	web_be[0] = (struct xvpc_lb_backend_spec){pkt_ip("10.0.2.10"),
						  htons(8080), 1};
	web_be[1] = (struct xvpc_lb_backend_spec){pkt_ip("10.0.1.40"),
						  htons(8080), 1};
	web_be[2] = (struct xvpc_lb_backend_spec){pkt_ip("10.0.1.20"),
						  htons(8080), 1};
	dns_be[0] = (struct xvpc_lb_backend_spec){pkt_ip("10.0.2.10"), 0, 1};
	err = xvpc_lb_set_service(dp, &key_web, web_be, 3, TBL_M) ?:
	      xvpc_lb_set_service(dp, &key_dns, dns_be, 1, TBL_M) ?:
	      xvpc_lb_set_service(dp, &key_void, NULL, 0, TBL_M);
	if (err)
		return err;
	err = xvpc_maglev_ctx_new(TBL_M, &ctx);
	if (err)
		return err;
	err = xvpc_lb_build_table(ctx, web_be, 3, key_web.port, table) ?:
	      find_sport(table, 6, 80, "10.0.2.10", 10000, &sports[S_B1]) ?:
	      find_sport(table, 6, 80, "10.0.2.10", sports[S_B1] + 1,
			 &sports[S_B1_2]) ?:
	      find_sport(table, 6, 80, "10.0.1.20", 10000, &sports[S_A2]) ?:
	      find_sport(table, 6, 80, "10.0.1.40", 10000, &sports[S_A3]);
	xvpc_maglev_ctx_free(ctx);
	sports[S_UDP] = 20000;
	sports[S_UDP0] = 20001;
	return err;
}

int main(void)
{
	struct xvpc_lb_service_info info[4];
	int pass = 0, fail = 0;
	size_t n = 0;

	xvpc_log_set_ident("test_lb");
	xvpc_log_hook_libs();
	if (setup() || lb_setup()) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
		const struct step *s = &steps[i];
		int runs = s->prog == TC_DECAP ? 2 : 1;

		if (s->before)
			s->before();
		for (int r = 0; r < runs; r++) {
			enum which w = r ? XDP_DECAP : s->prog;
			int rc = run_step(s, w);

			printf("%s [%s] %s\n", rc ? "FAIL" : "ok  ",
			       w == FROM_EP    ? "tc ep"
			       : w == TC_DECAP ? "tc ul"
					       : "xdp ul",
			       s->desc);
			rc ? fail++ : pass++;
		}
	}
	/* Two services remain (dns, void) after web's deletion. */
	if (xvpc_lb_list_services(dp, info, 4, &n) || n != 2) {
		printf("FAIL list after delete: %zu services\n", n);
		fail++;
	} else {
		printf("ok   list after delete: 2 services\n");
		pass++;
	}
	xvpc_dp_close(dp);
	printf("test_lb: %d passed, %d failed\n", pass, fail);
	return fail ? 1 : 0;
}
