#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# End-to-end: `xvpcctl trace` against a live datapath. One node with three
# VMs, one remote endpoint on a second node; every trace runs the pinned
# program against the pinned maps and must name the verdict, the drop reason
# and the rewrites a user would expect.
#
#                  underlay bridge (192.168.250.0/24)
#            ul0 .1 ---------------------------- ul0 .2
#          node n1                              node n2
#   a1 10.0.1.10   a3 10.0.2.10              a2 10.0.1.11
#   VPC 1: 10.0.1.0/24 VNI 101, 10.0.2.0/24 VNI 102, gateways .1
set -u
cd "$(dirname "$0")/../.."
. selftests/e2e/lib.sh

CTL=$XV_ROOT/bin/xvpcctl

# trace NODE ARGS...: xvpcctl --json trace in the node's network namespace.
trace() {
	local node=$1
	shift
	nsenter --net="/run/netns/${XV_NODE_NS[$node]}" "$CTL" --json \
		--pin-dir "${XV_NODE_PIN[$node]}" trace "$@"
}

# expect NODE JQ-FILTER ARGS...: the filter must hold on the trace's JSON.
expect() {
	local node=$1 filter=$2 out
	shift 2
	out=$(trace "$node" "$@") || { echo "trace failed: $out"; return 1; }
	echo "$out" | jq -e "$filter" >/dev/null || {
		echo "$out" | head -60
		echo "expected: $filter"
		return 1
	}
}

xv_init
xv_underlay && xv_node n1 $XV_UL_NET.1 && xv_node n2 $XV_UL_NET.2 &&
	xv_node_neighs || exit 1
xv_vpc 1 blue
xv_subnet 1 10.0.1.0/24 101 10.0.1.1
xv_subnet 1 10.0.2.0/24 102 10.0.2.1
xv_vm a1 n1 1 10.0.1.10 && xv_vm a3 n1 1 10.0.2.10 &&
	xv_vm a2 n2 1 10.0.1.11 && xv_agent_all tc || exit 1

xv_check "routed packet: redirect, TTL 64 -> 63, gateway MAC as source" \
	expect n1 '.verdict == "redirect" and .output[0].ttl == 63 and
		.output[0].eth_src == .lookups[1].result.gateway_mac and
		.output[0].ip_dst == "10.0.2.10"' --from h-a1 --to 10.0.2.10
xv_check "routed lookups: binding, subnet, endpoint" \
	expect n1 '[.lookups[].map] == ["xvpc_ifaces", "xvpc_subnets",
		"xvpc_endpoints"] and .lookups[2].result.local' \
	--from h-a1 --to 10.0.2.10
xv_check "remote peer: VXLAN to n2 with VNI 101, inner TTL unchanged" \
	expect n1 '.verdict == "redirect" and .output[0].vni == 101 and
		.output[0].ip_dst == "192.168.250.2" and .output[1].ttl == 64' \
	--from h-a1 --to 10.0.1.11 --proto udp --dport 53
xv_check "ARP for the gateway is answered" \
	expect n1 '.verdict == "redirect" and .output[0].arp_op == 2 and
		.output[0].arp_sender_ip == "10.0.1.1" and
		.output[0].arp_sender_mac == .output[0].eth_src' \
	--from h-a1 --to 10.0.1.1 --arp
xv_check "drop reason: drop_ttl" \
	expect n1 '.verdict == "drop" and .reason == "drop_ttl"' \
	--from h-a1 --to 10.0.2.10 --ttl 1
xv_check "drop reason: drop_no_endpoint (a miss)" \
	expect n1 '.reason == "drop_no_endpoint"' --from h-a1 --to 10.0.1.99
xv_check "drop reason: drop_no_subnet" \
	expect n1 '.reason == "drop_no_subnet"' --from h-a1 --to 8.8.8.8
xv_check "drop reason: drop_bcast" \
	expect n1 '.reason == "drop_bcast"' --from h-a1 --to 10.0.1.255 \
	--dst-mac ff:ff:ff:ff:ff:ff
xv_check "drop reason: drop_arp_unknown" \
	expect n1 '.reason == "drop_arp_unknown"' --from h-a1 --to 10.0.1.77 \
	--arp
xv_check "drop reason: drop_dst_mac" \
	expect n1 '.reason == "drop_dst_mac"' --from h-a1 --to 10.0.1.11 \
	--dst-mac 02:00:00:00:00:99
# a1's frame with a3's source address: 02:00:00:01:01:0a, 10.0.2.10.
xv_check "drop reason: drop_spoof_ip (raw frame)" \
	expect n1 '.reason == "drop_spoof_ip"' --from h-a1 --raw \
	"02787670630102000001010a080045000014000000004001000a0a00020a0a00010b"
xv_check "underlay: VXLAN for a1 is decapsulated" \
	expect n1 '.verdict == "redirect" and .output[0].ip_dst == "10.0.1.10"
		and (.output | length) == 1' \
	--underlay --vni 101 --src 10.0.1.11 --to 10.0.1.10 --peer 192.168.250.2
xv_check "underlay drop reason: drop_vni_unknown" \
	expect n1 '.reason == "drop_vni_unknown"' \
	--underlay --vni 999 --src 10.0.1.11 --to 10.0.1.10
xv_check "underlay drop reason: drop_not_local" \
	expect n1 '.reason == "drop_not_local"' \
	--underlay --vni 101 --src 10.0.1.10 --to 10.0.1.11
xv_check "human output names the verdict and reason" \
	sh -c "nsenter --net=/run/netns/${XV_NODE_NS[n1]} $CTL \
		--pin-dir ${XV_NODE_PIN[n1]} trace --from h-a1 --to 10.0.2.10 \
		--ttl 1 | grep -q 'verdict: drop, reason drop_ttl'"
xv_check "bad input: unknown interface is a clear error" \
	sh -c "! $CTL --pin-dir ${XV_NODE_PIN[n1]} trace --from nosuchif \
		--to 10.0.0.1 2>&1 | grep -q \"no interface 'nosuchif'\" && exit 1 || exit 0"
xv_summary
