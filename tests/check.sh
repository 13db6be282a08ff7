#!/bin/bash
# Run every test: unit (cmocka), bpf (BPF_PROG_TEST_RUN selftests) and e2e
# (network namespaces). `tests/check.sh [unit|bpf|e2e]...` runs some of them.
# Each test is a program or script that exits 0 on success. Ends with a
# "check: N passed, N failed" line; exit status is non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
suites=${*:-unit bpf e2e}
pass=0
fail=0
failed=()
logdir=$(mktemp -d /tmp/xvpc-check.XXXXXX)

run_one() {
	local name=$1
	shift
	local log="$logdir/$(basename "$name").log"
	local t0=$(date +%s%N)
	if timeout 600 "$@" >"$log" 2>&1; then
		pass=$((pass + 1))
		printf 'PASS %-40s %6dms\n' "$name" $((($(date +%s%N) - t0) / 1000000))
		grep -E '^\[  PASSED  \]|^\[  FAILED  \]|passed, .* failed' "$log" | sed 's/^/     /'
	else
		fail=$((fail + 1))
		failed+=("$name")
		printf 'FAIL %s (log: %s)\n' "$name" "$log"
		tail -n 40 "$log" | sed 's/^/     | /'
	fi
}

for s in $suites; do
	case $s in
	unit)
		for t in bin/tests/test_*; do
			[ -x "$t" ] && run_one "unit/$(basename "$t")" "$t"
		done
		;;
	bpf)
		for t in bin/selftests/*; do
			[ -x "$t" ] && run_one "bpf/$(basename "$t")" "$t"
		done
		;;
	e2e)
		for t in selftests/e2e/*.sh; do
			[ -x "$t" ] && run_one "e2e/$(basename "$t" .sh)" "$t"
		done
		;;
	*)
		echo "check: unknown suite '$s' (unit, bpf, e2e)" >&2
		exit 2
		;;
	esac
done

[ ${#failed[@]} -gt 0 ] && printf 'failed: %s\n' "${failed[*]}"
echo "check: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
