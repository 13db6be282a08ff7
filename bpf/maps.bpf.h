/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map definitions, BPF side only. Keys and values: maps/xvpc_abi.h.
 * Every map is pinned by name under the loader's pin directory, so the
 * endpoint and underlay objects share them and a restarted agent adopts
 * them. */
#ifndef XVPC_MAPS_BPF_H
#define XVPC_MAPS_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xvpc_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVPC_MAX_ENDPOINTS);
	__type(key, struct xvpc_ep_key);
	__type(value, struct xvpc_ep);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, XVPC_MAX_SUBNETS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xvpc_subnet_key);
	__type(value, struct xvpc_subnet);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_subnets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVPC_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct xvpc_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVPC_MAX_VNIS);
	__type(key, __u32);
	__type(value, struct xvpc_vni);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_vnis SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xvpc_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XVPC_STAT_MAX);
	__type(key, __u32);
	__type(value, struct xvpc_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, XVPC_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct xvpc_ep_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_ep_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XVPC_MAX_MISS_RL);
	__type(key, struct xvpc_ep_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_miss_rl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVPC_MAX_VPCS);
	__type(key, __u32);
	__type(value, struct xvpc_vpc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_vpcs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVPC_MAX_NODES);
	__type(key, __be32);
	__type(value, struct xvpc_node);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_nodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XVPC_MAX_LEARNED);
	__type(key, struct xvpc_ep_key);
	__type(value, struct xvpc_learned);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xvpc_learned SEC(".maps");

#endif
