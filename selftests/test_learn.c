// SPDX-License-Identifier: GPL-2.0-only
/*
 * Learning mode in the datapath (docs/learning.md, "Datapath"), table-driven
 * through BPF_PROG_TEST_RUN like test_datapath.c: {description, program,
 * ingress port, input frame, learned entry before, expected verdict,
 * counters, output frame, learned entry after, miss events}. Each case
 * starts with an empty xvpc_learned and xvpc_miss_rl, so cases do not
 * depend on each other; decap cases run through tc and XDP.
 *
 * On top of the fixture (fixture.h: VPCs 1 and 2 in push mode):
 *
 *   VPC 3, learn mode, this node no gateway, gateways .3 and .4
 *     A 10.3.1.0/24 vni 301: d1 .10 local (port "d1"), d2 .20 on .2
 *     B 10.3.2.0/24 vni 302: e1 .10 local (port "e1"), gateway MAC_GW2
 *   VPC 4, learn mode, this node a gateway (gateways .1 and .3)
 *     A 10.4.1.0/24 vni 401: g1 .10 local (port "g1"), g2 .20 on .2,
 *                            g3 .30 on .5, g4 .40 on 10.99.0.1 (no route)
 *   VPC 5, learn mode, no gateway known
 *     A 10.5.1.0/24 vni 501: h1 .10 local (port "h1")
 *   members 192.168.1.1 - .6 (not .9); underlay "ul" has MAC_NODE,
 *   permanent neighbours .2 - .6 at MAC_PEER and IPv4 forwarding on, so
 *   the XDP program's FIB lookup for a gateway forward resolves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "log.h"
#include "netutil.h"
#include "pktbuild.h"

#include "fixture.h"

static const __u8 MAC_D1[6] = {2, 0, 0, 3, 1, 10};
static const __u8 MAC_D2[6] = {2, 0, 0, 3, 1, 20};
static const __u8 MAC_E1[6] = {2, 0, 0, 3, 2, 10};
static const __u8 MAC_G1[6] = {2, 0, 0, 4, 1, 10};
static const __u8 MAC_G2[6] = {2, 0, 0, 4, 1, 20};
static const __u8 MAC_G3[6] = {2, 0, 0, 4, 1, 30};
static const __u8 MAC_G4[6] = {2, 0, 0, 4, 1, 40};
static const __u8 MAC_H1[6] = {2, 0, 0, 5, 1, 10};
static const __u8 MAC_X[6] = {2, 0, 0, 3, 1, 50}; /* a remote endpoint */
/* Gateway MAC of 10.3.2.0/24: another than the fixture's MAC_GW, as when
 * the controller gives each subnet its own. */
static const __u8 MAC_GW2[6] = {2, 0x78, 0x76, 0x70, 0x63, 2};

#define GW3	"192.168.1.3"
#define GW4	"192.168.1.4"
#define MEMBER5 "192.168.1.5"
#define MEMBER6 "192.168.1.6"
#define STRANGE "192.168.1.9"

#define F_I	0x08000000u
#define F_RELAY (F_I | XVPC_VXLAN_F_RELAY)
#define F_FWD	(F_I | XVPC_VXLAN_F_FWD)

enum lport { L_NONE = 0, L_D1, L_E1, L_G1, L_H1, L_A1, L_UL, L__MAX };
static const char *const lport_names[L__MAX] = {
	[L_D1] = "d1", [L_E1] = "e1", [L_G1] = "g1",
	[L_H1] = "h1", [L_A1] = "a1", [L_UL] = "ul",
};
static int lifidx[L__MAX];

enum which { FROM_EP, DECAP, XDP_ONLY };
enum run { RUN_EP, RUN_TC, RUN_XDP };

/* A learned entry: installed before the case, or expected after it. */
struct lentry {
	__u32 vpc;
	const char *ip; /* NULL: none */
	bool absent;	/* after: must not be there */
	const char *node;
	__u32 vni;
	const __u8 *mac; /* NULL: all zero (NOMAC) */
	__u16 flags;
	__u64 hits;
	bool touched; /* after: last_ns set */
};

struct learn_case {
	const char *desc;
	enum which prog;
	enum lport in_port; /* FROM_EP: the sender; decap: the underlay */
	struct pkt_outer in_outer;
	struct pkt_inner in;
	struct lentry pre, post;
	int verdict;	    /* as tc states it */
	unsigned int stat;  /* must grow by one */
	unsigned int stat2; /* too, unless 0 */
	bool no_learn;	    /* the learned counter must not grow */
	int events;	    /* miss events the packet must emit */
	unsigned int ev_reason;
	bool check_out;
	bool out_fwd;	 /* sent on by the underlay program */
	bool out_any_gw; /* outer destination: any gateway of VPC 3 */
	struct pkt_outer out_outer;
	struct pkt_inner out;
	enum lport to_port; /* endpoint whose tx counter must grow */
};

/* Underlay input from node @s with VXLAN flags @f. */
#define VXF(s, f, ...)                                                    \
	{                                                                 \
		.on = true, .dmac = MAC_NODE, .smac = MAC_PEER, .src = s, \
		.dst = NODE, .sport = 50000, .vx_flags = f, __VA_ARGS__   \
	}
/* Sent on toward node @d with flags @f (outer MACs as tc leaves them). */
#define FWDOUT(d, f, ...)                                                    \
	{                                                                    \
		.on = true, .dmac = MAC_NODE, .smac = MAC_PEER, .src = NODE, \
		.dst = d, .sport = 50000, .vx_flags = f, __VA_ARGS__         \
	}
#define ENCAP(...)                                                           \
	{                                                                    \
		.on = true, .dmac = MAC_ZERO, .smac = MAC_NODE, .src = NODE, \
		.frag = DF, __VA_ARGS__                                      \
	}
#define D1_TO(...)                                              \
	{                                                       \
		.smac = MAC_D1, .src = "10.3.1.10", __VA_ARGS__ \
	}
#define INNER(smac_, src_, dmac_, dst_, ...)                            \
	{                                                               \
		.smac = smac_, .src = src_, .dmac = dmac_, .dst = dst_, \
		__VA_ARGS__                                             \
	}
/* The usual learn-mode packet: remote 10.3.1.50 to d1. */
#define X_TO_D1() INNER(MAC_X, "10.3.1.50", MAC_D1, "10.3.1.10")
#define LEARNED(ip_, node_, vni_, mac_, flags_, ...)                          \
	{                                                                     \
		.vpc = 3, .ip = ip_, .node = node_, .vni = vni_, .mac = mac_, \
		.flags = XVPC_EP_LEARNED | (flags_), __VA_ARGS__              \
	}

static const struct learn_case cases[] = {
	/* ---- sending node: misses ---- */
	{"miss goes to a gateway with the subnet's VNI, one event", FROM_EP,
	 L_D1,
	 .in = D1_TO(.dmac = MAC_X, .dst = "10.3.1.99", .proto = 17,
		     .payload = 20, .sport = 1000, .dport = 53),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_MISS_GW,
	 .stat2 = XVPC_STAT_ENCAP, .events = 1,
	 .ev_reason = XVPC_DROP_NO_ENDPOINT, .check_out = true,
	 .out_any_gw = true, .out_outer = ENCAP(.vni = 301),
	 .out = D1_TO(.dmac = MAC_X, .dst = "10.3.1.99", .proto = 17,
		      .payload = 20, .sport = 1000, .dport = 53)},
	{"routed miss: TTL-1, gateway MAC as source, VNI of its subnet",
	 FROM_EP, L_D1,
	 .in = D1_TO(.dmac = MAC_GW, .dst = "10.3.2.99", .ttl = 9),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_MISS_GW,
	 .stat2 = XVPC_STAT_ROUTED, .events = 1,
	 .ev_reason = XVPC_DROP_NO_ENDPOINT, .check_out = true,
	 .out_any_gw = true, .out_outer = ENCAP(.vni = 302),
	 .out = {.smac = MAC_GW2,
		 .dmac = MAC_GW,
		 .src = "10.3.1.10",
		 .dst = "10.3.2.99",
		 .ttl = 8}},
	{"routed miss with TTL 1 expires", FROM_EP, L_D1,
	 .in = D1_TO(.dmac = MAC_GW, .dst = "10.3.2.99", .ttl = 1),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_TTL, .events = 1,
	 .ev_reason = XVPC_DROP_NO_ENDPOINT},
	{"L2 miss into another subnet is refused, no event", FROM_EP, L_D1,
	 .in = D1_TO(.dmac = MAC_X, .dst = "10.3.2.99"), .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_DST_MAC},
	{"outside every subnet: no miss, no event", FROM_EP, L_D1,
	 .in = D1_TO(.dmac = MAC_GW, .dst = "8.8.8.8"), .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_NO_SUBNET},
	{"no gateway known: drop_no_gateway, still one event", FROM_EP, L_H1,
	 .in = {.smac = MAC_H1,
		.src = "10.5.1.10",
		.dmac = MAC_X,
		.dst = "10.5.1.99"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NO_GATEWAY, .events = 1,
	 .ev_reason = XVPC_DROP_NO_ENDPOINT},
	{"at a gateway of the VPC a miss is a real miss", FROM_EP, L_G1,
	 .in = {.smac = MAC_G1,
		.src = "10.4.1.10",
		.dmac = MAC_X,
		.dst = "10.4.1.99"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NO_ENDPOINT, .events = 1,
	 .ev_reason = XVPC_DROP_NO_ENDPOINT},
	{"push mode: a miss is dropped with one event, as before", FROM_EP,
	 L_A1,
	 .in = {.smac = MAC_A1,
		.src = "10.0.1.10",
		.dmac = MAC_X,
		.dst = "10.0.1.99"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NO_ENDPOINT, .events = 1,
	 .ev_reason = XVPC_DROP_NO_ENDPOINT},

	/* ---- sending node: ARP ---- */
	{"ARP for an unknown target: one event, dropped", FROM_EP, L_D1,
	 .in = D1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .dst = "10.3.1.99"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_ARP_UNKNOWN, .events = 1,
	 .ev_reason = XVPC_DROP_ARP_UNKNOWN},
	{"ARP for a NOMAC learned entry: one event, dropped", FROM_EP, L_D1,
	 .pre = LEARNED("10.3.1.51", MEMBER5, 301, NULL, XVPC_EP_NOMAC),
	 .in = D1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .dst = "10.3.1.51"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_ARP_UNKNOWN, .events = 1,
	 .ev_reason = XVPC_DROP_ARP_UNKNOWN},
	{"ARP for a learned entry with a MAC is answered", FROM_EP, L_D1,
	 .pre = LEARNED("10.3.1.50", MEMBER5, 301, MAC_X, XVPC_EP_RESOLVED),
	 .in = D1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .dst = "10.3.1.50"),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_ARP_REPLY,
	 .check_out = true,
	 .out = {.dmac = MAC_D1,
		 .smac = MAC_X,
		 .l3 = PKT_ARP,
		 .arp_op = 2,
		 .sha = MAC_X,
		 .sip = "10.3.1.50",
		 .tha = MAC_D1,
		 .tip = "10.3.1.10"},
	 .to_port = L_D1},
	{"ARP for an address of another subnet: no event", FROM_EP, L_D1,
	 .in = D1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .dst = "10.3.2.99"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_ARP_UNKNOWN},
	{"push mode: ARP for an unknown address, no event", FROM_EP, L_A1,
	 .in = {.smac = MAC_A1,
		.src = "10.0.1.10",
		.dmac = MAC_BCAST,
		.l3 = PKT_ARP,
		.dst = "10.0.1.99"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_ARP_UNKNOWN},

	/* ---- sending node: learned entries ---- */
	{"learned entry: direct VXLAN to its node, hit counted", FROM_EP, L_D1,
	 .pre = LEARNED("10.3.1.50", MEMBER5, 301, MAC_X, 0),
	 .in = D1_TO(.dmac = MAC_X, .dst = "10.3.1.50", .payload = 30),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_ENCAP, .check_out = true,
	 .out_outer = ENCAP(.dst = MEMBER5, .vni = 301),
	 .out = D1_TO(.dmac = MAC_X, .dst = "10.3.1.50", .payload = 30),
	 .post = LEARNED("10.3.1.50", MEMBER5, 301, MAC_X, 0, .hits = 1,
			 .touched = true)},
	{"learned entry: a destination MAC not its own is refused", FROM_EP,
	 L_D1, .pre = LEARNED("10.3.1.50", MEMBER5, 301, MAC_X, 0),
	 .in = D1_TO(.dmac = MAC_EVIL, .dst = "10.3.1.50"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_DST_MAC},
	{"NOMAC learned entry: switched without a MAC check", FROM_EP, L_D1,
	 .pre = LEARNED("10.3.1.51", MEMBER5, 301, NULL, XVPC_EP_NOMAC),
	 .in = D1_TO(.dmac = MAC_EVIL, .dst = "10.3.1.51"),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_ENCAP, .check_out = true,
	 .out_outer = ENCAP(.dst = MEMBER5, .vni = 301),
	 .out = D1_TO(.dmac = MAC_EVIL, .dst = "10.3.1.51"),
	 .post = LEARNED("10.3.1.51", MEMBER5, 301, NULL, XVPC_EP_NOMAC,
			 .hits = 1, .touched = true)},
	{"routed to a NOMAC learned entry: VNI of its subnet", FROM_EP, L_D1,
	 .pre = LEARNED("10.3.2.51", MEMBER5, 302, NULL, XVPC_EP_NOMAC),
	 .in = D1_TO(.dmac = MAC_GW, .dst = "10.3.2.51", .ttl = 9),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_ENCAP,
	 .stat2 = XVPC_STAT_ROUTED, .check_out = true,
	 .out_outer = ENCAP(.dst = MEMBER5, .vni = 302),
	 .out = {.smac = MAC_GW2,
		 .dmac = MAC_ZERO,
		 .src = "10.3.1.10",
		 .dst = "10.3.2.51",
		 .ttl = 8}},

	/* ---- receiving node: reverse learning ---- */
	{"reverse learning installs the source: node, VNI, MAC", DECAP, L_UL,
	 .in_outer = VXF(MEMBER5, 0, .vni = 301), .in = X_TO_D1(),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_DECAP,
	 .stat2 = XVPC_STAT_LEARN, .check_out = true, .out = X_TO_D1(),
	 .to_port = L_D1,
	 .post = LEARNED("10.3.1.50", MEMBER5, 301, MAC_X, 0, .touched = true)},
	{"routed packet learns NOMAC; the inner destination MAC is set", DECAP,
	 L_UL, .in_outer = VXF(MEMBER5, 0, .vni = 301),
	 .in = {.smac = MAC_GW,
		.dmac = MAC_GW,
		.src = "10.3.2.50",
		.dst = "10.3.1.10"},
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_DECAP,
	 .stat2 = XVPC_STAT_LEARN, .check_out = true,
	 .out = {.smac = MAC_GW,
		 .dmac = MAC_D1,
		 .src = "10.3.2.50",
		 .dst = "10.3.1.10"},
	 .to_port = L_D1,
	 .post = LEARNED("10.3.2.50", MEMBER5, 302, NULL, XVPC_EP_NOMAC,
			 .touched = true)},
	{"routed packet keeps a MAC already known", DECAP, L_UL,
	 .pre = LEARNED("10.3.2.50", MEMBER5, 302, MAC_X, XVPC_EP_RESOLVED),
	 .in_outer = VXF(MEMBER5, 0, .vni = 301),
	 .in = {.smac = MAC_GW,
		.dmac = MAC_D1,
		.src = "10.3.2.50",
		.dst = "10.3.1.10"},
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_DECAP, .no_learn = true,
	 .post = LEARNED("10.3.2.50", MEMBER5, 302, MAC_X, XVPC_EP_RESOLVED,
			 .touched = true)},
	{"a moved source is learned again at its new node", DECAP, L_UL,
	 .pre = LEARNED("10.3.1.50", MEMBER6, 301, MAC_X, XVPC_EP_RESOLVED),
	 .in_outer = VXF(MEMBER5, 0, .vni = 301), .in = X_TO_D1(),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_DECAP,
	 .stat2 = XVPC_STAT_LEARN,
	 .post = LEARNED("10.3.1.50", MEMBER5, 301, MAC_X, 0, .touched = true)},
	{"a known source is refreshed, nothing counted", DECAP, L_UL,
	 .pre = LEARNED("10.3.1.50", MEMBER5, 301, MAC_X, 0),
	 .in_outer = VXF(MEMBER5, 0, .vni = 301), .in = X_TO_D1(),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_DECAP, .no_learn = true,
	 .post = LEARNED("10.3.1.50", MEMBER5, 301, MAC_X, 0, .touched = true)},
	{"a non-member teaches nothing", DECAP, L_UL,
	 .in_outer = VXF(STRANGE, 0, .vni = 301), .in = X_TO_D1(),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NOT_MEMBER,
	 .post = {.vpc = 3, .ip = "10.3.1.50", .absent = true}},
	{"a packet claiming to come from this node teaches nothing", DECAP,
	 L_UL, .in_outer = VXF(NODE, 0, .vni = 301), .in = X_TO_D1(),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NOT_MEMBER,
	 .post = {.vpc = 3, .ip = "10.3.1.50", .absent = true}},
	{"an inner source in a foreign VPC's subnet learns nothing", DECAP,
	 L_UL, .in_outer = VXF(MEMBER5, 0, .vni = 301),
	 .in = INNER(MAC_X, "10.0.2.50", MAC_D1, "10.3.1.10"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_INNER_SPOOF,
	 .post = {.vpc = 3, .ip = "10.0.2.50", .absent = true}},
	{"the VNI of a push-mode VPC learns nothing", DECAP, L_UL,
	 .in_outer = VXF(MEMBER5, 0, .vni = 101),
	 .in = {.smac = MAC_X,
		.src = "10.0.1.50",
		.dmac = MAC_A1,
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_INNER_SPOOF,
	 .post = {.vpc = 1, .ip = "10.0.1.50", .absent = true}},
	{"a pushed source is never learned over", DECAP, L_UL,
	 .in_outer = VXF(MEMBER5, 0, .vni = 301),
	 .in = INNER(MAC_D2, "10.3.1.20", MAC_D1, "10.3.1.10"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_INNER_SPOOF,
	 .post = {.vpc = 3, .ip = "10.3.1.20", .absent = true}},

	/* ---- receiving node: relay and forward flags ---- */
	{"RELAY from a non-member is dropped", DECAP, L_UL,
	 .in_outer = VXF(STRANGE, F_RELAY, .vni = 301), .in = X_TO_D1(),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NOT_MEMBER},
	{"FWD from a non-member is dropped", DECAP, L_UL,
	 .in_outer = VXF(STRANGE, F_FWD, .vni = 301), .in = X_TO_D1(),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NOT_MEMBER},
	{"RELAY and FWD together are refused", DECAP, L_UL,
	 .in_outer = VXF(GW3, F_RELAY | F_FWD, .vni = 301), .in = X_TO_D1(),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_VXLAN_FLAGS},
	{"another reserved flag is refused", DECAP, L_UL,
	 .in_outer = VXF(GW3, F_I | 0x00100000, .vni = 301), .in = X_TO_D1(),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_VXLAN_FLAGS},
	{"FWD from a gateway is delivered and teaches nothing", DECAP, L_UL,
	 .in_outer = VXF(GW3, F_FWD, .vni = 301), .in = X_TO_D1(),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_DECAP, .no_learn = true,
	 .to_port = L_D1,
	 .post = {.vpc = 3, .ip = "10.3.1.50", .absent = true}},
	{"FWD with a source outside the VPC is dropped", DECAP, L_UL,
	 .in_outer = VXF(GW3, F_FWD, .vni = 301),
	 .in = INNER(MAC_X, "10.0.2.50", MAC_D1, "10.3.1.10"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_INNER_SPOOF},
	{"FWD for a destination not here is dropped (no loops)", DECAP, L_UL,
	 .in_outer = VXF(GW3, F_FWD, .vni = 301),
	 .in = INNER(MAC_X, "10.3.1.50", MAC_X, "10.3.1.99"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NOT_LOCAL},
	{"a gateway never forwards a FWD packet again", DECAP, L_UL,
	 .in_outer = VXF(GW3, F_FWD, .vni = 401),
	 .in = {.smac = MAC_G3,
		.src = "10.4.1.30",
		.dmac = MAC_G2,
		.dst = "10.4.1.20"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NOT_LOCAL},

	/* ---- gateway forward ---- */
	{"gateway forwards to the destination's node with FWD", DECAP, L_UL,
	 .in_outer = VXF(MEMBER5, 0, .vni = 401),
	 .in = {.smac = MAC_G3,
		.src = "10.4.1.30",
		.dmac = MAC_GW,
		.dst = "10.4.1.20",
		.payload = 40},
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_FORWARD,
	 .no_learn = true, .check_out = true, .out_fwd = true,
	 .out_outer = FWDOUT(PEER_NODE, F_FWD, .vni = 401),
	 .out = {.smac = MAC_G3,
		 .src = "10.4.1.30",
		 .dmac = MAC_G2,
		 .dst = "10.4.1.20",
		 .payload = 40}},
	{"gateway forwards a relayed packet with FWD", DECAP, L_UL,
	 .in_outer = VXF(MEMBER6, F_RELAY, .vni = 401),
	 .in = {.smac = MAC_G3,
		.src = "10.4.1.30",
		.dmac = MAC_G2,
		.dst = "10.4.1.20"},
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_FORWARD,
	 .check_out = true, .out_fwd = true,
	 .out_outer = FWDOUT(PEER_NODE, F_FWD, .vni = 401),
	 .out = {.smac = MAC_G3,
		 .src = "10.4.1.30",
		 .dmac = MAC_G2,
		 .dst = "10.4.1.20"}},
	{"gateway: a source its node does not host is not forwarded", DECAP,
	 L_UL, .in_outer = VXF(MEMBER6, 0, .vni = 401),
	 .in = {.smac = MAC_G3,
		.src = "10.4.1.30",
		.dmac = MAC_G2,
		.dst = "10.4.1.20"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_INNER_SPOOF},
	{"gateway: an unknown destination is dropped, not relayed", DECAP, L_UL,
	 .in_outer = VXF(MEMBER5, 0, .vni = 401),
	 .in = {.smac = MAC_G3,
		.src = "10.4.1.30",
		.dmac = MAC_GW,
		.dst = "10.4.1.99"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NOT_LOCAL},
	{"gateway, XDP: no neighbour toward the node: drop_encap", XDP_ONLY,
	 L_UL, .in_outer = VXF(MEMBER5, 0, .vni = 401),
	 .in = {.smac = MAC_G3,
		.src = "10.4.1.30",
		.dmac = MAC_G4,
		.dst = "10.4.1.40"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_ENCAP},

	/* ---- stale relay ---- */
	{"stale: not here any more, relayed to a gateway with RELAY", DECAP,
	 L_UL, .in_outer = VXF(MEMBER5, 0, .vni = 301),
	 .in = INNER(MAC_X, "10.3.1.50", MAC_X, "10.3.1.99", .payload = 10),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_RELAY,
	 .stat2 = XVPC_STAT_LEARN, .check_out = true, .out_fwd = true,
	 /* 50000 % 2 == 0: the first gateway */
	 .out_outer = FWDOUT(GW3, F_RELAY, .vni = 301),
	 .out = INNER(MAC_X, "10.3.1.50", MAC_X, "10.3.1.99", .payload = 10),
	 .post = LEARNED("10.3.1.50", MEMBER5, 301, MAC_X, 0, .touched = true)},
	{"a relayed packet is not relayed again", DECAP, L_UL,
	 .in_outer = VXF(GW3, F_RELAY, .vni = 301),
	 .in = INNER(MAC_X, "10.3.1.50", MAC_X, "10.3.1.99"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NOT_LOCAL},
	{"stale from a non-member is not relayed", DECAP, L_UL,
	 .in_outer = VXF(STRANGE, 0, .vni = 301),
	 .in = INNER(MAC_X, "10.3.1.50", MAC_X, "10.3.1.99"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NOT_MEMBER},
	{"stale with no gateway known: drop_no_gateway", DECAP, L_UL,
	 .in_outer = VXF(MEMBER5, 0, .vni = 501),
	 .in = {.smac = MAC_X,
		.src = "10.5.1.50",
		.dmac = MAC_X,
		.dst = "10.5.1.99"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NO_GATEWAY},
	{"push mode: not local is dropped, never relayed", DECAP, L_UL,
	 .in_outer = VXF(PEER_NODE, 0, .vni = 101),
	 .in = {.smac = MAC_A2,
		.src = "10.0.1.20",
		.dmac = MAC_X,
		.dst = "10.0.1.99"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NOT_LOCAL},
};

/* ---- miss events, read from the perf buffer ---- */

static struct perf_buffer *pb;
static int n_events;
static struct xvpc_event last_event;

static void on_event(void *ctx, int cpu, void *data, __u32 size)
{
	(void)ctx;
	(void)cpu;
	if (size >= sizeof(last_event))
		memcpy(&last_event, data, sizeof(last_event));
	n_events++;
}

/* What the kernel wrote is in the ring when the program returns, so
 * consume (no epoll, no wake-up) sees all of it. */
static int drain_events(void)
{
	n_events = 0;
	return perf_buffer__consume(pb);
}

/* ---- learned entries ---- */

static int learned_put(const struct lentry *e)
{
	struct xvpc_ep_key k = {.vpc_id = e->vpc, .ip = pkt_ip(e->ip)};
	struct xvpc_learned v = {
		.ep = {.flags = e->flags,
		       .node_ip = pkt_ip(e->node),
		       .vni = e->vni},
		.created_ns = 1,
	};

	if (e->mac)
		memcpy(v.ep.mac, e->mac, 6);
	if (bpf_map_update_elem(xvpc_dp_map_fd(dp, XVPC_M_LEARNED), &k, &v, 0))
		return -errno;
	return 0;
}

static bool learned_check(const struct lentry *e)
{
	struct xvpc_ep_key k = {.vpc_id = e->vpc, .ip = pkt_ip(e->ip)};
	static const __u8 zero[6];
	struct xvpc_learned v = {};
	bool found = !bpf_map_lookup_elem(xvpc_dp_map_fd(dp, XVPC_M_LEARNED),
					  &k, &v);

	if (e->absent) {
		if (found)
			fprintf(stderr, "  learned %s although it must not\n",
				e->ip);
		return !found;
	}
	if (!found) {
		fprintf(stderr, "  %s not learned\n", e->ip);
		return false;
	}
	if (v.ep.node_ip != pkt_ip(e->node) || v.ep.vni != e->vni ||
	    v.ep.flags != e->flags || v.ep.ifindex ||
	    memcmp(v.ep.mac, e->mac ? e->mac : zero, 6) || v.hits != e->hits ||
	    !v.created_ns || (e->touched && !v.last_ns)) {
		char node[INET_ADDRSTRLEN] = "?";

		inet_ntop(AF_INET, &v.ep.node_ip, node, sizeof(node));
		fprintf(stderr,
			"  learned %s: node %s vni %u flags %#x mac "
			"%02x:%02x:%02x:%02x:%02x:%02x hits %llu created %llu "
			"last %llu\n",
			e->ip, node, v.ep.vni, v.ep.flags, v.ep.mac[0],
			v.ep.mac[1], v.ep.mac[2], v.ep.mac[3], v.ep.mac[4],
			v.ep.mac[5], (unsigned long long)v.hits,
			(unsigned long long)v.created_ns,
			(unsigned long long)v.last_ns);
		return false;
	}
	return true;
}

/* ---- the runner ---- */

static __u64 lport_tx(enum lport p)
{
	int cpus = libbpf_num_possible_cpus();
	struct xvpc_ep_stats v[cpus];
	__u32 key = lifidx[p];
	__u64 sum = 0;

	if (bpf_map_lookup_elem(xvpc_dp_map_fd(dp, XVPC_M_EP_STATS), &key, v))
		return 0;
	for (int i = 0; i < cpus; i++)
		sum += v[i].tx_packets;
	return sum;
}

static int run_verdict(const struct learn_case *c, enum run r)
{
	if (r != RUN_XDP)
		return c->verdict;
	return c->verdict == TC_ACT_REDIRECT ? XDP_REDIRECT
	       : c->verdict == TC_ACT_OK     ? XDP_PASS
					     : XDP_DROP;
}

/* The expected output: a miss may go to either gateway of VPC 3; XDP
 * forwarding writes the outer MACs from the FIB (neighbour MAC_PEER, our
 * MAC_NODE), tc leaves them to bpf_redirect_neigh(). */
static size_t build_want(const struct learn_case *c, enum run r,
			 const __u8 *out, size_t out_len, __u8 *want)
{
	struct pkt_outer o = c->out_outer;
	char gw[INET_ADDRSTRLEN] = "";

	if (c->out_any_gw && out_len >= 34) {
		inet_ntop(AF_INET, out + 30, gw, sizeof(gw));
		if (!strcmp(gw, GW3) || !strcmp(gw, GW4))
			o.dst = gw;
		else
			fprintf(stderr,
				"  outer destination %s is no gateway\n", gw);
	}
	if (c->out_fwd && r == RUN_XDP) {
		o.dmac = MAC_PEER;
		o.smac = MAC_NODE;
	}
	return pkt_build(want, &o, &c->out);
}

static bool check_output(const struct learn_case *c, enum run r, __u8 *out,
			 size_t out_len)
{
	__u8 want[PKT_MAX];
	size_t wlen = build_want(c, r, out, out_len, want);

	/* Encapsulated here: the outer source port is the flow hash. */
	if (c->prog == FROM_EP && c->out_outer.on && out_len >= 36) {
		if ((out[34] << 8 | out[35]) < 49152) {
			fprintf(stderr, "  source port out of range\n");
			return false;
		}
		want[34] = out[34];
		want[35] = out[35];
	}
	if (out_len != wlen || memcmp(out, want, wlen)) {
		pkt_hexdump("got", out, out_len);
		pkt_hexdump("want", want, wlen);
		return false;
	}
	return true;
}

static int prepare(const struct learn_case *c)
{
	flush_map(XVPC_M_LEARNED, sizeof(struct xvpc_ep_key));
	flush_map(XVPC_M_MISS_RL, sizeof(struct xvpc_ep_key));
	if (drain_events() < 0)
		return -EIO;
	return c->pre.ip ? learned_put(&c->pre) : 0;
}

static int test_run(const struct learn_case *c, enum run r, __u8 *out,
		    __u32 *out_len, __u32 *retval, __u32 *reason)
{
	__u8 in[PKT_MAX];
	size_t len = pkt_build(in, &c->in_outer, &c->in);
	struct __sk_buff skb = {.ifindex = lifidx[c->in_port]}, skb_out = {};
	struct xdp_md xdp = {.data_end = len, .ingress_ifindex = lifidx[L_UL]};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len,
		    .data_out = out, .data_size_out = *out_len, .repeat = 1);
	int fd, err;

	if (r == RUN_XDP) {
		o.ctx_in = &xdp;
		o.ctx_size_in = sizeof(xdp);
	} else {
		o.ctx_in = &skb;
		o.ctx_size_in = sizeof(skb);
		o.ctx_out = &skb_out;
		o.ctx_size_out = sizeof(skb_out);
	}
	fd = xvpc_dp_prog_fd(dp, r == RUN_EP   ? XVPC_P_FROM_EP
				 : r == RUN_TC ? XVPC_P_TC_DECAP
					       : XVPC_P_XDP_DECAP);
	err = bpf_prog_test_run_opts(fd, &o);
	if (err) {
		fprintf(stderr, "  test run failed: %s\n", strerror(-err));
		return err;
	}
	*out_len = o.data_size_out;
	*retval = o.retval;
	*reason = r == RUN_XDP ? c->stat : skb_out.cb[0];
	return 0;
}

static bool check_counters(const struct learn_case *c, const __u64 *before)
{
	bool ok = true;

	if (stat_pkts(c->stat) != before[0] + 1) {
		fprintf(stderr, "  counter %s did not grow by one\n",
			xvpc_stat_name(c->stat));
		ok = false;
	}
	if (c->stat2 && stat_pkts(c->stat2) != before[1] + 1) {
		fprintf(stderr, "  counter %s did not grow by one\n",
			xvpc_stat_name(c->stat2));
		ok = false;
	}
	if (c->no_learn && stat_pkts(XVPC_STAT_LEARN) != before[2]) {
		fprintf(stderr, "  counter learned grew\n");
		ok = false;
	}
	return ok;
}

static bool check_events(const struct learn_case *c)
{
	if (perf_buffer__consume(pb) < 0) {
		fprintf(stderr, "  cannot read the perf buffer\n");
		return false;
	}
	if (n_events != c->events) {
		fprintf(stderr, "  %d miss events, want %d\n", n_events,
			c->events);
		return false;
	}
	if (c->events && (last_event.type != XVPC_EV_MISS ||
			  last_event.reason != c->ev_reason ||
			  last_event.dst_ip != pkt_ip(c->in.dst))) {
		fprintf(stderr, "  event: type %u reason %u\n", last_event.type,
			last_event.reason);
		return false;
	}
	return true;
}

static int run_case(const struct learn_case *c, enum run r)
{
	__u8 out[PKT_MAX + 128];
	__u32 out_len = sizeof(out), retval, reason;
	__u64 before[3], tx;
	bool ok = true;

	if (prepare(c)) {
		fprintf(stderr, "  cannot prepare the maps\n");
		return -1;
	}
	before[0] = stat_pkts(c->stat);
	before[1] = stat_pkts(c->stat2);
	before[2] = stat_pkts(XVPC_STAT_LEARN);
	tx = c->to_port ? lport_tx(c->to_port) : 0;
	if (test_run(c, r, out, &out_len, &retval, &reason))
		return -1;
	if ((int)retval != run_verdict(c, r)) {
		fprintf(stderr, "  verdict %u, want %d\n", retval,
			run_verdict(c, r));
		ok = false;
	}
	if (c->verdict == TC_ACT_SHOT && reason != c->stat) {
		fprintf(stderr, "  reason in cb[0] is %u\n", reason);
		ok = false;
	}
	ok &= check_counters(c, before);
	ok &= check_events(c);
	if (c->to_port && lport_tx(c->to_port) != tx + 1) {
		fprintf(stderr, "  not delivered to port %s\n",
			lport_names[c->to_port]);
		ok = false;
	}
	if (c->check_out)
		ok &= check_output(c, r, out, out_len);
	if (c->post.ip)
		ok &= learned_check(&c->post);
	return ok ? 0 : -1;
}

/* The rate limit: a second miss to the same destination within
 * XVPC_MISS_INTERVAL_NS emits no event. Deterministic whatever the
 * machine's load: a pair of runs that took longer than the interval proves
 * nothing and is tried again with another destination. */
static int rate_limit_case(void)
{
	struct learn_case c = {
		.prog = FROM_EP,
		.in_port = L_D1,
		.in = D1_TO(.dmac = MAC_X, .dst = "10.3.1.98"),
		.verdict = TC_ACT_REDIRECT,
	};
	__u8 out[PKT_MAX + 128];
	__u32 out_len, retval, reason;
	struct timespec t0, t1;

	for (int attempt = 0; attempt < 5; attempt++) {
		int first, second;

		if (prepare(&c))
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		out_len = sizeof(out);
		if (test_run(&c, RUN_EP, out, &out_len, &retval, &reason))
			return -1;
		perf_buffer__consume(pb);
		first = n_events;
		out_len = sizeof(out);
		if (test_run(&c, RUN_EP, out, &out_len, &retval, &reason))
			return -1;
		perf_buffer__consume(pb);
		second = n_events - first;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((__u64)(t1.tv_sec - t0.tv_sec) * 1000000000ull +
			    t1.tv_nsec - t0.tv_nsec >=
		    XVPC_MISS_INTERVAL_NS)
			continue;
		if (first != 1 || second != 0 || retval != TC_ACT_REDIRECT) {
			fprintf(stderr, "  events %d then %d, verdict %u\n",
				first, second, retval);
			return -1;
		}
		return 0;
	}
	fprintf(stderr, "  the machine is too slow to see the limit\n");
	return -1;
}

/* ---- set-up ---- */

static int make_learn_ports(void)
{
	char cmd[160];

	for (int p = L_D1; p <= L_H1; p++) {
		snprintf(cmd, sizeof(cmd),
			 "ip link add %s type veth peer name %s.p && "
			 "ip link set %s up",
			 lport_names[p], lport_names[p], lport_names[p]);
		if (sh(cmd))
			return -EIO;
	}
	for (int p = 1; p < L__MAX; p++)
		lifidx[p] = xvpc_ifindex(lport_names[p]);
	return sh("ip link set ul address 02:00:00:00:00:ff && "
		  "for n in 2 3 4 5 6; do ip neigh replace 192.168.1.$n "
		  "lladdr 02:00:00:00:00:fe dev ul nud permanent || exit 1; "
		  "done && sysctl -qw net.ipv4.conf.ul.forwarding=1");
}

static int set_gw_mac(__u32 vpc, const char *cidr, const __u8 *mac)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_SUBNETS);
	struct xvpc_subnet_key k = {.vpc_id = vpc};
	struct xvpc_subnet v;
	__u8 plen;

	if (xvpc_parse_cidr(cidr, &k.addr, &plen))
		return -EINVAL;
	k.prefixlen = 32 + plen;
	if (bpf_map_lookup_elem(fd, &k, &v))
		return -errno;
	memcpy(v.gw_mac, mac, 6);
	return bpf_map_update_elem(fd, &k, &v, 0) ? -errno : 0;
}

static int setup_learn(void)
{
	const char *members[] = {NODE, PEER_NODE, GW3, GW4, MEMBER5, MEMBER6};
	int err = make_learn_ports();

	if (err)
		return err;
	for (size_t i = 0; i < sizeof(members) / sizeof(*members); i++) {
		err = add_member(members[i]);
		if (err)
			return err;
	}
	return set_learn_vpc(3, GW3, GW4) ?: set_learn_vpc(4, NODE, GW3) ?:
	       set_learn_vpc(5, NULL, NULL) ?:
	       add_subnet(3, "10.3.1.0/24", 301, "10.3.1.1") ?:
	       add_subnet(3, "10.3.2.0/24", 302, "10.3.2.1") ?:
	       set_gw_mac(3, "10.3.2.0/24", MAC_GW2) ?:
	       add_subnet(4, "10.4.1.0/24", 401, "10.4.1.1") ?:
	       add_subnet(5, "10.5.1.0/24", 501, "10.5.1.1") ?:
	       add_ep_at(3, "10.3.1.10", MAC_D1, 301, lifidx[L_D1], NULL) ?:
	       add_ep_at(3, "10.3.1.20", MAC_D2, 301, 0, PEER_NODE) ?:
	       add_ep_at(3, "10.3.2.10", MAC_E1, 302, lifidx[L_E1], NULL) ?:
	       add_ep_at(4, "10.4.1.10", MAC_G1, 401, lifidx[L_G1], NULL) ?:
	       add_ep_at(4, "10.4.1.20", MAC_G2, 401, 0, PEER_NODE) ?:
	       add_ep_at(4, "10.4.1.30", MAC_G3, 401, 0, MEMBER5) ?:
	       add_ep_at(4, "10.4.1.40", MAC_G4, 401, 0, "10.99.0.1") ?:
	       add_ep_at(5, "10.5.1.10", MAC_H1, 501, lifidx[L_H1], NULL);
}

static const char *run_label[] = {"tc ep", "tc ul", "xdp ul"};

int main(void)
{
	int pass = 0, fail = 0, rc;

	xvpc_log_set_ident("test_learn");
	xvpc_log_hook_libs();
	if (setup() || setup_learn()) {
		fprintf(stderr, "setup failed\n");
		xvpc_dp_close(dp);
		return 1;
	}
	pb = perf_buffer__new(xvpc_dp_map_fd(dp, XVPC_M_EVENTS), 8, on_event,
			      NULL, NULL, NULL);
	if (!pb) {
		fprintf(stderr, "cannot open the perf buffer: %s\n",
			strerror(errno));
		xvpc_dp_close(dp);
		return 1;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const struct learn_case *c = &cases[i];
		enum run first = c->prog == FROM_EP ? RUN_EP
				 : c->prog == DECAP ? RUN_TC
						    : RUN_XDP;
		enum run last = c->prog == FROM_EP ? RUN_EP : RUN_XDP;

		for (enum run r = first; r <= last; r++) {
			rc = run_case(c, r);
			printf("%s [%s] %s\n", rc ? "FAIL" : "ok  ",
			       run_label[r], c->desc);
			rc ? fail++ : pass++;
		}
	}
	rc = rate_limit_case();
	printf("%s [tc ep] a second miss within the rate limit emits no "
	       "event\n",
	       rc ? "FAIL" : "ok  ");
	rc ? fail++ : pass++;
	perf_buffer__free(pb);
	xvpc_dp_close(dp);
	printf("test_learn: %d passed, %d failed\n", pass, fail);
	return fail ? 1 : 0;
}
