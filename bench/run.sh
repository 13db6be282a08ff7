#!/bin/bash
# make bench-<area>: runs bench/<area>.sh, which prints a table and writes
# bench/results/<area>.json (raw figures plus the machine they ran on).
set -euo pipefail
cd "$(dirname "$0")/.."
area=${1:?usage: bench/run.sh <area>}
script=bench/$area.sh
if [ ! -x "$script" ]; then
	echo "bench: no benchmark '$area' (have: $(ls bench/*.sh | xargs -n1 basename | sed 's/\.sh$//' | grep -v -e run -e machine | tr '\n' ' '))" >&2
	exit 2
fi
mkdir -p bench/results
exec "$script"
