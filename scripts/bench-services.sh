#!/usr/bin/env bash
# bench-services.sh: issue-14 benchmark. A generated workspace of N services
# (default 30) sharing three libraries and the example's dependencies; one
# edit in the most shared library (ledger, linked by every service).
#   (a) chefd, [[image]] tables: one cook, one code build, N images
#   (b) the cargo-chef way: N Dockerfiles from `chefd dockerfile` (one per
#       service, bins = [that service]), built one after another
#   (c) N separate chefd configurations (one workspace copy per service)
#   floor: one bare `cargo build` of all N binaries in the builder image,
#       warm target directory, after the same edit
# (b) and (c) cook once per service (30 cooks of ~1 min each) and build
# one service at a time: both are measured on SAMPLE services, cold and
# after the edit, and scaled to N (said in the table).
# Usage: scripts/bench-services.sh [N] (SAMPLE=3 by default; ONLY_A=1: (a)
# alone; ROUNDS=K: (a) against the floor, K edits each, medians)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
export DOCKER_BUILDKIT=1
D=/usr/bin/docker; [ -x "$D" ] || D=docker
BUILDER=${CHEFD_BUILDER_IMAGE:-chefd/rust-builder:bookworm-1.96}
N=${1:-30}
SAMPLE=${SAMPLE:-3}
RUN_ID=$(date +%s)

scripts/ensure-engine.sh >/dev/null
scripts/builder-image.sh >/dev/null
go build -o bin/chefd ./cmd/chefd
CHEFD=$PWD/bin/chefd
WORK=$(mktemp -d /tmp/chefd-bench-svc.XXXXXX)
cleanup() {
  $D images --format '{{.Repository}}:{{.Tag}}' | grep -- "-$RUN_ID" | xargs -r $D rmi -f >/dev/null 2>&1 || true
  $D images -q --filter dangling=true --filter "label=chefd.version" | xargs -r $D rmi -f >/dev/null 2>&1 || true
  $D volume rm "chefd-bench-svc-floor-$RUN_ID" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.1f'; }

# gen DIR: the workspace. A cargo alias of this run's in
# .cargo/config.toml keeps every recipe unique to the run (no cooked image
# or layer cache of an earlier run answers a cook; a local crate's version
# would not: the recipe leaves local versions out).
gen() {
  local w=$1
  mkdir -p "$w/libs" "$w/services" "$w/.cargo"
  printf '[alias]\nchefd-nonce-%s = "build"\n' "$RUN_ID" > "$w/.cargo/config.toml"
  cp -a examples/workspace/crates/ledger "$w/libs/ledger"
  sed -i 's/^version.workspace = true/version = "0.1.0"/; s/^edition.workspace = true/edition = "2021"/; /license.workspace/d; /publish.workspace/d; s/^\(serde\|serde_json\|thiserror\).workspace = true/\1 = { workspace = true }/' "$w/libs/ledger/Cargo.toml"
  mkdir -p "$w/libs/common/src" "$w/libs/wire/src"
  cat > "$w/libs/common/Cargo.toml" <<EOF
[package]
name = "common"
version = "0.1.$RUN_ID"
edition = "2021"

[dependencies]
ledger = { path = "../ledger" }
anyhow = { workspace = true }
EOF
  cat > "$w/libs/common/src/lib.rs" <<'EOF'
pub fn summary(service: &str) -> anyhow::Result<String> {
    let l = ledger::parse(ledger::SAMPLE)?;
    Ok(format!("{service}: {} ({} entries)", ledger::LEDGER_BANNER, l.entries.len()))
}
EOF
  cat > "$w/libs/wire/Cargo.toml" <<EOF
[package]
name = "wire"
version = "0.1.0"
edition = "2021"

[dependencies]
serde_json = { workspace = true }
tokio = { workspace = true }
clap = { workspace = true }
EOF
  cat > "$w/libs/wire/src/lib.rs" <<'EOF'
pub fn encode(s: &str) -> String {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    rt.block_on(async { serde_json::to_string(s).unwrap() })
}
pub fn cli() -> clap::Command { clap::Command::new("svc").arg(clap::Arg::new("x").required(false)) }
EOF
  local members='"libs/ledger", "libs/common", "libs/wire"' tables=""
  for i in $(seq 1 "$N"); do
    local s=svc$i deps='common = { path = "../../libs/common" }' body='    println!("{}", common::summary(env!("CARGO_PKG_NAME")).unwrap());'
    if (( i % 2 == 0 )); then
      deps+=$'\nwire = { path = "../../libs/wire" }'
      body+=$'\n    let _ = wire::cli().get_matches();\n    println!("{}", wire::encode("ok"));'
    fi
    mkdir -p "$w/services/$s/src"
    printf '[package]\nname = "%s"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n%s\n' "$s" "$deps" > "$w/services/$s/Cargo.toml"
    printf 'fn main() {\n%s\n}\n' "$body" > "$w/services/$s/src/main.rs"
    members+=", \"services/$s\""
    tables+=$'\n'"[[image]]"$'\n'"name = \"bench-$s-$RUN_ID\""$'\n'"bins = [\"$s\"]"$'\n'
  done
  cat > "$w/Cargo.toml" <<EOF
[workspace]
members = [$members]
resolver = "2"

[workspace.dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
thiserror = "1"
tokio = { version = "1", default-features = false, features = ["rt-multi-thread", "macros"] }
clap = { version = "4", features = ["derive"] }
anyhow = "1"
EOF
  cat > "$w/chefd.toml" <<EOF
builder-image = "$BUILDER"
runtime-image = "scratch"
target = "x86_64-unknown-linux-gnu"
rustflags = "-C target-feature=+crt-static"
$tables
EOF
}
edit_ledger() { sed -i "s/^pub const LEDGER_BANNER: &str = \"\(.*\)\";/pub const LEDGER_BANNER: \&str = \"\1 (edit $2)\";/" "$1/libs/ledger/src/lib.rs"; }
# single DIR SERVICE: the one-image configuration of one service
single() {
  sed -i '/^\[\[image\]\]/,$d' "$1/chefd.toml"
  printf 'image = "bench-single-%s-%s"\nbins = ["%s"]\n' "$2" "$RUN_ID" "$2" >> "$1/chefd.toml"
}
declare -A T
# floor: one bare cargo build of all N binaries in $WORK/f, warm target directory
VOL=chefd-bench-svc-floor-$RUN_ID
floor() {
  local t0; t0=$(now)
  $D run --rm -v "$WORK/f:/src" -v "$VOL:/src/target" -w /src -e RUSTFLAGS="-C target-feature=+crt-static" "$BUILDER" \
    cargo build --release --target x86_64-unknown-linux-gnu --bins >/dev/null 2>&1
  secs "$t0" "$(now)"
}

# (a) chefd, one cook and one code build
gen "$WORK/a"
t0=$(now); "$CHEFD" -C "$WORK/a" build --json --no-cache > "$WORK/a.cold.json" 2>"$WORK/a.cold.log"; T[a,cold]=$(secs "$t0" "$(now)")
edit_ledger "$WORK/a" 1
t0=$(now); "$CHEFD" -C "$WORK/a" build --json > "$WORK/a.edit.json" 2>"$WORK/a.edit.log"; T[a,edit]=$(secs "$t0" "$(now)")
$D run --rm "bench-svc1-$RUN_ID:dev" | grep -q "edit 1" || { echo "bench: svc1 does not print the edit" >&2; exit 1; }
CHANGED=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(1 for i in r["images"] if i["changed"]), "of", len(r["images"]))' "$WORK/a.edit.json")
PHASES=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(", ".join("%s %.1fs" % (p["name"], p["duration_ns"]/1e9) for p in r["phases"]))' "$WORK/a.edit.json")
echo "(a) cold ${T[a,cold]} s, after the edit ${T[a,edit]} s ($CHANGED images changed; $PHASES)" >&2

if [ -n "${ONLY_A:-}" ]; then exit 0; fi # ONLY_A=1: (a) alone

# ROUNDS=K: (a) against the floor alone, K more edits of ledger each, one
# after the other, and the medians (the code build varies by seconds
# between runs on 2 cores, so one edit says little)
if [ -n "${ROUNDS:-}" ]; then
  gen "$WORK/f"
  floor >/dev/null
  edit_ledger "$WORK/f" 1
  floor >/dev/null
  A=() F=()
  for r in $(seq 2 $((ROUNDS + 1))); do
    edit_ledger "$WORK/a" "$r"
    t0=$(now); "$CHEFD" -C "$WORK/a" build --json > "$WORK/a.r.json" 2>"$WORK/a.r.log"; A+=("$(secs "$t0" "$(now)")")
    $D run --rm "bench-svc1-$RUN_ID:dev" | grep -q "edit $r" || { echo "bench: svc1 does not print edit $r" >&2; exit 1; }
    P=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(", ".join("%s %.1fs" % (p["name"], p["duration_ns"]/1e9) for p in r["phases"]))' "$WORK/a.r.json")
    edit_ledger "$WORK/f" "$r"
    F+=("$(floor)")
    echo "round $r: (a) ${A[-1]} s ($P), floor ${F[-1]} s" >&2
  done
  med() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
  ma=$(med "${A[@]}") mf=$(med "${F[@]}")
  echo "| $N services, one edit of ledger | (a) chefd: one code build, $N images | floor: bare cargo build | (a) / floor |"
  echo "|---|---|---|---|"
  echo "| median of $ROUNDS | $ma s | $mf s | $(echo "$ma / $mf" | bc -l | xargs printf '%.2f')x |"
  exit 0
fi

# (b) the cargo-chef way: a Dockerfile per service, built one after another
gen "$WORK/b"
mkdir -p "$WORK/bcfg"; cp "$WORK/b/chefd.toml" "$WORK/bcfg/chefd.toml.orig"
for i in $(seq 1 "$N"); do
  mkdir -p "$WORK/bcfg/svc$i"
  cp "$WORK/bcfg/chefd.toml.orig" "$WORK/b/chefd.toml"; single "$WORK/b" "svc$i"
  "$CHEFD" -C "$WORK/b" dockerfile > "$WORK/bcfg/svc$i/Dockerfile"
done
cold=0 edit=0
for i in $(seq 1 "$SAMPLE"); do
  t0=$(now); $D build -q --build-arg BUILDER="$BUILDER" -f "$WORK/bcfg/svc$i/Dockerfile" -t "bench-b-svc$i-$RUN_ID" "$WORK/b" >/dev/null
  cold=$(echo "$cold + $(secs "$t0" "$(now)")" | bc -l)
done
edit_ledger "$WORK/b" 1
for i in $(seq 1 "$SAMPLE"); do
  t0=$(now); $D build -q --build-arg BUILDER="$BUILDER" -f "$WORK/bcfg/svc$i/Dockerfile" -t "bench-b-svc$i-$RUN_ID" "$WORK/b" >/dev/null
  edit=$(echo "$edit + $(secs "$t0" "$(now)")" | bc -l)
done
T[b,cold]=$(echo "$cold * $N / $SAMPLE" | bc -l | xargs printf '%.0f')
T[b,edit]=$(echo "$edit * $N / $SAMPLE" | bc -l | xargs printf '%.0f')
echo "(b) $SAMPLE services: cold $cold s, after the edit $edit s" >&2

# (c) N separate chefd configurations
gen "$WORK/c0"
cold=0 edit=0
for i in $(seq 1 "$SAMPLE"); do
  cp -a "$WORK/c0" "$WORK/c$i"; single "$WORK/c$i" "svc$i"
  t0=$(now); "$CHEFD" -C "$WORK/c$i" build --json > /dev/null 2>"$WORK/c.log"; cold=$(echo "$cold + $(secs "$t0" "$(now)")" | bc -l)
done
for i in $(seq 1 "$SAMPLE"); do
  edit_ledger "$WORK/c$i" 1
  t0=$(now); "$CHEFD" -C "$WORK/c$i" build --json > /dev/null 2>"$WORK/c.log"; edit=$(echo "$edit + $(secs "$t0" "$(now)")" | bc -l)
done
T[c,cold]=$(echo "$cold * $N / $SAMPLE" | bc -l | xargs printf '%.0f')
T[c,edit]=$(echo "$edit * $N / $SAMPLE" | bc -l | xargs printf '%.0f')
echo "(c) $SAMPLE services: cold $cold s, after the edit $edit s" >&2

gen "$WORK/f"
T[f,cold]=$(floor)
edit_ledger "$WORK/f" 1
T[f,edit]=$(floor)

echo
echo "$N services, one edit in ledger (linked by all); seconds. (b) and (c): $SAMPLE services timed, scaled to $N."
echo
echo "| variant | cold (s) | after the edit (s) | after the edit vs (a) |"
echo "|---|---|---|---|"
for v in a b c f; do
  name=$(case $v in a) echo "(a) chefd, [[image]] tables: one cook, one code build";; b) echo "(b) cargo-chef way: $N Dockerfiles, one after another";; c) echo "(c) $N separate chefd configurations";; f) echo "floor: one cargo build of the $N binaries, warm target";; esac)
  echo "| $name | ${T[$v,cold]} | ${T[$v,edit]} | $(echo "${T[$v,edit]} / ${T[a,edit]}" | bc -l | xargs printf '%.2f')x |"
done
echo
echo "(a) after the edit: $CHANGED images changed; (a) vs floor: $(echo "${T[a,edit]} / ${T[f,edit]}" | bc -l | xargs printf '%.2f')x"
echo "(a) phases after the edit: $PHASES"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
