/* SPDX-License-Identifier: GPL-2.0-only */
/* Packet builder for xvpcctl trace, the selftests and the benchmarks: a
 * frame is described by a struct of fields and written out in wire format,
 * with correct IPv4 checksums, so tables can state inputs and expected
 * outputs alike. */
#ifndef XVPC_PKTBUILD_H
#define XVPC_PKTBUILD_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>
#include <linux/types.h>

#include "xvpc_abi.h"

#define PKT_MAX 2048

enum pkt_l3 {
	PKT_IPV4 = 0,
	PKT_ARP,
	PKT_IPV6,
	PKT_VLAN_IPV4,
};

struct pkt_inner {
	const __u8 *dmac, *smac;
	enum pkt_l3 l3;
	/* IPv4 */
	const char *src, *dst;
	__u8 ttl;	    /* 0: 64 */
	__u8 proto;	    /* 0: ICMP */
	__u8 opt_words;	    /* IPv4 option words (ihl = 5 + opt_words) */
	__u16 frag;	    /* frag_off field, host order */
	__u16 payload;	    /* bytes after the IPv4 header */
	__u8 bad_ihl;	    /* nonzero: write this IHL instead */
	__u16 sport, dport; /* TCP/UDP ports at the start of the payload */
	/* ARP */
	__u16 arp_op;	 /* 0: request */
	const __u8 *sha; /* NULL: smac */
	const char *sip; /* NULL: src */
	const char *tip; /* NULL: dst */
	const __u8 *tha; /* NULL: zero */
};

struct pkt_outer {
	bool on;
	const __u8 *dmac, *smac;
	const char *src, *dst;
	__u16 dport; /* 0: 4789 */
	__u16 sport;
	__u32 vx_flags; /* 0: 0x08000000 */
	__u32 vni;
	__u8 vni_low; /* reserved low byte of the VNI word */
	__u16 frag;
	__u8 opt_words;
	__u8 proto; /* 0: UDP */
};

static inline __be32 pkt_ip(const char *s)
{
	struct in_addr a = {};

	if (s)
		inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

static inline __u16 pkt_csum(const void *p, size_t len)
{
	const __u8 *b = p;
	__u32 sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (b[i] << 8) | b[i + 1];
	if (len & 1)
		sum += b[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons(~sum & 0xffff);
}

static inline size_t pkt_put(__u8 *buf, size_t off, const void *p, size_t n)
{
	memcpy(buf + off, p, n);
	return off + n;
}

static inline size_t pkt_put16(__u8 *buf, size_t off, __u16 host)
{
	__u16 v = htons(host);

	return pkt_put(buf, off, &v, 2);
}

static inline size_t pkt_ipv4_hdr(__u8 *buf, size_t off, __be32 src, __be32 dst,
				  __u8 proto, __u8 ttl, __u16 frag,
				  __u8 opt_words, __u16 payload)
{
	__u8 *h = buf + off;
	size_t hlen = 20 + 4 * opt_words;
	__u16 tot = hlen + payload;

	memset(h, 0, hlen);
	h[0] = 0x40 | (hlen / 4);
	h[2] = tot >> 8;
	h[3] = tot & 0xff;
	h[6] = frag >> 8;
	h[7] = frag & 0xff;
	h[8] = ttl;
	h[9] = proto;
	memcpy(h + 12, &src, 4);
	memcpy(h + 16, &dst, 4);
	for (int i = 0; i < opt_words; i++)
		h[20 + 4 * i] = 1; /* NOP options */
	__u16 c = pkt_csum(h, hlen);
	memcpy(h + 10, &c, 2);
	return off + hlen;
}

static inline size_t pkt_inner_write(__u8 *buf, size_t off,
				     const struct pkt_inner *in)
{
	static const __u8 zero[6];
	__u16 proto = in->l3 == PKT_ARP		? 0x0806
		      : in->l3 == PKT_IPV6	? 0x86dd
		      : in->l3 == PKT_VLAN_IPV4 ? 0x8100
						: 0x0800;

	off = pkt_put(buf, off, in->dmac, 6);
	off = pkt_put(buf, off, in->smac, 6);
	off = pkt_put16(buf, off, proto);
	if (in->l3 == PKT_VLAN_IPV4) {
		off = pkt_put16(buf, off, 100);
		off = pkt_put16(buf, off, 0x0800);
	}
	if (in->l3 == PKT_ARP) {
		__be32 sip = pkt_ip(in->sip ? in->sip : in->src);
		__be32 tip = pkt_ip(in->tip ? in->tip : in->dst);

		off = pkt_put16(buf, off, 1);
		off = pkt_put16(buf, off, 0x0800);
		buf[off++] = 6;
		buf[off++] = 4;
		off = pkt_put16(buf, off, in->arp_op ? in->arp_op : 1);
		off = pkt_put(buf, off, in->sha ? in->sha : in->smac, 6);
		off = pkt_put(buf, off, &sip, 4);
		off = pkt_put(buf, off, in->tha ? in->tha : zero, 6);
		off = pkt_put(buf, off, &tip, 4);
		return off;
	}
	if (in->l3 == PKT_IPV6) {
		memset(buf + off, 0, 40 + in->payload);
		buf[off] = 0x60;
		buf[off + 4] = in->payload >> 8;
		buf[off + 5] = in->payload & 0xff;
		buf[off + 6] = 59; /* no next header */
		buf[off + 7] = 64;
		return off + 40 + in->payload;
	}
	off = pkt_ipv4_hdr(buf, off, pkt_ip(in->src), pkt_ip(in->dst),
			   in->proto ? in->proto : 1, in->ttl ? in->ttl : 64,
			   in->frag, in->opt_words, in->payload);
	if (in->bad_ihl)
		buf[off - 20 - 4 * in->opt_words] = 0x40 | in->bad_ihl;
	for (int i = 0; i < in->payload; i++)
		buf[off + i] = (__u8)i;
	if ((in->sport || in->dport) && in->payload >= 4) {
		pkt_put16(buf, off, in->sport);
		pkt_put16(buf, off + 2, in->dport);
	}
	return off + in->payload;
}

/* Writes [outer eth/ip/udp/vxlan] + inner frame; returns the length. */
static inline size_t pkt_build(__u8 *buf, const struct pkt_outer *out,
			       const struct pkt_inner *in)
{
	__u8 inner[PKT_MAX];
	size_t ilen = pkt_inner_write(inner, 0, in), off = 0;
	__u16 udp_len = 8 + 8 + ilen;

	if (!out || !out->on) {
		memcpy(buf, inner, ilen);
		return ilen;
	}
	off = pkt_put(buf, off, out->dmac, 6);
	off = pkt_put(buf, off, out->smac, 6);
	off = pkt_put16(buf, off, 0x0800);
	off = pkt_ipv4_hdr(buf, off, pkt_ip(out->src), pkt_ip(out->dst),
			   out->proto ? out->proto : 17, 64, out->frag,
			   out->opt_words, udp_len);
	off = pkt_put16(buf, off, out->sport);
	off = pkt_put16(buf, off, out->dport ? out->dport : XVPC_VXLAN_PORT);
	off = pkt_put16(buf, off, udp_len);
	off = pkt_put16(buf, off, 0);
	__u32 fl = htonl(out->vx_flags ? out->vx_flags : 0x08000000);
	__u32 vni = htonl(out->vni << 8 | out->vni_low);
	off = pkt_put(buf, off, &fl, 4);
	off = pkt_put(buf, off, &vni, 4);
	return pkt_put(buf, off, inner, ilen);
}

#endif
