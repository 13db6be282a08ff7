// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * From an endpoint: tc ingress of the endpoint's host-side interface, i.e.
 * every frame a VM sends. Parse, look up, act:
 *   ARP request      -> answered here from the maps, back out the same port
 *   IPv4 to a peer   -> switched: local redirect, or VXLAN to its node
 *   IPv4 to gateway  -> routed (distributed router, one hop), then as above
 *   TCP to the probe address, answering a health probe -> up the node's
 *                       stack (probe.h)
 *   anything else    -> dropped with a named reason
 */
#include <linux/pkt_cls.h>

#include "common.bpf.h"
#include "encap.h"
#include "lb_ns.h"
#include "probe.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline void emit_miss(struct __sk_buff *skb, __u32 vpc_id,
				      __be32 src, __be32 dst, __u32 reason)
{
	struct xvpc_ep_key key = {.vpc_id = vpc_id, .ip = dst};
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(&xvpc_miss_rl, &key);
	struct xvpc_event ev = {
		.type = XVPC_EV_MISS,
		.vpc_id = vpc_id,
		.src_ip = src,
		.dst_ip = dst,
		.ifindex = skb->ifindex,
		.reason = reason,
	};

	if (last && now - *last < XVPC_MISS_INTERVAL_NS)
		return;
	bpf_map_update_elem(&xvpc_miss_rl, &key, &now, BPF_ANY);
	bpf_perf_event_output(skb, &xvpc_events, BPF_F_CURRENT_CPU, &ev,
			      sizeof(ev));
}

/* Hash of the inner flow for the outer UDP source port: addresses,
 * protocol and, for unfragmented TCP/UDP, ports; the same for every packet
 * of a flow, spread across flows. Our own, because the kernel's flow
 * dissector costs more than the rest of the encap path when skb->hash is
 * not set yet. @c points just past the IPv4 header. */
static __always_inline __u32 flow_hash(const struct iphdr *ip,
				       const struct cursor *c)
{
	__u32 h = ip->saddr * 0x9e3779b1u ^ ip->daddr;
	const __be32 *ports = c->pos;

	h ^= ip->protocol;
	if ((ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) &&
	    !ipv4_is_fragment(ip) && (void *)(ports + 1) <= c->end)
		h ^= *ports * 0x85ebca6bu;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

/* The VPCs whose misses go to a gateway: learn mode, and this node is not
 * one of the gateways (which hold the full table: a miss there is real). */
static __always_inline const struct xvpc_vpc *miss_vpc(__u32 vpc_id)
{
	const struct xvpc_vpc *vpc = learn_vpc(vpc_id);

	return vpc && !(vpc->flags & XVPC_VPC_GATEWAY) ? vpc : NULL;
}

/* ARP for a target we cannot answer. In learn mode, when the target is in
 * the sender's own subnet, the agent is asked (a miss event) and injects
 * the reply itself. */
static __always_inline int arp_unknown(struct __sk_buff *skb,
				       const struct xvpc_iface *b, __be32 tip)
{
	struct xvpc_subnet *sn;

	if (!miss_vpc(b->vpc_id))
		return -XVPC_DROP_ARP_UNKNOWN;
	sn = subnet_lookup(b->vpc_id, tip);
	if (sn && sn->vni == b->vni)
		emit_miss(skb, b->vpc_id, b->ip, tip, XVPC_DROP_ARP_UNKNOWN);
	return -XVPC_DROP_ARP_UNKNOWN;
}

static __always_inline int arp_reply(struct __sk_buff *skb,
				     const struct xvpc_iface *b)
{
	void *data = (void *)(long)skb->data;
	struct cursor c = {data, (void *)(long)skb->data_end};
	struct ethhdr *eth = parse_eth(&c);
	struct arp_eth_ipv4 *arp = parse_arp(&c);
	const __u8 *answer;
	struct xvpc_ep *ep;
	__be32 tip;

	if (!eth || !arp)
		return -XVPC_DROP_MALFORMED;
	if (arp->hdr.ar_hrd != bpf_htons(ARPHRD_ETHER) ||
	    arp->hdr.ar_pro != bpf_htons(ETH_P_IP) ||
	    arp->hdr.ar_hln != ETH_ALEN || arp->hdr.ar_pln != 4 ||
	    arp->hdr.ar_op != bpf_htons(ARPOP_REQUEST))
		return -XVPC_DROP_ARP_OTHER;
	if (!mac_eq(arp->sha, b->mac))
		return -XVPC_DROP_SPOOF_MAC;
	if (arp->sip != b->ip && arp->sip != 0)
		return -XVPC_DROP_SPOOF_IP;
	tip = arp->tip;
	if (tip == b->ip)
		return -XVPC_DROP_ARP_OTHER; /* probe or gratuitous: no answer */
	if (tip == b->gw_ip) {
		answer = b->gw_mac;
	} else if (probe_config() && tip == probe_config()->probe_ip) {
		answer = b->gw_mac; /* a VM with 169.254/16 on its link */
	} else {
		ep = ep_lookup(b->vpc_id, tip);
		if (!ep || (ep->flags & XVPC_EP_NOMAC))
			return arp_unknown(skb, b, tip);
		if (ep->vni != b->vni)
			return -XVPC_DROP_ARP_UNKNOWN;
		answer = ep->mac;
	}

	mac_copy(eth->h_dest, b->mac);
	mac_copy(eth->h_source, answer);
	arp->hdr.ar_op = bpf_htons(ARPOP_REPLY);
	mac_copy(arp->tha, arp->sha);
	arp->tip = arp->sip;
	mac_copy(arp->sha, answer);
	arp->sip = tip;
	stat_add(XVPC_STAT_ARP_REPLY, skb->len);
	ep_stat_tx(skb->ifindex, skb->len);
	return bpf_redirect(skb->ifindex, 0);
}

static __always_inline int encap(struct __sk_buff *skb,
				 const struct xvpc_config *cfg, __be32 node_ip,
				 __u32 vni, __u32 hash)
{
	return vxlan_encap(skb, cfg, node_ip, vni, hash, VXLAN_FLAG_I);
}

static __always_inline int deliver(struct __sk_buff *skb,
				   const struct xvpc_ep *ep, __u32 hash)
{
	const struct xvpc_config *cfg;

	if (ep->flags & XVPC_EP_LOCAL) {
		stat_add(XVPC_STAT_LOCAL, skb->len);
		ep_stat_tx(ep->ifindex, skb->len);
		return bpf_redirect(ep->ifindex, 0);
	}
	cfg = node_config();
	if (!cfg)
		return -XVPC_DROP_NO_CONFIG;
	return encap(skb, cfg, ep->node_ip, ep->vni, hash);
}

/* The destination as the sending path sees it: pushed, else learned. A
 * learned hit counts a packet sent to it and refreshes last_ns. */
static __always_inline struct xvpc_ep *ep_lookup_tx(__u32 vpc_id, __be32 ip)
{
	struct xvpc_ep *ep = ep_lookup_pushed(vpc_id, ip);
	struct xvpc_learned *l;

	if (ep)
		return ep;
	l = learned_lookup(vpc_id, ip);
	if (!l)
		return NULL;
	__sync_fetch_and_add(&l->hits, 1);
	learned_touch(l, bpf_ktime_get_ns());
	return &l->ep;
}

/* TTL and source MAC of a routed packet; the destination MAC is the
 * caller's. */
static __always_inline int route_hop(struct __sk_buff *skb,
				     const struct xvpc_subnet *sn,
				     struct ethhdr *eth, struct iphdr *ip)
{
	if (ip->ttl <= 1)
		return -XVPC_DROP_TTL;
	ipv4_dec_ttl(ip);
	mac_copy(eth->h_source, sn->gw_mac);
	stat_add(XVPC_STAT_ROUTED, skb->len);
	return 0;
}

/* Learn mode: the miss goes to one of the VPC's gateways, which holds the
 * full table and forwards it; routed, it makes the hop here as usual. */
static __always_inline int miss_to_gateway(struct __sk_buff *skb,
					   const struct xvpc_vpc *vpc,
					   const struct xvpc_subnet *sn,
					   struct ethhdr *eth, struct iphdr *ip,
					   __u32 hash, bool routed)
{
	const struct xvpc_config *cfg;
	__be32 gw = pick_gateway(vpc, hash);
	int ret;

	if (!gw)
		return -XVPC_DROP_NO_GATEWAY;
	cfg = node_config();
	if (!cfg)
		return -XVPC_DROP_NO_CONFIG;
	if (routed) {
		ret = route_hop(skb, sn, eth, ip);
		if (ret)
			return ret;
	}
	ret = encap(skb, cfg, gw, sn->vni, hash);
	if (ret >= 0)
		stat_add(XVPC_STAT_MISS_GW, skb->len);
	return ret;
}

/* Destination unknown: in a subnet of the VPC it is a miss, reported to the
 * agent (rate-limited) and, in learn mode, sent to a gateway; outside every
 * subnet there is nothing to learn. */
static __always_inline int no_endpoint(struct __sk_buff *skb,
				       const struct xvpc_iface *b,
				       struct ethhdr *eth, struct iphdr *ip,
				       __u32 hash, bool routed)
{
	struct xvpc_subnet *sn = subnet_lookup(b->vpc_id, ip->daddr);
	const struct xvpc_vpc *vpc;

	if (!sn)
		return -XVPC_DROP_NO_SUBNET;
	vpc = miss_vpc(b->vpc_id);
	if (vpc && !routed && sn->vni != b->vni)
		return -XVPC_DROP_DST_MAC; /* L2 into another subnet */
	emit_miss(skb, b->vpc_id, b->ip, ip->daddr, XVPC_DROP_NO_ENDPOINT);
	if (!vpc)
		return -XVPC_DROP_NO_ENDPOINT;
	return miss_to_gateway(skb, vpc, sn, eth, ip, hash, routed);
}

/* Distributed router: the same gateway IP and MAC on every node, so the
 * whole hop happens here. */
static __always_inline int route(struct __sk_buff *skb,
				 const struct xvpc_iface *b, struct ethhdr *eth,
				 struct iphdr *ip, __u32 hash)
{
	struct xvpc_subnet *sn;
	struct xvpc_ep *ep;
	int ret;

	ep = ep_lookup_tx(b->vpc_id, ip->daddr);
	if (!ep)
		return no_endpoint(skb, b, eth, ip, hash, true);
	sn = subnet_lookup(b->vpc_id, ip->daddr);
	if (!sn)
		return -XVPC_DROP_NO_SUBNET;
	ret = route_hop(skb, sn, eth, ip);
	if (ret)
		return ret;
	mac_copy(eth->h_dest, ep->mac); /* NOMAC: the receiver sets it */
	return deliver(skb, ep, hash);
}

static __always_inline int switch_l2(struct __sk_buff *skb,
				     const struct xvpc_iface *b,
				     struct ethhdr *eth, struct iphdr *ip,
				     __u32 hash)
{
	struct xvpc_ep *ep = ep_lookup_tx(b->vpc_id, ip->daddr);

	if (!ep)
		return no_endpoint(skb, b, eth, ip, hash, false);
	if (ep->vni != b->vni)
		return -XVPC_DROP_DST_MAC;
	/* A NOMAC entry (learned from a routed packet) has no MAC to check:
	 * the receiving node sets it. */
	if (!(ep->flags & XVPC_EP_NOMAC) && !mac_eq(eth->h_dest, ep->mac))
		return -XVPC_DROP_DST_MAC;
	return deliver(skb, ep, hash);
}

static __always_inline int from_ep(struct __sk_buff *skb)
{
	struct cursor c = {(void *)(long)skb->data,
			   (void *)(long)skb->data_end};
	const struct xvpc_config *probe;
	struct xvpc_iface *b;
	struct ethhdr *eth;
	struct iphdr *ip;
	__u32 ifindex = skb->ifindex, hash;
	int lb;

	b = bpf_map_lookup_elem(&xvpc_ifaces, &ifindex);
	if (!b)
		return -XVPC_DROP_NOT_BOUND;
	ep_stat_rx(ifindex, skb->len);
	eth = parse_eth(&c);
	if (!eth)
		return -XVPC_DROP_MALFORMED;
	if (!mac_eq(eth->h_source, b->mac))
		return -XVPC_DROP_SPOOF_MAC;
	switch (eth->h_proto) {
	case bpf_htons(ETH_P_ARP):
		return arp_reply(skb, b);
	case bpf_htons(ETH_P_IP):
		break;
	case bpf_htons(ETH_P_8021Q):
	case bpf_htons(ETH_P_8021AD):
		return -XVPC_DROP_VLAN;
	default:
		return -XVPC_DROP_UNSUPP_L3;
	}
	if (mac_is_multicast(eth->h_dest))
		return -XVPC_DROP_BCAST;
	ip = parse_ipv4(&c);
	if (!ip)
		return -XVPC_DROP_MALFORMED;
	if (ip->saddr != b->ip)
		return -XVPC_DROP_SPOOF_IP;
	probe = probe_config();
	if (probe && ip->daddr == probe->probe_ip)
		return probe_answer(skb, probe, ip, &c);
	hash = flow_hash(ip, &c); /* before any rewrite: the client's flow */
	lb = lb_from_ep(skb, b->vpc_id, ip, &c); /* load balancer: lb.h */
	if (lb < 0)
		return lb;
	if (lb == LB_NS_OUT) /* north-south reply: lb_ns.h */
		return lb_ns_out(skb);
	if (lb != LB_PASS && lb_reparse(skb, &eth, &ip))
		return -XVPC_DROP_MALFORMED;
	if (lb == LB_DNAT || mac_eq(eth->h_dest, b->gw_mac))
		return route(skb, b, eth, ip, hash);
	return switch_l2(skb, b, eth, ip, hash);
}

SEC("tc")
int xvpc_from_ep(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	int ret = from_ep(skb);

	if (ret >= 0)
		return ret;
	stat_add(-ret, len);
	skb->cb[0] = -ret; /* the reason, for xvpcctl trace */
	return TC_ACT_SHOT;
}
