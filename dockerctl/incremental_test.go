package dockerctl

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestIncrementalRetry runs the loop mode's cargo step with a fake cargo:
// a link failure on rustc's incremental state (rust-lang/rust#81280)
// removes the incremental state and builds once more; any other failure
// is cargo's exit code, with its output, and no second run.
func TestIncrementalRetry(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	const linkErr = "note: /usr/bin/ld: x.rcgu.o: undefined reference to `anon.1bacc15401d3fd3d.1.llvm.11132561886002833179'"
	cases := []struct {
		name     string
		first    string // the first run's stderr; it fails when not empty
		firstRC  int
		wantRC   int
		wantRuns int
		wantGone bool // the incremental state removed
	}{
		{name: "ok", wantRuns: 1},
		{name: "link error on incremental state", first: linkErr, firstRC: 101, wantRuns: 2, wantGone: true},
		{name: "hidden symbol", first: "/usr/bin/ld: report: hidden symbol `anon.aa.1.llvm.42' isn't defined", firstRC: 101, wantRuns: 2, wantGone: true},
		{name: "compile error", first: "error[E0308]: mismatched types", firstRC: 101, wantRC: 101, wantRuns: 1},
		{name: "other link error", first: "undefined reference to `openssl_init'", firstRC: 101, wantRC: 101, wantRuns: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			inc := filepath.Join(dir, "target", "x86_64-unknown-linux-gnu", "release", "incremental", "app-1")
			for _, d := range []string{bin, inc} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// the fake cargo: the first run prints c.first and fails with
			// c.firstRC; later runs succeed
			fake := "#!/bin/sh\nn=$(cat runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > runs\necho 'cargo stdout'\n" +
				"if [ $n = 1 ] && [ " + shQuote(itoa(c.firstRC)) + " != 0 ]; then echo " + shQuote(c.first) + " >&2; exit " + itoa(c.firstRC) + "; fi\n" +
				"echo '    Finished' >&2\n"
			if err := os.WriteFile(filepath.Join(bin, "cargo"), []byte(fake), 0o755); err != nil {
				t.Fatal(err)
			}
			script := "set -e\n" + incrementalRetry("cargo build --release") + "echo after\n"
			cmd := exec.Command("sh", "-c", script)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			var out, errb strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			rc := 0
			if ee, ok := err.(*exec.ExitError); ok {
				rc = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			runs, _ := os.ReadFile(filepath.Join(dir, "runs"))
			_, statErr := os.Stat(inc)
			if rc != c.wantRC || strings.TrimSpace(string(runs)) != itoa(c.wantRuns) || os.IsNotExist(statErr) != c.wantGone {
				t.Fatalf("rc %d (want %d), runs %s (want %d), incremental state gone %v (want %v)\nstdout %q\nstderr %q",
					rc, c.wantRC, runs, c.wantRuns, os.IsNotExist(statErr), c.wantGone, out.String(), errb.String())
			}
			if c.first != "" && !strings.Contains(errb.String(), c.first) {
				t.Errorf("cargo's stderr was not passed on: %q", errb.String())
			}
			if !strings.Contains(out.String(), "cargo stdout") || strings.Contains(out.String(), "Finished") {
				t.Errorf("stdout %q: cargo's stdout, and only it", out.String())
			}
			if (c.wantRC == 0) != strings.Contains(out.String(), "after") {
				t.Errorf("the script went on %v after rc %d", strings.Contains(out.String(), "after"), c.wantRC)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
