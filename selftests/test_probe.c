// SPDX-License-Identifier: GPL-2.0-only
/*
 * Health probe answers through BPF_PROG_TEST_RUN (bpf/probe.h): a VM's
 * packet to the node's probe address goes up the node's stack only when it
 * is TCP from the VM's own address, not a SYN, to a port of the agent's
 * probe range; everything else is dropped with a named reason, and with the
 * probe address 0 nothing changes. Table: {description, probe on, sender
 * port, input frame, verdict, counter, expected output frame, receiving
 * endpoint}.
 *
 * Topology: fixture.h; a1 10.0.1.10 (port "a1") answers the agent's probe
 * from 169.254.169.250, ports 60000-60999.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "log.h"
#include "netutil.h"
#include "pktbuild.h"

#include "fixture.h"

#define PROBE "169.254.169.250"
#define A1    "10.0.1.10"

#define FIN 0x01
#define SYN 0x02
#define RST 0x04
#define ACK 0x10

/* A VM's packet; zero fields take the default of a probe answer: a1's
 * TCP from 10.0.1.10:8080 to 169.254.169.250:60000 through the gateway. */
struct vm_pkt {
	const __u8 *dmac, *smac;
	const char *src, *dst;
	__u8 proto;	/* 6 (TCP) unless set */
	__u16 dport;	/* 60000 unless set */
	__u16 frag;	/* IPv4 frag_off */
	__u8 tcp_flags; /* TCP */
	bool arp;	/* an ARP request from a1 for dst instead */
};

struct probe_case {
	const char *desc;
	bool off; /* probe address 0 in the node config */
	struct vm_pkt in;
	int truncate;
	int verdict;
	unsigned int stat;
	bool check_out;
	struct pkt_inner out; /* expected frame (ARP answers) */
	enum port to_port;
};

static const struct probe_case cases[] = {
	{"SYN-ACK of the VM to a probe port: up the stack",
	 false,
	 {.tcp_flags = SYN | ACK},
	 .verdict = TC_ACT_OK,
	 .stat = XVPC_STAT_PROBE_REPLY},
	{"ACK to the last probe port: up the stack",
	 false,
	 {.dport = 60999, .tcp_flags = ACK},
	 .verdict = TC_ACT_OK,
	 .stat = XVPC_STAT_PROBE_REPLY},
	{"RST (nothing listens in the VM): up the stack, the probe fails "
	 "at once",
	 false,
	 {.dport = 60500, .tcp_flags = RST | ACK},
	 .verdict = TC_ACT_OK,
	 .stat = XVPC_STAT_PROBE_REPLY},
	{"sent to the probe address's own MAC: up the stack too",
	 false,
	 {.dmac = MAC_NODE, .tcp_flags = ACK},
	 .verdict = TC_ACT_OK,
	 .stat = XVPC_STAT_PROBE_REPLY},
	{"another source address: drop_spoof_ip",
	 false,
	 {.src = "10.0.1.99", .tcp_flags = SYN | ACK},
	 .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_SPOOF_IP},
	{"another source MAC: drop_spoof_mac",
	 false,
	 {.smac = MAC_EVIL, .tcp_flags = SYN | ACK},
	 .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_SPOOF_MAC},
	{"port below the probe range: drop_probe",
	 false,
	 {.dport = 59999, .tcp_flags = SYN | ACK},
	 .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_PROBE},
	{"port above the probe range: drop_probe",
	 false,
	 {.dport = 61000, .tcp_flags = ACK},
	 .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_PROBE},
	{"SSH port of the node: drop_probe",
	 false,
	 {.dport = 22, .tcp_flags = ACK},
	 .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_PROBE},
	{"SYN from the VM (opening a connection to the node): drop_probe",
	 false,
	 {.tcp_flags = SYN},
	 .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_PROBE},
	{"UDP to the probe address: drop_probe",
	 false,
	 {.proto = 17},
	 .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_PROBE},
	{"ICMP to the probe address: drop_probe",
	 false,
	 {.proto = 1},
	 .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_PROBE},
	{"fragment to the probe address: drop_probe",
	 false,
	 {.frag = 0x2000, .tcp_flags = ACK},
	 .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_PROBE},
	{"TCP header cut short: drop_malformed",
	 false,
	 {.tcp_flags = ACK},
	 .truncate = 14 + 20 + 10,
	 .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_MALFORMED},
	{"ARP for the probe address (169.254/16 on-link): the gateway MAC",
	 false,
	 {.arp = true},
	 .verdict = TC_ACT_REDIRECT,
	 .stat = XVPC_STAT_ARP_REPLY,
	 .check_out = true,
	 .out = {.l3 = PKT_ARP,
		 .dmac = MAC_A1,
		 .smac = MAC_GW,
		 .arp_op = 2,
		 .sha = MAC_GW,
		 .sip = PROBE,
		 .tha = MAC_A1,
		 .tip = A1},
	 .to_port = P_A1},
	{"probe on, traffic between VMs unchanged: switched to a3",
	 false,
	 {.dmac = MAC_A3, .dst = "10.0.1.40", .tcp_flags = ACK},
	 .verdict = TC_ACT_REDIRECT,
	 .stat = XVPC_STAT_LOCAL,
	 .to_port = P_A3},
	{"probe off: the same answer is drop_no_subnet as before",
	 true,
	 {.tcp_flags = SYN | ACK},
	 .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_NO_SUBNET},
	{"probe off: ARP for the probe address is drop_arp_unknown",
	 true,
	 {.arp = true},
	 .verdict = TC_ACT_SHOT,
	 .stat = XVPC_DROP_ARP_UNKNOWN},
};

static int set_probe(bool on)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_CONFIG);
	struct xvpc_config cfg;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(fd, &zero, &cfg))
		return -errno;
	cfg.probe_ip = on ? pkt_ip(PROBE) : 0;
	cfg.probe_port_min = htons(XVPC_PROBE_PORT_MIN_DEFAULT);
	cfg.probe_port_max = htons(XVPC_PROBE_PORT_MAX_DEFAULT);
	if (bpf_map_update_elem(fd, &zero, &cfg, 0))
		return -errno;
	return 0;
}

static size_t frame(__u8 *buf, const struct vm_pkt *p)
{
	__u8 proto = p->proto ? p->proto : 6;
	struct pkt_inner in = {
		.l3 = p->arp ? PKT_ARP : PKT_IPV4,
		.dmac = p->arp	  ? MAC_BCAST
			: p->dmac ? p->dmac
				  : MAC_GW,
		.smac = p->smac ? p->smac : MAC_A1,
		.src = p->src ? p->src : A1,
		.dst = p->dst ? p->dst : PROBE,
		.proto = proto,
		.frag = p->frag,
		.payload = proto == 6 ? 20 : 8,
		.sport = proto == 1 ? 0 : 8080,
		.dport = proto == 1 ? 0
			 : p->dport ? p->dport
				    : 60000,
	};
	size_t len = pkt_build(buf, NULL, &in);
	__u8 *l4 = buf + 14 + 20;

	if (!p->arp && proto == 6) {
		l4[12] = 0x50;
		l4[13] = p->tcp_flags;
	}
	return len;
}

static void hexdump(const char *what, const __u8 *b, size_t n)
{
	pkt_hexdump(what, b, n);
}

static int run_case(const struct probe_case *c)
{
	__u8 in[PKT_MAX], out[PKT_MAX + 128], want[PKT_MAX];
	struct __sk_buff skb = {.ifindex = ifidx[P_A1]}, skb_out = {};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1, .ctx_in = &skb,
		    .ctx_size_in = sizeof(skb), .ctx_out = &skb_out,
		    .ctx_size_out = sizeof(skb_out));
	size_t len = frame(in, &c->in), wlen;
	__u64 before = stat_pkts(c->stat),
	      tx = c->to_port ? ep_tx(c->to_port) : 0;
	bool ok = true;
	int err;

	err = set_probe(!c->off);
	if (err) {
		fprintf(stderr, "  cannot set the probe address: %s\n",
			strerror(-err));
		return -1;
	}
	if (c->truncate > 0 && (size_t)c->truncate < len)
		len = c->truncate;
	o.data_size_in = len;
	err = bpf_prog_test_run_opts(xvpc_dp_prog_fd(dp, XVPC_P_FROM_EP), &o);
	if (err) {
		fprintf(stderr, "  test run failed: %s\n", strerror(-err));
		return -1;
	}
	if ((int)o.retval != c->verdict) {
		fprintf(stderr, "  verdict %u, want %d (reason %u)\n", o.retval,
			c->verdict, skb_out.cb[0]);
		ok = false;
	}
	if (c->verdict == TC_ACT_SHOT && skb_out.cb[0] != c->stat) {
		fprintf(stderr, "  reason in cb[0] is %u\n", skb_out.cb[0]);
		ok = false;
	}
	if (stat_pkts(c->stat) != before + 1) {
		fprintf(stderr, "  counter %s did not grow by one\n",
			xvpc_stat_name(c->stat));
		ok = false;
	}
	if (c->to_port && ep_tx(c->to_port) != tx + 1) {
		fprintf(stderr, "  not delivered to port %s\n",
			port_names[c->to_port]);
		ok = false;
	}
	if (c->check_out) {
		wlen = pkt_build(want, NULL, &c->out);
		if (o.data_size_out != wlen || memcmp(out, want, wlen)) {
			hexdump("got", out, o.data_size_out);
			hexdump("want", want, wlen);
			ok = false;
		}
	}
	/* A passed answer leaves the frame as it came. */
	if (c->verdict == TC_ACT_OK &&
	    (o.data_size_out != len || memcmp(out, in, len))) {
		fprintf(stderr, "  a passed frame was changed\n");
		ok = false;
	}
	return ok ? 0 : -1;
}

int main(void)
{
	int pass = 0, fail = 0;

	xvpc_log_set_ident("test_probe");
	xvpc_log_hook_libs();
	if (setup()) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		int rc = run_case(&cases[i]);

		printf("%s [tc ep] %s\n", rc ? "FAIL" : "ok  ", cases[i].desc);
		rc ? fail++ : pass++;
	}
	xvpc_dp_close(dp);
	printf("test_probe: %d passed, %d failed\n", pass, fail);
	return fail ? 1 : 0;
}
