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

/* Verdict of the classifier: PASS (not ours), or deliver to ifindex. */
#define DECAP_PASS    0
#define DECAP_DELIVER 1

struct decap {
	__u32 ifindex;
	__u32 vpc_id;	     /* of the VNI: for the load balancer's replies */
	struct ethhdr inner; /* inner Ethernet, to restore on tc */
};

static __always_inline int check_inner(struct cursor *c, __u32 vni,
				       const struct xvpc_vni *v,
				       __be32 outer_src, struct decap *out)
{
	struct xvpc_ep *ep, *src;
	struct ethhdr *eth;
	struct iphdr *ip;

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
	/* The source must be an endpoint of the VNI's VPC, hosted on the node
	 * the packet comes from: a VNI never carries another tenant's packet
	 * in, and a node cannot speak for endpoints it does not host. One
	 * hash lookup, no trie walk. */
	src = ep_lookup(v->vpc_id, ip->saddr);
	if (!src || src->node_ip != outer_src)
		return -XVPC_DROP_INNER_SPOOF;
	out->ifindex = ep->ifindex;
	out->vpc_id = v->vpc_id;
	__builtin_memcpy(&out->inner, eth, sizeof(*eth));
	return DECAP_DELIVER;
}

#include "lb_ns_decap.h" /* north-south load balancer: fills struct decap */

/* Classify an underlay frame. Returns DECAP_PASS, DECAP_DELIVER (with *out
 * filled), or -XVPC_DROP_*. Leaves the packet unchanged. */
static __always_inline int classify(void *data, void *data_end,
				    struct decap *out)
{
	struct cursor c = {data, data_end};
	const struct xvpc_config *cfg;
	struct vxlanhdr_x *vx;
	struct xvpc_vni *v;
	struct ethhdr *eth;
	struct udphdr *udp;
	struct iphdr *ip;
	__u32 vni;

	eth = parse_eth(&c);
	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return DECAP_PASS;
	ip = parse_ipv4(&c);
	if (!ip || ip->protocol != IPPROTO_UDP)
		return DECAP_PASS;
	cfg = node_config();
	if (!cfg || ip->daddr != cfg->node_ip)
		return DECAP_PASS;
	if (ip->frag_off & bpf_htons(0x1fff))
		return DECAP_PASS; /* a later fragment: no UDP header to see */
	udp = parse_udp(&c);
	if (!udp || udp->dest != bpf_htons(XVPC_VXLAN_PORT))
		return DECAP_PASS;
	/* Ours from here on: every failure is a counted drop. */
	if (ipv4_is_fragment(ip) || ip->ihl != 5)
		return -XVPC_DROP_OUTER_FRAG;
	vx = parse_vxlan(&c);
	if (!vx)
		return -XVPC_DROP_MALFORMED;
	if (vx->flags == bpf_htonl(VXLAN_FLAG_I | XVPC_VXLAN_F_NS))
		return lb_ns_classify(&c, vx, ip->saddr,
				      out); /* lb_ns_decap.h */
	if (vx->flags != bpf_htonl(VXLAN_FLAG_I) || (vx->vni & bpf_htonl(0xff)))
		return -XVPC_DROP_VXLAN_FLAGS;
	vni = bpf_ntohl(vx->vni) >> 8;
	v = bpf_map_lookup_elem(&xvpc_vnis, &vni);
	if (!v)
		return -XVPC_DROP_VNI_UNKNOWN;
	return check_inner(&c, vni, v, ip->saddr, out);
}

#endif
