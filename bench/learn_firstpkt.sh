#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# First-packet cost of learning mode on the real namespace topology (part
# of make bench-learn): one controller (embedded store), four nodes with
# agents, a learn-mode VPC with two gateway nodes. A VM on a plain node
# pings TARGETS fresh peers on the other plain node:
#   routed      peer in another subnet: the first echo goes through a
#               gateway (miss -> encap to the gateway -> forwarded), the
#               agent resolves the miss meanwhile;
#   same subnet peer in the VM's subnet: the VM's ARP request misses, the
#               agent resolves it and injects the ARP reply, then the echo
#               goes direct.
# For each peer: RTT of the first echo, then the median of 5 more; the
# extra = first - steady. Prints one JSON object on stdout (the last line):
# first_packet_extra_ms (median over peers, routed: the gateway path),
# first_packet_extra_same_subnet_ms, and the raw samples.
set -u
cd "$(dirname "$0")/.." || exit 1
. selftests/e2e/lib.sh
. selftests/e2e/agent_lib.sh
. selftests/e2e/ctl_lib.sh

TARGETS=${TARGETS:-8}
ADMIN=bench-learn-$$
die() {
	echo "learn_firstpkt: $*" >&2
	exit 1
}

# rtt VM IP [COUNT]: RTTs in ms of COUNT echoes 0.2 s apart, one a line.
rtt() {
	xv_in "$1" ping -n -c "${3:-1}" -i 0.2 -W 2 "$2" 2>/dev/null |
		sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p'
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR ? a[int((NR + 1) / 2)] : "null") }'; }

# measure VM IP: "first steady" in ms.
measure() {
	local first steady
	first=$(rtt "$1" "$2" 1)
	[ -n "$first" ] || return 1
	steady=$(rtt "$1" "$2" 5 | median)
	echo "$first $steady"
}

xc_init
xv_underlay && xv_node n1 $XV_UL_NET.1 && xv_node n2 $XV_UL_NET.2 &&
	xv_node n3 $XV_UL_NET.3 && xv_node n4 $XV_UL_NET.4 &&
	xv_node_neighs && xc_mgmt_all >&2 || die "topology"
XC_API=http://$XC_ADDR:$((20000 + $$ % 20000))
xc_controller_start "$XV_TMP/controller.log" "$ADMIN" \
	--listen "${XC_API#http://}" --data-dir "$XV_TMP/store" \
	--vpc-gateways 2 >&2 || die "controller"
for n in n1 n2 n3 n4; do
	xc_agent_start "$n" tc "$XC_API" "$ADMIN" >&2 || die "agent $n"
done
tok=$(xc_ctl "$ADMIN" tenant create bench | jq -er .token) || die "tenant"
vpc=$(xc_ctl "$tok" vpc create big --cidr 10.9.0.0/16 --mode learn |
	jq -er .id) || die "vpc"
xc_subnet "$tok" "$vpc" 10.9.1.0/24 s1 >&2 && s1=$XC_ID || die "s1"
xc_subnet "$tok" "$vpc" 10.9.2.0/24 s2 >&2 && s2=$XC_ID || die "s2"
xv_wait 10 eval '[ "$(xc_ctl "$tok" vpc show "$vpc" | jq ".gateways | length")" = 2 ]' ||
	die "no gateways"
mapfile -t gw < <(xc_ctl "$tok" vpc show "$vpc" | jq -r '.gateways[]')
plain=()
for n in n1 n2 n3 n4; do
	[[ " ${gw[*]} " == *" $n "* ]] || plain+=("$n")
done
x=${plain[0]} y=${plain[1]}
xc_vm "$tok" "$s1" src "$x" >&2 || die "vm src"
for i in $(seq "$TARGETS"); do
	xc_vm "$tok" "$s2" "r$i" "$y" >&2 && xc_vm "$tok" "$s1" "s$i" "$y" >&2 ||
		die "target vms"
done
for n in "$x" "$y"; do
	xv_wait 20 xc_maps_match_api "$n" "$ADMIN" || die "$n state"
done
# The gateway's ARP entry first, so the routed samples time the echo only.
rtt src "${XV_VM_GW[src]}" 1 >/dev/null

routed=() same=()
for i in $(seq "$TARGETS"); do
	r=$(measure src "${XV_VM_IP[r$i]}") || die "routed peer r$i unreachable"
	routed+=("$r")
	s=$(measure src "${XV_VM_IP[s$i]}") || die "peer s$i unreachable"
	same+=("$s")
done

extra() { printf '%s\n' "$@" | awk '{ printf "%.3f\n", $1 - $2 }' | median; }
samples() { printf '%s\n' "$@" | jq -Rsc 'split("\n") | map(select(length > 0) | split(" ") | map(tonumber))'; }
printf '%-28s %10s\n' "first packet" "extra ms" >&2
printf '%-28s %10s\n' "routed (gateway path)" "$(extra "${routed[@]}")" >&2
printf '%-28s %10s\n' "same subnet (ARP resolve)" "$(extra "${same[@]}")" >&2
jq -nc --argjson r "$(extra "${routed[@]}")" --argjson s "$(extra "${same[@]}")" \
	--argjson rs "$(samples "${routed[@]}")" --argjson ss "$(samples "${same[@]}")" \
	--arg gw "${gw[*]}" '{first_packet_extra_ms: $r,
	first_packet_extra_same_subnet_ms: $s,
	first_packet_samples_routed_ms: $rs, first_packet_samples_same_subnet_ms: $ss,
	first_packet_method: ("[first RTT, median of 5 later RTTs] per fresh peer; gateways " + $gw)}'
xc_teardown >/dev/null 2>&1
