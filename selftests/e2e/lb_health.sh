#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# End-to-end: health checks of load balancer backends that are VMs, by the
# agent of their node (docs/loadbalancer.md, "Health checks: who probes,
# and how"). Two nodes run xvpc-agent as daemons on state files (no
# controller). The service 10.0.100.10:80/tcp has three backend VMs on n2
# with an HTTP check (GET /healthz, every 500 ms, timeout 300 ms, fall 3,
# rise 2); c2, the client, is on n2 too, so n2's own probes decide its
# table. c1 on n1 shows the other side: n1 probes nothing (its backends are
# remote; their health reaches n1 only through the controller, absent
# here, so n1's table keeps all three).
#
#            underlay bridge br0 (192.168.250.0/24)
#       +-------------------------+-------------------------+
#     ul0 .1                    ul0 .2
#    node n1                   node n2   lo: 169.254.169.250 (probe address)
#   c1 10.0.1.21              b1 10.0.1.11  b2 10.0.1.12  b3 10.0.1.13
#                             c2 10.0.1.22
#
#   VPC 1: 10.0.1.0/24 VNI 101, gateway .1
#   service 10.0.100.10:80/tcp -> b1, b2, b3 :8080, health_check http
#
# Packet walk of a probe: n2's agent connects from 169.254.169.250, source
# port 60000-60999, bound to h-bN (permanent neighbour bN -> its MAC on
# h-bN); bN answers through its default route, i.e. to the gateway MAC; the
# endpoint program on h-bN passes that answer up n2's stack (probe_reply).
#
# Steps and checks:
#  1. both agents apply the service; n2's datapath counts probe_reply (the
#     probes are answered) and no backend goes down; c2 reaches all three;
#  2. security: a VM cannot open a connection to the probe address, even to
#     a port of the probe range where the node listens (drop_probe);
#  3. b2's HTTP server is killed: n2's table drops it (xvpcctl map dump
#     lb_services); the time from the kill to that is printed beside the
#     bound fall x interval + timeout; 300 connections c2 -> VIP never reach
#     b2 and are all answered;
#  4. b2's server restarts: it comes back (time printed beside rise x
#     interval) and answers again; b3's server hangs (SIGSTOP: connections
#     are accepted, the GET never answered): it leaves at the probes'
#     timeout, and comes back on SIGCONT;
#  5. n1 probed nothing and kept three backends; no agent logged an error;
#  6. n2's agent stops cleanly: the probe address leaves n2's lo.
#
# Prints PASS/FAIL per check and "N passed, M failed"; teardown (daemons,
# servers, --uninstall, pins, namespaces) always runs. Bounded: every wait
# has a deadline; about 15 s on 2 cores.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
. selftests/e2e/agent_lib.sh

LB_PY=$XV_ROOT/selftests/e2e/lb_http.py
VIP=10.0.100.10
PROBE=169.254.169.250
BACKENDS=(b1 b2 b3)
INTERVAL_MS=500
TIMEOUT_MS=300
FALL=3
RISE=2
NODES="n1 n2"
declare -A SRV_PID=()

note() {
	printf '     %s\n' "$*"
}

svc_filter() {
	local be='' sep='' vm
	for vm in "${BACKENDS[@]}"; do
		be+="$sep{\"ip\": \"${XV_VM_IP[$vm]}\", \"port\": 8080}"
		sep=', '
	done
	printf '.services = [{"vpc": 1, "vip": "%s", "port": 80, "protocol": "tcp", "backends": [%s], "health_check": {"type": "http", "path": "/healthz", "interval_ms": %d, "timeout_ms": %d, "fall": %d, "rise": %d}}]' \
		"$VIP" "$be" "$INTERVAL_MS" "$TIMEOUT_MS" "$FALL" "$RISE"
}

# svc_backends NODE: the backends of the one service in the node's
# xvpc_lb_services, as xvpcctl map dump lb_services shows it.
svc_backends() {
	xa_ctl "$1" map dump lb_services | jq -e '[.. | objects |
		select(has("table") and has("backends"))] |
		if length == 1 then .[0].backends else error("not one service") end'
}

# share_of NODE VM: VM's share of the service's table on NODE (0 when it is
# not in the table).
share_of() {
	xa_ctl "$1" map dump lb_services | jq -e --arg ip "${XV_VM_IP[$2]}" \
		'[.. | objects | select(has("table")) | .table[] |
		  select(.ip == $ip) | .share] | .[0] // 0'
}

svc_has() {
	local got
	got=$(svc_backends "$1" 2>&1)
	[ "$got" = "$2" ] || { echo "$1: backends in xvpc_lb_services: ${got:-none}, want $2"; return 1; }
}

# counter NODE NAME: a datapath counter's packets (drop_* from the drops).
counter() {
	xa_ctl "$1" stats | jq -e --arg c "$2" \
		'[(.counters[] | select(.counter == $c)),
		  (.drops[] | select("drop_" + .reason == $c)) | .packets] |
		 .[0] // 0'
}

# grows NODE COUNTER BEFORE: the counter is above BEFORE.
grows() {
	local now
	now=$(counter "$1" "$2") || return 1
	[ "$now" -gt "$3" ] || { echo "$1 $2: $now, before $3"; return 1; }
}

server_start() {
	: >"$XV_TMP/peers-$1"
	xv_bg "$1" "$XV_TMP/server-$1.log" python3 -B "$LB_PY" serve "$1" 8080 \
		"$XV_TMP/peers-$1"
	SRV_PID[$1]=$XV_BG_PID
	xv_wait 15 xv_listen_ready "$1" 8080 || {
		echo "server in $1 not listening on 8080:"
		cat "$XV_TMP/server-$1.log"
		return 1
	}
}

spread() {
	xv_in "$1" timeout 120 python3 -B "$LB_PY" spread "$VIP" 80 "$2" "$3" \
		>"$4" 2>&1 || {
		echo "$1 -> $VIP:80: not every connection was answered:"
		head -c 2000 "$4"
		return 1
	}
}

count() {
	jq -r --arg vm "$2" '.counts[$vm] // 0' "$1"
}

# answered_by OUT VM...: every VM named answered some, no other VM any.
answered_by() {
	local out=$1 vm n want
	shift
	want=$(printf '%s\n' "$@" | sort | paste -sd' ')
	n=$(jq -r '[.counts | keys[]] | sort | join(" ")' "$out")
	echo "answers: $(jq -c .counts "$out")"
	[ "$n" = "$want" ]
}

# spread_by OUT FIRST_SPORT VM...: 300 connections c2 -> VIP, all answered,
# by exactly these VMs.
spread_by() {
	local out=$1 sport=$2
	shift 2
	spread c2 300 "$sport" "$out" && answered_by "$out" "$@"
}

# the VM cannot open a TCP connection to the probe address (port 60500,
# where the node listens); n2 counts it as drop_probe.
no_syn_to_probe() {
	local before
	before=$(counter n2 drop_probe) || { echo "no drop_probe counter on n2"; return 1; }
	if xv_in b1 timeout 5 python3 -c "import socket; socket.create_connection(('$PROBE', 60500), 2)"; then
		echo "b1 connected to $PROBE:60500"
		return 1
	fi
	grows n2 drop_probe "$before" || {
		xa_ctl n2 stats | jq -c '[.drops[] | {(.reason): .packets}] | add'
		return 1
	}
}

now_ms() { date +%s%3N; }

# log_ms NODE TEXT: the time (ms since the epoch) of the agent's last
# "health: backend TEXT" line.
log_ms() {
	local ts
	ts=$(grep -h "health: backend $2" "$XV_TMP/agent-$1.log" | tail -n 1 |
		awk '{ print $1 }')
	[ -n "$ts" ] && date -d "$ts" +%s%3N
}

# ms_until DEADLINE_S CMD...: milliseconds until CMD succeeds (polled
# every 20 ms), printed; 1 after DEADLINE_S seconds.
ms_until() {
	local t0 deadline=$((SECONDS + $1))
	shift
	t0=$(now_ms)
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.02
	done
	echo $(($(now_ms) - t0))
}

# config_has_probe NODE: xvpcctl shows the probe address and the default
# ports in the node's xvpc_config.
config_has_probe() {
	xa_ctl "$1" map dump config | jq -e --arg p "$PROBE" \
		'[.. | objects | select(has("probe_ip"))][0] | .probe_ip == $p and
		 .probe_port_min == 60000 and .probe_port_max == 60999'
}

has_probe_addr() {
	xa_innode "$1" ip -4 -o addr show dev lo | grep -q " $PROBE/32 "
}

run() {
	local n out before t_down t_up t_kill t_log t_listen
	echo "== health checks of VM backends by their node's agent"
	xv_underlay && xv_node n1 $XV_UL_NET.1 && xv_node n2 $XV_UL_NET.2 &&
		xv_node_neighs || return 1
	xv_vpc 1 blue
	xv_subnet 1 10.0.1.0/24 101 10.0.1.1
	xv_vm b1 n2 1 10.0.1.11 && xv_vm b2 n2 1 10.0.1.12 &&
		xv_vm b3 n2 1 10.0.1.13 && xv_vm c1 n1 1 10.0.1.21 &&
		xv_vm c2 n2 1 10.0.1.22 || return 1
	for vm in "${BACKENDS[@]}"; do
		server_start "$vm" || return 1
	done
	# A listener of the node in the probe port range: what a VM must not
	# reach.
	xv_bg n2 "$XV_TMP/node-listener.log" python3 -c \
		"import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 60500)); s.listen(); time.sleep(300)"

	# 1. The service, probed by n2.
	for n in $NODES; do
		xa_state "$n" 1 "$(svc_filter)" || return 1
	done
	for n in $NODES; do
		xa_start "$n" tc || {
			xv_check "agents on n1 and n2 start with the service" false
			return 0
		}
	done
	xv_check "agents on n1 and n2 start and apply the service" true
	xv_check "n2's agent put the probe address $PROBE on its lo" \
		has_probe_addr n2
	xv_check "n2's xvpc_config holds the probe address and ports (xvpcctl map dump config)" \
		config_has_probe n2
	xv_check "n2's table holds the VIP with 3 backends" \
		xv_wait 10 svc_has n2 3
	before=$(counter n2 probe_reply)
	xv_check "n2's VMs answer the probes (probe_reply grows)" \
		xv_wait 10 grows n2 probe_reply "$before"
	sleep $((INTERVAL_MS * (FALL + 1) / 1000 + 1))
	xv_check "no backend went down while all serve (n2's agent log)" \
		sh -c "! grep -h 'health: backend .* is DOWN' '$XV_TMP/agent-n2.log'"
	xv_check "n2's table still holds 3 backends" svc_has n2 3
	out=$XV_TMP/spread-1.json
	xv_check "c2 -> VIP: 300 connections, all answered, by b1, b2 and b3" \
		spread_by "$out" 20000 b1 b2 b3

	# 2. Security.
	xv_check "a VM cannot open a connection to the probe address (port 60500, the node listens there): drop_probe" \
		no_syn_to_probe

	# 3. b2 dies.
	note "b2's share of n2's table before: $(share_of n2 b2)%"
	t_kill=$(now_ms)
	xv_stop "${SRV_PID[b2]}"
	if t_down=$(ms_until 15 svc_has n2 2); then
		xv_check "b2's server killed: n2's table drops it (xvpcctl map dump lb_services: 3 -> 2 backends)" true
	else
		xv_check "b2's server killed: n2's table drops it (xvpcctl map dump lb_services: 3 -> 2 backends)" \
			svc_has n2 2
	fi
	xv_check "b2's share of n2's table is 0" \
		sh -c "[ \"\$1\" = 0 ] || { echo \"share \$1\"; false; }" sh "$(share_of n2 b2)"
	xv_check "n2's agent logged b2 DOWN" \
		xv_wait 5 log_ms n2 "${XV_VM_IP[b2]}:8080 on h-b2 is DOWN"
	note "$(grep -h "health: backend ${XV_VM_IP[b2]}:8080" "$XV_TMP/agent-n2.log" | tail -n 1)"
	t_log=$(log_ms n2 "${XV_VM_IP[b2]}:8080 on h-b2 is DOWN")
	note "detection: $((t_log - t_kill)) ms from the kill to the agent's DOWN line, ${t_down:-?} ms to xvpcctl showing the table without b2 (bound fall x interval + timeout = $((FALL * INTERVAL_MS + TIMEOUT_MS)) ms; a refused connect fails at once, so at most fall x interval = $((FALL * INTERVAL_MS)) ms plus the map update)"
	out=$XV_TMP/spread-2.json
	xv_check "c2 -> VIP: 300 connections, all answered, none by b2" \
		spread_by "$out" 21000 b1 b3

	# 4. b2 comes back.
	server_start b2 || return 1
	t_listen=$(now_ms)
	if t_up=$(ms_until 15 svc_has n2 3); then
		xv_check "b2's server restarted: n2's table takes it back (3 backends)" true
		t_log=$(log_ms n2 "${XV_VM_IP[b2]}:8080 on h-b2 is up")
		note "recovery: $((t_log - t_listen)) ms from listening to the agent's up line, ${t_up} ms to xvpcctl showing b2 (rise successes: between (rise - 1) x interval = $(((RISE - 1) * INTERVAL_MS)) and rise x interval = $((RISE * INTERVAL_MS)) ms)"
	else
		xv_check "b2's server restarted: n2's table takes it back (3 backends)" \
			svc_has n2 3
	fi
	out=$XV_TMP/spread-3.json
	xv_check "c2 -> VIP: 300 connections, all answered, by b1, b2 and b3 again" \
		spread_by "$out" 22000 b1 b2 b3

	# 4b. b3 hangs (SIGSTOP): the kernel still accepts connections, the
	# GET is never answered, the probes fail at their timeout.
	t_kill=$(now_ms)
	kill -STOP -- "-${SRV_PID[b3]}"
	if t_down=$(ms_until 15 svc_has n2 2); then
		xv_check "b3's server hangs (SIGSTOP): n2's table drops it" true
		t_log=$(log_ms n2 "${XV_VM_IP[b3]}:8080 on h-b3 is DOWN")
		note "$(grep -h "health: backend ${XV_VM_IP[b3]}:8080" "$XV_TMP/agent-n2.log" | tail -n 1)"
		note "detection: $((t_log - t_kill)) ms from the stop to the agent's DOWN line, ${t_down} ms to xvpcctl (bound fall x interval + timeout = $((FALL * INTERVAL_MS + TIMEOUT_MS)) ms)"
	else
		xv_check "b3's server hangs (SIGSTOP): n2's table drops it" \
			svc_has n2 2
	fi
	xv_check "b3 is the one out (share 0)" \
		sh -c "[ \"\$1\" = 0 ] || { echo \"share \$1\"; false; }" sh "$(share_of n2 b3)"
	kill -CONT -- "-${SRV_PID[b3]}"
	xv_check "b3's server resumes (SIGCONT): n2's table takes it back" \
		xv_wait 15 svc_has n2 3

	# 5. n1's side.
	xv_check "n1 probed nothing (its backends are remote) and kept 3 backends" \
		sh -c "! grep -h 'health: backend' '$XV_TMP/agent-n1.log' && \
			[ \"\$(bpftool -j map dump pinned '${XV_NODE_PIN[n1]}/xvpc_lb_services' | jq '.[0].formatted.value.backends')\" = 3 ]"
	xv_check "no agent logged an error" \
		sh -c "! grep -h ' error xvpc-agent: ' $XV_TMP/agent-n*.log"

	# 6. Clean shutdown.
	xa_stop n2
	xv_check "n2's agent stopped cleanly: the probe address left its lo" \
		sh -c "! ip -n ${XV_NODE_NS[n2]} -4 -o addr show dev lo | grep -q ' $PROBE/32 '"
	[ "${XV_VERBOSE:-0}" = 1 ] && cat "$XV_TMP"/agent-n*.log
	return 0
}

xv_init
run || xv_check "topology, servers and desired state set up" false
xv_summary
