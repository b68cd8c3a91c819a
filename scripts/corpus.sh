#!/usr/bin/env bash
# Real-world recipe fidelity: fetch the crate sources of Debian's
# librust-*-dev packages (about 1,500 published crates) and check each one
# with TestFidelityCorpus (cargo metadata on the skeleton against the
# original). Needs apt (Debian or Ubuntu) and cargo.
#
#   scripts/corpus.sh [DIR]      # DIR defaults to /tmp/chefd-corpus
set -euo pipefail
dir=${1:-/tmp/chefd-corpus}
debs="$dir/debs"
crates="$dir/crates"
mkdir -p "$debs" "$crates"
if [ -z "$(ls -A "$crates")" ]; then
	apt-cache search --names-only '^librust-.*-dev$' | awk '{print $1}' | grep -v -- '+' | sort -u >"$dir/packages.txt"
	echo "downloading $(wc -l <"$dir/packages.txt") packages into $debs" >&2
	(cd "$debs" && xargs -a "$dir/packages.txt" apt-get download -q >/dev/null)
	tmp=$(mktemp -d)
	for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$tmp"; done
	cp -r "$tmp"/usr/share/cargo/registry/* "$crates"/
	rm -rf "$tmp"
fi
cd "$(dirname "$0")/.."
CHEFD_CORPUS="$crates" go test ./recipe -run TestFidelityCorpus -count 1 -v -timeout 60m |
	grep -E -- '--- FAIL|fidelity_test.go:[0-9]+: map|^(ok|FAIL)'
