// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Underlay ingress, XDP flavour: see decap.h. */
#include "decap.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

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
