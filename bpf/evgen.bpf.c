// SPDX-License-Identifier: GPL-2.0-only
/*
 * Event generator for the agent's benchmark and tests: each
 * BPF_PROG_TEST_RUN invocation writes n_events learning events
 * (struct xvpc_event) into its own perf event array, as the datapath does
 * on a miss. Not part of the datapath.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xvpc_abi.h"

#define EVGEN_MAX 4096

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} evgen_events SEC(".maps");

__u32 n_events = 64; /* per run, at most EVGEN_MAX */
__u64 seq;	     /* events attempted so far */
__u64 failed;	     /* bpf_perf_event_output() errors (buffer full) */

SEC("xdp")
int evgen(struct xdp_md *ctx)
{
	__u32 n = n_events;

	for (__u32 i = 0; i < EVGEN_MAX && i < n; i++) {
		struct xvpc_event ev = {
			.type = XVPC_EV_MISS,
			.vpc_id = 1,
			.src_ip = bpf_htonl(0x0a00010a),
			.dst_ip = bpf_htonl(0x0a000000 | (seq & 0xffff)),
			.ifindex = 1,
			.reason = XVPC_DROP_NO_ENDPOINT,
		};

		if (bpf_perf_event_output(ctx, &evgen_events, BPF_F_CURRENT_CPU,
					  &ev, sizeof(ev)))
			failed++;
		seq++;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
