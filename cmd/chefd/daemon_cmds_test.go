package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chefd/chefd/daemon"
	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/recipe"
)

// inProc runs chefd in-process with -C dir; it returns stdout, stderr and the
// error (an *exitError carries the exit code).
func inProc(t *testing.T, dir string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	root := a.root()
	root.SetArgs(append([]string{"-C", dir}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

func inProcExit(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}

func writeWSFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// brokenWorkspace is a workspace (root and one member) whose chefd.toml
// or root Cargo.toml does not parse.
func brokenWorkspace(t *testing.T, broken string) (root, member string) {
	t.Helper()
	root = t.TempDir()
	writeWSFile(t, filepath.Join(root, "Cargo.toml"), "[workspace]\nmembers = [\"crates/app\"]\n")
	member = filepath.Join(root, "crates", "app")
	writeWSFile(t, filepath.Join(member, "Cargo.toml"), "[package]\nname = \"app\"\nversion = \"0.1.0\"\n")
	writeWSFile(t, filepath.Join(member, "src", "main.rs"), "fn main() {}\n")
	switch broken {
	case "chefd.toml":
		writeWSFile(t, filepath.Join(root, "chefd.toml"), "image = \n")
	case "Cargo.toml":
		writeWSFile(t, filepath.Join(root, "Cargo.toml"), "[workspace\nmembers = [\"crates/app\"]\n")
	}
	return root, member
}

// noEngine is a daemon.Builder without an engine: everything fails.
type noEngine struct{}

var errNoEngine = errors.New("no engine in this test")

func (noEngine) HasCooked(context.Context, *recipe.Recipe) (bool, error) { return false, errNoEngine }
func (noEngine) Cook(context.Context, *recipe.Recipe, dockerctl.Progress) (dockerctl.CookResult, error) {
	return dockerctl.CookResult{}, errNoEngine
}
func (noEngine) Build(context.Context, *recipe.Recipe, dockerctl.Mode, dockerctl.Progress) (dockerctl.BuildResult, error) {
	return dockerctl.BuildResult{}, errNoEngine
}
func (noEngine) GC(context.Context, int) ([]dockerctl.Removed, error) { return nil, errNoEngine }
func (noEngine) Unchanged(context.Context, *recipe.Recipe, *dockerctl.Inputs) (bool, error) {
	return false, errNoEngine
}

// TestDaemonCommandsWithBrokenConfig: a chefd.toml or a Cargo.toml that
// does not parse does not lock the user out of the daemon. status, logs,
// events and stop need only the workspace root: without a daemon they say
// that none runs (not the config error); with one (its recipe broken),
// status shows it in state recipe-error, from the root or a member, and
// stop stops it.
func TestDaemonCommandsWithBrokenConfig(t *testing.T) {
	for _, broken := range []string{"chefd.toml", "Cargo.toml"} {
		t.Run(broken, func(t *testing.T) {
			t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
			ws, member := brokenWorkspace(t, broken)

			// no daemon
			_, stderr, err := inProc(t, ws, "status")
			expect(t, inProcExit(err) == exitNotRunning && strings.Contains(err.Error(), "no chefd daemon runs"),
				"status without a daemon: exit %d: %v %s", inProcExit(err), err, stderr)
			_, _, err = inProc(t, ws, "events")
			expect(t, inProcExit(err) == exitNotRunning, "events without a daemon: exit %d: %v", inProcExit(err), err)
			_, _, err = inProc(t, ws, "logs")
			expect(t, inProcExit(err) == exitNotRunning && strings.Contains(err.Error(), "no daemon log"),
				"logs without a daemon: exit %d: %v", inProcExit(err), err)
			_, stderr, err = inProc(t, ws, "stop")
			expect(t, err == nil && strings.Contains(stderr, "no chefd daemon runs"), "stop without a daemon: %v %s", err, stderr)

			// a daemon whose recipe does not compute
			paths, err := daemonPathsOf(ws)
			expect(t, err == nil, "paths: %v", err)
			ready, done := make(chan struct{}), make(chan error, 1)
			go func() {
				done <- daemon.Run(context.Background(), daemon.Config{Paths: paths, Ready: func(api.Info) { close(ready) },
					Builder: noEngine{}, Options: []daemon.Option{daemon.WithLog(zaptest.NewLogger(t))},
					Plan: func(context.Context) (*recipe.Recipe, error) { return nil, errors.New(broken + ":1: broken") }})
			}()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("daemon: %v", err)
			case <-time.After(inProcGuard):
				t.Fatal("the daemon did not get ready")
			}
			for _, dir := range []string{ws, member} {
				stdout, stderr, err := inProc(t, dir, "status", "--json")
				var st api.FullStatus
				expect(t, err == nil && json.Unmarshal([]byte(stdout), &st) == nil, "status -C %s: %v %s%s", dir, err, stdout, stderr)
				expect(t, st.State == api.StateRecipeError && strings.Contains(st.RecipeError, broken+":1: broken"),
					"status -C %s: state %q, recipe error %q", dir, st.State, st.RecipeError)
			}
			stdout, stderr, err := inProc(t, member, "stop")
			expect(t, err == nil && strings.Contains(stdout, "stopped"), "stop: %v %s%s", err, stdout, stderr)
			select {
			case err := <-done:
				expect(t, err == nil, "daemon: %v", err)
			case <-time.After(inProcGuard):
				t.Fatal("the daemon did not stop")
			}
		})
	}
}

// inProcGuard bounds the waits of these tests (a failure inProcGuard).
const inProcGuard = 10 * time.Second

func expect(t *testing.T, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}

// TestCookLine: what a cook started from and what it compiled, as the
// cook and build summaries and the status show it.
func TestCookLine(t *testing.T) {
	for _, c := range []struct {
		seed, image string
		c           dockerctl.Crates
		want        string
	}{
		{"7dad3c0b931a6e0c", "", dockerctl.Crates{ThirdParty: 1, Local: 3, ThirdPartyNames: []string{"itoa v1.0.1"}},
			"delta from 7dad3c0b: 1 third-party crate (itoa v1.0.1), 3 local"},
		{"7dad3c0b931a6e0c", "", dockerctl.Crates{Local: 3}, "delta from 7dad3c0b: 0 third-party crates, 3 local"},
		{"7dad3c0b931a6e0c", "reg:5000/x-cooked:seed-0123456789abcdef", dockerctl.Crates{Local: 3},
			"delta from 7dad3c0b (seed image reg:5000/x-cooked:seed-0123456789abcdef): 0 third-party crates, 3 local"},
		{"", "", dockerctl.Crates{ThirdParty: 32, Local: 3, ThirdPartyNames: make([]string, 32)}, "from nothing: 32 third-party crates, 3 local"},
		{"interrupted", "", dockerctl.Crates{ThirdParty: 2, ThirdPartyNames: []string{"a v1", "b v2"}},
			"delta from an interrupted cook: 2 third-party crates (a v1, b v2), 0 local"},
	} {
		if got := cookLine(c.seed, c.image, c.c); got != c.want {
			t.Errorf("cookLine(%q, %q, %+v) = %q, want %q", c.seed, c.image, c.c, got, c.want)
		}
	}
	rec := api.Record{ID: 7, Kind: api.KindCook, Result: api.ResultOK, Duration: 3500 * time.Millisecond,
		Phases: []dockerctl.Phase{{Name: "cook: cargo build"}}, Seed: "7dad3c0b931a6e0c", Compiled: dockerctl.Crates{Local: 3}}
	if got := recordLine(rec, time.Now()); !strings.Contains(got, "delta from 7dad3c0b: 0 third-party crates, 3 local") {
		t.Errorf("status line %q does not say what seeded the cook", got)
	}
}
