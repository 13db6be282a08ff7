// SPDX-License-Identifier: GPL-2.0-only
/*
 * xvpcctl trace: describe a packet, run it through the real datapath
 * program (pinned) with BPF_PROG_TEST_RUN against the live maps, and print
 * what happened: the lookups the program makes and their results, the
 * verdict with the drop reason, and the output packet decoded.
 */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "cli.h"
#include "datapath.h"
#include "lbview.h"
#include "netutil.h"
#include "pktbuild.h"

struct trace {
	struct cli_ctx *ctx;
	struct xvpc_dp *dp;
	struct json_object *lookups; /* array */
	/* what to send */
	bool underlay, arp, public;
	const char *from, *to, *src, *peer, *raw, *dst_mac;
	__u8 proto, ttl, tcp_flags;
	__u16 sport, dport, size;
	__u32 vni;
	/* derived */
	int ifindex;
	struct xvpc_iface bind;
	__u8 smac[6], dmac[6];
	__u8 in[PKT_MAX], out[PKT_MAX + 128];
	size_t in_len;
	/* load balancer: the decision from the maps, and the conntrack
	 * entries the run may write, as they were before it */
	bool lb_on;
	struct lbv_explain lb;
	struct lbv_guard guard;
	struct json_object *lb_json;
};

static const char usage[] =
	"usage: xvpcctl trace --from IFNAME --to IP [options]\n"
	"       xvpcctl trace --underlay --vni N --src IP --to IP [options]\n"
	"       xvpcctl trace --underlay --public --src IP --to VIP [options]\n"
	"       xvpcctl trace (--from IFNAME | --underlay) --raw HEX\n\n"
	"Runs a packet through the real datapath program against the live\n"
	"maps (BPF_PROG_TEST_RUN) and prints each lookup, the verdict and\n"
	"the drop reason, and the output packet. Nothing is sent; the run is\n"
	"counted in the node's counters like a real packet. A TCP or UDP\n"
	"packet also says which load balancer backend the flow gets and why\n"
	"(conntrack entry, or the Maglev table entry of its hash); conntrack\n"
	"entries the run writes are taken back.\n\n"
	"  --from IFNAME   endpoint port the packet enters (host side)\n"
	"  --underlay      the packet arrives from the underlay as VXLAN\n"
	"  --public        (--underlay) plain IPv4 from a client outside the\n"
	"                  overlay (--src) to a public VIP (--to), to this\n"
	"                  node's MAC: north-south load balancing\n"
	"  --to IP         destination address (inner, for --underlay)\n"
	"  --src IP        inner source address (--underlay)\n"
	"  --vni N         VNI of the VXLAN packet (--underlay)\n"
	"  --peer IP       outer source address (--underlay; default 0.0.0.1)\n"
	"  --proto P       icmp (default), tcp, udp\n"
	"  --sport N, --dport N, --ttl N (default 64), --size N (payload)\n"
	"  --tcp-flags F   comma-separated syn,ack,fin,rst,psh (default syn)\n"
	"  --dst-mac MAC   destination MAC (default: what a VM would use)\n"
	"  --arp           an ARP request for --to instead of IPv4\n"
	"  --raw HEX       the frame itself, as hex\n";

static void note(struct trace *t, const char *map, const char *key,
		 struct json_object *result, const char *text)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "map", json_object_new_string(map));
	json_object_object_add(o, "key", json_object_new_string(key));
	json_object_object_add(o, "result", result);
	json_object_array_add(t->lookups, o);
	if (!t->ctx->json)
		printf("  lookup %-15s [%s] -> %s\n", map, key,
		       text ? text : "none");
}

static int parse_hex(const char *s, __u8 *buf, size_t max, size_t *len)
{
	size_t n = 0;

	while (*s) {
		unsigned int b;

		if (*s == ' ' || *s == ':') {
			s++;
			continue;
		}
		if (n == max || sscanf(s, "%2x", &b) != 1 || !s[1])
			return -EINVAL;
		buf[n++] = b;
		s += 2;
	}
	*len = n;
	return n >= 14 ? 0 : -EINVAL;
}

static struct json_object *ep_json(const struct xvpc_ep *ep, char *text,
				   size_t len)
{
	char mac[XVPC_MAC_STRLEN], node[XVPC_IP_STRLEN];
	struct json_object *o = json_object_new_object();

	xvpc_fmt_mac(ep->mac, mac);
	xvpc_fmt_ip(ep->node_ip, node);
	json_object_object_add(o, "mac", json_object_new_string(mac));
	json_object_object_add(o, "node_ip", json_object_new_string(node));
	json_object_object_add(
		o, "local", json_object_new_boolean(ep->flags & XVPC_EP_LOCAL));
	json_object_object_add(o, "ifindex", json_object_new_int(ep->ifindex));
	json_object_object_add(o, "vni", json_object_new_int(ep->vni));
	snprintf(text, len, "mac %s vni %u %s %s ifindex %u", mac, ep->vni,
		 ep->flags & XVPC_EP_LOCAL ? "local" : "on node", node,
		 ep->ifindex);
	return o;
}

static int lookup_ep(struct trace *t, __u32 vpc, __be32 ip, struct xvpc_ep *ep)
{
	struct xvpc_ep_key k = {.vpc_id = vpc, .ip = ip};
	char key[64], ipb[XVPC_IP_STRLEN], text[160];
	int err;

	snprintf(key, sizeof(key), "vpc %u, %s", vpc, xvpc_fmt_ip(ip, ipb));
	err = bpf_map_lookup_elem(xvpc_dp_map_fd(t->dp, XVPC_M_ENDPOINTS), &k,
				  ep);
	if (err) {
		note(t, "xvpc_endpoints", key, NULL, NULL);
		return -ENOENT;
	}
	note(t, "xvpc_endpoints", key, ep_json(ep, text, sizeof(text)), text);
	return 0;
}

static int lookup_subnet(struct trace *t, __u32 vpc, __be32 ip,
			 struct xvpc_subnet *sn)
{
	struct xvpc_subnet_key k = {.prefixlen = 64, .vpc_id = vpc, .addr = ip};
	char key[64], ipb[XVPC_IP_STRLEN], cidr[XVPC_CIDR_STRLEN],
		mac[XVPC_MAC_STRLEN], text[160];
	struct json_object *o;

	snprintf(key, sizeof(key), "vpc %u, %s", vpc, xvpc_fmt_ip(ip, ipb));
	if (bpf_map_lookup_elem(xvpc_dp_map_fd(t->dp, XVPC_M_SUBNETS), &k,
				sn)) {
		note(t, "xvpc_subnets", key, NULL, NULL);
		return -ENOENT;
	}
	xvpc_fmt_cidr(sn->net, sn->plen, cidr);
	xvpc_fmt_mac(sn->gw_mac, mac);
	o = json_object_new_object();
	json_object_object_add(o, "cidr", json_object_new_string(cidr));
	json_object_object_add(o, "vni", json_object_new_int(sn->vni));
	json_object_object_add(
		o, "gateway_ip",
		json_object_new_string(xvpc_fmt_ip(sn->gw_ip, ipb)));
	json_object_object_add(o, "gateway_mac", json_object_new_string(mac));
	snprintf(text, sizeof(text), "%s vni %u gateway %s %s", cidr, sn->vni,
		 ipb, mac);
	note(t, "xvpc_subnets", key, o, text);
	return 0;
}

static int lookup_binding(struct trace *t)
{
	char key[32], ip[XVPC_IP_STRLEN], mac[XVPC_MAC_STRLEN], text[160];
	__u32 k = t->ifindex;
	struct json_object *o;

	snprintf(key, sizeof(key), "ifindex %d", t->ifindex);
	if (bpf_map_lookup_elem(xvpc_dp_map_fd(t->dp, XVPC_M_IFACES), &k,
				&t->bind)) {
		note(t, "xvpc_ifaces", key, NULL, NULL);
		return -ENOENT;
	}
	xvpc_fmt_mac(t->bind.mac, mac);
	o = json_object_new_object();
	json_object_object_add(o, "vpc", json_object_new_int64(t->bind.vpc_id));
	json_object_object_add(
		o, "ip", json_object_new_string(xvpc_fmt_ip(t->bind.ip, ip)));
	json_object_object_add(o, "mac", json_object_new_string(mac));
	json_object_object_add(o, "vni", json_object_new_int(t->bind.vni));
	snprintf(text, sizeof(text), "vpc %u ip %s mac %s vni %u",
		 t->bind.vpc_id, ip, mac, t->bind.vni);
	note(t, "xvpc_ifaces", key, o, text);
	return 0;
}

/* The destination MAC a VM would use: the peer's in its own subnet (what
 * our ARP reply told it), the gateway's for anything else. */
static void pick_dmac(struct trace *t, __be32 dst)
{
	struct xvpc_subnet sn;
	struct xvpc_ep ep;
	int in_subnet = !lookup_subnet(t, t->bind.vpc_id, dst, &sn);

	memcpy(t->dmac, t->bind.gw_mac, 6);
	if (in_subnet && !lookup_ep(t, t->bind.vpc_id, dst, &ep) &&
	    sn.vni == t->bind.vni)
		memcpy(t->dmac, ep.mac, 6);
}

static int build_from_ep(struct trace *t)
{
	struct pkt_inner in = {.l3 = t->arp ? PKT_ARP : PKT_IPV4,
			       .proto = t->proto,
			       .ttl = t->ttl,
			       .payload = t->size,
			       .sport = t->sport,
			       .dport = t->dport};
	char src[XVPC_IP_STRLEN];
	__be32 dst;

	t->ifindex = if_nametoindex(t->from);
	if (!t->ifindex && !(t->ifindex = atoi(t->from)))
		return cli_error(t->ctx, -ENODEV, "no interface '%s'", t->from);
	if (lookup_binding(t) && !t->raw)
		return cli_error(t->ctx, -ENOENT,
				 "interface %s has no endpoint bound", t->from);
	if (t->raw)
		return 0;
	if (!t->to || xvpc_parse_ip(t->to, &dst))
		return cli_error(t->ctx, -EINVAL, "--to needs an IPv4 address");
	if (t->dst_mac) {
		if (xvpc_parse_mac(t->dst_mac, t->dmac))
			return cli_error(t->ctx, -EINVAL, "bad --dst-mac");
	} else if (t->arp) {
		memset(t->dmac, 0xff, 6);
	} else {
		pick_dmac(t, dst);
	}
	in.smac = t->bind.mac;
	in.dmac = t->dmac;
	in.src = xvpc_fmt_ip(t->bind.ip, src);
	in.dst = t->to;
	t->in_len = pkt_inner_write(t->in, 0, &in);
	return 0;
}

static int build_underlay(struct trace *t)
{
	static const __u8 peer_mac[6] = {2, 0, 0, 0, 0, 1};
	struct pkt_inner in = {.proto = t->proto,
			       .ttl = t->ttl,
			       .payload = t->size,
			       .sport = t->sport,
			       .dport = t->dport,
			       .smac = peer_mac};
	struct pkt_outer out = {.on = true,
				.vni = t->vni,
				.smac = peer_mac,
				.src = t->peer ? t->peer : "0.0.0.1"};
	struct xvpc_config cfg;
	char node[XVPC_IP_STRLEN];
	struct xvpc_vni v;
	struct xvpc_ep ep;
	__u32 zero = 0;
	__be32 dst;

	if (bpf_map_lookup_elem(xvpc_dp_map_fd(t->dp, XVPC_M_CONFIG), &zero,
				&cfg) ||
	    !cfg.node_ip)
		return cli_error(t->ctx, -ENOENT,
				 "node config is empty: is "
				 "the agent initialised?");
	t->ifindex = cfg.underlay_ifindex;
	if (t->raw)
		return 0;
	if (!t->to || !t->src || xvpc_parse_ip(t->to, &dst))
		return cli_error(t->ctx, -EINVAL,
				 t->public ? "--public needs --src and --to"
					   : "--underlay needs --vni, --src "
					     "and --to");
	if (t->public) {
		/* A client's packet routed to this node: plain IPv4. */
		if (t->dst_mac && xvpc_parse_mac(t->dst_mac, t->dmac))
			return cli_error(t->ctx, -EINVAL, "bad --dst-mac");
		in.dmac = t->dst_mac ? t->dmac : cfg.node_mac;
		in.src = t->src;
		in.dst = t->to;
		t->in_len = pkt_build(t->in, NULL, &in);
		return 0;
	}
	out.dmac = cfg.node_mac;
	out.dst = xvpc_fmt_ip(cfg.node_ip, node);
	in.src = t->src;
	in.dst = t->to;
	in.dmac = peer_mac;
	if (t->dst_mac) {
		if (xvpc_parse_mac(t->dst_mac, t->dmac))
			return cli_error(t->ctx, -EINVAL, "bad --dst-mac");
		in.dmac = t->dmac;
	} else if (!bpf_map_lookup_elem(xvpc_dp_map_fd(t->dp, XVPC_M_VNIS),
					&t->vni, &v) &&
		   !lookup_ep(t, v.vpc_id, dst, &ep)) {
		memcpy(t->dmac, ep.mac, 6);
		in.dmac = t->dmac;
	}
	t->in_len = pkt_build(t->in, &out, &in);
	return 0;
}

/* One line (and one JSON object) per header of @p. */
static struct json_object *decode(const __u8 *p, size_t len, bool print)
{
	struct json_object *hdrs = json_object_new_array();
	char a[XVPC_MAC_STRLEN], b[XVPC_MAC_STRLEN], s[XVPC_IP_STRLEN],
		d[XVPC_IP_STRLEN];
	size_t off = 0;

	while (off + 14 <= len) {
		struct json_object *o = json_object_new_object();
		__u16 type = p[off + 12] << 8 | p[off + 13];
		__be32 sip, dip;

		xvpc_fmt_mac(p + off + 6, a);
		xvpc_fmt_mac(p + off, b);
		json_object_object_add(o, "eth_src", json_object_new_string(a));
		json_object_object_add(o, "eth_dst", json_object_new_string(b));
		json_object_object_add(o, "ethertype",
				       json_object_new_int(type));
		json_object_array_add(hdrs, o);
		if (print)
			printf("    eth  %s > %s type 0x%04x\n", a, b, type);
		off += 14;
		if (type == 0x0806 && off + 28 <= len) {
			memcpy(&sip, p + off + 14, 4);
			memcpy(&dip, p + off + 24, 4);
			xvpc_fmt_mac(p + off + 8, a);
			json_object_object_add(o, "arp_op",
					       json_object_new_int(p[off + 7]));
			json_object_object_add(
				o, "arp_sender_ip",
				json_object_new_string(xvpc_fmt_ip(sip, s)));
			json_object_object_add(o, "arp_sender_mac",
					       json_object_new_string(a));
			json_object_object_add(
				o, "arp_target_ip",
				json_object_new_string(xvpc_fmt_ip(dip, d)));
			if (print)
				printf("    arp  %s: %s is at %s (for %s)\n",
				       p[off + 7] == 2 ? "reply" : "request", s,
				       a, d);
			break;
		}
		if (type != 0x0800 || off + 20 > len)
			break;
		size_t ihl = (p[off] & 0xf) * 4;
		__u8 proto = p[off + 9];

		memcpy(&sip, p + off + 12, 4);
		memcpy(&dip, p + off + 16, 4);
		json_object_object_add(
			o, "ip_src",
			json_object_new_string(xvpc_fmt_ip(sip, s)));
		json_object_object_add(
			o, "ip_dst",
			json_object_new_string(xvpc_fmt_ip(dip, d)));
		json_object_object_add(o, "ttl",
				       json_object_new_int(p[off + 8]));
		json_object_object_add(o, "proto", json_object_new_int(proto));
		if (print)
			printf("    ipv4 %s > %s ttl %u proto %u len %u\n", s,
			       d, p[off + 8], proto,
			       p[off + 2] << 8 | p[off + 3]);
		off += ihl;
		if ((proto != 6 && proto != 17) || off + 8 > len)
			break;
		__u16 sp = p[off] << 8 | p[off + 1],
		      dp = p[off + 2] << 8 | p[off + 3];

		json_object_object_add(o, "sport", json_object_new_int(sp));
		json_object_object_add(o, "dport", json_object_new_int(dp));
		if (print)
			printf("    %s  %u > %u\n", proto == 6 ? "tcp" : "udp",
			       sp, dp);
		if (proto != 17 || dp != XVPC_VXLAN_PORT || off + 16 > len)
			break;
		__u32 vni = p[off + 12] << 16 | p[off + 13] << 8 | p[off + 14];

		json_object_object_add(o, "vni", json_object_new_int(vni));
		if (print)
			printf("    vxlan vni %u\n", vni);
		off += 16;
	}
	return hdrs;
}

static const char *verdict_name(int ret)
{
	switch (ret) {
	case TC_ACT_OK:
		return "pass";
	case TC_ACT_SHOT:
		return "drop";
	case TC_ACT_REDIRECT:
		return "redirect";
	default:
		return "other";
	}
}

/* The IPv4 TCP/UDP tuple of a frame (with @vxlan_ok, the inner one of a
 * VXLAN frame). */
struct ftuple {
	bool vxlan;
	__u32 vni;
	const __u8 *eth_dst; /* of the outermost header */
	struct xvpc_lb_ct_key key;
	size_t l4off;
};

static int frame_tuple(const __u8 *p, size_t len, bool vxlan_ok,
		       struct ftuple *ft)
{
	size_t off = 0, ihl;

	memset(ft, 0, sizeof(*ft));
	ft->eth_dst = p;
	for (;;) {
		if (off + 14 + 20 > len || p[off + 12] != 0x08 ||
		    p[off + 13] != 0x00)
			return -ENOENT;
		off += 14;
		ihl = (p[off] & 0xf) * 4;
		if ((p[off] >> 4) != 4 || ihl < 20 || off + ihl + 8 > len ||
		    (p[off + 6] & 0x3f) || p[off + 7])
			return -ENOENT; /* fragments are not balanced */
		ft->key.proto = p[off + 9];
		memcpy(&ft->key.src, p + off + 12, 4);
		memcpy(&ft->key.dst, p + off + 16, 4);
		off += ihl;
		memcpy(&ft->key.sport, p + off, 2);
		memcpy(&ft->key.dport, p + off + 2, 2);
		ft->l4off = off;
		if (!vxlan_ok || ft->vxlan || ft->key.proto != 17 ||
		    ntohs(ft->key.dport) != XVPC_VXLAN_PORT)
			break;
		if (off + 16 > len)
			return -ENOENT;
		ft->vxlan = true;
		ft->vni = p[off + 12] << 16 | p[off + 13] << 8 | p[off + 14];
		off += 16;
	}
	if (ft->key.proto != 6 && ft->key.proto != 17)
		return -ENOENT;
	if (ft->key.proto == 6 && ft->l4off + 20 > len)
		return -ENOENT;
	return 0;
}

static __u8 tcp_flags_of(const __u8 *p, const struct ftuple *ft)
{
	return ft->key.proto == 6 ? p[ft->l4off + 13] : 0;
}

/* Before the run: what the load balancer will do with the packet, decided
 * from the maps (cli/lbview.h), and the conntrack entries it may write. */
static int lb_before(struct trace *t)
{
	enum lbv_where where = LBV_FROM_EP;
	struct xvpc_config cfg;
	struct ftuple ft;
	struct xvpc_vni v;
	__u32 zero = 0;
	int err;

	if (frame_tuple(t->in, t->in_len, t->underlay, &ft))
		return 0; /* not TCP or UDP over IPv4: nothing to balance */
	if (!t->underlay) {
		if (!t->bind.vpc_id && !t->bind.ip)
			return 0; /* no binding: dropped before */
		ft.key.vpc_id = t->bind.vpc_id;
	} else if (ft.vxlan) {
		if (bpf_map_lookup_elem(xvpc_dp_map_fd(t->dp, XVPC_M_VNIS),
					&ft.vni, &v))
			return 0; /* unknown VNI: dropped on decapsulation */
		where = LBV_DECAP;
		ft.key.vpc_id = v.vpc_id;
	} else {
		if (bpf_map_lookup_elem(xvpc_dp_map_fd(t->dp, XVPC_M_CONFIG),
					&zero, &cfg) ||
		    memcmp(ft.eth_dst, cfg.node_mac, 6))
			return 0; /* not routed to this node */
		where = LBV_PUBLIC;
		ft.key.vpc_id = XVPC_LB_PUBLIC;
	}
	err = lbv_explain(t->dp, where, &ft.key, tcp_flags_of(t->in, &ft),
			  &t->lb);
	if (err)
		return cli_error(t->ctx, err, "reading the load balancer maps");
	t->lb_on = true;
	lbv_guard_take(t->dp, &t->lb, &ft.key, &t->guard);
	return 0;
}

/* Did the program do what the explanation says? A new flow's conntrack
 * entry names its backend even when a later stage dropped the packet;
 * otherwise the output's address and port, or the drop reason. @seen gets
 * what the program did. */
static bool lb_agrees(struct trace *t, int verdict, const char *reason,
		      __u32 out_len, char *seen, size_t len)
{
	bool reply = t->lb.kind == LBV_REPLY;
	char ip[XVPC_IP_STRLEN];
	struct xvpc_lb_ct ct;
	struct ftuple ft;
	__be32 addr;
	__be16 port;

	snprintf(seen, len, "verdict %s%s%s", verdict_name(verdict),
		 reason ? ", " : "", reason ? reason : "");
	switch (t->lb.kind) {
	case LBV_NO_BACKEND:
		return reason && !strcmp(reason, "drop_lb_no_backend");
	case LBV_MAGLEV:
		if (!bpf_map_lookup_elem(xvpc_dp_map_fd(t->dp, XVPC_M_LB_CT),
					 &t->guard.key[0], &ct) &&
		    ct.dir == XVPC_LB_CT_FWD) {
			snprintf(seen, len, "conntrack entry to %s:%u",
				 xvpc_fmt_ip(ct.nat.ip, ip),
				 ntohs(ct.nat.port));
			return ct.nat.ip == t->lb.be.ip &&
			       ct.nat.port == t->lb.be.port;
		}
		break;
	case LBV_CONNTRACK:
	case LBV_REPLY:
		break;
	default:
		return true; /* not balanced: nothing to compare */
	}
	if (verdict == TC_ACT_SHOT)
		return !reason || strncmp(reason, "drop_lb_", 8);
	if (frame_tuple(t->out, out_len, true, &ft))
		return false;
	addr = reply ? ft.key.src : ft.key.dst;
	port = reply ? ft.key.sport : ft.key.dport;
	snprintf(seen, len, "output %s %s:%u", reply ? "from" : "to",
		 xvpc_fmt_ip(addr, ip), ntohs(port));
	return addr == t->lb.be.ip && port == t->lb.be.port;
}

/* After the run: does the program agree with the explanation? Then the
 * conntrack entries the run wrote are taken back. */
static void lb_after(struct trace *t, int verdict, const char *reason,
		     __u32 out_len)
{
	int created = 0, err;
	char seen[64];
	bool agree;

	if (!t->lb_on)
		return;
	agree = lb_agrees(t, verdict, reason, out_len, seen, sizeof(seen));
	err = lbv_guard_undo(t->dp, &t->guard, &created);
	t->lb_json = lbv_explain_json(&t->lb);
	json_object_object_add(t->lb_json, "datapath_agrees",
			       json_object_new_boolean(agree));
	json_object_object_add(t->lb_json, "conntrack_written",
			       json_object_new_int(created));
	json_object_object_add(t->lb_json, "conntrack_restored",
			       json_object_new_boolean(!err));
	if (t->ctx->json)
		return;
	printf("  load balancer: %s\n", t->lb.text);
	if (!agree)
		printf("  load balancer: WARNING: the program did otherwise "
		       "(%s): did the maps change during the trace?\n",
		       seen);
	if (err)
		printf("  load balancer: WARNING: the run wrote %d conntrack "
		       "entries; taking them back failed: %s\n",
		       created, strerror(-err));
	else if (created)
		printf("  load balancer: the run wrote %d conntrack entr%s; "
		       "taken back (the trace leaves no flow state)\n",
		       created, created == 1 ? "y" : "ies");
}

static int run(struct trace *t)
{
	struct __sk_buff skb = {.ifindex = t->ifindex}, skb_out = {};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = t->in,
		    .data_size_in = t->in_len, .data_out = t->out,
		    .data_size_out = sizeof(t->out), .ctx_in = &skb,
		    .ctx_size_in = sizeof(skb), .ctx_out = &skb_out,
		    .ctx_size_out = sizeof(skb_out), .repeat = 1);
	const char *prog = t->underlay ? "xvpc_tc_decap" : "xvpc_from_ep";
	struct json_object *res = json_object_new_object();
	char path[512], ifname[IF_NAMESIZE] = "?";
	const char *reason = NULL;
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", t->ctx->pin_dir, prog);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = -errno;
		json_object_put(res);
		return cli_error(t->ctx, err, "cannot open program %s", path);
	}
	err = bpf_prog_test_run_opts(fd, &o);
	close(fd);
	if (err) {
		json_object_put(res);
		return cli_error(t->ctx, err, "test run of %s", prog);
	}
	if (o.retval == TC_ACT_SHOT)
		reason = xvpc_stat_name(skb_out.cb[0]);
	lb_after(t, o.retval, reason, o.data_size_out);
	if_indextoname(t->ifindex, ifname);
	json_object_object_add(res, "program", json_object_new_string(prog));
	json_object_object_add(res, "ifindex", json_object_new_int(t->ifindex));
	json_object_object_add(res, "input", decode(t->in, t->in_len, false));
	json_object_object_add(res, "lookups", json_object_get(t->lookups));
	json_object_object_add(res, "verdict",
			       json_object_new_string(verdict_name(o.retval)));
	json_object_object_add(res, "reason",
			       reason ? json_object_new_string(reason) : NULL);
	json_object_object_add(res, "lb", json_object_get(t->lb_json));
	if (t->ctx->json) {
		if (o.retval != TC_ACT_SHOT)
			json_object_object_add(
				res, "output",
				decode(t->out, o.data_size_out, false));
		printf("%s\n", json_object_to_json_string_ext(
				       res, JSON_C_TO_STRING_PRETTY));
	} else {
		printf("  verdict: %s%s%s\n", verdict_name(o.retval),
		       reason ? ", reason " : "", reason ? reason : "");
		if (o.retval != TC_ACT_SHOT) {
			printf("  output (%u bytes):\n", o.data_size_out);
			decode(t->out, o.data_size_out, true);
		}
	}
	json_object_put(res);
	return 0;
}

/* A built TCP packet gets a header length of 5 words and --tcp-flags. */
static void set_tcp_flags(struct trace *t)
{
	struct ftuple ft;

	if (t->raw || t->proto != 6 ||
	    frame_tuple(t->in, t->in_len, t->underlay, &ft))
		return;
	t->in[ft.l4off + 12] = 5 << 4;
	t->in[ft.l4off + 13] = t->tcp_flags;
}

static int trace_main(struct trace *t)
{
	char ifname[IF_NAMESIZE] = "?";
	int err;

	if (t->raw && parse_hex(t->raw, t->in, sizeof(t->in), &t->in_len))
		return cli_error(t->ctx, -EINVAL,
				 "--raw needs at least 14 bytes of hex");
	err = t->underlay ? build_underlay(t) : build_from_ep(t);
	if (err)
		return err;
	set_tcp_flags(t);
	err = lb_before(t);
	if (err)
		return err;
	if (!t->ctx->json) {
		if_indextoname(t->ifindex, ifname);
		printf("trace: %s on %s (ifindex %d), %zu bytes\n",
		       t->underlay ? "underlay" : "from endpoint", ifname,
		       t->ifindex, t->in_len);
		decode(t->in, t->in_len, true);
	}
	return run(t);
}

static int parse_tcp_flags(const char *s, __u8 *flags)
{
	static const struct {
		const char *name;
		__u8 bit;
	} names[] = {{"fin", 0x01},
		     {"syn", 0x02},
		     {"rst", 0x04},
		     {"psh", 0x08},
		     {"ack", 0x10}};
	char buf[64], *tok, *save;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	*flags = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		size_t i;

		for (i = 0; i < sizeof(names) / sizeof(*names); i++)
			if (!strcmp(tok, names[i].name))
				break;
		if (i == sizeof(names) / sizeof(*names))
			return -EINVAL;
		*flags |= names[i].bit;
	}
	return 0;
}

static int parse_proto(const char *s, __u8 *proto)
{
	if (!strcmp(s, "icmp"))
		*proto = 1;
	else if (!strcmp(s, "tcp"))
		*proto = 6;
	else if (!strcmp(s, "udp"))
		*proto = 17;
	else
		return -EINVAL;
	return 0;
}

int cmd_trace(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"from", required_argument, NULL, 'f'},
		{"underlay", no_argument, NULL, 'u'},
		{"to", required_argument, NULL, 't'},
		{"src", required_argument, NULL, 's'},
		{"vni", required_argument, NULL, 'v'},
		{"peer", required_argument, NULL, 'p'},
		{"proto", required_argument, NULL, 'P'},
		{"sport", required_argument, NULL, 'S'},
		{"dport", required_argument, NULL, 'D'},
		{"ttl", required_argument, NULL, 'T'},
		{"size", required_argument, NULL, 'z'},
		{"dst-mac", required_argument, NULL, 'm'},
		{"arp", no_argument, NULL, 'a'},
		{"public", no_argument, NULL, 'N'},
		{"tcp-flags", required_argument, NULL, 'F'},
		{"raw", required_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct trace t = {.ctx = ctx, .ttl = 64, .tcp_flags = 0x02 /* SYN */};
	int c, err;

	optind = 0;
	while ((c = getopt_long(argc + 1, argv - 1, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			t.from = optarg;
			break;
		case 'u':
			t.underlay = true;
			break;
		case 't':
			t.to = optarg;
			break;
		case 's':
			t.src = optarg;
			break;
		case 'v':
			t.vni = strtoul(optarg, NULL, 0);
			break;
		case 'p':
			t.peer = optarg;
			break;
		case 'S':
			t.sport = atoi(optarg);
			break;
		case 'D':
			t.dport = atoi(optarg);
			break;
		case 'T':
			t.ttl = atoi(optarg);
			break;
		case 'z':
			t.size = atoi(optarg);
			break;
		case 'm':
			t.dst_mac = optarg;
			break;
		case 'a':
			t.arp = true;
			break;
		case 'N':
			t.public = true;
			break;
		case 'j':
			ctx->json = true;
			break;
		case 'F':
			if (parse_tcp_flags(optarg, &t.tcp_flags))
				return cli_error(
					ctx, -EINVAL,
					"--tcp-flags: a comma-separated "
					"list of syn, ack, fin, rst, "
					"psh");
			break;
		case 'r':
			t.raw = optarg;
			break;
		case 'P':
			if (parse_proto(optarg, &t.proto))
				return cli_error(ctx, -EINVAL,
						 "--proto: icmp, tcp or udp");
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return -EINVAL;
		}
	}
	if (!t.underlay == !t.from) {
		fputs(usage, stderr);
		return cli_error(ctx, -EINVAL,
				 "trace needs --from IFNAME or --underlay");
	}
	if (t.public && !t.underlay)
		return cli_error(ctx, -EINVAL, "--public needs --underlay");
	if (t.vni > XVPC_VNI_MAX)
		return cli_error(ctx, -EINVAL, "--vni out of range (0..%u)",
				 XVPC_VNI_MAX);
	if (t.proto == 6 && t.size < 20)
		t.size = 20; /* room for a TCP header */
	if (t.proto == 17 && t.size < 8)
		t.size = 8;
	if (t.size > PKT_MAX - 100)
		return cli_error(ctx, -EINVAL, "--size at most %d",
				 PKT_MAX - 100);
	err = xvpc_dp_open_pinned(ctx->pin_dir, &t.dp);
	if (err)
		return cli_error(ctx, err, "cannot open the maps in %s",
				 ctx->pin_dir);
	t.lookups = json_object_new_array();
	err = trace_main(&t);
	json_object_put(t.lb_json);
	json_object_put(t.lookups);
	xvpc_dp_close(t.dp);
	return err;
}
