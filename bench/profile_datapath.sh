#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Where the time of each datapath path goes: perf samples (cpu-clock, so it
# works in VMs without a PMU) of bin/bench/bench_dp_prog --only PATH, kept
# only when the program is on the stack, grouped by what the program called.
# Prints a table and writes bench/results/datapath_profile.json.
#
# Usage: bench/profile_datapath.sh [RUNS]   (default 1,000,000 runs a path)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000000}
out=bench/results/datapath_profile.json
tmp=$(mktemp -d /tmp/xvpc-prof.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
command -v perf >/dev/null || { echo "profile: perf not installed (apt-get install linux-perf)" >&2; exit 2; }

# Kernel symbol -> category.
category() {
	case $1 in
	bpf_prog_*) echo program ;;
	lookup_nulls_elem_raw | htab_map_hash | __htab_map_lookup_elem | memcmp | \
		htab_percpu_map_lookup_elem | htab_lru_map_lookup_elem | jhash*) echo hash_lookup ;;
	trie_lookup_elem | longest_prefix_match*) echo lpm_lookup ;;
	*adjust_room* | *skb_net_grow* | *skb_net_shrink* | *skb_generic_push* | \
		*skb_generic_pop* | skb_cow* | pskb_expand_head | *memmove* | \
		bpf_xdp_adjust_head | skb_ensure_writable | skb_push | skb_pull) echo resize ;;
	*flow_dissect* | *get_hash* | *siphash* | *flow_hash* | skb_flow_get_ports) echo flow_hash ;;
	*store_bytes* | *load_bytes* | *memcpy*) echo copy_bytes ;;
	*redirect*) echo redirect ;;
	*perf_event* | *perf_output*) echo event ;;
	*) echo other ;;
	esac
}

rows=()
printf '%-12s %8s %8s %8s %8s %8s %8s %8s %8s\n' path program hash lpm resize hash_rx copy redir other
for path in encap decap decap_tc route route_encap arp; do
	perf record -q -e cpu-clock -a -g -o "$tmp/$path.data" -- \
		bin/bench/bench_dp_prog --only "$path" --runs "$runs" >/dev/null 2>&1
	perf report -i "$tmp/$path.data" --no-children -x \
		--parent 'bpf_prog_[0-9a-f]*_xvpc_(from_ep|tc_decap|xdp_decap)' \
		--sort symbol --stdio -g none 2>/dev/null |
		awk '/%/ && !/^#/ { sub("%", "", $1); print $1, $3 }' >"$tmp/$path.txt"
	declare -A share=()
	total=0
	while read -r pct sym; do
		c=$(category "$sym")
		share[$c]=$(echo "${share[$c]:-0} + $pct" | bc -l)
		total=$(echo "$total + $pct" | bc -l)
	done <"$tmp/$path.txt"
	[ -n "${XVPC_PROFILE_VERBOSE:-}" ] && sed "s/^/    $path: /" "$tmp/$path.txt"
	row="\"$path\": {"
	line=$(printf '%-12s' "$path")
	sep=""
	for c in program hash_lookup lpm_lookup resize flow_hash copy_bytes redirect other; do
		v=${share[$c]:-0}
		p=$(echo "if ($total > 0) 100 * $v / $total else 0" | bc -l)
		line+=$(printf ' %7.1f%%' "$p")
		row+=$(printf '%s"%s": %.1f' "$sep" "$c" "$p")
		sep=", "
	done
	row+="}"
	echo "$line"
	rows+=("$row")
	unset share
done
joined=$(printf '%s, ' "${rows[@]}")
machine=$(bench/machine.sh)
printf '{"percent_of_program_time": {%s}, "method": "perf record -e cpu-clock -a -g of bench_dp_prog --only PATH (%s repeat=1 runs), samples with the xvpc program on the stack, grouped by callee", "machine": %s}\n' \
	"${joined%, }" "$runs" "$machine" >"$out"
echo "wrote $out"
