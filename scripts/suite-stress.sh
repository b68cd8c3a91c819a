#!/usr/bin/env bash
# suite-stress.sh N [LOAD]: runs the watcher and daemon test suites N times
# each under -race (test binaries built once), with LOAD busy-loop
# processes keeping the CPUs busy (default: one per CPU), and prints a table
# of wall times and failures. Needs no engine (watcher: real fsnotify on
# temp dirs; daemon: fake builder). Do not run it beside tests that lower
# the inotify limit (scripts/test.sh's isolated part).
#
#   scripts/suite-stress.sh 50        # the figure in BENCHMARKS.md
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
load=${2:-$(nproc)}
bins=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$bins"' EXIT
for p in watcher daemon; do go test -c -race -o "$bins/$p.test" "./$p"; done
for _ in $(seq "$load"); do (while :; do :; done) & done
printf '%-8s %5s %8s %8s %8s %8s\n' suite runs failed min_s median_s max_s
for p in watcher daemon; do
	times=() failed=0
	for i in $(seq "$n"); do
		start=$(date +%s.%N)
		if ! (cd "$p" && "$bins/$p.test" -test.count=1 >"$bins/$p-$i.log" 2>&1); then
			failed=$((failed + 1))
			echo "$p run $i FAILED; log:" >&2
			grep -E -- '--- FAIL|FAIL:|panic|race' "$bins/$p-$i.log" | head -20 >&2
		fi
		times+=("$(echo "$(date +%s.%N) - $start" | bc)")
	done
	sorted=$(printf '%s\n' "${times[@]}" | sort -n)
	printf '%-8s %5d %8d %8.1f %8.1f %8.1f\n' "$p" "$n" "$failed" \
		"$(echo "$sorted" | head -1)" "$(echo "$sorted" | sed -n "$(((n + 1) / 2))p")" "$(echo "$sorted" | tail -1)"
done
