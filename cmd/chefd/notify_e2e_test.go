//go:build !darwin && !windows

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chefd/chefd/internal/notify/notifytest"
)

// TestDaemonNotifies runs `chefd start --notify` against a real D-Bus
// session bus with a notification server started by the test: the cook
// the daemon starts on its own is notified, then a save with a compile
// error, with rustc's first error line; a build a client asks for is not
// (its client shows it).
func TestDaemonNotifies(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	needEngine(t)
	addr, srv := notifytest.Start(t)
	ws := exampleCopy(t)
	ownImage(t, ws, "chefd-notify")
	env := daemonEnv(t, ws, "DBUS_SESSION_BUS_ADDRESS="+addr)
	if r := chefd(t, ws, env, "start", "--notify"); r.code != 0 {
		t.Fatalf("start --notify: %d %s", r.code, r.stderr)
	}
	got := srv.Wait(1, 3*time.Minute)
	if len(got) != 1 || got[0].App != "chefd" || !strings.HasPrefix(got[0].Summary, "chefd: cook #1 ok in ") {
		t.Fatalf("notifications %+v: want the startup cook's", got)
	}
	if r := chefd(t, ws, env, "build", "--wait"); r.code != 0 {
		t.Fatalf("build --wait: %d %s", r.code, r.stderr)
	}
	main := filepath.Join(ws, "crates/app/src/main.rs")
	src, _ := os.ReadFile(main)
	os.WriteFile(main, append(src, []byte("\nfn broken() -> u8 { \"not a number\" }\n")...), 0o644)
	got = srv.Wait(2, 3*time.Minute)
	if len(got) != 2 {
		t.Fatalf("notifications %+v: want the failed build's too", got)
	}
	n := got[1]
	if !strings.Contains(n.Summary, "build #") || !strings.Contains(n.Summary, " failed after ") || !strings.Contains(n.Body, "mismatched types") {
		t.Errorf("notification %+v: want the failed build and rustc's first error line", n)
	}
	for _, n := range got {
		if strings.Contains(n.Summary, " ok in ") && strings.Contains(n.Summary, "build #") {
			t.Errorf("the requested build was notified: %+v", n)
		}
	}
}
