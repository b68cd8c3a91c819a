#!/usr/bin/env bash
# ensure-engine.sh: make sure a Docker engine answers, starting one if needed.
#
#   scripts/ensure-engine.sh            # idempotent; exit 0 when an engine answers
#
# Order of checks:
#   1. DOCKER_HOST is set                -> trust it, exit 0 (a warning is printed if it does not answer).
#   2. the default socket answers /_ping -> exit 0 (no-op).
#   3. root on Debian/Ubuntu (apt-get)   -> install docker.io if dockerd is missing, start dockerd in the
#      background (no systemd needed), wait for /_ping.
#   4. anything else                     -> one line on what to do, exit 2.
#
# Environment:
#   CHEFD_DOCKERD_LOG    dockerd log file              (default /var/log/chefd-dockerd.log)
#   CHEFD_ENGINE_WAIT    seconds to wait for /_ping     (default 60)
#   CHEFD_DOCKERD_FLAGS  extra dockerd flags; when set, only this flag set is tried (no fallbacks)
#   CHEFD_DOCKER_SOCK    socket path to check/serve     (default /var/run/docker.sock)
#   CHEFD_DOCKERD_PIDFILE dockerd pid file              (default /var/run/docker.pid)
#
# Sandbox notes (measured in the chefd dev VM: Debian bookworm, no systemd, cgroup v1 via cgroupfs,
# ext4 root, iptables 1.8.9 nft backend installed as a docker.io dependency):
#   - `apt-get install docker.io` does not start anything (policy-rc.d denies it, no systemd), so dockerd is
#     started directly with setsid/nohup; it launches its own managed containerd (no containerd service needed).
#   - Stock flags work here: overlay2, cgroupfs driver, docker0 bridge with iptables NAT. Only harmless
#     warnings in the log (no modprobe/aufs/btrfs/zfs/devmapper, "kernel does not support cgroup blkio weight").
#     Install + start took 18 s; a second run is a 0.02 s no-op.
#   - For sandboxes where the stock daemon dies, fallbacks are tried in order (FLAG_SETS below):
#     iptables/NAT disabled, then no bridge at all. chefd's builds are offline, so neither matters.
#     The flag set that worked is written to the log file.
set -euo pipefail

LOG=${CHEFD_DOCKERD_LOG:-/var/log/chefd-dockerd.log}
WAIT=${CHEFD_ENGINE_WAIT:-60}
SOCK=${CHEFD_DOCKER_SOCK:-/var/run/docker.sock}
PIDFILE=${CHEFD_DOCKERD_PIDFILE:-/var/run/docker.pid}

say() { printf 'ensure-engine: %s\n' "$*" >&2; }

# ping: true when the engine behind $SOCK answers /_ping with OK.
ping_engine() {
	if command -v curl >/dev/null 2>&1; then
		[ -S "$SOCK" ] || return 1
		[ "$(curl -fsS --max-time 3 --unix-socket "$SOCK" http://localhost/_ping 2>/dev/null || true)" = OK ]
	elif [ -x /usr/bin/docker ]; then
		DOCKER_HOST="unix://$SOCK" timeout 5 /usr/bin/docker version >/dev/null 2>&1
	else
		return 1
	fi
}

# 1. DOCKER_HOST set: the user chose an engine, do not start another one.
if [ -n "${DOCKER_HOST:-}" ]; then
	if command -v docker >/dev/null 2>&1 && ! timeout 5 docker version >/dev/null 2>&1 \
		&& ! timeout 5 /usr/bin/docker version >/dev/null 2>&1; then
		say "warning: DOCKER_HOST=$DOCKER_HOST is set but does not answer (not starting a local engine)"
	else
		say "using DOCKER_HOST=$DOCKER_HOST"
	fi
	exit 0
fi

# 2. default socket answers: nothing to do.
if ping_engine; then
	say "engine answers on $SOCK (nothing to do)"
	exit 0
fi

# 4. cannot fix it ourselves.
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	say "no Docker engine answers on $SOCK: install Docker and start it (e.g. 'sudo systemctl start docker'), or set DOCKER_HOST to a running engine"
	exit 2
fi

# 3a. install docker.io when dockerd is missing.
if ! command -v dockerd >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	# apt-get update only when the package lists do not know docker.io (fresh machine / empty lists),
	# or when an install from stale lists fails (404 on an outdated .deb).
	# (no 'apt-cache … | grep -q' here: with pipefail, grep -q closing early makes the pipe fail)
	if ! apt-cache policy docker.io 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null; then
		say "apt-get update (docker.io unknown to the package lists)"
		apt-get update -q
	fi
	say "installing docker.io"
	if ! apt-get install -y -q --no-install-recommends docker.io; then
		say "install failed, retrying after apt-get update"
		apt-get update -q
		apt-get install -y -q --no-install-recommends docker.io
	fi
fi
command -v dockerd >/dev/null 2>&1 || { say "dockerd still missing after installing docker.io"; exit 1; }

# 3b. a dockerd we (or someone) started may still be coming up: wait for it instead of starting another.
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
	say "dockerd already running (pid $(cat "$PIDFILE")), waiting up to ${WAIT}s for $SOCK"
	for _ in $(seq "$WAIT"); do
		if ping_engine; then say "engine answers"; exit 0; fi
		sleep 1
	done
	say "dockerd pid $(cat "$PIDFILE") runs but $SOCK does not answer; see $LOG"
	exit 1
fi

# 3c. start dockerd directly (no systemd here). Flag sets tried in order:
#   ""                                  stock daemon (works on a normal host)
#   "--iptables=false --ip-masq=false"  when iptables/nf_tables is unusable: "failed to create NAT chain DOCKER"
#   "--iptables=false --bridge=none"    when even the docker0 bridge cannot be created
#                                       (containers then get only loopback; fine for offline builds)
if [ -n "${CHEFD_DOCKERD_FLAGS+x}" ]; then
	FLAG_SETS=("$CHEFD_DOCKERD_FLAGS")
else
	FLAG_SETS=("" "--iptables=false --ip-masq=false" "--iptables=false --bridge=none")
fi

mkdir -p "$(dirname "$LOG")"
for flags in "${FLAG_SETS[@]}"; do
	say "starting dockerd ${flags:-(default flags)}; log: $LOG"
	printf '\n=== %s ensure-engine: dockerd %s\n' "$(date -Is)" "$flags" >>"$LOG"
	# shellcheck disable=SC2086  # flags are a word list on purpose
	setsid nohup dockerd -H "unix://$SOCK" -p "$PIDFILE" $flags </dev/null >>"$LOG" 2>&1 &
	pid=$!
	for _ in $(seq "$WAIT"); do
		if ping_engine; then
			printf '=== %s ensure-engine: engine answers with flags: %s\n' "$(date -Is)" "${flags:-(default)}" >>"$LOG"
			say "engine answers on $SOCK (dockerd pid $pid, flags: ${flags:-default})"
			exit 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "dockerd (pid $pid) did not answer within ${WAIT}s; stopping it"
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 15); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
	fi
	say "dockerd failed with flags '${flags:-default}': $(grep -v '^===' "$LOG" | grep -Ei 'fail|error|unknown|denied' | tail -n 1 | cut -c1-240)"
	rm -f "$PIDFILE"
done
say "could not start a Docker engine; last lines of $LOG:"
tail -n 15 "$LOG" >&2
exit 1
