package dockerctl

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/chefd/chefd/recipe"
)

// sparse makes a sparse file of size bytes (no data written).
func sparse(t *testing.T, p string, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// buildWarnings runs a code build on a fake engine (which has the cooked,
// builder and runtime images, and builds nothing) and returns the output lines of
// the context step.
func buildWarnings(t *testing.T, root string, cfg Settings) []string {
	t.Helper()
	r, err := recipe.Compute(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeEngine{}
	f.cooked(root, cfg.Image, r.Hash, 1)
	f.images = append(f.images, image.Summary{ID: "sha256:runtime", RepoTags: []string{cfg.RuntimeImage}},
		image.Summary{ID: "sha256:builder", RepoTags: []string{cfg.BuilderImage}})
	b := NewWorkspaceBuilder(&Engine{api: f, host: "fake", log: zap.NewNop()}, root, cfg, WithStateDir(t.TempDir()))
	var lines []string
	b.Build(context.Background(), r, ModeExact, func(ev Event) {
		if ev.Kind == EventLog && ev.Step == "context" {
			lines = append(lines, ev.Text)
		}
	})
	return lines
}

// TestLargeContextWarning: a code build whose context holds a 200 MiB
// file says so, names the file and the .dockerignore line that leaves it
// out; with those lines in .dockerignore the files are gone and so is the
// warning.
func TestLargeContextWarning(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{
		"Cargo.toml":  "[package]\nname = \"app\"\nversion = \"0.1.0\"\n",
		"src/main.rs": "fn main() {}\n",
	})
	sparse(t, filepath.Join(root, "data", "dump.bin"), 200<<20)
	sparse(t, filepath.Join(root, "assets", "video[1].mp4"), 60<<20)
	sparse(t, filepath.Join(root, "assets", "small.png"), 1<<20)
	cfg := Settings{Image: "app", Tag: "dev", BuilderImage: "builder", RuntimeImage: "rt"}

	lines := buildWarnings(t, root, cfg)
	text := strings.Join(lines, "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "warning: the build context is 261.0 MiB") {
		t.Fatalf("no warning about the context's size:\n%s", text)
	}
	var ignore []string
	for _, want := range []string{"200.0 MiB  data/dump.bin", "60.0 MiB  assets/video[1].mp4", "add to .dockerignore"} {
		if !strings.Contains(text, want) {
			t.Errorf("the warning lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "small.png") {
		t.Errorf("the warning names a small file:\n%s", text)
	}
	for _, l := range lines {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "/") {
			ignore = append(ignore, t)
		}
	}
	if strings.Join(ignore, " ") != `/data/dump.bin /assets/video\[1\].mp4` {
		t.Fatalf(".dockerignore lines %q", ignore)
	}
	write(t, root, map[string]string{".dockerignore": strings.Join(ignore, "\n") + "\n"})
	if lines := buildWarnings(t, root, cfg); len(lines) != 0 {
		t.Errorf("still a warning with the suggested .dockerignore:\n%s", strings.Join(lines, "\n"))
	}
}

func TestContextWarningThresholds(t *testing.T) {
	many := make([]ctxFile, 0, 300)
	for i := 0; i < 300; i++ {
		many = append(many, ctxFile{rel: fmt.Sprintf("assets/icons/i%03d.png", i), size: 1 << 20})
	}
	many = append(many, ctxFile{rel: "src/main.rs", size: 100}, ctxFile{rel: "link", link: "big", size: 1 << 40})
	for _, tt := range []struct {
		name  string
		files []ctxFile
		cfg   Settings
		want  []string // substrings of the warning; nil: no warning
	}{
		{"small", []ctxFile{{rel: "src/main.rs", size: 100}}, Settings{}, nil},
		{"many small files: the largest directory", many, Settings{},
			[]string{"300.0 MiB in 302 files", "300.0 MiB  assets/icons/ (300 files)", "/assets/icons"}},
		{"a lowered file threshold", []ctxFile{{rel: "x.bin", size: 2 << 20}}, Settings{LargeFile: 1 << 20}, []string{"2.0 MiB  x.bin", "/x.bin"}},
		{"warnings off", many, Settings{LargeContext: -1, LargeFile: -1}, nil},
	} {
		w := contextWarning(tt.files, tt.cfg, "", "")
		if tt.want == nil {
			if w != nil {
				t.Errorf("%s: a warning: %q", tt.name, w)
			}
			continue
		}
		text := strings.Join(w, "\n")
		for _, s := range tt.want {
			if !strings.Contains(text, s) {
				t.Errorf("%s: the warning lacks %q:\n%s", tt.name, s, text)
			}
		}
	}
}

// ourRecords sums the build-cache records of the builds of the workspace
// with this ID since the test started: the code stage's (they name the
// workspace), and the context records (as large as the big file; another
// workspace's records, and cooked layers, are left out).
func ourRecords(t *testing.T, e *Engine, wsID string, since time.Time, big int64) (n int, size int64) {
	// a record of no workspace holds the big file when its size is the
	// file's and a little more (a tar's headers); another test's cook,
	// on the same engine meanwhile, makes records of other sizes
	t.Helper()
	cache, err := e.BuildCache(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cache {
		if r == nil || r.CreatedAt.Before(since) || r.Type == "exec.cachemount" {
			continue
		}
		mine := strings.Contains(r.Description, "chefd-target-"+wsID+"-")
		other := strings.Contains(r.Description, "chefd-target-") || strings.Contains(r.Description, cookMarker)
		if mine || (!other && r.Size >= big && r.Size <= big+big/16) {
			n++
			size += r.Size
		}
	}
	return n, size
}

// TestRepeatedBuildsDoNotPileUpCache builds three times a workspace that
// holds a changed 64 MiB file: the build warns about it, and the build
// cache does not keep a copy of it per build (it kept four).
func TestRepeatedBuildsDoNotPileUpCache(t *testing.T) {
	e := engine(t)
	needBuilder(t, e)
	root := t.TempDir()
	write(t, root, map[string]string{
		"Cargo.toml":  "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
		"src/main.rs": "fn main() { println!(\"hi\"); }\n",
	})
	r, err := recipe.Compute(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	const big = 64 << 20
	cfg := Settings{Image: "chefd-test-bigctx", Tag: "t", BuilderImage: testBuilder, RuntimeImage: testBuilder, LargeFile: 32 << 20}
	b := NewWorkspaceBuilder(e, root, cfg, WithStateDir(t.TempDir()), WithBuilderLogger(zaptest.NewLogger(t)))
	since := time.Now().Add(-time.Second)
	t.Cleanup(func() { removeWorkspaceRecords(t, e, WorkspaceID(root)) })
	data := make([]byte, big)
	var first int64
	over := 0 // builds in a row over the first's size
	for i := 0; i < 3; i++ {
		rand.Read(data)
		if err := os.WriteFile(filepath.Join(root, "big.bin"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := b.Build(context.Background(), r, ModeExact, nil)
		if err != nil {
			t.Fatalf("build %d: %v", i+1, err)
		}
		if len(res.Warnings) == 0 || !strings.Contains(strings.Join(res.Warnings, "\n"), "/big.bin") {
			t.Errorf("build %d: no warning naming big.bin: %q", i+1, res.Warnings)
		}
		// a record the engine still held goes in the background
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err = b.WaitCleanup(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		n, size := ourRecords(t, e, WorkspaceID(root), since, big)
		t.Logf("after build %d: %d records, %.1f MiB; phases %v", i+1, n, float64(size)/(1<<20), res.Phases)
		// A record the engine still held in use through the cleanup and its
		// retries (a loaded engine: CI) goes with the next build's cleanup:
		// one build over is allowed, two in a row pile up.
		switch {
		case i == 0:
			first = size
		case size <= first+big/2:
			over = 0
		case over == 0:
			over++
			t.Logf("after build %d: %.1f MiB, a leftover the next build's cleanup must take", i+1, float64(size)/(1<<20))
		default:
			t.Errorf("after build %d the build cache holds %.1f MiB of this workspace's builds, after the first %.1f MiB: it piles up",
				i+1, float64(size)/(1<<20), float64(first)/(1<<20))
		}
	}
	// Without the big file the context is small: the leftovers go in the
	// background, the big snapshots of the builds before with them.
	if err := os.Remove(filepath.Join(root, "big.bin")); err != nil {
		t.Fatal(err)
	}
	// A record the engine still holds in use when the cleanup runs (a
	// loaded engine, CI) stays until a later build's cleanup: at most
	// three more builds may pass before the big snapshots are gone (a CI
	// run of 2026-12-01 saw the engine hold two for two builds, 15 s).
	for i := 1; ; i++ {
		write(t, root, map[string]string{"src/main.rs": fmt.Sprintf("fn main() { println!(\"hi %d\"); }\n", i)})
		if _, err := b.Build(context.Background(), r, ModeExact, nil); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := b.WaitCleanup(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		n, size := ourRecords(t, e, WorkspaceID(root), since, big)
		if size < big/2 {
			break
		}
		if i == 4 {
			t.Errorf("after %d builds without the big file %d records, %.1f MiB, are left", i, n, float64(size)/(1<<20))
			cache, _ := e.BuildCache(context.Background())
			for _, r := range cache {
				if r != nil && r.Size >= big/2 && !r.CreatedAt.Before(since) {
					t.Logf("left: %s %q created %s in use %v, %d bytes", r.ID, r.Description, r.CreatedAt.Format(time.StampMilli), r.InUse, r.Size)
				}
			}
			break
		}
		t.Logf("after a build without the big file %d records, %.1f MiB, are left; one more build", n, float64(size)/(1<<20))
	}
}

// removeWorkspaceRecords removes, by ID, the build-cache records of the
// code builds of the workspace with this ID (the stage, its sources, the
// target cache).
func removeWorkspaceRecords(t *testing.T, e *Engine, wsID string) {
	ctx := context.Background()
	cache, err := e.BuildCache(ctx)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	var ids []string
	for _, r := range cache {
		if r != nil && !r.InUse && strings.Contains(r.Description, "chefd-target-"+wsID+"-") {
			ids = append(ids, r.ID)
			if p := parentOf(r); p != "" && r.Type != "exec.cachemount" {
				ids = append(ids, p)
			}
		}
	}
	for _, id := range ids {
		if _, err := e.api.BuildCachePrune(ctx, build.CachePruneOptions{Filters: filters.NewArgs(filters.Arg("id", id))}); err != nil {
			t.Logf("cleanup: %v", err)
		}
	}
}
