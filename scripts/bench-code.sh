#!/usr/bin/env bash
# bench-code.sh: code-build time after a one-line edit, for two chefd binaries
# side by side (before/after a change) and the floor, interleaved round by round
# so that the machine's load hits all three alike.
#
#   scripts/bench-code.sh OLD_CHEFD NEW_CHEFD [ROUNDS]   (default 5 rounds)
#
# Each binary builds its own copy of examples/workspace (its own image name,
# cooked image and target cache), warmed by one build. A round edits the binary
# crate (app) and times each variant, then the leaf library (ledger). Every
# image must print its edit. Floor: `cargo build --release` of the same edit on
# a warm target dir, same toolchain and flags, in a plain container. Prints a
# Markdown table of medians (seconds) and the ratios to the floor.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$(realpath "$1") NEW=$(realpath "$2") ROUNDS=${3:-5}
D=/usr/bin/docker; [ -x "$D" ] || D=docker
BUILDER=${CHEFD_BUILDER_IMAGE:-chefd/rust-builder:bookworm-1.96}
RUN_ID=$(date +%s)
WORK=$(mktemp -d /tmp/chefd-bench-code.XXXXXX)
VOL=chefd-bench-code-floor-$RUN_ID
trap 'rm -rf "$WORK"; $D volume rm -f "$VOL" >/dev/null 2>&1 || true' EXIT

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.2f'; }
fresh() {
	cp -a examples/workspace "$WORK/$1"; rm -rf "$WORK/$1/target"
	sed -i "s/^image = .*/image = \"chefd-bench-code-$1-$RUN_ID\"/" "$WORK/$1/chefd.toml"
}
edit_bin()  { sed -i "s/^const GREETING: &str = \".*\";/const GREETING: \&str = \"edit $2\";/" "$1/crates/app/src/main.rs"; }
edit_leaf() { sed -i "s/^pub const LEDGER_BANNER: &str = \".*\";/pub const LEDGER_BANNER: \&str = \"edit $2\";/" "$1/crates/ledger/src/lib.rs"; }
cbuild() { # cbuild BIN DIR WANT
	local t0 t1 id; t0=$(now)
	id=$("$1" -C "$2" build 2>"$WORK/last.log") || { cat "$WORK/last.log" >&2; exit 1; }
	t1=$(now)
	case $($D run --rm "$id") in *"$3"*) ;; *) echo "bench: the image of $1 does not print $3" >&2; exit 1 ;; esac
	secs "$t0" "$t1"
}
floor() {
	local t0; t0=$(now)
	$D run --rm -v "$WORK/f:/src" -v "$VOL:/src/target" -w /src -e RUSTFLAGS="-C target-feature=+crt-static" "$BUILDER" \
		cargo build --release --locked --target x86_64-unknown-linux-gnu --bin app --bin report >/dev/null 2>&1
	secs "$t0" "$(now)"
}

fresh old; fresh new; fresh f
cbuild "$OLD" "$WORK/old" "hello" >/dev/null
cbuild "$NEW" "$WORK/new" "hello" >/dev/null
floor >/dev/null
declare -A T
for r in $(seq "$ROUNDS"); do
	for v in old new f; do edit_bin "$WORK/$v" "a$r"; done
	T[old,bin]+=" $(cbuild "$OLD" "$WORK/old" "edit a$r")"
	T[new,bin]+=" $(cbuild "$NEW" "$WORK/new" "edit a$r")"
	T[f,bin]+=" $(floor)"
	for v in old new f; do edit_leaf "$WORK/$v" "l$r"; done
	T[old,leaf]+=" $(cbuild "$OLD" "$WORK/old" "edit l$r")"
	T[new,leaf]+=" $(cbuild "$NEW" "$WORK/new" "edit l$r")"
	T[f,leaf]+=" $(floor)"
	echo "round $r: app old${T[old,bin]##* } new${T[new,bin]##* } floor${T[f,bin]##* }; ledger old${T[old,leaf]##* } new${T[new,leaf]##* } floor${T[f,leaf]##* }" >&2
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
declare -A M
for k in old new f; do for e in bin leaf; do M[$k,$e]=$(median "${T[$k,$e]}"); done; done
echo "| variant | edit in app: median (runs) | vs floor | edit in ledger: median (runs) | vs floor |"
echo "|---|---|---|---|---|"
echo "| before: $OLD | ${M[old,bin]} (${T[old,bin]# }) | $(ratio "${M[old,bin]}" "${M[f,bin]}") | ${M[old,leaf]} (${T[old,leaf]# }) | $(ratio "${M[old,leaf]}" "${M[f,leaf]}") |"
echo "| after: $NEW | ${M[new,bin]} (${T[new,bin]# }) | $(ratio "${M[new,bin]}" "${M[f,bin]}") | ${M[new,leaf]} (${T[new,leaf]# }) | $(ratio "${M[new,leaf]}" "${M[f,leaf]}") |"
echo "| floor | ${M[f,bin]} (${T[f,bin]# }) | 1.00 | ${M[f,leaf]} (${T[f,leaf]# }) | 1.00 |"
