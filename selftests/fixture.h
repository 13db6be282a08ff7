/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The datapath fixture shared by the packet tests and the ns-per-packet
 * benchmark: a private network namespace (unshare) with veth interfaces
 * standing in for the endpoints' host-side ports and the underlay, the real
 * loader, and maps filled as below. Nothing leaks out: the namespace and
 * the unpinned maps go away with the process.
 *
 *   VPC 1                              VPC 2 (same CIDRs)
 *   A 10.0.1.0/24 vni 101              A 10.0.1.0/24 vni 201
 *     a1 .10 local (port "a1")           c1 .10 local (port "c1")
 *     a2 .20 on node 192.168.1.2         c2 .30 on node 192.168.1.2
 *     a3 .40 local (port "a3")
 *   B 10.0.2.0/24 vni 102
 *     b1 .10 local (port "b1")
 *     b2 .20 on node 192.168.1.2
 *   this node 192.168.1.1 on underlay "ul" (MTU 1500)
 */
#ifndef XVPC_SELFTEST_FIXTURE_H
#define XVPC_SELFTEST_FIXTURE_H

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "netutil.h"
#include "pktbuild.h"

static const __u8 __attribute__((unused)) MAC_A1[6] = {2, 0, 0, 1, 1, 10};
static const __u8 __attribute__((unused)) MAC_A2[6] = {2, 0, 0, 1, 1, 20};
static const __u8 __attribute__((unused)) MAC_A3[6] = {2, 0, 0, 1, 1, 40};
static const __u8 __attribute__((unused)) MAC_B1[6] = {2, 0, 0, 1, 2, 10};
static const __u8 __attribute__((unused)) MAC_B2[6] = {2, 0, 0, 1, 2, 20};
static const __u8 __attribute__((unused)) MAC_C1[6] = {2, 0, 0, 2, 1, 10};
static const __u8 __attribute__((unused)) MAC_C2[6] = {2, 0, 0, 2, 1, 30};
static const __u8 __attribute__((unused))
MAC_GW[6] = {2, 0x78, 0x76, 0x70, 0x63, 1};
static const __u8 __attribute__((unused))
MAC_EVIL[6] = {2, 0xee, 0xee, 0xee, 0xee, 0xee};
static const __u8 __attribute__((unused))
MAC_BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const __u8 __attribute__((unused))
MAC_MCAST[6] = {0x01, 0x00, 0x5e, 0, 0, 1};
static const __u8 __attribute__((unused)) MAC_ZERO[6];
static const __u8 __attribute__((unused)) MAC_NODE[6] = {2, 0, 0, 0, 0, 0xff};
static const __u8 __attribute__((unused)) MAC_PEER[6] = {2, 0, 0, 0, 0, 0xfe};

#define NODE	  "192.168.1.1"
#define PEER_NODE "192.168.1.2"
#define DF	  0x4000

enum port { P_NONE = 0, P_A1, P_A3, P_B1, P_C1, P_UL, P_UNBOUND, P__MAX };
static const char *const __attribute__((unused)) port_names[P__MAX] = {
	[P_A1] = "a1", [P_A3] = "a3", [P_B1] = "b1",
	[P_C1] = "c1", [P_UL] = "ul", [P_UNBOUND] = "free",
};
static int ifidx[P__MAX] __attribute__((unused));

static struct xvpc_dp *dp __attribute__((unused));

static inline int sh(const char *cmd)
{
	int rc = system(cmd);

	if (rc)
		fprintf(stderr, "setup: '%s' failed (%d)\n", cmd, rc);
	return rc ? -EIO : 0;
}

static inline int make_ports(void)
{
	char cmd[128];

	if (unshare(CLONE_NEWNET)) {
		perror("unshare(CLONE_NEWNET)");
		return -errno;
	}
	if (sh("ip link set lo up"))
		return -EIO;
	for (int p = 1; p < P__MAX; p++) {
		snprintf(cmd, sizeof(cmd),
			 "ip link add %s type veth peer name %s.p && "
			 "ip link set %s up",
			 port_names[p], port_names[p], port_names[p]);
		if (sh(cmd))
			return -EIO;
		ifidx[p] = xvpc_ifindex(port_names[p]);
	}
	return sh("ip addr add " NODE "/24 dev ul");
}

static inline int add_subnet(__u32 vpc, const char *cidr, __u32 vni,
			     const char *gw)
{
	struct xvpc_subnet_key k = {.vpc_id = vpc};
	struct xvpc_subnet v = {.vni = vni, .gw_ip = pkt_ip(gw)};
	struct xvpc_vni vv = {.vpc_id = vpc};

	if (xvpc_parse_cidr(cidr, &k.addr, &v.plen))
		return -EINVAL;
	k.prefixlen = 32 + v.plen;
	v.net = k.addr;
	memcpy(v.gw_mac, MAC_GW, 6);
	if (bpf_map_update_elem(xvpc_dp_map_fd(dp, XVPC_M_SUBNETS), &k, &v,
				0) ||
	    bpf_map_update_elem(xvpc_dp_map_fd(dp, XVPC_M_VNIS), &vni, &vv, 0))
		return -errno;
	return 0;
}

static inline int add_ep(__u32 vpc, const char *ip, const __u8 *mac, __u32 vni,
			 enum port port)
{
	struct xvpc_ep_key k = {.vpc_id = vpc, .ip = pkt_ip(ip)};
	struct xvpc_ep v = {.vni = vni, .node_ip = pkt_ip(PEER_NODE)};
	struct xvpc_iface b = {.vpc_id = vpc, .ip = k.ip};

	memcpy(v.mac, mac, 6);
	if (port) {
		v.flags = XVPC_EP_LOCAL;
		v.ifindex = ifidx[port];
		v.node_ip = pkt_ip(NODE);
	}
	if (bpf_map_update_elem(xvpc_dp_map_fd(dp, XVPC_M_ENDPOINTS), &k, &v,
				0))
		return -errno;
	if (!port)
		return 0;
	memcpy(b.mac, mac, 6);
	return xvpc_dp_bind_iface(dp, ifidx[port], &b);
}

static inline int setup(void)
{
	struct xvpc_dp_opts o = {.no_pin = true};
	struct xvpc_config cfg = {
		.abi_version = XVPC_ABI_VERSION,
		.node_ip = pkt_ip(NODE),
		.underlay_mtu = 1500,
	};
	__u32 zero = 0;
	int err;

	err = make_ports();
	if (err)
		return err;
	err = xvpc_dp_open(&o, &dp);
	if (err)
		return err;
	cfg.underlay_ifindex = ifidx[P_UL];
	memcpy(cfg.node_mac, MAC_NODE, 6);
	if (bpf_map_update_elem(xvpc_dp_map_fd(dp, XVPC_M_CONFIG), &zero, &cfg,
				0))
		return -errno;
	err = add_subnet(1, "10.0.1.0/24", 101, "10.0.1.1") ?:
	      add_subnet(1, "10.0.2.0/24", 102, "10.0.2.1") ?:
	      add_subnet(2, "10.0.1.0/24", 201, "10.0.1.1") ?:
	      add_ep(1, "10.0.1.10", MAC_A1, 101, P_A1) ?:
	      add_ep(1, "10.0.1.20", MAC_A2, 101, P_NONE) ?:
	      add_ep(1, "10.0.1.40", MAC_A3, 101, P_A3) ?:
	      add_ep(1, "10.0.2.10", MAC_B1, 102, P_B1) ?:
	      add_ep(1, "10.0.2.20", MAC_B2, 102, P_NONE) ?:
	      add_ep(2, "10.0.1.10", MAC_C1, 201, P_C1) ?:
	      add_ep(2, "10.0.1.30", MAC_C2, 201, P_NONE);
	return err;
}

/* An endpoint hosted on @node (NULL: this node, bound to @ifindex). */
static inline int add_ep_at(__u32 vpc, const char *ip, const __u8 *mac,
			    __u32 vni, int ifindex, const char *node)
{
	struct xvpc_ep_key k = {.vpc_id = vpc, .ip = pkt_ip(ip)};
	struct xvpc_ep v = {.vni = vni, .node_ip = pkt_ip(node ? node : NODE)};
	struct xvpc_iface b = {.vpc_id = vpc, .ip = k.ip};

	memcpy(v.mac, mac, 6);
	if (!node) {
		v.flags = XVPC_EP_LOCAL;
		v.ifindex = ifindex;
	}
	if (bpf_map_update_elem(xvpc_dp_map_fd(dp, XVPC_M_ENDPOINTS), &k, &v,
				0))
		return -errno;
	if (node)
		return 0;
	memcpy(b.mac, mac, 6);
	return xvpc_dp_bind_iface(dp, ifindex, &b);
}

/* Learn mode for @vpc (docs/learning.md): up to two gateways; this node is
 * one when its address is listed. */
static inline int set_learn_vpc(__u32 vpc, const char *gw0, const char *gw1)
{
	struct xvpc_vpc v = {.flags = XVPC_VPC_LEARN};
	const char *gws[2] = {gw0, gw1};

	for (int i = 0; i < 2 && gws[i]; i++) {
		v.gateways[v.n_gateways++] = pkt_ip(gws[i]);
		if (!strcmp(gws[i], NODE))
			v.flags |= XVPC_VPC_GATEWAY;
	}
	if (bpf_map_update_elem(xvpc_dp_map_fd(dp, XVPC_M_VPCS), &vpc, &v, 0))
		return -errno;
	return 0;
}

static inline int add_member(const char *node)
{
	struct xvpc_node n = {};
	__be32 ip = pkt_ip(node);

	if (bpf_map_update_elem(xvpc_dp_map_fd(dp, XVPC_M_NODES), &ip, &n, 0))
		return -errno;
	return 0;
}

/* Delete every entry of a hash map (between test cases). */
static inline void flush_map(enum xvpc_map_id id, size_t key_size)
{
	int fd = xvpc_dp_map_fd(dp, id);
	__u8 key[64];

	if (key_size > sizeof(key))
		return;
	while (!bpf_map_get_next_key(fd, NULL, key))
		if (bpf_map_delete_elem(fd, key))
			break;
}

static inline void pkt_hexdump(const char *what, const __u8 *b, size_t n)
{
	fprintf(stderr, "    %s (%zu bytes):", what, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%s%02x", i % 16 ? " " : "\n      ", b[i]);
	fprintf(stderr, "\n");
}

static inline __u64 ep_tx(enum port p)
{
	int cpus = libbpf_num_possible_cpus();
	struct xvpc_ep_stats v[cpus];
	__u32 key = ifidx[p];
	__u64 sum = 0;

	if (bpf_map_lookup_elem(xvpc_dp_map_fd(dp, XVPC_M_EP_STATS), &key, v))
		return 0;
	for (int i = 0; i < cpus; i++)
		sum += v[i].tx_packets;
	return sum;
}

static inline __u64 stat_pkts(unsigned int stat)
{
	struct xvpc_counter c = {};

	xvpc_dp_read_stat(dp, stat, &c);
	return c.packets;
}

#endif
