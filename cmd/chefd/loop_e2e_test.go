package main

// Loop mode end to end (issue 12): the daemon's builds compile the
// workspace's crates incrementally, exact builds compile the configured
// profile; both behave the same, share the cooked image and compile no
// third-party crate when the mode switches.

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/chefd/chefd/dockerctl"
)

// TestE2ELoopMode: on the marked example (every crate prints a marker of
// its source), a daemon in loop mode builds saves and requests in loop
// mode, `build --wait --exact` and a build without the daemon in exact
// mode. Loop → exact → loop, with edits of a leaf crate and of a library
// between, each image prints what the files say, no build compiles a
// third-party crate, and the label, the summary and the record name the
// mode.
func TestE2ELoopMode(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel() // with the delta-cook tests, after the package's serial ones
	needEngine(t)
	w := newMarkedWS(t, "loop")
	w.startDaemon()
	defer w.stopDaemon()

	step := func(name string, want dockerctl.Mode, args ...string) {
		t.Helper()
		var r run
		if len(args) > 0 && args[0] == "direct" {
			w.stopDaemon()
			r = chefd(t, w.dir, w.env, "build")
			defer w.startDaemon()
		} else {
			r = chefd(t, w.dir, w.env, append([]string{"build", "--wait"}, args...)...)
		}
		w.result(r, name)
		w.checkMode(r, name, want)
		if !strings.Contains(strings.Join(strings.Fields(r.stderr), " "), "mode "+string(want)) {
			t.Errorf("%s: the summary does not name mode %s:\n%s", name, want, r.stderr)
		}
		if len(args) > 0 && args[0] == "direct" {
			if !strings.Contains(r.stderr, "(0 third-party") {
				t.Errorf("%s: a build without the daemon compiled third-party crates:\n%s", name, r.stderr)
			}
			return
		}
		rec := w.status().LastOK
		if rec == nil || rec.ImageID != strings.TrimSpace(r.stdout) {
			t.Fatalf("%s: the daemon's last build is %+v, want image %s", name, rec, r.stdout)
		}
		if rec.Mode != want || rec.Compiled.ThirdParty != 0 {
			t.Errorf("%s: record mode %q, third-party crates compiled %v; want mode %q, none", name, rec.Mode, rec.Compiled.ThirdPartyNames, want)
		}
		t.Logf("%s: mode %s, compiled %v in %s", name, rec.Mode, rec.Compiled.Names, rec.Duration)
	}

	step("first build (loop)", dockerctl.ModeLoop)
	w.setMarker("app", "app-1")
	step("edit app (loop)", dockerctl.ModeLoop)
	step("the same content, exact", dockerctl.ModeExact, "--exact")
	w.setMarker("ledger", "ledger-1")
	step("edit ledger (loop)", dockerctl.ModeLoop)
	w.setMarker("report", "report-1")
	step("edit report, exact", dockerctl.ModeExact, "--exact")
	w.setMarker("app", "app-2")
	step("edit app (loop again)", dockerctl.ModeLoop)
	// back to the content the last exact build shipped: the exact target
	// cache is already right for it, whatever the loop builds did between
	w.setMarker("app", "app-1")
	step("app reverted, exact", dockerctl.ModeExact, "--exact")
	w.setMarker("ledger", "ledger-2")
	step("edit ledger, without the daemon", dockerctl.ModeExact, "direct")

	// the images say so, and a plain request after an exact build is
	// answered by it (an exact build answers any request)
	out, err := exec.Command("docker", "image", "inspect", "--format", `{{index .Config.Labels "chefd.mode"}}`, "chefd-example:loop").Output()
	if err != nil || strings.TrimSpace(string(out)) != "exact" {
		t.Errorf("chefd-example:loop is labelled %q (%v), want exact", out, err)
	}
}
