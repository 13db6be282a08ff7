#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# End-to-end: hitless restart of xvpc-agent. Both nodes run the agent as a
# daemon (standalone, state file, metrics). Two 100/s pings cross the
# overlay, one in a subnet and one routed, while the agents are SIGKILLed
# and restarted five times, alternating nodes and once both at once, with a
# change of the desired state in every round (applied by the restarted
# agent at start, and by the running one through inotify):
#
#   round 1: kill n1; add endpoint e1 (on n2); start n1
#   round 2: kill n2; change e1's MAC (and the VM's); start n2
#   round 3: kill n1 and n2; add a remote-only endpoint; start both
#   round 4: kill n2; remove e1; start n2
#   round 5: kill n1; nothing changes (the empty diff); start n1
#
# Then: not one ping lost, every reconciled map on both nodes equals the
# desired state, /healthz is 200 and /metrics has the drop counters and the
# map occupancy. Once with the underlay in tc, once in XDP
# (XVPC_E2E_MODES, default "tc xdp").
#
#                underlay bridge br0 (192.168.250.0/24)
#          ul0 .1 --------------------------------- ul0 .2
#        node n1                                   node n2
#   a1 10.0.1.10   a3 10.0.2.10            a2 10.0.1.11   a4 10.0.2.11
#                                          e1 10.0.1.20 (from round 1)
#   VPC 1: 10.0.1.0/24 VNI 101, 10.0.2.0/24 VNI 102, gateways .1
#
#   streams: a1 -> a2 (same subnet, n1 -> n2), a4 -> a1 (routed, n2 -> n1)
#
# Prints PASS/FAIL per check and "N passed, M failed"; exit status non-zero
# on failure; teardown (daemons, --uninstall, pins, namespaces) always runs.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
. selftests/e2e/agent_lib.sh

MODES=${XVPC_E2E_MODES:-tc xdp} # underlay attach modes to run
E1_MAC2=02:00:00:01:01:99
GHOST='{"vpc": 1, "ip": "10.0.1.99", "mac": "02:00:00:01:01:63",
	"node_ip": "192.168.250.3"}'
# The desired state of each phase, as a jq filter over lib.sh's topology.
NO_E1='del(.endpoints[] | select(.ip == "10.0.1.20"))'
GHOST_ADD=".endpoints += [$GHOST]"

REV=1
# state_all FILTER: both nodes' state files for the next revision.
state_all() {
	REV=$((REV + 1))
	xa_state n1 "$REV" "$1" && xa_state n2 "$REV" "$1"
}

# applied NODE: the running daemon reached the current revision.
applied() {
	xv_wait 20 xa_ready "$1" "$REV" || {
		echo "agent on $1 did not apply revision $REV"
		tail -n 15 "$XV_TMP/agent-$1.log"
		return 1
	}
}

# round N "NODES" FILTER [SETUP-CMD]: kill NODES, write the new state
# (after SETUP-CMD), restart NODES, wait until every agent has applied it.
round() {
	local nodes=$2 filter=$3 node # $1: the round number, for the reader
	shift 3
	for node in $nodes; do
		xa_kill "$node"
	done
	# While the agents are down the datapath forwards on its own: let
	# the stream run through that for a second.
	sleep 1
	[ $# -gt 0 ] && { "$@" || return 1; }
	state_all "$filter" || return 1
	for node in $nodes; do
		xa_start "$node" "$MODE" || return 1
	done
	applied n1 && applied n2
}

set_e1_mac() {
	XV_VM_MAC[e1]=$E1_MAC2
	xv_must xv_in e1 ip link set eth0 address "$E1_MAC2"
}

# ping_e1 FROM: e1 and FROM reach each other (fresh neighbour entries: e1's
# MAC may just have changed).
ping_e1() {
	xv_in "$1" ip neigh flush to 10.0.1.20 2>/dev/null
	xv_in e1 ip neigh flush all 2>/dev/null
	xv_ping e1 "${XV_VM_IP[$1]}"
}

still_running() {
	local p
	for p in "$@"; do
		kill -0 "$p" 2>/dev/null || {
			echo "a stream ended before the restarts were done:"
			tail -n 3 "$XV_TMP"/ping-*
			return 1
		}
	done
}

check_metrics() {
	local node=$1 body n want reason
	body=$(xa_curl "$node" /metrics) || { echo "GET /metrics failed"; return 1; }
	for reason in spoof_mac spoof_ip no_endpoint no_subnet ttl vni_unknown; do
		printf '%s\n' "$body" | grep -q "^xvpc_datapath_drops_total{reason=\"$reason\"} [0-9]" ||
			{ echo "no drop counter for reason $reason"; return 1; }
	done
	n=$(printf '%s\n' "$body" | grep -c '^xvpc_datapath_drops_total{')
	[ "$n" -ge 20 ] || { echo "only $n drop counters"; return 1; }
	want=$(jq '.endpoints | length' "$(xa_state_file "$node")")
	printf '%s\n' "$body" | grep -q "^xvpc_map_entries{map=\"xvpc_endpoints\"} $want\$" || {
		echo "xvpc_map_entries for xvpc_endpoints is not $want:"
		printf '%s\n' "$body" | grep '^xvpc_map_'
		return 1
	}
	for m in xvpc_endpoints xvpc_subnets xvpc_ifaces xvpc_vnis; do
		printf '%s\n' "$body" | grep -q "^xvpc_map_capacity{map=\"$m\"} [1-9]" ||
			{ echo "no capacity for $m"; return 1; }
	done
	printf '%s\n' "$body" | grep -q '^xvpc_endpoint_rx_packets_total{.*ip="10.0.1.10".*} [1-9]' ||
		[ "$node" != n1 ] || { echo "no rx packets counted for a1"; return 1; }
}

healthz() {
	local out
	out=$(xa_curl "$1" /healthz) || { echo "GET /healthz failed"; return 1; }
	[ "$out" = ok ] || { echo "/healthz said: $out"; return 1; }
}

run_mode() {
	MODE=$1
	REV=1
	XA_PID=()
	XA_REV=()
	echo "== underlay mode: $MODE"
	xv_underlay && xv_node n1 $XV_UL_NET.1 && xv_node n2 $XV_UL_NET.2 &&
		xv_node_neighs || return 1
	xv_vpc 1 blue
	xv_subnet 1 10.0.1.0/24 101 10.0.1.1
	xv_subnet 1 10.0.2.0/24 102 10.0.2.1
	xv_vm a1 n1 1 10.0.1.10 && xv_vm a3 n1 1 10.0.2.10 &&
		xv_vm a2 n2 1 10.0.1.11 && xv_vm a4 n2 1 10.0.2.11 &&
		xv_vm e1 n2 1 10.0.1.20 || return 1

	# Start: everything but e1.
	xa_state n1 $REV "$NO_E1" && xa_state n2 $REV "$NO_E1" || return 1
	if xa_start n1 "$MODE" && xa_start n2 "$MODE"; then
		xv_check "[$MODE] agent daemons on n1 and n2 start and report healthy" true
	else
		xv_check "[$MODE] agent daemons on n1 and n2 start and report healthy" false
		return
	fi
	xv_check "[$MODE] maps equal the desired state on n1 at start" xa_maps_match n1
	xv_check "[$MODE] maps equal the desired state on n2 at start" xa_maps_match n2
	xv_check "[$MODE] ping a1 -> a2 before the stream" xv_ping a1 10.0.1.11
	xv_check "[$MODE] ping a4 -> a1 (routed) before the stream" xv_ping a4 10.0.1.10

	xa_ping_start a1 10.0.1.11
	P1=$XA_PING_PID
	xa_ping_start a4 10.0.1.10
	P2=$XA_PING_PID
	sleep 1

	xa_do "[$MODE] round 1: SIGKILL n1, add endpoint e1, restart n1" \
		round 1 n1 .
	xv_check "[$MODE] round 1: e1 (new) reaches a1 across nodes" ping_e1 a1
	xa_do "[$MODE] round 2: SIGKILL n2, change e1's MAC, restart n2" \
		round 2 n2 . set_e1_mac
	xa_do "[$MODE] round 2: e1 with its new MAC reaches a1" ping_e1 a1
	xa_do "[$MODE] round 3: SIGKILL n1 and n2, add a remote-only endpoint, restart both" \
		round 3 "n1 n2" "$GHOST_ADD"
	xa_do "[$MODE] round 4: SIGKILL n2, remove e1, restart n2" \
		round 4 n2 "$NO_E1 | $GHOST_ADD"
	xa_do "[$MODE] round 5: SIGKILL n1, no change, restart n1" \
		round 5 n1 "$NO_E1 | $GHOST_ADD"
	xv_check "[$MODE] the streams ran through all the rounds" still_running "$P1" "$P2"
	sleep 1
	xa_ping_stop "$P1"
	xa_ping_stop "$P2"
	xv_check "[$MODE] a1 -> a2: 100/s ping through 5 rounds of SIGKILL and restart, none lost" \
		xa_ping_lossless a1 10.0.1.11
	xv_check "[$MODE] a4 -> a1 (routed): 100/s ping through the same rounds, none lost" \
		xa_ping_lossless a4 10.0.1.10
	xa_ping_lossless a1 10.0.1.11 | head -n 1 | sed 's/^/     /'
	xa_ping_lossless a4 10.0.1.10 | head -n 1 | sed 's/^/     /'

	xv_check "[$MODE] maps equal the desired state on n1 after the rounds" xa_maps_match n1
	xv_check "[$MODE] maps equal the desired state on n2 after the rounds" xa_maps_match n2
	xv_check "[$MODE] e1 is gone from n1's endpoints (removed in round 4)" \
		sh -c "! nsenter --net=/run/netns/${XV_NODE_NS[n1]} $XA_CTL --json \
			--pin-dir ${XV_NODE_PIN[n1]} map dump xvpc_endpoints |
			jq -e '.entries[] | select(.ip == \"10.0.1.20\")'"
	xv_check "[$MODE] /healthz on n1 is 200 ok" healthz n1
	xv_check "[$MODE] /healthz on n2 is 200 ok" healthz n2
	xv_check "[$MODE] /metrics on n1: drop counters by reason, map occupancy and capacity" \
		check_metrics n1
	xv_check "[$MODE] /metrics on n2: drop counters by reason, map occupancy and capacity" \
		check_metrics n2
	xv_check "[$MODE] no agent logged an error" \
		sh -c "! grep -h ' error xvpc-agent: ' $XV_TMP/agent-n1.log $XV_TMP/agent-n2.log"
	[ "${XV_VERBOSE:-0}" = 1 ] && cat "$XV_TMP"/agent-n*.log
	return 0
}

xv_init
for mode in $MODES; do
	run_mode "$mode" || xv_check "[$mode] topology and desired state set up" false
	xv_reset
done
xv_summary
