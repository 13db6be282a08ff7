// SPDX-License-Identifier: GPL-2.0-only
/*
 * Operator commands on the pinned datapath: `map list`, `map dump`, `stats`
 * and `endpoint list`. Human tables by default, JSON with --json (the
 * format is documented in docs/cli.md and kept stable).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "agent/mapbe.h"
#include "cli.h"
#include "datapath.h"
#include "lbview.h"
#include "netutil.h"
#include "xvpc_abi.h"

/* ---- helpers ---- */

static bool take_json_flag(struct cli_ctx *ctx, int *argc, char **argv)
{
	int j = 0;

	for (int i = 0; i < *argc; i++) {
		if (!strcmp(argv[i], "--json"))
			ctx->json = true;
		else
			argv[j++] = argv[i];
	}
	*argc = j;
	return ctx->json;
}

static int open_dp(struct cli_ctx *ctx, struct xvpc_dp **dp)
{
	int err = xvpc_dp_open_pinned(ctx->pin_dir, dp);

	if (err)
		return cli_error(ctx, err,
				 "cannot open the pinned maps under %s (is "
				 "xvpc-agent running? --pin-dir?)",
				 ctx->pin_dir);
	return 0;
}

static void print_json(struct json_object *o)
{
	printf("%s\n",
	       json_object_to_json_string_ext(
		       o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
				  JSON_C_TO_STRING_NOSLASHESCAPE));
}

static struct json_object *jip(__be32 ip)
{
	char buf[XVPC_IP_STRLEN];

	return json_object_new_string(xvpc_fmt_ip(ip, buf));
}

static struct json_object *jmac(const __u8 *mac)
{
	char buf[XVPC_MAC_STRLEN];

	xvpc_fmt_mac(mac, buf);
	return json_object_new_string(buf);
}

static void jadd(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);
}

static const char *map_type_name(__u32 type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
		return "hash";
	case BPF_MAP_TYPE_ARRAY:
		return "array";
	case BPF_MAP_TYPE_PERCPU_HASH:
		return "percpu_hash";
	case BPF_MAP_TYPE_PERCPU_ARRAY:
		return "percpu_array";
	case BPF_MAP_TYPE_LPM_TRIE:
		return "lpm_trie";
	case BPF_MAP_TYPE_LRU_HASH:
		return "lru_hash";
	case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
		return "perf_event_array";
	default:
		return "other";
	}
}

static int cpus(void)
{
	int n = libbpf_num_possible_cpus();

	return n > 0 ? n : 1;
}

/* Entries of a map; arrays count as full; -errno on failure. */
static long map_entries(int fd, const struct bpf_map_info *info)
{
	struct xvpc_mapbe *m;
	long n;

	switch (info->type) {
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
		return info->max_entries;
	case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
		return 0;
	case BPF_MAP_TYPE_PERCPU_HASH: {
		__u32 key, next, *prev = NULL;

		n = 0;
		while (!bpf_map_get_next_key(fd, prev, &next)) {
			key = next;
			prev = &key;
			n++;
		}
		return n;
	}
	default:
		if (xvpc_mapbe_bpf_new(fd, NULL, &m))
			return -EINVAL;
		n = m->ops->count(m);
		xvpc_mapbe_destroy(m);
		return n;
	}
}

static __u64 mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static double since_s(__u64 now, __u64 then)
{
	return now > then ? (now - then) / 1e9 : 0;
}

/* ---- map list ---- */

static int map_list(struct cli_ctx *ctx, int argc, char **argv)
{
	struct json_object *arr = NULL, *top = NULL;
	struct xvpc_dp *dp;
	int err;

	take_json_flag(ctx, &argc, argv);
	if (argc > 0 && cli_is_help(argv[0])) {
		printf("usage: xvpcctl [--json] map list\n"
		       "  every datapath map: name, type, entries, capacity\n");
		return 0;
	}
	if (argc > 0)
		return cli_error(ctx, -EINVAL, "map list: unexpected '%s'",
				 argv[0]);
	err = open_dp(ctx, &dp);
	if (err)
		return err;
	if (ctx->json) {
		top = json_object_new_object();
		arr = json_object_new_array();
		jadd(top, "maps", arr);
	} else {
		printf("%-16s %-17s %10s %10s\n", "NAME", "TYPE", "ENTRIES",
		       "CAPACITY");
	}
	for (int i = 0; i < XVPC_M__COUNT; i++) {
		int fd = xvpc_dp_map_fd(dp, i);
		struct bpf_map_info info = {0};
		__u32 len = sizeof(info);
		long n;

		if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
			err = cli_error(ctx, -errno, "map %s",
					xvpc_dp_map_name(i));
			goto out;
		}
		n = map_entries(fd, &info);
		if (ctx->json) {
			struct json_object *o = json_object_new_object();

			jadd(o, "name",
			     json_object_new_string(xvpc_dp_map_name(i)));
			jadd(o, "type",
			     json_object_new_string(map_type_name(info.type)));
			jadd(o, "entries", json_object_new_int64(n));
			jadd(o, "capacity",
			     json_object_new_int64(info.max_entries));
			json_object_array_add(arr, o);
		} else {
			printf("%-16s %-17s %10ld %10u\n", xvpc_dp_map_name(i),
			       map_type_name(info.type), n, info.max_entries);
		}
	}
	if (ctx->json)
		print_json(top);
out:
	json_object_put(top);
	xvpc_dp_close(dp);
	return err;
}

/* ---- map dump: one decoder per map ---- */

struct dumper {
	struct cli_ctx *ctx;
	struct json_object *arr;
	enum xvpc_map_id id;
	long n;
	__u64 now; /* CLOCK_MONOTONIC, for ages */
};

static void ep_flags(__u16 flags, char *buf, size_t len)
{
	/* Each name with a leading comma; the first comma is dropped. */
	snprintf(buf, len, "%s%s%s%s", flags & XVPC_EP_LOCAL ? ",local" : "",
		 flags & XVPC_EP_LEARNED ? ",learned" : "",
		 flags & XVPC_EP_RESOLVED ? ",resolved" : "",
		 flags & XVPC_EP_NOMAC ? ",nomac" : "");
	if (!buf[0])
		snprintf(buf, len, "-");
	else
		memmove(buf, buf + 1, strlen(buf));
}

static struct json_object *ep_flags_json(__u16 flags)
{
	struct json_object *a = json_object_new_array();

	if (flags & XVPC_EP_LOCAL)
		json_object_array_add(a, json_object_new_string("local"));
	if (flags & XVPC_EP_LEARNED)
		json_object_array_add(a, json_object_new_string("learned"));
	if (flags & XVPC_EP_RESOLVED)
		json_object_array_add(a, json_object_new_string("resolved"));
	if (flags & XVPC_EP_NOMAC)
		json_object_array_add(a, json_object_new_string("nomac"));
	return a;
}

static void header(enum xvpc_map_id id)
{
	switch (id) {
	case XVPC_M_ENDPOINTS:
		printf("%-10s %-15s %-17s %-15s %-13s %8s %8s\n", "VPC", "IP",
		       "MAC", "NODE", "FLAGS", "IFINDEX", "VNI");
		break;
	case XVPC_M_SUBNETS:
		printf("%-10s %-18s %8s %-15s %-17s\n", "VPC", "CIDR", "VNI",
		       "GATEWAY", "GATEWAY_MAC");
		break;
	case XVPC_M_IFACES:
		printf("%-8s %-15s %-10s %-15s %-17s %8s %-15s %-17s\n",
		       "IFINDEX", "IFNAME", "VPC", "IP", "MAC", "VNI",
		       "GATEWAY", "GATEWAY_MAC");
		break;
	case XVPC_M_VNIS:
		printf("%8s %-10s %s\n", "VNI", "VPC", "FLAGS");
		break;
	case XVPC_M_MISS_RL:
		printf("%-10s %-15s %s\n", "VPC", "DST", "LAST_EVENT_NS");
		break;
	case XVPC_M_VPCS:
		printf("%-10s %-15s %s\n", "VPC", "FLAGS", "GATEWAYS");
		break;
	case XVPC_M_NODES:
		printf("%-15s %s\n", "NODE", "FLAGS");
		break;
	case XVPC_M_LB_CT:
		printf("%-10s %-21s %-21s %-5s %-7s %-7s %-21s %5s %9s %9s\n",
		       "VPC", "SRC", "DST", "PROTO", "DIR", "STATE", "NAT",
		       "SLOT", "AGE_S", "IDLE_S");
		break;
	case XVPC_M_LEARNED:
		printf("%-10s %-15s %-17s %-15s %-22s %8s %20s %20s %10s\n",
		       "VPC", "IP", "MAC", "NODE", "FLAGS", "VNI", "CREATED_NS",
		       "LAST_NS", "HITS");
		break;
	default:
		break;
	}
}

static void dump_vpc(const __u32 *k, const struct xvpc_vpc *v,
		     struct json_object *o)
{
	char fl[32], gws[4 * XVPC_IP_STRLEN + 4] = "", ip[XVPC_IP_STRLEN];
	__u32 n = v->n_gateways < XVPC_MAX_GATEWAYS ? v->n_gateways
						    : XVPC_MAX_GATEWAYS;

	if (o) {
		struct json_object *g = json_object_new_array();

		for (__u32 i = 0; i < n; i++)
			json_object_array_add(g, jip(v->gateways[i]));
		jadd(o, "vpc", json_object_new_int64(*k));
		jadd(o, "learn",
		     json_object_new_boolean(v->flags & XVPC_VPC_LEARN));
		jadd(o, "gateway",
		     json_object_new_boolean(v->flags & XVPC_VPC_GATEWAY));
		jadd(o, "gateways", g);
		return;
	}
	snprintf(fl, sizeof(fl), "%s%s",
		 v->flags & XVPC_VPC_LEARN ? "learn" : "-",
		 v->flags & XVPC_VPC_GATEWAY ? ",gateway" : "");
	for (__u32 i = 0; i < n; i++) {
		if (i)
			strcat(gws, ",");
		strcat(gws, xvpc_fmt_ip(v->gateways[i], ip));
	}
	printf("%-10u %-15s %s\n", *k, fl, n ? gws : "-");
}

static void dump_learned(const struct xvpc_ep_key *k,
			 const struct xvpc_learned *v, struct json_object *o)
{
	char a[XVPC_IP_STRLEN], b[XVPC_IP_STRLEN], mac[XVPC_MAC_STRLEN], fl[48];

	if (o) {
		jadd(o, "vpc", json_object_new_int64(k->vpc_id));
		jadd(o, "ip", jip(k->ip));
		jadd(o, "mac", jmac(v->ep.mac));
		jadd(o, "node_ip", jip(v->ep.node_ip));
		jadd(o, "flags", ep_flags_json(v->ep.flags));
		jadd(o, "vni", json_object_new_int64(v->ep.vni));
		jadd(o, "created_ns", json_object_new_int64(v->created_ns));
		jadd(o, "last_ns", json_object_new_int64(v->last_ns));
		jadd(o, "hits", json_object_new_int64(v->hits));
		return;
	}
	xvpc_fmt_mac(v->ep.mac, mac);
	ep_flags(v->ep.flags, fl, sizeof(fl));
	printf("%-10u %-15s %-17s %-15s %-22s %8u %20llu %20llu %10llu\n",
	       k->vpc_id, xvpc_fmt_ip(k->ip, a), mac,
	       xvpc_fmt_ip(v->ep.node_ip, b), fl, v->ep.vni,
	       (unsigned long long)v->created_ns,
	       (unsigned long long)v->last_ns, (unsigned long long)v->hits);
}

/* "10.0.1.10:40000" */
static char *ipport(__be32 ip, __be16 port, char *buf, size_t len)
{
	char a[XVPC_IP_STRLEN];

	snprintf(buf, len, "%s:%u", xvpc_fmt_ip(ip, a), ntohs(port));
	return buf;
}

static void dump_lb_ct(const struct xvpc_lb_ct_key *k,
		       const struct xvpc_lb_ct *v, __u64 now,
		       struct json_object *o)
{
	const char *dir = v->dir == XVPC_LB_CT_FWD ? "forward" : "reverse";
	const char *state = v->state == XVPC_LB_CT_CLOSING ? "closing" : "open";
	const char *proto = k->proto == 6 ? "tcp" : "udp";
	char src[32], dst[32], nat[32];

	if (o) {
		jadd(o, "vpc", json_object_new_int64(k->vpc_id));
		jadd(o, "src", jip(k->src));
		jadd(o, "sport", json_object_new_int(ntohs(k->sport)));
		jadd(o, "dst", jip(k->dst));
		jadd(o, "dport", json_object_new_int(ntohs(k->dport)));
		jadd(o, "proto", json_object_new_string(proto));
		jadd(o, "dir", json_object_new_string(dir));
		jadd(o, "state", json_object_new_string(state));
		jadd(o, "north_south",
		     json_object_new_boolean(v->flags & XVPC_LB_CT_F_NS));
		jadd(o, "nat_ip", jip(v->nat.ip));
		jadd(o, "nat_port", json_object_new_int(ntohs(v->nat.port)));
		jadd(o, "slot", json_object_new_int64(v->slot));
		jadd(o, "age_s",
		     json_object_new_double(since_s(now, v->created_ns)));
		jadd(o, "idle_s",
		     json_object_new_double(since_s(now, v->last_ns)));
		return;
	}
	printf("%-10u %-21s %-21s %-5s %-7s %-7s %-21s %5u %9.1f %9.1f\n",
	       k->vpc_id, ipport(k->src, k->sport, src, sizeof(src)),
	       ipport(k->dst, k->dport, dst, sizeof(dst)), proto, dir, state,
	       ipport(v->nat.ip, v->nat.port, nat, sizeof(nat)), v->slot,
	       since_s(now, v->created_ns), since_s(now, v->last_ns));
}

static int dump_cb(const void *key, const void *val, void *arg)
{
	struct dumper *d = arg;
	struct json_object *o = d->ctx->json ? json_object_new_object() : NULL;
	char a[XVPC_IP_STRLEN], b[XVPC_IP_STRLEN], m1[XVPC_MAC_STRLEN],
		m2[XVPC_MAC_STRLEN], c[XVPC_CIDR_STRLEN], fl[32];

	d->n++;
	switch (d->id) {
	case XVPC_M_ENDPOINTS: {
		const struct xvpc_ep_key *k = key;
		const struct xvpc_ep *v = val;

		if (o) {
			jadd(o, "vpc", json_object_new_int64(k->vpc_id));
			jadd(o, "ip", jip(k->ip));
			jadd(o, "mac", jmac(v->mac));
			jadd(o, "node_ip", jip(v->node_ip));
			jadd(o, "flags", ep_flags_json(v->flags));
			jadd(o, "ifindex", json_object_new_int64(v->ifindex));
			jadd(o, "vni", json_object_new_int64(v->vni));
			break;
		}
		xvpc_fmt_mac(v->mac, m1);
		ep_flags(v->flags, fl, sizeof(fl));
		printf("%-10u %-15s %-17s %-15s %-13s %8u %8u\n", k->vpc_id,
		       xvpc_fmt_ip(k->ip, a), m1, xvpc_fmt_ip(v->node_ip, b),
		       fl, v->ifindex, v->vni);
		break;
	}
	case XVPC_M_SUBNETS: {
		const struct xvpc_subnet_key *k = key;
		const struct xvpc_subnet *v = val;
		__u8 plen = k->prefixlen >= 32 ? k->prefixlen - 32 : 0;

		if (o) {
			jadd(o, "vpc", json_object_new_int64(k->vpc_id));
			jadd(o, "cidr",
			     json_object_new_string(
				     xvpc_fmt_cidr(k->addr, plen, c)));
			jadd(o, "vni", json_object_new_int64(v->vni));
			jadd(o, "gateway_ip", jip(v->gw_ip));
			jadd(o, "gateway_mac", jmac(v->gw_mac));
			break;
		}
		xvpc_fmt_mac(v->gw_mac, m1);
		printf("%-10u %-18s %8u %-15s %-17s\n", k->vpc_id,
		       xvpc_fmt_cidr(k->addr, plen, c), v->vni,
		       xvpc_fmt_ip(v->gw_ip, a), m1);
		break;
	}
	case XVPC_M_IFACES: {
		const __u32 *k = key;
		const struct xvpc_iface *v = val;
		char name[IF_NAMESIZE] = "-";

		if_indextoname(*k, name);
		if (o) {
			jadd(o, "ifindex", json_object_new_int64(*k));
			jadd(o, "ifname", json_object_new_string(name));
			jadd(o, "vpc", json_object_new_int64(v->vpc_id));
			jadd(o, "ip", jip(v->ip));
			jadd(o, "mac", jmac(v->mac));
			jadd(o, "vni", json_object_new_int64(v->vni));
			jadd(o, "gateway_ip", jip(v->gw_ip));
			jadd(o, "gateway_mac", jmac(v->gw_mac));
			break;
		}
		xvpc_fmt_mac(v->mac, m1);
		xvpc_fmt_mac(v->gw_mac, m2);
		printf("%-8u %-15s %-10u %-15s %-17s %8u %-15s %-17s\n", *k,
		       name, v->vpc_id, xvpc_fmt_ip(v->ip, a), m1, v->vni,
		       xvpc_fmt_ip(v->gw_ip, b), m2);
		break;
	}
	case XVPC_M_VNIS: {
		const __u32 *k = key;
		const struct xvpc_vni *v = val;

		if (o) {
			jadd(o, "vni", json_object_new_int64(*k));
			jadd(o, "vpc", json_object_new_int64(v->vpc_id));
			jadd(o, "flags", json_object_new_int64(v->flags));
			break;
		}
		printf("%8u %-10u 0x%x\n", *k, v->vpc_id, v->flags);
		break;
	}
	case XVPC_M_MISS_RL: {
		const struct xvpc_ep_key *k = key;
		const __u64 *v = val;

		if (o) {
			jadd(o, "vpc", json_object_new_int64(k->vpc_id));
			jadd(o, "dst_ip", jip(k->ip));
			jadd(o, "last_event_ns", json_object_new_int64(*v));
			break;
		}
		printf("%-10u %-15s %llu\n", k->vpc_id, xvpc_fmt_ip(k->ip, a),
		       (unsigned long long)*v);
		break;
	}
	case XVPC_M_VPCS:
		dump_vpc(key, val, o);
		break;
	case XVPC_M_NODES: {
		const __be32 *k = key;
		const struct xvpc_node *v = val;

		if (o) {
			jadd(o, "node_ip", jip(*k));
			jadd(o, "flags", json_object_new_int64(v->flags));
			break;
		}
		printf("%-15s 0x%x\n", xvpc_fmt_ip(*k, a), v->flags);
		break;
	}
	case XVPC_M_LEARNED:
		dump_learned(key, val, o);
		break;
	case XVPC_M_LB_CT:
		dump_lb_ct(key, val, d->now, o);
		break;
	default:
		break;
	}
	if (o)
		json_object_array_add(d->arr, o);
	return 0;
}

static int dump_config(struct cli_ctx *ctx, struct xvpc_dp *dp,
		       struct json_object *arr)
{
	struct xvpc_config cfg;
	char ip[XVPC_IP_STRLEN], mac[XVPC_MAC_STRLEN];
	__u32 zero = 0;

	if (bpf_map_lookup_elem(xvpc_dp_map_fd(dp, XVPC_M_CONFIG), &zero, &cfg))
		return cli_error(ctx, -errno, "reading %s", XVPC_MAP_CONFIG);
	if (arr) {
		struct json_object *o = json_object_new_object();

		jadd(o, "abi_version", json_object_new_int64(cfg.abi_version));
		jadd(o, "node_ip", jip(cfg.node_ip));
		jadd(o, "underlay_ifindex",
		     json_object_new_int64(cfg.underlay_ifindex));
		jadd(o, "underlay_mtu",
		     json_object_new_int64(cfg.underlay_mtu));
		jadd(o, "node_mac", jmac(cfg.node_mac));
		jadd(o, "flags", json_object_new_int64(cfg.flags));
		jadd(o, "probe_ip", jip(cfg.probe_ip));
		jadd(o, "probe_port_min",
		     json_object_new_int(ntohs(cfg.probe_port_min)));
		jadd(o, "probe_port_max",
		     json_object_new_int(ntohs(cfg.probe_port_max)));
		json_object_array_add(arr, o);
		return 0;
	}
	xvpc_fmt_mac(cfg.node_mac, mac);
	printf("abi_version       %u\n"
	       "node_ip           %s\n"
	       "underlay_ifindex  %u\n"
	       "underlay_mtu      %u\n"
	       "node_mac          %s\n"
	       "flags             0x%x\n",
	       cfg.abi_version, xvpc_fmt_ip(cfg.node_ip, ip),
	       cfg.underlay_ifindex, cfg.underlay_mtu, mac, cfg.flags);
	printf("probe_ip          %s\n"
	       "probe_ports       %u-%u\n",
	       xvpc_fmt_ip(cfg.probe_ip, ip), ntohs(cfg.probe_port_min),
	       ntohs(cfg.probe_port_max));
	return 0;
}

/* Per-CPU counters summed. */
static int read_stats(struct xvpc_dp *dp, unsigned int stat,
		      struct xvpc_counter *c)
{
	return xvpc_dp_read_stat(dp, stat, c);
}

static struct json_object *counter_json(const char *kname, const char *name,
					const struct xvpc_counter *c)
{
	struct json_object *o = json_object_new_object();

	jadd(o, kname, json_object_new_string(name));
	jadd(o, "packets", json_object_new_int64(c->packets));
	jadd(o, "bytes", json_object_new_int64(c->bytes));
	return o;
}

static int dump_stats_map(struct cli_ctx *ctx, struct xvpc_dp *dp,
			  struct json_object *arr)
{
	if (!arr)
		printf("%-5s %-20s %14s %16s\n", "INDEX", "COUNTER", "PACKETS",
		       "BYTES");
	for (unsigned int s = 0; s < XVPC_STAT_MAX; s++) {
		struct xvpc_counter c;
		int err = read_stats(dp, s, &c);

		if (err)
			return cli_error(ctx, err, "reading %s",
					 XVPC_MAP_STATS);
		if (arr) {
			struct json_object *o =
				counter_json("counter", xvpc_stat_name(s), &c);

			jadd(o, "index", json_object_new_int64(s));
			json_object_array_add(arr, o);
		} else {
			printf("%-5u %-20s %14llu %16llu\n", s,
			       xvpc_stat_name(s), (unsigned long long)c.packets,
			       (unsigned long long)c.bytes);
		}
	}
	return 0;
}

struct ep_stat_row {
	__u32 ifindex;
	struct xvpc_ep_stats s;
};

/* Per-endpoint counters summed over CPUs; *rows malloc'd. */
static int read_ep_stats(struct xvpc_dp *dp, struct ep_stat_row **rows,
			 size_t *n)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_EP_STATS), ncpu = cpus();
	struct xvpc_ep_stats *vals = calloc(ncpu, sizeof(*vals));
	__u32 key, next, *prev = NULL;
	size_t cap = 0;

	*rows = NULL;
	*n = 0;
	if (!vals)
		return -ENOMEM;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		struct ep_stat_row r = {.ifindex = next};

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, vals))
			continue;
		for (int c = 0; c < ncpu; c++) {
			r.s.rx_packets += vals[c].rx_packets;
			r.s.rx_bytes += vals[c].rx_bytes;
			r.s.tx_packets += vals[c].tx_packets;
			r.s.tx_bytes += vals[c].tx_bytes;
		}
		if (*n == cap) {
			void *p = realloc(*rows, (cap = cap ? cap * 2 : 64) *
							 sizeof(**rows));
			if (!p) {
				free(vals);
				return -ENOMEM;
			}
			*rows = p;
		}
		(*rows)[(*n)++] = r;
	}
	free(vals);
	return 0;
}

static void print_ep_stats(struct xvpc_dp *dp, const struct ep_stat_row *rows,
			   size_t n, struct json_object *arr)
{
	int ifd = xvpc_dp_map_fd(dp, XVPC_M_IFACES);

	if (!arr)
		printf("%-8s %-15s %-10s %-15s %12s %14s %12s %14s\n",
		       "IFINDEX", "IFNAME", "VPC", "IP", "RX_PACKETS",
		       "RX_BYTES", "TX_PACKETS", "TX_BYTES");
	for (size_t i = 0; i < n; i++) {
		char name[IF_NAMESIZE] = "-", ip[XVPC_IP_STRLEN] = "-";
		struct xvpc_iface b = {0};
		__u32 key = rows[i].ifindex;
		const struct xvpc_ep_stats *s = &rows[i].s;

		if_indextoname(key, name);
		if (!bpf_map_lookup_elem(ifd, &key, &b))
			xvpc_fmt_ip(b.ip, ip);
		if (arr) {
			struct json_object *o = json_object_new_object();

			jadd(o, "ifindex", json_object_new_int64(key));
			jadd(o, "ifname", json_object_new_string(name));
			jadd(o, "vpc", json_object_new_int64(b.vpc_id));
			jadd(o, "ip", json_object_new_string(ip));
			jadd(o, "rx_packets",
			     json_object_new_int64(s->rx_packets));
			jadd(o, "rx_bytes", json_object_new_int64(s->rx_bytes));
			jadd(o, "tx_packets",
			     json_object_new_int64(s->tx_packets));
			jadd(o, "tx_bytes", json_object_new_int64(s->tx_bytes));
			json_object_array_add(arr, o);
			continue;
		}
		printf("%-8u %-15s %-10u %-15s %12llu %14llu %12llu %14llu\n",
		       key, name, b.vpc_id, ip,
		       (unsigned long long)s->rx_packets,
		       (unsigned long long)s->rx_bytes,
		       (unsigned long long)s->tx_packets,
		       (unsigned long long)s->tx_bytes);
	}
}

static const struct {
	const char *alias;
	enum xvpc_map_id id;
} map_aliases[] = {
	{"endpoints", XVPC_M_ENDPOINTS},
	{"subnets", XVPC_M_SUBNETS},
	{"ifaces", XVPC_M_IFACES},
	{"vnis", XVPC_M_VNIS},
	{"config", XVPC_M_CONFIG},
	{"stats", XVPC_M_STATS},
	{"ep_stats", XVPC_M_EP_STATS},
	{"events", XVPC_M_EVENTS},
	{"miss_rl", XVPC_M_MISS_RL},
	{"vpcs", XVPC_M_VPCS},
	{"nodes", XVPC_M_NODES},
	{"learned", XVPC_M_LEARNED},
	{"lb_services", XVPC_M_LB_SERVICES},
	{"lb_ct", XVPC_M_LB_CT},
};

static int find_map(const char *name)
{
	for (size_t i = 0; i < sizeof(map_aliases) / sizeof(*map_aliases);
	     i++) {
		if (!strcmp(name, map_aliases[i].alias) ||
		    !strcmp(name, xvpc_dp_map_name(map_aliases[i].id)))
			return map_aliases[i].id;
	}
	return -1;
}

/* Services with the share of each backend (cli/lbview.h); in JSON the
 * entries are the services. */
static int dump_lb_services(struct cli_ctx *ctx, struct xvpc_dp *dp,
			    struct json_object *top)
{
	struct json_object *o, *arr;
	int err = lbv_services_json(dp, &o);

	if (err)
		return cli_error(ctx, err, "reading the load balancer maps");
	if (top) {
		json_object_object_get_ex(o, "services", &arr);
		jadd(top, "entries", json_object_get(arr));
	} else {
		lbv_services_print(stdout, o);
	}
	json_object_put(o);
	return 0;
}

static int map_dump(struct cli_ctx *ctx, int argc, char **argv)
{
	struct json_object *top = NULL, *arr = NULL;
	struct xvpc_mapbe *m = NULL;
	struct xvpc_dp *dp;
	struct dumper d;
	int id, err;

	take_json_flag(ctx, &argc, argv);
	if (argc != 1 || cli_is_help(argv[0])) {
		printf("usage: xvpcctl [--json] map dump <map>\n"
		       "  maps: endpoints subnets ifaces vnis config stats "
		       "ep_stats miss_rl\n"
		       "        vpcs nodes learned lb_services lb_ct\n"
		       "  (with or without the xvpc_ prefix)\n"
		       "  lb_services: each load balancer service with its "
		       "backends, their share\n"
		       "  of the Maglev table and their live flows; lb_ct: "
		       "the conntrack entries\n");
		return argc == 1 ? 0 : -EINVAL;
	}
	id = find_map(argv[0]);
	if (id < 0)
		return cli_error(
			ctx, -ENOENT,
			"map dump: no map '%s' (see `xvpcctl map list`)",
			argv[0]);
	if (id == XVPC_M_EVENTS)
		return cli_error(ctx, -EOPNOTSUPP,
				 "map dump: %s is a perf event array; its "
				 "events are counted by xvpc-agent (/metrics)",
				 xvpc_dp_map_name(id));
	err = open_dp(ctx, &dp);
	if (err)
		return err;
	if (ctx->json) {
		top = json_object_new_object();
		arr = json_object_new_array();
		jadd(top, "map", json_object_new_string(xvpc_dp_map_name(id)));
		jadd(top, "entries", arr);
	}
	switch (id) {
	case XVPC_M_CONFIG:
		err = dump_config(ctx, dp, arr);
		break;
	case XVPC_M_STATS:
		err = dump_stats_map(ctx, dp, arr);
		break;
	case XVPC_M_LB_SERVICES:
		err = dump_lb_services(ctx, dp, top);
		break;
	case XVPC_M_EP_STATS: {
		struct ep_stat_row *rows;
		size_t n;

		err = read_ep_stats(dp, &rows, &n);
		if (err) {
			err = cli_error(ctx, err, "reading %s",
					XVPC_MAP_EP_STATS);
			break;
		}
		print_ep_stats(dp, rows, n, arr);
		free(rows);
		break;
	}
	default:
		err = xvpc_mapbe_bpf_new(xvpc_dp_map_fd(dp, id),
					 xvpc_dp_map_name(id), &m);
		if (err) {
			err = cli_error(ctx, err, "map %s",
					xvpc_dp_map_name(id));
			break;
		}
		d = (struct dumper){
			.ctx = ctx, .arr = arr, .id = id, .now = mono_ns()};
		if (!ctx->json)
			header(id);
		err = m->ops->iterate(m, dump_cb, &d);
		if (err)
			err = cli_error(ctx, err, "reading %s",
					xvpc_dp_map_name(id));
		else if (!ctx->json)
			printf("(%ld entries)\n", d.n);
		xvpc_mapbe_destroy(m);
	}
	if (!err && ctx->json)
		print_json(top);
	json_object_put(top);
	xvpc_dp_close(dp);
	return err;
}

int cmd_map(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
		{"list", map_list, "every map: name, type, entries, capacity"},
		{"dump", map_dump, "<map>: the entries, decoded"},
		{NULL, NULL, NULL},
	};

	return cli_dispatch(ctx, "xvpcctl map", cmds, argc, argv);
}

/* ---- stats ---- */

int cmd_stats(struct cli_ctx *ctx, int argc, char **argv)
{
	struct json_object *top = NULL, *cnt = NULL, *drops = NULL, *eps = NULL;
	struct ep_stat_row *rows = NULL;
	struct xvpc_dp *dp;
	size_t n = 0;
	int err;

	take_json_flag(ctx, &argc, argv);
	if (argc > 0 && cli_is_help(argv[0])) {
		printf("usage: xvpcctl [--json] stats\n"
		       "  this node's datapath counters, drops by reason, and "
		       "traffic per local endpoint\n");
		return 0;
	}
	if (argc > 0)
		return cli_error(ctx, -EINVAL, "stats: unexpected '%s'",
				 argv[0]);
	err = open_dp(ctx, &dp);
	if (err)
		return err;
	if (ctx->json) {
		top = json_object_new_object();
		cnt = json_object_new_array();
		drops = json_object_new_array();
		eps = json_object_new_array();
		jadd(top, "counters", cnt);
		jadd(top, "drops", drops);
		jadd(top, "endpoints", eps);
	}
	for (int pass = 0; pass < 2; pass++) {
		if (!ctx->json)
			printf("%s\n  %-20s %14s %16s\n",
			       pass ? "\ndrops by reason:" : "node counters:",
			       pass ? "REASON" : "COUNTER", "PACKETS", "BYTES");
		for (unsigned int s = 0; s < XVPC_STAT_MAX; s++) {
			const char *name = xvpc_stat_name(s);
			bool drop = !strncmp(name, "drop_", 5);
			struct xvpc_counter c;

			if (drop != (pass == 1))
				continue;
			err = read_stats(dp, s, &c);
			if (err) {
				err = cli_error(ctx, err, "reading %s",
						XVPC_MAP_STATS);
				goto out;
			}
			if (drop)
				name += 5;
			if (ctx->json)
				json_object_array_add(
					drop ? drops : cnt,
					counter_json(drop ? "reason"
							  : "counter",
						     name, &c));
			else
				printf("  %-20s %14llu %16llu\n", name,
				       (unsigned long long)c.packets,
				       (unsigned long long)c.bytes);
		}
	}
	err = read_ep_stats(dp, &rows, &n);
	if (err) {
		err = cli_error(ctx, err, "reading %s", XVPC_MAP_EP_STATS);
		goto out;
	}
	if (!ctx->json)
		printf("\nper endpoint:\n");
	print_ep_stats(dp, rows, n, eps);
	if (ctx->json)
		print_json(top);
out:
	free(rows);
	json_object_put(top);
	xvpc_dp_close(dp);
	return err;
}

/* ---- endpoint list ---- */

static int ep_list_cb(const void *key, const void *val, void *arg)
{
	struct dumper *d = arg;
	const struct xvpc_ep_key *k = key;
	const struct xvpc_ep *v = val;
	char name[IF_NAMESIZE] = "-", a[XVPC_IP_STRLEN], b[XVPC_IP_STRLEN],
	     mac[XVPC_MAC_STRLEN], fl[32];

	d->n++;
	if (v->flags & XVPC_EP_LOCAL)
		if_indextoname(v->ifindex, name);
	if (d->arr) {
		struct json_object *o = json_object_new_object();

		jadd(o, "vpc", json_object_new_int64(k->vpc_id));
		jadd(o, "ip", jip(k->ip));
		jadd(o, "mac", jmac(v->mac));
		jadd(o, "node_ip", jip(v->node_ip));
		jadd(o, "local",
		     json_object_new_boolean(v->flags & XVPC_EP_LOCAL));
		jadd(o, "learned",
		     json_object_new_boolean(v->flags & XVPC_EP_LEARNED));
		jadd(o, "ifindex", json_object_new_int64(v->ifindex));
		jadd(o, "ifname", json_object_new_string(name));
		jadd(o, "vni", json_object_new_int64(v->vni));
		json_object_array_add(d->arr, o);
		return 0;
	}
	xvpc_fmt_mac(v->mac, mac);
	ep_flags(v->flags, fl, sizeof(fl));
	printf("%-10u %-15s %-17s %-15s %-13s %-15s %8u\n", k->vpc_id,
	       xvpc_fmt_ip(k->ip, a), mac, xvpc_fmt_ip(v->node_ip, b), fl, name,
	       v->vni);
	return 0;
}

static int endpoint_list(struct cli_ctx *ctx, int argc, char **argv)
{
	struct json_object *top = NULL;
	struct xvpc_mapbe *m;
	struct xvpc_dp *dp;
	struct dumper d = {.ctx = ctx};
	int err;

	take_json_flag(ctx, &argc, argv);
	if (argc > 0 && cli_is_help(argv[0])) {
		printf("usage: xvpcctl [--json] endpoint list\n"
		       "  every endpoint this node knows (local and remote)\n");
		return 0;
	}
	if (argc > 0)
		return cli_error(ctx, -EINVAL, "endpoint list: unexpected '%s'",
				 argv[0]);
	err = open_dp(ctx, &dp);
	if (err)
		return err;
	err = xvpc_mapbe_bpf_new(xvpc_dp_map_fd(dp, XVPC_M_ENDPOINTS),
				 XVPC_MAP_ENDPOINTS, &m);
	if (err) {
		err = cli_error(ctx, err, "map %s", XVPC_MAP_ENDPOINTS);
		goto out;
	}
	if (ctx->json) {
		top = json_object_new_object();
		d.arr = json_object_new_array();
		jadd(top, "endpoints", d.arr);
	} else {
		printf("%-10s %-15s %-17s %-15s %-13s %-15s %8s\n", "VPC", "IP",
		       "MAC", "NODE", "FLAGS", "IFNAME", "VNI");
	}
	err = m->ops->iterate(m, ep_list_cb, &d);
	xvpc_mapbe_destroy(m);
	if (err) {
		err = cli_error(ctx, err, "reading %s", XVPC_MAP_ENDPOINTS);
		goto out;
	}
	if (ctx->json)
		print_json(top);
	else
		printf("(%ld endpoints)\n", d.n);
out:
	json_object_put(top);
	xvpc_dp_close(dp);
	return err;
}

/* ---- endpoint learned: the learning-mode entries (docs/learning.md) ---- */

struct learned_dumper {
	struct json_object *arr;
	struct xvpc_mapbe *pushed; /* xvpc_endpoints: a pushed entry wins */
	__u64 now;
	long n;
};

/* "resolved" (installed by the agent from a controller answer) or
 * "learned" (by the datapath from a packet); "pushed" when a pushed entry
 * of the same address shadows it. */
static const char *learned_source(const struct xvpc_learned *v, bool pushed)
{
	if (pushed)
		return "pushed";
	return v->ep.flags & XVPC_EP_RESOLVED ? "resolved" : "learned";
}

static int learned_cb(const void *key, const void *val, void *arg)
{
	struct learned_dumper *d = arg;
	const struct xvpc_ep_key *k = key;
	const struct xvpc_learned *v = val;
	char a[XVPC_IP_STRLEN], b[XVPC_IP_STRLEN], mac[XVPC_MAC_STRLEN];
	struct xvpc_ep pe;
	bool pushed = d->pushed && !d->pushed->ops->lookup(d->pushed, k, &pe);
	double age = since_s(d->now, v->created_ns);
	double idle = since_s(d->now, v->last_ns);
	bool nomac = v->ep.flags & XVPC_EP_NOMAC;

	d->n++;
	if (d->arr) {
		struct json_object *o = json_object_new_object();

		jadd(o, "vpc", json_object_new_int64(k->vpc_id));
		jadd(o, "ip", jip(k->ip));
		jadd(o, "mac", nomac ? NULL : jmac(v->ep.mac));
		jadd(o, "node_ip", jip(v->ep.node_ip));
		jadd(o, "vni", json_object_new_int64(v->ep.vni));
		jadd(o, "source",
		     json_object_new_string(learned_source(v, pushed)));
		jadd(o, "resolved",
		     json_object_new_boolean(v->ep.flags & XVPC_EP_RESOLVED));
		jadd(o, "age_s", json_object_new_double(age));
		jadd(o, "idle_s", json_object_new_double(idle));
		jadd(o, "hits", json_object_new_int64(v->hits));
		json_object_array_add(d->arr, o);
		return 0;
	}
	if (nomac)
		snprintf(mac, sizeof(mac), "?");
	else
		xvpc_fmt_mac(v->ep.mac, mac);
	printf("%-10u %-15s %-17s %-15s %-9s %8u %9.1f %9.1f %10llu\n",
	       k->vpc_id, xvpc_fmt_ip(k->ip, a), mac,
	       xvpc_fmt_ip(v->ep.node_ip, b), learned_source(v, pushed),
	       v->ep.vni, age, idle, (unsigned long long)v->hits);
	return 0;
}

static int endpoint_learned(struct cli_ctx *ctx, int argc, char **argv)
{
	struct learned_dumper d = {.now = mono_ns()};
	struct json_object *top = NULL;
	struct xvpc_mapbe *m = NULL;
	struct xvpc_dp *dp;
	int err;

	take_json_flag(ctx, &argc, argv);
	if (argc > 0 && cli_is_help(argv[0])) {
		printf("usage: xvpcctl [--json] endpoint learned\n"
		       "  learning mode: the endpoints this node learned, "
		       "with their source\n"
		       "  (learned: by the datapath from a packet; resolved: "
		       "by the agent from\n"
		       "  the controller; pushed: shadowed by a pushed "
		       "entry), age, idle time\n"
		       "  and hits\n");
		return 0;
	}
	if (argc > 0)
		return cli_error(ctx, -EINVAL,
				 "endpoint learned: unexpected '%s'", argv[0]);
	err = open_dp(ctx, &dp);
	if (err)
		return err;
	err = xvpc_mapbe_bpf_new(xvpc_dp_map_fd(dp, XVPC_M_LEARNED),
				 XVPC_MAP_LEARNED, &m);
	if (err) {
		err = cli_error(ctx, err, "map %s", XVPC_MAP_LEARNED);
		goto out;
	}
	if (xvpc_mapbe_bpf_new(xvpc_dp_map_fd(dp, XVPC_M_ENDPOINTS),
			       XVPC_MAP_ENDPOINTS, &d.pushed))
		d.pushed = NULL;
	if (ctx->json) {
		top = json_object_new_object();
		d.arr = json_object_new_array();
		jadd(top, "learned", d.arr);
	} else {
		printf("%-10s %-15s %-17s %-15s %-9s %8s %9s %9s %10s\n", "VPC",
		       "IP", "MAC", "NODE", "SOURCE", "VNI", "AGE_S", "IDLE_S",
		       "HITS");
	}
	err = m->ops->iterate(m, learned_cb, &d);
	if (err) {
		err = cli_error(ctx, err, "reading %s", XVPC_MAP_LEARNED);
		goto out;
	}
	if (ctx->json) {
		jadd(top, "capacity", json_object_new_int64(m->max_entries));
		print_json(top);
	} else {
		printf("(%ld learned endpoints, capacity %u)\n", d.n,
		       m->max_entries);
	}
out:
	xvpc_mapbe_destroy(d.pushed);
	xvpc_mapbe_destroy(m);
	json_object_put(top);
	xvpc_dp_close(dp);
	return err;
}

int cmd_endpoint(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
		{"list", endpoint_list, "every endpoint in the datapath"},
		{"learned", endpoint_learned,
		 "learning mode: learned endpoints, source, age, hits"},
		{NULL, NULL, NULL},
	};

	return cli_dispatch(ctx, "xvpcctl endpoint", cmds, argc, argv);
}
