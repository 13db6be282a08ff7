#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# make demo: the controller drives the datapath. One xvpc-controller (its
# embedded store), two nodes with an xvpc-agent each in --controller mode,
# two tenants whose VPCs use the same CIDRs; VPCs, subnets and ports made
# through xvpcctl; the VMs are network namespaces plugged in with the MAC
# and IP the API gave their ports. Shows pings within and across subnets,
# tenant isolation, a new port reaching the datapath, a load balancer's
# VIP spreading connections, xvpcctl's views of
# the API and of a node's datapath, then tears everything down (also on
# Ctrl-C). Takes well under a minute; touches no real interface.
#
#   root namespace: xvpc-controller on 169.254.M.1:8470 (embedded store)
#            | management veths (169.254.M.0/24, link-local)
#        node n1 (.250.1)                             node n2 (.250.2)
#          xvpc-agent --controller                      xvpc-agent --controller
#   blue-web   10.0.1.2  (blue)                   blue-app 10.0.1.3 (blue)
#   red-db     10.0.2.2  (red)                    blue-db  10.0.2.2 (blue)
#                                                 red-web  10.0.1.2 (red)
#        +------------ underlay bridge (192.168.250.0/24) ------------+
#
#   tenant blue, VPC 10.0.0.0/16: subnets 10.0.1.0/24, 10.0.2.0/24
#   tenant red,  VPC 10.0.0.0/16: subnets 10.0.1.0/24, 10.0.2.0/24
#   (addresses, MACs and VNIs as the API allocates them)
#
# DEMO_MODE=xdp runs the underlay program in XDP instead of tc.
set -u
cd "$(dirname "$0")/.." || exit 1
. selftests/e2e/lib.sh
. selftests/e2e/agent_lib.sh
. selftests/e2e/ctl_lib.sh

MODE=${DEMO_MODE:-tc}
CTL=$XV_ROOT/bin/xvpcctl

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() {
	printf '$ %s\n' "$*"
	"$@" 2>&1 | sed 's/^/  /'
}
# api TOKEN-NAME ARGS...: show an xvpcctl call against the controller.
api() {
	local tok=$1
	shift
	printf '$ xvpcctl %s   # token of %s\n' "$*" "$tok"
	XC_HUMAN=1 xc_ctl "${TOKEN[$tok]}" "$@" 2>&1 | sed 's/^/  /'
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
die() {
	echo "demo: $*" >&2
	exit 1
}

for b in "$XV_AGENT" "$XC_CTRL" "$CTL"; do
	[ -x "$b" ] || die "$b is missing; run 'make all' first"
done
command -v jq >/dev/null || die "jq is missing (deploy/deps.sh installs it)"

xc_init
declare -A TOKEN VPC SUB
TOKEN[admin]=demo-admin-$XV_RUN-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

step "Topology: 2 nodes on an underlay bridge, a management link from each to the controller (run $XV_RUN)"
xv_underlay &&
	xv_node n1 $XV_UL_NET.1 &&
	xv_node n2 $XV_UL_NET.2 &&
	xv_node_neighs && xc_mgmt_all || exit 1
XC_API=http://$XC_ADDR:8470
echo "  nodes n1 ${XV_NODE_IP[n1]}, n2 ${XV_NODE_IP[n2]}; controller at $XC_API"

step "Start the controller (embedded store in $XV_TMP/store)"
echo "  xvpc-controller --listen $XC_ADDR:8470 --data-dir $XV_TMP/store (admin token from XVPC_ADMIN_TOKEN)"
xc_controller_start "$XV_TMP/controller.log" "${TOKEN[admin]}" \
	--listen "$XC_ADDR:8470" --data-dir "$XV_TMP/store" || exit 1
sed 's/^/  | /' "$XV_TMP/controller.log"

step "Start an agent on each node: xvpc-agent --controller $XC_API ($MODE underlay mode)"
for n in n1 n2; do
	echo "  $n: xvpc-agent --node-name $n --underlay ul0 --node-ip ${XV_NODE_IP[$n]} --controller $XC_API --pin-dir ${XV_NODE_PIN[$n]:-/sys/fs/bpf/xvpc-e2e-$$-$n}"
	xc_agent_start "$n" "$MODE" "$XC_API" "${TOKEN[admin]}" || exit 1
done
grep -h -e 'registered\|snapshot from\|connected to' "$XV_TMP"/agent-n*.log |
	sed 's/^/  | /'
echo "  the agents registered their nodes:"
api admin node list

step "Tenants, VPCs with the same CIDR, subnets (xvpcctl, admin then tenant tokens)"
for t in blue red; do
	out=$(xc_ctl "${TOKEN[admin]}" tenant create "$t") || die "tenant $t: $out"
	TOKEN[$t]=$(jq -r .token <<<"$out")
	echo "$ xvpcctl tenant create $t  -> id $(jq -r .id <<<"$out"), token ${TOKEN[$t]:0:8}..."
	out=$(xc_ctl "${TOKEN[$t]}" vpc create "$t-vpc" --cidr 10.0.0.0/16) ||
		die "vpc of $t: $out"
	VPC[$t]=$(jq -r .id <<<"$out")
	for s in 1 2; do
		xc_subnet "${TOKEN[$t]}" "${VPC[$t]}" "10.0.$s.0/24" "$t-$s" || exit 1
		SUB[$t$s]=$XC_ID
	done
done
api blue vpc list
api red vpc list
api blue subnet list
api red subnet list

step "Ports through the API; each VM plugged in with its port's MAC and IP"
xc_vm "${TOKEN[blue]}" "${SUB[blue1]}" blue-web n1 &&
	xc_vm "${TOKEN[blue]}" "${SUB[blue1]}" blue-app n2 &&
	xc_vm "${TOKEN[blue]}" "${SUB[blue2]}" blue-db n2 &&
	xc_vm "${TOKEN[red]}" "${SUB[red1]}" red-web n2 &&
	xc_vm "${TOKEN[red]}" "${SUB[red2]}" red-db n1 || exit 1
api blue port list
api red port list
echo "$ xvpcctl --json port show $(jq -r .id <<<"$XC_PORT")   # the last one, red-db"
xc_ctl "${TOKEN[red]}" port show "$(jq -r .id <<<"$XC_PORT")" | sed 's/^/  /'
for n in n1 n2; do
	xv_wait 10 xc_maps_match_api "$n" "${TOKEN[admin]}" ||
		die "the agent on $n did not apply the API's state within 10 s"
done
echo "  both agents hold what the API says (maps compared with GET /v1/nodes/NODE/state)"
for vm in "${XV_VMS[@]}"; do
	xv_whoami_start "$vm"
done

step "Traffic within a VPC (every packet through BPF: ARP answered locally, VXLAN to the other node)"
ip_of() { echo "${XV_VM_IP[$1]}"; }
vm_ping blue-web "$(ip_of blue-app)" "blue, same subnet, n1 -> n2"
vm_ping blue-web "$(ip_of blue-db)" "blue, routed 10.0.1/24 -> 10.0.2/24, n1 -> n2"
vm_ping red-web "$(ip_of red-db)" "red, routed, n2 -> n1"
vm_ping blue-db "$(ip_of blue-app)" "blue, routed, same node n2"
echo "  a TCP service in each VM answers its name:"
for pair in "blue-web blue-db" "red-web red-db" "blue-app blue-web" "red-db red-web"; do
	read -r from to <<<"$pair"
	printf '    %-9s -> %-10s answered by %s\n' "$from" "$(ip_of "$to")" \
		"$(xv_whoami "$from" "$(ip_of "$to")" || echo nobody)"
done

step "Isolation: blue and red use the same addresses; neither reaches the other"
before=$(xv_rx red-db)
vm_ping blue-web "$(ip_of blue-db)" "reaches blue-db; red-db has the same IP"
printf '  red-db received %s packets meanwhile\n' $(($(xv_rx red-db) - before))
vm_ping blue-web 10.0.1.200 "no such port in blue: dropped by BPF"

step "A new port reaches the datapath"
t0=$(xc_now_ms)
xc_vm "${TOKEN[blue]}" "${SUB[blue2]}" blue-new n1 || exit 1
made=$(($(xc_now_ms) - t0))
if xc_wait_ping 10 blue-app "$(ip_of blue-new)" >/dev/null; then
	echo "  xvpcctl port create, then the VM plugged in with its MAC and IP: ${made} ms"
	ta=$(xc_applied_ms n1 "$t0") &&
		echo "  n1's agent applied the new port $((ta - t0)) ms after the API call began"
	echo "  first ping from blue-app (n2) answered $(($(xc_now_ms) - t0)) ms after the API call began"
else
	echo "  blue-app could not reach blue-new within 10 s"
fi
xc_ctl "${TOKEN[blue]}" port delete "$XC_ID" >/dev/null &&
	xv_wait 10 xc_maps_match_api n2 "${TOKEN[admin]}" &&
	vm_ping blue-app "$(ip_of blue-new)" "port deleted through the API"

step "A load balancer: VIP 10.0.100.1:7000 over blue-app and blue-db (Maglev in BPF on the client's node)"
api blue lb create --vpc "${VPC[blue]}" --vip 10.0.100.1 --port 7000 \
	--backend "$(ip_of blue-app)" --backend "$(ip_of blue-db)" --name whoami
xv_wait 10 xv_whoami blue-web 10.0.100.1 1 || echo "  (the VIP did not answer within 10 s)"
declare -A hits=()
for i in $(seq 12); do
	who=$(xv_whoami blue-web 10.0.100.1 1 || echo nobody)
	hits[$who]=$((${hits[$who]:-0} + 1))
done
for who in "${!hits[@]}"; do
	printf '  blue-web -> 10.0.100.1:7000 answered by %-9s %2d of 12 connections\n' "$who" "${hits[$who]}"
done

step "ARP never left the node: the gateway and peers were answered by BPF"
show xv_in blue-web ip neigh show dev eth0

step "The datapath on n1: maps, endpoints, counters (xvpcctl on the node)"
show in_node n1 "$CTL" --pin-dir "${XV_NODE_PIN[n1]}" map dump xvpc_endpoints
show in_node n1 "$CTL" --pin-dir "${XV_NODE_PIN[n1]}" stats
echo "  agent n1, from its metrics:"
xa_curl n1 /metrics | grep -E '^xvpc_(state_revision|reconcile_runs_total|map_entries\{map="xvpc_endpoints")' |
	sed 's/^/    /'

step "Tear down"
xc_teardown
echo "  namespaces left of this run: $(ip netns list | grep -c "^xv$XV_RUN-")"
echo "done"
