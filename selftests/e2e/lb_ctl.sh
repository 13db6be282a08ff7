#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# End-to-end: a load balancer made with `xvpcctl lb` reaches the datapath
# through the controller and the agents (services in the node state, the
# agent's LB sync), and its updates and deletion follow.
#
#                 underlay bridge br0 (192.168.250.0/24)
#          +----------------------------+
#        ul0 .1                       ul0 .2
#      node n1                      node n2
#   c1 (client), b1 (backend)     b2 (backend)
#        \                            /
#         mg0 ... management links ... mg0 --- xvpc-controller (root ns,
#                                               embedded store)
#
#   One tenant, VPC 10.0.0.0/16, subnet 10.0.1.0/24; VMs get their
#   addresses from the API. b1 and b2 run a "whoami" TCP service on port
#   7000; the load balancer is 10.0.100.1:7000/tcp over both (health check
#   none: the agent cannot probe VPC endpoints, docs/loadbalancer.md).
#
# Checks: c1's new flows to the VIP reach both backends; b2 reported down
# by its own node (POST /v1/nodes/n2/health, by hand: what n2's agent
# sends) leaves n1's table (`xvpcctl map dump lb_services` lists b1 alone,
# `xvpcctl lb health` shows b2 down) and new flows reach only b1; reported
# healthy again, b2 is back; another node's report of b2 is refused; with
# b1's weight set to 0 (`lb backends --weight`), new flows reach only b2;
# after `lb delete`, the VIP answers no more. Bounded waits; teardown
# always runs (trap). Prints PASS/FAIL lines and a summary; non-zero exit
# on failure.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
. selftests/e2e/agent_lib.sh
. selftests/e2e/ctl_lib.sh

ADMIN=e2e-lb-admin-$$
VIP=10.0.100.1

xc_init

die() {
	xv_err "$*"
	for f in "$XV_TMP"/ctrl.log "$XV_TMP"/agent-n1.log "$XV_TMP"/agent-n2.log; do
		[ -f "$f" ] && tail -n 5 "$f" | sed "s|^|    $(basename "$f"): |" >&2
	done
	exit 1
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The backends that answered COUNT new flows from c1 to the VIP, sorted,
# one per line (a flow that got no answer prints "none").
answers() {
	local _ out
	for _ in $(seq "$1"); do
		out=$(xv_in c1 timeout 3 nc -w 2 "$VIP" 7000 </dev/null 2>/dev/null)
		echo "${out:-none}"
	done | sort -u
}

both_answer() { [ "$(answers 24 | tr '\n' ' ')" = "b1 b2 " ]; }
only_b1() { [ "$(answers 12 | tr '\n' ' ')" = "b1 " ]; }

# report NODE VM HEALTHY: NODE's report of VM's health (port 7000).
report() {
	curl -s -o "$XV_TMP/report.json" -w '%{http_code}' --max-time 5 \
		-X POST -H "Authorization: Bearer $ADMIN" \
		-H "Content-Type: application/json" \
		-d "{\"backends\":[{\"loadbalancer\":$LB,\"address\":\"${XV_VM_IP[$2]}\",\"port\":7000,\"healthy\":$3}]}" \
		"$XC_API/v1/nodes/$1/health"
}
report_ok() { [ "$(report "$@")" = 200 ]; }
report_refused() { [ "$(report "$@")" = 403 ]; }

# table_backends NODE: the backend addresses of the VIP's table in NODE's
# xvpc_lb_services (`xvpcctl map dump lb_services`), sorted.
table_backends() {
	xa_ctl "$1" map dump lb_services |
		jq -r '.entries[0].table[] | select(.entries > 0) | .ip' | sort | tr '\n' ' '
}
n1_table_is() { [ "$(table_backends n1)" = "$1" ]; }
health_is() {
	xc_ctl "$TOK" lb health "$LB" |
		jq -e --arg ip "${XV_VM_IP[$1]}" --argjson h "$2" \
			'.[] | select(.ip == $ip) | .healthy == $h' >/dev/null
}
only_b2() { [ "$(answers 12 | tr '\n' ' ')" = "b2 " ]; }
none_answers() { [ "$(answers 3 | tr '\n' ' ')" = "none " ]; }

{ xv_underlay && xv_node n1 "$XV_UL_NET.1" && xv_node n2 "$XV_UL_NET.2" &&
	xv_node_neighs && xc_mgmt_all; } || die "topology"
XC_API=http://$XC_ADDR:$(free_port)
xc_controller_start "$XV_TMP/ctrl.log" "$ADMIN" --listen "${XC_API#http://}" \
	--data-dir "$XV_TMP/ctrl" --log-level warn || die "controller"

{ xc_ctl "$ADMIN" node create n1 --ip "$XV_UL_NET.1" >/dev/null &&
	xc_ctl "$ADMIN" node create n2 --ip "$XV_UL_NET.2" >/dev/null; } ||
	die "nodes"
TOK=$(xc_ctl "$ADMIN" tenant create lbt | jq -er .token) || die "tenant"
VPC=$(xc_ctl "$TOK" vpc create v --cidr 10.0.0.0/16 | jq -er .id) || die "vpc"
xv_vpc "$VPC" v
xc_subnet "$TOK" "$VPC" 10.0.1.0/24 || die "subnet"
SUB=$XC_ID
{ xc_vm "$TOK" "$SUB" c1 n1 && xc_vm "$TOK" "$SUB" b1 n1 &&
	xc_vm "$TOK" "$SUB" b2 n2; } || die "VMs"
{ xc_agent_start n1 tc "$XC_API" "$ADMIN" &&
	xc_agent_start n2 tc "$XC_API" "$ADMIN"; } || die "agents"
xv_whoami_start b1
xv_whoami_start b2
B2_PID=$XV_BG_PID

xv_check "overlay: c1 reaches b2" xv_wait 10 xv_expect_whoami c1 "${XV_VM_IP[b2]}" b2
LB=$(xc_ctl "$TOK" lb create --vpc "$VPC" --vip "$VIP" --port 7000 \
	--backend "${XV_VM_IP[b1]}" --backend "${XV_VM_IP[b2]}" --name web |
	jq -er .id) || die "lb create"
xv_check "lb create: new flows to the VIP reach b1 and b2" xv_wait 15 both_answer
xv_check "n1's table holds b1 and b2" xv_wait 10 n1_table_is \
	"$(printf '%s\n' "${XV_VM_IP[b1]}" "${XV_VM_IP[b2]}" | sort | tr '\n' ' ')"
xv_check "n1 may not report b2 (a port of n2)" report_refused n1 b2 false
T0=$(date +%s%N)
xv_check "n2 reports b2 down" report_ok n2 b2 false
xv_check "... n1's table holds b1 alone" xv_wait 10 n1_table_is "${XV_VM_IP[b1]} "
# A measurement, not a check: from the report's request to the table seen
# changed (bounded below by the 0.1 s polling of xv_wait).
xv_log "     report -> n1's table changed: $((($(date +%s%N) - T0) / 1000000)) ms"
xv_check "... lb health shows b2 down" health_is b2 false
xv_check "... new flows reach only b1" xv_wait 15 only_b1
xv_check "n2 reports b2 healthy" report_ok n2 b2 true
xv_check "... new flows reach b1 and b2 again" xv_wait 15 both_answer
xv_check "... lb health shows b2 up" health_is b2 true
# The whole path: n2's agent probes b2 through its interface and reports;
# n1 (which does not probe b2) follows.
n1_has_b2() { table_backends n1 | grep -qw "${XV_VM_IP[b2]}"; }
n1_lacks_b2() { ! n1_has_b2; }
xv_check "lb health --health tcp --interval 500 --fall 2 --rise 2" \
	xc_ctl "$TOK" lb health "$LB" --health tcp --interval 500 --fall 2 --rise 2
xv_check "... n1's table keeps b1 and b2" xv_wait 10 both_answer
T0=$(date +%s%N)
xv_stop "$B2_PID"
xv_check "b2's server stopped: n1's table loses b2 (n2 probed and reported)" \
	xv_wait 20 n1_lacks_b2
xv_log "     b2 stopped -> n1's table without it: $((($(date +%s%N) - T0) / 1000000)) ms"
xv_check "... lb health shows b2 down" health_is b2 false
xv_check "... new flows reach only b1" xv_wait 15 only_b1
xv_whoami_start b2
xv_check "b2's server back: n1's table has b2 again" xv_wait 20 n1_has_b2
xv_check "... lb health shows b2 up" health_is b2 true
xv_check "lb health --health none" xc_ctl "$TOK" lb health "$LB" --health none
xv_check "lb backends --weight b1=0" \
	xc_ctl "$TOK" lb backends "$LB" --weight "${XV_VM_IP[b1]}=0"
xv_check "... new flows reach only b2" xv_wait 15 only_b2
xv_check "lb delete" xc_ctl "$TOK" lb delete "$LB"
xv_check "... and the VIP answers no more" xv_wait 15 none_answers
no_services() {
	xc_node_state n1 "$ADMIN" "$XV_TMP/n1-state.json" &&
		jq -e '.services == []' "$XV_TMP/n1-state.json"
}
xv_check "the node state has no services left" no_services

xv_summary
