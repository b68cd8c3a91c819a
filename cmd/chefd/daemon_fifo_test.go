package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chefd/chefd/daemon/api"
)

// TestDaemonFIFOManifest: a member manifest replaced by a FIFO while the
// daemon runs is a recipe error naming it; status and stop keep answering
// (the daemon's plan used to block reading it forever), and restoring the
// file brings the recipe back.
func TestDaemonFIFOManifest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	ws := exampleCopy(t)
	env := daemonEnv(t, ws, "DOCKER_HOST=unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
	if r := chefd(t, ws, env, "start"); r.code != 0 {
		t.Fatalf("start: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	manifest := filepath.Join(ws, "crates/report/Cargo.toml")
	orig, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(manifest); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	// status answers, and (once the watcher's batch is planned) names the FIFO
	waitStatus(t, ws, env, 30*time.Second, "the FIFO as a recipe error", func(st api.FullStatus) bool {
		return st.State == api.StateRecipeError && strings.Contains(st.RecipeError, "crates/report/Cargo.toml") &&
			strings.Contains(st.RecipeError, "FIFO")
	})
	// restored: the recipe is back
	os.Remove(manifest)
	if err := os.WriteFile(manifest, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ws, env, 30*time.Second, "the recipe back", func(st api.FullStatus) bool { return st.RecipeError == "" })
	if r := chefd(t, ws, env, "stop"); r.code != 0 {
		t.Fatalf("stop: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
