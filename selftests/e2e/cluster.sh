#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# End-to-end: the controller cluster on a three-member ZooKeeper ensemble.
#
#    zk1  zk2  zk3         ZooKeeper ensemble on 127.0.0.1 (zk_harness.sh)
#      \   |   /
#    c1   c2   c3          xvpc-controller --zookeeper, API on 127.0.0.1
#           |
#        xvpcctl           two tenants with overlapping VPCs (10.0.0.0/16)
#
# Steps: kill the leader controller (a new one leads, the others still
# answer, no acknowledged write is lost); kill one ZooKeeper member
# (nothing changes); kill a second (writes answer 503, reads still work);
# bring both back (writes resume, on the same controllers).
#
# Bounded: every wait has a limit (about three minutes in all); the trap
# stops the controllers (by pid) and the ensemble, also after a failure.
# Agents and traffic join later: add steps after `setup_tenants` that start
# agents against $API_LIST, and checks to `check_state`.
set -u
cd "$(dirname "$0")/../.."
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
	done
	exit 1
}

cleanup() {
	for i in 1 2 3; do
		[ -n "${CPID[$i]:-}" ] && kill "${CPID[$i]}" 2>/dev/null
	done
	for i in 1 2 3; do
		[ -n "${CPID[$i]:-}" ] && wait "${CPID[$i]}" 2>/dev/null
	done
	"$HARNESS" stop "$ZKDIR" >/dev/null 2>&1
	rm -rf "$WORK"
}
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

api() { echo "http://127.0.0.1:${CPORT[$1]}"; }

# ctl I TOKEN ARGS...: xvpcctl --json against controller I.
ctl() {
	local i=$1 tok=$2
	shift 2
	"$CTL" --json --api "$(api "$i")" --token "$tok" "$@"
}

start_controller() {
	local i=$1
	"$CTRL" --zookeeper "$ZK_HOSTS" --zk-root /e2e --admin-token "$ADMIN" \
		--listen "127.0.0.1:${CPORT[$i]}" --node-down-after 5 \
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

setup_ensemble
setup_tenants
check_state 1 2 3 || fail "ports differ between controllers"
# Overlap: both tenants got 10.0.1.2 in their own VPC, and neither sees the
# other's port.
[ "$(ctl 1 "$TOK_a" port list | json_field '[0]["ip"]')" = 10.0.1.2 ] &&
	[ "$(ctl 1 "$TOK_b" port list | json_field '[0]["ip"]')" = 10.0.1.2 ] ||
	fail "overlapping VPCs should both hand out 10.0.1.2"

STEP="kill the leader controller"
L=$(leader)
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
until_ok 10 check_state $(for i in 1 2 3; do [ -n "${CPID[$i]}" ] && echo "$i"; done) ||
	fail "an acknowledged port is missing"
ALIVE=$NL

STEP="kill one ZooKeeper member"
"$HARNESS" kill "$ZKDIR" 1 || fail "harness kill 1"
until_ok 20 new_port "$ALIVE" b || fail "writes stopped with 2 of 3 members"
check_state "$ALIVE" || fail "state changed with 2 of 3 members"

STEP="kill a second ZooKeeper member"
"$HARNESS" kill "$ZKDIR" 2 || fail "harness kill 2"
out=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $TOK_a" -d "{\"subnet\":$SUB_a}" \
	"$(api "$ALIVE")/v1/ports")
[ "$out" = 503 ] || fail "a write without quorum answered $out, not 503"
body=$(curl -s -X POST -H "Authorization: Bearer $TOK_a" \
	-d "{\"subnet\":$SUB_a}" "$(api "$ALIVE")/v1/ports")
echo "$body" | grep -q '"unavailable"' || fail "503 without a clear error: $body"
check_state "$ALIVE" || fail "reads failed without quorum"

STEP="bring the members back"
"$HARNESS" restart "$ZKDIR" 1 || fail "harness restart 1"
"$HARNESS" restart "$ZKDIR" 2 || fail "harness restart 2"
until_ok 60 new_port "$ALIVE" a || fail "writes did not resume"
ALIVE_ALL=$(for i in 1 2 3; do [ -n "${CPID[$i]}" ] && echo "$i"; done)
until_ok 30 check_state $ALIVE_ALL || {
	check_state $ALIVE_ALL
	fail "controllers did not converge after the quorum came back"
}
echo "PASS cluster: $ACKED ports acknowledged, none lost"
