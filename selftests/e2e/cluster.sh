#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# End-to-end: the controller cluster on a three-member ZooKeeper ensemble,
# driving three agents' datapaths.
#
#    zk1  zk2  zk3         ZooKeeper ensemble on 127.0.0.1 (zk_harness.sh)
#      \   |   /
#    c1   c2   c3          xvpc-controller --zookeeper, API on 169.254.M.1
#      \   |   /           (ctl_lib.sh: management links to the nodes)
#    n1   n2   n3          xvpc-agent --controller cK,... (each its own
#                          order), lib.sh's netns topology and VMs
#        xvpcctl           two tenants with overlapping VPCs (10.0.0.0/16)
#
# Steps: ports through xvpcctl become VMs on the three nodes (connectivity
# within and across subnets, isolation between the tenants; the time from
# a port's creation to its first ping is printed); kill the leader
# controller (a new one leads, the others still answer, no acknowledged
# write is lost, the agents fail over and a new port still reaches the
# datapath); kill one ZooKeeper member (nothing changes); kill a second
# (writes answer 503, reads still work, traffic keeps flowing without a
# lost packet); bring both back (writes resume, on the same controllers);
# SIGKILL an agent, change objects while it is down and while it starts:
# it catches up (its maps equal what the API says).
#
# Bounded: every wait has a limit (about two minutes in all); the trap
# stops the agents (and uninstalls their datapaths), the namespaces, the
# controllers (by pid) and the ensemble, also after a failure.
set -u
cd "$(dirname "$0")/../.."
. selftests/e2e/lib.sh
. selftests/e2e/agent_lib.sh
. selftests/e2e/ctl_lib.sh
ROOT=$PWD
CTL=$ROOT/bin/xvpcctl
CTRL=$ROOT/bin/xvpc-controller
HARNESS=$ROOT/tests/zk_harness.sh
ADMIN=e2e-admin-token-$$
WORK=$(mktemp -d /tmp/xvpc-cluster.XXXXXX)
ZKDIR=$WORK/zk
declare -a CPID CPORT
STEP=setup

fail() {
	echo "FAIL [$STEP]: $*" >&2
	for i in 1 2 3; do
		[ -f "$WORK/c$i.log" ] && tail -5 "$WORK/c$i.log" | sed "s/^/  c$i: /" >&2
		[ -f "$XV_TMP/agent-n$i.log" ] &&
			tail -5 "$XV_TMP/agent-n$i.log" | sed "s/^/  n$i: /" >&2
	done
	exit 1
}

cleanup() {
	xc_teardown
	for i in 1 2 3; do
		[ -n "${CPID[$i]:-}" ] && kill "${CPID[$i]}" 2>/dev/null
	done
	for i in 1 2 3; do
		[ -n "${CPID[$i]:-}" ] && wait "${CPID[$i]}" 2>/dev/null
	done
	"$HARNESS" stop "$ZKDIR" >/dev/null 2>&1
	rm -rf "$WORK"
}
xc_init
trap cleanup EXIT
trap 'exit 1' INT TERM

# until SECONDS CMD...: runs CMD every 0.2 s until it succeeds.
until_ok() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.2
	done
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

api() { echo "http://$XC_ADDR:${CPORT[$1]}"; }

# ctl I TOKEN ARGS...: xvpcctl --json against controller I.
ctl() {
	local i=$1 tok=$2
	shift 2
	"$CTL" --json --api "$(api "$i")" --token "$tok" "$@"
}

start_controller() {
	local i=$1
	"$CTRL" --zookeeper "$ZK_HOSTS" --zk-root /e2e --admin-token "$ADMIN" \
		--listen "$XC_ADDR:${CPORT[$i]}" --node-down-after 5 \
		>>"$WORK/c$i.log" 2>&1 &
	CPID[$i]=$!
}

# The controller whose log says it leads last, among those alive.
leader() {
	local i best="" when=""
	for i in 1 2 3; do
		[ -n "${CPID[$i]:-}" ] || continue
		local t
		t=$(grep "now leads" "$WORK/c$i.log" | tail -1 | cut -d' ' -f1)
		if [ -n "$t" ] && [[ -z "$when" || "$t" > "$when" ]]; then
			best=$i
			when=$t
		fi
	done
	echo "$best"
}

has_leader() { [ -n "$(leader)" ]; }

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# Three nodes on the underlay, each with a management link to the
# controllers' address.
setup_nodes() {
	STEP="nodes"
	xv_underlay && xv_node n1 $XV_UL_NET.1 && xv_node n2 $XV_UL_NET.2 &&
		xv_node n3 $XV_UL_NET.3 && xv_node_neighs && xc_mgmt_all ||
		fail "topology"
}

setup_ensemble() {
	STEP="start ZooKeeper"
	ZK_HOSTS=$("$HARNESS" start 3 "$ZKDIR" $$) || fail "ensemble did not start"
	STEP="start controllers"
	for i in 1 2 3; do
		CPORT[$i]=$(free_port)
		start_controller "$i"
	done
	for i in 1 2 3; do
		until_ok 30 curl -sf "$(api "$i")/v1/openapi.json" ||
			fail "controller $i does not answer"
	done
	until_ok 10 has_leader || fail "no leader elected"
}

# Two tenants, each with a VPC 10.0.0.0/16 (overlapping on purpose), a
# subnet and a port bound to node n1.
setup_tenants() {
	STEP="tenants"
	ctl 1 "$ADMIN" node create n1 --ip 192.168.250.1 >/dev/null ||
		fail "node create"
	for t in a b; do
		local out
		out=$(ctl 2 "$ADMIN" tenant create "tenant-$t") || fail "tenant $t"
		eval "TOK_$t=$(echo "$out" | json_field '["token"]')"
	done
	ctl 1 "$TOK_a" vpc create va --cidr 10.0.0.0/16 >/dev/null || fail "vpc a"
	ctl 2 "$TOK_b" vpc create vb --cidr 10.0.0.0/16 >/dev/null || fail "vpc b"
	VPC_a=$(ctl 3 "$TOK_a" vpc list | json_field '[0]["id"]')
	VPC_b=$(ctl 3 "$TOK_b" vpc list | json_field '[0]["id"]')
	SUB_a=$(ctl 3 "$TOK_a" subnet create --vpc "$VPC_a" --cidr 10.0.1.0/24 |
		json_field '["id"]') || fail "subnet a"
	SUB_b=$(ctl 1 "$TOK_b" subnet create --vpc "$VPC_b" --cidr 10.0.1.0/24 |
		json_field '["id"]') || fail "subnet b"
	ACKED=0
	for i in 1 2 3; do
		new_port "$i" a || fail "port a on c$i"
		new_port "$i" b || fail "port b on c$i"
	done
}

# new_port I TENANT: a port created through controller I; counted once
# acknowledged.
new_port() {
	local tok sub
	eval "tok=\$TOK_$2 sub=\$SUB_$2"
	ctl "$1" "$tok" port create --subnet "$sub" --node n1 \
		--ifname "v$2$ACKED" >/dev/null || return 1
	ACKED=$((ACKED + 1))
}

# Every controller given answers with the same ports, and none of the
# acknowledged ones is missing. A write answered 503 "outcome_unknown" (the
# connection broke mid-commit) may have been applied: more is allowed, never
# less.
check_state() {
	local i n first=
	for i in "$@"; do
		n=$(($(ctl "$i" "$TOK_a" port list | json_field '.__len__()') +
			$(ctl "$i" "$TOK_b" port list | json_field '.__len__()')))
		[ "$n" -ge "$ACKED" ] ||
			{ echo "c$i has $n ports, $ACKED acknowledged" >&2; return 1; }
		[ -z "$first" ] || [ "$n" -eq "$first" ] ||
			{ echo "c$i has $n ports, another member $first" >&2; return 1; }
		first=$n
	done
}

# --- agents and VMs ---------------------------------------------------------

# alive: the controllers still running.
alive() {
	local i
	for i in 1 2 3; do
		[ -n "${CPID[$i]:-}" ] && echo "$i"
	done
}

# use_api I: xvpcctl (through ctl_lib.sh's xc_*) talks to controller I.
use_api() { XC_API=$(api "$1"); }

# declare_subnet TOKEN ID: an existing subnet, declared to lib.sh.
declare_subnet() {
	local out
	out=$(xc_ctl "$1" subnet show "$2") || return 1
	xv_subnet "$(jq -r .vpc <<<"$out")" "$(jq -r .cidr <<<"$out")" \
		"$(jq -r .vni <<<"$out")" "$(jq -r .gateway_ip <<<"$out")" \
		"$(jq -r .gateway_mac <<<"$out")"
}

# vm TENANT SUBNET NAME NODE IP: a port through xvpcctl, then its VM;
# counted as acknowledged.
vm() {
	local tok
	eval "tok=\$TOK_$1"
	xc_vm "$tok" "$2" "$3" "$4" "$5" || return 1
	ACKED=$((ACKED + 1))
	PORT_ID[$3]=$XC_ID
}

# maps_match_all: every agent's maps equal what the API says for its node.
maps_match_all() {
	local n
	for n in n1 n2 n3; do
		xa_alive "$n" || continue
		xc_maps_match_api "$n" "$ADMIN" || return 1
	done
}

# agent_urls K: controllers for node K's agent, starting with cK.
agent_urls() {
	local k=$1 j urls=
	for j in 0 1 2; do
		urls+=${urls:+,}$(api $(((k - 1 + j) % 3 + 1)))
	done
	echo "$urls"
}

# endpoint_in NODE VPC IP: the node's datapath holds that endpoint.
endpoint_in() {
	xa_ctl "$1" map dump xvpc_endpoints |
		jq -e --argjson v "$2" --arg ip "$3" \
			'any(.entries[]; .vpc == $v and .ip == $ip)' >/dev/null
}

# timed_vm TENANT SUBNET NAME NODE IP FROM: the VM first (no port yet: its
# interface is bound to nothing), then the port through xvpcctl and the
# port's MAC on the VM. Prints how long the API call took, when the node's
# agent applied the change (its log's timestamp, ms), and when FROM's first
# ping was answered, all counted from the start of the API call.
timed_vm() {
	local t=$1 sub=$2 name=$3 node=$4 ip=$5 from=$6 tok vpc t0 t1 ta tp end
	eval "tok=\$TOK_$t"
	vpc=$(xc_ctl "$tok" subnet show "$sub" | jq -r .vpc) || return 1
	xv_vm "$name" "$node" "$vpc" "$ip" 02:00:ff:ff:ff:ff || return 1
	t0=$(xc_now_ms)
	xc_port "$tok" "$sub" "$name" "$node" "$ip" || return 1
	t1=$(xc_now_ms)
	ACKED=$((ACKED + 1))
	PORT_ID[$name]=$XC_ID
	XV_VM_MAC[$name]=$(jq -r .mac <<<"$XC_PORT")
	xv_in "$name" ip link set eth0 address "${XV_VM_MAC[$name]}" || return 1
	end=$((SECONDS + 10))
	until endpoint_in "$node" "$vpc" "$ip"; do
		[ $SECONDS -lt $end ] ||
			{ echo "$name not in $node's map within 10 s"; return 1; }
	done
	ta=$(xc_applied_ms "$node" "$t0") ||
		{ echo "no state applied in $node's agent log after $t0:"; tail -n 5 "$XV_TMP/agent-$node.log"; return 1; }
	xc_wait_ping 10 "$from" "$ip" >/dev/null ||
		{ echo "$from cannot ping $name ($ip) within 10 s"; return 1; }
	tp=$(xc_now_ms)
	echo "port $name ($ip on $node): API call $((t1 - t0)) ms; applied by $node's agent at +$((ta - t0)) ms; first ping from $from answered at +$((tp - t0)) ms"
}

# setup_datapath: a second subnet per tenant, an agent per node, VMs.
#   a1 n1 10.0.1.101   a2 n2 10.0.1.102   a3 n3 10.0.2.101   (tenant a)
#   b1 n2 10.0.1.101   b3 n3 10.0.1.102   b2 n1 10.0.2.101   (tenant b)
setup_datapath() {
	STEP="agents and VMs"
	use_api 1
	declare_subnet "$TOK_a" "$SUB_a" && declare_subnet "$TOK_b" "$SUB_b" ||
		fail "subnets"
	xc_subnet "$TOK_a" "$VPC_a" 10.0.2.0/24 a-2 || fail "subnet a 2"
	SUB2_a=$XC_ID
	xc_subnet "$TOK_b" "$VPC_b" 10.0.2.0/24 b-2 || fail "subnet b 2"
	SUB2_b=$XC_ID
	for k in 1 2 3; do
		xc_agent_start "n$k" tc "$(agent_urls "$k")" "$ADMIN" ||
			fail "agent on n$k"
	done
	vm a "$SUB_a" a1 n1 10.0.1.101 && vm a "$SUB_a" a2 n2 10.0.1.102 &&
		vm a "$SUB2_a" a3 n3 10.0.2.101 && vm b "$SUB_b" b1 n2 10.0.1.101 &&
		vm b "$SUB_b" b3 n3 10.0.1.102 && vm b "$SUB2_b" b2 n1 10.0.2.101 ||
		fail "VMs"
	xv_wait 15 maps_match_all || {
		maps_match_all
		fail "the agents did not apply the API's state within 15 s"
	}
	for vm in a1 a2 a3 b1 b2 b3; do
		xv_whoami_start "$vm"
	done
}

check_traffic() {
	xv_check "$1: a1 -> a2 (tenant a, same subnet, n1 -> n2)" xv_ping a1 10.0.1.102
	xv_check "$1: a1 -> a3 (tenant a, routed, n1 -> n3)" xv_ping a1 10.0.2.101
	xv_check "$1: b1 -> b2 (tenant b, routed, n2 -> n1)" xv_ping b1 10.0.2.101
	xv_check "$1: b3 -> b1 (tenant b, same subnet, n3 -> n2)" xv_ping b3 10.0.1.101
}

# isolated: a1 reaches 10.0.1.102 of tenant a (a2), never b3 with the same
# address; b1 reaches b2's 10.0.2.101, never a3's.
isolated() {
	local before
	before=$(xv_rx b3)
	xv_expect_whoami a1 10.0.1.102 a2 || return 1
	xv_expect_whoami b1 10.0.2.101 b2 || return 1
	xv_ping a1 10.0.1.102 || return 1
	[ "$(xv_rx b3)" = "$before" ] ||
		{ echo "b3 received $(($(xv_rx b3) - before)) packets meant for a2"; return 1; }
}

# timed DESCRIPTION TIMED_VM-ARGS...: timed_vm as a check, in this shell
# (it adds a VM and a port), and its measurement printed.
timed() {
	local desc=$1
	shift
	xa_do "$desc" timed_vm "$@"
	grep '^port ' "$XV_TMP/step.log" | sed 's/^/     /'
}

# port_gone TOKEN ID: delete the port; done when the delete succeeds or
# the port is no more (a delete answered 503 may have been applied).
port_gone() {
	local out
	out=$(xc_ctl "$1" port delete "$2" 2>&1) && return 0
	xc_ctl "$1" port show "$2" >/dev/null 2>&1 || return 0
	echo "$out"
	return 1
}

# failovers NODE: how many times the agent's log says it moved to another
# controller.
failovers() { grep -c 'failover to' "$XV_TMP/agent-$1.log"; }

# failed_over NODE BEFORE: it moved since it had BEFORE.
failed_over() { [ "$(failovers "$1")" -gt "$2" ]; }

declare -A PORT_ID
setup_nodes
setup_ensemble
setup_tenants
check_state 1 2 3 || fail "ports differ between controllers"
# Overlap: both tenants got 10.0.1.2 in their own VPC, and neither sees the
# other's port.
[ "$(ctl 1 "$TOK_a" port list | json_field '[0]["ip"]')" = 10.0.1.2 ] &&
	[ "$(ctl 1 "$TOK_b" port list | json_field '[0]["ip"]')" = 10.0.1.2 ] ||
	fail "overlapping VPCs should both hand out 10.0.1.2"

setup_datapath
check_traffic "ports from the API"
xv_check "isolation between the overlapping VPCs" isolated
STEP="a port reaches the datapath"
timed "a new port reaches the datapath" a "$SUB2_a" a4 n2 10.0.2.102 a1

STEP="kill the leader controller"
L=$(leader)
FAILOVERS=$(failovers "n$L")
T_KILL=$(xc_now_ms)
kill -9 "${CPID[$L]}" 2>/dev/null
wait "${CPID[$L]}" 2>/dev/null || true
CPID[$L]=""
# The killed member's ephemeral node goes with its session (timeout).
until_ok 30 has_leader || fail "no new leader after c$L died"
NL=$(leader)
[ "$NL" != "$L" ] || fail "c$L still the leader"
echo "leader c$L killed, c$NL leads"
for i in 1 2 3; do
	[ -n "${CPID[$i]}" ] || continue
	new_port "$i" a || fail "write through c$i after the leader died"
done
mapfile -t ALIVE_ALL < <(alive)
until_ok 10 check_state "${ALIVE_ALL[@]}" || fail "an acknowledged port is missing"
ALIVE=$NL
use_api "$ALIVE"
# The agent on nL started with cL first in its list.
xv_check "agent n$L failed over from c$L" xv_wait 15 failed_over "n$L" "$FAILOVERS"
# (Its log says "connected to" only at the first answer of the long-poll
# on the new controller, which comes with the next change for the node.)
if T=$(xc_log_ms "n$L" "$T_KILL" 'failover to'); then
	echo "     agent n$L was polling another controller $((T - T_KILL)) ms after c$L was killed"
fi
timed "after the leader died: a new port on n$L reaches the datapath" \
	b "$SUB2_b" b4 "n$L" 10.0.2.102 b1
xv_check "after the leader died: every agent holds what the API says" \
	xv_wait 15 maps_match_all
check_traffic "after the leader died"

STEP="kill one ZooKeeper member"
"$HARNESS" kill "$ZKDIR" 1 || fail "harness kill 1"
until_ok 20 new_port "$ALIVE" b || fail "writes stopped with 2 of 3 members"
check_state "$ALIVE" || fail "state changed with 2 of 3 members"

STEP="kill a second ZooKeeper member"
xa_ping_start a1 10.0.2.101
PING=$XA_PING_PID
"$HARNESS" kill "$ZKDIR" 2 || fail "harness kill 2"
out=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $TOK_a" -d "{\"subnet\":$SUB_a}" \
	"$(api "$ALIVE")/v1/ports")
[ "$out" = 503 ] || fail "a write without quorum answered $out, not 503"
body=$(curl -s -X POST -H "Authorization: Bearer $TOK_a" \
	-d "{\"subnet\":$SUB_a}" "$(api "$ALIVE")/v1/ports")
# "unavailable" once the member knows the quorum is gone; "outcome_unknown"
# when the connection broke under a commit that was already sent. Both are
# 503 with a message that says what happened and what to do.
echo "$body" | grep -q -e '"unavailable"' -e '"outcome_unknown"' ||
	fail "503 without a clear error: $body"
check_state "$ALIVE" || fail "reads failed without quorum"
sleep 3
check_traffic "without quorum"
xa_ping_stop "$PING"
xv_check "without quorum: a 100/s ping stream a1 -> a3 lost nothing" \
	xa_ping_lossless a1 10.0.2.101

STEP="bring the members back"
"$HARNESS" restart "$ZKDIR" 1 || fail "harness restart 1"
"$HARNESS" restart "$ZKDIR" 2 || fail "harness restart 2"
until_ok 60 new_port "$ALIVE" a || fail "writes did not resume"
until_ok 30 check_state "${ALIVE_ALL[@]}" || {
	check_state "${ALIVE_ALL[@]}"
	fail "controllers did not converge after the quorum came back"
}

STEP="restart an agent while objects change"
# n3's agent is SIGKILLed; while it is down a port on n3 is deleted and
# one made, and while it starts more change; it must end up with exactly
# what the API says, and forward for the new port.
xa_kill n3
# Writes may still meet a 503 while the ensemble settles: retried, the
# delete until the port is gone, creations with an idempotency key.
export XC_TRIES=20
until_ok 20 port_gone "$TOK_b" "${PORT_ID[b3]}" || {
	port_gone "$TOK_b" "${PORT_ID[b3]}"
	fail "delete port b3"
}
ACKED=$((ACKED - 1))
vm a "$SUB_a" a5 n3 10.0.1.105 || fail "port a5 on n3"
XC_NOWAIT=1 xc_agent_start n3 tc "$(agent_urls 3)" "$ADMIN" ||
	fail "agent n3 restart"
until_ok 20 new_port "$ALIVE" a && vm b "$SUB2_b" b5 n3 10.0.2.105 &&
	until_ok 20 new_port "$ALIVE" b || fail "changes while n3's agent starts"
xv_check "restarted agent n3 is up" xv_wait 20 xc_agent_up n3
xv_check "restarted agent n3 caught up: its maps equal what the API says" \
	xv_wait 15 xc_maps_match_api n3 "$ADMIN"
xv_check "after the restart: every agent holds what the API says" \
	xv_wait 15 maps_match_all
xv_check "after the restart: a1 -> a5 (new port on n3)" xv_ping a1 10.0.1.105
xv_check "after the restart: b1 -> b5 (new port on n3)" xv_ping b1 10.0.2.105
xv_check "after the restart: b3's port is gone" xv_no_ping b1 10.0.1.102
xv_check "after the restart: a3 -> a1 (n3 -> n1)" xv_ping a3 10.0.1.101
xv_check "after the restart: a1 -> a2 (n1 -> n2)" xv_ping a1 10.0.1.102
echo "PASS cluster: $ACKED ports acknowledged, none lost"
xv_summary
