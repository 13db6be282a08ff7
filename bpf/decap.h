/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * From the underlay: VXLAN to this node for a VNI it serves and an endpoint
 * it hosts is decapsulated and handed to the endpoint's interface; anything
 * that is not our VXLAN passes to the kernel untouched (SSH, ZooKeeper, ...).
 *
 * Two attach points share one classifier: XDP (native on physical NICs) and
 * tc ingress (keeps GSO on veth underlays), one object each, because
 * libxdp loads the XDP one into its dispatcher. The agent picks one.
 */
#ifndef XVPC_DECAP_H
#define XVPC_DECAP_H

#include "common.bpf.h"

/* Verdict of the classifier: PASS (not ours), deliver to ifindex, or
 * FORWARD: the outer headers were rewritten toward another node (learn
 * mode: gateway forward or stale relay), send it out of the underlay. */
#define DECAP_PASS    0
#define DECAP_DELIVER 1
#define DECAP_FORWARD 2

struct decap {
	__u32 ifindex; /* DELIVER: the endpoint's; FORWARD: underlay */
	__u32 vpc_id;  /* of the VNI: for the load balancer's replies */
	__u32 stat;    /* FORWARD: XVPC_STAT_FORWARD or _RELAY */
	__be32 saddr;  /* FORWARD: new outer addresses, for the FIB */
	__be32 daddr;
	struct ethhdr inner; /* inner Ethernet, to restore on tc */
};

/* What the inner checks need of the outer headers. */
struct vx_ctx {
	struct iphdr *ip; /* outer */
	struct udphdr *udp;
	struct vxlanhdr_x *vx;
	const struct xvpc_config *cfg;
	__u32 flags; /* XVPC_VXLAN_F_RELAY or _FWD (host order), or 0 */
	__u32 vni;
	__u32 vpc_id;
	__be32 outer_src;
	__u32 len;
};

static __always_inline bool is_member(__be32 addr)
{
	return bpf_map_lookup_elem(&xvpc_nodes, &addr) != NULL;
}

/* The I flag, plus RELAY or FWD from a member of the cluster. */
static __always_inline int vxlan_flags(const struct vxlanhdr_x *vx,
				       struct vx_ctx *x)
{
	__u32 f;

	if (vx->vni & bpf_htonl(0xff))
		return -XVPC_DROP_VXLAN_FLAGS;
	if (vx->flags == bpf_htonl(VXLAN_FLAG_I))
		return 0;
	f = bpf_ntohl(vx->flags);
	if (f != (VXLAN_FLAG_I | XVPC_VXLAN_F_RELAY) &&
	    f != (VXLAN_FLAG_I | XVPC_VXLAN_F_FWD))
		return -XVPC_DROP_VXLAN_FLAGS;
	if (!is_member(x->outer_src))
		return -XVPC_DROP_NOT_MEMBER;
	x->flags = f & ~VXLAN_FLAG_I;
	return 0;
}

/* Reverse learning: (vpc, src) lives on the node the packet came from.
 * Created or moved: a new value (readers on other CPUs never see half of
 * one) and the counter; known: last_ns only. A routed packet carries a
 * gateway MAC as its source (the destination subnet's, written by the
 * sender's router), not the endpoint's: it was routed when the source's
 * subnet has another VNI than the packet, or when its source MAC is the
 * source subnet's gateway MAC. */
static __always_inline void learn(const struct vx_ctx *x, __be32 src,
				  const struct xvpc_subnet *sn,
				  const __u8 *smac)
{
	struct xvpc_ep_key key = {.vpc_id = x->vpc_id, .ip = src};
	struct xvpc_learned *old = bpf_map_lookup_elem(&xvpc_learned, &key);
	bool nomac = sn->vni != x->vni || mac_eq(smac, sn->gw_mac);
	bool has_mac = old && !(old->ep.flags & XVPC_EP_NOMAC);
	__u64 now = bpf_ktime_get_ns();
	struct xvpc_learned l = {
		.ep = {.flags = XVPC_EP_LEARNED,
		       .node_ip = x->outer_src,
		       .vni = sn->vni},
		.created_ns = now,
		.last_ns = now,
	};

	if (old && old->ep.node_ip == x->outer_src && old->ep.vni == sn->vni &&
	    (nomac || (has_mac && mac_eq(old->ep.mac, smac)))) {
		learned_touch(old, now);
		return;
	}
	if (!nomac)
		mac_copy(l.ep.mac, smac);
	else if (has_mac)
		mac_copy(l.ep.mac, old->ep.mac); /* keep the MAC we know */
	else
		l.ep.flags |= XVPC_EP_NOMAC;
	if (old) {
		l.created_ns = old->created_ns;
		l.hits = old->hits;
	}
	if (!old || old->ep.node_ip != x->outer_src)
		stat_add(XVPC_STAT_LEARN, x->len);
	bpf_map_update_elem(&xvpc_learned, &key, &l, BPF_ANY);
}

/* Source not pushed: in a learn-mode VPC a member (never this node's own
 * address: a spoof) may teach us an endpoint inside one of the VPC's
 * subnets. */
static __always_inline int learn_source(const struct vx_ctx *x,
					const struct ethhdr *eth,
					const struct iphdr *ip)
{
	struct xvpc_subnet *sn;

	if (!learn_vpc(x->vpc_id))
		return -XVPC_DROP_INNER_SPOOF;
	if (x->outer_src == x->cfg->node_ip || !is_member(x->outer_src))
		return -XVPC_DROP_NOT_MEMBER;
	sn = subnet_lookup(x->vpc_id, ip->saddr);
	if (!sn)
		return -XVPC_DROP_INNER_SPOOF;
	learn(x, ip->saddr, sn, eth->h_source);
	return 0;
}

/* The source must be an endpoint of the VNI's VPC, hosted on the node the
 * packet comes from: a VNI never carries another tenant's packet in, and a
 * node cannot speak for endpoints it does not host. One hash lookup, no
 * trie walk, for a pushed source. A relayed or forwarded packet (from a
 * member: checked) comes from a node that does not host the source: it
 * only has to be inside the VPC, and teaches nothing. */
static __always_inline int check_source(const struct vx_ctx *x,
					const struct ethhdr *eth,
					const struct iphdr *ip)
{
	struct xvpc_ep *src;

	if (x->flags)
		return subnet_lookup(x->vpc_id, ip->saddr)
			       ? 0
			       : -XVPC_DROP_INNER_SPOOF;
	src = ep_lookup_pushed(x->vpc_id, ip->saddr);
	if (src)
		return src->node_ip == x->outer_src ? 0
						    : -XVPC_DROP_INNER_SPOOF;
	return learn_source(x, eth, ip);
}

/* Send the packet on to another node: new outer addresses (this node to
 * @daddr), VXLAN flag @flag; the caller's program sets the outer MACs. */
static __always_inline int forward(const struct vx_ctx *x, __be32 daddr,
				   __u32 flag, __u32 stat, struct decap *out)
{
	struct iphdr *ip = x->ip;

	if (daddr == x->cfg->node_ip)
		return -XVPC_DROP_NOT_LOCAL; /* never to ourselves */
	ip->saddr = x->cfg->node_ip;
	ip->daddr = daddr;
	ip->ttl = 64;
	ip->check = 0;
	ip->check = ipv4_csum(ip);
	x->udp->check = 0;
	x->vx->flags = bpf_htonl(VXLAN_FLAG_I | flag);
	out->ifindex = x->cfg->underlay_ifindex;
	out->vpc_id = x->vpc_id;
	out->stat = stat;
	out->saddr = ip->saddr;
	out->daddr = daddr;
	return DECAP_FORWARD;
}

/* Inner destination not hosted here. Learn mode only, and never a packet
 * a gateway already forwarded (no loops): a gateway forwards to the node
 * of a destination it knows; another node relays once to a gateway (the
 * sender's entry is stale). */
static __always_inline int not_local(const struct vx_ctx *x, struct ethhdr *eth,
				     const struct iphdr *ip,
				     const struct xvpc_ep *ep,
				     struct decap *out)
{
	const struct xvpc_vpc *vpc;
	__be32 gw;
	int ret;

	if (x->flags & XVPC_VXLAN_F_FWD)
		return -XVPC_DROP_NOT_LOCAL;
	vpc = learn_vpc(x->vpc_id);
	if (!vpc)
		return -XVPC_DROP_NOT_LOCAL;
	if (vpc->flags & XVPC_VPC_GATEWAY) {
		if (!ep)
			return -XVPC_DROP_NOT_LOCAL;
		if (ep->vni != x->vni)
			return -XVPC_DROP_VNI_MISMATCH;
		ret = check_source(x, eth, ip);
		if (ret)
			return ret;
		mac_copy(eth->h_dest, ep->mac);
		return forward(x, ep->node_ip, XVPC_VXLAN_F_FWD,
			       XVPC_STAT_FORWARD, out);
	}
	if (x->flags & XVPC_VXLAN_F_RELAY)
		return -XVPC_DROP_NOT_LOCAL;
	ret = check_source(x, eth, ip);
	if (ret)
		return ret;
	/* The outer source port is the sender's flow hash. */
	gw = pick_gateway(vpc, bpf_ntohs(x->udp->source));
	if (!gw)
		return -XVPC_DROP_NO_GATEWAY;
	return forward(x, gw, XVPC_VXLAN_F_RELAY, XVPC_STAT_RELAY, out);
}

static __always_inline int check_inner(struct cursor *c, struct vx_ctx *x,
				       struct decap *out)
{
	struct ethhdr *eth;
	struct xvpc_ep *ep;
	struct iphdr *ip;
	int ret;

	eth = parse_eth(c);
	if (!eth)
		return -XVPC_DROP_MALFORMED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return -XVPC_DROP_INNER_L3;
	ip = parse_ipv4(c);
	if (!ip)
		return -XVPC_DROP_MALFORMED;
	ep = ep_lookup_pushed(x->vpc_id, ip->daddr);
	if (!ep || !(ep->flags & XVPC_EP_LOCAL))
		return not_local(x, eth, ip, ep, out);
	if (ep->vni != x->vni)
		return -XVPC_DROP_VNI_MISMATCH;
	/* In learn mode the sender may not know the MAC: we set it. */
	if (!mac_eq(eth->h_dest, ep->mac)) {
		if (!learn_vpc(x->vpc_id))
			return -XVPC_DROP_DST_MAC;
		mac_copy(eth->h_dest, ep->mac);
	}
	ret = check_source(x, eth, ip);
	if (ret)
		return ret;
	out->ifindex = ep->ifindex;
	out->vpc_id = x->vpc_id;
	__builtin_memcpy(&out->inner, eth, sizeof(*eth));
	return DECAP_DELIVER;
}

#include "lb_ns_decap.h" /* north-south load balancer: fills struct decap */

/* Classify an underlay frame. Returns DECAP_PASS, DECAP_DELIVER or
 * DECAP_FORWARD (with *out filled), or -XVPC_DROP_*. Changes only the
 * inner destination MAC (learn mode) and, to forward, the outer IPv4
 * addresses, UDP checksum and VXLAN flags. */
static __always_inline int classify(void *data, void *data_end,
				    struct decap *out)
{
	struct cursor c = {data, data_end};
	struct vx_ctx x = {.len = data_end - data};
	struct xvpc_vni *v;
	struct ethhdr *eth;
	int ret;

	eth = parse_eth(&c);
	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return DECAP_PASS;
	x.ip = parse_ipv4(&c);
	if (!x.ip || x.ip->protocol != IPPROTO_UDP)
		return DECAP_PASS;
	x.cfg = node_config();
	if (!x.cfg || x.ip->daddr != x.cfg->node_ip)
		return DECAP_PASS;
	if (x.ip->frag_off & bpf_htons(0x1fff))
		return DECAP_PASS; /* a later fragment: no UDP header to see */
	x.udp = parse_udp(&c);
	if (!x.udp || x.udp->dest != bpf_htons(XVPC_VXLAN_PORT))
		return DECAP_PASS;
	/* Ours from here on: every failure is a counted drop. */
	if (ipv4_is_fragment(x.ip) || x.ip->ihl != 5)
		return -XVPC_DROP_OUTER_FRAG;
	x.vx = parse_vxlan(&c);
	if (!x.vx)
		return -XVPC_DROP_MALFORMED;
	x.outer_src = x.ip->saddr;
	if (x.vx->flags == bpf_htonl(VXLAN_FLAG_I | XVPC_VXLAN_F_NS))
		return lb_ns_classify(&c, x.vx, x.outer_src,
				      out); /* lb_ns_decap.h */
	ret = vxlan_flags(x.vx, &x);
	if (ret)
		return ret;
	x.vni = bpf_ntohl(x.vx->vni) >> 8;
	v = bpf_map_lookup_elem(&xvpc_vnis, &x.vni);
	if (!v)
		return -XVPC_DROP_VNI_UNKNOWN;
	x.vpc_id = v->vpc_id;
	return check_inner(&c, &x, out);
}

#endif
