#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# make bench-agent: the node agent's reconcile and event-draining speed.
#
#   reconcile  1k, 10k and 100k endpoints into real BPF maps (the datapath
#              loaded with no_pin: private maps, nothing attached, nothing
#              pinned), cold and as a 1% diff; peak RSS per size.
#   events     learning events drained per second from a perf buffer by the
#              agent's events thread, fed by bpf/evgen.bpf.c through
#              BPF_PROG_TEST_RUN on the other CPU; loss at each offered rate.
#
# bin/bench/bench_agent does the work (see its header comment), prints the
# table and writes bench/results/agent.json.
# Environment: BENCH_SIZES (default 1000,10000,100000), BENCH_EVENT_SECS
# (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/bench/bench_agent
[ -x "$bin" ] || { echo "bench: $bin not built (make all)" >&2; exit 1; }
out=bench/results/agent.json
tmp=$out.tmp
"$bin" --machine "$(bench/machine.sh)" --out "$tmp" \
	--sizes "${BENCH_SIZES:-1000,10000,100000}" \
	--events-secs "${BENCH_EVENT_SECS:-3}" 2> >(grep -v 'events: the kernel lost' >&2)
mv "$tmp" "$out"
echo
echo "targets: 100k cold < 2000 ms, 1% diff < 50 ms, >= 500000 events/s with no loss"
jq -r '"measured: 100k cold \(.reconcile_cold_ms["100000"]) ms, 1% diff \(.reconcile_diff_ms["100000"]) ms, \(.events_per_s | floor) events/s, lost ratio \(.events_lost_ratio)"' "$out"
echo "wrote $out"
