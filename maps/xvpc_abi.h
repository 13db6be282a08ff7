/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xvpc ABI: the one header that the BPF programs and user space share.
 *
 * Fixed-width types, explicit padding, no pointers. Every struct has a size
 * check in tests/test_abi.c, so a layout change is loud. Map *definitions*
 * live in bpf/maps.bpf.h; only keys, values and constants live here.
 *
 * Byte order: fields named *_ip, *_addr and ports are network order
 * (__be32/__be16); everything else is host order.
 */
#ifndef XVPC_ABI_H
#define XVPC_ABI_H

#include <linux/types.h>

/* Bumped on any change to a struct or map below; the agent refuses to adopt
 * pinned maps of another version and runs the migration in
 * docs/datapath.md instead (see "ABI versions"). */
#define XVPC_ABI_VERSION 1

#define XVPC_PIN_DIR	    "/sys/fs/bpf/xvpc"
#define XVPC_VXLAN_PORT	    4789
#define XVPC_VNI_MAX	    0xffffffu /* 24 bits */
#define XVPC_ENCAP_OVERHEAD 50	      /* outer eth + ip + udp + vxlan */
#define XVPC_ETH_ALEN	    6

/* Map sizes (max_entries). Documented in docs/datapath.md. */
#define XVPC_MAX_ENDPOINTS 262144
#define XVPC_MAX_SUBNETS   16384
#define XVPC_MAX_IFACES	   4096
#define XVPC_MAX_VNIS	   16384

/* Map names: pinned as XVPC_PIN_DIR "/" name. */
#define XVPC_MAP_ENDPOINTS "xvpc_endpoints"
#define XVPC_MAP_SUBNETS   "xvpc_subnets"
#define XVPC_MAP_IFACES	   "xvpc_ifaces"
#define XVPC_MAP_VNIS	   "xvpc_vnis"
#define XVPC_MAP_CONFIG	   "xvpc_config"
#define XVPC_MAP_STATS	   "xvpc_stats"
#define XVPC_MAP_EP_STATS  "xvpc_ep_stats"
#define XVPC_MAP_EVENTS	   "xvpc_events"
#define XVPC_MAP_MISS_RL   "xvpc_miss_rl"

/* A miss event per (VPC, destination) at most this often. */
#define XVPC_MISS_INTERVAL_NS 100000000ull /* 100 ms */
#define XVPC_MAX_MISS_RL      65536

/*
 * Endpoints: every VM/container address the node knows, local or remote.
 * Key (vpc_id, ip); value says where it lives.
 */
struct xvpc_ep_key {
	__u32 vpc_id;
	__be32 ip;
};

enum xvpc_ep_flags {
	XVPC_EP_LOCAL = 1 << 0,	  /* hosted on this node: ifindex is valid */
	XVPC_EP_LEARNED = 1 << 1, /* installed by learning, not pushed */
};

struct xvpc_ep {
	__u8 mac[XVPC_ETH_ALEN];
	__u16 flags;	/* enum xvpc_ep_flags */
	__be32 node_ip; /* underlay address of the hosting node */
	__u32 ifindex;	/* host-side interface when local, else 0 */
	__u32 vni;	/* VNI of the endpoint's subnet */
};

/*
 * Subnets: LPM trie over (vpc_id, prefix). prefixlen counts the 32 bits of
 * vpc_id too, so a /24 is stored with prefixlen 32 + 24 = 56.
 */
struct xvpc_subnet_key {
	__u32 prefixlen;
	__u32 vpc_id; /* always matched whole, so host order is fine */
	__be32 addr;
};

struct xvpc_subnet {
	__u32 vni;
	__be32 gw_ip;
	__u8 gw_mac[XVPC_ETH_ALEN]; /* same on every node: distributed router */
	__u8 plen;		    /* prefix length of the subnet itself */
	__u8 pad;
	__be32 net; /* network address, for printing */
};

/* Local interface -> endpoint binding, keyed by host-side ifindex (__u32).
 * The gateway of the endpoint's subnet is cached here so that ARP and
 * routing decisions need no trie lookup; xvpc_dp_bind_iface() fills it from
 * the subnets map when the caller leaves it zero. */
struct xvpc_iface {
	__u32 vpc_id;
	__be32 ip;
	__u8 mac[XVPC_ETH_ALEN];
	__u8 gw_mac[XVPC_ETH_ALEN];
	__be32 gw_ip;
	__u32 vni;
};

/* VNIs this node serves: VNI (__u32) -> VPC. */
struct xvpc_vni {
	__u32 vpc_id;
	__u32 flags;
};

/* Node underlay configuration: array map with a single entry at key 0. */
struct xvpc_config {
	__u32 abi_version;
	__be32 node_ip;
	__u32 underlay_ifindex;
	__u16 underlay_mtu;
	__u8 node_mac[XVPC_ETH_ALEN];
	__u32 flags;
	__u32 pad;
};

/*
 * Counters: per-CPU array indexed by enum xvpc_stat. The first entries count
 * what went well; every drop has its own named reason. Datapath functions
 * return -XVPC_DROP_* to drop, so the entry point can count the reason.
 */
enum xvpc_stat {
	XVPC_STAT_LOCAL = 0,   /* delivered to a local endpoint */
	XVPC_STAT_ENCAP,       /* encapsulated to a remote node */
	XVPC_STAT_DECAP,       /* decapsulated and delivered */
	XVPC_STAT_ROUTED,      /* routed between subnets (also counts above) */
	XVPC_STAT_ARP_REPLY,   /* ARP answered locally */
	XVPC_STAT_PASS,	       /* underlay traffic that is not ours */
	XVPC_DROP_MALFORMED,   /* truncated or inconsistent header */
	XVPC_DROP_NOT_BOUND,   /* frame on an interface with no endpoint */
	XVPC_DROP_SPOOF_MAC,   /* source MAC is not the endpoint's */
	XVPC_DROP_SPOOF_IP,    /* source IP is not the endpoint's */
	XVPC_DROP_ARP_UNKNOWN, /* ARP for an address we do not know */
	XVPC_DROP_ARP_OTHER,   /* ARP that is not an IPv4/Ethernet request */
	XVPC_DROP_BCAST,       /* broadcast or multicast: nothing floods */
	XVPC_DROP_UNSUPP_L3,   /* IPv6 and other ethertypes */
	XVPC_DROP_VLAN,	     /* 802.1Q/802.1ad tagged frame from an endpoint */
	XVPC_DROP_NO_SUBNET, /* destination in no subnet of the VPC */
	XVPC_DROP_NO_ENDPOINT, /* destination address unknown in the VPC */
	XVPC_DROP_DST_MAC,     /* destination MAC is neither peer nor gateway */
	XVPC_DROP_TTL,	       /* TTL expired while routing */
	XVPC_DROP_TOO_BIG, /* does not fit the underlay MTU once encapsulated */
	XVPC_DROP_ENCAP,   /* the kernel refused to grow the packet */
	XVPC_DROP_DECAP,   /* the kernel refused to shrink the packet */
	XVPC_DROP_NO_CONFIG,   /* node config missing: agent not initialised */
	XVPC_DROP_VXLAN_FLAGS, /* VXLAN header without the I flag, or reserved */
	XVPC_DROP_VNI_UNKNOWN, /* VNI this node does not serve */
	XVPC_DROP_NOT_LOCAL,   /* inner destination is not hosted here */
	XVPC_DROP_INNER_SPOOF, /* inner source is not a VPC endpoint of the sender */
	XVPC_DROP_VNI_MISMATCH, /* VNI differs from the destination's subnet */
	XVPC_DROP_OUTER_FRAG,	/* fragmented or optioned outer IPv4 */
	XVPC_DROP_INNER_L3,	/* inner frame is not IPv4 */
	XVPC_STAT_MAX,
};

struct xvpc_counter {
	__u64 packets;
	__u64 bytes;
};

/* Per-endpoint traffic, per-CPU hash keyed by host-side ifindex (__u32).
 * rx = from the endpoint into the datapath, tx = delivered to it. */
struct xvpc_ep_stats {
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 tx_packets;
	__u64 tx_bytes;
};

/* Events to the agent through the perf buffer. */
enum xvpc_event_type {
	XVPC_EV_MISS = 1, /* destination in a VPC with no endpoint entry */
};

struct xvpc_event {
	__u32 type; /* enum xvpc_event_type */
	__u32 vpc_id;
	__be32 src_ip;
	__be32 dst_ip;
	__u32 ifindex;
	__u32 reason; /* enum xvpc_stat */
};

#endif /* XVPC_ABI_H */
