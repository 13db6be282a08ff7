#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# End-to-end: no stale state. An endpoint's host-side interface deleted
# behind the running agent's back (ip link del) disappears from every map
# (binding, counters, endpoint entry) through netlink, with periodic resync
# off; a new interface of that name is bound again; an interface deleted
# while the agent is down is cleaned up when it starts. Then
# `xvpc-agent --uninstall` removes every tc filter and program it
# installed and every pin.
#
#                underlay bridge br0 (192.168.250.0/24)
#          ul0 .1 --------------------------------- ul0 .2
#        node n1 (agent daemon)                    node n2 (agent daemon)
#   a1 10.0.1.10 (h-a1)   a2 10.0.1.11 (h-a2)      b1 10.0.1.20 (h-b1)
#   VPC 1: 10.0.1.0/24 VNI 101, gateway .1
#
# Prints PASS/FAIL per check and "N passed, M failed"; exit status non-zero
# on failure; teardown (daemons, --uninstall, pins, namespaces) always runs.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
. selftests/e2e/agent_lib.sh

# count NODE MAP JQ-CONDITION: how many entries of the map satisfy the
# condition; fails if the map cannot be dumped or the condition is wrong.
count() {
	local out
	out=$(xa_ctl "$1" map dump "$2") || { echo "dump of $2 failed: $out" >&2; return 1; }
	jq -e "[.entries[] | select($3)] | length" <<<"$out"
}

# has NODE MAP JQ-CONDITION: some entry satisfies it.
has() {
	local n
	n=$(count "$@") && [ "$n" -gt 0 ]
}

# gone NODE IFINDEX IP: no binding, no counters, no endpoint entry left.
gone() {
	[ -n "$2" ] || { echo "no ifindex given"; return 1; }
	[ "$(count "$1" xvpc_ifaces ".ifindex == $2")" = 0 ] &&
		[ "$(count "$1" xvpc_ep_stats ".ifindex == $2")" = 0 ] &&
		[ "$(count "$1" xvpc_endpoints ".ip == \"$3\"")" = 0 ]
}

# wait_gone NODE IFINDEX IP: gone within 10 s; else what is left.
wait_gone() {
	xv_wait 10 gone "$@" && return 0
	echo "after 10 s, ifindex $2 / $3 still in the maps of $1:"
	for m in ifaces ep_stats endpoints; do
		xa_ctl "$1" map dump "xvpc_$m" | jq -c '.entries[]'
	done
	tail -n 10 "$XV_TMP/agent-$1.log"
	return 1
}

# bound NODE IFNAME: the interface is bound under its current ifindex and
# its endpoint is local on it.
bound() {
	local ifx
	ifx=$(xa_ifindex "$1" "$2") || return 1
	has "$1" xvpc_ifaces ".ifindex == $ifx" &&
		has "$1" xvpc_endpoints ".ifindex == $ifx and (.flags | index(\"local\"))"
}

# replug VM: a new host-side veth of the same name into the VM (what a VM
# restart does), addresses as before.
replug() {
	local vm=$1 node=${XV_VM_NODE[$1]}
	xv_must ip -n "${XV_NODE_NS[$node]}" link add "h-$vm" type veth \
		peer name eth0 netns "${XV_VM_NS[$vm]}" &&
		xv_must ip -n "${XV_NODE_NS[$node]}" link set "h-$vm" up &&
		xv_must xv_in "$vm" ip link set eth0 address "${XV_VM_MAC[$vm]}" \
			mtu $XV_VM_MTU up &&
		xv_must xv_in "$vm" ip addr add "${XV_VM_IP[$vm]}/${XV_VM_PLEN[$vm]}" \
			dev eth0 &&
		xv_must xv_in "$vm" ip route add default via "${XV_VM_GW[$vm]}"
}

# without_a2 NODE: the node's desired state minus a2, what the maps must
# hold while a2's interface is missing.
without_a2() {
	jq 'del(.endpoints[] | select(.ip == "10.0.1.11"))' \
		"$(xa_state_file "$1")" >"$XV_TMP/no-a2-$1.json"
	xa_maps_match "$1" "$XV_TMP/no-a2-$1.json"
}

metric_is() {
	local v
	v=$(xa_metric "$1" "$2") || { echo "no metric $2"; return 1; }
	[ "${v%.*}" = "$3" ] || { echo "$2 = $v, expected $3"; return 1; }
}

# Our programs as bpftool sees them in n1: "ifname kind id" lines.
our_progs() {
	xa_innode n1 bpftool -j net show | jq -r '.[] |
		(.tc[]? | "\(.devname) tc \(.id) \(.name)"),
		(.xdp[]? | "\(.devname) xdp \(.id) \(.name // "-")")'
}

ids_gone() {
	local id
	for id in "$@"; do
		bpftool prog show id "$id" >/dev/null 2>&1 && return 1
	done
	return 0
}

check_uninstalled() {
	local dev out bad=0 pin=$1
	shift
	for dev in ul0 h-a1; do
		out=$(xa_innode n1 tc filter show dev "$dev" ingress 2>&1)
		[ -z "$out" ] || { echo "tc filters left on $dev: $out"; bad=1; }
	done
	out=$(our_progs)
	[ -z "$out" ] || { echo "bpftool net still shows: $out"; bad=1; }
	[ ! -e "$pin" ] || { echo "$pin still exists: $(ls "$pin")"; bad=1; }
	# The kernel frees a program once its last reference is gone.
	xv_wait 5 ids_gone "$@" ||
		{ echo "programs still loaded: $*"; bad=1; }
	return $bad
}

xv_init
xv_underlay && xv_node n1 $XV_UL_NET.1 && xv_node n2 $XV_UL_NET.2 &&
	xv_node_neighs || exit 1
xv_vpc 1 blue
xv_subnet 1 10.0.1.0/24 101 10.0.1.1
xv_vm a1 n1 1 10.0.1.10 && xv_vm a2 n1 1 10.0.1.11 &&
	xv_vm b1 n2 1 10.0.1.20 || exit 1
xa_state n1 1 && xa_state n2 1 || exit 1
# Resync off: only netlink can notice the interface going away.
if xa_start n1 tc --resync-interval 0 && xa_start n2 tc --resync-interval 0; then
	xv_check "agent daemons on n1 and n2 start and report healthy" true
else
	xv_check "agent daemons on n1 and n2 start and report healthy" false
	xv_summary
	exit 1
fi
xv_check "ping a2 -> a1 (same node)" xv_ping a2 10.0.1.10
xv_check "ping a2 -> b1 (n1 -> n2)" xv_ping a2 10.0.1.20
IFX=$(xa_ifindex n1 h-a2)
xv_check "h-a2 (ifindex $IFX) is bound and has counters" \
	eval "bound n1 h-a2 && has n1 xvpc_ep_stats '.ifindex == $IFX and .rx_packets > 0'"

echo "== ip link del h-a2 while the agent runs"
xv_q ip -n "${XV_NODE_NS[n1]}" link del h-a2
xv_check "within 10 s: h-a2 gone from xvpc_ifaces and xvpc_ep_stats, a2 from xvpc_endpoints" \
	wait_gone n1 "$IFX" 10.0.1.11
xv_check "n1's maps hold the desired state without a2, nothing else changed" \
	without_a2 n1
xv_check "metrics: xvpc_ifaces_gone_total 1, xvpc_endpoints_pending 1" \
	eval "metric_is n1 xvpc_ifaces_gone_total 1 && metric_is n1 xvpc_endpoints_pending 1"
xv_check "ping a1 -> b1 still works" xv_ping a1 10.0.1.20
xv_check "the agent on n1 is still running" xa_alive n1

echo "== a new h-a2 appears (the VM restarted)"
replug a2 || xv_check "re-created h-a2" false
xv_check "within 10 s: the new h-a2 is bound" xv_wait 10 bound n1 h-a2
xv_check "n1's maps equal the whole desired state again" xa_maps_match n1
xv_check "ping a2 -> b1 over the new interface" xv_ping a2 10.0.1.20
xv_check "metrics: xvpc_endpoints_pending 0" metric_is n1 xvpc_endpoints_pending 0

echo "== ip link del h-a2 while the agent is down (SIGKILL), then start it"
IFX=$(xa_ifindex n1 h-a2)
xa_kill n1
xv_q ip -n "${XV_NODE_NS[n1]}" link del h-a2
xa_do "agent on n1 restarts and reports healthy" xa_start n1 tc --resync-interval 0
xv_check "after the start: h-a2 (ifindex $IFX) gone from every map" \
	wait_gone n1 "$IFX" 10.0.1.11
xv_check "n1's maps hold the desired state without a2" without_a2 n1
xv_check "ping a1 -> b1 still works" xv_ping a1 10.0.1.20

echo "== xvpc-agent --uninstall on n1"
PIN=${XV_NODE_PIN[n1]}
IDS=$(our_progs | awk '{ print $3 }' | sort -u | paste -sd' ')
xv_check "before: our programs on ul0 and h-a1 (bpftool net: ids $IDS)" \
	eval "our_progs | grep -q '^ul0 tc' && our_progs | grep -q '^h-a1 tc'"
xa_stop n1
# shellcheck disable=SC2086
xa_do "xvpc-agent --uninstall exits 0" xa_innode n1 "$XV_AGENT" --uninstall \
	--pin-dir "$PIN" --underlay ul0
# shellcheck disable=SC2086
xv_check "after: no tc filter on ul0 or h-a1, nothing in bpftool net, no pin dir, programs freed" \
	check_uninstalled "$PIN" $IDS
[ -e "$PIN" ] || unset "XV_NODE_PIN[n1]"
# Not a check: the agent creates the clsact qdiscs its filters hang on and
# --uninstall does not remove them (they may hold other filters).
for dev in ul0 h-a1; do
	xa_innode n1 tc qdisc show dev "$dev" | grep -q clsact &&
		echo "note: an (empty) clsact qdisc is left on $dev"
done
xv_check "n2's datapath is untouched: its maps equal its desired state" \
	xa_maps_match n2
xv_summary
