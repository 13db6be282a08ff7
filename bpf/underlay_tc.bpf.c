// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Underlay ingress, tc flavour: see decap.h. */
#include <linux/pkt_cls.h>

#include "decap.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int xvpc_tc_decap(struct __sk_buff *skb)
{
	struct decap d = {};
	__u32 len = skb->len;
	int ret;

	ret = classify((void *)(long)skb->data, (void *)(long)skb->data_end,
		       &d);
	if (ret == DECAP_PASS) {
		ret = lb_ns_from_underlay(skb); /* public VIP: lb_ns.h */
		if (ret > 0)
			return ret; /* redirected towards a backend */
	}
	if (ret == DECAP_PASS) {
		stat_add(XVPC_STAT_PASS, len);
		return TC_ACT_OK;
	}
	if (ret < 0)
		goto drop;
	if (ret == DECAP_FORWARD) {
		/* Learn mode: on to another node. The kernel fills the outer
		 * MACs from its FIB and neighbours, as for encapsulation. */
		stat_add(d.stat, len);
		return bpf_redirect_neigh(d.ifindex, NULL, 0, 0);
	}
	/* Remove outer IP, UDP, VXLAN and the inner Ethernet header (whose
	 * addresses then go where the outer ones were). */
	if (bpf_skb_adjust_room(skb, -XVPC_ENCAP_OVERHEAD, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_FIXED_GSO) ||
	    bpf_skb_store_bytes(skb, 0, &d.inner, sizeof(d.inner), 0)) {
		ret = -XVPC_DROP_DECAP;
		goto drop;
	}
	ret = lb_reply_skb(skb, d.vpc_id); /* load balancer: lb.h */
	if (ret < 0)
		goto drop;
	len = skb->len;
	stat_add(XVPC_STAT_DECAP, len);
	ep_stat_tx(d.ifindex, len);
	return bpf_redirect(d.ifindex, 0);
drop:
	stat_add(-ret, len);
	skb->cb[0] = -ret; /* the reason, for xvpcctl trace */
	return TC_ACT_SHOT;
}
