#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Learning mode end to end (docs/learning.md): a learn-mode VPC over four
# nodes driven by one controller (embedded store) with two gateway nodes.
#
#   1. a non-gateway node holds only its own endpoints (no push);
#   2. the first ping to a peer is answered (same subnet: the agent resolves
#      the ARP miss; routed: the miss goes through a gateway), and the entry
#      appears on the sender as learned/resolved;
#   3. later packets bypass the gateways: a capture on the gateways' bridge
#      ports sees no VXLAN while the peers keep talking;
#   4. a VM migrates to another node (its port re-bound through the API)
#      under a 100/s ping: replies resume within 1 s of the VM leaving;
#   5. a gateway node's agent dies: the controller designates another one
#      and a miss to a new peer still resolves;
#   6. the VPC switches to push mode and back at run time.
#
# Everything lives in this run's namespaces; teardown on any exit.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
. selftests/e2e/agent_lib.sh
. selftests/e2e/ctl_lib.sh

# Both underlay modes, one run each (a fresh topology per mode).
if [ -z "${LEARN_MODE:-}" ]; then
	LEARN_MODE=tc "$0" && LEARN_MODE=xdp "$0"
	exit
fi
ADMIN=e2e-admin-learn-$$
STEP=setup
declare -A TOK

fail() {
	local n
	echo "FAIL [$STEP]: $*" >&2
	[ -f "$XV_TMP/controller.log" ] &&
		grep -v 'registered node' "$XV_TMP/controller.log" | tail -n 12 |
			sed 's/^/  ctrl: /' >&2
	for n in "${XV_NODES[@]}"; do
		[ -f "$XV_TMP/agent-$n.log" ] &&
			tail -n 6 "$XV_TMP/agent-$n.log" | sed "s/^/  $n: /" >&2
	done
	exit 1
}
ok() { echo "ok   [$STEP] $*"; }

# stat NODE COUNTER: packets of a datapath counter on NODE.
stat() {
	xa_ctl "$1" stats | jq -e --arg c "$2" \
		'[.counters[] | select(.counter == $c) | .packets] | add // 0'
}

# learned_on NODE IP: the node holds IP as a learned (or resolved) entry.
learned_on() {
	xa_ctl "$1" endpoint learned |
		jq -e --arg ip "$2" '[.learned[] | select(.ip == $ip and .source != "pushed")] | length > 0' \
			>/dev/null
}

# pushed_count NODE: entries of the node's pushed endpoint map.
pushed_count() {
	xa_ctl "$1" endpoint list | jq -e '.endpoints | length'
}

gateways() {
	xc_ctl "${TOK[t]}" vpc show "$VPC" | jq -r '.gateways // [] | .[]'
}

two_gateways() { [ "$(gateways | wc -l)" = 2 ]; }

# first_ping VM IP: one echo request, answered within 3 s.
first_ping() {
	xv_in "$1" ping -n -c 1 -W 3 "$2" >/dev/null 2>&1
}

setup() {
	STEP=topology
	echo "== underlay mode: $LEARN_MODE"
	xv_underlay && xv_node n1 $XV_UL_NET.1 && xv_node n2 $XV_UL_NET.2 &&
		xv_node n3 $XV_UL_NET.3 && xv_node n4 $XV_UL_NET.4 &&
		xv_node_neighs && xc_mgmt_all || fail "namespaces"
	if [ "$LEARN_MODE" = xdp ]; then
		# A redirect out of a node's veth needs NAPI on the bridge's
		# side; a gateway's forward and relay look up the next hop with
		# bpf_fib_lookup, which needs IPv4 forwarding on the underlay.
		for n in n1 n2 n3 n4; do
			xv_q ip netns exec "$XV_UL_NS" ethtool -K "p-$n" gro on
			xv_q xv_in "$n" sysctl -qw net.ipv4.conf.ul0.forwarding=1
		done
	fi
	XC_API=http://$XC_ADDR:$((20000 + $$ % 20000))
	xc_controller_start "$XV_TMP/controller.log" "$ADMIN" \
		--listen "${XC_API#http://}" --data-dir "$XV_TMP/store" \
		--vpc-gateways 2 --node-down-after 3 || fail "controller"
	for n in n1 n2 n3 n4; do
		xc_agent_start "$n" "$LEARN_MODE" "$XC_API" "$ADMIN" ||
			fail "agent $n"
	done
	STEP=api
	TOK[t]=$(xc_ctl "$ADMIN" tenant create learner | jq -er .token) ||
		fail "tenant"
	VPC=$(xc_ctl "${TOK[t]}" vpc create big --cidr 10.8.0.0/16 \
		--mode learn | jq -er .id) || fail "learn-mode vpc"
	xc_subnet "${TOK[t]}" "$VPC" 10.8.1.0/24 s1 || fail "subnet s1"
	S1=$XC_ID
	xc_subnet "${TOK[t]}" "$VPC" 10.8.2.0/24 s2 || fail "subnet s2"
	S2=$XC_ID
	xv_wait 10 two_gateways || fail "no two gateways designated"
	mapfile -t GW < <(gateways)
	PLAIN=()
	for n in n1 n2 n3 n4; do
		[[ " ${GW[*]} " == *" $n "* ]] || PLAIN+=("$n")
	done
	[ ${#PLAIN[@]} = 2 ] || fail "gateways ${GW[*]}: want 2 of 4 nodes"
	ok "VPC $VPC in learn mode, gateways ${GW[*]}, plain nodes ${PLAIN[*]}"
	X=${PLAIN[0]} Y=${PLAIN[1]}
	xc_vm "${TOK[t]}" "$S1" a1 "$X" && xc_vm "${TOK[t]}" "$S1" a2 "$Y" &&
		xc_vm "${TOK[t]}" "$S2" b1 "$Y" &&
		xc_vm "${TOK[t]}" "$S2" g1 "${GW[0]}" || fail "ports and VMs"
	for n in "${XV_NODES[@]}"; do
		xv_wait 10 xc_maps_match_api "$n" "$ADMIN" ||
			fail "$n did not apply its state"
	done
}

check_not_pushed() {
	STEP=no-push
	local nx
	nx=$(pushed_count "$X") || fail "endpoint list on $X"
	[ "$nx" = 1 ] || fail "$X holds $nx pushed endpoints, want only its own (1)"
	ok "$X holds 1 pushed endpoint (its own); gateways hold all 4"
}

check_first_packets() {
	STEP=first-packet
	local before
	before=$(stat "$X" miss_to_gateway) || fail "stats"
	first_ping a1 "${XV_VM_IP[a2]}" ||
		fail "first ping a1 -> a2 (same subnet) not answered"
	xv_wait 5 learned_on "$X" "${XV_VM_IP[a2]}" ||
		fail "a2 not learned on $X"
	ok "first ping a1 -> a2 answered; a2 learned on $X"
	first_ping a1 "${XV_VM_IP[b1]}" ||
		fail "first ping a1 -> b1 (routed) not answered"
	xv_wait 5 learned_on "$X" "${XV_VM_IP[b1]}" ||
		fail "b1 not learned on $X"
	ok "first routed ping a1 -> b1 answered (miss_to_gateway" \
		"$before -> $(stat "$X" miss_to_gateway)); b1 learned on $X"
	first_ping g1 "${XV_VM_IP[a1]}" || fail "g1 (on a gateway) -> a1"
}

check_bypass() {
	STEP=bypass
	local g cap pids=() n=0 seen
	# The peers' own node is captured too: the capture must see the
	# traffic there, or it proves nothing at the gateways.
	for g in "${GW[@]}" "$Y"; do
		cap=$XV_TMP/gw-$g.pcap
		xv_in ul timeout 10 tcpdump -n -U -i "p-$g" -w "$cap" \
			udp port 4789 >/dev/null 2>&1 &
		pids+=($!)
	done
	sleep 1
	xv_in a1 ping -n -q -c 20 -i 0.05 "${XV_VM_IP[a2]}" >/dev/null ||
		fail "a1 -> a2"
	xv_in a1 ping -n -q -c 20 -i 0.05 "${XV_VM_IP[b1]}" >/dev/null ||
		fail "a1 -> b1"
	sleep 0.5
	kill "${pids[@]}" 2>/dev/null
	wait "${pids[@]}" 2>/dev/null
	for g in "${GW[@]}"; do
		n=$((n + $(xv_in ul tcpdump -n -r "$XV_TMP/gw-$g.pcap" 2>/dev/null | wc -l)))
	done
	seen=$(xv_in ul tcpdump -n -r "$XV_TMP/gw-$Y.pcap" 2>/dev/null | wc -l)
	[ "$seen" -ge 80 ] || fail "the capture at $Y saw $seen packets, want >= 80"
	[ "$n" = 0 ] || fail "$n VXLAN packets crossed the gateways' ports"
	ok "80 echo exchanges between learned peers: $seen VXLAN packets at" \
		"$Y's port, 0 at the gateways' (capture)"
}

# recovery FILE T0 T1: ms from T0 (the VM unplugged) to the first reply in
# ping -D output stamped after T1 (its port re-bound), or 99999.
recovery() {
	awk -F'[][]' -v t0="$2" -v t1="$3" '/bytes from/ && $2 > t1 {
		printf "%d\n", ($2 - t0) * 1000; found = 1; exit }
		END { if (!found) print 99999 }' "$1"
}

check_move() {
	STEP=migrate
	local out=$XV_TMP/move.ping pid ms port t0 t1
	port=$(xc_ctl "${TOK[t]}" port list | jq -er '.[] | select(.name == "a2") | .id') ||
		fail "port of a2"
	xv_in a1 ping -n -D -i 0.01 -w 6 "${XV_VM_IP[a2]}" >"$out" 2>&1 &
	pid=$!
	sleep 2
	t0=$(date +%s.%N)
	xv_vm_move a2 "${GW[0]}" || fail "replug a2 on ${GW[0]}"
	xc_ctl "${TOK[t]}" port update "$port" --node "${GW[0]}" \
		--ifname h-a2 >/dev/null || fail "re-bind port of a2"
	t1=$(date +%s.%N)
	wait "$pid"
	grep -q 'packets transmitted' "$out" || fail "no ping summary"
	ms=$(recovery "$out" "$t0" "$t1")
	[ "$ms" -lt 1000 ] ||
		fail "first reply ${ms} ms after the VM left $Y (want < 1000): $(tail -n 2 "$out" | head -n 1)"
	ok "a2 moved $Y -> ${GW[0]} under a 100/s ping: replies again ${ms} ms" \
		"after it left $Y ($(awk "BEGIN { printf \"%d\", ($t1 - $t0) * 1000 }") ms" \
		"of which re-plugging and the API call);" \
		"$(grep -o '[0-9]* received.*loss' "$out")"
}

check_gateway_loss() {
	STEP=gateway-down
	local dead=${GW[1]} now
	xa_kill "$dead" || fail "kill agent on $dead"
	xv_wait 20 eval '! gateways | grep -qx "$dead" && two_gateways' ||
		fail "no new gateway replaced $dead: $(gateways | tr '\n' ' ')"
	mapfile -t now < <(gateways)
	xc_vm "${TOK[t]}" "$S1" a3 "$X" || fail "port a3"
	xv_wait 10 xc_maps_match_api "$X" "$ADMIN" || fail "$X state"
	local target=$Y
	[[ " ${now[*]} " == *" $Y "* ]] && target=$X
	xc_vm "${TOK[t]}" "$S2" b2 "$target" || fail "port b2"
	first_ping a3 "${XV_VM_IP[b2]}" ||
		fail "miss a3 -> b2 not resolved after the gateway change"
	ok "agent on $dead killed: gateways now ${now[*]}; a new miss resolves"
}

# pushed_is NODE N: the node holds N pushed endpoints.
pushed_is() { [ "$(pushed_count "$1")" = "$2" ]; }

check_switch() {
	STEP=switch
	local all mine
	all=$(xc_ctl "${TOK[t]}" port list | jq 'length')
	mine=$(xc_ctl "${TOK[t]}" port list | jq --arg n "$X" '[.[] | select(.node == $n)] | length')
	xc_ctl "${TOK[t]}" vpc update "$VPC" --mode push >/dev/null ||
		fail "switch to push"
	xv_wait 10 pushed_is "$X" "$all" ||
		fail "push mode: $X holds $(pushed_count "$X") pushed endpoints, want $all"
	first_ping a1 "${XV_VM_IP[b2]}" || fail "push mode: a1 -> b2"
	xc_ctl "${TOK[t]}" vpc update "$VPC" --mode learn >/dev/null ||
		fail "switch back to learn"
	xv_wait 10 pushed_is "$X" "$mine" ||
		fail "learn mode again: $X holds $(pushed_count "$X"), want $mine"
	first_ping a1 "${XV_VM_IP[b2]}" || fail "learn mode again: a1 -> b2"
	ok "switched push -> learn at run time: $X held $all then $mine pushed" \
		"endpoints, traffic flowing in both modes"
}

xc_init
setup
check_not_pushed
check_first_packets
check_bypass
check_move
check_gateway_loss
check_switch
echo "learn ($LEARN_MODE): all checks passed"
