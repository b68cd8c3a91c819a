#!/usr/bin/env bash
# Real workspaces from Debian source packages: rustc 1.85 (116 packages, 485
# locked), cargo 0.66, bat, fd-find and ripgrep. Fetches and unpacks them
# (needs deb-src for bookworm), drops the workspace members Debian's tarball
# removed, then runs TestFidelityCorpus on them and times `cargo metadata`
# against `chefd prepare`, cold (empty recipe cache) and warm.
#
#   scripts/realws.sh [DIR]      # DIR defaults to /tmp/chefd-realws
set -euo pipefail
dir=${1:-/tmp/chefd-realws}
mkdir -p "$dir/src" "$dir/ws"
if [ -z "$(ls -A "$dir/ws")" ]; then
	# apt-get source writes to the current directory: only ever in $dir/src
	if ! (cd "$dir/src" && apt-get source --print-uris -q cargo >/dev/null 2>&1); then
		cat >/etc/apt/sources.list.d/chefd-debsrc.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
		apt-get update -q >/dev/null
	fi
	(cd "$dir/src" && apt-get source --download-only -q cargo rustc-web rust-bat rust-fd-find rust-ripgrep >/dev/null)
	for t in "$dir"/src/*.orig.tar.*; do tar -C "$dir/ws" -xf "$t"; done
	rm -rf "$dir"/ws/*vendor* 2>/dev/null || true
	# Debian's rustc tarball lacks some members: drop them from the list
	python3 - "$dir"/ws/rustc-*-src/Cargo.toml <<'PY'
import os, re, sys
p = sys.argv[1]
root = os.path.dirname(p)
s = open(p).read()
s = re.sub(r'^\s*"([^"]+)",\n', lambda m: m.group(0) if os.path.exists(os.path.join(root, m.group(1), 'Cargo.toml')) else '', s, flags=re.M)
open(p, 'w').write(s)
PY
fi
cd "$(dirname "$0")/.."
CHEFD_CORPUS="$dir/ws" go test ./recipe -run TestFidelityCorpus -count 1 -v -timeout 30m |
	grep -E -- '--- (FAIL|PASS)|fidelity_test.go:[0-9]+: map|^(ok|FAIL)'
go build -o "$dir/chefd" ./cmd/chefd
cargo=$(rustup which cargo 2>/dev/null || command -v cargo)
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
printf '%-22s %-24s %-24s %-24s\n' workspace 'cargo metadata (ms)' 'chefd cold (ms)' 'chefd warm (ms)'
for ws in "$dir"/ws/*/; do
	c="" cold="" warm=""
	for _ in 1 2 3 4 5; do
		c="$c $(cd "$ws" && ms "$cargo" metadata --no-deps --offline --format-version 1)"
		rm -rf "$dir/cache"
		cold="$cold $(XDG_CACHE_HOME="$dir/cache" ms "$dir/chefd" -C "$ws" prepare)"
	done
	sleep 2.1 # past the cache's racy window
	XDG_CACHE_HOME="$dir/cache" "$dir/chefd" -C "$ws" prepare >/dev/null
	for _ in 1 2 3 4 5; do warm="$warm $(XDG_CACHE_HOME="$dir/cache" ms "$dir/chefd" -C "$ws" prepare)"; done
	printf '%-22s %-24s %-24s %-24s\n' "$(basename "$ws")" "$c" "$cold" "$warm"
done
