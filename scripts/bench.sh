#!/usr/bin/env bash
# bench.sh: issue-3 benchmark on the example workspace, all variants in one run.
#   (a) naive Dockerfile  (b) hand-written skeleton Dockerfile  (c) `chefd dockerfile` output
#   (d) `chefd build`     floor: `cargo build --release` of the same edit on a warm target dir,
#                         same toolchain, in a plain container (no image build)
# Each: cold (no layer cache), then after a one-line edit in the binary crate (app), then after a
# one-line edit in the leaf library (ledger). Prints a Markdown table (seconds, ratio to (a)).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
export DOCKER_BUILDKIT=1
D=/usr/bin/docker; [ -x "$D" ] || D=docker
BUILDER=${CHEFD_BUILDER_IMAGE:-chefd/rust-builder:bookworm-1.96}
RUN_ID=$(date +%s)

scripts/ensure-engine.sh >/dev/null
scripts/builder-image.sh >/dev/null
go build -o bin/chefd ./cmd/chefd
CHEFD=$PWD/bin/chefd
WORK=$(mktemp -d /tmp/chefd-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.1f'; }

# fresh copy of the example with the edits reverted
fresh() {
  rm -rf "$WORK/$1"; cp -a examples/workspace "$WORK/$1"; rm -rf "$WORK/$1/target"
  sed -i "s/^image = .*/image = \"chefd-bench-$1-$RUN_ID\"/" "$WORK/$1/chefd.toml"
}
edit_bin()  { sed -i "s/^const GREETING: &str = \"\(.*\)\";/const GREETING: \&str = \"\1 (edit $2)\";/" "$1/crates/app/src/main.rs"; }
edit_leaf() { sed -i "s/^pub const LEDGER_BANNER: &str = \"\(.*\)\";/pub const LEDGER_BANNER: \&str = \"\1 (edit $2)\";/" "$1/crates/ledger/src/lib.rs"; }

declare -A T
dbuild() { # dbuild VARIANT DIR DOCKERFILE [--no-cache]
  local t0; t0=$(now)
  $D build -q ${4:-} --build-arg BUILDER="$BUILDER" -f "$3" -t "chefd-bench-$1:$RUN_ID" "$2" >/dev/null
  secs "$t0" "$(now)"
}
cbuild() { # cbuild DIR [--no-cache]
  local t0; t0=$(now)
  "$CHEFD" -C "$1" build --json ${2:-} > "$WORK/last.json" 2>"$WORK/last.log"
  secs "$t0" "$(now)"
}
check() { # check IMAGE WANT
  $D run --rm "$1" | grep -q "$2" || { echo "bench: $1 does not print $2" >&2; exit 1; }
}

for v in a b c; do
  fresh $v
  case $v in
    a) DF=$PWD/scripts/bench/Dockerfile.naive ;;
    b) DF=$PWD/scripts/bench/Dockerfile.skeleton ;;
    c) "$CHEFD" -C "$WORK/c" dockerfile > "$WORK/Dockerfile.c"; DF=$WORK/Dockerfile.c ;;
  esac
  T[$v,cold]=$(dbuild $v "$WORK/$v" "$DF" --no-cache)
  edit_bin "$WORK/$v" 1;  T[$v,bin]=$(dbuild $v "$WORK/$v" "$DF");  check "chefd-bench-$v:$RUN_ID" "edit 1"
  edit_leaf "$WORK/$v" 2; T[$v,leaf]=$(dbuild $v "$WORK/$v" "$DF"); check "chefd-bench-$v:$RUN_ID" "edit 2"
done

fresh d
T[d,cold]=$(cbuild "$WORK/d" --no-cache)
edit_bin "$WORK/d" 1;  T[d,bin]=$(cbuild "$WORK/d");  D_BIN=$(cat "$WORK/last.json");  check "chefd-bench-d-$RUN_ID:dev" "edit 1"
edit_leaf "$WORK/d" 2; T[d,leaf]=$(cbuild "$WORK/d"); D_LEAF=$(cat "$WORK/last.json"); check "chefd-bench-d-$RUN_ID:dev" "edit 2"

# floor: warm target dir, plain container, same toolchain and flags
fresh f
VOL=chefd-bench-floor-$RUN_ID
floor() {
  local t0; t0=$(now)
  $D run --rm -v "$WORK/f:/src" -v "$VOL:/src/target" -w /src -e RUSTFLAGS="-C target-feature=+crt-static" "$BUILDER" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu --bin app --bin report >/dev/null 2>&1
  secs "$t0" "$(now)"
}
T[f,cold]=$(floor)
edit_bin "$WORK/f" 1;  T[f,bin]=$(floor)
edit_leaf "$WORK/f" 2; T[f,leaf]=$(floor)
$D volume rm "$VOL" >/dev/null

ratio() { echo "${T[$1,$2]} / ${T[a,$2]}" | bc -l | xargs printf '%.2f'; }
crates() { echo "$1" | python3 -c 'import json,sys; c=json.load(sys.stdin)["compiled"]; print("%d third-party, %d local" % (c["third_party"], c["local"]))'; }
echo
echo "| variant | cold (s) | edit in app (s) | edit in ledger (s) | app edit vs (a) | ledger edit vs (a) |"
echo "|---|---|---|---|---|---|"
for v in a b c d f; do
  name=$(case $v in a) echo "(a) naive";; b) echo "(b) skeleton";; c) echo "(c) chefd dockerfile";; d) echo "(d) chefd build";; f) echo "floor: cargo, warm target, no image";; esac)
  echo "| $name | ${T[$v,cold]} | ${T[$v,bin]} | ${T[$v,leaf]} | $(ratio $v bin) | $(ratio $v leaf) |"
done
echo
echo "(d) crates compiled: app edit: $(crates "$D_BIN"); ledger edit: $(crates "$D_LEAF")"
echo "(d) vs floor: app edit $(echo "${T[d,bin]} / ${T[f,bin]}" | bc -l | xargs printf '%.2f')x, ledger edit $(echo "${T[d,leaf]} / ${T[f,leaf]}" | bc -l | xargs printf '%.2f')x"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
for v in a b c d; do $D rmi -f "chefd-bench-$v:$RUN_ID" >/dev/null 2>&1 || true; done
$D images --format '{{.Repository}}:{{.Tag}}' | grep "chefd-bench-.*$RUN_ID" | xargs -r $D rmi -f >/dev/null 2>&1 || true
