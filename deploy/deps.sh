#!/bin/sh
# Install the Debian 12 packages xvpc builds, tests and runs with.
# Idempotent and non-interactive: only missing packages are installed.
set -eu
PKGS="clang llvm gcc make pkg-config bpftool libbpf-dev libxdp-dev xdp-tools
libelf-dev zlib1g-dev libzookeeper-mt-dev zookeeperd libmicrohttpd-dev
libjson-c-dev libcurl4-openssl-dev libjemalloc-dev libcmocka-dev iproute2 iputils-ping
iperf3 tcpdump ethtool netcat-openbsd util-linux clang-format procps jq python3"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	[ "$(id -u)" = 0 ] || { echo "deps: need root to install$missing" >&2; exit 1; }
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing
fi
# BPF filesystem for pinned maps and programs.
if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
	mount -t bpf bpf /sys/fs/bpf
fi
echo "deps: all present"
