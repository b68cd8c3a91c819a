package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chefd/chefd/dockerctl"
)

// TestBenchRemoteContext (BENCHMARKS.md, "The build context on a remote
// engine"; CHEFD_BENCH_CONTEXT=1, not part of the suite): what a save
// costs in context on the example and on the example with 20,000 more
// source files (CHEFD_BENCH_FILES), on engine B over TCP with TLS, with
// the context sent as is and gzip-compressed, and on the local engine.
// It prints a table row per case: files, bytes, bytes sent, upload time
// and the build from start to image ID (medians of CHEFD_BENCH_RUNS).
func TestBenchRemoteContext(t *testing.T) {
	if os.Getenv("CHEFD_BENCH_CONTEXT") == "" {
		t.Skip("a benchmark: CHEFD_BENCH_CONTEXT=1")
	}
	needEngine(t)
	runs := envInt("CHEFD_BENCH_RUNS", 3)
	_, builder, b := otherMachine(t)

	small := exampleCopy(t)
	large := exampleCopy(t)
	nfiles := envInt("CHEFD_BENCH_FILES", 20000)
	// 20,000 files of Rust source (about 2 KB each), in 100 directories
	// of one crate: shipped with it, as a large workspace's sources are
	body := strings.Repeat("/// A generated function, as a large crate has thousands.\npub fn f(x: u64) -> u64 {\n    x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407)\n}\n", 10)
	for i := 0; i < nfiles; i++ {
		d := filepath.Join(large, "crates/ledger/src/gen", fmt.Sprintf("d%03d", i%100))
		if i < 100 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("m%05d.rs", i)), []byte(fmt.Sprintf("// file %d\n%s", i, body)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{small, large} {
		edit(t, filepath.Join(dir, "chefd.toml"), `builder-image = "`+builderImage(t)+`"`, `builder-image = "`+builder+`"`)
		ownImage(t, dir, "chefd-ctxbench")
	}
	main := "crates/app/src/main.rs"
	for _, c := range []struct {
		name, dir string
		env       []string
	}{
		{"example, local engine (unix socket)", small, nil},
		{"example, engine B (tcp+TLS), as is", small, append([]string{"CHEFD_COMPRESS=never"}, b.env...)},
		{"example, engine B (tcp+TLS), gzip", small, b.env},
		{fmt.Sprintf("+%d files, local engine (unix socket)", nfiles), large, nil},
		{fmt.Sprintf("+%d files, engine B (tcp+TLS), as is", nfiles), large, append([]string{"CHEFD_COMPRESS=never"}, b.env...)},
		{fmt.Sprintf("+%d files, engine B (tcp+TLS), gzip", nfiles), large, b.env},
	} {
		// warm: the cook and a first code build on that engine
		if r := chefd(t, c.dir, c.env, "build"); r.code != 0 {
			t.Fatalf("%s: first build: %s", c.name, r.stderr)
		}
		var totals, uploads []time.Duration
		var last dockerctl.BuildResult
		for i := 0; i < runs; i++ {
			greeting := fmt.Sprintf("hello %d", time.Now().UnixNano())
			b, _ := os.ReadFile(filepath.Join(c.dir, main))
			s := string(b)
			i0 := strings.Index(s, `GREETING: &str = "`) + len(`GREETING: &str = "`)
			i1 := i0 + strings.IndexByte(s[i0:], '"')
			os.WriteFile(filepath.Join(c.dir, main), []byte(s[:i0]+greeting+s[i1:]), 0o644)
			t0 := time.Now()
			r := chefd(t, c.dir, c.env, "build", "--json")
			took := time.Since(t0)
			if r.code != 0 {
				t.Fatalf("%s: %s", c.name, r.stderr)
			}
			if err := json.Unmarshal([]byte(r.stdout), &last); err != nil || last.Context == nil {
				t.Fatalf("%s: %v %s", c.name, err, r.stdout)
			}
			totals, uploads = append(totals, took), append(uploads, last.Context.Upload)
		}
		cs := last.Context
		t.Logf("| %s | %d | %.1f MB | %.1f MB | %.2f s | %.1f s |", c.name, cs.Files, float64(cs.Bytes)/1e6, float64(cs.Sent)/1e6,
			median(uploads).Seconds(), median(totals).Seconds())
	}
}

// otherMachine starts a registry holding the builder image (as
// rust:1-bookworm would be) and engine B, "another machine" holding
// nothing; builder is the builder image's reference in the registry.
func otherMachine(t *testing.T) (reg *testRegistry, builder string, b *testEngine) {
	t.Helper()
	reg = startRegistry(t, "", "")
	builder = reg.host + "/" + builderImage(t)
	docker(t, "tag", builderImage(t), builder)
	t.Cleanup(func() { docker(t, "rmi", builder) })
	docker(t, "push", builder)
	return reg, builder, startEngine(t)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestBenchRemoteShared (BENCHMARKS.md, "Shared cooked images on another
// engine"; CHEFD_BENCH_REMOTE_GEN=1, not part of the suite): the first
// build on engine B of a generated workspace with 115 third-party packages
// (scripts/gen-workspace.sh), with the cooked image engine A pushed,
// against B cooking it, and against a code build on warm A after an edit.
func TestBenchRemoteShared(t *testing.T) {
	if os.Getenv("CHEFD_BENCH_REMOTE_GEN") == "" {
		t.Skip("a benchmark: CHEFD_BENCH_REMOTE_GEN=1")
	}
	needEngine(t)
	reg, builder, b := otherMachine(t)

	dir := filepath.Join(t.TempDir(), "gen")
	if out, err := exec.Command("sh", "../../scripts/gen-workspace.sh", dir).CombinedOutput(); err != nil {
		t.Fatalf("gen-workspace.sh: %v\n%s", err, out)
	}
	edit(t, filepath.Join(dir, "chefd.toml"), `builder-image = "`+builderImage(t)+`"`, `builder-image = "`+builder+`"`)
	image := ownImage(t, dir, "chefd-genshare")
	// a recipe of its own: no figure is BuildKit's layer cache
	os.MkdirAll(filepath.Join(dir, ".cargo"), 0o755)
	os.WriteFile(filepath.Join(dir, ".cargo/config.toml"), []byte(fmt.Sprintf("[alias]\nchefd-nonce-%d = \"build\"\n", time.Now().UnixNano())), 0o644)
	repo := reg.host + "/team/" + image + "-cooked"

	t0 := time.Now()
	if r := chefd(t, dir, nil, "--cooked-repo", repo, "cook", "--push"); r.code != 0 {
		t.Fatalf("cook --push on A: %s", r.stderr)
	}
	coldA := time.Since(t0)
	buildOn := func(what string, env []string) (dockerctl.BuildResult, time.Duration) {
		t.Helper()
		t0 := time.Now()
		r := chefd(t, dir, env, "build", "--json")
		took := time.Since(t0)
		var res dockerctl.BuildResult
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil {
			t.Fatalf("%s: exit %d\n%s", what, r.code, r.stderr)
		}
		t.Logf("%s: %.1f s, cook %+v", what, took.Seconds(), res.Cook)
		return res, took
	}
	// B's first build pulls the builder image (its one-time setup), then
	// the cooked image: the builder's pull is left out
	docker := func(args ...string) { b.docker(t, args...) }
	docker("pull", builder)
	shared, sharedT := buildOn("B, shared cooked image", append([]string{"CHEFD_COOKED_REPO=" + repo}, b.env...))
	if shared.Cook == nil || shared.Cook.Pulled == "" || shared.Compiled.ThirdParty != 0 {
		t.Fatalf("B did not pull the cooked image: %+v", shared.Cook)
	}
	pull := shared.Cook.Duration
	// B cooking: its cooked image removed, no repository
	docker("rmi", shared.CookedTag, shared.Cook.Pulled)
	_, coldT := buildOn("B, cooking", b.env)
	// warm A: a code build after an edit
	buildOn("A, first code build", nil)
	edit(t, filepath.Join(dir, "crates/report/src/main.rs"), `"gen"`, `"gen, edited"`)
	_, warmT := buildOn("A, code build after an edit", nil)
	t.Logf("| generated, 115 packages | **%.1f s** (pull %.1f s) | %.1f s | **%.1fx** | %.1f s | cold cook on A %.1f s |",
		sharedT.Seconds(), pull.Seconds(), coldT.Seconds(), coldT.Seconds()/sharedT.Seconds(), warmT.Seconds(), coldA.Seconds())
}
