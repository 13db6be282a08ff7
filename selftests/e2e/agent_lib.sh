# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Helpers for the agent end-to-end tests (agent_*.sh): xvpc-agent as a
# daemon in a node's namespace, its desired state, its metrics, and the
# comparison of the pinned maps with the desired state. Source after lib.sh
# and call after xv_init: the daemons join lib.sh's process groups
# (XV_PGIDS) and pin directories (XV_NODE_PIN), so lib.sh's teardown stops
# them (SIGTERM), runs --uninstall and removes the pins, also on failure.
#
# Not executable on purpose: tests/check.sh runs every executable *.sh here.

XA_CTL=${XA_CTL:-$XV_ROOT/bin/xvpcctl}
XA_ROUND=0
declare -A XA_PID=() XA_PORT=() XA_REV=()

# xa_innode NODE CMD...: run CMD in the node's network namespace only
# (nsenter --net, unlike `ip netns exec`, keeps /sys and so /sys/fs/bpf).
xa_innode() {
	local ns=${XV_NODE_NS[$1]}
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

# xa_state_file NODE: where the node's daemon reads its desired state.
xa_state_file() {
	echo "$XV_TMP/state/$1.json"
}

# xa_state NODE REVISION [JQ-FILTER]: the node's state from lib.sh's
# topology (xv_state), revision set, JQ-FILTER applied, written with a
# rename into place (what an editor or a config manager does).
xa_state() {
	local node=$1 rev=$2 filter=${3:-.} file tmp
	file=$(xa_state_file "$node")
	mkdir -p "$XV_TMP/state" "$XV_TMP/state.tmp"
	tmp=$XV_TMP/state.tmp/$node.json
	xv_state "$node" "$tmp.base" || return 1
	jq --argjson rev "$rev" ".revision = \$rev | $filter" "$tmp.base" \
		>"$tmp" || { xv_err "jq filter '$filter' failed"; return 1; }
	mv -f "$tmp" "$file"
	XA_REV[$node]=$rev
}

# xa_start NODE [tc|xdp] [AGENT-ARGS...]: start the daemon (state file from
# xa_state must exist). Returns once /healthz says 200 and the daemon has
# applied the state file's revision; 1 (with the log's tail) if not within
# 20 s.
xa_start() {
	local node=$1 mode=${2:-tc} ns=${XV_NODE_NS[$1]} log vm
	shift 2 2>/dev/null || shift
	local extra=("$@")
	log=$XV_TMP/agent-$node.log
	[ -x "$XV_AGENT" ] || { xv_err "$XV_AGENT not built (make all)"; return 1; }
	[ -n "${XA_PORT[$node]:-}" ] ||
		XA_PORT[$node]=$((9470 + ${#XA_PORT[@]}))
	XV_NODE_PIN[$node]=/sys/fs/bpf/xvpc-e2e-$$-$node
	XV_NODE_MODE[$node]=$mode
	[ "$mode" = tc ] || extra+=(--underlay-mode "$mode")
	if [ "$mode" = xdp ]; then
		# XDP_REDIRECT into a veth needs NAPI on the receiving side.
		for vm in "${XV_VMS[@]}"; do
			[ "${XV_VM_NODE[$vm]}" = "$node" ] &&
				xv_q xv_in "$vm" ethtool -K eth0 gro on
		done
	fi
	XA_ROUND=$((XA_ROUND + 1))
	printf '=== start %d: %s\n' "$XA_ROUND" "$(date +%T.%N)" >>"$log"
	setsid nsenter --net="/run/netns/$ns" "$XV_AGENT" \
		--node-name "$node" --underlay ul0 \
		--node-ip "${XV_NODE_IP[$node]}" \
		--pin-dir "${XV_NODE_PIN[$node]}" \
		--state "$(xa_state_file "$node")" \
		--metrics "127.0.0.1:${XA_PORT[$node]}" "${extra[@]}" \
		>>"$log" 2>&1 </dev/null &
	XA_PID[$node]=$!
	XV_PGIDS+=("${XA_PID[$node]}")
	if ! xv_wait 20 xa_ready "$node" "${XA_REV[$node]:-0}"; then
		xv_err "agent on $node not ready within 20 s:"
		tail -n 20 "$log" | sed 's/^/    | /' >&2
		return 1
	fi
}

# xa_alive NODE: the daemon process still runs.
xa_alive() {
	[ -n "${XA_PID[$1]:-}" ] && kill -0 "${XA_PID[$1]}" 2>/dev/null
}

xa_forget_pgid() {
	local keep=() p
	for p in "${XV_PGIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	XV_PGIDS=("${keep[@]}")
}

# xa_kill NODE: SIGKILL the daemon (its whole process group) and reap it.
xa_kill() {
	local pid=${XA_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -KILL -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	xa_forget_pgid "$pid"
	XA_PID[$1]=
	printf '=== SIGKILL: %s\n' "$(date +%T.%N)" >>"$XV_TMP/agent-$1.log"
}

# xa_stop NODE: SIGTERM (graceful), bounded by lib.sh's xv_stop.
xa_stop() {
	local pid=${XA_PID[$1]:-}
	[ -n "$pid" ] || return 0
	xv_stop "$pid"
	XA_PID[$1]=
}

# xa_curl NODE PATH: GET from the node's metrics server; prints the body,
# fails on anything but 200.
xa_curl() {
	xa_innode "$1" curl -sf --max-time 5 "http://127.0.0.1:${XA_PORT[$1]}$2"
}

# xa_metric NODE NAME-WITH-LABELS: the value of one sample line.
xa_metric() {
	xa_curl "$1" /metrics | awk -v m="$2" '$1 == m { print $2; found = 1 }
		END { exit !found }'
}

# xa_ready NODE REVISION: healthy, and the desired state of REVISION applied.
xa_ready() {
	local rev
	xa_alive "$1" || return 1
	xa_curl "$1" /healthz >/dev/null || return 1
	rev=$(xa_metric "$1" xvpc_state_revision) || return 1
	[ "${rev%.*}" = "$2" ]
}

# xa_ctl NODE ARGS...: xvpcctl --json on the node's pinned datapath.
xa_ctl() {
	local node=$1
	shift
	xa_innode "$node" "$XA_CTL" --json --pin-dir "${XV_NODE_PIN[$node]}" "$@"
}

# xa_ifindex NODE IFNAME (not from /sys/class/net: /sys is the host's)
xa_ifindex() {
	ip -n "${XV_NODE_NS[$1]}" -j link show dev "$2" | jq -e '.[0].ifindex'
}

# xa_ifindexes NODE: {"ifname": ifindex, ...} of the node's interfaces.
xa_ifindexes() {
	xa_innode "$1" ip -j link show | jq -c 'map({(.ifname): .ifindex}) | add'
}

# xa_maps_match NODE [STATE-FILE]: every datapath map that the reconciler
# owns holds exactly what the desired state says; prints the difference.
#   endpoints: vpc, ip, mac, node_ip, local flag, ifindex (of ifname when
#              local, else 0), vni of its subnet
#   subnets:   vpc, cidr, vni, gateway ip and mac
#   vnis:      vni -> vpc
#   ifaces:    one binding per local endpoint, on its interface
xa_maps_match() {
	local node=$1 state=${2:-$(xa_state_file "$1")} ifx m bad=0
	local want got
	ifx=$(xa_ifindexes "$node") || return 1
	for m in endpoints subnets vnis ifaces; do
		got=$(xa_ctl "$node" map dump "xvpc_$m") ||
			{ echo "map dump xvpc_$m failed: $got"; return 1; }
		got=$(jq -S --arg m "$m" -f /dev/stdin <(echo "$got") <<'EOF'
.entries | map(
	if $m == "endpoints" then
		{vpc, ip, mac, node_ip, local: (.flags | index("local") != null),
		 ifindex, vni}
	elif $m == "subnets" then {vpc, cidr, vni, gateway_ip, gateway_mac}
	elif $m == "vnis" then {vni, vpc}
	else {ifindex, ifname, vpc, ip, mac, vni} end) | sort
EOF
) || return 1
		want=$(jq -S --arg m "$m" --arg node_ip "${XV_NODE_IP[$node]}" \
			--argjson ifx "$ifx" -f /dev/stdin "$state" <<'EOF'
def vni($s; $vpc; $ip):
	[$s.subnets[] | select(.vpc == $vpc) |
	 . as $sn | ($sn.cidr | split("/")) as [$net, $plen] |
	 select(($ip | split(".") | map(tonumber)) as $a |
		($net | split(".") | map(tonumber)) as $b |
		($plen | tonumber) as $p |
		(($a[0] * 16777216 + $a[1] * 65536 + $a[2] * 256 + $a[3]) -
		 ($b[0] * 16777216 + $b[1] * 65536 + $b[2] * 256 + $b[3])) as $d |
		$d >= 0 and $d < pow(2; 32 - $p)) | .vni][0];
. as $s |
if $m == "endpoints" then
	[.endpoints[] | {vpc, ip, mac, node_ip, local: (.node_ip == $node_ip),
	 ifindex: (if .node_ip == $node_ip then $ifx[.ifname] else 0 end),
	 vni: vni($s; .vpc; .ip)}]
elif $m == "subnets" then
	[.subnets[] | {vpc, cidr, vni, gateway_ip, gateway_mac}]
elif $m == "vnis" then [.subnets[] | {vni, vpc}]
else
	[.endpoints[] | select(.node_ip == $node_ip) |
	 {ifindex: $ifx[.ifname], ifname, vpc, ip, mac, vni: vni($s; .vpc; .ip)}]
end | sort
EOF
) || return 1
		if [ "$got" != "$want" ]; then
			echo "xvpc_$m on $node differs from $state (<: desired, >: map):"
			diff <(echo "$want" | jq -c '.[]') \
				<(echo "$got" | jq -c '.[]') | head -n 20
			bad=1
		fi
	done
	return $bad
}

# xa_do DESCRIPTION CMD...: like xv_check, but CMD runs in this shell, not
# in a subshell, so that what it changes (daemon pids, revisions) stays.
xa_do() {
	local desc=$1 log=$XV_TMP/step.log rc
	shift
	"$@" >"$log" 2>&1
	rc=$?
	xv_check "$desc" sh -c 'cat "$1"; exit "$2"' sh "$log" "$rc"
}

# xa_ping_start VM DST: a ping stream of at least 100/s in the background
# (its process group is in XV_PGIDS), output in $XV_TMP/ping-VM-DST; a
# deadline of 120 s bounds it. Sets XA_PING_PID. (iputils' ping sends
# only about 60/s with -i 0.01 on a 250 Hz kernel; -i 0.008 gives 100-125/s.)
xa_ping_start() {
	xv_bg "$1" "$XV_TMP/ping-$1-$2" ping -n -i 0.008 -w 120 "$2"
	XA_PING_PID=$XV_BG_PID
}

# xa_ping_stop PID: end the ping (SIGINT: it prints its summary) and reap.
xa_ping_stop() {
	kill -INT -- "-$1" 2>/dev/null
	local i
	for i in $(seq 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	xv_stop "$1"
}

# xa_ping_lossless VM DST: every echo request of the stream got its reply.
# The stream is stopped with SIGINT at an arbitrary moment, so the last
# request may still be in flight then: only that one may be missing (its
# sequence number must be the last one sent).
xa_ping_lossless() {
	local f=$XV_TMP/ping-$1-$2 tx rx missing ms
	read -r tx rx <<<"$(awk '/packets transmitted/ { print $1, $4 }' "$f")"
	[ -n "$tx" ] || { echo "no ping summary:"; tail -n 5 "$f"; return 1; }
	missing=$(grep -o 'icmp_seq=[0-9]*' "$f" | cut -d= -f2 | sort -n |
		awk -v n="$tx" '{ seen[$1] = 1 }
			END { for (i = 1; i <= n; i++) if (!seen[i]) print i }')
	ms=$(awk '/packets transmitted/ { sub("ms", "", $10); print $10 }' "$f")
	echo "$1 -> $2: transmitted $tx, received $rx in ${ms:-?} ms${missing:+, no reply to icmp_seq $(echo "$missing" | head -n 20 | paste -sd' ')}"
	[ "$tx" -gt 0 ] || return 1
	[ -z "$missing" ] || [ "$missing" = "$tx" ]
}
