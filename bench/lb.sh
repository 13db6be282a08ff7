#!/bin/bash
# make bench-lb: load balancer benchmarks. Prints a table and writes
# bench/results/lb.json:
#   build_ms, build_ms_min, moved_over_owned, collateral_over_owned,
#   changed_fraction_on_remove, max_over_min, restored_on_add: keyed "M/N"
#                    (bin/bench/bench_lb_table, see bench/bench_lb_table.c)
#   ns_per_packet:   {floor, syn, established, ...} from the datapath part
#   machine:         bench/machine.sh
#
# Adding the datapath part: write a program that prints the ns_per_packet
# JSON object on stdout (e.g. bin/bench/bench_lb_datapath), and set
# DATAPATH_BENCH below to it; the placeholder is used while it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

out=bench/results/lb.json
tmp=$out.tmp
DATAPATH_BENCH=bin/bench/bench_lb_datapath

for b in bin/bench/bench_lb_table; do
	[ -x "$b" ] || { echo "bench-lb: $b missing; run make all" >&2; exit 1; }
done

machine=$(bench/machine.sh)

if [ -x "$DATAPATH_BENCH" ]; then
	ns_per_packet=$("$DATAPATH_BENCH" --json)
else
	ns_per_packet='{"floor": null, "syn": null, "established": null,
		"note": "datapath LB path not built yet; table generation only"}'
fi

echo "== Maglev table generation (equal weights; build = median of runs) =="
bin/bench/bench_lb_table --json "$tmp" --machine "$machine" \
	--ns-per-packet "$ns_per_packet"
echo
echo "== ns per packet (BPF_PROG_TEST_RUN) =="
echo "$ns_per_packet"
mv "$tmp" "$out"
echo
echo "wrote $out"
