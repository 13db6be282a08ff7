#!/bin/bash
# Throw-away ZooKeeper servers on loopback for tests, from Debian's
# zookeeper package (QuorumPeerMain on /usr/share/java/zookeeper.jar).
#
#   zk_harness.sh start N DIR [OWNER_PID]  start N (1 or 3) servers with their
#                                          data in DIR (must not exist), wait
#                                          until they serve, print the host list
#   zk_harness.sh stop DIR                 stop them all, remove DIR; exit 1 if
#                                          a server process survived
#   zk_harness.sh kill DIR I               SIGKILL member I (1..N)
#   zk_harness.sh restart DIR I            start member I again (waits until
#                                          its JVM answers, not for a quorum)
#   zk_harness.sh wait DIR                 wait until every running member
#                                          serves clients
#   zk_harness.sh procs DIR                pids of server processes still alive
#   zk_harness.sh leader DIR               index of the member that leads
#
# Ports are free loopback ports picked at start. A guard process stops the
# servers and removes DIR when OWNER_PID (default: the caller) exits, so a
# crashed test leaves nothing behind. Every wait is bounded (ZK_WAIT_S, 30 s).
set -u

JARS=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar
MAIN=org.apache.zookeeper.server.quorum.QuorumPeerMain
WAIT_S=${ZK_WAIT_S:-30}
MAX_LIFE_S=${ZK_MAX_LIFE_S:-900}

die() {
	echo "zk_harness: $*" >&2
	exit 1
}

port_free() {
	[ -z "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]
}

# Prints N*3 distinct free ports.
pick_ports() {
	local want=$1 got=() p tries=0
	while [ ${#got[@]} -lt "$want" ]; do
		tries=$((tries + 1))
		[ $tries -gt 1000 ] && die "no free loopback ports found"
		p=$((20000 + RANDOM % 40000))
		[[ " ${got[*]} " == *" $p "* ]] && continue
		port_free "$p" && got+=("$p")
	done
	echo "${got[@]}"
}

marker() {
	echo "-Dxvpc.zk.dir=$1"
}

# Is pid alive and one of our servers for DIR?
ours() {
	local pid=$1 dir=$2
	[ -r "/proc/$pid/cmdline" ] &&
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$(marker "$dir") "
}

four() { # four-letter word to a port
	echo "$2" | timeout 2 nc -q1 -w1 127.0.0.1 "$1" 2>/dev/null
}

run_server() {
	local dir=$1 i=$2 s="$1/s$2"
	setsid java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
		-Djava.net.preferIPv4Stack=true \
		-Dzookeeper.jmx.log4j.disable=true \
		-Dorg.slf4j.simpleLogger.defaultLogLevel=info \
		"$(marker "$dir")" -cp "$JARS" $MAIN "$s/zoo.cfg" \
		</dev/null >>"$s/server.log" 2>&1 &
	echo $! >"$s/pid"
}

client_port() {
	sed -n 's/^clientPort=//p' "$1/s$2/zoo.cfg"
}

members() {
	local n
	n=$(cat "$1/n" 2>/dev/null) || die "$1 is not a harness directory"
	seq 1 "$n"
}

# Waits until member I answers 4lw "$3" with a line matching $4.
wait_for() {
	local dir=$1 i=$2 cmd=$3 pat=$4 port deadline
	port=$(client_port "$dir" "$i")
	deadline=$((SECONDS + WAIT_S))
	while [ $SECONDS -lt $deadline ]; do
		four "$port" "$cmd" | grep -qE "$pat" && return 0
		ours "$(cat "$dir/s$i/pid")" "$dir" ||
			die "server $i exited; log: $dir/s$i/server.log"
		sleep 0.1
	done
	die "server $i (port $port) did not answer '$cmd' in ${WAIT_S}s"
}

cmd_wait() {
	local dir=$1 i
	for i in $(members "$dir"); do
		ours "$(cat "$dir/s$i/pid")" "$dir" || continue
		wait_for "$dir" "$i" srvr '^Mode: (standalone|leader|follower)'
	done
}

kill_pid() { # pid dir: TERM, then KILL, bounded
	local pid=$1 dir=$2 t
	ours "$pid" "$dir" || return 0
	kill -TERM "$pid" 2>/dev/null
	for t in $(seq 1 50); do
		ours "$pid" "$dir" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	for t in $(seq 1 50); do
		ours "$pid" "$dir" || return 0
		sleep 0.1
	done
	return 1
}

cmd_procs() {
	local dir=$1 p
	for p in $(pgrep -f -- "$(marker "$dir") "); do
		ours "$p" "$dir" && echo "$p"
	done
}

cmd_stop() {
	local dir=$1 i pid left
	[ -d "$dir" ] || return 0
	[ -f "$dir/n" ] || die "$dir is not a harness directory"
	if [ -f "$dir/guard.pid" ] && [ "$(cat "$dir/guard.pid")" != "$$" ]; then
		kill "$(cat "$dir/guard.pid")" 2>/dev/null
	fi
	for i in $(members "$dir"); do
		[ -f "$dir/s$i/pid" ] && kill_pid "$(cat "$dir/s$i/pid")" "$dir"
	done
	for pid in $(cmd_procs "$dir"); do
		kill -KILL "$pid" 2>/dev/null
	done
	sleep 0.1
	left=$(cmd_procs "$dir")
	[ -n "${ZK_HARNESS_KEEP:-}" ] || rm -rf "$dir"
	[ -z "$left" ] || die "server processes survived: $left"
}

cmd_start() {
	local n=$1 dir=$2 owner=${3:-$PPID} ports i cp pp ep hosts=""
	[ "$n" = 1 ] || [ "$n" = 3 ] || die "start: N must be 1 or 3"
	[ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ] &&
		die "start: $dir exists and is not empty"
	command -v java >/dev/null || die "java not found (apt-get install zookeeper)"
	[ -r /usr/share/java/zookeeper.jar ] || die "zookeeper.jar missing (apt-get install zookeeper)"
	mkdir -p "$dir" || die "cannot create $dir"
	echo "$n" >"$dir/n"
	read -r -a ports <<<"$(pick_ports $((3 * n)))"
	for i in $(seq 1 "$n"); do
		mkdir -p "$dir/s$i/data"
		echo "$i" >"$dir/s$i/data/myid"
		cp=${ports[$((3 * (i - 1)))]}
		cat >"$dir/s$i/zoo.cfg" <<-EOF
			tickTime=200
			initLimit=20
			syncLimit=5
			minSessionTimeout=400
			maxSessionTimeout=60000
			dataDir=$dir/s$i/data
			clientPort=$cp
			clientPortAddress=127.0.0.1
			admin.enableServer=false
			4lw.commands.whitelist=ruok,srvr,stat,mntr,conf
			autopurge.purgeInterval=0
			electionPortBindRetry=10
		EOF
		hosts+="${hosts:+,}127.0.0.1:$cp"
	done
	if [ "$n" -gt 1 ]; then
		for i in $(seq 1 "$n"); do
			pp=${ports[$((3 * (i - 1) + 1))]}
			ep=${ports[$((3 * (i - 1) + 2))]}
			for j in $(seq 1 "$n"); do
				echo "server.$i=127.0.0.1:$pp:$ep" >>"$dir/s$j/zoo.cfg"
			done
		done
	fi
	echo "$hosts" >"$dir/hosts"
	# The guard: stops everything when the owner goes away.
	setsid bash -c '
		owner=$1 dir=$2 harness=$3 max=$4 start=$SECONDS
		while kill -0 "$owner" 2>/dev/null && [ -d "$dir" ] &&
			[ $((SECONDS - start)) -lt "$max" ]; do
			sleep 0.5
		done
		[ -d "$dir" ] && "$harness" stop "$dir"' guard "$owner" "$dir" \
		"$(readlink -f "$0")" "$MAX_LIFE_S" </dev/null >/dev/null 2>&1 &
	echo $! >"$dir/guard.pid"
	for i in $(seq 1 "$n"); do
		run_server "$dir" "$i"
	done
	if ! (cmd_wait "$dir"); then
		cmd_stop "$dir"
		exit 1
	fi
	echo "$hosts"
}

cmd_kill() {
	local dir=$1 i=$2 pid t
	pid=$(cat "$dir/s$i/pid" 2>/dev/null) || die "no member $i in $dir"
	ours "$pid" "$dir" || return 0
	kill -KILL "$pid"
	for t in $(seq 1 50); do
		ours "$pid" "$dir" || return 0
		sleep 0.1
	done
	die "member $i (pid $pid) did not die"
}

cmd_restart() {
	local dir=$1 i=$2
	[ -f "$dir/s$i/zoo.cfg" ] || die "no member $i in $dir"
	ours "$(cat "$dir/s$i/pid")" "$dir" && die "member $i is running"
	run_server "$dir" "$i"
	wait_for "$dir" "$i" ruok '^imok'
}

cmd_leader() {
	local dir=$1 i
	for i in $(members "$dir"); do
		if four "$(client_port "$dir" "$i")" srvr | grep -qE '^Mode: (leader|standalone)'; then
			echo "$i"
			return 0
		fi
	done
	die "no member leads"
}

case "${1:-}" in
start) [ $# -ge 3 ] || die "usage: start N DIR [OWNER_PID]"; cmd_start "$2" "$(readlink -m "$3")" "${4:-}" ;;
stop) [ $# -eq 2 ] || die "usage: stop DIR"; cmd_stop "$(readlink -m "$2")" ;;
kill) [ $# -eq 3 ] || die "usage: kill DIR I"; cmd_kill "$(readlink -m "$2")" "$3" ;;
restart) [ $# -eq 3 ] || die "usage: restart DIR I"; cmd_restart "$(readlink -m "$2")" "$3" ;;
wait) [ $# -eq 2 ] || die "usage: wait DIR"; cmd_wait "$(readlink -m "$2")" ;;
procs) [ $# -eq 2 ] || die "usage: procs DIR"; cmd_procs "$(readlink -m "$2")" ;;
leader) [ $# -eq 2 ] || die "usage: leader DIR"; cmd_leader "$(readlink -m "$2")" ;;
*) die "usage: $0 start N DIR [OWNER_PID] | stop DIR | kill DIR I | restart DIR I | wait DIR | procs DIR | leader DIR" ;;
esac
