#!/usr/bin/env bash
# builder-image.sh: build, once per machine, the offline Rust builder image used by chefd and its tests.
#
#   scripts/builder-image.sh           # no-op when the image exists
#   CHEFD_BUILDER_IMAGE=my/rust:tag scripts/builder-image.sh
#
# What it builds (no registry involved; only the Debian mirror is needed):
#   debootstrap --variant=minbase bookworm + gcc, libc6-dev, ca-certificates
#   + rustc-web/cargo-web 1.96 from bookworm-security (installs /usr/bin/rustc, /usr/bin/cargo)
#   + Debian librust-*-dev crate sources in /usr/share/cargo/registry, configured as a cargo directory
#     source replacing crates.io ($CARGO_HOME/config.toml, [net] offline = true)
#   -> `docker import` as a single-layer image, ENV CARGO_HOME/PATH/LANG, WORKDIR /src, LABEL chefd.builder=1.
#
# Measured (2 cores, Debian bookworm host, deb.debian.org, engine 20.10): fresh build 1m32s end to end,
#   including apt-get update + installing debootstrap on the host (~4 s); debootstrap minbase 50 s,
#   chroot apt-get update + install (rustc-web, cargo-web, 13 crate packages) 28 s, smoke test <1 s,
#   tar | docker import 8 s. Rootfs 838 MB, image 844 MB, 117 crate directories (67 MB).
#   Same script again into another tag while the 2 cores were busy with other jobs (load 4.5): 2m06s.
#   Second run: 0.13 s (image reused).
#
# Environment:
#   CHEFD_BUILDER_IMAGE   image tag                 (default chefd/rust-builder:bookworm-1.96)
#   CHEFD_DEBIAN_MIRROR   Debian mirror             (default http://deb.debian.org/debian)
#   CHEFD_SECURITY_MIRROR Debian security mirror    (default http://deb.debian.org/debian-security)
#   CHEFD_EXTRA_CRATES    extra apt package names to install into the image (space separated)
#   CHEFD_FORCE_REBUILD=1 rebuild even if the image exists (the old image becomes untagged)
#   DOCKER                docker client             (default /usr/bin/docker, else docker on PATH)
#   TMPDIR                where the ~0.9 GB rootfs is assembled (default /var/tmp)
set -euo pipefail

TAG=${CHEFD_BUILDER_IMAGE:-chefd/rust-builder:bookworm-1.96}
MIRROR=${CHEFD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SEC_MIRROR=${CHEFD_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=bookworm
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ -n "${DOCKER:-}" ]; then :
elif [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker
else DOCKER=docker
fi

# Crate sources. Version-qualified names; default features listed explicitly because the base
# packages only *recommend* them and recommends are off (see shared notes §5).
CRATES=(
	librust-serde-1+default-dev librust-serde-1+derive-dev
	librust-serde-json-1+default-dev
	librust-thiserror-1+default-dev
	librust-tokio-1+default-dev librust-tokio-1+full-dev
	librust-clap-4+default-dev librust-clap-4+derive-dev
	librust-anyhow-1+default-dev
	librust-regex-1+default-dev
	librust-log-0.4+default-dev
	librust-itoa-1+default-dev
	librust-ryu-1+default-dev
)
# shellcheck disable=SC2206
EXTRA=(${CHEFD_EXTRA_CRATES:-})

say() { printf 'builder-image: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

image_exists() { "$DOCKER" image inspect "$TAG" >/dev/null 2>&1; }

# Engine reachable? If not, try to start one (no-op when one answers or DOCKER_HOST is set).
if ! "$DOCKER" version >/dev/null 2>&1; then
	"$HERE/ensure-engine.sh"
	"$DOCKER" version >/dev/null 2>&1 || die "no Docker engine answers; run scripts/ensure-engine.sh or set DOCKER_HOST"
fi

if image_exists && [ "${CHEFD_FORCE_REBUILD:-0}" != 1 ]; then
	say "reusing existing image $TAG ($("$DOCKER" image inspect -f '{{.Id}}' "$TAG" | cut -c1-19))"
	exit 0
fi

[ "$(id -u)" -eq 0 ] || die "building $TAG needs root (debootstrap, chroot); run as root or import the image from another machine"
command -v apt-get >/dev/null 2>&1 || die "building $TAG needs a Debian/Ubuntu host with apt-get"

# One build per machine at a time: concurrent callers wait here, then reuse the result.
LOCK=/var/lock/chefd-builder-image.lock
exec 9>"$LOCK"
if ! flock -n 9; then
	say "another builder-image.sh is running; waiting for it"
	flock 9
fi
if image_exists && [ "${CHEFD_FORCE_REBUILD:-0}" != 1 ]; then
	say "reusing existing image $TAG (built by a concurrent run)"
	exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	# (no 'apt-cache … | grep -q' here: with pipefail, grep -q closing early makes the pipe fail)
	if ! apt-cache policy debootstrap 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null; then
		say "apt-get update (debootstrap unknown to the package lists)"
		apt-get update -q
	fi
	say "installing debootstrap on the host"
	apt-get install -y -q --no-install-recommends debootstrap \
		|| { apt-get update -q && apt-get install -y -q --no-install-recommends debootstrap; }
fi

START=$(date +%s)
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/chefd-builder.XXXXXX")
ROOT="$WORK/rootfs"

cleanup() {
	local rc=$?
	for m in "$ROOT/proc" "$ROOT/dev/pts"; do
		if mountpoint -q "$m" 2>/dev/null; then umount "$m" || umount -l "$m" || true; fi
	done
	if mountpoint -q "$ROOT/proc" 2>/dev/null; then
		say "warning: $ROOT/proc still mounted; leaving $WORK in place"
	else
		rm -rf --one-file-system "$WORK"
	fi
	[ "$rc" -eq 0 ] || say "failed (exit $rc); the rootfs was removed"
}
trap cleanup EXIT

step() { say "[$(( $(date +%s) - START ))s] $*"; }

step "debootstrap --variant=minbase $SUITE into $ROOT (this takes 1-2 minutes)"
debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates \
	"$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
	|| { tail -n 20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }

step "adding $SUITE-security and installing rustc-web, cargo-web and ${#CRATES[@]} crate packages"
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $SEC_MIRROR $SUITE-security main
EOF
# No docs, man pages or translations in the image (also for later apt-get installs inside it).
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/01-chefd-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" # DNS for apt inside the chroot
mount -t proc proc "$ROOT/proc"
chroot "$ROOT" apt-get update -q >"$WORK/apt.log" 2>&1 \
	|| { tail -n 20 "$WORK/apt.log" >&2; die "apt-get update in the chroot failed"; }
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	rustc-web cargo-web "${CRATES[@]}" "${EXTRA[@]}" >>"$WORK/apt.log" 2>&1 \
	|| { tail -n 30 "$WORK/apt.log" >&2; die "apt-get install in the chroot failed"; }
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin
rm -rf "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
	"$ROOT"/usr/share/locale/* "$ROOT"/usr/share/lintian/* "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/*

step "configuring cargo (directory source replacing crates.io, offline)"
install -d "$ROOT/usr/local/cargo/bin"
cat >"$ROOT/usr/local/cargo/config.toml" <<'EOF'
# chefd builder image: crates come from Debian's librust-*-dev packages, never from the network.
[source.crates-io]
replace-with = "debian-packages"

[source.debian-packages]
directory = "/usr/share/cargo/registry"

[net]
offline = true
EOF

# Smoke test: toolchain runs and every packaged crate resolves offline with the requested features.
step "smoke test: rustc/cargo versions and offline resolution of the packaged crates"
install -d "$ROOT/tmp/smoke/src"
cat >"$ROOT/tmp/smoke/Cargo.toml" <<'EOF'
[package]
name = "smoke"
version = "0.0.0"
edition = "2021"

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
thiserror = "1"
tokio = { version = "1", features = ["full"] }
clap = { version = "4", features = ["derive"] }
anyhow = "1"
regex = "1"
log = "0.4"
itoa = "1"
ryu = "1"
EOF
echo 'fn main() {}' >"$ROOT/tmp/smoke/src/main.rs"
VERSIONS=$(chroot "$ROOT" env CARGO_HOME=/usr/local/cargo PATH=/usr/bin:/bin sh -c \
	'rustc --version && cargo --version && cd /tmp/smoke && cargo generate-lockfile --offline -q && grep -c "^name = " Cargo.lock') \
	|| die "smoke test failed inside the rootfs"
printf '%s\n' "$VERSIONS" | sed 's/^/builder-image:   /' >&2
rm -rf "$ROOT/tmp/smoke" "$ROOT/root/.cargo" "$ROOT/usr/local/cargo/registry"
RUSTC_VERSION=$(printf '%s\n' "$VERSIONS" | sed -n '1s/^rustc \([^ ]*\).*/\1/p')
umount "$ROOT/proc"

: >"$ROOT/etc/resolv.conf" # docker bind-mounts its own
echo chefd-builder >"$ROOT/etc/hostname"
CRATE_DIRS=$(find "$ROOT/usr/share/cargo/registry" -mindepth 1 -maxdepth 1 -type d | wc -l)

step "importing into docker as $TAG ($(du -sh "$ROOT" | cut -f1) rootfs, $CRATE_DIRS crate directories)"
tar --numeric-owner -C "$ROOT" -c . | "$DOCKER" import \
	--change 'ENV CARGO_HOME=/usr/local/cargo' \
	--change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--change 'ENV LANG=C.UTF-8' \
	--change 'WORKDIR /src' \
	--change 'CMD ["/bin/bash"]' \
	--change 'LABEL chefd.builder=1' \
	--change "LABEL chefd.builder.rustc=$RUSTC_VERSION" \
	--change "LABEL chefd.builder.suite=$SUITE" \
	- "$TAG" >/dev/null

step "done: $TAG $("$DOCKER" image inspect -f '{{.Id}}' "$TAG" | cut -c1-19), $("$DOCKER" image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%d MB", $1/1000000}'), rustc $RUSTC_VERSION"
