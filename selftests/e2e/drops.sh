#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# End-to-end: what a VM may not do, on real traffic. Each misbehaviour must
# get no answer and be counted under its named drop reason on the node.
#
#                  underlay bridge (192.168.250.0/24)
#            ul0 .1 ---------------------------- ul0 .2
#          node n1                              node n2
#   a1 10.0.1.10                             a2 10.0.1.11
#                                            a3 10.0.2.10
#   VPC 1: 10.0.1.0/24 VNI 101, 10.0.2.0/24 VNI 102, gateways .1
set -u
cd "$(dirname "$0")/../.."
. selftests/e2e/lib.sh

CTL=$XV_ROOT/bin/xvpcctl

# drops NODE REASON: the node's counter for one drop reason.
drops() {
	nsenter --net="/run/netns/${XV_NODE_NS[$1]}" "$CTL" --json \
		--pin-dir "${XV_NODE_PIN[$1]}" stats |
		jq -r --arg r "${2#drop_}" \
			'[.drops[] | select(.reason == $r) | .packets] | first // 0'
}

# counted NODE REASON BEFORE: the counter grew.
counted() {
	local now
	now=$(drops "$1" "$2")
	[ "$now" -gt "$3" ] || { echo "$2 on $1: $now, was $3"; return 1; }
}

xv_init
xv_underlay && xv_node n1 $XV_UL_NET.1 && xv_node n2 $XV_UL_NET.2 &&
	xv_node_neighs || exit 1
xv_vpc 1 blue
xv_subnet 1 10.0.1.0/24 101 10.0.1.1
xv_subnet 1 10.0.2.0/24 102 10.0.2.1
xv_vm a1 n1 1 10.0.1.10 && xv_vm a2 n2 1 10.0.1.11 &&
	xv_vm a3 n2 1 10.0.2.10 && xv_agent_all tc || exit 1
xv_check "baseline: a1 reaches a2 in its subnet" xv_ping a1 10.0.1.11
xv_check "baseline: a1 reaches a3 through the router" xv_ping a1 10.0.2.10

b=$(drops n1 drop_ttl)
xv_check "routed ping with TTL 1: no answer" \
	sh -c "! ip netns exec ${XV_VM_NS[a1]} ping -n -c 2 -i 0.2 -W 1 -t 1 10.0.2.10"
xv_check "  counted as drop_ttl on n1" counted n1 drop_ttl "$b"

b=$(drops n1 drop_too_big)
xv_q ip -n "${XV_VM_NS[a1]}" link set eth0 mtu 1500
xv_q ip -n "${XV_NODE_NS[n1]}" link set h-a1 mtu 1500
xv_check "1500-byte frame to another node: no answer" \
	sh -c "! ip netns exec ${XV_VM_NS[a1]} ping -n -c 2 -i 0.2 -W 1 -M do -s 1472 10.0.1.11"
xv_check "  counted as drop_too_big on n1" counted n1 drop_too_big "$b"
xv_check "  the same frame at MTU 1450 still passes" \
	ip netns exec "${XV_VM_NS[a1]}" ping -n -c 1 -W 1 -M do -s 1422 10.0.1.11
xv_q ip -n "${XV_VM_NS[a1]}" link set eth0 mtu $XV_VM_MTU
xv_q ip -n "${XV_NODE_NS[n1]}" link set h-a1 mtu $XV_VM_MTU

b=$(drops n1 drop_spoof_mac)
xv_q ip -n "${XV_VM_NS[a1]}" link set eth0 address 02:ee:ee:ee:ee:01
xv_check "a VM that changes its MAC gets no answer" \
	sh -c "! ip netns exec ${XV_VM_NS[a1]} ping -n -c 2 -i 0.2 -W 1 10.0.1.11"
xv_check "  counted as drop_spoof_mac on n1" counted n1 drop_spoof_mac "$b"
xv_q ip -n "${XV_VM_NS[a1]}" link set eth0 address "${XV_VM_MAC[a1]}"
xv_q ip -n "${XV_VM_NS[a1]}" neigh flush dev eth0

b=$(drops n1 drop_bcast)
xv_check "a broadcast from a VM reaches nobody" \
	sh -c "ip netns exec ${XV_VM_NS[a1]} ping -n -b -c 2 -i 0.2 -W 1 10.0.1.255 >/dev/null 2>&1; true"
xv_check "  counted as drop_bcast on n1" counted n1 drop_bcast "$b"

b=$(drops n1 drop_arp_unknown)
xv_check "ARP for an address nobody has gets no answer" \
	sh -c "! ip netns exec ${XV_VM_NS[a1]} ping -n -c 1 -W 1 10.0.1.99"
xv_check "  counted as drop_arp_unknown on n1" counted n1 drop_arp_unknown "$b"
xv_check "after all that, a1 still reaches a2" xv_ping a1 10.0.1.11
xv_summary
