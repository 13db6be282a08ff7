#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# make bench-datapath: the xvpc overlay against the Linux kernel's own VXLAN
# overlay and against no overlay at all, on the same two-node netns topology
# (selftests/e2e/lib.sh draws it), one after the other in one run:
#
#   xvpc         our BPF datapath, underlay program on tc ingress (default)
#   xvpc_xdp     the same with the underlay program in XDP (if supported)
#   linux_vxlan  per node a vxlan device (dstport 4789, nolearning, static
#                fdb entries) and a Linux bridge enslaving it and the VMs'
#                host-side veths; the VMs have static neighbours
#   no_overlay   plain routed veths: VM -> node -> underlay -> node -> VM
#
#   vm1 (10.0.1.10, node n1)  ---- underlay 192.168.250.0/24 ----  vm2 (node n2)
#
# Every setup uses the same VM MTU (1450), so TCP segments are alike. Per
# setup: iperf3 TCP with 1 and 4 streams, iperf3 UDP with 64-byte payloads at
# unlimited rate (packets/s received), ping RTT (avg of 200 at 10 ms). Then
# bin/bench/bench_dp_prog --json for the per-path ns/packet figures.
# Prints a table and writes bench/results/datapath.json.
#
# The machine is small (2 cores) and may be shared, so the setups run
# interleaved in BENCH_ROUNDS rounds (default 3) and each figure is the
# median over the rounds; the raw figures are in the JSON too.
#
# Environment: BENCH_SECS (default 5), BENCH_ROUNDS (default 3),
# BENCH_SETUPS (default "no_overlay linux_vxlan xvpc xvpc_xdp").
# shellcheck disable=SC2034 # TCP1, TCP4, UDP, RTT are read through namerefs
set -u
cd "$(dirname "$0")/.." || exit 1
. selftests/e2e/lib.sh

SECS=${BENCH_SECS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
SETUPS=${BENCH_SETUPS:-no_overlay linux_vxlan xvpc xvpc_xdp}
OUT=bench/results/datapath.json
NOTES=()
declare -A TCP1 TCP4 UDP RTT MODE RAW_TCP1 RAW_TCP4 RAW_UDP RAW_RTT

xv_init

# Two nodes on the underlay bridge, one VM each. $1, $2: the VMs' addresses;
# subnets declared by the caller.
two_nodes() {
	xv_underlay || return 1
	xv_node n1 $XV_UL_NET.1 || return 1
	xv_node n2 $XV_UL_NET.2 || return 1
	xv_node_neighs || return 1
	xv_vm vm1 n1 1 "$1" || return 1
	xv_vm vm2 n2 1 "$2"
}

# (c) no overlay: each VM in its node's /24, nodes route to each other.
setup_no_overlay() {
	xv_vpc 1 bench
	xv_subnet 1 10.0.1.0/24 101 10.0.1.1
	xv_subnet 1 10.0.2.0/24 102 10.0.2.1
	two_nodes 10.0.1.10 10.0.2.10 || return 1
	xv_must ip -n "${XV_NODE_NS[n1]}" addr add 10.0.1.1/24 dev h-vm1 &&
		xv_must ip -n "${XV_NODE_NS[n2]}" addr add 10.0.2.1/24 dev h-vm2 &&
		xv_must ip -n "${XV_NODE_NS[n1]}" route add 10.0.2.0/24 via $XV_UL_NET.2 &&
		xv_must ip -n "${XV_NODE_NS[n2]}" route add 10.0.1.0/24 via $XV_UL_NET.1 ||
		return 1
	# The nodes' own ARP for the VMs' gateways stays local; make the VMs'
	# gateway entries static too, like the overlays' static neighbours.
	xv_must ip -n "${XV_VM_NS[vm1]}" neigh replace 10.0.1.1 lladdr \
		"$(xv_in n1 cat /sys/class/net/h-vm1/address)" dev eth0 nud permanent &&
		xv_must ip -n "${XV_VM_NS[vm2]}" neigh replace 10.0.2.1 lladdr \
			"$(xv_in n2 cat /sys/class/net/h-vm2/address)" dev eth0 nud permanent &&
		xv_must ip -n "${XV_NODE_NS[n1]}" neigh replace 10.0.1.10 lladdr \
			"${XV_VM_MAC[vm1]}" dev h-vm1 nud permanent &&
		xv_must ip -n "${XV_NODE_NS[n2]}" neigh replace 10.0.2.10 lladdr \
			"${XV_VM_MAC[vm2]}" dev h-vm2 nud permanent
	DST=10.0.2.10
}

# (b) the kernel's overlay: vxlan + bridge per node, all entries static.
setup_linux_vxlan() {
	local n peer vm other
	xv_vpc 1 bench
	xv_subnet 1 10.0.1.0/24 101 10.0.1.1
	two_nodes 10.0.1.10 10.0.1.11 || return 1
	for n in n1 n2; do
		[ $n = n1 ] && { peer=n2; vm=vm1; other=vm2; } ||
			{ peer=n1; vm=vm2; other=vm1; }
		local ns=${XV_NODE_NS[$n]}
		xv_must ip -n "$ns" link add vx0 mtu $XV_VM_MTU type vxlan \
			id 101 dstport 4789 local "${XV_NODE_IP[$n]}" dev ul0 \
			nolearning &&
			xv_must ip -n "$ns" link add br0 type bridge stp_state 0 \
				mcast_snooping 0 &&
			xv_must ip -n "$ns" link set vx0 master br0 up &&
			xv_must ip -n "$ns" link set h-$vm master br0 &&
			xv_must ip -n "$ns" link set br0 up &&
			xv_must bridge -n "$ns" fdb add "${XV_VM_MAC[$other]}" \
				dev vx0 dst "${XV_NODE_IP[$peer]}" self permanent &&
			xv_must bridge -n "$ns" fdb add "${XV_VM_MAC[$other]}" \
				dev vx0 master static &&
			xv_must ip -n "${XV_VM_NS[$vm]}" neigh replace \
				"${XV_VM_IP[$other]}" lladdr "${XV_VM_MAC[$other]}" \
				dev eth0 nud permanent || return 1
	done
	DST=10.0.1.11
}

# (a) xvpc through the agent; $1: underlay mode.
setup_xvpc() {
	xv_vpc 1 bench
	xv_subnet 1 10.0.1.0/24 101 10.0.1.1
	two_nodes 10.0.1.10 10.0.1.11 || return 1
	xv_agent_all "$1" || return 1
	DST=10.0.1.11
}

setup_xvpc_tc() { setup_xvpc tc; }
setup_xvpc_xdp() { setup_xvpc xdp; }

# iperf3 TCP, N streams: receiver Gbit/s.
tcp_gbps() {
	xv_in vm1 iperf3 -c "$DST" -t "$SECS" -P "$1" -f m 2>&1 |
		awk '/receiver/ { for (i = 2; i <= NF; i++) if ($i == "Mbits/sec") v = $(i - 1) }
		     END { if (v == "") exit 1; printf "%.3f\n", v / 1000 }'
}

# iperf3 UDP, 64-byte payloads, unlimited rate: packets/s received.
udp_pps() {
	xv_in vm1 iperf3 -c "$DST" -u -l 64 -b 0 -t "$SECS" 2>&1 |
		awk '/receiver/ {
			split($3, t, "-")
			for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/) { split($i, p, "/"); lost = p[1]; tot = p[2] }
			if (tot != "" && t[2] > 0) v = (tot - lost) / t[2]
		}
		END { if (v == "") exit 1; printf "%.0f\n", v }'
}

# ping RTT: average of 200 at 10 ms, in microseconds.
rtt_us() {
	xv_in vm1 ping -n -q -i 0.01 -c 200 -W 1 "$DST" 2>&1 |
		awk -F/ '/^rtt|^round-trip/ { v = $5 } END { if (v == "") exit 1; printf "%.1f\n", v * 1000 }'
}

measure() {
	local name=$1 srv v
	if ! xv_in vm1 ping -n -q -c 3 -i 0.2 -W 1 "$DST" >/dev/null 2>&1; then
		NOTES+=("$name: vm1 cannot reach $DST, not measured")
		echo "  $name: no connectivity, skipped"
		return 1
	fi
	xv_bg vm2 "$XV_TMP/iperf3-$name.log" iperf3 -s
	srv=$XV_BG_PID
	xv_wait 5 xv_listen_ready vm2 5201 || { NOTES+=("$name: iperf3 server did not start"); xv_stop $srv; return 1; }
	v=$(tcp_gbps 1) && RAW_TCP1[$name]+=" $v" || v=failed
	echo "  $name: tcp 1 stream   $v Gbit/s"
	v=$(tcp_gbps 4) && RAW_TCP4[$name]+=" $v" || v=failed
	echo "  $name: tcp 4 streams  $v Gbit/s"
	v=$(udp_pps) && RAW_UDP[$name]+=" $v" || v=failed
	echo "  $name: udp 64 B       $v packets/s received"
	v=$(rtt_us) && RAW_RTT[$name]+=" $v" || v=failed
	echo "  $name: rtt            $v us"
	xv_stop $srv
}

run_setup() {
	local name=$1 fn=$2
	echo "== $name"
	if $fn; then
		measure "$name"
	else
		NOTES+=("$name: setup failed (see the error above)")
	fi
	xv_reset
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
echo "#### round $round of $ROUNDS"
for s in $SETUPS; do
	case $s in
	no_overlay) run_setup no_overlay setup_no_overlay ;;
	linux_vxlan) run_setup linux_vxlan setup_linux_vxlan ;;
	xvpc)
		MODE[xvpc]="tc ingress on the underlay veth, tc ingress on the endpoint veths"
		if [ -x "$XV_AGENT" ]; then
			run_setup xvpc setup_xvpc_tc
		else
			NOTES+=("xvpc: $XV_AGENT not built, not measured")
		fi
		;;
	xvpc_xdp)
		MODE[xvpc_xdp]="XDP (native, veth) on the underlay, tc ingress on the endpoint veths; GRO on in the VMs; tx checksum offload off on the veth underlay (loader), so no GSO crosses the underlay"
		if xv_agent_supports underlay-mode; then
			run_setup xvpc_xdp setup_xvpc_xdp
		else
			NOTES+=("xvpc_xdp: agent has no --underlay-mode, not measured")
		fi
		;;
	*) echo "bench: unknown setup '$s'" >&2 ;;
	esac
done
done

# Median over the rounds (even count: mean of the middle two).
median() {
	[ -n "${1// /}" ] || return 0
	printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
for c in xvpc xvpc_xdp linux_vxlan no_overlay; do
	v=$(median "${RAW_TCP1[$c]:-}") && [ -n "$v" ] && TCP1[$c]=$v
	v=$(median "${RAW_TCP4[$c]:-}") && [ -n "$v" ] && TCP4[$c]=$v
	v=$(median "${RAW_UDP[$c]:-}") && [ -n "$v" ] && UDP[$c]=$v
	v=$(median "${RAW_RTT[$c]:-}") && [ -n "$v" ] && RTT[$c]=$v
done

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# Per-path cost of the programs themselves (BPF_PROG_TEST_RUN).
NSPP=
if [ -x bin/bench/bench_dp_prog ]; then
	echo "== bench_dp_prog"
	NSPP=$(timeout 120 bin/bench/bench_dp_prog --json 2>"$XV_TMP/nspp.err")
	if [ "${NSPP:0:1}" != "{" ]; then
		NOTES+=("bench_dp_prog failed: $(head -c 200 "$XV_TMP/nspp.err" | tr '\n"' ' ' )")
		NSPP=
	fi
else
	NOTES+=("bin/bench/bench_dp_prog not built: ns_per_packet is null")
fi
[ -n "$NSPP" ] ||
	NSPP='{"floor": null, "encap": null, "decap": null, "route": null, "arp": null}'

# --- report ------------------------------------------------------------------

num() { [ -n "${1:-}" ] && echo "$1" || echo null; }
ratio() {
	[ -n "${1:-}" ] && [ -n "${2:-}" ] &&
		awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f\n", a / b; else print "null" }' ||
		echo null
}

cols=(xvpc xvpc_xdp linux_vxlan no_overlay)
printf '\n%-22s %12s %12s %12s %12s %10s %10s\n' metric xvpc xvpc_xdp linux_vxlan no_overlay \
	xvpc/vxlan xvpc/none
for m in tcp1 tcp4 udp rtt; do
	case $m in
	tcp1) declare -n A=TCP1; label="TCP 1 stream Gbit/s" ;;
	tcp4) declare -n A=TCP4; label="TCP 4 streams Gbit/s" ;;
	udp) declare -n A=UDP; label="UDP 64B packets/s" ;;
	rtt) declare -n A=RTT; label="RTT us (lower=better)" ;;
	esac
	printf '%-22s' "$label"
	for c in "${cols[@]}"; do
		printf ' %12s' "${A[$c]:--}"
	done
	printf ' %10s %10s\n' "$(ratio "${A[xvpc]:-}" "${A[linux_vxlan]:-}")" \
		"$(ratio "${A[xvpc]:-}" "${A[no_overlay]:-}")"
	unset -n A
done
echo
echo "ns per packet (bench_dp_prog): $NSPP"
echo "load average before: $LOAD_BEFORE, after the network runs: $LOAD_AFTER (other load skews the figures)"
for c in xvpc xvpc_xdp; do
	[ -n "${MODE[$c]:-}" ] && echo "$c attach mode: ${MODE[$c]}"
done
mapfile -t NOTES < <(printf '%s\n' "${NOTES[@]}" | awk 'NF && !seen[$0]++')
for n in "${NOTES[@]}"; do
	echo "note: $n"
done

metric_json() {
	local -n A=$1
	local c sep='' s='{'
	for c in "${cols[@]}"; do
		[ "$c" = xvpc_xdp ] && [ -z "${A[$c]:-}" ] && continue
		s+="$sep\"$c\": $(num "${A[$c]:-}")"
		sep=', '
	done
	echo "$s}"
}

ratio_json() {
	local -n A=$1
	echo "{\"xvpc_vs_linux_vxlan\": $(ratio "${A[xvpc]:-}" "${A[linux_vxlan]:-}"), \"xvpc_vs_no_overlay\": $(ratio "${A[xvpc]:-}" "${A[no_overlay]:-}"), \"xvpc_xdp_vs_linux_vxlan\": $(ratio "${A[xvpc_xdp]:-}" "${A[linux_vxlan]:-}"), \"xvpc_xdp_vs_no_overlay\": $(ratio "${A[xvpc_xdp]:-}" "${A[no_overlay]:-}")}"
}

raw_json() {
	local -n A=$1
	local c sep='' s='{'
	for c in "${cols[@]}"; do
		[ -n "${A[$c]:-}" ] || continue
		s+="$sep\"$c\": [$(echo ${A[$c]} | sed 's/ /, /g')]"
		sep=', '
	done
	echo "$s}"
}

json_str() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }

{
	echo "{"
	echo "  \"tcp1_gbps\": $(metric_json TCP1),"
	echo "  \"tcp4_gbps\": $(metric_json TCP4),"
	echo "  \"udp_pps\": $(metric_json UDP),"
	echo "  \"rtt_us\": $(metric_json RTT),"
	echo "  \"ratios\": {"
	echo "    \"tcp1_gbps\": $(ratio_json TCP1),"
	echo "    \"tcp4_gbps\": $(ratio_json TCP4),"
	echo "    \"udp_pps\": $(ratio_json UDP),"
	echo "    \"rtt_us\": $(ratio_json RTT)"
	echo "  },"
	echo "  \"ns_per_packet\": $NSPP,"
	echo "  \"raw\": {\"tcp1_gbps\": $(raw_json RAW_TCP1), \"tcp4_gbps\": $(raw_json RAW_TCP4), \"udp_pps\": $(raw_json RAW_UDP), \"rtt_us\": $(raw_json RAW_RTT)},"
	echo "  \"attach_mode\": {\"xvpc\": \"$(json_str "${MODE[xvpc]:-}")\", \"xvpc_xdp\": \"$(json_str "${MODE[xvpc_xdp]:-}")\", \"linux_vxlan\": \"kernel vxlan device + bridge\", \"no_overlay\": \"routed veths\"},"
	echo "  \"config\": {\"seconds\": $SECS, \"rounds\": $ROUNDS, \"statistic\": \"median over rounds\", \"loadavg_before\": \"$LOAD_BEFORE\", \"loadavg_after\": \"$LOAD_AFTER\", \"vm_mtu\": $XV_VM_MTU, \"underlay_mtu\": $XV_UL_MTU, \"udp_payload\": 64, \"ping\": \"200 x 10 ms\", \"topology\": \"2 nodes (netns) on a bridge underlay, 1 VM (netns) per node\"},"
	printf '  "notes": ['
	sep=
	for n in "${NOTES[@]}"; do
		printf '%s"%s"' "$sep" "$(json_str "$n")"
		sep=', '
	done
	echo '],'
	echo "  \"machine\": $(bench/machine.sh)"
	echo "}"
} >"$OUT.tmp" && mv "$OUT.tmp" "$OUT"
echo "wrote $OUT"
