#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# make bench-learn: learning mode (docs/learning.md). Prints a table and
# writes bench/results/learn.json:
#   entries_per_node_learn, entries_per_node_push, control_bytes_*:
#       bin/bench/bench_learn_ctrl (the controller's real handlers, a VPC of
#       64,000 endpoints over 1,000 simulated nodes, 10 peers each)
#   miss_to_installed_p50_ms, miss_to_installed_p99_ms (10,000 misses/s),
#   misses_resolved_per_s (from the resolver's cache):
#       bin/bench/bench_learn_agent (the agent's resolver, HTTP transport
#       and a loopback controller that answers at once)
#   first_packet_extra_ms: bench/learn_firstpkt.sh (namespaces, real agents
#       and controller: the first echo through a gateway vs later ones)
#   machine: bench/machine.sh
set -euo pipefail
cd "$(dirname "$0")/.."

out=bench/results/learn.json
for b in bin/bench/bench_learn_ctrl bin/bench/bench_learn_agent; do
	[ -x "$b" ] || { echo "bench-learn: $b missing; run make all" >&2; exit 1; }
done
machine=$(bench/machine.sh)
load=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== controller: push vs learn, 64,000 endpoints over 1,000 nodes =="
ctrl=$(bin/bench/bench_learn_ctrl | tee /dev/stderr | tail -n 1)
echo
echo "== agent: the resolver =="
agent=$(bin/bench/bench_learn_agent | tee /dev/stderr | tail -n 1)
echo
echo "== first packet on the namespace topology =="
first=$(bench/learn_firstpkt.sh | tail -n 1)

jq -n --argjson c "$ctrl" --argjson a "$agent" --argjson f "$first" \
	--argjson m "$machine" --arg load "$load" '
	{entries_per_node_learn: $c.entries_per_node_learn,
	 entries_per_node_push: $c.entries_per_node_push,
	 learn_over_push: ($c.entries_per_node_learn / $c.entries_per_node_push),
	 control_bytes_learn: $c.control_bytes_learn,
	 control_bytes_push: $c.control_bytes_push,
	 miss_to_installed_p50_ms: $a.miss_to_installed_p50_ms,
	 miss_to_installed_p99_ms: $a.miss_to_installed_p99_ms,
	 misses_resolved_per_s: $a.misses_resolved_per_s,
	 first_packet_extra_ms: $f.first_packet_extra_ms,
	 controller: $c, agent: $a, first_packet: $f,
	 load_average_before: $load, machine: $m}' >"$out.tmp"
mv "$out.tmp" "$out"
echo
jq -r '
	["entries per node, learn", .entries_per_node_learn],
	["entries per node, push", .entries_per_node_push],
	["learn / push", .learn_over_push],
	["control bytes, learn", .control_bytes_learn],
	["control bytes, push", .control_bytes_push],
	["miss -> installed p50 ms", .miss_to_installed_p50_ms],
	["miss -> installed p99 ms", .miss_to_installed_p99_ms],
	["misses resolved per s (cache)", .misses_resolved_per_s],
	["first packet extra ms (gateway path)", .first_packet_extra_ms],
	["first ARP extra ms (same subnet)", .first_packet.first_packet_extra_same_subnet_ms]
	| @tsv' "$out" | column -t -s $'\t'
echo "wrote $out"
