/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Counters, checksums and lookups shared by the endpoint and underlay
 * programs. */
#ifndef XVPC_COMMON_BPF_H
#define XVPC_COMMON_BPF_H

#include "maps.bpf.h"
#include "parse.h"

static __always_inline void stat_add(__u32 idx, __u64 bytes)
{
	struct xvpc_counter *c = bpf_map_lookup_elem(&xvpc_stats, &idx);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

static __always_inline void ep_stat_rx(__u32 ifindex, __u64 bytes)
{
	struct xvpc_ep_stats *s = bpf_map_lookup_elem(&xvpc_ep_stats, &ifindex);

	if (s) {
		s->rx_packets++;
		s->rx_bytes += bytes;
	}
}

static __always_inline void ep_stat_tx(__u32 ifindex, __u64 bytes)
{
	struct xvpc_ep_stats *s = bpf_map_lookup_elem(&xvpc_ep_stats, &ifindex);

	if (s) {
		s->tx_packets++;
		s->tx_bytes += bytes;
	}
}

static __always_inline const struct xvpc_config *node_config(void)
{
	__u32 zero = 0;
	const struct xvpc_config *cfg =
		bpf_map_lookup_elem(&xvpc_config, &zero);

	if (!cfg || !cfg->node_ip)
		return NULL;
	return cfg;
}

/* Pushed entries only: what the agent wrote from the desired state. */
static __always_inline struct xvpc_ep *ep_lookup_pushed(__u32 vpc_id, __be32 ip)
{
	struct xvpc_ep_key key = {.vpc_id = vpc_id, .ip = ip};

	return bpf_map_lookup_elem(&xvpc_endpoints, &key);
}

static __always_inline struct xvpc_learned *learned_lookup(__u32 vpc_id,
							   __be32 ip)
{
	struct xvpc_ep_key key = {.vpc_id = vpc_id, .ip = ip};

	return bpf_map_lookup_elem(&xvpc_learned, &key);
}

/* last_ns is written at most once per XVPC_LEARN_TOUCH_NS, so the entry's
 * cache line stays shared between CPUs. */
static __always_inline void learned_touch(struct xvpc_learned *l, __u64 now)
{
	if (now - l->last_ns >= XVPC_LEARN_TOUCH_NS)
		l->last_ns = now;
}

/* Pushed entries win; learned ones (docs/learning.md) fill the gaps. The
 * learned value starts with a struct xvpc_ep, so callers see one type. */
static __always_inline struct xvpc_ep *ep_lookup(__u32 vpc_id, __be32 ip)
{
	struct xvpc_ep *ep = ep_lookup_pushed(vpc_id, ip);
	struct xvpc_learned *l;

	if (ep)
		return ep;
	l = learned_lookup(vpc_id, ip);
	return l ? &l->ep : NULL;
}

/* The VPC's distribution mode entry when it is in learn mode, else NULL
 * (absent from xvpc_vpcs: push mode). */
static __always_inline const struct xvpc_vpc *learn_vpc(__u32 vpc_id)
{
	const struct xvpc_vpc *vpc = bpf_map_lookup_elem(&xvpc_vpcs, &vpc_id);

	return vpc && (vpc->flags & XVPC_VPC_LEARN) ? vpc : NULL;
}

_Static_assert((XVPC_MAX_GATEWAYS & (XVPC_MAX_GATEWAYS - 1)) == 0,
	       "gateway index is masked with XVPC_MAX_GATEWAYS - 1");

/* One of the VPC's gateways, picked by @hash; 0 if it has none. */
static __always_inline __be32 pick_gateway(const struct xvpc_vpc *vpc,
					   __u32 hash)
{
	__u32 n = vpc->n_gateways, i;

	if (!n)
		return 0;
	if (n > XVPC_MAX_GATEWAYS)
		n = XVPC_MAX_GATEWAYS;
	i = hash % n;
	/* The verifier cannot bound a modulo: the mask bounds it, and the
	 * empty asm keeps clang from dropping the mask as redundant. */
	asm volatile("" : "+r"(i));
	return vpc->gateways[i & (XVPC_MAX_GATEWAYS - 1)];
}

static __always_inline struct xvpc_subnet *subnet_lookup(__u32 vpc_id,
							 __be32 ip)
{
	struct xvpc_subnet_key key = {
		.prefixlen = 64,
		.vpc_id = vpc_id,
		.addr = ip,
	};

	return bpf_map_lookup_elem(&xvpc_subnets, &key);
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

static __always_inline __u16 ipv4_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)sizeof(*ip) / 2; i++)
		sum += w[i];
	return csum_fold(sum);
}

/* RFC 1624 incremental update for a TTL decrement by one. */
static __always_inline void ipv4_dec_ttl(struct iphdr *ip)
{
	__u32 sum = ip->check;

	sum += bpf_htons(0x0100);
	ip->check = (__u16)(sum + (sum >> 16));
	ip->ttl--;
}

#endif
