#!/bin/sh
# gen-workspace.sh DIR: a generated workspace for benchmarks: one binary
# crate, report, depending on every crate of the builder's source but the
# Windows-only and the toolchain's own, tiny-keccak (its build script wants
# a hash feature chosen) and those cargo cannot lock from that source (an
# optional dependency Debian does not package): 107 direct dependencies,
# 115 packages locked. Needs the engine and the builder image.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
cd "$(dirname "$0")/.."
B=${BUILDER:-chefd/rust-builder:bookworm-1.96}
mkdir -p "$1/crates/report/src"
printf '[workspace]\nmembers = ["crates/report"]\nresolver = "2"\n' >"$1/Cargo.toml"
cp examples/workspace/chefd.toml "$1/chefd.toml"
sed -i 's/^bins = .*/bins = ["report"]/; s/^entrypoint = .*/entrypoint = "report"/' "$1/chefd.toml"
{
  printf '[package]\nname = "report"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n'
  docker run --rm "$B" ls /usr/share/cargo/registry |
    grep -v -e '^winapi' -e '^compiler_builtins-' -e '^rustc-std-workspace-core-' -e '^tiny-keccak-' |
    sed 's/^\(.*\)-\([0-9][0-9.]*[^/]*\)$/\1 = "=\2"/'
} >"$1/crates/report/Cargo.toml"
printf 'const GREETING: &str = "gen";\n\nfn main() { println!("{GREETING}"); }\n' >"$1/crates/report/src/main.rs"
i=0
while ! out=$(docker run --rm -v "$1":/w -w /w "$B" cargo generate-lockfile --offline 2>&1); do
  bad=$(echo "$out" | sed -n 's/.*which satisfies dependency `\([^ `]*\) = .* of package `report .*/\1/p' | tail -n 1)
  i=$((i + 1))
  if [ -z "$bad" ] || [ $i -gt 40 ]; then echo "$out" >&2; exit 1; fi
  sed -i "/^$bad = /d" "$1/crates/report/Cargo.toml"
done
