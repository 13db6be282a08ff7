#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# End-to-end: a public (north-south) load balancer made with
# `xvpcctl lb create --public` reaches, through the controller, every
# node: LB node n1 hosts no port of the VPC and still balances the
# internet client's flows (docs/loadbalancer.md, "North-south"; the
# distribution rules in docs/api.md, "Load balancers").
#
#                 underlay bridge br0 (192.168.250.0/24)
#        p-n1 |            p-n2 |            p-n3 |          p-inet |
#      ul0 .1 |          ul0 .2 |          ul0 .3 |     eth0 .200   |
#     node n1 (LB)     node n2           node n3          "internet" client
#     no VM            w2               w3               route 203.0.113.10
#                                                         via .1
#        \                 |                 /
#         mg0 ... management links ... mg0 --- xvpc-controller (root ns,
#                                              embedded store,
#                                              --public-prefix 203.0.113.0/24)
#
#   One tenant, VPC 10.0.0.0/16 in learn mode (while it has a public load
#   balancer, every node gets it as a push-mode VPC with all its endpoints:
#   an LB node must find the backend's node), subnet 10.0.1.0/24; w2 and w3
#   get their addresses from the API and serve HTTP on 8080 (answer: their
#   name; log: the peer's address). Public load balancer
#   203.0.113.10:80/tcp over w2:8080 and w3:8080.
#
# Checks: n1's state from the API holds the public service and the VPC's
# endpoints; 12 flows from the internet client via n1 are answered by w2
# and w3; the backends log the client's own address; after `lb delete`
# the VIP answers no more and n1's state has no VPC left. Agents in tc
# mode (lb_ns.sh covers XDP with state files). Bounded waits; teardown
# always runs (trap). Prints PASS/FAIL lines and a summary; non-zero exit
# on failure.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
. selftests/e2e/agent_lib.sh
. selftests/e2e/ctl_lib.sh

ADMIN=e2e-lbns-admin-$$
VIP=203.0.113.10
CLIENT=$XV_UL_NET.200
PY=/usr/bin/python3
PORTS=$(seq 40001 40012)
INET_NS=

die() {
	xv_err "$*"
	for f in "$XV_TMP"/ctrl.log "$XV_TMP"/agent-n*.log; do
		[ -f "$f" ] && tail -n 5 "$f" | sed "s|^|    $(basename "$f"): |" >&2
	done
	exit 1
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The backend: answers its name, logs the peer's address per request.
backend_py() {
	cat >"$XV_TMP/backend.py" <<'EOF'
import http.server, socketserver, sys
name, logf = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write((name + "\n").encode())
    def log_message(self, fmt, *args):
        with open(logf, "a") as f:
            f.write("%s:%d %s\n" % (self.client_address + (fmt % args,)))
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("0.0.0.0", 8080), H).serve_forever()
EOF
}

# The "internet": a namespace on the underlay bridge, outside the cluster
# (no node record), MTU 1400 so that its packets fit once encapsulated;
# its route to the VIP goes through n1.
inet_setup() {
	INET_NS=xv$XV_RUN-inet
	xv_ns "$INET_NS" || return 1
	XV_NODE_NS[inet]=$INET_NS # for xv_in/xv_bg; not an xvpc node
	xv_must ip -n "$XV_UL_NS" link add p-inet mtu 1400 type veth peer \
		name eth0 netns "$INET_NS" || return 1
	xv_must ip -n "$XV_UL_NS" link set p-inet master br0 up || return 1
	xv_must ip -n "$INET_NS" link set eth0 mtu 1400 up || return 1
	xv_must ip -n "$INET_NS" addr add "$CLIENT/24" dev eth0 || return 1
	xv_must ip netns exec "$INET_NS" sysctl -qw \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0 ||
		return 1
	xv_must ip -n "$INET_NS" route replace "$VIP/32" via "${XV_NODE_IP[n1]}" \
		dev eth0
}

ns_teardown() {
	local rc=$?
	[ -n "$INET_NS" ] && xv_delete_ns "$INET_NS"
	INET_NS=
	return $rc
}

# get PORT: the backend answering a new connection from client port PORT.
get() {
	ip netns exec "$INET_NS" curl -sf --http1.0 --max-time 3 \
		--local-port "$1" "http://$VIP/" 2>/dev/null
}

# n1_state_has_service: the API's state for n1 (no port of the VPC) holds
# the public service, the VPC and both backends' endpoints.
n1_state_has_service() {
	local f=$XV_TMP/n1-state.json
	xc_node_state n1 "$ADMIN" "$f" || { echo "GET state of n1 failed"; return 1; }
	jq -e --arg vip "$VIP" --arg w2 "${XV_VM_IP[w2]}" --arg w3 "${XV_VM_IP[w3]}" '
		(.services | length == 1) and .services[0].public == true and
		.services[0].vip == $vip and (.vpcs | length == 1) and
		.vpcs[0].mode == null and
		([.endpoints[].ip] | index($w2) != null and index($w3) != null)' \
		"$f" || { cat "$f"; return 1; }
}

# all_answered: 12 flows from the internet client via n1, each answered by
# w2 or w3, both seen.
all_answered() {
	local p name seen=""
	for p in $PORTS; do
		name=$(get "$p") || { echo "no answer for client port $p"; return 1; }
		case $name in w2 | w3) ;; *) echo "port $p: answer '$name'"; return 1 ;; esac
		seen="$seen $name"
	done
	echo "backends:$seen"
	[ "$(echo "$seen" | tr ' ' '\n' | sort -u | grep -c .)" = 2 ] ||
		{ echo "12 flows all went to one backend"; return 1; }
}

# first_answer: the service is applied (the agents poll the controller).
first_answer() { get 39999 >/dev/null; }

logs_client() {
	local vm n
	for vm in w2 w3; do
		n=$(grep -c "^$CLIENT:" "$XV_TMP/log-$vm" 2>/dev/null)
		[ "${n:-0}" -gt 0 ] || { echo "$vm logged no request from $CLIENT:"; head -n 3 "$XV_TMP/log-$vm"; return 1; }
		echo "$vm: $n requests from $CLIENT"
	done
	! grep -hv "^$CLIENT:" "$XV_TMP"/log-w* | grep -q . ||
		{ echo "requests from another address:"; grep -hv "^$CLIENT:" "$XV_TMP"/log-w* | head -n 3; return 1; }
}

no_answer() { ! get 39998 >/dev/null; }

n1_no_vpc() {
	xc_node_state n1 "$ADMIN" "$XV_TMP/n1-state.json" &&
		jq -e '.vpcs == [] and .services == []' "$XV_TMP/n1-state.json"
}

xc_init
trap 'ns_teardown; xc_teardown' EXIT
trap 'ns_teardown; xc_teardown; exit 130' INT
trap 'ns_teardown; xc_teardown; exit 143' TERM

{ xv_underlay && xv_node n1 "$XV_UL_NET.1" && xv_node n2 "$XV_UL_NET.2" &&
	xv_node n3 "$XV_UL_NET.3" && xv_node_neighs && xc_mgmt_all; } ||
	die "topology"
inet_setup || die "internet namespace"
XC_API=http://$XC_ADDR:$(free_port)
xc_controller_start "$XV_TMP/ctrl.log" "$ADMIN" --listen "${XC_API#http://}" \
	--data-dir "$XV_TMP/ctrl" --log-level warn \
	--public-prefix 203.0.113.0/24 || die "controller"
for n in n1 n2 n3; do
	xc_ctl "$ADMIN" node create "$n" --ip "${XV_NODE_IP[$n]}" >/dev/null ||
		die "node $n"
done
TOK=$(xc_ctl "$ADMIN" tenant create nst | jq -er .token) || die "tenant"
VPC=$(xc_ctl "$TOK" vpc create v --cidr 10.0.0.0/16 --mode learn |
	jq -er .id) || die "vpc"
xv_vpc "$VPC" v
xc_subnet "$TOK" "$VPC" 10.0.1.0/24 || die "subnet"
SUB=$XC_ID
{ xc_vm "$TOK" "$SUB" w2 n2 && xc_vm "$TOK" "$SUB" w3 n3; } || die "VMs"
backend_py
for vm in w2 w3; do
	xv_bg "$vm" "$XV_TMP/http-$vm" "$PY" "$XV_TMP/backend.py" "$vm" \
		"$XV_TMP/log-$vm"
done
for n in n1 n2 n3; do
	xc_agent_start "$n" tc "$XC_API" "$ADMIN" || die "agent on $n"
done
for vm in w2 w3; do
	xv_wait 5 xv_listen_ready "$vm" 8080 || die "backend $vm does not listen"
done

LB=$(xc_ctl "$TOK" lb create --public --vpc "$VPC" --vip "$VIP" --port 80 \
	--backend "${XV_VM_IP[w2]}:8080" --backend "${XV_VM_IP[w3]}:8080" \
	--name pub | jq -er .id) || die "lb create --public"
xv_check "the API's state for n1 (no port of the VPC) has the public service and the backends' endpoints" \
	n1_state_has_service
xv_check "the internet client gets an answer through n1 within 15 s" \
	xv_wait 15 first_answer
xv_check "12 flows from the internet client via n1 are answered by w2 and w3" \
	all_answered
xv_check "each backend logs the internet client's own address ($CLIENT)" \
	logs_client
xv_check "lb delete" xc_ctl "$TOK" lb delete "$LB"
xv_check "... the VIP answers no more" xv_wait 15 no_answer
xv_check "... and n1's state has no VPC and no service left" n1_no_vpc
xv_check "no agent logged an error" \
	sh -c "! grep -h ' error xvpc-agent: ' $XV_TMP/agent-n*.log"

xv_summary
