#!/usr/bin/env bash
# test.sh: the whole test suite: formatting and vet, unit tests, recipe
# fidelity against cargo, and end-to-end builds on a real Docker engine.
# Under CI (CI set) a missing engine, builder image or cargo is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/.cargo/bin:$PATH"

if ! scripts/ensure-engine.sh; then
  if [ -n "${CI:-}" ]; then echo "test.sh: no Docker engine (required under CI)" >&2; exit 1; fi
  echo "test.sh: no Docker engine: end-to-end tests will be skipped" >&2
else
  scripts/builder-image.sh
fi

# A real registry for the shared cooked image tests (Debian's
# docker-registry; each test starts its own on a loopback port).
if ! command -v docker-registry >/dev/null && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-registry >/dev/null 2>&1 ||
    { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-registry >/dev/null; } ||
    echo "test.sh: could not install docker-registry; the registry tests need it" >&2
fi

# A D-Bus session bus for the desktop notification test (the test starts
# its own dbus-daemon and notification server).
if ! command -v dbus-daemon >/dev/null && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dbus-daemon >/dev/null 2>&1 ||
    { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dbus-daemon >/dev/null; } ||
    echo "test.sh: could not install dbus-daemon; the notification test needs it" >&2
fi

# A real browser for the dashboard test (headless Chromium from Debian's
# packages; the test drives it with chromedp).
if ! command -v chromium >/dev/null && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core >/dev/null 2>&1 ||
    { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core >/dev/null; } ||
    echo "test.sh: could not install chromium; the dashboard test needs it" >&2
fi

files=$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*')
unformatted=$(gofmt -l $files)
if [ -n "$unformatted" ]; then echo "test.sh: gofmt would change: $unformatted" >&2; exit 1; fi
go vet ./...
# Most people who build Rust services in Docker do it from a Mac: it must
# build and vet there too (fsnotify uses kqueue on macOS).
for arch in arm64 amd64; do GOOS=darwin GOARCH=$arch go vet ./...; done
# The oracle and regression tests of stale code lower the inotify limit for
# a while (a polled subtree) and restart the engine mid-build, which would
# break tests running beside them: they run on their own, after the rest.
isolated='TestE2EOracle|TestE2ERegressions'
go test -race -count=1 -timeout 30m -skip "$isolated" ./...
CHEFD_E2E_INOTIFY=1 CHEFD_E2E_ENGINE_RESTART=1 go test -race -count=1 -timeout 30m -run "$isolated" -v ./cmd/chefd
