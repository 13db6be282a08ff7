/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * North-south load balancer on the backend's node: decapsulation of a
 * packet flagged XVPC_VXLAN_F_NS (see lb_ns.h). Included by decap.h after
 * struct decap, which lb_ns_classify() fills.
 */
#ifndef XVPC_LB_NS_DECAP_H
#define XVPC_LB_NS_DECAP_H

#include "lb_ns.h"

/* The sender of an F_NS packet must be a member of the cluster. */
static __always_inline int lb_ns_sender_ok(__be32 outer_src)
{
	return is_member(outer_src); /* decap.h */
}

/* decap.h's classify() for a VXLAN packet flagged F_NS (cursor at the
 * inner Ethernet header): deliver to a local backend of a public service;
 * the inner source (the client) is not a VPC endpoint and is not checked
 * against the sender. Writes the flow's reverse entry. Returns
 * DECAP_DELIVER with *out filled, or -XVPC_DROP_*. */
static __always_inline int lb_ns_classify(struct cursor *c,
					  const struct vxlanhdr_x *vx,
					  __be32 outer_src, struct decap *out)
{
	struct xvpc_lb_ns_key nk = {};
	struct xvpc_lb_ns_vip *vip;
	struct lb_pkt p = {};
	struct xvpc_vni *v;
	struct xvpc_ep *ep;
	struct ethhdr *eth;
	struct iphdr *ip;
	__u32 vni;

	if (vx->vni & bpf_htonl(0xff))
		return -XVPC_DROP_VXLAN_FLAGS;
	if (!lb_ns_sender_ok(outer_src))
		return -XVPC_DROP_NOT_MEMBER;
	vni = bpf_ntohl(vx->vni) >> 8;
	v = bpf_map_lookup_elem(&xvpc_vnis, &vni);
	if (!v)
		return -XVPC_DROP_VNI_UNKNOWN;
	eth = parse_eth(c);
	if (!eth)
		return -XVPC_DROP_MALFORMED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return -XVPC_DROP_INNER_L3;
	ip = parse_ipv4(c);
	if (!ip)
		return -XVPC_DROP_MALFORMED;
	ep = ep_lookup(v->vpc_id, ip->daddr);
	if (!ep || !(ep->flags & XVPC_EP_LOCAL))
		return -XVPC_DROP_NOT_LOCAL;
	if (ep->vni != vni)
		return -XVPC_DROP_VNI_MISMATCH;
	if (!mac_eq(eth->h_dest, ep->mac))
		return -XVPC_DROP_DST_MAC;
	if (lb_parse(c, (void *)eth, ip, v->vpc_id, &p))
		return -XVPC_DROP_MALFORMED;
	nk.vpc_id = v->vpc_id;
	nk.ip = ip->daddr;
	nk.port = p.key.dport;
	nk.proto = p.key.proto;
	vip = bpf_map_lookup_elem(&xvpc_lb_ns, &nk);
	if (!vip)
		return -XVPC_DROP_INNER_SPOOF; /* no public backend */
	lb_ns_ct_rev(&p, vip);
	out->ifindex = ep->ifindex;
	out->vpc_id = v->vpc_id;
	__builtin_memcpy(&out->inner, eth, sizeof(*eth));
	return DECAP_DELIVER;
}

#endif
