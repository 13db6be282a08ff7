/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Load balancer, east-west (docs/loadbalancer.md, "Datapath").
 *
 * On the client's node, in the endpoint program, before routing:
 *   conntrack hit, forward  -> destination rewritten to the flow's backend
 *   conntrack hit, reverse  -> (a reply from a local backend) source
 *                              rewritten back to VIP:port
 *   service hit, no entry   -> Maglev: hash of the 5-tuple picks the table
 *                              entry, both conntrack entries are written,
 *                              destination rewritten
 * then the normal path delivers the packet (locally or over VXLAN). Replies
 * from a backend on another node are reverse-translated after
 * decapsulation on the client's node (lb_reply_skb(), lb_reply_xdp()).
 *
 * Parse, look up, act; every drop has a reason (lb_no_backend, lb_csum).
 */
#ifndef XVPC_LB_H
#define XVPC_LB_H

#include <linux/tcp.h>

#include "common.bpf.h"

/* Map definitions (keys and values: maps/xvpc_abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVPC_LB_MAX_SERVICES);
	__type(key, struct xvpc_lb_svc_key);
	__type(value, struct xvpc_lb_svc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_lb_services SEC(".maps");

/* One table per service slot; the inner arrays are made by the loader with
 * the service's own m (BPF_F_INNER_MAP lets their sizes differ). */
struct xvpc_lb_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 251);
	__uint(map_flags, BPF_F_INNER_MAP);
	__type(key, __u32);
	__type(value, struct xvpc_lb_backend);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XVPC_LB_MAX_SERVICES);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct xvpc_lb_table);
} xvpc_lb_tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XVPC_LB_MAX_CT);
	__type(key, struct xvpc_lb_ct_key);
	__type(value, struct xvpc_lb_ct);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_lb_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xvpc_lb_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_lb_config SEC(".maps");

/* What lb_from_ep() did; negative values are -XVPC_DROP_*. */
#define LB_PASS 0 /* not load-balanced traffic: packet untouched */
#define LB_DNAT 1 /* destination rewritten to a backend */
#define LB_SNAT 2 /* source rewritten back to the VIP (a reply) */
#define LB_NS_OUT \
	3 /* LB_SNAT of a north-south reply: leaves through the underlay, \
	   * lb_ns_out() */

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/* A TCP or UDP packet's tuple, and where its L4 header starts. */
struct lb_pkt {
	struct xvpc_lb_ct_key key;
	__u32 l4off;  /* from the start of the frame */
	__u8 flags;   /* TCP flags; 0 for UDP */
	__u8 csum_at; /* offset of the L4 checksum inside the L4 header */
};

static __always_inline const struct xvpc_lb_config *lb_config(void)
{
	__u32 zero = 0;
	const struct xvpc_lb_config *cfg =
		bpf_map_lookup_elem(&xvpc_lb_config, &zero);

	return cfg && cfg->services ? cfg : NULL;
}

/* Fills @p from the L4 header at the cursor. Non-zero: nothing to balance
 * (not TCP/UDP, a fragment, or the L4 header is cut short: such a packet
 * goes its normal way, and to a VIP that is a drop). */
static __always_inline int lb_parse(struct cursor *c, void *data,
				    const struct iphdr *ip, __u32 vpc_id,
				    struct lb_pkt *p)
{
	__be16 *ports = c->pos;

	if (ipv4_is_fragment(ip))
		return -1;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *th = cursor_take(c, sizeof(*th));

		if (!th)
			return -1;
		p->flags = ((__u8 *)th)[13];
		p->csum_at = offsetof(struct tcphdr, check);
	} else if (ip->protocol == IPPROTO_UDP) {
		if (!parse_udp(c))
			return -1;
		p->flags = 0;
		p->csum_at = offsetof(struct udphdr, check);
	} else {
		return -1;
	}
	p->key.vpc_id = vpc_id;
	p->key.src = ip->saddr;
	p->key.dst = ip->daddr;
	p->key.sport = ports[0];
	p->key.dport = ports[1];
	p->key.proto = ip->protocol;
	p->l4off = (void *)ports - data;
	return 0;
}

static __always_inline __u64 lb_timeout(const struct xvpc_lb_config *cfg,
					const struct xvpc_lb_ct *ct, __u8 proto)
{
	__u64 t;

	if (ct->state == XVPC_LB_CT_CLOSING) {
		t = cfg->closing_timeout_ns;
		return t ? t : XVPC_LB_CLOSING_TIMEOUT_NS;
	}
	if (proto == IPPROTO_TCP) {
		t = cfg->tcp_timeout_ns;
		return t ? t : XVPC_LB_TCP_TIMEOUT_NS;
	}
	t = cfg->udp_timeout_ns;
	return t ? t : XVPC_LB_UDP_TIMEOUT_NS;
}

/* Time since the entry's last packet. Another CPU may have stamped it
 * after this packet read the clock: that is "just now", not 2^64 ns ago
 * (an unsigned difference would expire a live flow and re-balance it). */
static __always_inline __u64 lb_idle(const struct xvpc_lb_ct *ct, __u64 now)
{
	__u64 last = ct->last_ns;

	return (__s64)(now - last) > 0 ? now - last : 0;
}

static __always_inline int lb_alive(const struct xvpc_lb_config *cfg,
				    const struct xvpc_lb_ct *ct, __u8 proto,
				    __u64 now)
{
	return lb_idle(ct, now) <= lb_timeout(cfg, ct, proto);
}

/* A packet refreshes its entry; FIN or RST closes it (short timeout). */
static __always_inline void lb_touch(struct xvpc_lb_ct *ct, __u8 flags,
				     __u64 now)
{
	if ((flags & (TCP_FIN | TCP_RST)) && ct->state != XVPC_LB_CT_CLOSING) {
		ct->state = XVPC_LB_CT_CLOSING;
		ct->last_ns = now;
		return;
	}
	if (lb_idle(ct, now) > XVPC_LB_TOUCH_NS)
		ct->last_ns = now;
}

/* The forward entry a reverse entry belongs to. */
static __always_inline struct xvpc_lb_ct *
lb_forward_of(const struct lb_pkt *p, const struct xvpc_lb_ct *rev)
{
	struct xvpc_lb_ct_key k = {
		.vpc_id = p->key.vpc_id,
		.src = p->key.dst,
		.dst = rev->nat.ip,
		.sport = p->key.dport,
		.dport = rev->nat.port,
		.proto = p->key.proto,
	};
	struct xvpc_lb_ct *fwd = bpf_map_lookup_elem(&xvpc_lb_ct, &k);

	if (!fwd || fwd->dir != XVPC_LB_CT_FWD || fwd->nat.ip != p->key.src ||
	    fwd->nat.port != p->key.sport)
		return NULL;
	return fwd;
}

/* A reply is translated while its flow lives: the reverse entry is only
 * refreshed by replies, so when it looks stale the forward entry (refreshed
 * by the client) decides. A reply's FIN or RST closes both. */
static __always_inline int lb_reply_ok(const struct xvpc_lb_config *cfg,
				       const struct lb_pkt *p,
				       struct xvpc_lb_ct *rev, __u64 now)
{
	struct xvpc_lb_ct *fwd = NULL;

	if (!lb_alive(cfg, rev, p->key.proto, now)) {
		fwd = lb_forward_of(p, rev);
		if (!fwd || !lb_alive(cfg, fwd, p->key.proto, now))
			return 0;
		rev->last_ns = now;
	}
	if (p->flags & (TCP_FIN | TCP_RST)) {
		if (!fwd)
			fwd = lb_forward_of(p, rev);
		if (fwd)
			lb_touch(fwd, p->flags, now);
	}
	lb_touch(rev, p->flags, now);
	return 1;
}

/* An entry a forward packet may use: alive, and not a closed connection
 * that a new SYN reopens (that one is a new flow and is balanced anew). */
static __always_inline int lb_forward_ok(const struct xvpc_lb_config *cfg,
					 const struct lb_pkt *p,
					 struct xvpc_lb_ct *ct, __u64 now)
{
	if (!lb_alive(cfg, ct, p->key.proto, now))
		return 0;
	if (ct->state == XVPC_LB_CT_CLOSING &&
	    (p->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
		return 0;
	lb_touch(ct, p->flags, now);
	return 1;
}

/* Maglev: the flow's hash picks an entry of the service's table. */
static __always_inline const struct xvpc_lb_backend *
lb_pick(const struct xvpc_lb_svc *svc, const struct lb_pkt *p)
{
	const struct xvpc_lb_backend *be;
	__u32 slot = svc->slot, idx;
	void *table;

	if (!svc->backends || !svc->m)
		return NULL;
	table = bpf_map_lookup_elem(&xvpc_lb_tables, &slot);
	if (!table)
		return NULL;
	idx = xvpc_lb_flow_hash(p->key.src, p->key.dst, p->key.sport,
				p->key.dport, p->key.proto) %
	      svc->m;
	be = bpf_map_lookup_elem(table, &idx);
	return be && be->ip ? be : NULL;
}

/* Both entries of a new flow: forward under the client's tuple, reverse
 * under the tuple the backend's replies will carry. */
static __always_inline void lb_ct_create(const struct lb_pkt *p,
					 const struct xvpc_lb_svc *svc,
					 const struct xvpc_lb_backend *be,
					 __u64 now)
{
	__u8 state = p->flags & (TCP_FIN | TCP_RST) ? XVPC_LB_CT_CLOSING
						    : XVPC_LB_CT_OPEN;
	struct xvpc_lb_ct fwd = {
		.nat = *be,
		.dir = XVPC_LB_CT_FWD,
		.state = state,
		.slot = svc->slot,
		.created_ns = now,
		.last_ns = now,
	};
	struct xvpc_lb_ct rev = fwd;
	struct xvpc_lb_ct_key rk = {
		.vpc_id = p->key.vpc_id,
		.src = be->ip,
		.dst = p->key.src,
		.sport = be->port,
		.dport = p->key.sport,
		.proto = p->key.proto,
	};

	rev.nat.ip = p->key.dst;
	rev.nat.port = p->key.dport;
	rev.dir = XVPC_LB_CT_REV;
	bpf_map_update_elem(&xvpc_lb_ct, &p->key, &fwd, BPF_ANY);
	bpf_map_update_elem(&xvpc_lb_ct, &rk, &rev, BPF_ANY);
}

/* Rewrites the destination (dst != 0) or the source address and port of
 * an skb, with the kernel's checksum helpers: they handle
 * CHECKSUM_PARTIAL (GSO from a VM) and UDP's "no checksum" 0. */
static __always_inline int lb_rewrite_skb(struct __sk_buff *skb,
					  const struct lb_pkt *p, int dst,
					  __be32 ip, __be16 port)
{
	__u32 csum = p->l4off + p->csum_at;
	__u64 mangled = p->key.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__be32 old_ip = dst ? p->key.dst : p->key.src;
	__be16 old_port = dst ? p->key.dport : p->key.sport;
	__u32 ip_at = ETH_HLEN + (dst ? offsetof(struct iphdr, daddr)
				      : offsetof(struct iphdr, saddr));
	__u32 port_at = p->l4off + (dst ? 2 : 0);

	if (bpf_l4_csum_replace(skb, csum, old_ip, ip,
				BPF_F_PSEUDO_HDR | mangled | sizeof(ip)) ||
	    bpf_l4_csum_replace(skb, csum, old_port, port,
				mangled | sizeof(port)) ||
	    bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check),
				old_ip, ip, sizeof(ip)) ||
	    bpf_skb_store_bytes(skb, ip_at, &ip, sizeof(ip), 0) ||
	    bpf_skb_store_bytes(skb, port_at, &port, sizeof(port), 0))
		return -XVPC_DROP_LB_CSUM;
	return 0;
}

/* New flow to a service: pick, remember, translate. */
static __always_inline int lb_new_flow(struct __sk_buff *skb,
				       const struct lb_pkt *p,
				       const struct xvpc_lb_svc *svc, __u64 now)
{
	const struct xvpc_lb_backend *pick = lb_pick(svc, p);
	struct xvpc_lb_backend be;

	if (!pick)
		return -XVPC_DROP_LB_NO_BACKEND;
	be = *pick;
	lb_ct_create(p, svc, &be, now);
	stat_add(XVPC_STAT_LB_NEW, skb->len);
	return lb_rewrite_skb(skb, p, 1, be.ip, be.port) ?: LB_DNAT;
}

/* From an endpoint of VPC @vpc_id; the cursor is past the IPv4 header.
 * Returns LB_PASS, LB_DNAT, LB_SNAT or -XVPC_DROP_*. After LB_DNAT or
 * LB_SNAT the packet pointers are stale: lb_reparse(). The cursor is
 * left where it is. */
static __always_inline int lb_from_ep(struct __sk_buff *skb, __u32 vpc_id,
				      const struct iphdr *ip,
				      const struct cursor *at_l4)
{
	const struct xvpc_lb_config *cfg = lb_config();
	struct xvpc_lb_svc_key sk = {};
	struct cursor c = *at_l4;
	struct xvpc_lb_svc *svc;
	struct xvpc_lb_ct *ct;
	struct lb_pkt p = {};
	__u64 now;

	if (!cfg || lb_parse(&c, (void *)(long)skb->data, ip, vpc_id, &p))
		return LB_PASS;
	now = bpf_ktime_get_ns();
	ct = bpf_map_lookup_elem(&xvpc_lb_ct, &p.key);
	if (ct && ct->dir == XVPC_LB_CT_FWD &&
	    lb_forward_ok(cfg, &p, ct, now)) {
		stat_add(XVPC_STAT_LB_EST, skb->len);
		return lb_rewrite_skb(skb, &p, 1, ct->nat.ip, ct->nat.port)
			       ?: LB_DNAT;
	}
	if (ct && ct->dir == XVPC_LB_CT_REV && lb_reply_ok(cfg, &p, ct, now)) {
		int done = ct->flags & XVPC_LB_CT_F_NS ? LB_NS_OUT : LB_SNAT;

		stat_add(XVPC_STAT_LB_REPLY, skb->len);
		return lb_rewrite_skb(skb, &p, 0, ct->nat.ip, ct->nat.port)
			       ?: done;
	}
	sk.vpc_id = vpc_id;
	sk.vip = p.key.dst;
	sk.port = p.key.dport;
	sk.proto = p.key.proto;
	svc = bpf_map_lookup_elem(&xvpc_lb_services, &sk);
	if (!svc)
		return LB_PASS;
	return lb_new_flow(skb, &p, svc, now);
}

/* Ethernet and IPv4 headers again, after a rewrite moved the packet. */
static __always_inline int lb_reparse(struct __sk_buff *skb,
				      struct ethhdr **eth, struct iphdr **ip)
{
	struct cursor c = {(void *)(long)skb->data,
			   (void *)(long)skb->data_end};

	*eth = parse_eth(&c);
	*ip = parse_ipv4(&c);
	return *eth && *ip ? 0 : -XVPC_DROP_MALFORMED;
}

/* The reverse entry of a decapsulated reply, or NULL. */
static __always_inline struct xvpc_lb_ct *
lb_reply_lookup(void *data, void *data_end, __u32 vpc_id, struct lb_pkt *p)
{
	const struct xvpc_lb_config *cfg = lb_config();
	struct cursor c = {data, data_end};
	struct xvpc_lb_ct *ct;
	struct iphdr *ip;

	if (!cfg || !parse_eth(&c))
		return NULL;
	ip = parse_ipv4(&c);
	if (!ip || lb_parse(&c, data, ip, vpc_id, p))
		return NULL;
	ct = bpf_map_lookup_elem(&xvpc_lb_ct, &p->key);
	if (!ct || ct->dir != XVPC_LB_CT_REV ||
	    !lb_reply_ok(cfg, p, ct, bpf_ktime_get_ns()))
		return NULL;
	return ct;
}

/* tc decap, after the outer headers are gone: a reply from a backend on
 * another node to a client of this node gets VIP:port back as source. */
static __always_inline int lb_reply_skb(struct __sk_buff *skb, __u32 vpc_id)
{
	struct lb_pkt p = {};
	struct xvpc_lb_ct *ct =
		lb_reply_lookup((void *)(long)skb->data,
				(void *)(long)skb->data_end, vpc_id, &p);

	if (!ct)
		return LB_PASS;
	stat_add(XVPC_STAT_LB_REPLY, skb->len);
	return lb_rewrite_skb(skb, &p, 0, ct->nat.ip, ct->nat.port) ?: LB_SNAT;
}

/* RFC 1624 incremental update of a checksum field for a 16-bit word
 * changing from @from to @to (both as they are in the packet). */
static __always_inline __u16 lb_csum_upd(__u16 sum, __u16 from, __u16 to)
{
	__u32 s = (__u16)~sum + (__u16)~from + to;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return ~s;
}

static __always_inline __u16 lb_csum_upd4(__u16 sum, __be32 from, __be32 to)
{
	sum = lb_csum_upd(sum, from & 0xffff, to & 0xffff);
	return lb_csum_upd(sum, from >> 16, to >> 16);
}

/* XDP decap: as lb_reply_skb(), with checksums updated by hand (XDP frames
 * carry complete checksums: see docs/datapath.md). */
static __always_inline int lb_reply_xdp(struct xdp_md *ctx, __u32 vpc_id)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct lb_pkt p = {};
	struct xvpc_lb_ct *ct = lb_reply_lookup(data, end, vpc_id, &p);
	struct iphdr *ip = data + ETH_HLEN;
	__be16 *ports;
	__u16 *l4sum;

	if (!ct)
		return LB_PASS;
	/* Bounds again, for the verifier: lb_parse() saw them. */
	if (p.l4off > 80)
		return -XVPC_DROP_MALFORMED;
	ports = data + p.l4off;
	l4sum = data + p.l4off + p.csum_at;
	if ((void *)(ip + 1) > end || (void *)(ports + 2) > end ||
	    (void *)(l4sum + 1) > end)
		return -XVPC_DROP_MALFORMED;
	if (p.key.proto == IPPROTO_TCP || *l4sum) {
		__u16 s = lb_csum_upd4(*l4sum, ip->saddr, ct->nat.ip);

		s = lb_csum_upd(s, ports[0], ct->nat.port);
		*l4sum = s || p.key.proto == IPPROTO_TCP ? s : 0xffff;
	}
	ip->check = lb_csum_upd4(ip->check, ip->saddr, ct->nat.ip);
	ip->saddr = ct->nat.ip;
	ports[0] = ct->nat.port;
	stat_add(XVPC_STAT_LB_REPLY, end - data);
	return LB_SNAT;
}

#endif
