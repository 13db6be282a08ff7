// SPDX-License-Identifier: GPL-2.0-only
/* The datapath loader: see datapath.h for the life cycle and restart
 * policy. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "datapath.h"
#include "log.h"
#include "netutil.h"

#include "endpoint.skel.h"
#include "underlay_tc.skel.h"
#include "underlay_xdp.skel.h"

/* Our tc filters: one per hook, at a fixed handle and priority so that a
 * restart replaces them atomically instead of adding a second one. */
#define TC_HANDLE 0x7876 /* "xv" */
#define TC_PRIO	  1

struct xvpc_dp {
	char pin_dir[PATH_MAX];
	struct endpoint_bpf *ep;
	struct underlay_tc_bpf *ul_tc;
	struct underlay_xdp_bpf *ul_xdp;
	int map_fd[XVPC_M__COUNT];
	int prog_fd[XVPC_P__COUNT];
	bool own_fds; /* fds from bpf_obj_get(), not from a skeleton */
	bool adopted; /* pinned maps of an earlier run were found */
	__u16 underlay_mtu;
};

static const char *const map_names[XVPC_M__COUNT] = {
	[XVPC_M_ENDPOINTS] = XVPC_MAP_ENDPOINTS,
	[XVPC_M_SUBNETS] = XVPC_MAP_SUBNETS,
	[XVPC_M_IFACES] = XVPC_MAP_IFACES,
	[XVPC_M_VNIS] = XVPC_MAP_VNIS,
	[XVPC_M_CONFIG] = XVPC_MAP_CONFIG,
	[XVPC_M_STATS] = XVPC_MAP_STATS,
	[XVPC_M_EP_STATS] = XVPC_MAP_EP_STATS,
	[XVPC_M_EVENTS] = XVPC_MAP_EVENTS,
	[XVPC_M_MISS_RL] = XVPC_MAP_MISS_RL,
	[XVPC_M_LB_SERVICES] = XVPC_MAP_LB_SERVICES,
	[XVPC_M_LB_TABLES] = XVPC_MAP_LB_TABLES,
	[XVPC_M_LB_CT] = XVPC_MAP_LB_CT,
	[XVPC_M_LB_CONFIG] = XVPC_MAP_LB_CONFIG,
	[XVPC_M_VPCS] = XVPC_MAP_VPCS,
	[XVPC_M_NODES] = XVPC_MAP_NODES,
	[XVPC_M_LEARNED] = XVPC_MAP_LEARNED,
	[XVPC_M_LB_NS] = XVPC_MAP_LB_NS,
};

static const char *const prog_names[XVPC_P__COUNT] = {
	[XVPC_P_FROM_EP] = "xvpc_from_ep",
	[XVPC_P_TC_DECAP] = "xvpc_tc_decap",
	[XVPC_P_XDP_DECAP] = "xvpc_xdp_decap",
};

static const char *const stat_names[XVPC_STAT_MAX] = {
	[XVPC_STAT_LOCAL] = "local",
	[XVPC_STAT_ENCAP] = "encap",
	[XVPC_STAT_DECAP] = "decap",
	[XVPC_STAT_ROUTED] = "routed",
	[XVPC_STAT_ARP_REPLY] = "arp_reply",
	[XVPC_STAT_PASS] = "pass",
	[XVPC_DROP_MALFORMED] = "drop_malformed",
	[XVPC_DROP_NOT_BOUND] = "drop_not_bound",
	[XVPC_DROP_SPOOF_MAC] = "drop_spoof_mac",
	[XVPC_DROP_SPOOF_IP] = "drop_spoof_ip",
	[XVPC_DROP_ARP_UNKNOWN] = "drop_arp_unknown",
	[XVPC_DROP_ARP_OTHER] = "drop_arp_other",
	[XVPC_DROP_BCAST] = "drop_bcast",
	[XVPC_DROP_UNSUPP_L3] = "drop_unsupp_l3",
	[XVPC_DROP_VLAN] = "drop_vlan",
	[XVPC_DROP_NO_SUBNET] = "drop_no_subnet",
	[XVPC_DROP_NO_ENDPOINT] = "drop_no_endpoint",
	[XVPC_DROP_DST_MAC] = "drop_dst_mac",
	[XVPC_DROP_TTL] = "drop_ttl",
	[XVPC_DROP_TOO_BIG] = "drop_too_big",
	[XVPC_DROP_ENCAP] = "drop_encap",
	[XVPC_DROP_DECAP] = "drop_decap",
	[XVPC_DROP_NO_CONFIG] = "drop_no_config",
	[XVPC_DROP_VXLAN_FLAGS] = "drop_vxlan_flags",
	[XVPC_DROP_VNI_UNKNOWN] = "drop_vni_unknown",
	[XVPC_DROP_NOT_LOCAL] = "drop_not_local",
	[XVPC_DROP_INNER_SPOOF] = "drop_inner_spoof",
	[XVPC_DROP_VNI_MISMATCH] = "drop_vni_mismatch",
	[XVPC_DROP_OUTER_FRAG] = "drop_outer_frag",
	[XVPC_DROP_INNER_L3] = "drop_inner_l3",
	[XVPC_STAT_LB_NEW] = "lb_new",
	[XVPC_STAT_LB_EST] = "lb_established",
	[XVPC_STAT_LB_REPLY] = "lb_reply",
	[XVPC_DROP_LB_NO_BACKEND] = "drop_lb_no_backend",
	[XVPC_DROP_LB_CSUM] = "drop_lb_csum",
	[XVPC_STAT_MISS_GW] = "miss_to_gateway",
	[XVPC_STAT_FORWARD] = "gateway_forward",
	[XVPC_STAT_RELAY] = "relay_stale",
	[XVPC_STAT_LEARN] = "learned",
	[XVPC_DROP_NOT_MEMBER] = "drop_not_member",
	[XVPC_DROP_NO_GATEWAY] = "drop_no_gateway",
	[XVPC_STAT_PROBE_REPLY] = "probe_reply",
	[XVPC_DROP_PROBE] = "drop_probe",
};

const char *xvpc_stat_name(unsigned int stat)
{
	return stat < XVPC_STAT_MAX && stat_names[stat] ? stat_names[stat]
							: "unknown";
}

const char *xvpc_dp_map_name(enum xvpc_map_id id)
{
	return id < XVPC_M__COUNT ? map_names[id] : NULL;
}

int xvpc_dp_map_fd(const struct xvpc_dp *dp, enum xvpc_map_id id)
{
	return id < XVPC_M__COUNT ? dp->map_fd[id] : -EINVAL;
}

int xvpc_dp_prog_fd(const struct xvpc_dp *dp, enum xvpc_prog_id id)
{
	return id < XVPC_P__COUNT ? dp->prog_fd[id] : -EINVAL;
}

const char *xvpc_dp_pin_dir(const struct xvpc_dp *dp)
{
	return dp->pin_dir;
}

static struct xvpc_dp *dp_alloc(const char *pin_dir)
{
	struct xvpc_dp *dp = calloc(1, sizeof(*dp));

	if (!dp)
		return NULL;
	snprintf(dp->pin_dir, sizeof(dp->pin_dir), "%s",
		 pin_dir ? pin_dir : XVPC_PIN_DIR);
	for (int i = 0; i < XVPC_M__COUNT; i++)
		dp->map_fd[i] = -1;
	for (int i = 0; i < XVPC_P__COUNT; i++)
		dp->prog_fd[i] = -1;
	return dp;
}

void xvpc_dp_close(struct xvpc_dp *dp)
{
	if (!dp)
		return;
	if (dp->own_fds) {
		for (int i = 0; i < XVPC_M__COUNT; i++)
			if (dp->map_fd[i] >= 0)
				close(dp->map_fd[i]);
	}
	underlay_xdp_bpf__destroy(dp->ul_xdp);
	underlay_tc_bpf__destroy(dp->ul_tc);
	endpoint_bpf__destroy(dp->ep);
	free(dp);
}

static int pin_path(const char *dir, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int mkdir_p(const char *dir)
{
	char tmp[PATH_MAX];

	if (strlen(dir) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* A pinned config map of another ABI version cannot be adopted: the agent
 * must run the documented migration (docs/datapath.md, "ABI versions"). */
static int check_pinned_abi(const char *pin_dir, bool *adopted)
{
	struct xvpc_config cfg = {};
	char path[PATH_MAX];
	__u32 zero = 0;
	int fd, err;

	err = pin_path(pin_dir, XVPC_MAP_CONFIG, path, sizeof(path));
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	err = bpf_map_lookup_elem(fd, &zero, &cfg) ? -errno : 0;
	close(fd);
	*adopted = !err;
	if (err == -EINVAL || err == -EFAULT)
		err = -EPROTO; /* value of another size: another layout */
	if (!err && cfg.abi_version && cfg.abi_version != XVPC_ABI_VERSION)
		err = -EPROTO;
	if (err == -EPROTO)
		pr_err("pinned maps in %s have ABI version %u, this build "
		       "speaks %u: run the migration in docs/datapath.md or "
		       "'xvpc-agent --uninstall' first",
		       pin_dir, cfg.abi_version, XVPC_ABI_VERSION);
	return err;
}

/* Point every map of @obj at the fds of the endpoint object, so the
 * objects share one set of maps whether or not they are pinned. */
static int share_maps(struct bpf_object *obj, const struct xvpc_dp *dp)
{
	struct bpf_map *map;
	int err;

	bpf_object__for_each_map(map, obj)
	{
		const char *name = bpf_map__name(map);
		int i;

		for (i = 0; i < XVPC_M__COUNT; i++)
			if (!strcmp(name, map_names[i]))
				break;
		if (i == XVPC_M__COUNT)
			continue; /* .rodata and friends */
		bpf_map__set_pin_path(map, NULL);
		err = bpf_map__reuse_fd(map, dp->map_fd[i]);
		if (err)
			return err;
	}
	return 0;
}

static int collect_map_fds(struct xvpc_dp *dp, struct bpf_object *obj)
{
	for (int i = 0; i < XVPC_M__COUNT; i++) {
		struct bpf_map *m =
			bpf_object__find_map_by_name(obj, map_names[i]);

		if (!m) {
			pr_err("BPF object has no map %s", map_names[i]);
			return -ENOENT;
		}
		dp->map_fd[i] = bpf_map__fd(m);
	}
	return 0;
}

static void unpin_maps_if(struct bpf_object *obj, bool no_pin)
{
	struct bpf_map *map;

	if (!no_pin)
		return;
	bpf_object__for_each_map(map, obj) bpf_map__set_pin_path(map, NULL);
}

static int pin_prog(const struct xvpc_dp *dp, struct bpf_program *prog)
{
	char path[PATH_MAX];
	int err = pin_path(dp->pin_dir, bpf_program__name(prog), path,
			   sizeof(path));

	if (err)
		return err;
	unlink(path); /* a restart replaces the pin of the old program */
	err = bpf_program__pin(prog, path);
	if (err)
		pr_warn("cannot pin %s: %s", path, strerror(-err));
	return err;
}

static int load_objects(struct xvpc_dp *dp, bool no_pin)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = dp->pin_dir);
	int err;

	dp->ep = endpoint_bpf__open_opts(&oo);
	dp->ul_tc = underlay_tc_bpf__open_opts(&oo);
	if (!dp->ep || !dp->ul_tc) {
		err = -errno;
		pr_err("cannot open BPF objects: %s", strerror(-err));
		return err;
	}
	unpin_maps_if(dp->ep->obj, no_pin);
	err = endpoint_bpf__load(dp->ep);
	if (err) {
		pr_err("cannot load the endpoint program: %s", strerror(-err));
		return err;
	}
	err = collect_map_fds(dp, dp->ep->obj);
	if (!err)
		err = share_maps(dp->ul_tc->obj, dp);
	if (!err)
		err = underlay_tc_bpf__load(dp->ul_tc);
	if (err) {
		pr_err("cannot load the underlay tc program: %s",
		       strerror(-err));
		return err;
	}
	dp->prog_fd[XVPC_P_FROM_EP] =
		bpf_program__fd(dp->ep->progs.xvpc_from_ep);
	dp->prog_fd[XVPC_P_TC_DECAP] =
		bpf_program__fd(dp->ul_tc->progs.xvpc_tc_decap);
	if (no_pin)
		return 0;
	err = pin_prog(dp, dp->ep->progs.xvpc_from_ep);
	if (!err)
		err = pin_prog(dp, dp->ul_tc->progs.xvpc_tc_decap);
	return err;
}

/* The XDP object is opened here and loaded either by libxdp (attach) or
 * directly (no underlay: selftests and benchmarks). */
static int open_xdp(struct xvpc_dp *dp)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = dp->pin_dir);

	dp->ul_xdp = underlay_xdp_bpf__open_opts(&oo);
	if (!dp->ul_xdp)
		return -errno;
	return share_maps(dp->ul_xdp->obj, dp);
}

/* @fresh: the interface is new to us, so its clsact qdisc most likely does
 * not exist yet; otherwise (a restart) try the replace first, which keeps
 * the kernel from complaining about the qdisc that is already there. */
static int tc_attach(int ifindex, int prog_fd, const char *what, bool fresh)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE,
			    .priority = TC_PRIO, .prog_fd = prog_fd,
			    .flags = BPF_TC_F_REPLACE);
	int err;

	if (!fresh && !bpf_tc_attach(&hook, &opts))
		return 0;
	opts.prog_id = 0;
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST) {
		pr_err("cannot create the tc ingress hook on %s (ifindex %d): "
		       "%s",
		       what, ifindex, strerror(-err));
		return err;
	}
	err = bpf_tc_attach(&hook, &opts);
	if (err)
		pr_err("cannot attach to tc ingress of %s (ifindex %d): %s",
		       what, ifindex, strerror(-err));
	return err;
}

static int tc_detach(int ifindex)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE,
			    .priority = TC_PRIO);
	int err = bpf_tc_detach(&hook, &opts);

	return err == -ENOENT || err == -ENODEV || err == -EINVAL ? 0 : err;
}

/* Our program in the libxdp dispatcher of @ifindex, or NULL. */
static struct xdp_program *xdp_find_ours(struct xdp_multiprog *mp)
{
	struct xdp_program *p = NULL;

	if (!mp || libxdp_get_error(mp))
		return NULL;
	if (xdp_multiprog__is_legacy(mp)) {
		p = xdp_multiprog__main_prog(mp);
		return p && !strcmp(xdp_program__name(p),
				    prog_names[XVPC_P_XDP_DECAP])
			       ? p
			       : NULL;
	}
	while ((p = xdp_multiprog__next_prog(p, mp)))
		if (!strcmp(xdp_program__name(p), prog_names[XVPC_P_XDP_DECAP]))
			return p;
	return NULL;
}

static int xdp_detach_ours(int ifindex)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	struct xdp_program *p = xdp_find_ours(mp);
	int err = 0;

	if (p) {
		err = xdp_program__detach(p, ifindex, XDP_MODE_UNSPEC, 0);
		if (err)
			pr_warn("cannot detach XDP from ifindex %d: %s",
				ifindex, strerror(-err));
	}
	if (mp && !libxdp_get_error(mp))
		xdp_multiprog__close(mp);
	return err;
}

static int xdp_attach(struct xvpc_dp *dp, int ifindex)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	struct xdp_program *xp, *old = xdp_find_ours(mp);
	int err;

	if (old) {
		/* Same maps (pinned), so the running program keeps working:
		 * adopt it rather than swap the dispatcher under traffic. */
		dp->prog_fd[XVPC_P_XDP_DECAP] = xdp_program__fd(old);
		pr_info("adopted XDP program id %u on ifindex %d",
			xdp_program__id(old), ifindex);
		return 0; /* mp stays open: it owns old's fd */
	}
	if (mp && !libxdp_get_error(mp))
		xdp_multiprog__close(mp);
	xp = xdp_program__from_bpf_obj(dp->ul_xdp->obj, "xdp");
	err = libxdp_get_error(xp);
	if (err) {
		pr_err("libxdp cannot use the XDP object: %s", strerror(-err));
		return err;
	}
	err = xdp_program__attach(xp, ifindex, XDP_MODE_NATIVE, 0);
	if (err) {
		pr_err("cannot attach XDP to ifindex %d: %s", ifindex,
		       strerror(-err));
		return err;
	}
	dp->prog_fd[XVPC_P_XDP_DECAP] = xdp_program__fd(xp);
	mp = xdp_multiprog__get_from_ifindex(ifindex);
	pr_info("attached XDP program id %u to ifindex %d (%s)",
		xdp_program__id(xp), ifindex,
		mp && !libxdp_get_error(mp) && !xdp_multiprog__is_legacy(mp)
			? "through libxdp's dispatcher"
			: "as the only program: the kernel refused a "
			  "dispatcher");
	if (mp && !libxdp_get_error(mp))
		xdp_multiprog__close(mp);
	return pin_prog(dp, dp->ul_xdp->progs.xvpc_xdp_decap);
}

static int write_config(struct xvpc_dp *dp, const struct xvpc_dp_opts *o,
			int ifindex)
{
	struct xvpc_config cfg = {.abi_version = XVPC_ABI_VERSION}, old;
	__u32 zero = 0;
	int mtu, err;

	/* An adopted config keeps its probe path until the agent sets it
	 * again: probes in flight across a restart are not dropped. */
	if (!bpf_map_lookup_elem(dp->map_fd[XVPC_M_CONFIG], &zero, &old)) {
		cfg.probe_ip = old.probe_ip;
		cfg.probe_port_min = old.probe_port_min;
		cfg.probe_port_max = old.probe_port_max;
	}

	err = xvpc_if_mtu(o->underlay_ifname, &mtu);
	if (!err)
		err = xvpc_if_mac(o->underlay_ifname, cfg.node_mac);
	if (err) {
		pr_err("cannot read underlay %s: %s", o->underlay_ifname,
		       strerror(-err));
		return err;
	}
	cfg.node_ip = o->node_ip;
	if (!cfg.node_ip && xvpc_if_ipv4(o->underlay_ifname, &cfg.node_ip)) {
		pr_err("underlay %s has no IPv4 address: give the node address",
		       o->underlay_ifname);
		return -EADDRNOTAVAIL;
	}
	cfg.underlay_ifindex = ifindex;
	cfg.underlay_mtu = mtu;
	dp->underlay_mtu = mtu;
	if (bpf_map_update_elem(dp->map_fd[XVPC_M_CONFIG], &zero, &cfg, 0))
		return -errno;
	return 0;
}

int xvpc_dp_set_probe(struct xvpc_dp *dp, __be32 probe_ip, __u16 port_min,
		      __u16 port_max)
{
	int fd = dp->map_fd[XVPC_M_CONFIG];
	struct xvpc_config cfg;
	__u32 zero = 0;

	if (probe_ip && port_min > port_max)
		return -EINVAL;
	if (bpf_map_lookup_elem(fd, &zero, &cfg))
		return -errno;
	cfg.probe_ip = probe_ip;
	cfg.probe_port_min = htons(port_min);
	cfg.probe_port_max = htons(port_max);
	if (bpf_map_update_elem(fd, &zero, &cfg, 0))
		return -errno;
	return 0;
}

static int ethtool(const char *ifname, void *cmd)
{
	struct ifreq ifr = {.ifr_data = cmd};
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCETHTOOL, &ifr) < 0)
		err = -errno;
	close(fd);
	return err;
}

/*
 * XDP hands frames on without the skb's checksum state, so a receiver in
 * XDP mode needs complete checksums on the wire. A NIC computes them when it
 * transmits; a veth does not (it passes CHECKSUM_PARTIAL along). On a veth
 * underlay in XDP mode, turn transmit checksum offload off so the kernel
 * completes them before the frame leaves, as a NIC would.
 */
static void veth_wire_checksums(const char *ifname)
{
	struct ethtool_drvinfo info = {.cmd = ETHTOOL_GDRVINFO};
	struct ethtool_value off = {.cmd = ETHTOOL_STXCSUM, .data = 0};
	int err;

	if (ethtool(ifname, &info) || strcmp(info.driver, "veth"))
		return;
	err = ethtool(ifname, &off);
	if (err)
		pr_warn("cannot turn off tx checksum offload on veth %s: %s; "
			"XDP receivers will see partial checksums",
			ifname, strerror(-err));
	else
		pr_info("veth underlay %s: tx checksum offload off, so XDP "
			"receivers get complete checksums",
			ifname);
}

static int attach_underlay(struct xvpc_dp *dp, const struct xvpc_dp_opts *o)
{
	int ifindex = xvpc_ifindex(o->underlay_ifname);
	int err;

	if (ifindex < 0) {
		pr_err("underlay interface %s not found", o->underlay_ifname);
		return ifindex;
	}
	err = write_config(dp, o, ifindex);
	if (err)
		return err;
	/* Only an earlier run can have left the other attach mode behind. */
	if (o->mode == XVPC_UNDERLAY_XDP) {
		veth_wire_checksums(o->underlay_ifname);
		err = xdp_attach(dp, ifindex);
		if (!err && dp->adopted)
			err = tc_detach(ifindex);
	} else {
		err = tc_attach(ifindex, dp->prog_fd[XVPC_P_TC_DECAP],
				o->underlay_ifname, !dp->adopted);
		if (!err && dp->adopted)
			err = xdp_detach_ours(ifindex);
	}
	if (!err)
		pr_info("underlay %s (ifindex %d) attached in %s mode",
			o->underlay_ifname, ifindex,
			o->mode == XVPC_UNDERLAY_XDP ? "xdp" : "tc");
	return err;
}

/* Endpoint programs of bound interfaces are swapped for the new code. */
static int reattach_ifaces(struct xvpc_dp *dp)
{
	__u32 key, next, *prev = NULL;
	int fd = dp->map_fd[XVPC_M_IFACES], n = 0;
	char name[IF_NAMESIZE];

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (!if_indextoname(key, name))
			continue; /* gone: the agent's reconcile cleans up */
		if (!tc_attach(key, dp->prog_fd[XVPC_P_FROM_EP], name, false))
			n++;
	}
	if (n)
		pr_info("re-attached the endpoint program to %d interfaces", n);
	return 0;
}

int xvpc_dp_open(const struct xvpc_dp_opts *o, struct xvpc_dp **out)
{
	struct xvpc_dp *dp = dp_alloc(o->pin_dir);
	int err;

	if (!dp)
		return -ENOMEM;
	if (!o->no_pin) {
		err = mkdir_p(dp->pin_dir);
		if (err) {
			pr_err("cannot create pin directory %s: %s (is bpffs "
			       "mounted on /sys/fs/bpf?)",
			       dp->pin_dir, strerror(-err));
			goto err_free;
		}
		err = check_pinned_abi(dp->pin_dir, &dp->adopted);
		if (err)
			goto err_free;
	}
	err = load_objects(dp, o->no_pin);
	if (err)
		goto err_free;
	err = open_xdp(dp);
	if (err)
		goto err_free;
	if (!o->underlay_ifname || o->mode != XVPC_UNDERLAY_XDP) {
		/* Not handed to libxdp: load it ourselves so the fd exists. */
		err = underlay_xdp_bpf__load(dp->ul_xdp);
		if (err) {
			pr_err("cannot load the XDP program: %s",
			       strerror(-err));
			goto err_free;
		}
		dp->prog_fd[XVPC_P_XDP_DECAP] =
			bpf_program__fd(dp->ul_xdp->progs.xvpc_xdp_decap);
	}
	if (o->underlay_ifname) {
		err = attach_underlay(dp, o);
		if (err)
			goto err_free;
		err = reattach_ifaces(dp);
		if (err)
			goto err_free;
	}
	*out = dp;
	return 0;
err_free:
	xvpc_dp_close(dp);
	return err;
}

int xvpc_dp_open_pinned(const char *pin_dir, struct xvpc_dp **out)
{
	struct xvpc_dp *dp = dp_alloc(pin_dir);
	char path[PATH_MAX];
	int err = 0;

	if (!dp)
		return -ENOMEM;
	dp->own_fds = true;
	for (int i = 0; i < XVPC_M__COUNT; i++) {
		err = pin_path(dp->pin_dir, map_names[i], path, sizeof(path));
		if (err)
			goto err_free;
		dp->map_fd[i] = bpf_obj_get(path);
		if (dp->map_fd[i] < 0) {
			err = -errno;
			pr_err("cannot open pinned map %s: %s (is xvpc-agent "
			       "running, and is --pin-dir right?)",
			       path, strerror(-err));
			goto err_free;
		}
	}
	*out = dp;
	return 0;
err_free:
	xvpc_dp_close(dp);
	return err;
}

static int fill_gateway(const struct xvpc_dp *dp, struct xvpc_iface *b)
{
	struct xvpc_subnet_key key = {
		.prefixlen = 64,
		.vpc_id = b->vpc_id,
		.addr = b->ip,
	};
	struct xvpc_subnet sn;
	char ip[XVPC_IP_STRLEN];

	if (bpf_map_lookup_elem(dp->map_fd[XVPC_M_SUBNETS], &key, &sn)) {
		pr_err("no subnet of VPC %u holds %s: add the subnet first",
		       b->vpc_id, xvpc_fmt_ip(b->ip, ip));
		return -ENOENT;
	}
	b->gw_ip = sn.gw_ip;
	memcpy(b->gw_mac, sn.gw_mac, sizeof(b->gw_mac));
	if (!b->vni)
		b->vni = sn.vni;
	return 0;
}

static __u16 underlay_mtu(const struct xvpc_dp *dp)
{
	struct xvpc_config cfg;
	__u32 zero = 0;

	if (dp->underlay_mtu)
		return dp->underlay_mtu;
	if (bpf_map_lookup_elem(dp->map_fd[XVPC_M_CONFIG], &zero, &cfg))
		return 0;
	return cfg.underlay_mtu;
}

int xvpc_dp_bind_iface(struct xvpc_dp *dp, int ifindex,
		       const struct xvpc_iface *binding)
{
	int cpus = libbpf_num_possible_cpus();
	struct xvpc_iface b = *binding, old;
	char name[IF_NAMESIZE];
	__u32 key = ifindex;
	bool fresh;
	__u16 mtu;
	int err;

	if (!if_indextoname(ifindex, name))
		return -ENODEV;
	if (!b.gw_ip) {
		err = fill_gateway(dp, &b);
		if (err)
			return err;
	}
	fresh = bpf_map_lookup_elem(dp->map_fd[XVPC_M_IFACES], &key, &old);
	if (bpf_map_update_elem(dp->map_fd[XVPC_M_IFACES], &key, &b, 0))
		return -errno;
	if (cpus > 0) {
		struct xvpc_ep_stats zero[cpus];

		memset(zero, 0, sizeof(zero));
		bpf_map_update_elem(dp->map_fd[XVPC_M_EP_STATS], &key, zero,
				    BPF_NOEXIST);
	}
	mtu = underlay_mtu(dp);
	if (mtu > XVPC_ENCAP_OVERHEAD) {
		err = xvpc_if_set_mtu(name, mtu - XVPC_ENCAP_OVERHEAD);
		if (err)
			pr_warn("cannot set MTU %d on %s: %s",
				mtu - XVPC_ENCAP_OVERHEAD, name,
				strerror(-err));
	}
	if (dp->prog_fd[XVPC_P_FROM_EP] < 0) {
		pr_err("datapath opened for inspection only: cannot attach");
		return -EPERM;
	}
	return tc_attach(ifindex, dp->prog_fd[XVPC_P_FROM_EP], name, fresh);
}

int xvpc_dp_unbind_iface(struct xvpc_dp *dp, int ifindex)
{
	__u32 key = ifindex;
	int err = tc_detach(ifindex);

	if (bpf_map_delete_elem(dp->map_fd[XVPC_M_IFACES], &key) &&
	    errno != ENOENT && !err)
		err = -errno;
	bpf_map_delete_elem(dp->map_fd[XVPC_M_EP_STATS], &key);
	return err;
}

int xvpc_dp_read_stat(const struct xvpc_dp *dp, unsigned int stat,
		      struct xvpc_counter *out)
{
	int cpus = libbpf_num_possible_cpus();
	__u32 key = stat;

	if (cpus <= 0)
		return -EINVAL;
	struct xvpc_counter vals[cpus];

	if (bpf_map_lookup_elem(dp->map_fd[XVPC_M_STATS], &key, vals))
		return -errno;
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < cpus; i++) {
		out->packets += vals[i].packets;
		out->bytes += vals[i].bytes;
	}
	return 0;
}

static int unpin_dir(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(dir);
	int err = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (pin_path(dir, de->d_name, path, sizeof(path)) ||
		    (unlink(path) && errno != ENOENT))
			err = -errno;
	}
	closedir(d);
	if (rmdir(dir) && errno != ENOENT)
		err = -errno;
	return err;
}

int xvpc_dp_uninstall(const char *pin_dir, const char *underlay_ifname)
{
	struct xvpc_dp *dp = NULL;
	const char *dir = pin_dir ? pin_dir : XVPC_PIN_DIR;
	__u32 key, next, *prev = NULL;
	int err, ifindex;

	if (!xvpc_dp_open_pinned(dir, &dp)) {
		while (!bpf_map_get_next_key(dp->map_fd[XVPC_M_IFACES], prev,
					     &next)) {
			key = next;
			prev = &key;
			tc_detach(key);
		}
		xvpc_dp_close(dp);
	}
	if (underlay_ifname) {
		ifindex = xvpc_ifindex(underlay_ifname);
		if (ifindex > 0) {
			tc_detach(ifindex);
			xdp_detach_ours(ifindex);
		}
	}
	err = unpin_dir(dir);
	if (err)
		pr_err("cannot remove %s: %s", dir, strerror(-err));
	else
		pr_info("removed everything under %s", dir);
	return err;
}
