// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Underlay ingress, XDP flavour: see decap.h. */
#include "decap.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2

/* Learn mode: the packet goes on to another node (classify() rewrote the
 * outer IPv4 header). XDP has no neighbour output, so the outer MACs come
 * from the kernel's FIB and neighbour table. The kernel answers only for
 * an interface with IPv4 forwarding on, and XDP cannot wait for ARP: no
 * answer, no resolved neighbour, and the packet is dropped (drop_encap).
 * Sent with a redirect rather than XDP_TX, also back out of the interface
 * it came in on: on a veth, XDP_TX frames wait in the peer's ring until
 * something else wakes it, unless the peer runs XDP itself; a redirect
 * wakes it (the peer needs NAPI, i.e. GRO on, as for our decap). */
static __always_inline int xdp_forward(struct xdp_md *ctx,
				       const struct decap *d)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {
		.family = AF_INET,
		.l4_protocol = IPPROTO_UDP,
		.ifindex = ctx->ingress_ifindex,
		.ipv4_src = d->saddr,
		.ipv4_dst = d->daddr,
	};
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -XVPC_DROP_MALFORMED;
	fib.tot_len = data_end - data - ETH_HLEN;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) !=
	    BPF_FIB_LKUP_RET_SUCCESS)
		return -XVPC_DROP_ENCAP;
	mac_copy(eth->h_dest, fib.dmac);
	mac_copy(eth->h_source, fib.smac);
	stat_add(d->stat, data_end - data);
	return bpf_redirect(fib.ifindex, 0);
}

SEC("xdp")
int xvpc_xdp_decap(struct xdp_md *ctx)
{
	struct decap d = {};
	__u32 len = ctx->data_end - ctx->data;
	int ret;

	ret = classify((void *)(long)ctx->data, (void *)(long)ctx->data_end,
		       &d);
	if (ret == DECAP_PASS) {
		ret = lb_ns_from_underlay_xdp(ctx); /* public VIP: lb_ns.h */
		if (ret > 0)
			return ret; /* sent towards a backend */
	}
	if (ret == DECAP_PASS) {
		stat_add(XVPC_STAT_PASS, len);
		return XDP_PASS;
	}
	if (ret < 0)
		goto drop;
	if (ret == DECAP_FORWARD) {
		ret = xdp_forward(ctx, &d);
		if (ret < 0)
			goto drop;
		return ret;
	}
	if (bpf_xdp_adjust_head(ctx, XVPC_ENCAP_OVERHEAD)) {
		ret = -XVPC_DROP_DECAP;
		goto drop;
	}
	ret = lb_reply_xdp(ctx, d.vpc_id); /* load balancer: lb.h */
	if (ret < 0)
		goto drop;
	len -= XVPC_ENCAP_OVERHEAD;
	stat_add(XVPC_STAT_DECAP, len);
	ep_stat_tx(d.ifindex, len);
	return bpf_redirect(d.ifindex, 0);
drop:
	stat_add(-ret, len);
	return XDP_DROP;
}
