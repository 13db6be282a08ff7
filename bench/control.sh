#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# make bench-control: state distribution from the controllers to the agents.
#
# For each store (the embedded one; ZooKeeper, a 3-member ensemble from
# tests/zk_harness.sh, when this build's controller supports --zookeeper),
# each agent count (100 and 1000) and each topology, a fresh controller is
# started and bin/bench/bench_control (see its header comment) runs that
# many simulated agents (the agent's real controller source and reconciler
# over in-memory maps) against it:
#
#   apply   time from a port-create API call returning until every
#           interested agent (every node of the port's VPC) has the port's
#           endpoint in its maps: p50, p99, max over (change, interested
#           agent) pairs
#   ports   port creations per second through the API (256 clients), spread
#           over the VPCs, while the agents are connected and the
#           interested ones apply every one of them
#
# Topologies:
#   tenants    (the main figures) agents / BENCH_VPC_NODES VPCs (default:
#              100 agents 10 VPCs, 1000 agents 100), each spanning
#              BENCH_SPAN nodes (default 15) with neighbours overlapping:
#              VPC v on nodes (v * 10 + j) mod agents, j < 15, so a node
#              hosts 1 or 2 VPCs and a change interests 15 agents;
#   broadcast  (a stress figure, under "broadcast") one VPC on every node:
#              every change goes to every agent. BENCH_BROADCAST=0 skips.
#
# and writes bench/results/control.json.
# Environment: BENCH_AGENTS (default 100,1000), BENCH_CHANGES (default: 300;
# 100 for broadcast at 1000 agents), BENCH_PORTS_SECS (default 10),
# BENCH_CLIENTS (default 256), BENCH_ZK_CONTROLLERS (controllers on the
# ensemble, default 1), BENCH_STORES (default
# embedded,zookeeper,no_liveness), BENCH_VPC_NODES, BENCH_SPAN,
# BENCH_BROADCAST, BENCH_IDLE_SECS (default 5: the controller's CPU with
# every poll parked and nothing changing, before the apply phase).
#
# no_liveness is a diagnostic: the same controller code (store, API, HTTP)
# inside bench_control, without the cluster's liveness duty and without the
# per-poll seen/ writes, to show what the distribution path costs alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=bin/bench/bench_control
ctl=bin/xvpc-controller
for b in "$bench" "$ctl"; do
	[ -x "$b" ] || { echo "bench: $b not built (make all)" >&2; exit 1; }
done
out=bench/results/control.json
agents_list=${BENCH_AGENTS:-100,1000}
stores=${BENCH_STORES:-embedded,zookeeper,no_liveness}
zk_ctls=${BENCH_ZK_CONTROLLERS:-1}
vpc_nodes=${BENCH_VPC_NODES:-10}
span=${BENCH_SPAN:-15}
topos=tenants
[ "${BENCH_BROADCAST:-1}" != 0 ] && topos+=" broadcast"
token=xva_bench_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
work=$(mktemp -d /tmp/xvpc-bench-control.XXXXXX)
ctl_pids=()
zk_up=

stop_controllers() {
	local p
	for p in "${ctl_pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${ctl_pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	ctl_pids=()
}

cleanup() {
	stop_controllers
	[ -n "$zk_up" ] && tests/zk_harness.sh stop "$work/zk" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

# Thread-per-connection controller: a socket and a thread per agent.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		[ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] && {
			echo "$p"
			return
		}
	done
}

# start_controller NAME ARGS...: appends its URL to urls once it serves
# (not in a subshell: ctl_pids must see it).
start_controller() {
	local name=$1 port i
	shift
	port=$(free_port)
	"$ctl" --listen "127.0.0.1:$port" --admin-token "$token" \
		--log-level warn "$@" >"$work/$name.log" 2>&1 &
	ctl_pids+=($!)
	for i in $(seq 300); do
		if curl -sf --noproxy '*' -o /dev/null \
			"http://127.0.0.1:$port/v1/openapi.json"; then
			urls+=("http://127.0.0.1:$port")
			return 0
		fi
		kill -0 "${ctl_pids[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "bench: controller $name did not start:" >&2
	tail -5 "$work/$name.log" >&2
	return 1
}

# null figures with the reason, for a run that could not be made
skipped() {
	jq -n --arg why "$1" --argjson n "$2" --arg store "$3" \
		'{store: $store, agents: $n, apply_p50_ms: null,
		  apply_p99_ms: null, apply_max_ms: null, ports_per_s: null,
		  skipped: $why}'
}

zk_supported() {
	"$ctl" --help 2>&1 | grep -q -- '--zookeeper' &&
		! "$ctl" --help 2>&1 | grep -A2 -- '--zookeeper' |
			grep -qi 'not supported'
}

run() { # store n topology
	local store=$1 n=$2 topo=$3 args=() u i res=$work/$3-$1-$2.json
	urls=()
	if [ "$topo" = broadcast ]; then
		args+=(--vpcs 1 --span "$n")
	else
		args+=(--vpcs $(((n + vpc_nodes - 1) / vpc_nodes))
			--span $((span < n ? span : n)))
	fi
	stop_controllers
	case $store in
	embedded)
		mkdir -p "$work/data-$topo-$n"
		start_controller "emb-$topo-$n" --data-dir "$work/data-$topo-$n" ||
			{ skipped "the controller did not start" "$n" "$store" >"$res"; return; }
		;;
	zookeeper)
		if ! zk_supported; then
			skipped "this build's xvpc-controller has no --zookeeper mode" \
				"$n" "$store" >"$res"
			return
		fi
		if [ -z "$zk_up" ]; then
			zk_hosts=$(tests/zk_harness.sh start 3 "$work/zk" $$) ||
				{ skipped "the ZooKeeper ensemble did not start" "$n" "$store" >"$res"; return; }
			zk_up=1
		fi
		for i in $(seq "$zk_ctls"); do
			mkdir -p "$work/zkdata-$topo-$n-$i"
			start_controller "zk-$topo-$n-$i" --zookeeper "$zk_hosts" \
				--zk-root "/xvpc-bench-$topo-$n" \
				--data-dir "$work/zkdata-$topo-$n-$i" ||
				{ skipped "a controller did not start on ZooKeeper" "$n" "$store" >"$res"; return; }
		done
		;;
	no_liveness)
		mkdir -p "$work/inproc-$topo-$n"
		args+=(--inproc "$work/inproc-$topo-$n")
		;;
	esac
	for u in "${urls[@]}"; do
		args+=(--url "$u")
	done
	for i in "${ctl_pids[@]}"; do
		args+=(--ctl-pid "$i")
	done
	[ -n "${BENCH_CHANGES:-}" ] && args+=(--changes "$BENCH_CHANGES")
	if ! "$bench" "${args[@]}" --token "$token" --agents "$n" \
		--store "$store" --ports-secs "${BENCH_PORTS_SECS:-10}" \
		--idle-secs "${BENCH_IDLE_SECS:-5}" \
		--clients "${BENCH_CLIENTS:-256}" --out "$res"; then
		skipped "bench_control failed (see above)" "$n" "$store" >"$res"
	fi
	stop_controllers
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
IFS=, read -ra ns <<<"$agents_list"
IFS=, read -ra sts <<<"$stores"
for topo in tenants broadcast; do
	for store in embedded zookeeper no_liveness; do
		for n in "${ns[@]}"; do
			if [[ " $topos " != *" $topo "* ]]; then
				skipped "not run (BENCH_BROADCAST=0)" "$n" \
					"$store" >"$work/$topo-$store-$n.json"
			elif [[ ",$stores," == *",$store,"* ]]; then
				run "$store" "$n" "$topo"
			else
				skipped "not run (BENCH_STORES=$stores)" "$n" \
					"$store" >"$work/$topo-$store-$n.json"
			fi
		done
	done
done

machine=$(bench/machine.sh)
args=()
filter='{machine: $machine, load_average_before: $load, method: $method'
# per_store TOPOLOGY: '"embedded": {"100": ..., ...}, ...' of its runs
per_store() {
	local store n sep2=
	for store in embedded zookeeper no_liveness; do
		filter+="$sep2\"$store\": {"
		sep=
		for n in "${ns[@]}"; do
			args+=(--slurpfile "$1_${store}_$n" "$work/$1-$store-$n.json")
			filter+="$sep\"$n\": \$$1_${store}_$n[0]"
			sep=", "
		done
		filter+="}"
		sep2=", "
	done
}
filter+=", "
per_store tenants
filter+=", broadcast: {"
per_store broadcast
filter+="}}"
method="Simulated agents: agent/source_ctrl.c and agent/reconcile.c over \
in-memory maps, all in one process on the same machine as the controller(s). \
Topology of the main figures (per store and agent count N): N/$vpc_nodes VPCs \
of one tenant, VPC v with a bound port on each of the $span nodes \
(v*$vpc_nodes+j) mod N, j<$span (neighbouring VPCs overlap: a node hosts 1 or 2 \
VPCs; its agent gets only those). apply: change i creates a port in VPC \
i mod V on one of its nodes; latency = API call returning -> endpoint in the \
maps of each interested agent (the $span nodes of that VPC), p50/p99/max over \
all (change, interested agent) pairs, changes one after another, spread over \
all VPCs. ports_per_s: bound port creations by ${BENCH_CLIENTS:-256} API clients \
for ${BENCH_PORTS_SECS:-10} s, spread over the VPCs the same way, while the \
interested agents apply every one; sustained: ports created / (that time + the \
time until every interested agent had applied them), so a backlog left to the \
agents counts (ports_api_per_s: the API's rate alone; \
ports_machine_busy_cores and ports_machine_steal_cores: the machine's busy CPU \
and the CPU its VM host took meanwhile, from /proc/stat). The agents pace their \
polls as the agent does by default (after a burst of 4 answers with changes, \
one every 100 ms: agent_batch_ms, or the longer interval the controller asks \
for with X-Xvpc-Batch-Ms, polling nodes x 1000 / its answer rate of 1250/s: \
agent_batch_hint_ms). idle_controller_cpu: the controller's CPU \
(cores) over ${BENCH_IDLE_SECS:-5} s with every agent's long-poll parked and \
nothing changing. broadcast: the same measurements with one \
VPC on every node, so every change reaches every agent (stress figure)."
jq -n --argjson machine "$machine" --arg load "$load_before" \
	--arg method "$method" "${args[@]}" "$filter" >"$out.tmp"
mv "$out.tmp" "$out"

echo
printf '%-10s %-12s %6s %10s %10s %10s %10s\n' topology store agents \
	p50_ms p99_ms max_ms ports/s
for topo in tenants broadcast; do
	for store in embedded zookeeper no_liveness; do
		for n in "${ns[@]}"; do
			jq -r --arg t "$topo" --arg s "$store" --arg n "$n" \
				'(if $t == "tenants" then .[$s][$n] else .broadcast[$s][$n] end) |
				 [$t, $s, $n, (.apply_p50_ms // "-"), (.apply_p99_ms // "-"),
				 (.apply_max_ms // "-"), (.ports_per_s // "-")] | @tsv' "$out" |
				awk -F'\t' '{printf "%-10s %-12s %6s %10s %10s %10s %10s\n", $1, $2, $3, $4, $5, $6, $7}'
		done
	done
done
echo "targets: apply p99 < 100 ms at 1000 agents; >= 2000 ports/s on ZooKeeper"
echo "wrote $out"
