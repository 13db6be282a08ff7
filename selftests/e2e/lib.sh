# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# shellcheck disable=SC2034 # XV_* tables are read by the scripts that source this
#
# Network-namespace topology helpers for the end-to-end tests, the datapath
# benchmark and the demo. Source it from bash; nothing runs at source time.
#
#                        namespace xv<run>-ul ("underlay")
#                 +-----------------------------------------------+
#                 |                 br0 (Linux bridge)            |
#                 |     p-n1            p-n2            p-n3      |
#                 +------|---------------|---------------|--------+
#                        | veth          | veth          | veth
#                 +------|------+ +------|------+ +------|------+
#   namespace     | ul0 .250.1  | | ul0 .250.2  | | ul0 .250.3  |  xv<run>-n1..
#   xv<run>-nN    |  (tc or XDP | |             | |             |  one per node
#   ("node")      |  decap)     | |             | |             |
#                 | h-a1  h-b1  | | h-a2  h-b3  | | h-a3  h-b2  |  host sides,
#                 +--|-----|----+ +--|-----|----+ +--|-----|----+  tc ingress =
#                    |     |         |     |         |     |       endpoint prog
#   namespace      eth0  eth0      eth0  eth0      eth0  eth0
#   xv<run>-VM    (a1)  (b1)      (a2)  (b3)      (a3)  (b2)     one per "VM"
#
# Underlay: 192.168.250.0/24, MTU 1500, node MACs 02:fe:00:00:00:NN, static
# (permanent) neighbour entries between all nodes, IPv6 off in every
# namespace: the only frames that may cross br0 are the overlay's own.
# VMs: address/prefix of their subnet, MAC 02:00:00:<vpc>:<ip3>:<ip4>,
# default route via the subnet gateway, MTU 1500 - 50.
#
# Names carry a per-run suffix (XV_RUN), so parallel runs never collide;
# interface names inside the namespaces are fixed. xv_init installs a trap
# that tears everything down on EXIT, INT and TERM, also after a failure:
# background processes (by process group), agents (--uninstall), pin
# directories and namespaces.
#
# Typical use:
#	. selftests/e2e/lib.sh
#	xv_init
#	xv_underlay
#	xv_node n1 192.168.250.1; xv_node n2 192.168.250.2; xv_node_neighs
#	xv_vpc 1 blue
#	xv_subnet 1 10.0.1.0/24 101 10.0.1.1
#	xv_vm a1 n1 1 10.0.1.10; xv_vm a2 n2 1 10.0.1.11
#	xv_agent_all tc
#	xv_in a1 ping -c 1 10.0.1.11

XV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
XV_AGENT=${XV_AGENT:-$XV_ROOT/bin/xvpc-agent}
XV_UL_MTU=1500
XV_VM_MTU=$((XV_UL_MTU - 50))
XV_UL_NET=192.168.250

XV_RUN=
XV_TMP=
XV_UL_NS=
XV_NODES=()
XV_VMS=()
XV_VPCS=()    # "id name"
XV_SUBNETS=() # "vpc cidr vni gw gwmac"
XV_PGIDS=()   # process groups started with xv_bg
XV_TORN=0
declare -A XV_NODE_NS XV_NODE_IP XV_NODE_MAC XV_NODE_PIN XV_NODE_MODE
declare -A XV_VM_NS XV_VM_NODE XV_VM_VPC XV_VM_IP XV_VM_PLEN XV_VM_GW \
	XV_VM_MAC XV_VM_HOSTIF XV_VM_VNI

xv_log() { printf '%s\n' "$*"; }
xv_err() { printf 'error: %s\n' "$*" >&2; }
# Quiet unless XV_VERBOSE=1: the output of setup commands.
xv_q() {
	if [ "${XV_VERBOSE:-0}" = 1 ]; then
		"$@"
	else
		"$@" >/dev/null 2>&1
	fi
}

# Run (or fail loudly): setup steps that must work.
xv_must() {
	local out
	if ! out=$("$@" 2>&1); then
		xv_err "'$*' failed: $out"
		return 1
	fi
}

# xv_sweep: what earlier runs killed outright (SIGKILL runs no trap) left:
# a run's scratch directory names its owner (the script's pid); when that
# process is gone, its namespaces (xv<run>-*), its pins and the directory go.
xv_sweep() {
	local d run pid ns
	for d in /tmp/xvpc-e2e-?????.*; do
		[ -f "$d/owner" ] || continue
		pid=$(cat "$d/owner")
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && continue
		run=${d#/tmp/xvpc-e2e-}
		run=${run%%.*}
		for ns in $(ip netns list | awk '{print $1}' | grep "^xv$run-"); do
			xv_delete_ns "$ns"
		done
		[ -n "$pid" ] && rm -rf /sys/fs/bpf/xvpc-e2e-"$pid"-* 2>/dev/null
		rm -rf "$d"
		echo "swept what run $run (pid $pid, gone) left behind" >&2
	done
}

# xv_init: run id, scratch directory and the teardown trap.
xv_init() {
	[ "$(id -u)" = 0 ] || { xv_err "must run as root"; exit 1; }
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	xv_sweep
	XV_RUN=$(head -c 64 /dev/urandom | tr -dc 'a-z0-9' | head -c 5)
	[ ${#XV_RUN} -eq 5 ] || XV_RUN=$(printf '%05d' $((RANDOM % 100000)))
	XV_TMP=$(mktemp -d "/tmp/xvpc-e2e-$XV_RUN.XXXXXX")
	echo $$ >"$XV_TMP/owner"
	XV_TORN=0
	trap 'xv_teardown' EXIT
	trap 'xv_teardown; exit 130' INT
	trap 'xv_teardown; exit 143' TERM
}

# xv_wait SECONDS CMD...: poll CMD every 0.1 s until it succeeds; 1 on timeout.
xv_wait() {
	local deadline=$((SECONDS + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.1
	done
}

# xv_ns NAME: create a namespace with IPv6 off and loopback up.
xv_ns() {
	xv_must ip netns add "$1" || return 1
	xv_must ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 || return 1
	xv_must ip -n "$1" link set lo up
}

# xv_underlay: the underlay namespace and its bridge.
xv_underlay() {
	XV_UL_NS=xv$XV_RUN-ul
	xv_ns "$XV_UL_NS" || return 1
	xv_must ip -n "$XV_UL_NS" link add br0 type bridge stp_state 0 \
		mcast_snooping 0 || return 1
	xv_must ip -n "$XV_UL_NS" link set br0 up
}

# xv_node NAME IP: a node namespace with underlay interface ul0 on br0.
xv_node() {
	local name=$1 ip=$2 ns=xv$XV_RUN-$1 n=$((${#XV_NODES[@]} + 1))
	local mac
	mac=$(printf '02:fe:00:00:00:%02x' "$n")
	xv_ns "$ns" || return 1
	XV_NODES+=("$name")
	XV_NODE_NS[$name]=$ns
	XV_NODE_IP[$name]=$ip
	XV_NODE_MAC[$name]=$mac
	xv_must ip -n "$XV_UL_NS" link add "p-$name" mtu $XV_UL_MTU type veth \
		peer name ul0 netns "$ns" || return 1
	xv_must ip -n "$XV_UL_NS" link set "p-$name" master br0 up || return 1
	xv_must ip -n "$ns" link set ul0 address "$mac" mtu $XV_UL_MTU up ||
		return 1
	xv_must ip -n "$ns" addr add "$ip/24" dev ul0 || return 1
	xv_must ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
}

# xv_node_neighs: permanent neighbour entries between all nodes (no ARP).
xv_node_neighs() {
	local a b
	for a in "${XV_NODES[@]}"; do
		for b in "${XV_NODES[@]}"; do
			[ "$a" = "$b" ] && continue
			xv_must ip -n "${XV_NODE_NS[$a]}" neigh replace \
				"${XV_NODE_IP[$b]}" lladdr "${XV_NODE_MAC[$b]}" \
				dev ul0 nud permanent || return 1
		done
	done
}

xv_ip2int() {
	local IFS=.
	# shellcheck disable=SC2086
	set -- $1
	echo $((($1 << 24) | ($2 << 16) | ($3 << 8) | $4))
}

# xv_in_cidr IP CIDR
xv_in_cidr() {
	local net=${2%/*} plen=${2#*/} mask
	mask=$(((0xffffffff << (32 - plen)) & 0xffffffff))
	[ $(($(xv_ip2int "$1") & mask)) -eq $(($(xv_ip2int "$net") & mask)) ]
}

# xv_vpc ID NAME
xv_vpc() { XV_VPCS+=("$1 $2"); }

# xv_subnet VPC CIDR VNI GATEWAY_IP [GATEWAY_MAC]
xv_subnet() {
	local mac=${5:-$(printf '02:78:76:70:%02x:%02x' $((($3 >> 8) & 255)) \
		$(($3 & 255)))}
	XV_SUBNETS+=("$1 $2 $3 $4 $mac")
}

# xv_vm NAME NODE VPC IP [MAC]: a VM namespace plugged into NODE. The
# address must lie in a subnet of VPC declared with xv_subnet.
xv_vm() {
	local name=$1 node=$2 vpc=$3 ip=$4 mac=${5:-} ns=xv$XV_RUN-$1 s found=
	local svpc cidr vni gw gmac o3 o4
	for s in "${XV_SUBNETS[@]}"; do
		read -r svpc cidr vni gw gmac <<<"$s"
		if [ "$svpc" = "$vpc" ] && xv_in_cidr "$ip" "$cidr"; then
			found=1
			break
		fi
	done
	[ -n "$found" ] || { xv_err "vm $name: $ip in no subnet of vpc $vpc"; return 1; }
	[ -n "${XV_NODE_NS[$node]:-}" ] || { xv_err "vm $name: no node $node"; return 1; }
	if [ -z "$mac" ]; then
		IFS=. read -r _ _ o3 o4 <<<"$ip"
		mac=$(printf '02:00:00:%02x:%02x:%02x' $((vpc & 255)) "$o3" "$o4")
	fi
	xv_ns "$ns" || return 1
	XV_VMS+=("$name")
	XV_VM_NS[$name]=$ns
	XV_VM_NODE[$name]=$node
	XV_VM_VPC[$name]=$vpc
	XV_VM_IP[$name]=$ip
	XV_VM_PLEN[$name]=${cidr#*/}
	XV_VM_GW[$name]=$gw
	XV_VM_VNI[$name]=$vni
	XV_VM_MAC[$name]=$mac
	XV_VM_HOSTIF[$name]=h-$name
	xv_must ip -n "${XV_NODE_NS[$node]}" link add "h-$name" mtu $XV_VM_MTU \
		type veth peer name eth0 netns "$ns" || return 1
	xv_must ip -n "${XV_NODE_NS[$node]}" link set "h-$name" up || return 1
	xv_must ip -n "$ns" link set eth0 address "$mac" mtu $XV_VM_MTU up ||
		return 1
	xv_must ip -n "$ns" addr add "$ip/${cidr#*/}" dev eth0 || return 1
	xv_must ip -n "$ns" route add default via "$gw" dev eth0
}

# xv_vm_move VM NODE: live migration as the overlay sees it: the VM's
# namespace keeps its address, MAC and routes; its link to the old node is
# deleted and a new one made to NODE (host side h-VM again).
xv_vm_move() {
	local name=$1 node=$2 ns=${XV_VM_NS[$1]} old=${XV_VM_NODE[$1]}
	[ -n "${XV_NODE_NS[$node]:-}" ] || { xv_err "move $name: no node $node"; return 1; }
	xv_must ip -n "${XV_NODE_NS[$old]}" link del "h-$name" || return 1
	xv_must ip -n "${XV_NODE_NS[$node]}" link add "h-$name" mtu $XV_VM_MTU \
		type veth peer name eth0 netns "$ns" || return 1
	xv_must ip -n "${XV_NODE_NS[$node]}" link set "h-$name" up || return 1
	xv_must ip -n "$ns" link set eth0 address "${XV_VM_MAC[$name]}" \
		mtu $XV_VM_MTU up || return 1
	xv_must ip -n "$ns" addr add "${XV_VM_IP[$name]}/${XV_VM_PLEN[$name]}" \
		dev eth0 || return 1
	xv_must ip -n "$ns" route add default via "${XV_VM_GW[$name]}" dev eth0 ||
		return 1
	# XDP_REDIRECT into a veth needs NAPI on the receiving side.
	[ "${XV_NODE_MODE[$node]:-tc}" = xdp ] && xv_q xv_in "$name" ethtool -K eth0 gro on
	XV_VM_NODE[$name]=$node
}

# xv_in VM|NODE|ul CMD...: run CMD inside that namespace.
xv_in() {
	local ns
	ns=$(xv_nsof "$1") || return 1
	shift
	ip netns exec "$ns" "$@"
}

xv_nsof() {
	if [ -n "${XV_VM_NS[$1]:-}" ]; then
		echo "${XV_VM_NS[$1]}"
	elif [ -n "${XV_NODE_NS[$1]:-}" ]; then
		echo "${XV_NODE_NS[$1]}"
	elif [ "$1" = ul ]; then
		echo "$XV_UL_NS"
	else
		xv_err "no namespace for '$1'"
		return 1
	fi
}

# xv_bg NAME LOG CMD...: start CMD in NAME's namespace in its own process
# group, output to LOG; teardown kills the group. Sets XV_BG_PID.
xv_bg() {
	local ns log=$2
	ns=$(xv_nsof "$1") || return 1
	shift 2
	setsid ip netns exec "$ns" "$@" >"$log" 2>&1 </dev/null &
	XV_BG_PID=$!
	XV_PGIDS+=("$XV_BG_PID")
}

# xv_stop PID: end a process group started with xv_bg and reap it.
xv_stop() {
	kill -TERM -- "-$1" 2>/dev/null
	local i
	for i in $(seq 30); do
		kill -0 -- "-$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$1" 2>/dev/null
	wait "$1" 2>/dev/null
	local keep=() p
	for p in "${XV_PGIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	XV_PGIDS=("${keep[@]}")
	return 0
}

# xv_rx VM: packets received on the VM's eth0.
xv_rx() {
	xv_in "$1" cat /sys/class/net/eth0/statistics/rx_packets
}

# xv_state NODE FILE: the node's desired state (docs/state-format.md).
xv_state() {
	local node=$1 file=$2 s v sep id name svpc cidr vni gw gmac vm ifn
	{
		printf '{\n  "revision": 1,\n  "vpcs": [\n'
		sep=
		for v in "${XV_VPCS[@]}"; do
			read -r id name <<<"$v"
			printf '%s    { "id": %s, "name": "%s" }' "$sep" "$id" "$name"
			sep=$',\n'
		done
		printf '\n  ],\n  "subnets": [\n'
		sep=
		for s in "${XV_SUBNETS[@]}"; do
			read -r svpc cidr vni gw gmac <<<"$s"
			printf '%s    { "vpc": %s, "cidr": "%s", "vni": %s, "gateway_ip": "%s", "gateway_mac": "%s" }' \
				"$sep" "$svpc" "$cidr" "$vni" "$gw" "$gmac"
			sep=$',\n'
		done
		printf '\n  ],\n  "endpoints": [\n'
		sep=
		for vm in "${XV_VMS[@]}"; do
			ifn=
			[ "${XV_VM_NODE[$vm]}" = "$node" ] &&
				ifn=", \"ifname\": \"${XV_VM_HOSTIF[$vm]}\""
			printf '%s    { "vpc": %s, "ip": "%s", "mac": "%s", "node_ip": "%s"%s }' \
				"$sep" "${XV_VM_VPC[$vm]}" "${XV_VM_IP[$vm]}" \
				"${XV_VM_MAC[$vm]}" "${XV_NODE_IP[${XV_VM_NODE[$vm]}]}" "$ifn"
			sep=$',\n'
		done
		printf '\n  ]\n}\n'
	} >"$file"
}

# xv_agent_supports OPTION: does the agent's usage mention OPTION?
xv_agent_supports() {
	[ -x "$XV_AGENT" ] && "$XV_AGENT" --help 2>&1 | grep -q -e "$1"
}

# xv_agent NODE [tc|xdp]: write the node's state and run the agent once;
# it attaches the datapath and leaves it pinned under the node's pin dir.
xv_agent() {
	local node=$1 mode=${2:-tc} ns=${XV_NODE_NS[$1]} pin state vm out
	local extra=()
	pin=/sys/fs/bpf/xvpc-e2e-$$-$node
	state=$XV_TMP/state-$node.json
	[ -x "$XV_AGENT" ] || { xv_err "$XV_AGENT not built (make all)"; return 1; }
	xv_state "$node" "$state"
	[ "$mode" = tc ] || extra=(--underlay-mode "$mode")
	XV_NODE_PIN[$node]=$pin
	XV_NODE_MODE[$node]=$mode
	if [ "$mode" = xdp ]; then
		# XDP_REDIRECT into a veth needs NAPI on the receiving side.
		for vm in "${XV_VMS[@]}"; do
			[ "${XV_VM_NODE[$vm]}" = "$node" ] &&
				xv_q xv_in "$vm" ethtool -K eth0 gro on
		done
	fi
	if ! out=$(timeout 30 nsenter --net="/run/netns/$ns" "$XV_AGENT" --once \
		--node-name "$node" --underlay ul0 --node-ip "${XV_NODE_IP[$node]}" \
		--pin-dir "$pin" --state "$state" "${extra[@]}" 2>&1); then
		xv_err "agent on $node ($mode) failed:"
		printf '%s\n' "$out" | sed 's/^/    | /' >&2
		return 1
	fi
	[ "${XV_VERBOSE:-0}" = 1 ] && printf '%s\n' "$out" | sed "s/^/    $node| /"
	return 0
}

# xv_agent_all [tc|xdp]: run the agent on every node.
xv_agent_all() {
	local n
	for n in "${XV_NODES[@]}"; do
		xv_agent "$n" "${1:-tc}" || return 1
	done
}

# xv_uninstall NODE: detach and unpin the node's datapath.
xv_uninstall() {
	local node=$1 pin=${XV_NODE_PIN[$1]:-} ns=${XV_NODE_NS[$1]}
	[ -n "$pin" ] || return 0
	if [ -x "$XV_AGENT" ] && [ -e "/run/netns/$ns" ]; then
		timeout 20 nsenter --net="/run/netns/$ns" "$XV_AGENT" --uninstall \
			--pin-dir "$pin" --underlay ul0 >/dev/null 2>&1 ||
			xv_err "agent --uninstall on $node failed (removing pins anyway)"
	fi
	rm -rf "$pin"
	unset "XV_NODE_PIN[$node]"
}

# xv_delete_ns NS: kill what still runs in it (ours: it is our namespace),
# then delete it.
xv_delete_ns() {
	local ns=$1 p
	[ -e "/run/netns/$ns" ] || return 0
	for p in $(ip netns pids "$ns" 2>/dev/null); do
		kill -KILL "$p" 2>/dev/null
	done
	ip netns del "$ns" 2>/dev/null || xv_err "could not delete namespace $ns"
}

# xv_teardown: everything xv_* created, in reverse. Idempotent; also safe
# after a partial setup. Called by the trap.
xv_teardown() {
	local rc=$? p n vm
	[ "$XV_TORN" = 1 ] && return $rc
	XV_TORN=1
	trap - EXIT INT TERM
	for p in "${XV_PGIDS[@]}"; do
		xv_stop "$p"
	done
	for n in "${XV_NODES[@]}"; do
		xv_uninstall "$n"
	done
	for vm in "${XV_VMS[@]}"; do
		xv_delete_ns "${XV_VM_NS[$vm]}"
	done
	for n in "${XV_NODES[@]}"; do
		xv_delete_ns "${XV_NODE_NS[$n]}"
	done
	[ -n "$XV_UL_NS" ] && xv_delete_ns "$XV_UL_NS"
	# Pins of this run that an agent may have made before failing.
	rm -rf /sys/fs/bpf/xvpc-e2e-$$-* 2>/dev/null
	# Kept (XV_KEEP_TMP=1): no longer an owner's, so no sweep takes it.
	[ -n "$XV_TMP" ] && rm -f "$XV_TMP/owner"
	[ -n "$XV_TMP" ] && [ "${XV_KEEP_TMP:-0}" != 1 ] && rm -rf "$XV_TMP"
	XV_NODES=()
	XV_VMS=()
	XV_VPCS=()
	XV_SUBNETS=()
	XV_UL_NS=
	XV_NODE_NS=()
	XV_VM_NS=()
	return $rc
}

# xv_reset: tear down the topology but stay armed for another one in the
# same script (the benchmark builds several in turn).
xv_reset() {
	local tmp=$XV_TMP
	XV_TMP=
	xv_teardown
	XV_TMP=$tmp
	XV_TORN=0
	trap 'xv_teardown' EXIT
	trap 'xv_teardown; exit 130' INT
	trap 'xv_teardown; exit 143' TERM
}

# --- checks: counted, printed one per line ---------------------------------

XV_PASS=0
XV_FAIL=0
XV_FAILED=()

# xv_check DESCRIPTION CMD...: run CMD; PASS if it succeeds.
xv_check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		XV_PASS=$((XV_PASS + 1))
		printf 'PASS %s\n' "$desc"
	else
		XV_FAIL=$((XV_FAIL + 1))
		XV_FAILED+=("$desc")
		printf 'FAIL %s\n' "$desc"
		[ -n "$out" ] && printf '%s\n' "$out" | tail -n 15 | sed 's/^/     | /'
	fi
	return 0
}

# xv_summary: the final line; returns non-zero when anything failed.
xv_summary() {
	local f
	for f in "${XV_FAILED[@]}"; do
		printf 'failed: %s\n' "$f"
	done
	printf '%d passed, %d failed\n' "$XV_PASS" "$XV_FAIL"
	[ "$XV_FAIL" -eq 0 ]
}

# xv_ping FROM DST [COUNT]: ping from a VM; succeeds if all replies came.
xv_ping() {
	local out
	out=$(xv_in "$1" ping -n -q -c "${3:-3}" -i 0.1 -W 1 "$2" 2>&1)
	local rc=$?
	[ $rc -eq 0 ] || { printf '%s\n' "$out"; return 1; }
	printf '%s\n' "$out" | grep -q ' 0% packet loss' ||
		{ printf '%s\n' "$out"; return 1; }
}

# xv_no_ping FROM DST: succeeds if no reply comes back.
xv_no_ping() {
	if xv_in "$1" ping -n -q -c 3 -i 0.1 -W 1 "$2" >/dev/null 2>&1; then
		echo "$1 got a reply from $2"
		return 1
	fi
	return 0
}

# xv_listen_ready VM PORT: a TCP listener is up in the VM.
xv_listen_ready() {
	xv_in "$1" ss -Htln "sport = :$2" | grep -q LISTEN
}

# xv_tcp_copy FROM TO SIZE_KB: send SIZE_KB of random bytes over TCP with nc
# and compare SHA-256 on both ends.
xv_tcp_copy() {
	local from=$1 to=$2 kb=$3 port=5001 src dst pid a b
	src=$XV_TMP/copy-$from-$to.in
	dst=$XV_TMP/copy-$from-$to.out
	head -c $((kb * 1024)) /dev/urandom >"$src"
	xv_bg "$to" "$dst" timeout 20 nc -l "$port"
	pid=$XV_BG_PID
	if ! xv_wait 5 xv_listen_ready "$to" "$port"; then
		echo "listener in $to did not come up"
		xv_stop "$pid"
		return 1
	fi
	if ! xv_in "$from" timeout 20 nc -N -w 5 "${XV_VM_IP[$to]}" "$port" \
		<"$src"; then
		echo "nc from $from to ${XV_VM_IP[$to]}:$port failed"
		xv_stop "$pid"
		return 1
	fi
	wait "$pid" # bounded: the listener runs under timeout 20
	xv_stop "$pid"
	a=$(sha256sum <"$src" | cut -d' ' -f1)
	b=$(sha256sum <"$dst" | cut -d' ' -f1)
	[ "$a" = "$b" ] || {
		echo "checksums differ: sent $a ($(stat -c %s "$src") B), got $b ($(stat -c %s "$dst") B)"
		return 1
	}
}

# xv_whoami_start VM: a TCP service on port 7000 that answers the VM's name.
xv_whoami_start() {
	xv_bg "$1" /dev/null bash -c "while :; do echo $1 | nc -N -l 7000 >/dev/null 2>&1 || sleep 0.1; done"
}

# xv_whoami FROM IP [TRIES]: the name the service at IP answers, as seen
# from FROM.
xv_whoami() {
	local _ out
	for _ in $(seq "${3:-5}"); do
		out=$(xv_in "$1" timeout 3 nc -w 2 "$2" 7000 </dev/null 2>/dev/null)
		[ -n "$out" ] && { echo "$out"; return 0; }
		sleep 0.2
	done
	return 1
}

# xv_expect_whoami FROM IP NAME
xv_expect_whoami() {
	local got
	got=$(xv_whoami "$1" "$2")
	[ "$got" = "$3" ] || { echo "$1 -> $2 answered '${got:-nothing}', expected '$3'"; return 1; }
}
