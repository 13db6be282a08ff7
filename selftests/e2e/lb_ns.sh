#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# End-to-end: north-south load balancer (docs/loadbalancer.md,
# "North-south"). A client on the "internet" reaches the public VIP
# 203.0.113.10:80 through LB node n1 or n2; the backends are three VMs of
# VPC 1 serving HTTP on 8080, one per node. Every node runs the agent
# (daemon, state file) with the public service in its state, so every node
# can act as LB and as a backend's node.
#
#                 underlay bridge br0 (192.168.250.0/24)
#        p-n1 |            p-n2 |            p-n3 |          p-inet |
#      ul0 .1 |          ul0 .2 |          ul0 .3 |     eth0 .200   |
#     node n1 (LB)     node n2 (LB)      node n3          "internet" client
#     w1 10.0.1.11     w2 10.0.1.12      w3 10.0.1.13     route 203.0.113.10
#                                                         via .1 (or .2)
#   VPC 1: 10.0.1.0/24 VNI 101, gateway .1
#   public service 203.0.113.10:80/tcp -> w1, w2, w3 :8080
#
# Checks: every request from the internet client is answered by a backend;
# each backend logs the client's own address; a capture on the LB node's
# bridge port shows the requests but no reply (replies go from the
# backend's node straight to the client); the same flow (same client port)
# sent via n1 and then via n2 reaches the same backend; a long-lived TCP
# connection (HTTP keep-alive) survives a SIGKILL and restart of the LB
# node's agent, and then a move of the route to the other LB node.
#
# Once with the underlay in tc, once in XDP (XVPC_E2E_MODES, default
# "tc xdp"): the LB node's path and the decapsulation are each mode's own.
#
# Prints PASS/FAIL per check and "N passed, M failed"; exit status non-zero
# on failure; teardown (daemons, --uninstall, pins, namespaces) always runs.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
. selftests/e2e/agent_lib.sh

MODES=${XVPC_E2E_MODES:-tc xdp} # underlay attach modes to run
VIP=203.0.113.10
CLIENT=$XV_UL_NET.200
PY=/usr/bin/python3
PORTS=$(seq 40001 40012) # client ports of the flows sent via n1 and n2
INET_NS=
declare -A VIA_N1=()

# The members ("nodes": F_NS packets are accepted from members only, once
# the datapath checks it) and the public service, in every node's state.
PUBLIC='.nodes = ["192.168.250.1", "192.168.250.2", "192.168.250.3"] |
	.services = [{ "vpc": 1, "vip": "203.0.113.10", "port": 80,
	"protocol": "tcp", "public": true,
	"backends": [ { "ip": "10.0.1.11", "port": 8080 },
		      { "ip": "10.0.1.12", "port": 8080 },
		      { "ip": "10.0.1.13", "port": 8080 } ] }]'

# The backend: answers its name, one log line per request with the peer's
# address and port. HTTP/1.1: keep-alive. HTTP/1.0: no length, the server
# closes first and the client only after it, so the client's port is free
# again at once (no TIME_WAIT on the client) for the same flow via n2.
backend_py() {
	cat >"$XV_TMP/backend.py" <<'EOF'
import http.server, socketserver, sys
name, logf = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = (name + "\n").encode()
        self.send_response(200)
        if self.request_version == "HTTP/1.1":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, fmt, *args):
        with open(logf, "a") as f:
            f.write("%s:%d %s\n" % (self.client_address + (fmt % args,)))
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("0.0.0.0", 8080), H).serve_forever()
EOF
}

# The long-lived client: one TCP connection, a request every 50 ms for
# DURATION seconds; fails if the connection breaks or the backend changes.
client_py() {
	cat >"$XV_TMP/longlived.py" <<'EOF'
import http.client, sys, time
vip, port, dur = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
c = http.client.HTTPConnection(vip, 80, timeout=3,
                               source_address=("0.0.0.0", port))
c.auto_open = 0  # a broken connection fails, it is never reopened
c.connect()
names, n, end = set(), 0, time.time() + dur
while time.time() < end:
    c.request("GET", "/")
    r = c.getresponse()
    names.add(r.read().decode().strip())
    n += 1
    time.sleep(0.05)
print("requests %d on one connection, backends %s" % (n, sorted(names)))
sys.exit(0 if n > 0 and len(names) == 1 else 1)
EOF
}

# The "internet": a namespace on the underlay bridge, outside the cluster,
# MTU 1400 so that its packets still fit the underlay once encapsulated.
inet_setup() {
	INET_NS=xv$XV_RUN-inet
	xv_ns "$INET_NS" || return 1
	XV_NODE_NS[inet]=$INET_NS # for teardown and xv_in; not an xvpc node
	xv_must ip -n "$XV_UL_NS" link add p-inet mtu 1400 type veth peer \
		name eth0 netns "$INET_NS" || return 1
	xv_must ip -n "$XV_UL_NS" link set p-inet master br0 up || return 1
	xv_must ip -n "$INET_NS" link set eth0 mtu 1400 up || return 1
	xv_must ip -n "$INET_NS" addr add "$CLIENT/24" dev eth0 || return 1
	# Complete checksums, as from a wire (a veth leaves them partial,
	# which an XDP receiver cannot complete).
	xv_must ip netns exec "$INET_NS" ethtool -K eth0 tx off || return 1
	xv_must ip netns exec "$INET_NS" sysctl -qw net.ipv4.tcp_tw_reuse=1 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0 ||
		return 1
	via n1
}

# via NODE: the client's route to the VIP goes through NODE.
via() {
	ip -n "$INET_NS" route replace "$VIP/32" via "${XV_NODE_IP[$1]}" dev eth0
}

# get PORT: the name of the backend answering a request from client port
# PORT (a new connection, closed by the server after the answer).
get() {
	ip netns exec "$INET_NS" curl -sf --http1.0 --max-time 3 \
		--local-port "$1" "http://$VIP/" 2>/dev/null
}

# get_retry PORT: get, tolerating a refused reuse of a port in TIME_WAIT.
get_retry() {
	local _ out
	for _ in 1 2 3 4 5; do
		out=$(get "$1") && { echo "$out"; return 0; }
		sleep 0.3
	done
	return 1
}

all_via_n1() {
	local p name seen=""
	via n1
	for p in $PORTS; do
		name=$(get_retry "$p") || { echo "no answer for client port $p"; return 1; }
		case $name in w1 | w2 | w3) ;; *) echo "port $p: answer '$name'"; return 1 ;; esac
		VIA_N1[$p]=$name
		seen="$seen $name"
	done
	echo "backends:$seen"
	[ "$(echo "$seen" | tr ' ' '\n' | sort -u | grep -c .)" -ge 2 ] ||
		{ echo "12 flows all went to one backend"; return 1; }
}

logs_client() {
	local vm n
	[ ${#VIA_N1[@]} -gt 0 ] || { echo "no flow was answered"; return 1; }
	for vm in w1 w2 w3; do
		grep -qw "$vm" <<<"${VIA_N1[*]}" || continue
		n=$(grep -c "^$CLIENT:" "$XV_TMP/log-$vm" 2>/dev/null)
		[ "${n:-0}" -gt 0 ] || { echo "$vm logged no request from $CLIENT:"; head -n 3 "$XV_TMP/log-$vm"; return 1; }
		echo "$vm: $n requests from $CLIENT"
	done
	! grep -hv "^$CLIENT:" "$XV_TMP"/log-w* | grep -q . ||
		{ echo "requests from another address:"; grep -hv "^$CLIENT:" "$XV_TMP"/log-w* | head -n 3; return 1; }
}

# capture_lb: requests to a backend on n3 via n1, captured on n1's bridge
# port: the requests pass there, the replies do not (they leave n3 for the
# client directly); on n3's port the replies are seen.
capture_lb() {
	local p port="" pids a b req rep rep3
	for p in $PORTS; do
		[ "${VIA_N1[$p]}" = w3 ] && { port=$p; break; }
	done
	[ -n "$port" ] || { echo "no flow went to w3"; return 1; }
	via n1
	xv_bg ul "$XV_TMP/cap-n1" timeout 8 tcpdump -l -n -i p-n1 -c 100 \
		"tcp and host $VIP"
	a=$XV_BG_PID
	xv_bg ul "$XV_TMP/cap-n3" timeout 8 tcpdump -l -n -i p-n3 -c 100 \
		"tcp and src host $VIP"
	b=$XV_BG_PID
	sleep 1.5 # tcpdump attached
	for p in 1 2 3; do
		get_retry "$port" >/dev/null || { echo "no answer"; return 1; }
	done
	sleep 0.5
	pids="$a $b"
	for p in $pids; do xv_stop "$p"; done
	req=$(grep -c "> $VIP.80:" "$XV_TMP/cap-n1")
	rep=$(grep -c "IP $VIP.80 >" "$XV_TMP/cap-n1")
	rep3=$(grep -c "IP $VIP.80 >" "$XV_TMP/cap-n3")
	echo "on p-n1: $req packets to the VIP, $rep from it; on p-n3: $rep3 from the VIP" |
		tee "$XV_TMP/capture"
	[ "$req" -gt 0 ] && [ "$rep" -eq 0 ] && [ "$rep3" -gt 0 ]
}

same_via_n2() {
	local p name bad=0
	via n2
	for p in $PORTS; do
		name=$(get_retry "$p") || { echo "no answer for port $p via n2 (${VIA_N1[$p]} via n1)"; bad=1; continue; }
		[ "$name" = "${VIA_N1[$p]}" ] ||
			{ echo "port $p: ${VIA_N1[$p]} via n1, $name via n2"; bad=1; }
	done
	via n1
	return $bad
}

# The long-lived connection: started via n1; n1's agent is SIGKILLed and
# restarted (pinned maps adopted); then the route moves to n2.
longlived() {
	local pid rc
	via n1
	xv_bg inet "$XV_TMP/longlived" "$PY" "$XV_TMP/longlived.py" "$VIP" \
		41000 10
	pid=$XV_BG_PID
	sleep 1.5
	xa_kill n1
	sleep 1
	xa_start n1 "$MODE" || { echo "agent on n1 did not come back"; return 1; }
	sleep 1.5
	via n2
	wait "$pid"
	rc=$?
	xa_forget_pgid "$pid"
	cat "$XV_TMP/longlived"
	return $rc
}

run() {
	local vm node
	MODE=$1
	XA_PID=()
	XA_REV=()
	VIA_N1=()
	echo "== underlay mode: $MODE"
	xv_underlay && xv_node n1 $XV_UL_NET.1 && xv_node n2 $XV_UL_NET.2 &&
		xv_node n3 $XV_UL_NET.3 && xv_node_neighs || return 1
	if [ "$MODE" = xdp ]; then
		# XDP_TX out of a node's veth needs NAPI on the bridge's side.
		for node in n1 n2 n3; do
			xv_q ip netns exec "$XV_UL_NS" ethtool -K "p-$node" gro on
		done
	fi
	xv_vpc 1 blue
	xv_subnet 1 10.0.1.0/24 101 10.0.1.1
	xv_vm w1 n1 1 10.0.1.11 && xv_vm w2 n2 1 10.0.1.12 &&
		xv_vm w3 n3 1 10.0.1.13 || return 1
	inet_setup || return 1
	backend_py
	client_py
	for vm in w1 w2 w3; do
		xv_bg "$vm" "$XV_TMP/http-$vm" "$PY" "$XV_TMP/backend.py" "$vm" \
			"$XV_TMP/log-$vm"
	done
	for node in n1 n2 n3; do
		xa_state "$node" 1 "$PUBLIC" || return 1
	done
	if xa_start n1 "$MODE" && xa_start n2 "$MODE" && xa_start n3 "$MODE"; then
		xv_check "[$MODE] agents on n1, n2, n3 start with the public service" true
	else
		xv_check "[$MODE] agents on n1, n2, n3 start with the public service" false
		return 0
	fi
	for vm in w1 w2 w3; do
		xv_wait 5 xv_listen_ready "$vm" 8080 ||
			{ xv_check "[$MODE] backend $vm listens" false; return 0; }
	done
	xa_do "[$MODE] 12 flows from the internet client via LB node n1 are answered by the backends" \
		all_via_n1
	xv_check "[$MODE] each backend logs the internet client's own address ($CLIENT)" \
		logs_client
	xv_check "[$MODE] capture on n1's bridge port: requests, no replies (they leave the backend's node n3 directly)" \
		capture_lb
	sed 's/^/     /' "$XV_TMP/capture" 2>/dev/null
	xv_check "[$MODE] the same 12 flows (same client ports) via LB node n2 reach the same backends" \
		same_via_n2
	xa_do "[$MODE] a long-lived TCP connection survives SIGKILL and restart of n1's agent, then a move to n2" \
		longlived
	sed 's/^/     /' "$XV_TMP/longlived" 2>/dev/null
	xv_check "[$MODE] no agent logged an error" \
		sh -c "! grep -h ' error xvpc-agent: ' $XV_TMP/agent-n*.log"
	[ "${XV_VERBOSE:-0}" = 1 ] && cat "$XV_TMP"/agent-n*.log
	return 0
}

# The internet namespace is no node or VM: removed here, then the rest.
ns_teardown() {
	local rc=$?
	[ -n "$INET_NS" ] && xv_delete_ns "$INET_NS"
	INET_NS=
	return $rc
}

xv_init
trap 'ns_teardown; xv_teardown' EXIT
trap 'ns_teardown; xv_teardown; exit 130' INT
trap 'ns_teardown; xv_teardown; exit 143' TERM
for mode in $MODES; do
	run "$mode" || xv_check "[$mode] topology and desired state set up" false
	ns_teardown
	xv_reset
done
xv_summary
