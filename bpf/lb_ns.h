/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Load balancer, north-south (docs/loadbalancer.md, "North-south"): a
 * client outside the overlay reaches a public VIP through any LB node.
 *
 *   LB node, underlay tc ingress or XDP (lb_ns_from_underlay(),
 *     lb_ns_from_underlay_xdp()): a plain IPv4
 *     TCP/UDP packet to a public service (vpc XVPC_LB_PUBLIC): conntrack or
 *     Maglev picks the backend, the destination is rewritten to it (the
 *     client's source is kept) and the packet goes over VXLAN, flagged
 *     XVPC_VXLAN_F_NS, to the backend's node (or straight to a local
 *     backend).
 *   Backend's node, decap (lb_ns_classify() in lb_ns_decap.h):
 *     an F_NS packet is delivered when its destination is a local backend
 *     of a public service (xvpc_lb_ns); it creates or refreshes the reverse
 *     conntrack entry (XVPC_LB_CT_F_NS) that holds the public VIP:port.
 *   Backend's reply, endpoint program (lb_from_ep() returns LB_NS_OUT, then
 *     lb_ns_out()): source rewritten to VIP:port, out of the underlay as
 *     plain IPv4; the kernel resolves the client's next hop. The reply does
 *     not cross the LB node.
 */
#ifndef XVPC_LB_NS_H
#define XVPC_LB_NS_H

#include "encap.h"
#include "lb.h"

/* Backend (vpc, ip, port, proto) -> the public VIP:port it serves. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVPC_LB_MAX_NS_BACKENDS);
	__type(key, struct xvpc_lb_ns_key);
	__type(value, struct xvpc_lb_ns_vip);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_lb_ns SEC(".maps");

/* ---- LB node ---- */

/* The public service a frame from the underlay is for, its tuple in @p;
 * NULL: not ours (the frame passes to the kernel untouched). Nothing is
 * looked up while the node has no public service. Only frames sent to
 * this node's MAC: a frame flooded on the underlay's segment reaches every
 * node, and only the one it was routed to may balance it. */
static __always_inline const struct xvpc_lb_svc *
lb_ns_match(void *data, void *end, const struct xvpc_lb_config **cfg,
	    struct lb_pkt *p)
{
	struct xvpc_lb_svc_key sk = {.vpc_id = XVPC_LB_PUBLIC};
	const struct xvpc_config *node;
	struct cursor c = {data, end};
	struct ethhdr *eth;
	struct iphdr *ip;

	*cfg = lb_config();
	if (!*cfg || !(*cfg)->public_services)
		return NULL;
	node = node_config();
	eth = parse_eth(&c);
	if (!node || !eth || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    !mac_eq(eth->h_dest, node->node_mac))
		return NULL;
	ip = parse_ipv4(&c);
	if (!ip || lb_parse(&c, data, ip, XVPC_LB_PUBLIC, p))
		return NULL;
	sk.vip = p->key.dst;
	sk.port = p->key.dport;
	sk.proto = p->key.proto;
	return bpf_map_lookup_elem(&xvpc_lb_services, &sk);
}

/* The flow's backend: its conntrack entry, else Maglev (the same hash and
 * table on every LB node, so any of them picks the same backend). Only the
 * forward entry lives here: replies never come back through this node. */
static __always_inline int lb_ns_backend(const struct xvpc_lb_config *cfg,
					 const struct lb_pkt *p,
					 const struct xvpc_lb_svc *svc,
					 struct xvpc_lb_backend *be,
					 __u32 *stat)
{
	struct xvpc_lb_ct *ct = bpf_map_lookup_elem(&xvpc_lb_ct, &p->key);
	const struct xvpc_lb_backend *pick;
	__u64 now = bpf_ktime_get_ns();
	struct xvpc_lb_ct fwd = {
		.dir = XVPC_LB_CT_FWD,
		.state = p->flags & (TCP_FIN | TCP_RST) ? XVPC_LB_CT_CLOSING
							: XVPC_LB_CT_OPEN,
		.slot = svc->slot,
		.created_ns = now,
		.last_ns = now,
	};

	if (ct && ct->dir == XVPC_LB_CT_FWD && lb_forward_ok(cfg, p, ct, now)) {
		*be = ct->nat;
		*stat = XVPC_STAT_LB_EST;
		return 0;
	}
	pick = lb_pick(svc, p);
	if (!pick)
		return -XVPC_DROP_LB_NO_BACKEND;
	*be = *pick;
	fwd.nat = *be;
	bpf_map_update_elem(&xvpc_lb_ct, &p->key, &fwd, BPF_ANY);
	*stat = XVPC_STAT_LB_NEW;
	return 0;
}

/* Backend's node: create or refresh the reverse entry of a north-south
 * flow. @p is the client's packet as the backend gets it (client ->
 * backend); the entry is keyed by the reply's tuple. A closed entry that a
 * new SYN reopens, or one of another VIP, is written anew. */
static __always_inline void lb_ns_ct_rev(const struct lb_pkt *p,
					 const struct xvpc_lb_ns_vip *vip)
{
	struct xvpc_lb_ct_key rk = {
		.vpc_id = p->key.vpc_id,
		.src = p->key.dst,
		.dst = p->key.src,
		.sport = p->key.dport,
		.dport = p->key.sport,
		.proto = p->key.proto,
	};
	__u64 now = bpf_ktime_get_ns();
	struct xvpc_lb_ct *ct = bpf_map_lookup_elem(&xvpc_lb_ct, &rk);
	struct xvpc_lb_ct rev = {
		.nat = {.ip = vip->vip, .port = vip->port},
		.dir = XVPC_LB_CT_REV,
		.state = p->flags & (TCP_FIN | TCP_RST) ? XVPC_LB_CT_CLOSING
							: XVPC_LB_CT_OPEN,
		.flags = XVPC_LB_CT_F_NS,
		.created_ns = now,
		.last_ns = now,
	};
	const struct xvpc_lb_config *cfg = lb_config();

	if (cfg && ct && ct->dir == XVPC_LB_CT_REV &&
	    (ct->flags & XVPC_LB_CT_F_NS) && ct->nat.ip == vip->vip &&
	    ct->nat.port == vip->port && lb_forward_ok(cfg, p, ct, now))
		return;
	bpf_map_update_elem(&xvpc_lb_ct, &rk, &rev, BPF_ANY);
}

/* A copy of the endpoint program's encap() with the F_NS flag: outer
 * IPv4/UDP/VXLAN to @node_ip; the kernel fills the outer MACs. */
static __always_inline int lb_ns_encap(struct __sk_buff *skb,
				       const struct xvpc_config *cfg,
				       __be32 node_ip, __u32 vni, __u32 hash)
{
	return vxlan_encap(skb, cfg, node_ip, vni, hash,
			   VXLAN_FLAG_I | XVPC_VXLAN_F_NS);
}

/* A backend on the LB node itself: its reverse entry is written here (as
 * the backend's node does on decap). @p: the tuple as it arrived. */
static __always_inline void lb_ns_local_rev(const struct lb_pkt *p, __u32 vpc,
					    const struct xvpc_lb_backend *be)
{
	struct xvpc_lb_ns_vip vip = {.vip = p->key.dst, .port = p->key.dport};
	struct lb_pkt at_be = *p;

	at_be.key.vpc_id = vpc;
	at_be.key.dst = be->ip;
	at_be.key.dport = be->port;
	lb_ns_ct_rev(&at_be, &vip);
}

static __always_inline int lb_ns_local(struct __sk_buff *skb,
				       const struct lb_pkt *p, __u32 vpc,
				       const struct xvpc_lb_backend *be,
				       __u32 ifindex)
{
	lb_ns_local_rev(p, vpc, be);
	stat_add(XVPC_STAT_LOCAL, skb->len);
	ep_stat_tx(ifindex, skb->len);
	return bpf_redirect(ifindex, 0);
}

/* After the DNAT: routed (TTL - 1, the backend subnet's gateway MAC as
 * source, the backend's MAC as destination), then encapsulated to the
 * backend's node, or delivered to a local backend. @p: the tuple as it
 * arrived (client -> VIP). */
static __always_inline int lb_ns_forward(struct __sk_buff *skb,
					 const struct lb_pkt *p, __u32 vpc,
					 const struct xvpc_lb_backend *be,
					 const struct xvpc_ep *ep)
{
	const struct xvpc_config *cfg = node_config();
	struct xvpc_subnet *sn;
	struct ethhdr *eth;
	struct iphdr *ip;

	if (!cfg)
		return -XVPC_DROP_NO_CONFIG;
	if (lb_reparse(skb, &eth, &ip))
		return -XVPC_DROP_MALFORMED;
	sn = subnet_lookup(vpc, be->ip);
	if (!sn)
		return -XVPC_DROP_NO_SUBNET;
	if (ip->ttl <= 1)
		return -XVPC_DROP_TTL;
	ipv4_dec_ttl(ip);
	mac_copy(eth->h_source, sn->gw_mac);
	mac_copy(eth->h_dest, ep->mac);
	stat_add(XVPC_STAT_ROUTED, skb->len);
	if (ep->flags & XVPC_EP_LOCAL)
		return lb_ns_local(skb, p, vpc, be, ep->ifindex);
	return lb_ns_encap(skb, cfg, ep->node_ip, ep->vni,
			   xvpc_lb_flow_hash(p->key.src, p->key.dst,
					     p->key.sport, p->key.dport,
					     p->key.proto));
}

/* tc ingress of the underlay, for a frame that is not our VXLAN. Returns
 * LB_PASS (not a public service: the caller passes it to the kernel), a
 * redirect verdict, or -XVPC_DROP_*. */
static __always_inline int lb_ns_from_underlay(struct __sk_buff *skb)
{
	const struct xvpc_lb_config *cfg;
	const struct xvpc_lb_svc *svc;
	struct xvpc_lb_backend be;
	struct lb_pkt p = {};
	struct xvpc_ep *ep;
	__u32 stat, vpc;
	int err;

	svc = lb_ns_match((void *)(long)skb->data, (void *)(long)skb->data_end,
			  &cfg, &p);
	if (!svc)
		return LB_PASS;
	vpc = svc->backend_vpc;
	err = lb_ns_backend(cfg, &p, svc, &be, &stat);
	if (err)
		return err;
	ep = ep_lookup(vpc, be.ip);
	if (!ep)
		return -XVPC_DROP_NO_ENDPOINT;
	stat_add(stat, skb->len);
	err = lb_rewrite_skb(skb, &p, 1, be.ip, be.port);
	if (err)
		return err;
	return lb_ns_forward(skb, &p, vpc, &be, ep);
}

/* ---- LB node, XDP flavour (frames carry complete checksums) ---- */

/* DNAT and route an XDP frame in place: destination to @be (RFC 1624
 * checksum updates, UDP's "no checksum" 0 kept), TTL - 1, gateway and
 * backend MACs. */
static __always_inline int lb_ns_dnat_xdp(void *data, void *end,
					  const struct lb_pkt *p,
					  const struct xvpc_lb_backend *be,
					  const __u8 *gw_mac,
					  const __u8 *be_mac)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	__be16 *ports;
	__u16 *l4sum;

	if (p->l4off > 80) /* bounds again, for the verifier */
		return -XVPC_DROP_MALFORMED;
	ports = data + p->l4off;
	l4sum = data + p->l4off + p->csum_at;
	if ((void *)(ip + 1) > end || (void *)(ports + 2) > end ||
	    (void *)(l4sum + 1) > end)
		return -XVPC_DROP_MALFORMED;
	if (ip->ttl <= 1)
		return -XVPC_DROP_TTL;
	if (p->key.proto == IPPROTO_TCP || *l4sum) {
		__u16 sum = lb_csum_upd4(*l4sum, ip->daddr, be->ip);

		sum = lb_csum_upd(sum, ports[1], be->port);
		*l4sum = sum || p->key.proto == IPPROTO_TCP ? sum : 0xffff;
	}
	ip->check = lb_csum_upd4(ip->check, ip->daddr, be->ip);
	ip->daddr = be->ip;
	ports[1] = be->port;
	ipv4_dec_ttl(ip);
	mac_copy(eth->h_source, gw_mac);
	mac_copy(eth->h_dest, be_mac);
	return 0;
}

/* The underlay next hop towards @node_ip from the kernel's FIB and
 * neighbours; non-zero when there is none yet. */
static __always_inline int lb_ns_nexthop_xdp(struct xdp_md *ctx,
					     const struct xvpc_config *cfg,
					     __be32 node_ip,
					     struct bpf_fib_lookup *fib)
{
	fib->family = 2; /* AF_INET */
	fib->ipv4_src = cfg->node_ip;
	fib->ipv4_dst = node_ip;
	fib->ifindex = cfg->underlay_ifindex;
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), BPF_FIB_LOOKUP_OUTPUT) !=
	       BPF_FIB_LKUP_RET_SUCCESS;
}

/* Outer Ethernet, IPv4, UDP and VXLAN (I | F_NS) in front of the frame,
 * MACs from @fib; out of the next hop's device. */
static __always_inline int lb_ns_encap_xdp(struct xdp_md *ctx,
					   const struct xvpc_config *cfg,
					   const struct bpf_fib_lookup *fib,
					   __be32 node_ip, __u32 vni,
					   __u32 hash)
{
	__u32 len = ctx->data_end - ctx->data;
	struct encap_hdr h = {};
	void *data;

	if (len + XVPC_ENCAP_OVERHEAD - ETH_HLEN > cfg->underlay_mtu)
		return -XVPC_DROP_TOO_BIG;
	if (bpf_xdp_adjust_head(ctx, -XVPC_ENCAP_OVERHEAD))
		return -XVPC_DROP_ENCAP;
	data = (void *)(long)ctx->data;
	if (data + XVPC_ENCAP_OVERHEAD > (void *)(long)ctx->data_end)
		return -XVPC_DROP_MALFORMED;
	len += XVPC_ENCAP_OVERHEAD;
	encap_outer(&h, cfg, node_ip, vni, hash, VXLAN_FLAG_I | XVPC_VXLAN_F_NS,
		    len);
	mac_copy(h.eth.h_dest, fib->dmac);
	mac_copy(h.eth.h_source, fib->smac);
	__builtin_memcpy(data, &h, XVPC_ENCAP_OVERHEAD);
	stat_add(XVPC_STAT_ENCAP, len);
	/* A redirect, even back out of the ingress device: XDP_TX on a veth
	 * only reaches a peer that runs an XDP program itself, while a
	 * redirect also wakes a peer with NAPI (GRO on). */
	return bpf_redirect(fib->ifindex, 0);
}

/* The XDP counterpart of lb_ns_from_underlay(). Returns LB_PASS, an XDP
 * verdict (> 0) or -XVPC_DROP_*. A backend's node with no underlay
 * neighbour entry yet: the frame passes to the kernel (which drops it;
 * the overlay's own traffic resolves the neighbour). */
static __always_inline int lb_ns_from_underlay_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	const struct xvpc_lb_config *cfg;
	const struct xvpc_config *node;
	struct bpf_fib_lookup fib = {};
	const struct xvpc_lb_svc *svc;
	struct xvpc_lb_backend be;
	struct xvpc_subnet *sn;
	struct lb_pkt p = {};
	struct xvpc_ep *ep;
	__u32 stat, vpc;
	int err;

	svc = lb_ns_match(data, end, &cfg, &p);
	if (!svc)
		return LB_PASS;
	node = node_config();
	if (!node)
		return -XVPC_DROP_NO_CONFIG;
	vpc = svc->backend_vpc;
	err = lb_ns_backend(cfg, &p, svc, &be, &stat);
	if (err)
		return err;
	ep = ep_lookup(vpc, be.ip);
	if (!ep)
		return -XVPC_DROP_NO_ENDPOINT;
	sn = subnet_lookup(vpc, be.ip);
	if (!sn)
		return -XVPC_DROP_NO_SUBNET;
	if (!(ep->flags & XVPC_EP_LOCAL) &&
	    lb_ns_nexthop_xdp(ctx, node, ep->node_ip, &fib))
		return LB_PASS;
	stat_add(stat, end - data);
	err = lb_ns_dnat_xdp(data, end, &p, &be, sn->gw_mac, ep->mac);
	if (err)
		return err;
	stat_add(XVPC_STAT_ROUTED, end - data);
	if (!(ep->flags & XVPC_EP_LOCAL))
		return lb_ns_encap_xdp(
			ctx, node, &fib, ep->node_ip, ep->vni,
			xvpc_lb_flow_hash(p.key.src, p.key.dst, p.key.sport,
					  p.key.dport, p.key.proto));
	lb_ns_local_rev(&p, vpc, &be);
	stat_add(XVPC_STAT_LOCAL, end - data);
	ep_stat_tx(ep->ifindex, end - data);
	return bpf_redirect(ep->ifindex, 0);
}

/* ---- the backend's reply ---- */

/* Endpoint program, after lb_from_ep() returned LB_NS_OUT (the source is
 * VIP:port again): routed out of the underlay as plain IPv4, the kernel's
 * FIB and neighbours choosing the next hop towards the client. */
static __always_inline int lb_ns_out(struct __sk_buff *skb)
{
	const struct xvpc_config *cfg = node_config();
	struct ethhdr *eth;
	struct iphdr *ip;

	if (!cfg)
		return -XVPC_DROP_NO_CONFIG;
	if (lb_reparse(skb, &eth, &ip))
		return -XVPC_DROP_MALFORMED;
	if (ip->ttl <= 1)
		return -XVPC_DROP_TTL;
	ipv4_dec_ttl(ip);
	stat_add(XVPC_STAT_ROUTED, skb->len);
	return bpf_redirect_neigh(cfg->underlay_ifindex, NULL, 0, 0);
}

#endif
