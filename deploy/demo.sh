#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# make demo: two nodes, two tenants with the same CIDRs, a few VMs, all in
# network namespaces on this machine; the xvpc datapath set up by the node
# agent from a state file. Shows pings within and across subnets, tenant
# isolation, the pinned maps and the counters, then tears everything down
# (also on Ctrl-C). Takes well under a minute; touches no real interface.
#
#              underlay bridge (192.168.250.0/24, MTU 1500)
#          +----------------------------------------------+
#        node n1 (.1)                                 node n2 (.2)
#   blue-web   10.0.1.10  (blue)                blue-app 10.0.1.11 (blue)
#   red-db     10.0.2.10  (red)                 blue-db  10.0.2.10 (blue)
#                                               red-web  10.0.1.10 (red)
#
#   blue (VPC 1): 10.0.1.0/24 VNI 101, 10.0.2.0/24 VNI 102
#   red  (VPC 2): 10.0.1.0/24 VNI 201, 10.0.2.0/24 VNI 202
#
# DEMO_MODE=xdp runs the underlay program in XDP instead of tc.
set -u
cd "$(dirname "$0")/.." || exit 1
. selftests/e2e/lib.sh

MODE=${DEMO_MODE:-tc}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() {
	printf '$ %s\n' "$*"
	"$@" 2>&1 | sed 's/^/  /'
}
# vm_ping VM DST WHAT: ping from a VM and say what it shows.
vm_ping() {
	printf '%-9s -> %-10s %-42s ' "$1" "$2" "($3)"
	local out
	out=$(xv_in "$1" ping -n -q -c 3 -i 0.2 -W 1 "$2" 2>&1)
	printf '%s\n' "$(printf '%s\n' "$out" | grep -o '[0-9]* received, [0-9.]*% packet loss' || echo 'no output')"
}
in_node() {
	local n=$1
	shift
	nsenter --net="/run/netns/${XV_NODE_NS[$n]}" "$@"
}

if [ ! -x "$XV_AGENT" ]; then
	echo "demo: $XV_AGENT is missing; run 'make all' first" >&2
	exit 1
fi

xv_init
step "Topology: 2 nodes on an underlay bridge, VPCs blue and red with the same CIDRs (run $XV_RUN)"
xv_underlay &&
	xv_node n1 $XV_UL_NET.1 &&
	xv_node n2 $XV_UL_NET.2 &&
	xv_node_neighs || exit 1
xv_vpc 1 blue
xv_vpc 2 red
xv_subnet 1 10.0.1.0/24 101 10.0.1.1
xv_subnet 1 10.0.2.0/24 102 10.0.2.1
xv_subnet 2 10.0.1.0/24 201 10.0.1.1
xv_subnet 2 10.0.2.0/24 202 10.0.2.1
xv_vm blue-web n1 1 10.0.1.10 &&
	xv_vm blue-app n2 1 10.0.1.11 &&
	xv_vm blue-db n2 1 10.0.2.10 &&
	xv_vm red-web n2 2 10.0.1.10 &&
	xv_vm red-db n1 2 10.0.2.10 || exit 1
for vm in "${XV_VMS[@]}"; do
	printf '  %-9s vpc %s  %-10s on %s  mac %s  gw %s\n' "$vm" \
		"${XV_VM_VPC[$vm]}" "${XV_VM_IP[$vm]}" "${XV_VM_NODE[$vm]}" \
		"${XV_VM_MAC[$vm]}" "${XV_VM_GW[$vm]}"
done

step "Start the datapath: xvpc-agent --once on each node ($MODE underlay mode)"
xv_state n1 "$XV_TMP/state-n1.json"
echo "  desired state of n1 ($XV_TMP/state-n1.json):"
sed 's/^/    /' "$XV_TMP/state-n1.json"
for n in n1 n2; do
	echo "  $n: $XV_AGENT --once --node-name $n --underlay ul0 --node-ip ${XV_NODE_IP[$n]} --pin-dir /sys/fs/bpf/xvpc-e2e-$$-$n ..."
	xv_agent "$n" "$MODE" || exit 1
done
in_node n1 tc filter show dev h-blue-web ingress | sed 's/^/  n1 h-blue-web ingress: /'
for vm in "${XV_VMS[@]}"; do
	xv_whoami_start "$vm"
done

step "Traffic within a VPC (every packet through BPF: ARP answered locally, VXLAN to the other node)"
vm_ping blue-web 10.0.1.11 "blue, same subnet, n1 -> n2"
vm_ping blue-web 10.0.2.10 "blue, routed 10.0.1/24 -> 10.0.2/24, n1 -> n2"
vm_ping red-web 10.0.2.10 "red, routed, n2 -> n1"
vm_ping blue-db 10.0.1.11 "blue, routed, same node n2"
echo "  a TCP service in each VM answers its name:"
for pair in "blue-web 10.0.2.10" "red-web 10.0.2.10" "blue-app 10.0.1.10" "red-db 10.0.1.10"; do
	read -r from ip <<<"$pair"
	printf '    %-9s -> %-10s answered by %s\n' "$from" "$ip" "$(xv_whoami "$from" "$ip" || echo nobody)"
done

step "Isolation: the same addresses in red are unreachable from blue"
before=$(xv_rx red-db)
vm_ping blue-web 10.0.2.10 "reaches blue-db; red-db has the same IP"
printf '  red-db received %s packets meanwhile\n' $(($(xv_rx red-db) - before))
vm_ping blue-web 10.0.1.20 "no such VM in blue: dropped by BPF"

step "ARP never left the node: the gateway and peers were answered by BPF"
show xv_in blue-web ip neigh show dev eth0

step "Pinned maps and counters on n1"
if [ -x bin/xvpcctl ] && bin/xvpcctl --help 2>&1 | grep -q endpoint; then
	show in_node n1 bin/xvpcctl --pin-dir "${XV_NODE_PIN[n1]}" endpoint list
fi
show bpftool map dump pinned "${XV_NODE_PIN[n1]}/xvpc_endpoints" | head -n 16
echo "  ..."
if [ -x bin/xvpcctl ] && bin/xvpcctl --help 2>&1 | grep -q stats; then
	show in_node n1 bin/xvpcctl --pin-dir "${XV_NODE_PIN[n1]}" stats
else
	show bpftool map dump pinned "${XV_NODE_PIN[n1]}/xvpc_stats" | head -n 30
fi

step "Tear down"
xv_teardown
echo "  namespaces left of this run: $(ip netns list | grep -c "^xv$XV_RUN-")"
echo "done"
