package main

// The oracle test and the regression tests of "never ship code that is not
// in the workspace": the real binary, the real engine, the example
// workspace with a content marker in each crate's output, so the output an
// image must print is known from the files alone.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
)

var (
	greetingRe = regexp.MustCompile(`const GREETING: &str = "([^"]*)";`)
	bannerRe   = regexp.MustCompile(`pub const LEDGER_BANNER: &str = "([^"]*)";`)
	reportRe   = regexp.MustCompile(`const REPORT_MARK: &str = "([^"]*)";`)
)

const brokenLine = "\nfn oracle_broken( {\n"

// markedWS is a git-tracked copy of the example whose three crates print
// content markers: app its GREETING, ledger its LEDGER_BANNER (app and
// report print it), report its REPORT_MARK.
type markedWS struct {
	t    *testing.T
	dir  string
	env  []string // the daemon's environment (its own XDG_RUNTIME_DIR)
	tag  string
	logs []string
	// run makes every marker of this workspace unique to it, so no build
	// of it is answered by BuildKit's layer cache from another run.
	run string
	// files are the crates' marker files relative to dir (crateFiles,
	// unless a test moved a crate).
	files map[string]string
}

var crateFiles = map[string]string{
	"app":    "crates/app/src/main.rs",
	"ledger": "crates/ledger/src/lib.rs",
	"report": "crates/report/src/main.rs",
}

func newMarkedWS(t *testing.T, tag string) *markedWS {
	t.Helper()
	for _, tool := range []string{"git", "docker"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	w := &markedWS{t: t, dir: exampleCopy(t), tag: tag, run: strconv.FormatInt(time.Now().UnixNano(), 36), files: maps.Clone(crateFiles)}
	// loop = true: the daemon's builds run in loop mode even under CI
	// (incremental, a target cache of their own) while `chefd build`
	// without a daemon builds exactly, so every sequence mixes the modes.
	edit(t, filepath.Join(w.dir, "chefd.toml"), `image = "chefd-example"`, "image = \"chefd-example\"\ntag = \""+tag+"\"\nloop = true")
	edit(t, w.path("report"), "use std::io::Read;", "use std::io::Read;\n\nconst REPORT_MARK: &str = \"report-0\";")
	edit(t, w.path("report"), `println!("report: {} ({})", ledger::LEDGER_BANNER, ledger.name);`,
		`println!("report: {} ({}) [{}]", ledger::LEDGER_BANNER, ledger.name, REPORT_MARK);`)
	w.setMarker("app", "app-0")
	w.setMarker("ledger", "ledger-0")
	w.setMarker("report", "report-0")
	os.WriteFile(filepath.Join(w.dir, ".gitignore"), []byte("target/\n"), 0o644)
	w.git("init", "-q", "-b", "main")
	w.git("add", "-A")
	w.git("commit", "-qm", "start")
	w.env = daemonEnv(t, w.dir)
	return w
}

func (w *markedWS) path(crate string) string { return filepath.Join(w.dir, w.files[crate]) }

func (w *markedWS) logf(format string, args ...any) {
	w.logs = append(w.logs, fmt.Sprintf("%s "+format, append([]any{time.Now().Format("15:04:05.000")}, args...)...))
}

func (w *markedWS) read(crate string) string {
	b, err := os.ReadFile(w.path(crate))
	if err != nil {
		w.t.Fatal(err)
	}
	return string(b)
}

func markerRe(crate string) *regexp.Regexp {
	switch crate {
	case "app":
		return greetingRe
	case "ledger":
		return bannerRe
	}
	return reportRe
}

// marker is the crate's marker on disk.
func (w *markedWS) marker(crate string) string {
	m := markerRe(crate).FindStringSubmatch(w.read(crate))
	if m == nil {
		w.t.Fatalf("%s has no marker:\n%s", crate, w.read(crate))
	}
	return m[1]
}

// setMarker writes a new marker (an editor's save: a new mtime).
// unique makes marker m unique to this workspace (a marker read back from
// disk is unique already).
func (w *markedWS) unique(m string) string {
	if strings.HasSuffix(m, "."+w.run) {
		return m
	}
	return m + "." + w.run
}

// setMarker writes m, made unique, as crate's marker.
func (w *markedWS) setMarker(crate, m string) {
	m = w.unique(m)
	s := markerRe(crate).ReplaceAllStringFunc(w.read(crate), func(old string) string {
		return strings.Replace(old, markerRe(crate).FindStringSubmatch(old)[1], m, 1)
	})
	if err := os.WriteFile(w.path(crate), []byte(s), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *markedWS) broken(crate string) bool { return strings.Contains(w.read(crate), brokenLine) }

func (w *markedWS) anyBroken() bool {
	for c := range crateFiles {
		if w.broken(c) {
			return true
		}
	}
	return false
}

func (w *markedWS) setBroken(crate string, on bool) {
	s := strings.ReplaceAll(w.read(crate), brokenLine, "")
	if on {
		s += brokenLine
	}
	if err := os.WriteFile(w.path(crate), []byte(s), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *markedWS) git(args ...string) string {
	w.t.Helper()
	out, err := w.gitErr(args...)
	if err != nil {
		w.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return out
}

func (w *markedWS) gitErr(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=chefd", "GIT_AUTHOR_EMAIL=chefd@example.com",
		"GIT_COMMITTER_NAME=chefd", "GIT_COMMITTER_EMAIL=chefd@example.com", "GIT_EDITOR=true")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// check runs the image and compares its output with what the files on
// disk must print.
func (w *markedWS) check(image, how string) {
	w.t.Helper()
	app, ledger, report := w.marker("app"), w.marker("ledger"), w.marker("report")
	out := dockerRun(w.t, image)
	if !strings.Contains(out, "app: "+app+"\n") || !strings.Contains(out, "app: "+ledger+": corner-shop") {
		w.fail("%s: image %s prints\n%s\nwant app %q and ledger %q", how, image, out, app, ledger)
	}
	rep, err := exec.Command("docker", "run", "--rm", "--entrypoint", "/usr/local/bin/report", image).CombinedOutput()
	if err != nil || !strings.Contains(string(rep), "report: "+ledger+" (corner-shop) ["+report+"]") {
		w.fail("%s: report in image %s prints\n%s(%v)\nwant ledger %q and report %q", how, image, rep, err, ledger, report)
	}
	w.logf("  %s: image %s ok (app %s, ledger %s, report %s)", how, shortImage(image), app, ledger, report)
}

func shortImage(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (w *markedWS) fail(format string, args ...any) {
	w.t.Helper()
	w.t.Fatalf(format+"\nsteps so far:\n%s", append(args, strings.Join(w.logs, "\n"))...)
}

// failDaemon fails with the events seen and the end of the daemon's log.
func (w *markedWS) failDaemon(ev *eventStream, format string, args ...any) {
	w.t.Helper()
	ev.mu.Lock()
	lines := ev.lines[max(0, len(ev.lines)-40):]
	events := strings.Join(lines, "\n")
	ev.mu.Unlock()
	logs := chefd(w.t, w.dir, w.env, "logs", "-n", "60")
	w.fail(format+"\nevents (last 40):\n%s\ndaemon log (last 60 lines):\n%s%s", append(args, events, logs.stdout, logs.stderr)...)
}

// buildDirect runs chefd build in-process (no daemon may run) and checks
// the outcome against the files: a failure exactly when a crate is broken,
// else the image of the current content.
func (w *markedWS) buildDirect(dir string, args ...string) {
	w.t.Helper()
	r := chefd(w.t, dir, w.env, append([]string{"build"}, args...)...)
	how := strings.TrimSpace("build " + strings.Join(args, " "))
	w.result(r, how)
	w.checkMode(r, how, dockerctl.ModeExact) // no daemon: always exact
}

// checkMode: a successful build's image carries the mode it was built in.
func (w *markedWS) checkMode(r run, how string, want dockerctl.Mode) {
	w.t.Helper()
	if r.code != 0 || w.anyBroken() {
		return
	}
	out, err := exec.Command("docker", "image", "inspect", "--format", `{{index .Config.Labels "chefd.mode"}}`, strings.TrimSpace(r.stdout)).Output()
	if got := dockerctl.Mode(strings.TrimSpace(string(out))); err != nil || got != want {
		w.fail("%s: image %s built in mode %q (%v), want %q", how, strings.TrimSpace(r.stdout), got, err, want)
	}
}

func (w *markedWS) result(r run, how string) {
	w.t.Helper()
	if w.anyBroken() {
		if r.code == 0 {
			w.fail("%s: a broken workspace built image %s", how, r.stdout)
		}
		w.logf("  %s: failed as it must (exit %d)", how, r.code)
		return
	}
	if r.code != 0 {
		w.fail("%s: exit %d\n%s", how, r.code, tail(r.stderr, 40))
	}
	w.check(strings.TrimSpace(r.stdout), how)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// daemonRunning reports whether this workspace's daemon runs.
func (w *markedWS) daemonRunning() bool {
	return chefd(w.t, w.dir, w.env, "status", "--json").code == 0
}

func (w *markedWS) startDaemon() {
	w.t.Helper()
	if r := chefd(w.t, w.dir, w.env, "start"); r.code != 0 {
		w.fail("start: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func (w *markedWS) stopDaemon() {
	w.t.Helper()
	if r := chefd(w.t, w.dir, w.env, "stop"); r.code != 0 {
		w.fail("stop: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func (w *markedWS) status() api.FullStatus { return daemonStatus(w.t, w.dir, w.env) }

// buildWait asks the daemon for the image of what is on disk.
func (w *markedWS) buildWait(how string) run {
	w.t.Helper()
	r := chefd(w.t, w.dir, w.env, "build", "--wait")
	w.result(r, how)
	return r
}

// events follows the daemon's event stream until stop is called.
type eventStream struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	seen  chan struct{} // a line arrived
}

// autoBuilds starts the daemon, builds once, then edits crate's marker to
// m and checks that the daemon builds the edit unasked (what: the kind of
// file, for the failure), and that the image then holds it.
func (w *markedWS) autoBuilds(crate, m, what string) {
	w.t.Helper()
	w.startDaemon()
	w.buildWait("first")
	ev := w.follow()
	defer ev.stop()
	if !ev.waitFor(w.t, 30*time.Second, `"subscribed"`) {
		w.failDaemon(ev, "chefd events did not subscribe")
	}
	w.setMarker(crate, m)
	if !ev.waitFor(w.t, 2*time.Minute, `"build.done"`, `"trigger":"watch"`, `"result":"ok"`, w.files[crate]) {
		w.failDaemon(ev, "no automatic build of the edit to %s", what)
	}
	w.buildWait("after the automatic build")
}

// requestCompiling asks the daemon for a build (automatic builds may be
// held by a merge in progress, or miss a save right after start) and
// waits until it compiles, or, false, until a build ends ok first: a build
// superseded by the late batch of the same save (a polled subtree) hands
// its running step to the next build (BuildKit shares a step two builds
// run at once), whose progress then says "cached".
func (w *markedWS) requestCompiling(ev *eventStream) bool {
	w.t.Helper()
	if !ev.waitFor(w.t, 30*time.Second, `"subscribed"`) {
		w.failDaemon(ev, "chefd events did not subscribe")
	}
	w.buildAsync()
	compiled := false
	if !ev.waitLine(w.t, 2*time.Minute, func(l string) bool {
		compiled = strings.Contains(l, `"build.progress"`) && strings.Contains(l, "Compiling ")
		return compiled || strings.Contains(l, `"build.done"`) && strings.Contains(l, `"result":"ok"`)
	}) {
		w.failDaemon(ev, "the daemon's build never compiled")
	}
	return compiled
}

func (w *markedWS) follow() *eventStream {
	w.t.Helper()
	cmd := exec.Command(chefdBinary(w.t), "-C", w.dir, "events")
	cmd.Env = append(os.Environ(), w.env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	e := &eventStream{cmd: cmd, seen: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			e.mu.Lock()
			e.lines = append(e.lines, sc.Text())
			e.mu.Unlock()
			select {
			case e.seen <- struct{}{}:
			default:
			}
		}
	}()
	return e
}

// waitFor waits for an event line containing every one of parts.
func (e *eventStream) waitFor(t *testing.T, d time.Duration, parts ...string) bool {
	t.Helper()
	return e.waitLine(t, d, func(l string) bool {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				return false
			}
		}
		return true
	})
}

// waitLine waits for an event line for which ok is true.
func (e *eventStream) waitLine(t *testing.T, d time.Duration, ok func(string) bool) bool {
	t.Helper()
	deadline := time.After(d)
	for i := 0; ; {
		e.mu.Lock()
		for ; i < len(e.lines); i++ {
			if ok(e.lines[i]) {
				e.mu.Unlock()
				return true
			}
		}
		e.mu.Unlock()
		select {
		case <-e.seen:
		case <-deadline:
			return false
		}
	}
}

func (e *eventStream) stop() {
	e.cmd.Process.Kill()
	e.cmd.Wait()
}

// buildUntilCompiling starts chefd build (no daemon) and returns once a
// crate compiles.
func (w *markedWS) buildUntilCompiling() *exec.Cmd {
	w.t.Helper()
	cmd := exec.Command(chefdBinary(w.t), "-C", w.dir, "build")
	cmd.Env = append(os.Environ(), w.env...)
	var stderr bytes.Buffer
	hit := make(chan struct{})
	cmd.Stderr = &lineWatcher{w: &stderr, match: "Compiling ", hit: hit}
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	select {
	case <-hit:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		w.fail("the build never compiled:\n%s", stderr.String())
	}
	return cmd
}

// interrupt starts chefd build (no daemon) and sends sig once a crate
// compiles.
func (w *markedWS) interrupt(sig syscall.Signal) {
	w.t.Helper()
	cmd := w.buildUntilCompiling()
	cmd.Process.Signal(sig)
	w.logf("  sent %v while compiling", sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		w.fail("chefd did not end a minute after %v", sig)
	}
}

// pruneTargetCache removes this checkout's target-directory cache mounts
// from the engine, as `docker builder prune` would.
func pruneTargetCache(t *testing.T, dir string) int {
	t.Helper()
	return pruneCacheMounts(t, "chefd-target-"+dockerctl.WorkspaceID(dir)+"-")
}

// pruneCacheMounts removes from the engine the cache mounts not in use
// whose record's description contains id (a cache id or its prefix), as
// `docker builder prune` would, and returns how many.
func pruneCacheMounts(t *testing.T, id string) int {
	t.Helper()
	ctx := context.Background()
	e, err := dockerctl.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cache, err := e.BuildCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rec := range cache {
		if rec != nil && rec.Type == "exec.cachemount" && !rec.InUse && strings.Contains(rec.Description, id) {
			if _, err := e.Client().BuildCachePrune(ctx, build.CachePruneOptions{Filters: filters.NewArgs(filters.Arg("id", rec.ID))}); err != nil {
				t.Fatalf("prune %s: %v", rec.ID, err)
			}
			n++
		}
	}
	return n
}

// gitStatusLoop runs `git status` over and over, pause apart (as shell
// prompts and IDEs do; each one takes index.lock for a moment), until
// stopped.
func (w *markedWS) gitStatusLoop(pause time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			// not killed when stopped: a git killed mid-refresh leaves its
			// index.lock behind (a stale lock is a test of its own)
			cmd := exec.Command("git", "status", "--porcelain")
			cmd.Dir = w.dir
			cmd.Run()
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// conflict commits everything, then leaves a merge of a conflicting ledger
// change resolved (to marker) and staged, but not committed: MERGE_HEAD
// stays.
func (w *markedWS) conflict(n int, marker string) {
	w.t.Helper()
	marker = w.unique(marker)
	if _, err := os.Stat(filepath.Join(w.dir, ".git", "MERGE_HEAD")); err == nil {
		w.git("commit", "-qm", "merge")
	}
	w.git("add", "-A")
	w.gitErr("commit", "-qm", fmt.Sprintf("step %d", n)) // nothing to commit is fine
	side := fmt.Sprintf("side-%d", n)
	w.git("checkout", "-q", "-b", side)
	w.setMarker("ledger", side)
	w.git("commit", "-qam", side)
	w.git("checkout", "-q", "main")
	w.setMarker("ledger", fmt.Sprintf("main-%d", n))
	w.git("commit", "-qam", "main")
	mine := w.read("ledger")
	if out, err := w.gitErr("merge", side); err == nil || !strings.Contains(out, "CONFLICT") {
		w.fail("merge %s: want a conflict, got %v\n%s", side, err, out)
	}
	if err := os.WriteFile(w.path("ledger"), []byte(bannerRe.ReplaceAllString(mine, `pub const LEDGER_BANNER: &str = "`+marker+`";`)), 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.git("add", crateFiles["ledger"])
	if _, err := os.Stat(filepath.Join(w.dir, ".git", "MERGE_HEAD")); err != nil {
		w.fail("no merge in progress after the conflict")
	}
}

// inotifyInUse counts the inotify watches of every process.
func inotifyInUse() int {
	n := 0
	fds, _ := filepath.Glob("/proc/[0-9]*/fdinfo/*")
	for _, f := range fds {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n += bytes.Count(b, []byte("inotify wd:"))
	}
	return n
}

const maxWatchesFile = "/proc/sys/fs/inotify/max_user_watches"

// startDaemonPolled starts the daemon with the inotify limit lowered so
// that only a few of its directories get a watch and the rest of the tree
// is polled; the limit is restored once the watcher has fallen back.
//
// The limit is the same for every process of the user, so this runs only
// when CHEFD_E2E_INOTIFY=1 says no other test runs beside it
// (scripts/test.sh runs these tests on their own).
func (w *markedWS) startDaemonPolled() bool {
	w.t.Helper()
	if os.Getenv("CHEFD_E2E_INOTIFY") != "1" {
		if os.Getenv("CI") != "" {
			w.t.Fatal("a polled subtree needs the inotify limit lowered: run with CHEFD_E2E_INOTIFY=1 and no other test beside (scripts/test.sh does)")
		}
		w.logf("  CHEFD_E2E_INOTIFY is not 1: no polled subtree")
		w.startDaemon()
		return false
	}
	old, err := os.ReadFile(maxWatchesFile)
	if err == nil {
		err = os.WriteFile(maxWatchesFile, []byte(strconv.Itoa(inotifyInUse()+2)), 0o644)
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			w.t.Fatalf("lowering the inotify limit (needs root): %v", err)
		}
		w.logf("  cannot lower the inotify limit (%v): no polled subtree", err)
		w.startDaemon()
		return false
	}
	restore := func() { os.WriteFile(maxWatchesFile, old, 0o644) }
	defer restore()
	w.t.Cleanup(restore)
	w.startDaemon()
	deadline := time.Now().Add(time.Minute)
	for {
		for _, wn := range w.status().Warnings {
			if strings.Contains(wn.Message, "inotify watch limit") {
				w.logf("  daemon started with a polled subtree: %s", wn.Message)
				return true
			}
		}
		if time.Now().After(deadline) {
			w.fail("the daemon did not fall back to polling with the inotify limit lowered")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// oracle runs one randomized sequence.
type oracle struct {
	*markedWS
	rng       *rand.Rand
	n         int
	prev      map[string][]string // markers before each edit, for reverts
	second    string              // the second checkout
	stopGit   func()
	polled    bool
	conflicts int
}

func (o *oracle) newMarker(crate string) string {
	o.n++
	return fmt.Sprintf("%s-%d", crate, o.n)
}

func (o *oracle) crate() string {
	return []string{"app", "ledger", "report"}[o.rng.Intn(3)]
}

func (o *oracle) edit(crate string) {
	o.prev[crate] = append(o.prev[crate], o.marker(crate))
	m := o.newMarker(crate)
	o.setMarker(crate, m)
	o.logf("edit %s -> %s", crate, m)
}

func (o *oracle) ensureDaemon(on bool) {
	switch running := o.daemonRunning(); {
	case on && !running:
		o.startDaemon()
		o.logf("  daemon started")
	case !on && running:
		o.stopDaemon()
		o.polled = false
		o.logf("  daemon stopped")
	}
}

func (o *oracle) step() {
	t := o.t
	switch op := o.rng.Intn(100); {
	case op < 22:
		o.edit(o.crate())
	case op < 30:
		c := o.crate()
		if p := o.prev[c]; len(p) > 0 {
			o.setMarker(c, p[len(p)-1])
			o.prev[c] = p[:len(p)-1]
			o.logf("revert %s -> %s", c, o.marker(c))
		} else {
			o.edit(c)
		}
	case op < 36:
		if o.anyBroken() {
			for c := range crateFiles {
				o.setBroken(c, false)
			}
			o.logf("compile errors fixed")
			break
		}
		c := o.crate()
		o.setBroken(c, true)
		o.logf("compile error in %s", c)
	case op < 50:
		o.ensureDaemon(false)
		o.logf("build (no daemon)")
		o.buildDirect(o.dir)
	case op < 64:
		o.ensureDaemon(true)
		if o.rng.Intn(3) == 0 { // an exact build from the loop-mode daemon
			o.logf("build --wait --exact (daemon)")
			r := chefd(t, o.dir, o.env, "build", "--wait", "--exact")
			o.result(r, "build --wait --exact")
			o.checkMode(r, "build --wait --exact", dockerctl.ModeExact)
			break
		}
		o.logf("build --wait (daemon)")
		o.buildWait("build --wait")
	case op < 68:
		o.ensureDaemon(false)
		o.edit(o.crate())
		o.logf("build cancelled mid-compile (SIGINT)")
		o.interrupt(syscall.SIGINT)
	case op < 72:
		o.edit(o.crate())
		if o.daemonRunning() {
			o.logf("kill -9 the daemon mid-build")
			ev := o.follow()
			defer ev.stop()
			if !o.requestCompiling(ev) {
				o.logf("  the build ended before it could be killed")
			}
			syscall.Kill(o.status().Daemon.PID, syscall.SIGKILL)
			o.waitDaemonGone()
		} else {
			o.logf("kill -9 chefd mid-build")
			o.interrupt(syscall.SIGKILL)
		}
	case op < 76:
		if o.daemonRunning() && o.status().Current != nil {
			o.ensureDaemon(false) // a cache in use cannot be pruned
		}
		o.logf("docker builder prune of the target cache: %d records", pruneTargetCache(t, o.dir))
	case op < 80:
		if o.second == "" {
			o.second = filepath.Join(t.TempDir(), "second")
		}
		os.RemoveAll(o.second)
		copyTree(t, o.dir, o.second)
		o.logf("build in a second checkout")
		o.buildDirect(o.second)
	case op < 84:
		if o.stopGit == nil {
			o.stopGit = o.gitStatusLoop(20 * time.Millisecond)
			o.logf("git status loop on")
		} else {
			o.stopGit()
			o.stopGit = nil
			o.logf("git status loop off")
		}
	case op < 88:
		if o.stopGit != nil { // git commands of our own cannot take the index lock meanwhile
			o.stopGit()
			defer func() { o.stopGit = o.gitStatusLoop(20 * time.Millisecond) }()
		}
		o.conflicts++
		m := o.newMarker("merged")
		o.conflict(o.conflicts, m)
		o.prev = map[string][]string{}
		o.logf("merge conflict resolved to %s and staged, not committed", m)
	case op < 92:
		if o.polled {
			o.edit(o.crate())
			break
		}
		o.ensureDaemon(false)
		o.polled = o.startDaemonPolled()
		o.logf("daemon restarted with a polled subtree: %v", o.polled)
	case op < 95:
		o.ensureDaemon(false)
		o.edit(o.crate())
		o.restartEngine()
	default:
		o.ensureDaemon(true)
		ev := o.follow()
		defer ev.stop()
		c := o.crate()
		o.edit(c)
		if !o.requestCompiling(ev) {
			o.logf("  the build ended before the revert")
		}
		p := o.prev[c]
		o.setMarker(c, p[len(p)-1])
		o.prev[c] = p[:len(p)-1]
		o.logf("revert %s -> %s while the daemon compiles the edit", c, o.marker(c))
		o.buildWait("build --wait after a superseded build")
	}
}

// restartEngine restarts the Docker engine (SIGTERM, as a service restart
// does, then scripts/ensure-engine.sh) while chefd build compiles. Only
// with CHEFD_E2E_ENGINE_RESTART=1 (no other test may use the engine then;
// scripts/test.sh sets it for the tests it runs on their own).
func (o *oracle) restartEngine() {
	t := o.t
	pidfile := os.Getenv("CHEFD_DOCKERD_PIDFILE")
	if pidfile == "" {
		pidfile = "/var/run/docker.pid"
	}
	b, err := os.ReadFile(pidfile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if os.Getenv("CHEFD_E2E_ENGINE_RESTART") != "1" {
		o.logf("(no engine restart: CHEFD_E2E_ENGINE_RESTART is not 1)")
		return
	}
	if err != nil || pid <= 0 {
		t.Fatalf("restarting the engine needs dockerd's pid file (%s: %v)", pidfile, err)
	}
	cmd := o.buildUntilCompiling()
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(time.Minute)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("dockerd (pid %d) did not stop within a minute of SIGTERM", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Wait()
	out, err := exec.Command("../../scripts/ensure-engine.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("restart the engine: %v\n%s", err, out)
	}
	o.logf("engine restarted while chefd build compiled")
}

// copyTree copies the working tree at src to dst (a second checkout of the
// same content): without .git, and without files that vanish while it
// copies (git's index.lock, the daemon's sync cookies).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if os.IsNotExist(err) {
			return nil
		} else if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if os.IsNotExist(err) {
				return nil
			} else if err != nil {
				return err
			}
			return os.WriteFile(to, b, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// buildAsync asks the daemon for a build without waiting.
func (w *markedWS) buildAsync() {
	if r := chefd(w.t, w.dir, w.env, "build"); r.code != 0 {
		w.fail("build request: exit %d\n%s", r.code, r.stderr)
	}
}

func (o *oracle) waitDaemonGone() {
	deadline := time.Now().Add(30 * time.Second)
	for o.daemonRunning() {
		if time.Now().After(deadline) {
			o.fail("the killed daemon still answers")
		}
		time.Sleep(50 * time.Millisecond)
	}
	o.polled = false
}

// TestE2EOracle runs randomized sequences of edits, reverts, compile
// errors, cancelled and killed builds, pruned caches, a second checkout,
// builds with and without the daemon, a git status loop, a staged merge
// conflict, a polled subtree and an engine restarted mid-build, and checks after every successful build
// that the image prints what the files on disk say. CHEFD_ORACLE_SEEDS
// sequences (1 by default: a new seed every run) of CHEFD_ORACLE_STEPS
// steps (40); one sequence again: CHEFD_ORACLE_SEED. Some seeds draw many
// cooks: a sequence stops taking new steps after CHEFD_ORACLE_BUDGET
// seconds (90) once it has taken 10, so the suite keeps its time; the
// log says how many it took.
func TestE2EOracle(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	needEngine(t)
	seeds, steps := envInt("CHEFD_ORACLE_SEEDS", 1), envInt("CHEFD_ORACLE_STEPS", 40)
	budget, minSteps := time.Duration(envInt("CHEFD_ORACLE_BUDGET", 90))*time.Second, min(10, steps)
	base := time.Now().UnixNano() % 1_000_000
	list := make([]int64, seeds)
	for i := range list {
		list[i] = base + int64(i)
	}
	if s := os.Getenv("CHEFD_ORACLE_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("CHEFD_ORACLE_SEED: %v", err)
		}
		list = []int64{v}
	}
	for _, seed := range list {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Logf("seed %d (again: CHEFD_ORACLE_SEED=%d go test ./cmd/chefd -run TestE2EOracle)", seed, seed)
			start := time.Now()
			o := &oracle{markedWS: newMarkedWS(t, fmt.Sprintf("oracle-%d", seed)), rng: rand.New(rand.NewSource(seed)),
				prev: map[string][]string{}}
			defer func() {
				if o.stopGit != nil {
					o.stopGit()
				}
			}()
			taken := 0
			for ; taken < steps; taken++ {
				if taken >= minSteps && time.Since(start) > budget {
					o.logf("budget of %s spent: %d of %d steps taken", budget, taken, steps)
					break
				}
				o.logf("step %d:", taken+1)
				o.step()
			}
			// the end state, both ways
			for c := range crateFiles {
				o.setBroken(c, false)
			}
			o.logf("final: fixed every crate")
			o.ensureDaemon(true)
			o.buildWait("final build --wait")
			o.ensureDaemon(false)
			o.buildDirect(o.dir)
			t.Logf("seed %d: %d steps in %s\n%s", seed, taken, time.Since(start).Round(time.Second), strings.Join(o.logs, "\n"))
		})
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestE2ERegressions: each way of shipping code that is no longer in the
// workspace that was found, as a test of its own, each on a copy of its own
// (its own target cache).
func TestE2ERegressions(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	needEngine(t)
	// withDaemon: a copy with its first image built by its daemon.
	withDaemon := func(t *testing.T, tag string) *markedWS {
		w := newMarkedWS(t, tag)
		w.startDaemon()
		w.buildWait("first")
		return w
	}

	t.Run("FailedBuildThenRevert", func(t *testing.T) {
		t.Parallel() // after the subtests that lower the inotify limit, two at a time
		w := newMarkedWS(t, "e2e-failed-revert")
		w.buildDirect(w.dir)
		keep := w.read("ledger")
		w.setMarker("ledger", "ENTRIES-Y")
		w.setBroken("app", true)
		w.buildDirect(w.dir) // fails in app, after ledger compiled
		os.WriteFile(w.path("ledger"), []byte(keep), 0o644)
		w.setBroken("app", false)
		w.setMarker("report", "report-1") // no layer cache hit: the code step runs
		w.buildDirect(w.dir)
		w.buildDirect(w.dir, "--no-cache")
	})

	t.Run("SupersededThenRevert", func(t *testing.T) {
		t.Parallel() // after the subtests that lower the inotify limit, two at a time
		w := withDaemon(t, "e2e-superseded-revert")
		ev := w.follow()
		defer ev.stop()
		keep := w.read("ledger")
		w.setMarker("ledger", "ENTRIES-Y")
		// ledger is compiled once its dependents start
		if !ev.waitLine(t, 2*time.Minute, func(l string) bool {
			return strings.Contains(l, `"build.progress"`) && (strings.Contains(l, "Compiling app") || strings.Contains(l, "Compiling report"))
		}) {
			w.fail("the daemon did not compile the edit")
		}
		os.WriteFile(w.path("ledger"), []byte(keep), 0o644)
		w.setMarker("report", "report-1")
		w.buildWait("after the revert")
		w.setMarker("app", "app-later") // later edits elsewhere keep it right
		w.buildWait("a later edit")
	})

	t.Run("MergeConflictStaged", func(t *testing.T) {
		t.Parallel() // after the subtests that lower the inotify limit, two at a time
		w := withDaemon(t, "e2e-merge-staged")
		w.conflict(1, "resolved-1")
		if st := w.status(); st.Held != "MERGE_HEAD" {
			w.fail("status during the merge: held %q, want MERGE_HEAD", st.Held)
		}
		r := w.buildWait("merge staged, not committed")
		if !strings.Contains(r.stderr, "git is in the middle of an operation (MERGE_HEAD)") {
			w.fail("build --wait does not say git is busy:\n%s", r.stderr)
		}
	})

	t.Run("GitStatusLoop", func(t *testing.T) {
		t.Parallel() // after the subtests that lower the inotify limit, two at a time
		w := withDaemon(t, "e2e-git-status")
		stop := w.gitStatusLoop(0)
		defer stop()
		for i := 0; i < 2; i++ {
			w.setMarker("app", fmt.Sprintf("status-loop-%d", i))
			w.buildWait(fmt.Sprintf("save %d with git status running", i))
		}
	})

	t.Run("StaleIndexLock", func(t *testing.T) {
		t.Parallel() // after the subtests that lower the inotify limit, two at a time
		w := withDaemon(t, "e2e-stale-lock")
		lock := filepath.Join(w.dir, ".git", "index.lock")
		if err := os.WriteFile(lock, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		w.setMarker("report", "under-a-stale-lock")
		r := w.buildWait("stale index.lock")
		if st := w.status(); st.Held != "index.lock" || !strings.Contains(r.stderr, "(index.lock)") {
			w.fail("held %q, stderr:\n%s", st.Held, r.stderr)
		}
	})

	t.Run("GitignoredSource", func(t *testing.T) {
		// A git-ignored source (a generated file, say) is shipped, so it is
		// watched: its edit starts an automatic build, with the edit.
		w := newMarkedWS(t, "e2e-gitignored")
		if err := os.WriteFile(filepath.Join(w.dir, ".gitignore"), []byte("target/\n/"+crateFiles["ledger"]+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		w.autoBuilds("ledger", "gitignored-1", "a git-ignored source")
	})

	t.Run("OutsidePathCrate", func(t *testing.T) {
		// A path crate outside the workspace root is shipped, so it is
		// watched: its edit starts an automatic build, with the edit.
		w := newMarkedWS(t, "e2e-outside")
		outside := filepath.Join(filepath.Dir(w.dir), "ledger")
		if err := os.Rename(filepath.Join(w.dir, "crates", "ledger"), outside); err != nil {
			t.Fatal(err)
		}
		w.files["ledger"] = "../ledger/src/lib.rs"
		edit(t, filepath.Join(w.dir, "Cargo.toml"), `members = ["crates/ledger", "crates/app", "crates/report"]`, `members = ["crates/app", "crates/report"]`)
		edit(t, filepath.Join(w.dir, "Cargo.toml"), `ledger = { path = "crates/ledger" }`, `ledger = { path = "../ledger" }`)
		manifest := `[package]
name = "ledger"
description = "Parse, validate and summarise a small JSON ledger"
version = "0.1.0"
edition = "2021"
license = "MIT OR Apache-2.0"
publish = false

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
thiserror = "1"
`
		if err := os.WriteFile(filepath.Join(outside, "Cargo.toml"), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		w.autoBuilds("ledger", "outside-1", "the path crate outside the workspace")
	})

	t.Run("SymlinkedMemberOutside", func(t *testing.T) {
		// A member whose directory is a link to a directory outside the
		// workspace (cargo follows it) is shipped as that directory and
		// watched there: its edit starts an automatic build, with the edit.
		w := newMarkedWS(t, "e2e-linked")
		outside := filepath.Join(filepath.Dir(w.dir), "ledger")
		if err := os.Rename(filepath.Join(w.dir, "crates", "ledger"), outside); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../ledger", filepath.Join(w.dir, "crates", "ledger")); err != nil {
			t.Fatal(err)
		}
		w.files["ledger"] = "../ledger/src/lib.rs" // the watcher names the real file
		w.autoBuilds("ledger", "linked-1", "the symlinked member")
	})

	t.Run("PolledSubtree", func(t *testing.T) {
		w := newMarkedWS(t, "e2e-polled")
		if !w.startDaemonPolled() {
			t.Skip("the inotify limit is not lowered here (CHEFD_E2E_INOTIFY=1 as root)")
		}
		w.buildWait("first")
		for i, c := range []string{"report", "ledger", "app"} {
			w.setMarker(c, fmt.Sprintf("polled-%d", i))
			w.buildWait("edit in a polled subtree")
		}
	})
}
