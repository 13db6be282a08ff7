#!/bin/bash
# Prints the machine a benchmark ran on, as a JSON object.
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
printf '{"cpu_model": "%s", "cores": %d, "kernel": "%s", "memory_gib": %s, "date": "%s"}\n' \
	"$cpu" "$(nproc)" "$(uname -r)" "$mem" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
