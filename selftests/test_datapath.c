// SPDX-License-Identifier: GPL-2.0-only
/*
 * Table-driven packet tests of the datapath through BPF_PROG_TEST_RUN:
 * {description, program, ingress interface, input frame, expected verdict,
 * expected counter, expected output frame, expected receiving endpoint}.
 *
 * The topology is in fixture.h.
 *
 *   VPC 1                              VPC 2 (same CIDRs)
 *   A 10.0.1.0/24 vni 101              A 10.0.1.0/24 vni 201
 *     a1 .10 local (port "a1")           c1 .10 local (port "c1")
 *     a2 .20 on node 192.168.1.2         c2 .30 on node 192.168.1.2
 *     a3 .40 local (port "a3")
 *   B 10.0.2.0/24 vni 102
 *     b1 .10 local (port "b1")
 *     b2 .20 on node 192.168.1.2
 *   this node 192.168.1.1 on underlay "ul" (MTU 1500)
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "log.h"
#include "netutil.h"
#include "pktbuild.h"

#include "fixture.h"

enum which { FROM_EP, TC_DECAP, XDP_DECAP };

struct pkt_case {
	const char *desc;
	enum which prog;
	enum port in_port; /* FROM_EP: the sending endpoint's port */
	struct pkt_outer in_outer;
	struct pkt_inner in;
	int truncate; /* >0: cut the input to this many bytes */
	int verdict;
	unsigned int stat; /* counter that must grow by one */
	bool check_out;
	struct pkt_outer out_outer;
	struct pkt_inner out;
	enum port to_port; /* endpoint whose tx counter must grow */
};

#define VX(...)                                                 \
	{                                                       \
		.on = true, .dmac = MAC_NODE, .smac = MAC_PEER, \
		.src = PEER_NODE, .dst = NODE, __VA_ARGS__      \
	}
#define ENCAP(...)                                                           \
	{                                                                    \
		.on = true, .dmac = MAC_ZERO, .smac = MAC_NODE, .src = NODE, \
		.frag = DF, __VA_ARGS__                                      \
	}
#define A1_TO(...)                                              \
	{                                                       \
		.smac = MAC_A1, .src = "10.0.1.10", __VA_ARGS__ \
	}

static const struct pkt_case cases[] = {
	/* ---- ARP responder ---- */
	{"ARP for the gateway is answered with the gateway MAC", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .dst = "10.0.1.1"),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_ARP_REPLY,
	 .check_out = true,
	 .out = {.dmac = MAC_A1,
		 .smac = MAC_GW,
		 .l3 = PKT_ARP,
		 .arp_op = 2,
		 .sha = MAC_GW,
		 .sip = "10.0.1.1",
		 .tha = MAC_A1,
		 .tip = "10.0.1.10"},
	 .to_port = P_A1},
	{"ARP for a remote endpoint of the subnet is answered", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .dst = "10.0.1.20"),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_ARP_REPLY,
	 .check_out = true,
	 .out = {.dmac = MAC_A1,
		 .smac = MAC_A2,
		 .l3 = PKT_ARP,
		 .arp_op = 2,
		 .sha = MAC_A2,
		 .sip = "10.0.1.20",
		 .tha = MAC_A1,
		 .tip = "10.0.1.10"},
	 .to_port = P_A1},
	{"ARP for an unknown address of the subnet is dropped", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .dst = "10.0.1.99"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_ARP_UNKNOWN},
	{"ARP for an endpoint of another subnet is not answered", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .dst = "10.0.2.10"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_ARP_UNKNOWN},
	{"ARP for an address only another VPC has is not answered", FROM_EP,
	 P_A1,
	 .in = A1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .dst = "10.0.1.30"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_ARP_UNKNOWN},
	{"ARP probe for its own address gets no answer", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .sip = "0.0.0.0",
		     .dst = "10.0.1.10"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_ARP_OTHER},
	{"ARP reply from an endpoint is dropped", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .arp_op = 2,
		     .dst = "10.0.1.20"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_ARP_OTHER},
	{"ARP with a spoofed sender IP is dropped", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .sip = "10.0.1.20",
		     .dst = "10.0.1.1"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_SPOOF_IP},
	{"ARP with a spoofed sender MAC is dropped", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .sha = MAC_EVIL,
		     .dst = "10.0.1.1"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_SPOOF_MAC},
	{"ARP truncated in its body is dropped", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .dst = "10.0.1.1"),
	 .truncate = 14 + 20, .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_MALFORMED},

	/* ---- switching within a subnet ---- */
	{"same subnet, local peer: redirected unchanged", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_A3, .dst = "10.0.1.40", .proto = 6,
		     .payload = 40),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_LOCAL, .check_out = true,
	 .out = A1_TO(.dmac = MAC_A3, .dst = "10.0.1.40", .proto = 6,
		      .payload = 40),
	 .to_port = P_A3},
	{"same subnet, remote peer: VXLAN with the subnet's VNI", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_A2, .dst = "10.0.1.20", .payload = 64),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_ENCAP, .check_out = true,
	 .out_outer = ENCAP(.dst = PEER_NODE, .vni = 101),
	 .out = A1_TO(.dmac = MAC_A2, .dst = "10.0.1.20", .payload = 64)},
	{"zero-length payload is encapsulated too", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_A2, .dst = "10.0.1.20", .proto = 17),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_ENCAP, .check_out = true,
	 .out_outer = ENCAP(.dst = PEER_NODE, .vni = 101),
	 .out = A1_TO(.dmac = MAC_A2, .dst = "10.0.1.20", .proto = 17)},
	{"IPv4 options and fragments are switched as they are", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_A2, .dst = "10.0.1.20", .opt_words = 2,
		     .frag = 0x2000, .payload = 8),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_ENCAP, .check_out = true,
	 .out_outer = ENCAP(.dst = PEER_NODE, .vni = 101),
	 .out = A1_TO(.dmac = MAC_A2, .dst = "10.0.1.20", .opt_words = 2,
		      .frag = 0x2000, .payload = 8)},
	{"a frame larger than the underlay allows is dropped", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_A2, .dst = "10.0.1.20", .payload = 1460),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_TOO_BIG},
	{"a frame of exactly the endpoint MTU fits", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_A2, .dst = "10.0.1.20", .payload = 1430),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_ENCAP},
	{"destination MAC that is not the peer's is dropped", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_B2, .dst = "10.0.1.20"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_DST_MAC},
	{"L2 straight into another subnet is refused", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_B1, .dst = "10.0.2.10"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_DST_MAC},

	/* ---- distributed router ---- */
	{"routed to a local endpoint: TTL-1, gateway MAC as source", FROM_EP,
	 P_A1, .in = A1_TO(.dmac = MAC_GW, .dst = "10.0.2.10", .ttl = 64),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_ROUTED,
	 .check_out = true,
	 .out = {.dmac = MAC_B1,
		 .smac = MAC_GW,
		 .src = "10.0.1.10",
		 .dst = "10.0.2.10",
		 .ttl = 63},
	 .to_port = P_B1},
	{"routed to a remote endpoint: VNI of the destination subnet", FROM_EP,
	 P_A1,
	 .in = A1_TO(.dmac = MAC_GW, .dst = "10.0.2.20", .ttl = 9,
		     .payload = 32),
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_ROUTED,
	 .check_out = true, .out_outer = ENCAP(.dst = PEER_NODE, .vni = 102),
	 .out = {.dmac = MAC_B2,
		 .smac = MAC_GW,
		 .src = "10.0.1.10",
		 .dst = "10.0.2.20",
		 .ttl = 8,
		 .payload = 32}},
	{"TTL 1 expires at the router", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_GW, .dst = "10.0.2.20", .ttl = 1),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_TTL},
	{"routed to an unknown address of a subnet: miss", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_GW, .dst = "10.0.2.99"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NO_ENDPOINT},
	{"routed outside every subnet of the VPC", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_GW, .dst = "8.8.8.8"), .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_NO_SUBNET},

	/* ---- isolation between VPCs with the same CIDRs ---- */
	{"VPC 2 reaches its own 10.0.1.30", FROM_EP, P_C1,
	 .in = {.smac = MAC_C1,
		.src = "10.0.1.10",
		.dmac = MAC_C2,
		.dst = "10.0.1.30"},
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_ENCAP, .check_out = true,
	 .out_outer = ENCAP(.dst = PEER_NODE, .vni = 201),
	 .out = {.smac = MAC_C1,
		 .src = "10.0.1.10",
		 .dmac = MAC_C2,
		 .dst = "10.0.1.30"}},
	{"VPC 1 cannot reach 10.0.1.30, which only VPC 2 has", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_C2, .dst = "10.0.1.30"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NO_ENDPOINT},
	{"VPC 2 cannot route into VPC 1's subnet B", FROM_EP, P_C1,
	 .in = {.smac = MAC_C1,
		.src = "10.0.1.10",
		.dmac = MAC_GW,
		.dst = "10.0.2.10"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NO_SUBNET},

	/* ---- what an endpoint may not send ---- */
	{"spoofed source MAC", FROM_EP, P_A1,
	 .in = {.smac = MAC_EVIL,
		.src = "10.0.1.10",
		.dmac = MAC_A2,
		.dst = "10.0.1.20"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_SPOOF_MAC},
	{"spoofed source IP", FROM_EP, P_A1,
	 .in = {.smac = MAC_A1,
		.src = "10.0.1.11",
		.dmac = MAC_A2,
		.dst = "10.0.1.20"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_SPOOF_IP},
	{"broadcast IPv4 does not flood", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_BCAST, .dst = "10.0.1.255"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_BCAST},
	{"multicast IPv4 does not flood", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_MCAST, .dst = "224.0.0.1"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_BCAST},
	{"IPv6 is dropped (IPv4 only, see docs/datapath.md)", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_A2, .l3 = PKT_IPV6, .payload = 8),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_UNSUPP_L3},
	{"VLAN-tagged frame is dropped", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_A2, .l3 = PKT_VLAN_IPV4, .dst = "10.0.1.20"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_VLAN},
	/* The kernel's test harness refuses IPv4 frames with less than a
	 * whole IPv4 header, so those truncations are covered through the
	 * decap table (inner header) and the ARP case instead. */
	{"IPv4 header length below 20 bytes", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_A2, .dst = "10.0.1.20", .bad_ihl = 4),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_MALFORMED},
	{"truncated inside IPv4 options", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_A2, .dst = "10.0.1.20", .opt_words = 3),
	 .truncate = 14 + 24, .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_MALFORMED},
	{"ARP with the Ethernet header only", FROM_EP, P_A1,
	 .in = A1_TO(.dmac = MAC_BCAST, .l3 = PKT_ARP, .dst = "10.0.1.1"),
	 .truncate = 14, .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_MALFORMED},
	{"frame on a port with no endpoint", FROM_EP, P_UNBOUND,
	 .in = A1_TO(.dmac = MAC_A2, .dst = "10.0.1.20"),
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NOT_BOUND},

	/* ---- decapsulation (run for tc and XDP) ---- */
	{"VXLAN for a local endpoint is decapsulated", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "10.0.1.20",
		.dst = "10.0.1.10",
		.payload = 100},
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_DECAP, .check_out = true,
	 .out = {.smac = MAC_A2,
		 .dmac = MAC_A1,
		 .src = "10.0.1.20",
		 .dst = "10.0.1.10",
		 .payload = 100},
	 .to_port = P_A1},
	{"routed VXLAN (source in another subnet of the VPC)", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 102),
	 .in = {.smac = MAC_GW,
		.dmac = MAC_B1,
		.src = "10.0.1.20",
		.dst = "10.0.2.10"},
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_DECAP, .check_out = true,
	 .out = {.smac = MAC_GW,
		 .dmac = MAC_B1,
		 .src = "10.0.1.20",
		 .dst = "10.0.2.10"},
	 .to_port = P_B1},
	{"same inner addresses, VNI of VPC 2: delivered to VPC 2 only",
	 TC_DECAP, P_UL, .in_outer = VX(.vni = 201),
	 .in = {.smac = MAC_C2,
		.dmac = MAC_C1,
		.src = "10.0.1.30",
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_REDIRECT, .stat = XVPC_STAT_DECAP, .to_port = P_C1},
	{"TCP to the node itself passes untouched", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101, .proto = 6),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_OK, .stat = XVPC_STAT_PASS},
	{"UDP to another port passes untouched", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101, .dport = 53),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_OK, .stat = XVPC_STAT_PASS},
	{"VXLAN to another address passes untouched", TC_DECAP, P_UL,
	 .in_outer = {.on = true,
		      .dmac = MAC_NODE,
		      .smac = MAC_PEER,
		      .src = PEER_NODE,
		      .dst = "192.168.1.7",
		      .vni = 101},
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_OK, .stat = XVPC_STAT_PASS},
	{"underlay ARP passes untouched", TC_DECAP, P_UL,
	 .in = {.smac = MAC_PEER,
		.dmac = MAC_BCAST,
		.l3 = PKT_ARP,
		.src = PEER_NODE,
		.dst = NODE},
	 .verdict = TC_ACT_OK, .stat = XVPC_STAT_PASS},
	{"underlay IPv6 passes untouched", TC_DECAP, P_UL,
	 .in = {.smac = MAC_PEER, .dmac = MAC_NODE, .l3 = PKT_IPV6},
	 .verdict = TC_ACT_OK, .stat = XVPC_STAT_PASS},
	{"truncated in the VXLAN header", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .truncate = 14 + 20 + 8 + 4, .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_MALFORMED},
	{"truncated in the inner Ethernet header", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .truncate = 50 + 10, .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_MALFORMED},
	{"truncated in the inner IPv4 header", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .truncate = 64 + 12, .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_MALFORMED},
	{"VXLAN without the I flag", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101, .vx_flags = 0x0c000000),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_VXLAN_FLAGS},
	{"VXLAN with reserved bits after the VNI", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101, .vni_low = 1),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_VXLAN_FLAGS},
	{"unknown VNI", TC_DECAP, P_UL, .in_outer = VX(.vni = 999),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_VNI_UNKNOWN},
	{"inner destination hosted elsewhere", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101),
	 .in = {.smac = MAC_A1,
		.dmac = MAC_A2,
		.src = "10.0.1.10",
		.dst = "10.0.1.20"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_NOT_LOCAL},
	{"inner destination of another subnet's VNI", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_B1,
		.src = "10.0.1.20",
		.dst = "10.0.2.10"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_VNI_MISMATCH},
	{"inner source outside the VPC", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "172.16.0.5",
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_INNER_SPOOF},
	{"inner source is a VPC endpoint hosted on another node", TC_DECAP,
	 P_UL,
	 .in_outer = {.on = true,
		      .dmac = MAC_NODE,
		      .smac = MAC_PEER,
		      .src = "192.168.1.9",
		      .dst = NODE,
		      .vni = 101},
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_INNER_SPOOF},
	{"inner destination MAC is not the endpoint's", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_EVIL,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_DST_MAC},
	{"inner ARP never crosses the underlay", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_BCAST,
		.l3 = PKT_ARP,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_INNER_L3},
	{"fragmented outer packet", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101, .frag = 0x2000),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_OUTER_FRAG},
	{"later outer fragment passes to the kernel", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101, .frag = 0x0010),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_OK, .stat = XVPC_STAT_PASS},
	{"outer IPv4 options", TC_DECAP, P_UL,
	 .in_outer = VX(.vni = 101, .opt_words = 1),
	 .in = {.smac = MAC_A2,
		.dmac = MAC_A1,
		.src = "10.0.1.20",
		.dst = "10.0.1.10"},
	 .verdict = TC_ACT_SHOT, .stat = XVPC_DROP_OUTER_FRAG},
};

/* XDP verdicts for the tc ones the table states. */
static int xdp_verdict(int tc)
{
	return tc == TC_ACT_REDIRECT ? XDP_REDIRECT
	       : tc == TC_ACT_OK     ? XDP_PASS
				     : XDP_DROP;
}

static const char *prog_label[] = {"tc ep", "tc ul", "xdp ul"};

static int run_case(const struct pkt_case *c, enum which prog)
{
	__u8 in[PKT_MAX], out[PKT_MAX + 128], want[PKT_MAX];
	struct __sk_buff skb = {.ifindex = ifidx[c->in_port]}, skb_out = {};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1);
	size_t len = pkt_build(in, &c->in_outer, &c->in), wlen = 0;
	int verdict = prog == XDP_DECAP ? xdp_verdict(c->verdict) : c->verdict;
	__u64 before = stat_pkts(c->stat),
	      tx = c->to_port ? ep_tx(c->to_port) : 0;
	int fd, err;
	bool ok = true;

	if (c->truncate > 0 && (size_t)c->truncate < len)
		len = c->truncate;
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
		fprintf(stderr, "  verdict %u, want %d\n", o.retval, verdict);
		ok = false;
	}
	if (prog != XDP_DECAP && c->verdict == TC_ACT_SHOT &&
	    skb_out.cb[0] != c->stat) {
		fprintf(stderr, "  reason in cb[0] is %u\n", skb_out.cb[0]);
		ok = false;
	}
	if (stat_pkts(c->stat) != before + 1) {
		fprintf(stderr, "  counter %s did not grow by one\n",
			xvpc_stat_name(c->stat));
		ok = false;
	}
	if (c->to_port && ep_tx(c->to_port) != tx + 1) {
		fprintf(stderr, "  not delivered to port %s\n",
			port_names[c->to_port]);
		ok = false;
	}
	if (c->check_out) {
		wlen = pkt_build(want, &c->out_outer, &c->out);
		/* The outer UDP source port is the flow hash: check its range
		 * only, then compare the rest byte for byte. */
		if (c->out_outer.on && o.data_size_out >= 36) {
			__u16 sport = out[34] << 8 | out[35];

			if (sport < 49152) {
				fprintf(stderr, "  source port %u\n", sport);
				ok = false;
			}
			want[34] = out[34];
			want[35] = out[35];
		}
		if (o.data_size_out != wlen || memcmp(out, want, wlen)) {
			pkt_hexdump("got", out, o.data_size_out);
			pkt_hexdump("want", want, wlen);
			ok = false;
		}
	}
	return ok ? 0 : -1;
}

int main(void)
{
	int pass = 0, fail = 0;

	xvpc_log_set_ident("test_datapath");
	xvpc_log_hook_libs();
	if (setup()) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const struct pkt_case *c = &cases[i];
		int runs = c->prog == TC_DECAP ? 2 : 1;

		for (int r = 0; r < runs; r++) {
			enum which w = r ? XDP_DECAP : c->prog;
			int rc = run_case(c, w);

			printf("%s [%s] %s\n", rc ? "FAIL" : "ok  ",
			       prog_label[w], c->desc);
			rc ? fail++ : pass++;
		}
	}
	xvpc_dp_close(dp);
	printf("test_datapath: %d passed, %d failed\n", pass, fail);
	return fail ? 1 : 0;
}
