#!/bin/sh
# Delta cooks (issue 11): for "add one dependency" (regex, new to the
# example) and "bump one version" (a vendored crate, 0.1.0 -> 0.1.1, with
# the example's dependencies), on a copy of examples/workspace:
#   full  - `chefd cook --no-cache` of the new recipe (a cook from nothing)
#   delta - `chefd cook` of the new recipe after a cook of the old one
#   floor - bare `cargo build` in the builder image, warm target directory
#           (built before the edit), after the same manifest edit
# and "add petgraph" and the same bump on a generated workspace ("gen")
# whose one crate depends on every crate of the builder's source (115
# packages locked).
# Every recipe is made unique (a cargo alias in .cargo/config.toml), so no
# figure is BuildKit's layer cache. Prints a table; needs the engine and the
# builder image. Usage: scripts/bench-delta.sh [example|example-small|gen|gen-add|gen-bump]...
# (default example gen)
set -eu
cd "$(dirname "$0")/.."
go build -o bin/chefd ./cmd/chefd
B=chefd/rust-builder:bookworm-1.96
W=$(mktemp -d /tmp/chefd-bench-delta.XXXXXX)
trap 'rm -rf "$W"' EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc | sed 's/^\./0./; s/\(\.[0-9]\).*/\1/'; }
relock() { docker run --rm -v "$1":/w -w /w "$B" cargo generate-lockfile --offline >/dev/null 2>&1; }

setup() { # dir image
  if [ "$WS" = gen ]; then gen_setup "$1"; else cp -a examples/workspace "$1"; fi
  sed -i "s/^image = .*/image = \"$2\"/" "$1/chefd.toml"
  mkdir -p "$1/.cargo"
  printf '[alias]\nchefd-nonce-%s = "build"\n' "$(date +%s%N)" >"$1/.cargo/config.toml"
}

# vendored: the builder's crate source copied into the workspace as a
# directory source (vendor/), plus chefd-bench-tiny 0.1.0 (the bump adds
# 0.1.1 to vendor/ as cargo vendor would).
vendor_setup() { # dir
  mkdir -p "$1/vendor"
  docker run --rm -v "$1/vendor":/out "$B" sh -c 'cp -a /usr/share/cargo/registry/. /out/'
  vendor_tiny "$1" 0.1.0
  printf '[source.crates-io]\nreplace-with = "vendored"\n\n[source.vendored]\ndirectory = "vendor"\n' >>"$1/.cargo/config.toml"
}

# vendor_tiny dir version: chefd-bench-tiny of that version in vendor/, as
# `cargo vendor` adds a bumped crate
vendor_tiny() {
  d="$1/vendor/chefd-bench-tiny-$2"; mkdir -p "$d/src"
  printf '[package]\nname = "chefd-bench-tiny"\nversion = "%s"\nedition = "2021"\n' "$2" >"$d/Cargo.toml"
  printf 'pub fn v() -> &%sstatic str { "%s" }\n' "'" "$2" >"$d/src/lib.rs"
  echo '{"files":{},"package":null}' >"$d/.cargo-checksum.json"
}

# gen: scripts/gen-workspace.sh (115 packages locked)
gen_setup() { scripts/gen-workspace.sh "$1"; }

run() { # name edit-function
  name=$1; edit=$2
  a="$W/$WS-$name-a"; b="$W/$WS-$name-b"; f="$W/$WS-$name-floor"
  setup "$a" "chefd-bench-delta-$WS-$name-$$"
  $edit before "$a"; relock "$a"
  bin/chefd -C "$a" cook >/dev/null 2>&1                    # the old recipe, from nothing
  $edit after "$a"; relock "$a"
  t0=$(now); bin/chefd -C "$a" cook >"$W/out" 2>&1; t1=$(now)
  delta=$(secs "$t0" "$t1"); dline=$(tail -n 1 "$W/out")
  cp -a "$a" "$b"; sed -i "s/^image = .*/image = \"chefd-bench-delta-$WS-$name-full-$$\"/" "$b/chefd.toml"
  t0=$(now); bin/chefd -C "$b" cook --no-cache >"$W/out" 2>&1; t1=$(now)
  full=$(secs "$t0" "$t1"); fline=$(tail -n 1 "$W/out")
  # floor: the real workspace, warm target dir from before the edit
  setup "$f" "unused"; $edit before "$f"; relock "$f"
  docker run --rm -e RUSTFLAGS="-C target-feature=+crt-static" -v "$f":/w -w /w "$B" cargo build --release --target x86_64-unknown-linux-gnu >/dev/null 2>&1
  $edit after "$f"; relock "$f"
  t0=$(now)
  docker run --rm -e RUSTFLAGS="-C target-feature=+crt-static" -v "$f":/w -w /w "$B" cargo build --release --target x86_64-unknown-linux-gnu >/dev/null 2>&1
  t1=$(now); floor=$(secs "$t0" "$t1")
  docker run --rm -v "$f":/w "$B" rm -rf /w/target
  echo "| $WS | $name | $full | $delta | $floor | $(echo "scale=1; $full / $delta" | bc) | $dline |"
  for i in "chefd-bench-delta-$WS-$name-$$" "chefd-bench-delta-$WS-$name-full-$$"; do
    docker images --format '{{.Repository}}:{{.Tag}}' | grep "^$i" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  done
}

add_regex() { # before|after dir
  [ "$1" = after ] && sed -i 's/^\[dependencies\]$/[dependencies]\nregex = "1"/' "$2/crates/report/Cargo.toml"
  return 0
}
bump_tiny() {
  if [ "$1" = before ]; then
    vendor_setup "$2"
    sed -i 's/^\[dependencies\]$/[dependencies]\nchefd-bench-tiny = "=0.1.0"/' "$2/crates/report/Cargo.toml"
  else
    vendor_tiny "$2" 0.1.1
    sed -i 's/chefd-bench-tiny = "=0.1.0"/chefd-bench-tiny = "=0.1.1"/' "$2/crates/report/Cargo.toml"
  fi
}

# small dependencies of the example: ryu, already in the lockfile (as
# serde_json's), and fixedbitset, new and without dependencies
add_ryu() {
  [ "$1" = after ] && sed -i 's/^\[dependencies\]$/[dependencies]\nryu = "1"/' "$2/crates/report/Cargo.toml"
  return 0
}
add_fixedbitset() {
  [ "$1" = after ] && sed -i 's/^\[dependencies\]$/[dependencies]\nfixedbitset = "=0.4.2"/' "$2/crates/report/Cargo.toml"
  return 0
}

add_petgraph() { # gen: petgraph (and fixedbitset, which only it uses), new
  if [ "$1" = before ]; then
    sed -i -e '/^petgraph = /d' -e '/^fixedbitset = /d' "$2/crates/report/Cargo.toml"
  else
    sed -i 's/^\[dependencies\]$/[dependencies]\npetgraph = "=0.6.2"/' "$2/crates/report/Cargo.toml"
  fi
}

echo "| workspace | change | full cook (s) | delta cook (s) | floor (s) | full / delta | delta cook says |"
echo "|---|---|---|---|---|---|---|"
[ $# -gt 0 ] || set -- example gen
for WS in "$@"; do
  case $WS in
  gen-add) WS=gen; run add-petgraph add_petgraph ;;
  gen-bump) WS=gen; run bump-version bump_tiny ;;
  example) run add-regex add_regex; run bump-version bump_tiny ;;
  example-small) WS=example; run add-ryu add_ryu; run add-fixedbitset add_fixedbitset ;;
  gen) run add-petgraph add_petgraph; run bump-version bump_tiny ;;
  *) echo "unknown workspace $WS" >&2; exit 2 ;;
  esac
done
