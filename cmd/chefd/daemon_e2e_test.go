package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/internal/flock"
)

// daemonEnv gives the test its own $XDG_RUNTIME_DIR, and stops the daemon
// (or kills it) when the test ends.
func daemonEnv(t *testing.T, ws string, extra ...string) []string {
	t.Helper()
	rt := t.TempDir()
	env := append([]string{"XDG_RUNTIME_DIR=" + rt}, extra...)
	t.Cleanup(func() {
		chefd(t, ws, env, "stop")
		p, err := api.ResolvePaths(ws, rt)
		if err != nil {
			return
		}
		if held, pid := flock.Held(p.Lock); held && pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return env
}

func daemonStatus(t *testing.T, ws string, env []string, args ...string) api.FullStatus {
	t.Helper()
	r := chefd(t, ws, env, append([]string{"status", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var st api.FullStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, r.stdout)
	}
	return st
}

// TestDaemonCLILifecycle runs the real binary without a Docker engine:
// the daemon starts anyway (recipes, watching, API), reports the cook
// failure, survives kill -9 (the next start takes over the stale lock and
// socket) and stops gracefully.
func TestDaemonCLILifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	ws := exampleCopy(t)
	env := daemonEnv(t, ws, "DOCKER_HOST=unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))

	r := chefd(t, ws, env, "status")
	if r.code != exitNotRunning || !strings.Contains(r.stderr, "no chefd daemon runs") {
		t.Fatalf("status before start: exit %d %q", r.code, r.stderr)
	}
	r = chefd(t, ws, env, "start")
	if r.code != 0 || !strings.Contains(r.stdout, "chefd daemon started") {
		t.Fatalf("start: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = chefd(t, ws, env, "start")
	if r.code != 0 || !strings.Contains(r.stdout, "already runs") {
		t.Fatalf("second start: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	st := daemonStatus(t, ws, env)
	if st.Recipe == "" || st.Daemon.PID <= 0 || !st.Daemon.Watching {
		t.Fatalf("status: %+v", st)
	}
	if fi, err := os.Stat(st.Daemon.Paths.Socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi, err)
	}

	// no engine: the build fails with exit 2 (as in-process) and says why
	r = chefd(t, ws, env, "build", "--wait")
	if r.code != 2 || !strings.Contains(r.stderr, "cook of recipe") || !strings.Contains(r.stderr, "no Docker engine answers") {
		t.Fatalf("build without an engine: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = chefd(t, ws, env, "build", "--warm-only", "--wait")
	if r.code != 2 || !strings.Contains(r.stderr, "no Docker engine answers") {
		t.Fatalf("warm-only: exit %d\n%s", r.code, r.stderr)
	}

	// kill -9, then start again over the stale lock and socket
	pid := st.Daemon.PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if held, _ := flock.Held(st.Daemon.Paths.Lock); !held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed daemon still holds the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(st.Daemon.Paths.Socket); err != nil {
		t.Fatalf("kill -9 should leave the socket behind: %v", err)
	}
	r = chefd(t, ws, env, "start")
	if r.code != 0 || !strings.Contains(r.stdout, "chefd daemon started") {
		t.Fatalf("start after kill -9: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	st2 := daemonStatus(t, ws, env)
	if st2.Daemon.PID == pid {
		t.Fatal("same pid after restart")
	}
	r = chefd(t, ws, env, "logs", "-n", "0")
	if !strings.Contains(r.stdout, "did not stop cleanly") || !strings.Contains(r.stdout, "removed a stale socket") {
		t.Fatalf("the log does not tell about the recovery:\n%s", r.stdout)
	}

	r = chefd(t, ws, env, "stop")
	if r.code != 0 || !strings.Contains(r.stdout, "stopped") {
		t.Fatalf("stop: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(st2.Daemon.Paths.Socket); !os.IsNotExist(err) {
		t.Fatalf("socket left after stop: %v", err)
	}
	r = chefd(t, ws, env, "stop")
	if r.code != 0 {
		t.Fatalf("stop without a daemon: exit %d", r.code)
	}
}

// TestDaemonE2EEngine: with the real engine, the daemon builds on request,
// rebuilds after a source edit (the request waits for the watcher's batch)
// and answers an unchanged request with the previous image.
func TestDaemonE2EEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	needEngine(t)
	ws := exampleCopy(t)
	// a tag of its own: other tests and the demo use the example's image too
	edit(t, filepath.Join(ws, "chefd.toml"), `image = "chefd-example"`, "image = \"chefd-example\"\ntag = \"e2e-daemon\"")
	env := daemonEnv(t, ws)
	if r := chefd(t, ws, env, "start"); r.code != 0 {
		t.Fatalf("start: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := chefd(t, ws, env, "build", "--wait")
	if r.code != 0 {
		t.Fatalf("build: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	first := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(first, "sha256:") {
		t.Fatalf("build printed %q, want an image ID", r.stdout)
	}

	edit(t, filepath.Join(ws, "crates/report/src/main.rs"), "use std::io::Read;", "use std::io::Read; // edited")
	r = chefd(t, ws, env, "build", "--wait")
	if r.code != 0 {
		t.Fatalf("build after edit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	second := strings.TrimSpace(r.stdout)
	if second == first || !strings.Contains(r.stderr, "crates/report/src/main.rs") {
		t.Fatalf("the edit was not built: %s vs %s\n%s", first, second, r.stderr)
	}

	r = chefd(t, ws, env, "build", "--wait")
	if r.code != 0 || strings.TrimSpace(r.stdout) != second || !strings.Contains(r.stderr, "the workspace holds what build") {
		t.Fatalf("unchanged build: exit %d %q\n%s", r.code, r.stdout, r.stderr)
	}
	// a comment at the end of a file: the crate compiles, the binary is
	// identical, and the daemon's build says the tag keeps its image ID
	if b, err := os.ReadFile(filepath.Join(ws, "crates/app/src/main.rs")); err == nil {
		os.WriteFile(filepath.Join(ws, "crates/app/src/main.rs"), append(b, []byte("\n// a comment only\n")...), 0o644)
	}
	r = chefd(t, ws, env, "build", "--wait")
	if r.code != 0 || strings.TrimSpace(r.stdout) != second || !strings.Contains(r.stderr, "image unchanged") {
		t.Fatalf("comment-only build: exit %d %q (want %s)\n%s", r.code, r.stdout, second, r.stderr)
	}
	st := daemonStatus(t, ws, env)
	if st.LastOK == nil || !st.LastOK.Unchanged {
		t.Errorf("the comment-only build's record: %+v", st.LastOK)
	}
	if st.LastOK == nil || st.LastOK.ImageID != second || st.LastOK.Image != "chefd-example:e2e-daemon" || !st.Cooked {
		t.Fatalf("status: %+v", st.Status)
	}
	out := dockerRun(t, st.LastOK.Image)
	if out == "" {
		t.Fatal("the image printed nothing")
	}
}
