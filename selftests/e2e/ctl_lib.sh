# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# shellcheck disable=SC2034 # XC_* are read by the scripts that source this
#
# Helpers for the tests and the demo in which xvpc-controller drives the
# datapath: a management link from each node namespace to the root
# namespace (where the controllers listen), agents in --controller mode,
# and VMs plugged in with the MAC and IP the API gave their ports. Source
# after lib.sh and agent_lib.sh; call after xv_init. The agents join
# lib.sh's process groups and pin directories, so its teardown stops them
# and uninstalls their datapaths; the management links go with the node
# namespaces.
#
#   root namespace     xc<run><k>  169.254.M.(4k-3)/30    controllers listen
#                          |  veth                         on 169.254.M.1
#   node namespace k   mg0         169.254.M.(4k-2)/30,   route to
#                                                          169.254.M.1
#
# M is a /24 of 169.254.0.0/16 (link-local) that no root address uses;
# the controllers bind 169.254.M.1 (node 1's link, root side) only, which
# every node reaches through its own link: nothing listens on, or leaves
# through, any other interface. Management traffic never touches the
# underlay bridge.
#
# Not executable on purpose: tests/check.sh runs every executable *.sh here.

XC_NET=       # 169.254.M
XC_ADDR=      # where controllers listen: 169.254.M.1
XC_API=       # the URL xvpcctl uses (first controller)
XC_ID=        # id of the last object made by xc_subnet/xc_port
XC_CTRL=${XC_CTRL:-$XV_ROOT/bin/xvpc-controller}
declare -A XC_MGMT_IDX=()

# xc_init: lib.sh's xv_init, with a trap that also removes the management
# links' root sides (they would go with the node namespaces, but the kernel
# frees those asynchronously).
xc_init() {
	xv_init
	trap 'xc_teardown' EXIT
	trap 'xc_teardown; exit 130' INT
	trap 'xc_teardown; exit 143' TERM
}

# xc_teardown: what xv_teardown does, then the management links. Also
# called directly at the end of a run.
xc_teardown() {
	local rc=$? n
	xv_teardown
	for n in "${!XC_MGMT_IDX[@]}"; do
		ip link del "xc$XV_RUN${XC_MGMT_IDX[$n]}" 2>/dev/null
	done
	XC_MGMT_IDX=()
	return $rc
}

# xc_mgmt_init: pick the management /24.
xc_mgmt_init() {
	local m used
	used=$(ip -4 -o addr show | awk '{ print $4 }')
	for m in $(seq 200 249); do
		if ! grep -q "^169\.254\.$m\." <<<"$used"; then
			XC_NET=169.254.$m
			XC_ADDR=$XC_NET.1
			return 0
		fi
	done
	xv_err "no free 169.254.M.0/24 for the management links"
	return 1
}

# xc_mgmt_node NODE: the node's management link to the root namespace.
xc_mgmt_node() {
	local node=$1 ns=${XV_NODE_NS[$1]} k root
	k=$((${#XC_MGMT_IDX[@]} + 1))
	[ "$k" -le 63 ] || { xv_err "too many management links"; return 1; }
	root=xc$XV_RUN$k
	xv_must ip link add "$root" type veth peer name mg0 netns "$ns" ||
		return 1
	XC_MGMT_IDX[$node]=$k
	xv_must sysctl -qw "net.ipv6.conf.$root.disable_ipv6=1" || return 1
	xv_must ip addr add "$XC_NET.$((4 * k - 3))/30" dev "$root" || return 1
	xv_must ip link set "$root" up || return 1
	xv_must ip -n "$ns" addr add "$XC_NET.$((4 * k - 2))/30" dev mg0 ||
		return 1
	xv_must ip -n "$ns" link set mg0 up || return 1
	[ "$k" = 1 ] && return 0
	xv_must ip -n "$ns" route add "$XC_ADDR/32" via "$XC_NET.$((4 * k - 3))"
}

# xc_mgmt_all: a management link for every node.
xc_mgmt_all() {
	local n
	xc_mgmt_init || return 1
	for n in "${XV_NODES[@]}"; do
		xc_mgmt_node "$n" || return 1
	done
}

# xc_controller_start LOG ADMIN-TOKEN ARGS...: xvpc-controller in the root
# namespace, in its own process group (lib.sh's teardown stops it), the
# admin token through the environment. XC_CTRL_PID is its pid. Returns once
# it answers on $XC_API; 1 with the log's tail if not within 20 s.
xc_controller_start() {
	local log=$1 tok=$2
	shift 2
	[ -x "$XC_CTRL" ] || { xv_err "$XC_CTRL not built (make all)"; return 1; }
	XVPC_ADMIN_TOKEN=$tok setsid "$XC_CTRL" "$@" >>"$log" 2>&1 </dev/null &
	XC_CTRL_PID=$!
	XV_PGIDS+=("$XC_CTRL_PID")
	if ! xv_wait 20 curl -sf --max-time 1 "$XC_API/v1/openapi.json"; then
		xv_err "controller not answering on $XC_API within 20 s:"
		tail -n 20 "$log" | sed 's/^/    | /' >&2
		return 1
	fi
}

# xc_ctl TOKEN ARGS...: xvpcctl against $XC_API (JSON unless
# XC_HUMAN=1), the token through the environment (not on a command line).
xc_ctl() {
	local tok=$1 json=--json
	shift
	[ "${XC_HUMAN:-0}" = 1 ] && json=
	XVPC_TOKEN=$tok XVPC_API=$XC_API "$XA_CTL" $json "$@"
}

# xc_subnet TOKEN VPC CIDR [NAME]: a subnet through the API, also declared
# to lib.sh (xv_subnet) with the VNI and gateway the API chose. XC_ID is
# its id.
xc_subnet() {
	local tok=$1 vpc=$2 cidr=$3 name=${4:-} out
	out=$(xc_ctl "$tok" subnet create --vpc "$vpc" --cidr "$cidr" \
		${name:+--name "$name"}) || { xv_err "subnet $cidr: $out"; return 1; }
	XC_ID=$(jq -er .id <<<"$out") || return 1
	xv_subnet "$vpc" "$cidr" "$(jq -r .vni <<<"$out")" \
		"$(jq -r .gateway_ip <<<"$out")" "$(jq -r .gateway_mac <<<"$out")"
}

# xc_port TOKEN SUBNET NAME NODE [IP]: a port through the API, bound to
# NODE and host-side interface h-NAME (what xv_vm creates). XC_PORT holds
# the answer, XC_ID its id. The request carries an idempotency key made of
# the run and NAME, so with XC_TRIES=N (default 1) it is sent up to N times,
# 0.5 s apart, until answered: a retry of a write whose outcome was unknown
# (a 503 while ZooKeeper recovers) gets the same port, never a second one.
xc_port() {
	local tok=$1 sub=$2 name=$3 node=$4 ip=${5:-} try
	for try in $(seq "${XC_TRIES:-1}"); do
		[ "$try" = 1 ] || sleep 0.5
		XC_PORT=$(xc_ctl "$tok" port create --subnet "$sub" \
			--name "$name" --node "$node" --ifname "h-$name" \
			--idempotency-key "xc-$XV_RUN-$name" ${ip:+--ip "$ip"}) &&
			break
	done || { xv_err "port $name: $XC_PORT"; return 1; }
	XC_ID=$(jq -er .id <<<"$XC_PORT")
}

# xc_vm TOKEN SUBNET NAME NODE [IP]: a port through the API, then the VM
# namespace with the port's address and MAC (xv_vm).
xc_vm() {
	local name=$3 node=$4 vpc ip mac
	xc_port "$@" || return 1
	vpc=$(jq -r .vpc <<<"$XC_PORT")
	[ "$vpc" != null ] ||
		vpc=$(xc_ctl "$1" subnet show "$2" | jq -r .vpc) || return 1
	ip=$(jq -r .ip <<<"$XC_PORT")
	mac=$(jq -r .mac <<<"$XC_PORT")
	xv_vm "$name" "$node" "$vpc" "$ip" "$mac" || return 1
	# XDP_REDIRECT into a veth needs NAPI on the receiving side.
	[ "${XV_NODE_MODE[$node]:-tc}" = xdp ] && xv_q xv_in "$name" ethtool -K eth0 gro on
	return 0
}

# xc_agent_start NODE MODE URLS TOKEN [AGENT-ARGS...]: the agent as a
# daemon in --controller mode (token through the environment). Returns once
# /healthz answers 200 (the first snapshot is applied); 1 with the log's
# tail if not within 20 s. With XC_NOWAIT=1, returns at once.
xc_agent_start() {
	local node=$1 mode=$2 urls=$3 tok=$4 ns=${XV_NODE_NS[$1]} log vm
	shift 4
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
	XVPC_TOKEN=$tok setsid nsenter --net="/run/netns/$ns" "$XV_AGENT" \
		--node-name "$node" --underlay ul0 \
		--node-ip "${XV_NODE_IP[$node]}" \
		--pin-dir "${XV_NODE_PIN[$node]}" \
		--controller "$urls" \
		--metrics "127.0.0.1:${XA_PORT[$node]}" "${extra[@]}" \
		>>"$log" 2>&1 </dev/null &
	XA_PID[$node]=$!
	XV_PGIDS+=("${XA_PID[$node]}")
	[ "${XC_NOWAIT:-0}" = 1 ] && return 0
	if ! xv_wait 20 xc_agent_up "$node"; then
		xv_err "agent on $node not ready within 20 s:"
		tail -n 20 "$log" | sed 's/^/    | /' >&2
		return 1
	fi
}

xc_agent_up() {
	xa_alive "$1" && xa_curl "$1" /healthz >/dev/null
}

# xc_node_state NODE TOKEN FILE: what the API says the node should hold
# (GET /v1/nodes/NODE/state, admin token).
xc_node_state() {
	curl -sf --max-time 5 -H "Authorization: Bearer $2" \
		"$XC_API/v1/nodes/$1/state" >"$3"
}

# xc_maps_match_api NODE TOKEN: the node's maps equal what the API says
# (agent_lib.sh's xa_maps_match on the node's state from the API), where a
# local endpoint whose interface does not exist on the node is pending: not
# in the maps, and counted in the agent's xvpc_endpoints_pending.
xc_maps_match_api() {
	local node=$1 f=$XV_TMP/api-state-$1.json ifx pending got
	xc_node_state "$node" "$2" "$f.all" ||
		{ echo "GET state of $node failed"; return 1; }
	ifx=$(xa_ifindexes "$node") || return 1
	jq --arg me "${XV_NODE_IP[$node]}" --argjson ifx "$ifx" '
		.endpoints |= map(select(.node_ip != $me or $ifx[.ifname] != null))' \
		"$f.all" >"$f" || return 1
	xa_maps_match "$node" "$f" || return 1
	pending=$(($(jq '.endpoints | length' "$f.all") - $(jq '.endpoints | length' "$f")))
	got=$(xa_metric "$node" xvpc_endpoints_pending) || return 1
	[ "${got%.*}" = "$pending" ] ||
		{ echo "$node: xvpc_endpoints_pending is $got, the API has $pending local endpoints without an interface"; return 1; }
}

# xc_now_ms: wall clock in ms.
xc_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# xc_log_ms NODE SINCE_MS REGEX: the time (ms, wall clock) of the first
# line of the node's agent log matching REGEX at or after SINCE_MS; 1 if
# there is none.
xc_log_ms() {
	local line ts ms
	while read -r line; do
		ts=${line%% *}
		ms=$(date -d "$ts" +%s%3N 2>/dev/null) || continue
		[ "$ms" -ge "$2" ] && { echo "$ms"; return 0; }
	done < <(grep -E "$3" "$XV_TMP/agent-$1.log")
	return 1
}

# xc_applied_ms NODE SINCE_MS: when the agent applied the first state at or
# after SINCE_MS ("N changes applied" or a snapshot).
xc_applied_ms() {
	xc_log_ms "$1" "$2" 'changes applied|: snapshot'
}

# xc_wait_ping SECONDS VM DST: ping (one packet, 100 ms deadline) until one
# reply comes; prints the milliseconds it took. 1 on timeout.
xc_wait_ping() {
	local t0 end
	t0=$(date +%s%N)
	end=$((SECONDS + $1))
	until xv_in "$2" ping -n -q -c 1 -W 0.1 "$3" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && return 1
	done
	echo $((($(date +%s%N) - t0) / 1000000))
}
