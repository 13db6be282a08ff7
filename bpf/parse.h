/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Header parsers with a cursor. Each returns the header or NULL when the
 * packet ends before the header does; the caller turns NULL into
 * -XVPC_DROP_MALFORMED (or a pass, on the underlay). */
#ifndef XVPC_PARSE_H
#define XVPC_PARSE_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xvpc_abi.h"

struct cursor {
	void *pos;
	void *end;
};

/* ARP for IPv4 over Ethernet, the only kind we answer. <linux/if_arp.h>
 * drags in libc socket headers, so the few constants live here. */
#define ARPHRD_ETHER  1
#define ARPOP_REQUEST 1
#define ARPOP_REPLY   2

struct arp_hdr {
	__be16 ar_hrd;
	__be16 ar_pro;
	__u8 ar_hln;
	__u8 ar_pln;
	__be16 ar_op;
};

struct arp_eth_ipv4 {
	struct arp_hdr hdr;
	__u8 sha[ETH_ALEN];
	__be32 sip;
	__u8 tha[ETH_ALEN];
	__be32 tip;
} __attribute__((packed));

struct vxlanhdr_x {
	__be32 flags; /* 0x08000000: the I flag, everything else reserved */
	__be32 vni;   /* VNI << 8 */
};

#define VXLAN_FLAG_I 0x08000000

/* Outer headers we push, in wire order. */
struct encap_hdr {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
	struct vxlanhdr_x vx;
	struct ethhdr inner;
} __attribute__((packed));

_Static_assert(sizeof(struct encap_hdr) == XVPC_ENCAP_OVERHEAD + ETH_HLEN,
	       "encap header must be 50 bytes plus the inner Ethernet");

static __always_inline void *cursor_take(struct cursor *c, __u32 len)
{
	void *p = c->pos;

	if (p + len > c->end)
		return NULL;
	c->pos = p + len;
	return p;
}

static __always_inline struct ethhdr *parse_eth(struct cursor *c)
{
	return cursor_take(c, sizeof(struct ethhdr));
}

/* IPv4 header including options; NULL if truncated or ihl < 5. */
static __always_inline struct iphdr *parse_ipv4(struct cursor *c)
{
	struct iphdr *ip = c->pos;
	__u32 hlen;

	if ((void *)(ip + 1) > c->end)
		return NULL;
	hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip) || ip->version != 4)
		return NULL;
	if (c->pos + hlen > c->end)
		return NULL;
	c->pos += hlen;
	return ip;
}

static __always_inline struct udphdr *parse_udp(struct cursor *c)
{
	return cursor_take(c, sizeof(struct udphdr));
}

static __always_inline struct vxlanhdr_x *parse_vxlan(struct cursor *c)
{
	return cursor_take(c, sizeof(struct vxlanhdr_x));
}

static __always_inline struct arp_eth_ipv4 *parse_arp(struct cursor *c)
{
	return cursor_take(c, sizeof(struct arp_eth_ipv4));
}

/* MACs are compared and copied as three 16-bit words: every MAC we touch
 * (packet, map value, stack) is at least 2-byte aligned. */
static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	const __u16 *x = (const __u16 *)a, *y = (const __u16 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2])) == 0;
}

static __always_inline void mac_copy(__u8 *dst, const __u8 *src)
{
	__u16 *d = (__u16 *)dst;
	const __u16 *s = (const __u16 *)src;

	d[0] = s[0];
	d[1] = s[1];
	d[2] = s[2];
}

static __always_inline int mac_is_multicast(const __u8 *mac)
{
	return mac[0] & 1; /* covers broadcast too */
}

static __always_inline int ipv4_is_fragment(const struct iphdr *ip)
{
	return ip->frag_off & bpf_htons(0x3fff); /* MF or an offset */
}

#endif
