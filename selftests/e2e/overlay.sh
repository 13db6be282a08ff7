#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# End-to-end: the overlay between VMs on three nodes, two tenants with the
# same CIDRs, every packet through our BPF datapath (set up by the agent from
# a state file), in each underlay attach mode (tc, then XDP if the agent
# supports it).
#
#                         underlay bridge br0 (192.168.250.0/24)
#          +--------------------+--------------------+
#        ul0 .1               ul0 .2               ul0 .3
#      node n1              node n2              node n3
#   a1 10.0.1.10 (A)     a2 10.0.1.11 (A)     a3 10.0.2.10 (A)
#   a4 10.0.2.11 (A)     b3 10.0.2.10 (B)     b2 10.0.1.10 (B)
#   b1 10.0.1.11 (B)     b4 10.0.2.20 (B)
#
#   VPC A (id 1): 10.0.1.0/24 VNI 101, 10.0.2.0/24 VNI 102, gateways .1
#   VPC B (id 2): 10.0.1.0/24 VNI 201, 10.0.2.0/24 VNI 202, gateways .1
#
# Every address of VPC A except 10.0.2.11 also exists in VPC B, often on
# the same node as its VPC A twin; 10.0.2.20 exists only in VPC B. Each VM
# runs a "whoami" TCP service (port 7000) answering its own name, so a test
# sees *which* VM answered. A capture on the underlay checks that only
# VXLAN (UDP 4789) crosses it and no ARP at all.
#
# Prints one PASS/FAIL line per check and "N passed, M failed" at the end;
# exit status is non-zero on failure. Teardown always runs (trap).
# Environment: XVPC_E2E_MODES (default "tc xdp"), XV_VERBOSE=1.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh

MODES=${XVPC_E2E_MODES:-tc xdp}

topology() {
	xv_underlay || return 1
	xv_node n1 $XV_UL_NET.1 || return 1
	xv_node n2 $XV_UL_NET.2 || return 1
	xv_node n3 $XV_UL_NET.3 || return 1
	xv_node_neighs || return 1
	xv_vpc 1 blue
	xv_vpc 2 red
	xv_subnet 1 10.0.1.0/24 101 10.0.1.1
	xv_subnet 1 10.0.2.0/24 102 10.0.2.1
	xv_subnet 2 10.0.1.0/24 201 10.0.1.1
	xv_subnet 2 10.0.2.0/24 202 10.0.2.1
	xv_vm a1 n1 1 10.0.1.10 &&
		xv_vm a2 n2 1 10.0.1.11 &&
		xv_vm a3 n3 1 10.0.2.10 &&
		xv_vm a4 n1 1 10.0.2.11 &&
		xv_vm b1 n1 2 10.0.1.11 &&
		xv_vm b2 n3 2 10.0.1.10 &&
		xv_vm b3 n2 2 10.0.2.10 &&
		xv_vm b4 n2 2 10.0.2.20
}

capture_start() {
	CAP=$XV_TMP/underlay-$1.pcap
	xv_bg ul "$XV_TMP/tcpdump-$1.log" tcpdump -i any -nn -U -s 128 -w "$CAP"
	CAP_PID=$XV_BG_PID
	xv_wait 5 grep -q 'listening on' "$XV_TMP/tcpdump-$1.log"
}

# Only VXLAN on the underlay, at least some of it, and not a single ARP.
check_capture() {
	local all other arp
	all=$(tcpdump -r "$CAP" -nn 2>/dev/null | wc -l)
	other=$(tcpdump -r "$CAP" -nn 'not (udp port 4789)' 2>/dev/null | wc -l)
	arp=$(tcpdump -r "$CAP" -nn arp 2>/dev/null | wc -l)
	echo "captured $all frames: $other not VXLAN, $arp ARP"
	tcpdump -r "$CAP" -nn 'not (udp port 4789)' 2>/dev/null | head -n 5
	[ "$all" -gt 0 ] && [ "$other" -eq 0 ] && [ "$arp" -eq 0 ]
}

# rx packet counts of VPC B's VMs, one line.
b_rx() {
	local vm
	for vm in b1 b2 b3 b4; do
		printf '%s=%s ' "$vm" "$(xv_rx $vm)"
	done
}

# While only VPC A talks (to addresses that VPC B also has), no VM of VPC B
# may receive a single packet.
check_b_silent() {
	[ "$1" = "$2" ] || { echo "VPC B VMs received packets: before: $1, after: $2"; return 1; }
}

check_dump() {
	local pin=${XV_NODE_PIN[n1]} out
	out=$(bpftool map dump pinned "$pin/xvpc_endpoints" 2>&1) ||
		{ echo "$out"; return 1; }
	printf '%s\n' "$out" | grep -q '"vpc_id"' &&
		printf '%s\n' "$out" | grep -q '"mac"' ||
		{ printf '%s\n' "$out" | head -n 20; return 1; }
}

# Counters: the datapath counted encapsulations, decapsulations, routing and
# ARP replies on n1 (read with bpftool; values are per CPU).
check_counters() {
	bpftool map dump pinned "${XV_NODE_PIN[n1]}/xvpc_stats" >/dev/null
}

no_whoami() {
	local got
	got=$(xv_whoami "$1" "$2" 2) || return 0
	echo "$1 -> $2 answered '$got'"
	return 1
}

# drops NODE REASON: packets dropped for REASON (e.g. spoof_ip) on NODE.
drops() {
	nsenter --net="/run/netns/${XV_NODE_NS[$1]}" bin/xvpcctl --json \
		--pin-dir "${XV_NODE_PIN[$1]}" stats |
		jq -e --arg r "$2" '.drops[] | select(.reason == $r) | .packets'
}

# A VM that sends from an address that is not its own gets no reply, and
# the node counts the drop.
check_spoof_ip() {
	local before after rc=0
	before=$(drops n1 spoof_ip) || { echo "cannot read counters on n1"; return 1; }
	xv_in a1 ip addr add 10.0.1.99/32 dev eth0
	if xv_in a1 ping -n -q -c 2 -i 0.1 -W 1 -I 10.0.1.99 10.0.1.11 >/dev/null 2>&1; then
		echo "a1 got a reply from 10.0.1.11 with source 10.0.1.99"
		rc=1
	fi
	xv_in a1 ip addr del 10.0.1.99/32 dev eth0
	after=$(drops n1 spoof_ip)
	echo "drop spoof_ip on n1: $before -> $after"
	[ "$rc" = 0 ] && [ "$after" -ge $((before + 2)) ]
}

iperf_check() {
	local from=$1 to=$2 srv out
	xv_bg "$to" "$XV_TMP/iperf3-s.log" iperf3 -s -1
	srv=$XV_BG_PID
	xv_wait 5 xv_listen_ready "$to" 5201 || { xv_stop $srv; echo "no iperf3 server"; return 1; }
	out=$(xv_in "$from" timeout 15 iperf3 -c "${XV_VM_IP[$to]}" -t 1 -f m 2>&1)
	local rc=$?
	xv_stop $srv
	printf '%s\n' "$out" | grep receiver
	[ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q receiver
}

run_mode() {
	local mode=$1 vm before after
	echo "== underlay mode: $mode"
	if ! topology; then
		xv_check "[$mode] topology set up" false
		return
	fi
	capture_start "$mode" || echo "warning: tcpdump not ready"
	if ! xv_agent_all "$mode"; then
		xv_check "[$mode] agent attached the datapath on n1, n2, n3" false
		return
	fi
	xv_check "[$mode] agent attached the datapath on n1, n2, n3" true
	for vm in "${XV_VMS[@]}"; do
		xv_whoami_start "$vm"
	done

	# Same subnet.
	xv_check "[$mode] ping a1 -> a2 10.0.1.11: same subnet, n1 -> n2 (VPC A)" xv_ping a1 10.0.1.11
	xv_check "[$mode] ping b2 -> b1 10.0.1.11: same subnet, n3 -> n1 (VPC B)" xv_ping b2 10.0.1.11
	xv_check "[$mode] ping b3 -> b4 10.0.2.20: same subnet, same node n2 (VPC B)" xv_ping b3 10.0.2.20
	# Routed by the distributed router.
	xv_check "[$mode] ping a1 -> a3 10.0.2.10: routed, n1 -> n3 (VPC A)" xv_ping a1 10.0.2.10
	xv_check "[$mode] ping a1 -> a4 10.0.2.11: routed, same node n1 (VPC A)" xv_ping a1 10.0.2.11
	xv_check "[$mode] ping b1 -> b3 10.0.2.10: routed, n1 -> n2 (VPC B)" xv_ping b1 10.0.2.10
	xv_check "[$mode] ping b4 -> b2 10.0.1.10: routed, n2 -> n3 (VPC B)" xv_ping b4 10.0.1.10
	# TCP.
	xv_check "[$mode] tcp 2 MiB a2 -> a1, same subnet n2 -> n1, sha256 equal" xv_tcp_copy a2 a1 2048
	xv_check "[$mode] tcp 2 MiB a3 -> a1, routed n3 -> n1, sha256 equal" xv_tcp_copy a3 a1 2048
	xv_check "[$mode] tcp 2 MiB a4 -> a1, routed same node, sha256 equal" xv_tcp_copy a4 a1 2048
	xv_check "[$mode] tcp 2 MiB b1 -> b3, routed n1 -> n2 (VPC B), sha256 equal" xv_tcp_copy b1 b3 2048
	xv_check "[$mode] iperf3 -t 1 a1 -> a3, routed n1 -> n3" iperf_check a1 a3

	# Isolation: VPC A talks to addresses VPC B also has; B hears nothing.
	before=$(b_rx)
	xv_check "[$mode] a1 -> 10.0.1.11 answers a2 (VPC A, n2), not b1 (VPC B, same node as a1)" \
		xv_expect_whoami a1 10.0.1.11 a2
	xv_check "[$mode] a3 -> 10.0.1.10 answers a1 (VPC A, n1), not b2 (VPC B, same node as a3)" \
		xv_expect_whoami a3 10.0.1.10 a1
	xv_check "[$mode] a2 -> 10.0.2.10 answers a3 (VPC A, n3), not b3 (VPC B, same node as a2)" \
		xv_expect_whoami a2 10.0.2.10 a3
	xv_check "[$mode] a1 -> 10.0.2.20 (exists only in VPC B): no reply" xv_no_ping a1 10.0.2.20
	xv_check "[$mode] a4 -> 10.0.2.20 whoami: no answer" no_whoami a4 10.0.2.20
	xv_check "[$mode] ping a2 -> a1 10.0.1.10 works while b2 holds the same address" xv_ping a2 10.0.1.10
	after=$(b_rx)
	xv_check "[$mode] VPC B VMs received nothing while VPC A talked to their addresses" \
		check_b_silent "$before" "$after"
	xv_check "[$mode] b2 -> 10.0.1.11 answers b1 (VPC B), not a2" xv_expect_whoami b2 10.0.1.11 b1

	xv_check "[$mode] ping a1 -> a3 with 1422 B payload and DF: a full 1450 B packet, 1500 B on the underlay" \
		xv_in a1 ping -n -q -c 2 -i 0.1 -W 1 -M "do" -s 1422 10.0.2.10
	if [ -x bin/xvpcctl ] && command -v jq >/dev/null; then
		xv_check "[$mode] a1 sending from 10.0.1.99 (not its address): no reply, spoof_ip drops counted" \
			check_spoof_ip
	fi
	xv_check "[$mode] bpftool map dump pinned .../xvpc_endpoints shows named fields" check_dump
	xv_check "[$mode] bpftool map dump pinned .../xvpc_stats works" check_counters
	xv_stop "$CAP_PID"
	xv_check "[$mode] underlay capture: only UDP 4789, no ARP" check_capture
	if [ "${XV_VERBOSE:-0}" = 1 ] && [ -x bin/xvpcctl ]; then
		nsenter --net="/run/netns/${XV_NODE_NS[n1]}" bin/xvpcctl \
			--pin-dir "${XV_NODE_PIN[n1]}" stats 2>&1 | sed 's/^/    n1| /'
	fi
}

xv_init
for mode in $MODES; do
	if [ "$mode" = xdp ] && ! xv_agent_supports underlay-mode; then
		echo "== underlay mode: xdp skipped (the agent has no --underlay-mode)"
		continue
	fi
	run_mode "$mode"
	xv_reset
done
xv_summary
