#!/usr/bin/env bash
# bench-loop.sh (issue 12): edit -> image in loop mode (the daemon's
# incremental release builds) and in exact mode (`build --wait --exact`),
# side by side in one run, with the bare-cargo floors of the same edit in
# the builder image on a warm target dir: release, and release with
# CARGO_INCREMENTAL=1. Two workspaces:
#   big     - a generated one-crate application of 18,600 lines (40 modules) with
#             the example's dependencies (serde, serde_json, clap, tokio,
#             anyhow); the edit changes a string constant in main.rs
#   example - examples/workspace; the edit changes app's GREETING
# Every image must print its edit. Prints a Markdown table of medians.
#   scripts/bench-loop.sh [ROUNDS [WORKSPACE...]]   (default 3, big example)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
shift || true
[ $# -gt 0 ] || set -- big example
B=chefd/rust-builder:bookworm-1.96
RUN_ID=$(date +%s)
W=$(mktemp -d /tmp/chefd-bench-loop.XXXXXX)
go build -o "$W/chefd" ./cmd/chefd
C=$W/chefd
cleanup() {
	for ws in big example; do [ -d "$W/$ws" ] && "$C" -C "$W/$ws" stop >/dev/null 2>&1 || true; done
	docker run --rm -v "$W":/w "$B" rm -rf /w/big-floor /w/example-floor >/dev/null 2>&1 || true
	rm -rf "$W"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.2f\n'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
FLAGS=(-e RUSTFLAGS="-C target-feature=+crt-static")
CARGO=(cargo build --release --target x86_64-unknown-linux-gnu)

gen_big() { # dir: one crate, 40 modules of ~500 lines
	local d=$1
	mkdir -p "$d/src"
	cat >"$d/Cargo.toml" <<'TOML'
[package]
name = "big"
version = "0.1.0"
edition = "2021"

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
anyhow = "1"
clap = { version = "4", features = ["derive"] }
tokio = { version = "1", default-features = false, features = ["rt-multi-thread", "macros"] }
TOML
	sed -e 's/^image = .*/image = "chefd-bench-loop-big-'"$RUN_ID"'"/' -e 's/^bins = .*/bins = ["big"]/' \
		-e 's/^entrypoint = .*/entrypoint = "big"/' examples/workspace/chefd.toml >"$d/chefd.toml"
	echo 'loop = true' >>"$d/chefd.toml"
	{
		echo 'const GREETING: &str = "edit 0";'
		for m in $(seq 0 39); do echo "mod m$m;"; done
		echo 'fn main() -> anyhow::Result<()> {'
		echo '    let mut acc: u64 = 0;'
		for m in $(seq 0 39); do echo "    acc = acc.wrapping_add(m$m::run($m));"; done
		echo '    let v = serde_json::json!({"greeting": GREETING, "acc": acc});'
		echo '    println!("big: {GREETING} {}", v["acc"]);'
		echo '    Ok(())'
		echo '}'
	} >"$d/src/main.rs"
	for m in $(seq 0 39); do
		awk -v m="$m" 'BEGIN {
			print "use serde::{Deserialize, Serialize};"
			print "#[derive(Serialize, Deserialize, Debug, Clone, Default)]"
			print "pub struct Rec" m " { pub a: u64, pub b: String, pub c: Vec<u32> }"
			for (f = 0; f < 24; f++) {
				print "pub fn f" f "(x: u64) -> u64 {"
				print "    let mut r = Rec" m " { a: x, b: format!(\"{}-{}\", x, " f "), c: vec![] };"
				print "    for i in 0..(x % 7 + 3) {"
				print "        r.c.push((i as u32).wrapping_mul(" f + 3 ") ^ " m ");"
				print "        r.a = r.a.rotate_left(3) ^ (i * " f + 11 ");"
				print "    }"
				print "    let s = serde_json::to_string(&r).unwrap_or_default();"
				print "    let back: Rec" m " = serde_json::from_str(&s).unwrap_or_default();"
				print "    let mut h = back.a;"
				print "    for b in back.b.bytes() { h = h.wrapping_mul(31).wrapping_add(b as u64); }"
				print "    match h % 4 {"
				print "        0 => h.wrapping_add(" f "),"
				print "        1 => h ^ 0x" sprintf("%x", m * 977 + f) ","
				print "        2 => h.rotate_right(" (f % 63) + 1 "),"
				print "        _ => h.wrapping_sub(back.c.len() as u64),"
				print "    }"
				print "}"
				print ""
			}
			print "pub fn run(seed: u64) -> u64 {"
			print "    let mut acc = seed;"
			for (f = 0; f < 24; f++) print "    acc = acc.wrapping_add(f" f "(acc % 1000));"
			print "    acc"
			print "}"
		}' >"$d/src/m$m.rs"
	done
	docker run --rm -v "$d":/w -w /w "$B" cargo generate-lockfile --offline >/dev/null 2>&1
}

setup() { # ws
	local d=$W/$1
	if [ "$1" = big ]; then gen_big "$d"; else
		cp -a examples/workspace "$d"; rm -rf "$d/target"
		sed -i "s/^image = .*/image = \"chefd-bench-loop-example-$RUN_ID\"/" "$d/chefd.toml"
		echo 'loop = true' >>"$d/chefd.toml"
	fi
	# unique recipe: no cooked image or layer from an earlier run
	mkdir -p "$d/.cargo"; printf '[alias]\nchefd-nonce-%s = "build"\n' "$RUN_ID" >"$d/.cargo/config.toml"
	cp -a "$d" "$W/$1-floor"
}
edit() { # ws n
	local f
	if [ "$1" = big ]; then f=$W/$1/src/main.rs; else f=$W/$1/crates/app/src/main.rs; fi
	sed -i "s/^const GREETING: &str = \".*\";/const GREETING: \&str = \"edit $2\";/" "$f"
	sed -i "s/^const GREETING: &str = \".*\";/const GREETING: \&str = \"edit $2\";/" "${f/$W\/$1\//$W/$1-floor/}"
}
check() { # image n (the whole output first: grep -q would cut docker run short, and pipefail fail it)
	local out
	out=$(docker run --rm "$1" 2>&1) || true
	case $out in *"edit $2"*) ;; *) echo "bench-loop: image $1 does not print edit $2: $out" >&2; exit 1 ;; esac
}
floor() { # ws env...
	local ws=$1; shift
	local t0; t0=$(now)
	docker run --rm "${FLAGS[@]}" "$@" -v "$W/$ws-floor":/w -w /w "$B" "${CARGO[@]}" >/dev/null 2>&1
	secs "$t0" "$(now)"
}

echo "| workspace | loop (s) | exact (s) | floor release (s) | floor release+incremental (s) | loop / floor release | loop / exact |"
echo "|---|---|---|---|---|---|---|"
for ws in "$@"; do
	setup "$ws"
	"$C" -C "$W/$ws" start >/dev/null
	"$C" -C "$W/$ws" build --wait >/dev/null 2>&1           # cook, first loop build
	"$C" -C "$W/$ws" build --wait --exact >/dev/null 2>&1   # first exact build
	floor "$ws" >/dev/null                                   # warm floor target dirs
	floor "$ws" -e CARGO_INCREMENTAL=1 -e CARGO_TARGET_DIR=/w/target-inc >/dev/null
	: >"$W/loop"; : >"$W/exact"; : >"$W/fr"; : >"$W/fi"
	for n in $(seq 1 "$ROUNDS"); do
		edit "$ws" "$n"
		t0=$(now); img=$("$C" -C "$W/$ws" build --wait 2>/dev/null); secs "$t0" "$(now)" >>"$W/loop"; check "$img" "$n"
		t0=$(now); img=$("$C" -C "$W/$ws" build --wait --exact 2>/dev/null); secs "$t0" "$(now)" >>"$W/exact"; check "$img" "$n"
		floor "$ws" >>"$W/fr"
		floor "$ws" -e CARGO_INCREMENTAL=1 -e CARGO_TARGET_DIR=/w/target-inc >>"$W/fi"
	done
	"$C" -C "$W/$ws" stop >/dev/null 2>&1 || true
	l=$(median <"$W/loop"); e=$(median <"$W/exact"); fr=$(median <"$W/fr"); fi=$(median <"$W/fi")
	echo "| $ws | $l | $e | $fr | $fi | $(echo "scale=2; $l / $fr" | bc) | $(echo "scale=2; $l / $e" | bc) |"
done
