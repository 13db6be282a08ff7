/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * VXLAN encapsulation, one implementation for every path that sends over
 * the overlay: an endpoint's packet (tc), a learning-mode miss to a gateway
 * (tc), and the north-south load balancer (tc and XDP), which only differ
 * by the flags word.
 */
#ifndef XVPC_ENCAP_H
#define XVPC_ENCAP_H

#include "common.bpf.h"

#define ENCAP_FLAGS                                                  \
	(BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 |   \
	 BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2_ETH | \
	 BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN))

/* Outer UDP source ports come from this range, picked by the inner flow's
 * hash so that the receiver's RSS spreads flows (RFC 7348 section 5). */
#define SPORT_BASE 49152
#define SPORT_MASK 0x3fff

/* The outer IPv4, UDP and VXLAN headers of a packet of @len bytes (outer
 * Ethernet included) to @node_ip; the outer source MAC is left to the
 * caller. @vx_flags: VXLAN_FLAG_I and xvpc's own bits (host order). */
static __always_inline void encap_outer(struct encap_hdr *h,
					const struct xvpc_config *cfg,
					__be32 node_ip, __u32 vni, __u32 hash,
					__u32 vx_flags, __u32 len)
{
	struct iphdr ip = {
		.version = 4,
		.ihl = 5,
		.tot_len = bpf_htons(len - ETH_HLEN),
		.frag_off = bpf_htons(0x4000), /* DF */
		.ttl = 64,
		.protocol = IPPROTO_UDP,
		.saddr = cfg->node_ip,
		.daddr = node_ip,
	};

	ip.check = ipv4_csum(&ip);
	h->ip = ip;
	h->eth.h_proto = bpf_htons(ETH_P_IP);
	h->udp.source = bpf_htons(SPORT_BASE + (hash & SPORT_MASK));
	h->udp.dest = bpf_htons(XVPC_VXLAN_PORT);
	h->udp.len = bpf_htons(len - ETH_HLEN - sizeof(struct iphdr));
	h->vx.flags = bpf_htonl(vx_flags);
	h->vx.vni = bpf_htonl(vni << 8);
}

/* tc: grow the packet by the outer headers (GSO kept: the kernel knows it
 * is UDP-encapsulated Ethernet) and send it out of the underlay; the kernel
 * fills the outer MACs from its FIB and neighbours. */
static __always_inline int vxlan_encap(struct __sk_buff *skb,
				       const struct xvpc_config *cfg,
				       __be32 node_ip, __u32 vni, __u32 hash,
				       __u32 vx_flags)
{
	struct encap_hdr h = {};

	/* A non-GSO frame must fit the underlay once the outer IP, UDP and
	 * VXLAN headers (36 bytes) are added in front of the inner frame. */
	if (!skb->gso_size &&
	    skb->len + XVPC_ENCAP_OVERHEAD - ETH_HLEN > cfg->underlay_mtu)
		return -XVPC_DROP_TOO_BIG;
	if (bpf_skb_load_bytes(skb, 0, &h.inner, sizeof(h.inner)))
		return -XVPC_DROP_MALFORMED;
	if (bpf_skb_adjust_room(skb, XVPC_ENCAP_OVERHEAD, BPF_ADJ_ROOM_MAC,
				ENCAP_FLAGS))
		return -XVPC_DROP_ENCAP;
	encap_outer(&h, cfg, node_ip, vni, hash, vx_flags, skb->len);
	mac_copy(h.eth.h_source, cfg->node_mac);
	if (bpf_skb_store_bytes(skb, 0, &h, sizeof(h), 0))
		return -XVPC_DROP_ENCAP;
	stat_add(XVPC_STAT_ENCAP, skb->len);
	return bpf_redirect_neigh(cfg->underlay_ifindex, NULL, 0, 0);
}

#endif
