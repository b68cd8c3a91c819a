package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chefd/chefd/internal/notify/notifytest"

	"github.com/docker/docker/api/types/container"

	"github.com/chefd/chefd/configs"
	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
)

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) < 3 || f[2] != "Z"
}

// waitStatus polls the daemon until cond holds.
func waitStatus(t *testing.T, ws string, env []string, within time.Duration, what string, cond func(api.FullStatus) bool) api.FullStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := daemonStatus(t, ws, env)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; status %+v", what, within, st.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func containerCount(t *testing.T) int {
	t.Helper()
	e, err := dockerctl.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	l, err := e.Client().ContainerList(context.Background(), container.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

// TestDaemonE2EWatch: the daemon on the example with the real engine.
// A saved .rs edit becomes an image without any request; a new dependency
// starts a cook within a second, then a code build; `chefd build --wait`
// from another shell returns the image the daemon built; SIGTERM stops it
// cleanly (socket gone, no container left).
func TestDaemonE2EWatch(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	needEngine(t)
	containersBefore := containerCount(t)
	ws := exampleCopy(t)
	ownImage(t, ws, "chefd-e2e-watch")
	// desktop notifications on a real session bus, to a notification
	// server of the test's own (step 4)
	bus, notes := notifytest.Start(t)
	env := daemonEnv(t, ws, "DBUS_SESSION_BUS_ADDRESS="+bus)
	if r := chefd(t, ws, env, "start", "--notify"); r.code != 0 {
		t.Fatalf("start: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitStatus(t, ws, env, 10*time.Minute, "startup cook", func(st api.FullStatus) bool {
		return st.Cooked && st.State == "idle"
	})

	// 1. Save an edit: a build starts by itself and its image prints it.
	edit(t, filepath.Join(ws, "crates/app/src/main.rs"), `GREETING: &str = "hello from chefd example"`, `GREETING: &str = "hello from the watcher"`)
	st := waitStatus(t, ws, env, 5*time.Minute, "build after a save", func(st api.FullStatus) bool {
		return st.LastOK != nil && strings.Contains(strings.Join(st.LastOK.Changed, " "), "crates/app/src/main.rs")
	})
	if st.LastOK.Trigger != "watch" || st.LastOK.Compiled.ThirdParty != 0 {
		t.Errorf("save build: trigger %q, compiled %+v", st.LastOK.Trigger, st.LastOK.Compiled)
	}
	if out := dockerRun(t, st.LastOK.Image); !strings.Contains(out, "hello from the watcher") {
		t.Fatalf("the daemon's image prints %q", out)
	}
	built := st.LastOK.ImageID

	// 2. `chefd build --wait` from a second shell: the same image.
	r := chefd(t, ws, env, "build", "--wait")
	if r.code != 0 || strings.TrimSpace(r.stdout) != built {
		t.Fatalf("build --wait: exit %d, %q, want %s\n%s", r.code, r.stdout, built, r.stderr)
	}

	// 3. A new dependency (manifest and lockfile land together, as after
	// `cargo add`): a cook of the new recipe starts within 1 s, unasked,
	// then a code build on it.
	before := st.Recipe
	stage := filepath.Join(t.TempDir(), "ws")
	if out, err := exec.Command("cp", "-a", ws, stage).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	os.RemoveAll(filepath.Join(stage, ".chefd"))
	edit(t, filepath.Join(stage, "crates/report/Cargo.toml"), "[dependencies]\n", "[dependencies]\nryu = \"1\"\n")
	cfg, _ := configs.Load(ws)
	if out, err := exec.Command("docker", "run", "--rm", "-v", stage+":/w", "-w", "/w", cfg.BuilderImage,
		"cargo", "generate-lockfile", "--offline").CombinedOutput(); err != nil {
		t.Fatalf("re-lock: %v\n%s", err, out)
	}
	for _, f := range []string{"Cargo.lock", "crates/report/Cargo.toml"} {
		data, err := os.ReadFile(filepath.Join(stage, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ws, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	saved := time.Now()
	var cook api.Record
	st = waitStatus(t, ws, env, 30*time.Second, "cook of the new recipe", func(st api.FullStatus) bool {
		if st.Recipe == before {
			return false
		}
		for _, c := range append(append([]api.Record{}, st.Cooks...), st.Recent...) {
			if c.Kind == api.KindCook && c.Recipe == st.Recipe && !c.Started.IsZero() {
				cook = c
				return true
			}
		}
		return false
	})
	// the daemon's own timestamp: polling latency does not count
	if d := cook.Started.Sub(saved); d > time.Second {
		t.Errorf("the cook started %v after the save (goal: within 1 s)", d)
	}
	t.Logf("cook started %v after the save; recipe diff: %v", cook.Started.Sub(saved), cook.RecipeDiff)
	newRecipe := st.Recipe
	st = waitStatus(t, ws, env, 10*time.Minute, "code build on the new recipe", func(st api.FullStatus) bool {
		return st.LastOK != nil && st.LastOK.Recipe == newRecipe && st.Cooked
	})
	if st.LastOK.Compiled.ThirdParty != 0 {
		t.Errorf("the code build after the cook compiled %d third-party crates", st.LastOK.Compiled.ThirdParty)
	}
	// The cook was a delta cook: seeded from the cook cache the first
	// build left (ryu is already a dependency of serde_json, so no more
	// than that one crate, if the cache no longer held it). Unless
	// BuildKit's layer cache answered it (this recipe was cooked on this
	// engine before): then cargo did not run at all.
	for _, c := range append(append([]api.Record{}, st.Cooks...), st.Recent...) {
		if c.Kind == api.KindCook && c.Recipe == newRecipe && c.Result == api.ResultOK {
			t.Logf("cook: seed %q, compiled %v", c.Seed, c.Compiled.Names)
			ran := len(c.Compiled.Names) > 0
			if c.Compiled.ThirdParty > 1 || (ran && c.Seed == "") {
				t.Errorf("the cook of the new dependency was not a delta cook: seed %q, third-party %v", c.Seed, c.Compiled.ThirdPartyNames)
			}
		}
	}
	if out := dockerRun(t, st.LastOK.ImageID); !strings.Contains(out, "app: hello from the watcher") {
		t.Errorf("the image built after the new dependency prints %q", out)
	}

	// 4. Notifications (--notify): the builds and cooks the daemon ran on
	// its own, not the one `build --wait` asked for; then a save with a
	// compile error, with rustc's first error line.
	main := filepath.Join(ws, "crates/app/src/main.rs")
	src, _ := os.ReadFile(main)
	os.WriteFile(main, append(src, []byte("\nfn broken() -> u8 { \"not a number\" }\n")...), 0o644)
	waitStatus(t, ws, env, 5*time.Minute, "a failed build after a save", func(st api.FullStatus) bool {
		return st.Last != nil && st.Last.Result == api.ResultFailed
	})
	// the failed build's notification comes just after its record
	var failed, cooks int
	var got []notifytest.Notification
	for deadline := time.Now().Add(30 * time.Second); failed == 0 && time.Now().Before(deadline); {
		got = notes.Wait(len(got)+1, time.Second)
		failed, cooks = 0, 0
		for _, n := range got {
			switch {
			case strings.Contains(n.Summary, "build #") && strings.Contains(n.Summary, " failed after ") && strings.Contains(n.Body, "mismatched types"):
				failed++
			case strings.HasPrefix(n.Summary, "chefd: cook #") && strings.Contains(n.Summary, " ok in "):
				cooks++
			}
		}
	}
	if failed != 1 || cooks < 2 {
		t.Errorf("notifications %+v: want the failed build's (rustc's first error line) and the two cooks'", got)
	}
	for _, n := range got {
		if n.App != "chefd" {
			t.Errorf("a notification of another app: %+v", n)
		}
	}

	// 5. SIGTERM: clean exit, socket removed, no container left.
	sock := st.Daemon.Paths.Socket
	if err := syscall.Kill(st.Daemon.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The daemon gives a cancelled job up to 30 s (CancelGrace), then its
	// API 5 s and the engine's cleanups 10 s: a loaded engine can take
	// that long to stop a build. Past 15 s its log says why.
	signalled := time.Now()
	deadline := signalled.Add(60 * time.Second)
	for alive(st.Daemon.PID) {
		if time.Now().After(deadline) {
			logTail(t, st.Daemon.Paths.Log)
			t.Fatal("the daemon did not exit on SIGTERM")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := time.Since(signalled); d > 15*time.Second {
		t.Logf("the daemon took %v to exit on SIGTERM", d)
		logTail(t, st.Daemon.Paths.Log)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket %s left after SIGTERM", sock)
	}
	if n := containerCount(t); n > containersBefore {
		t.Errorf("%d containers left", n-containersBefore)
	}
}

// logTail logs the last lines of the daemon's log.
func logTail(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Logf("the daemon's log: %v", err)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Logf("the daemon's log, last lines:\n%s", strings.Join(lines, "\n"))
}
