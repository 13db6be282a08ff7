/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Health probes of local load balancer backends (docs/loadbalancer.md,
 * "Health checks"). The agent probes a VM from the node's link-local probe
 * address (xvpc_config.probe_ip) through the VM's host-side interface; the
 * VM answers through its gateway. Such an answer -- TCP from the VM's own
 * address (checked before), not a SYN, to a port of the agent's probe
 * range -- goes up the node's stack; anything else to the probe address is
 * dropped, so a VM reaches nothing else of the node this way.
 */
#ifndef XVPC_PROBE_H
#define XVPC_PROBE_H

#include <linux/if_packet.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>

#include "common.bpf.h"

/* The node configuration when the probe path is on, else NULL. */
static __always_inline const struct xvpc_config *probe_config(void)
{
	__u32 zero = 0;
	const struct xvpc_config *cfg =
		bpf_map_lookup_elem(&xvpc_config, &zero);

	return cfg && cfg->probe_ip ? cfg : NULL;
}

static __always_inline bool probe_port_ok(const struct xvpc_config *cfg,
					  __be16 port)
{
	__u16 p = bpf_ntohs(port);

	return p >= bpf_ntohs(cfg->probe_port_min) &&
	       p <= bpf_ntohs(cfg->probe_port_max);
}

/* A packet of the VM to cfg->probe_ip; @c points past the IPv4 header. */
static __always_inline int probe_answer(struct __sk_buff *skb,
					const struct xvpc_config *cfg,
					const struct iphdr *ip,
					struct cursor *c)
{
	struct tcphdr *th;

	if (ip->protocol != IPPROTO_TCP || ipv4_is_fragment(ip))
		return -XVPC_DROP_PROBE;
	th = cursor_take(c, sizeof(*th));
	if (!th)
		return -XVPC_DROP_MALFORMED;
	if (th->syn && !th->ack)
		return -XVPC_DROP_PROBE; /* the VM opens nothing on the node */
	if (!probe_port_ok(cfg, th->dest))
		return -XVPC_DROP_PROBE;
	/* Sent to the gateway's MAC: the stack takes it as its own. */
	if (bpf_skb_change_type(skb, PACKET_HOST))
		return -XVPC_DROP_PROBE;
	stat_add(XVPC_STAT_PROBE_REPLY, skb->len);
	return TC_ACT_OK;
}

#endif
