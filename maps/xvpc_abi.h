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
#define XVPC_ABI_VERSION 3

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
#define XVPC_MAX_VPCS	   16384
#define XVPC_MAX_NODES	   4096
#define XVPC_MAX_LEARNED   65536
#define XVPC_MAX_GATEWAYS  4

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
#define XVPC_MAP_VPCS	   "xvpc_vpcs"
#define XVPC_MAP_NODES	   "xvpc_nodes"
#define XVPC_MAP_LEARNED   "xvpc_learned"

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
	XVPC_EP_LOCAL = 1 << 0,	   /* hosted on this node: ifindex is valid */
	XVPC_EP_LEARNED = 1 << 1,  /* in xvpc_learned, not pushed */
	XVPC_EP_RESOLVED = 1 << 2, /* learned: installed by the agent from a
				    * controller answer (else: by the datapath
				    * from a decapsulated packet) */
	XVPC_EP_NOMAC = 1 << 3,	   /* learned from a routed packet: the MAC is
				    * unknown (the receiver sets it) */
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

/*
 * Distribution mode per VPC (docs/learning.md). A VPC absent from this map
 * is in push mode: the node holds every endpoint of it. In learn mode the
 * node holds its own endpoints; remote ones are learned into xvpc_learned,
 * and a miss is encapsulated to one of the VPC's gateway nodes (which hold
 * the full table) instead of being dropped. Key: vpc_id (__u32).
 */
enum xvpc_vpc_flags {
	XVPC_VPC_LEARN = 1 << 0,   /* learn mode */
	XVPC_VPC_GATEWAY = 1 << 1, /* this node is one of the VPC's gateways */
};

struct xvpc_vpc {
	__u32 flags;	  /* enum xvpc_vpc_flags */
	__u32 n_gateways; /* valid entries of gateways[], 0 .. 4 */
	__be32 gateways[XVPC_MAX_GATEWAYS]; /* underlay addresses */
};

/* Members of the cluster: underlay address (__be32) -> node. Only a member
 * may teach this node an endpoint or relay packets to it. */
struct xvpc_node {
	__u32 flags; /* none yet */
	__u32 pad;
};

/*
 * Learned endpoints: LRU hash keyed by struct xvpc_ep_key. The value starts
 * with a struct xvpc_ep (flags has XVPC_EP_LEARNED), so a lookup in either
 * map gives the datapath the same view. Pushed entries (xvpc_endpoints)
 * always win over learned ones. last_ns is written at most every
 * XVPC_LEARN_TOUCH_NS; the agent ages out entries idle longer than its
 * configured timeout.
 */
#define XVPC_LEARN_TOUCH_NS 1000000000ull

struct xvpc_learned {
	struct xvpc_ep ep;
	__u32 pad;
	__u64 created_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u64 last_ns;	  /* last packet to or from it */
	__u64 hits;	  /* packets sent to it */
};

/*
 * VXLAN between xvpc nodes: bits of the first reserved byte of the flags
 * word (host order of the 32-bit word; the I flag is 0x08000000). Accepted
 * only from members (xvpc_nodes).
 *   RELAY: sent to a gateway by a node that could not deliver the packet
 *          (stale entry at the sender): the outer source is not the inner
 *          source's node. The gateway forwards it.
 *   FWD:   forwarded by a gateway: deliver, never learn from it, never
 *          forward it again.
 */
#define XVPC_VXLAN_F_RELAY 0x00800000u
#define XVPC_VXLAN_F_FWD   0x00400000u
/*   NS:    north-south load balancer (docs/loadbalancer.md, "North-south"):
 *          sent by an LB node; the inner source is a client outside the
 *          overlay (not a VPC endpoint), the inner destination a backend of
 *          a public service hosted on the receiving node. */
#define XVPC_VXLAN_F_NS 0x00200000u

/* Node underlay configuration: array map with a single entry at key 0. */
struct xvpc_config {
	__u32 abi_version;
	__be32 node_ip;
	__u32 underlay_ifindex;
	__u16 underlay_mtu;
	__u8 node_mac[XVPC_ETH_ALEN];
	__u32 flags;
	/* Health probes of local load balancer backends (docs/loadbalancer.md,
	 * "Health checks"): the node's link-local probe address (0: off) and
	 * the source ports of the agent's probe sockets. A VM's TCP packet to
	 * probe_ip with a destination port in [probe_port_min,
	 * probe_port_max], and not a SYN, goes up the host stack; anything
	 * else to probe_ip is dropped (drop_probe). */
	__be32 probe_ip;
	__be16 probe_port_min;
	__be16 probe_port_max;
};

/* Defaults of the agent's --probe-addr and --probe-ports. */
#define XVPC_PROBE_ADDR_DEFAULT	    "169.254.169.250"
#define XVPC_PROBE_PORT_MIN_DEFAULT 60000
#define XVPC_PROBE_PORT_MAX_DEFAULT 60999

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
	XVPC_DROP_VNI_MISMATCH,	 /* VNI differs from the destination's subnet */
	XVPC_DROP_OUTER_FRAG,	 /* fragmented or optioned outer IPv4 */
	XVPC_DROP_INNER_L3,	 /* inner frame is not IPv4 */
	XVPC_STAT_LB_NEW,	 /* load balancer: new flow, backend chosen */
	XVPC_STAT_LB_EST,	 /* load balancer: conntrack hit, translated */
	XVPC_STAT_LB_REPLY,	 /* load balancer: reply reverse-translated */
	XVPC_DROP_LB_NO_BACKEND, /* service without backends */
	XVPC_DROP_LB_CSUM,	 /* the kernel refused to rewrite the packet */
	XVPC_STAT_MISS_GW,	 /* learn mode: miss sent to a gateway node */
	XVPC_STAT_FORWARD,	 /* gateway: forwarded to the endpoint's node */
	XVPC_STAT_RELAY,	 /* stale: not here any more, relayed to a gw */
	XVPC_STAT_LEARN,	 /* entry learned or moved by the datapath */
	XVPC_DROP_NOT_MEMBER,  /* flagged or teaching packet from a stranger */
	XVPC_DROP_NO_GATEWAY,  /* learn-mode miss, and no gateway known */
	XVPC_STAT_PROBE_REPLY, /* a VM's answer to a health probe: to host */
	XVPC_DROP_PROBE,       /* to the probe address, not a probe answer */
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

/*
 * Load balancer (docs/loadbalancer.md, "Datapath").
 *
 * A service (VPC, VIP, port, protocol) has a slot; xvpc_lb_tables[slot] is
 * the service's Maglev lookup table, an inner array of m backends swapped
 * with one map update. Conntrack holds, per flow, a forward entry keyed by
 * the client's tuple and a reverse entry keyed by the backend's reply tuple.
 */
#define XVPC_MAP_LB_SERVICES "xvpc_lb_services"
#define XVPC_MAP_LB_TABLES   "xvpc_lb_tables"
#define XVPC_MAP_LB_CT	     "xvpc_lb_ct"
#define XVPC_MAP_LB_CONFIG   "xvpc_lb_config"

#define XVPC_LB_MAX_SERVICES 1024
#define XVPC_LB_MAX_CT	     131072 /* entries: two per flow */

/* Conntrack timeouts used when xvpc_lb_config leaves them 0. */
#define XVPC_LB_TCP_TIMEOUT_NS	   (7200ull * 1000000000ull) /* 2 h idle */
#define XVPC_LB_CLOSING_TIMEOUT_NS (10ull * 1000000000ull)   /* after FIN/RST */
#define XVPC_LB_UDP_TIMEOUT_NS	   (60ull * 1000000000ull)
/* last_ns is written at most this often per entry (cache lines stay
 * shared between CPUs); timeouts are therefore exact to within it. */
#define XVPC_LB_TOUCH_NS 1000000000ull

struct xvpc_lb_svc_key {
	__u32 vpc_id;
	__be32 vip;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

struct xvpc_lb_svc {
	__u32 slot;	   /* index in xvpc_lb_tables */
	__u32 flags;	   /* none yet */
	__u32 m;	   /* entries of the table (a Maglev prime) */
	__u32 backends;	   /* 0: no table, packets dropped (lb_no_backend) */
	__u32 backend_vpc; /* public services: the VPC of the backends */
};

/* Entry of a lookup table: where a new flow goes. */
struct xvpc_lb_backend {
	__be32 ip;
	__be16 port;
	__u16 flags; /* none yet */
};

/* Node-wide settings: array map with a single entry at key 0, written by
 * the loader. services == 0 turns the load balancer off, so traffic of a
 * node without services does no conntrack lookup. */
struct xvpc_lb_config {
	__u32 services;
	__u32 flags;
	__u64 tcp_timeout_ns;	  /* 0: XVPC_LB_TCP_TIMEOUT_NS */
	__u64 closing_timeout_ns; /* 0: XVPC_LB_CLOSING_TIMEOUT_NS */
	__u64 udp_timeout_ns;	  /* 0: XVPC_LB_UDP_TIMEOUT_NS */
	__u32 public_services;	  /* of services: public ones (vpc_id 0); 0: the
				* underlay ingress looks for none */
	__u32 pad;
};

/* Conntrack key: a packet's own tuple, as it arrives. */
struct xvpc_lb_ct_key {
	__u32 vpc_id;
	__be32 src;
	__be32 dst;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

enum xvpc_lb_ct_dir {
	XVPC_LB_CT_FWD = 1, /* client -> VIP: rewrite the destination */
	XVPC_LB_CT_REV = 2, /* backend -> client: rewrite the source */
};

enum xvpc_lb_ct_state {
	XVPC_LB_CT_OPEN = 1,	/* TCP or UDP flow in use */
	XVPC_LB_CT_CLOSING = 2, /* FIN or RST seen: short timeout */
};

enum xvpc_lb_ct_flags {
	/* north-south reverse entry on the backend's node: the reply leaves
	 * through the underlay as plain IPv4, straight to the client */
	XVPC_LB_CT_F_NS = 1 << 0,
};

struct xvpc_lb_ct {
	struct xvpc_lb_backend nat; /* FWD: the backend; REV: VIP and port */
	__u8 dir;		    /* enum xvpc_lb_ct_dir */
	__u8 state;		    /* enum xvpc_lb_ct_state */
	__u16 flags;		    /* enum xvpc_lb_ct_flags */
	__u32 slot;	  /* service slot, for flushing a deleted service */
	__u64 created_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u64 last_ns;	  /* last packet, to within XVPC_LB_TOUCH_NS */
};

/*
 * North-south (docs/loadbalancer.md, "North-south"). A public service is
 * keyed with vpc_id XVPC_LB_PUBLIC; its value's backend_vpc names the VPC
 * whose endpoints are the backends. The LB node sends a flow's packets over
 * VXLAN (XVPC_VXLAN_F_NS) to the backend's node with the destination
 * rewritten to the backend and the client's source kept. The backend's
 * node finds the public VIP:port of a backend in xvpc_lb_ns (written by the
 * agent: one public VIP:port per backend ip:port, so the lookup is
 * unambiguous) and writes a reverse conntrack entry (XVPC_LB_CT_F_NS); the
 * reply is translated there and leaves through the underlay directly.
 */
#define XVPC_MAP_LB_NS		"xvpc_lb_ns"
#define XVPC_LB_PUBLIC		0 /* vpc_id of a public service's key */
#define XVPC_LB_MAX_NS_BACKENDS 65536

struct xvpc_lb_ns_key {
	__u32 vpc_id; /* the backend's VPC */
	__be32 ip;    /* backend */
	__be16 port;  /* backend port */
	__u8 proto;
	__u8 pad;
};

struct xvpc_lb_ns_vip {
	__be32 vip; /* the public VIP and port the backend serves */
	__be16 port;
	__u16 pad;
};

/*
 * Flow hash for the Maglev lookup: entry = xvpc_lb_flow_hash(...) % m. The
 * same function in BPF and user space (xvpcctl trace, tests), and the same
 * value on every node, so any LB node picks the same backend for a flow.
 * Addresses and ports are mixed as they are on the wire (network order).
 */
static inline __u32 xvpc_lb_mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x7feb352du;
	h ^= h >> 15;
	h *= 0x846ca68bu;
	h ^= h >> 16;
	return h;
}

static inline __u32 xvpc_lb_flow_hash(__be32 src, __be32 dst, __be16 sport,
				      __be16 dport, __u8 proto)
{
	__u32 h = 0x78767063u; /* "xvpc" */

	h = xvpc_lb_mix32(h ^ (__u32)src);
	h = xvpc_lb_mix32(h ^ (__u32)dst);
	h = xvpc_lb_mix32(h ^ ((__u32)sport << 16 | (__u32)dport));
	return xvpc_lb_mix32(h ^ proto);
}

#endif /* XVPC_ABI_H */
