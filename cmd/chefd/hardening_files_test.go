package main

// Hostile files and signals (issue 10, item 3): the chefd binary on a
// workspace whose manifests, lockfile or chefd.toml are FIFOs, devices or
// huge must end promptly with an error naming the file, without the
// memory; and SIGINT/SIGTERM always end the CLI. No engine needed.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chefd/chefd/internal/testws"
)

// hardeningWorkspace writes a small workspace (a virtual root, crates/app
// with a binary, crates/lib) with a chefd.toml and returns its directory.
func hardeningWorkspace(t *testing.T) string {
	t.Helper()
	return testws.Small(t, t.TempDir(), map[string]string{"chefd.toml": "image = \"hardening\"\n"})
}

// chefdProc is a running chefd.
type chefdProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan error // Wait's result
	rusage string     // where rusageHelper writes chefd's peak memory, or ""
}

// capScript runs chefd with its address space capped at 4 GiB, so that a
// regression reading /dev/zero fails the test instead of the machine. It
// execs chefd, so signals sent to the process reach chefd itself.
const capScript = `ulimit -v 4194304; exec "$0" "$@"`

// startChefd starts the binary under capScript with its own recipe cache.
func startChefd(t *testing.T, ws string, args ...string) *chefdProc {
	t.Helper()
	return startChefdAs(t, "", ws, args...)
}

// startChefdMeasured starts chefd as startChefd does, under a fresh copy
// of the test binary (rusageHelper) that records chefd's peak resident
// memory for maxRSS. Go starts a child with vfork, and Linux keeps in the
// child the peak resident memory of the process image its exec replaces:
// measured directly, chefd would report this test binary's own peak (256
// MiB or more after the package's other tests).
func startChefdMeasured(t *testing.T, ws string, args ...string) *chefdProc {
	t.Helper()
	return startChefdAs(t, filepath.Join(t.TempDir(), "maxrss"), ws, args...)
}

// startChefdAs starts /bin/sh -c capScript chefd -C ws args..., under the
// rusage helper when rusage names a file for it.
func startChefdAs(t *testing.T, rusage, ws string, args ...string) *chefdProc {
	t.Helper()
	argv := append([]string{"/bin/sh", "-c", capScript, chefdBinary(t), "-C", ws}, args...)
	env := append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	if rusage != "" {
		argv = append([]string{os.Args[0]}, argv...)
		env = append(env, rusageHelperEnv+"="+rusage)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // killed as a group
	p := &chefdProc{cmd: cmd, done: make(chan error, 1), rusage: rusage}
	cmd.Stderr = &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		p.kill()
		<-p.done
	})
	return p
}

// kill kills chefd and whatever started it.
func (p *chefdProc) kill() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// rusageHelperEnv names, in the environment of a copy of the test binary,
// the file where it writes the peak resident memory of the command it runs
// (TestMain).
const rusageHelperEnv = "CHEFD_TEST_MAXRSS_FILE"

// rusageHelper runs argv with the helper's stdio, writes the child's peak
// resident memory in bytes to file and returns the child's exit code.
func rusageHelper(file string, argv []string) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintln(os.Stderr, "rusage helper:", err)
		return 125
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		fmt.Fprintln(os.Stderr, "rusage helper:", err)
		return 125
	}
	if err := os.WriteFile(file, []byte(strconv.FormatInt(ru.Maxrss*1024, 10)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "rusage helper:", err)
		return 125
	}
	return cmd.ProcessState.ExitCode()
}

// TestMain runs the rusage helper when asked to, else the tests.
func TestMain(m *testing.M) {
	if file := os.Getenv(rusageHelperEnv); file != "" {
		os.Exit(rusageHelper(file, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// wait returns the exit code, failing the test if chefd has not exited
// within d (it is then killed).
func (p *chefdProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(d):
		p.kill()
		t.Fatalf("%s did not exit within %v\nstderr: %s", strings.Join(p.cmd.Args, " "), d, p.stderr.String())
		return -1
	}
}

// maxRSS is chefd's peak resident memory in bytes, as the rusage helper
// recorded it (startChefdMeasured).
func (p *chefdProc) maxRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(p.rusage)
	if err != nil {
		t.Fatalf("reading the rusage helper's figure: %v", err)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		t.Fatalf("the rusage helper's figure: %v", err)
	}
	return n
}

// TestHardeningOddFiles: `chefd prepare` on a workspace where one file is
// a FIFO, a link to /dev/zero, huge, or a dangling link exits at once with
// the error naming the file, and stays small.
func TestHardeningOddFiles(t *testing.T) {
	fifo := func(t *testing.T, p string) {
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target string) func(t *testing.T, p string) {
		return func(t *testing.T, p string) {
			os.Remove(p)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	huge := func(t *testing.T, p string) {
		if err := os.Truncate(p, 1<<40); err != nil { // 1 TiB, sparse
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, file string
		make       func(t *testing.T, p string)
		want       string // in stderr, after the file's name
	}{
		{"FIFO Cargo.toml", "Cargo.toml", fifo, "not a regular file (a FIFO); chefd reads only regular files"},
		{"FIFO member manifest", "crates/lib/Cargo.toml", fifo, "not a regular file (a FIFO); chefd reads only regular files"},
		{"FIFO Cargo.lock", "Cargo.lock", fifo, "not a regular file (a FIFO); chefd reads only regular files"},
		{"FIFO chefd.toml", "chefd.toml", fifo, "not a regular file (a FIFO); chefd reads only regular files"},
		{"Cargo.lock linked to /dev/zero", "Cargo.lock", link("/dev/zero"), "not a regular file (a symbolic link to /dev/zero, a character device)"},
		{"chefd.toml linked to /dev/zero", "chefd.toml", link("/dev/zero"), "a character device"},
		{"huge Cargo.lock", "Cargo.lock", huge, "larger than 64 MiB"},
		{"huge member manifest", "crates/app/Cargo.toml", huge, "larger than 16 MiB"},
		{"dangling chefd.toml", "chefd.toml", link("../shared/chefd.toml"), "a symbolic link to ../shared/chefd.toml, which does not exist"},
		{"dangling Cargo.lock", "Cargo.lock", link("gone.lock"), "a symbolic link to gone.lock, which does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := hardeningWorkspace(t)
			tc.make(t, filepath.Join(ws, filepath.FromSlash(tc.file)))
			p := startChefdMeasured(t, ws, "prepare")
			code := p.wait(t, 30*time.Second)
			stderr := p.stderr.String()
			if code != 1 || !strings.Contains(stderr, tc.file) || !strings.Contains(stderr, tc.want) {
				t.Fatalf("chefd prepare: exit %d, stderr:\n%s\nwant exit 1 and an error naming %s: %q", code, stderr, tc.file, tc.want)
			}
			if rss := p.maxRSS(t); rss > 256<<20 {
				t.Errorf("chefd prepare peaked at %d MiB resident", rss>>20)
			}
		})
	}
}

// TestHardeningSignalEndsCLI: a chefd blocked where its context does not
// reach (here reading a FIFO named by `dockerfile --check`, as cat would)
// ends on SIGTERM (143) or SIGINT (130) within the grace period. (A second
// signal exits at once: TestInterrupts; two signals sent here back to back
// may reach the process as one.)
func TestHardeningSignalEndsCLI(t *testing.T) {
	cases := []struct {
		name    string
		signals []syscall.Signal
		code    int
	}{
		{"SIGTERM", []syscall.Signal{syscall.SIGTERM}, 143},
		{"SIGINT", []syscall.Signal{syscall.SIGINT}, 130},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := hardeningWorkspace(t)
			fifo := filepath.Join(t.TempDir(), "Dockerfile")
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Fatal(err)
			}
			p := startChefd(t, ws, "dockerfile", "--check", fifo)
			// Opening the FIFO for writing returns once chefd has opened it
			// for reading: chefd then waits for data that never comes.
			opened := make(chan *os.File, 1)
			go func() {
				w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
				if err != nil {
					t.Error(err)
				}
				opened <- w
			}()
			select {
			case w := <-opened:
				if w != nil {
					defer w.Close()
				}
			case err := <-p.done:
				// unblock the writer's open, then report
				if r, rerr := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); rerr == nil {
					defer r.Close()
				}
				t.Fatalf("chefd exited (%v) before reading the FIFO:\n%s", err, p.stderr.String())
			case <-time.After(30 * time.Second):
				t.Fatalf("chefd never opened %s:\n%s", fifo, p.stderr.String())
			}
			for _, s := range tc.signals {
				if err := p.cmd.Process.Signal(s); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			if code := p.wait(t, 20*time.Second); code != tc.code {
				t.Fatalf("after %v: exit %d, want %d\n%s", tc.signals, code, tc.code, p.stderr.String())
			}
			t.Logf("exited %v after the signal: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(p.stderr.String()))
		})
	}
}

// TestInterrupts: the first signal cancels; a second one, or the grace
// period, exits with 128 + the signal; the daemon only cancels.
func TestInterrupts(t *testing.T) {
	cases := []struct {
		name     string
		escalate bool
		signals  []os.Signal
		timer    bool // the grace period ends
		code     int  // 0: no exit
	}{
		{"SIGTERM, then the grace period", true, []os.Signal{syscall.SIGTERM}, true, 143},
		{"SIGINT twice", true, []os.Signal{os.Interrupt, os.Interrupt}, false, 130},
		{"SIGINT, then SIGTERM", true, []os.Signal{os.Interrupt, syscall.SIGTERM}, false, 143},
		{"the daemon", false, []os.Signal{syscall.SIGTERM, syscall.SIGTERM}, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			grace := make(chan time.Time, 1)
			codes := make(chan int, 1)
			var stderr bytes.Buffer
			in := &interrupts{cancel: cancel, grace: time.Hour, escalate: tc.escalate, stderr: &stderr,
				after: func(time.Duration) <-chan time.Time { return grace },
				exit:  func(code int) { codes <- code }}
			sigs := make(chan os.Signal, 2)
			for _, s := range tc.signals {
				sigs <- s
			}
			if tc.timer {
				grace <- time.Now()
			}
			in.watch(sigs) // returns: the exit is a fake
			if ctx.Err() == nil {
				t.Error("the first signal did not cancel the context")
			}
			if want := signum(tc.signals[0]); in.signal() != want {
				t.Errorf("signal() = %d, want %d", in.signal(), want)
			}
			select {
			case code := <-codes:
				if code != tc.code {
					t.Errorf("exit %d, want %d (%s)", code, tc.code, stderr.String())
				}
			default:
				if tc.code != 0 {
					t.Errorf("no exit, want %d", tc.code)
				}
			}
		})
	}
}

// TestRunsDaemon: the grace period never cuts the daemon's own graceful
// stop.
func TestRunsDaemon(t *testing.T) {
	root := newApp(new(bytes.Buffer), new(bytes.Buffer)).root()
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"start", "--foreground"}, true},
		{[]string{"-C", "/x", "start", "--foreground", "--manual"}, true},
		{[]string{"start", "--foreground=false"}, false},
		{[]string{"start", "--detached", "-C", "/x"}, true},
		{[]string{"start"}, false},
		{[]string{"build", "--wait"}, false},
		{[]string{"prepare"}, false},
		{nil, false},
	} {
		if got := runsDaemon(root, tc.args); got != tc.want {
			t.Errorf("runsDaemon(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
