#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# End-to-end: the east-west Maglev load balancer (docs/loadbalancer.md).
# Four nodes run xvpc-agent as daemons on state files (no controller); every
# node's state holds one service, VIP 10.0.100.10:80/tcp over three backend
# VMs on three nodes (port 8080, weights 1, 2, 1, health_check "none": on
# state files a remote backend's health, probed by its own node, reaches no
# other node; lb_health.sh tests the checks). The clients are c1, alone
# on n4 (every backend remote), and c2 on n1 beside b1 (a local backend).
#
#                underlay bridge br0 (192.168.250.0/24)
#       +-------------------+-------------------+-------------------+
#     ul0 .1              ul0 .2              ul0 .3              ul0 .4
#    node n1             node n2             node n3             node n4
#   b1 10.0.1.11 w1     b2 10.0.1.12 w2     b3 10.0.1.13 w1     c1 10.0.1.20
#   c2 10.0.1.21
#
#   VPC 1: 10.0.1.0/24 VNI 101, gateway .1
#   service 10.0.100.10:80/tcp -> b1, b2, b3 :8080 (in no subnet: routed)
#
# The VIP lies in no subnet: the VM routes it to the gateway MAC. A VIP
# inside a subnet is accepted by the agent but unreachable: the endpoint
# program's ARP responder answers for the gateway and endpoints only
# (drop_arp_unknown), so the VM never sends the SYN.
#
# Each backend runs selftests/e2e/lb_http.py: an HTTP/1.1 server answering
# its own name, logging the peer address of every connection it accepts.
# The clients use fixed source ports (c1: 20000.., 30000.., 40000 for the
# kept connection; c2: 25000..), so the flows, their hashes and the Maglev
# entries they land on are the same in every run: the shares are
# reproducible numbers, not samples, and the kept connection always lands
# on b2 (so b1 is the backend removed).
#
# Steps and checks, per underlay mode (XVPC_E2E_MODES, default "tc xdp"):
#  1. every agent applies the service (bpftool on xvpc_lb_services); c1 and
#     c2 get answers through the VIP;
#  2. spread: 3000 sequential connections c1 -> VIP:80, all answered, each
#     backend's share within 5 percentage points of its weight share (25%,
#     50%, 25%: "within 5% of the weights"). Maglev gives each backend its
#     weight's share of the 65537 table entries to within one entry, so
#     only the choice of 3000 flows varies: one standard deviation is 0.8
#     points at 25% and 0.9 at 50%, 5 points is more than 5 of them.
#     Measured (the same every run): 736 / 1527 / 737 = 24.5 / 50.9 /
#     24.6%. n4 counts one lb_new per connection and at least two
#     lb_established and two lb_reply each. (lb_new may exceed the
#     connections by a few: a client packet racing a reply's FIN on the
#     other CPU can find its entry "expired"; 2% slack, docs/testing.md);
#  3. client address: every connection in every backend's log comes from
#     c1's own address (not the VIP, not a node's), one per answer; the
#     same for 1000 connections from c2 on n1 (b1 local: its replies are
#     reverse-translated in the endpoint program of b1's interface, not
#     after decapsulation; shares 22.8 / 53.7 / 23.5%: one standard
#     deviation of 1000 flows is 1.6 points at 50%);
#  4. kept connection: c1 keeps one connection to the VIP, one request
#     every 100 ms; (a) another backend is removed from every node's state,
#     (b) n4's agent is SIGKILLed and restarted (it adopts the pinned maps).
#     The connection answers throughout, from the same backend, no reset,
#     no error; its forward conntrack entry on n4 has the same created_ns
#     before and after the restart, and n4 counts one lb_new in all that
#     time;
#  5. after the removal: 3000 new connections never reach the removed
#     backend (its log gets no line) and the other two share them by their
#     weights 2:1 within 5 points (measured 1988 / 1012 = 66.3 / 33.7%).
#
# Prints PASS/FAIL per check (measured shares and counters indented below)
# and "N passed, M failed"; exit status non-zero on failure; teardown
# (daemons, servers, --uninstall, pins, namespaces) always runs. Bounded:
# every wait has a deadline; about 17-35 s per mode on 2 cores (47 s with
# both cores hogged by busy loops).
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
. selftests/e2e/agent_lib.sh

MODES=${XVPC_E2E_MODES:-tc xdp}
LB_PY=$XV_ROOT/selftests/e2e/lb_http.py
VIP=10.0.100.10
BACKENDS=(b1 b2 b3)
declare -A WEIGHT=([b1]=1 [b2]=2 [b3]=1)
SPREAD_N=3000 # connections per spread
TOL=5         # percentage points
NODES="n1 n2 n3 n4"
REV=1

# svc_filter VM...: jq filter setting the service with these backends.
svc_filter() {
	local be='' sep='' vm
	for vm in "$@"; do
		be+="$sep{\"ip\": \"${XV_VM_IP[$vm]}\", \"port\": 8080, \"weight\": ${WEIGHT[$vm]}}"
		sep=', '
	done
	printf '.services = [{"vpc": 1, "vip": "%s", "port": 80, "protocol": "tcp", "backends": [%s], "health_check": {"type": "none"}}]' \
		"$VIP" "$be"
}

# state_all VM...: every node's next revision, with these backends.
state_all() {
	local n
	REV=$((REV + 1))
	for n in $NODES; do
		xa_state "$n" "$REV" "$(svc_filter "$@")" || return 1
	done
}

# applied_all: every daemon runs and has applied the current revision.
applied_all() {
	local n
	for n in $NODES; do
		xv_wait 20 xa_ready "$n" "$REV" || {
			echo "agent on $n did not apply revision $REV:"
			tail -n 10 "$XV_TMP/agent-$n.log"
			return 1
		}
	done
}

# svc_backends NODE: the backend count of the service in the node's
# xvpc_lb_services map (bpftool, BTF-typed).
svc_backends() {
	bpftool -j map dump pinned "${XV_NODE_PIN[$1]}/xvpc_lb_services" |
		jq -e '[.[].formatted.value.backends] | if length == 1 then .[0] else error("not one service") end'
}

# svc_has NODE N: the node's datapath holds the service with N backends.
svc_has() {
	local got
	got=$(svc_backends "$1" 2>&1)
	[ "$got" = "$2" ] || { echo "$1: service backends in xvpc_lb_services: ${got:-none}, want $2"; return 1; }
}

svc_all() {
	local n
	for n in $NODES; do
		xv_wait 10 svc_has "$n" "$1" || { svc_has "$n" "$1"; return 1; }
	done
}

# counter NODE NAME: a datapath counter (xvpcctl stats), packets.
counter() {
	xa_ctl "$1" stats | jq -e --arg c "$2" \
		'.counters[] | select(.counter == $c) | .packets'
}

# lb_counters NODE: "lb_new lb_established lb_reply" of the node.
lb_counters() {
	xa_ctl "$1" stats | jq -er '[.counters[] | select(.counter |
		startswith("lb_")) | {(.counter): .packets}] | add |
		"\(.lb_new) \(.lb_established) \(.lb_reply)"'
}

# servers_start: the HTTP server in every backend VM.
servers_start() {
	local vm
	for vm in "${BACKENDS[@]}"; do
		: >"$XV_TMP/peers-$vm"
		xv_bg "$vm" "$XV_TMP/server-$vm.log" python3 -B "$LB_PY" serve \
			"$vm" 8080 "$XV_TMP/peers-$vm"
	done
	for vm in "${BACKENDS[@]}"; do
		xv_wait 15 xv_listen_ready "$vm" 8080 || {
			echo "server in $vm not listening on 8080:"
			cat "$XV_TMP/server-$vm.log"
			return 1
		}
	done
}

# spread FROM N FIRST_SPORT OUT: N connections to the VIP; the answer
# counts (JSON) in OUT.
spread() {
	xv_in "$1" timeout 150 python3 -B "$LB_PY" spread "$VIP" 80 "$2" "$3" \
		>"$4" 2>&1 || {
		echo "$1 -> $VIP:80: not every connection was answered:"
		head -c 2000 "$4"
		return 1
	}
}

# count OUT VM: connections VM answered in a spread's result.
count() {
	jq -r --arg vm "$2" '.counts[$vm] // 0' "$1"
}

# shares OUT VM...: print each VM's share against its weight share; fail if
# one is off by more than TOL points, if another VM answered, or if not
# every connection was answered.
shares() {
	local out=$1 vm total=0 wsum=0 n line='' bad=0 all
	shift
	for vm in "$@"; do
		wsum=$((wsum + WEIGHT[$vm]))
	done
	all=$(jq '[.counts[]] | add // 0' "$out")
	for vm in "$@"; do
		n=$(count "$out" "$vm")
		total=$((total + n))
		read -r got want ok <<<"$(awk -v n="$n" -v t="$all" \
			-v w="${WEIGHT[$vm]}" -v ws="$wsum" -v tol="$TOL" 'BEGIN {
			g = t ? 100 * n / t : 0; x = 100 * w / ws
			d = g > x ? g - x : x - g
			printf "%.1f %.1f %d\n", g, x, d <= tol }')"
		line+="$vm $n ($got%, weight share $want%) "
		[ "$ok" = 1 ] || bad=1
	done
	echo "${line% } of $all"
	[ "$total" = "$all" ] || { echo "answers from backends not in the service: $(jq -c .counts "$out")"; bad=1; }
	return $bad
}

# peers_only VM CLIENT N: VM's log holds exactly N connections, all from
# CLIENT's address.
peers_only() {
	local log=$XV_TMP/peers-$1 ip=${XV_VM_IP[$2]} lines others
	lines=$(wc -l <"$log")
	others=$(awk -v ip="$ip" '$1 != ip' "$log" | sort | uniq -c | sort -rn |
		awk '{ print $2 }' | head -n 5 | paste -sd' ')
	[ "$lines" = "$3" ] && [ -z "$others" ] && return 0
	echo "$1 logged $lines connections (answers counted: $3); peers other than $2 ($ip): ${others:-none}"
	return 1
}

# peers_from SPREAD-OUT CLIENT VM...: each VM's log is exactly the
# connections it answered in the spread, all from CLIENT. Resets the logs.
peers_from() {
	local out=$1 client=$2 vm bad=0
	shift 2
	for vm in "$@"; do
		peers_only "$vm" "$client" "$(count "$out" "$vm")" || bad=1
	done
	for vm in "${BACKENDS[@]}"; do
		: >"$XV_TMP/peers-$vm"
	done
	return $bad
}

# delta BEFORE AFTER N [SLACK]: "lb_new lb_established lb_reply"
# differences; lb_new must be N (up to N + SLACK), the other two at least
# 2 N.
delta() {
	local n0 e0 r0 n1 e1 r1
	read -r n0 e0 r0 <<<"$1"
	read -r n1 e1 r1 <<<"$2"
	echo "lb_new +$((n1 - n0)) lb_established +$((e1 - e0)) lb_reply +$((r1 - r0))"
	[ $((n1 - n0)) -ge "$3" ] && [ $((n1 - n0)) -le $(($3 + ${4:-0})) ] &&
		[ $((e1 - e0)) -ge $((2 * $3)) ] && [ $((r1 - r0)) -ge $((2 * $3)) ]
}

# le32 A.B.C.D / le16 PORT: an address or port in network order as bpftool
# prints a __be32 or __be16 field on this (little-endian) machine.
le32() {
	local IFS=. a b c d
	read -r a b c d <<<"$1"
	echo $(((d << 24) | (c << 16) | (b << 8) | a))
}
le16() {
	echo $(((($1 & 255) << 8) | ($1 >> 8)))
}

# ct_fwd NODE SRC SPORT DST DPORT: the forward conntrack entry of that TCP
# flow in the node's xvpc_lb_ct, as "created_ns state" (fails if absent).
ct_fwd() {
	bpftool -j map dump pinned "${XV_NODE_PIN[$1]}/xvpc_lb_ct" |
		jq -er --argjson s "$(le32 "$2")" --argjson sp "$(le16 "$3")" \
			--argjson d "$(le32 "$4")" --argjson dp "$(le16 "$5")" \
			'[.[].formatted | select(.key.src == $s and .key.sport == $sp
			and .key.dst == $d and .key.dport == $dp and
			.key.proto == 6)][0] | "\(.value.created_ns) \(.value.state)"'
}

# --- xvpcctl: the table's shares, and a flow's backend explained ------------

# ctl_shares NODE HELD: `map dump lb_services`: one service, its 3
# backends' shares of the table within a point of 25/50/25, and the kept
# connection counted as a flow of HELD.
ctl_shares() {
	local out
	out=$(xa_ctl "$1" map dump lb_services) || { echo "$out"; return 1; }
	echo "$out" | jq -e --arg held "${XV_VM_IP[$2]}" '.entries | length == 1 and
		(.[0] | .vip == "10.0.100.10" and .port == 80 and .backends == 3 and
		([.table[].entries] | add) == .m and
		([.table[] | .share] | .[0] > 24 and .[0] < 26 and .[1] > 49 and
			.[1] < 51 and .[2] > 24 and .[2] < 26) and
		([.table[] | select(.ip == $held) | .flows][0] >= 1))' >/dev/null || {
		echo "$out" | head -40
		return 1
	}
}

# ctl_trace NODE JQ-FILTER ARGS...: `trace ARGS` to the VIP; the filter must
# hold on its "lb" object.
ctl_trace() {
	local node=$1 filter=$2 out
	shift 2
	out=$(xa_ctl "$node" trace --to "$VIP" --proto tcp --dport 80 "$@") ||
		{ echo "$out"; return 1; }
	echo "$out" | jq -e ".lb | $filter" >/dev/null || {
		echo "$out" | jq '.lb'
		echo "expected: $filter"
		return 1
	}
}

# no_ct NODE SRC SPORT DST DPORT: no forward conntrack entry of that flow.
no_ct() {
	local got
	got=$(ct_fwd "$@" 2>/dev/null)
	[ -z "$got" ] || [ "$got" = "null null" ] || { echo "entry: $got"; return 1; }
}

# --- the long-lived connection ----------------------------------------------

HOLD_STATUS=
HOLD_STOP=
HOLD_PID=

hold_start() {
	HOLD_STATUS=$XV_TMP/hold.json
	HOLD_STOP=$XV_TMP/hold.stop
	rm -f "$HOLD_STATUS" "$HOLD_STOP"
	xv_bg c1 "$XV_TMP/hold.log" python3 -B "$LB_PY" hold "$VIP" 80 40000 \
		"$HOLD_STATUS" "$HOLD_STOP" 100
	HOLD_PID=$XV_BG_PID
}

hold_field() {
	jq -r ".$1" "$HOLD_STATUS" 2>/dev/null
}

# hold_more N: N more answers arrive on the kept connection (at 10/s), no
# error; the connection is still alive.
hold_more() {
	local from
	from=$(hold_field answers) || from=0
	[ "$from" = null ] && from=0
	if ! xv_wait 30 hold_reached $((from + $1)); then
		echo "kept connection: $(hold_field answers) answers, wanted $((from + $1)); error: $(hold_field error)"
		cat "$XV_TMP/hold.log"
		return 1
	fi
}

hold_reached() {
	local a
	[ -s "$HOLD_STATUS" ] || return 1
	[ "$(hold_field error)" = null ] || return 1
	a=$(hold_field answers)
	[ "$a" -ge "$1" ]
}

# hold_end: stop the client, which must exit 0 with every answer from one
# backend.
hold_end() {
	local rc
	touch "$HOLD_STOP"
	for _ in $(seq 50); do
		kill -0 "$HOLD_PID" 2>/dev/null || break
		sleep 0.1
	done
	wait "$HOLD_PID"
	rc=$?
	xv_stop "$HOLD_PID"
	echo "kept connection: $(jq -c '{answers, names, max_gap_ms, error}' "$HOLD_STATUS"), exit $rc"
	[ "$rc" = 0 ] && [ "$(hold_field error)" = null ] &&
		[ "$(jq '.names | length' "$HOLD_STATUS")" = 1 ]
}

# restarted_reset NODE: since its last start, the node's agent logged that
# it set the service again (it does not trust its memory after a restart).
restarted_reset() {
	awk '/^=== start/ { buf = "" } { buf = buf $0 "\n" }
		END { printf "%s", buf }' "$XV_TMP/agent-$1.log" |
		grep -q "load balancer: replaced service vpc 1 $VIP:80/tcp with 2 backends" ||
		{ echo "not in the log since the restart:"; tail -n 5 "$XV_TMP/agent-$1.log"; return 1; }
}

# note TEXT: an indented line under the checks (measured values).
note() {
	printf '     %s\n' "$*"
}

run_mode() {
	local mode=$1 n out c0 c1 ct0 ct1 held gone='' keep=() vm t0=$SECONDS
	REV=1
	XA_PID=()
	XA_REV=()
	echo "== underlay mode: $mode"
	xv_underlay && xv_node n1 $XV_UL_NET.1 && xv_node n2 $XV_UL_NET.2 &&
		xv_node n3 $XV_UL_NET.3 && xv_node n4 $XV_UL_NET.4 &&
		xv_node_neighs || return 1
	xv_vpc 1 blue
	xv_subnet 1 10.0.1.0/24 101 10.0.1.1
	xv_vm b1 n1 1 10.0.1.11 && xv_vm b2 n2 1 10.0.1.12 &&
		xv_vm b3 n3 1 10.0.1.13 && xv_vm c1 n4 1 10.0.1.20 &&
		xv_vm c2 n1 1 10.0.1.21 || return 1
	servers_start || return 1

	# 1. The service everywhere.
	for n in $NODES; do
		xa_state "$n" "$REV" "$(svc_filter "${BACKENDS[@]}")" || return 1
	done
	for n in $NODES; do
		xa_start "$n" "$mode" || {
			xv_check "[$mode] agents on n1..n4 start with the service" false
			return 0
		}
	done
	xv_check "[$mode] agents on n1..n4 start and apply the service" true
	xv_check "[$mode] every node's xvpc_lb_services holds the VIP with 3 backends" \
		svc_all 3
	# A first connection from each client (and the overlay up): the
	# service answers; then the logs start empty.
	xv_check "[$mode] c1 (n4) and c2 (n1) get answers from $VIP:80" \
		sh -c "ip netns exec ${XV_VM_NS[c1]} python3 -B $LB_PY spread $VIP 80 3 19000 &&
			ip netns exec ${XV_VM_NS[c2]} python3 -B $LB_PY spread $VIP 80 3 19000"
	for vm in "${BACKENDS[@]}"; do
		: >"$XV_TMP/peers-$vm"
	done

	# 2. Spread from c1, 3. its address in the backends' logs.
	out=$XV_TMP/spread-c1.json
	c0=$(lb_counters n4)
	xv_check "[$mode] spread: $SPREAD_N connections c1 -> VIP, all answered" \
		spread c1 "$SPREAD_N" 20000 "$out"
	c1=$(lb_counters n4)
	xv_check "[$mode] spread: each backend's share within $TOL points of its weight share (1:2:1)" \
		shares "$out" "${BACKENDS[@]}"
	note "$(shares "$out" "${BACKENDS[@]}" | head -n 1)"
	xv_check "[$mode] spread: n4 counted one lb_new per connection (+2% slack), >= 2 lb_established and lb_reply each" \
		delta "$c0" "$c1" "$SPREAD_N" $((SPREAD_N / 50))
	note "n4: $(delta "$c0" "$c1" "$SPREAD_N")"
	xv_check "[$mode] client address: every backend logged c1's own address for each of its connections" \
		peers_from "$out" c1 "${BACKENDS[@]}"

	# c2 beside b1 on n1: b1 is a local backend there.
	out=$XV_TMP/spread-c2.json
	c0=$(lb_counters n1)
	xv_check "[$mode] spread: 1000 connections c2 (n1, beside b1) -> VIP, all answered" \
		spread c2 1000 25000 "$out"
	c1=$(lb_counters n1)
	xv_check "[$mode] spread from c2: shares within $TOL points of 1:2:1" \
		shares "$out" "${BACKENDS[@]}"
	note "$(shares "$out" "${BACKENDS[@]}" | head -n 1)"
	xv_check "[$mode] spread from c2: n1 counted one lb_new per connection (+2% slack), >= 2 lb_established and lb_reply each" \
		delta "$c0" "$c1" 1000 20
	note "n1: $(delta "$c0" "$c1" 1000)"
	xv_check "[$mode] client address: the local backend b1 and the remote ones logged c2's own address" \
		peers_from "$out" c2 "${BACKENDS[@]}"

	# 4. The long-lived connection.
	c0=$(lb_counters n4)
	hold_start
	if ! xv_wait 20 hold_reached 5; then
		xv_check "[$mode] kept connection c1 -> VIP opens and answers" \
			sh -c "cat '$XV_TMP/hold.log' '$HOLD_STATUS' 2>&1; false"
		return 0
	fi
	held=$(hold_field first)
	for vm in "${BACKENDS[@]}"; do
		[ -z "${gone:-}" ] && [ "$vm" != "$held" ] && { gone=$vm; continue; }
		keep+=("$vm")
	done
	xv_check "[$mode] kept connection c1 -> VIP opens and answers (from $held)" true
	xv_check "[$mode] xvpcctl map dump lb_services on n4: shares 25/50/25 of m, the kept connection a flow of $held" \
		ctl_shares n4 "$held"
	xv_check "[$mode] xvpcctl trace of the kept connection on n4: its conntrack entry, $held, nothing written" \
		ctl_trace n4 ".decision == \"conntrack\" and .backend == \"${XV_VM_IP[$held]}:8080\" and
			.datapath_agrees and .conntrack_written == 0" \
		--from h-c1 --sport 40000 --tcp-flags ack
	xv_check "[$mode] xvpcctl trace of a new flow on n1: Maglev entry, the program agrees, its 2 conntrack entries taken back" \
		ctl_trace n1 '.decision == "maglev" and .entry == .hash % .m and
			.datapath_agrees and .conntrack_written == 2' \
		--from h-c2 --sport 39999
	xv_check "[$mode] xvpcctl trace left no conntrack entry for the traced flow" \
		no_ct n1 "${XV_VM_IP[c2]}" 39999 "$VIP" 80
	state_all "${keep[@]}" || return 1
	xa_do "[$mode] kept connection: $gone removed from every node's state, applied" \
		applied_all
	xv_check "[$mode] every node's xvpc_lb_services now holds 2 backends" \
		svc_all 2
	xv_check "[$mode] kept connection answers on after the removal" hold_more 10
	ct0=$(ct_fwd n4 "${XV_VM_IP[c1]}" 40000 "$VIP" 80)
	xv_check "[$mode] kept connection: n4's conntrack holds its forward entry" \
		test -n "$ct0"
	xa_kill n4
	xv_check "[$mode] kept connection answers while n4's agent is dead (SIGKILL)" \
		hold_more 10
	xa_do "[$mode] n4's agent restarts, adopts the pinned maps, applies revision $REV" \
		xa_start n4 "$mode"
	xv_check "[$mode] kept connection answers after n4's agent restarted" \
		hold_more 10
	ct1=$(ct_fwd n4 "${XV_VM_IP[c1]}" 40000 "$VIP" 80)
	xv_check "[$mode] kept connection: its conntrack entry survived the restart (same created_ns)" \
		sh -c "[ '$ct0' = '$ct1' ] || { echo 'before: $ct0, after: $ct1'; false; }"
	# The counters before the close: its FIN may race (see above).
	c1=$(lb_counters n4)
	xa_do "[$mode] kept connection: only $held answered, no reset, no error" \
		hold_end
	note "$(cat "$XV_TMP/step.log")"
	xv_check "[$mode] kept connection: n4 balanced it once (lb_new +1) in all that time" \
		delta "$c0" "$c1" 1
	note "n4 during the kept connection: $(delta "$c0" "$c1" 1 | head -n 1); $(jq -c '{answers, names, max_gap_ms}' "$HOLD_STATUS")"
	xv_check "[$mode] n4's restarted agent re-set the service (2 backends) on adopting the maps" \
		restarted_reset n4
	for vm in "${BACKENDS[@]}"; do
		: >"$XV_TMP/peers-$vm"
	done

	# 5. New connections after the removal.
	out=$XV_TMP/spread-after.json
	c0=$(lb_counters n4)
	xv_check "[$mode] after removing $gone: $SPREAD_N new connections c1 -> VIP, all answered" \
		spread c1 "$SPREAD_N" 30000 "$out"
	c1=$(lb_counters n4)
	xv_check "[$mode] after removing $gone: it answered none and logged no connection" \
		sh -c "[ \"\$(jq -r '.counts[\"$gone\"] // 0' '$out')\" = 0 ] && [ ! -s '$XV_TMP/peers-$gone' ]"
	xv_check "[$mode] after removing $gone: ${keep[*]} share within $TOL points of their weights (${WEIGHT[${keep[0]}]}:${WEIGHT[${keep[1]}]})" \
		shares "$out" "${keep[@]}"
	note "$(shares "$out" "${keep[@]}" | head -n 1)"
	xv_check "[$mode] after removing $gone: n4 counted one lb_new per connection (+2% slack)" \
		delta "$c0" "$c1" "$SPREAD_N" $((SPREAD_N / 50))
	note "n4: $(delta "$c0" "$c1" "$SPREAD_N")"
	xv_check "[$mode] after removing $gone: c1's address for every connection" \
		peers_from "$out" c1 "${keep[@]}"
	xv_check "[$mode] no agent logged an error" \
		sh -c "! grep -h ' error xvpc-agent: ' $XV_TMP/agent-n*.log"
	note "mode $mode: $((SECONDS - t0)) s"
	[ "${XV_VERBOSE:-0}" = 1 ] && cat "$XV_TMP"/agent-n*.log
	return 0
}

xv_init
for mode in $MODES; do
	run_mode "$mode" || xv_check "[$mode] topology, servers and desired state set up" false
	xv_reset
done
xv_summary
