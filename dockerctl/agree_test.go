package dockerctl

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chefd/chefd/inputs"
	"github.com/chefd/chefd/watcher"
)

// TestWatchedIsShipped walks a tree of tricky cases and checks that the
// files the watcher reports when every file changes are exactly the files
// the build context ships (both decide through package inputs), and that
// the tricky cases land on the right side.
func TestWatchedIsShipped(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"Cargo.toml":                "[workspace]\nmembers = [\"crates/*\"]\n",
		".gitignore":                "*.gen.rs\n/notes.txt\n",
		".dockerignore":             "docs\n!docs/keep.md\n**/*.log\n!keep.log\nassets/big\n",
		"chefd.toml":                "image = \"x\"\n",
		"notes.txt":                 "gitignored at the root",
		"src/main.rs":               "fn main() {}\n",
		"src/x.gen.rs":              "// generated, gitignored, included by main.rs",
		"src/.main.rs.swp":          "vim swap",
		"src/main.rs~":              "backup",
		"src/4913":                  "",
		"crates/a/Cargo.toml":       "[package]\nname = \"a\"\n",
		"crates/a/.gitignore":       "/local.rs\ngen/\n",
		"crates/a/local.rs":         "nested gitignore",
		"crates/a/gen/out.rs":       "nested gitignore, a directory",
		"crates/a/src/lib.rs":       "",
		"crates/a/target/debug/x":   "a member's build directory",
		"tools/target/t.txt":        "a directory that happens to be called target",
		"cache/target/CACHEDIR.TAG": "Signature: 8a477f597d28d172789f06886806bc55",
		"cache/target/y":            "a tagged build directory",
		"docs/guide.md":             "dockerignored",
		"docs/keep.md":              "re-included",
		"debug.log":                 "dockerignored",
		"crates/a/deep/x.log":       "dockerignored at depth",
		"keep.log":                  "re-included",
		"assets/big/blob":           "chefd.toml ignore",
		"assets/small":              "",
		"target/release/app":        "the root's build directory",
		".chefd/state":              "",
		".idea/workspace.xml":       "",
		".hg/store":                 "",
		".git/description":          "not a repository, a directory called .git",
	}
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{"src/link.rs": "main.rs", "srclink": "src", "dangling": "nowhere"}
	for rel, to := range links {
		if err := os.Symlink(to, filepath.Join(root, rel)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "src/pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	ignore := []string{"assets/big"}

	w, err := watcher.New(root, watcher.WithIgnore(ignore...), watcher.WithDebounce(20*time.Millisecond), watcher.WithGitHold(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	seen := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range w.Batches() {
			for _, p := range b.Paths {
				seen[p] = true
			}
		}
	}()

	// Change every file and link, in and out of the context.
	for rel := range files {
		f, err := os.OpenFile(filepath.Join(root, filepath.FromSlash(rel)), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(" changed")
		f.Close()
	}
	for rel := range links {
		p := filepath.Join(root, rel)
		os.Remove(p)
		if err := os.Symlink("elsewhere", p); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	<-done

	m, err := inputs.New(root, ignore)
	if err != nil {
		t.Fatal(err)
	}
	list, err := collect(root, root, m)
	if err != nil {
		t.Fatal(err)
	}
	var shipped, watched []string
	for _, f := range list {
		shipped = append(shipped, f.rel)
	}
	for p := range seen {
		watched = append(watched, p)
	}
	sort.Strings(shipped)
	sort.Strings(watched)
	if !slices.Equal(shipped, watched) {
		t.Errorf("the watcher and the context disagree\nshipped: %q\nwatched: %q", shipped, watched)
	}
	in := []string{"notes.txt", "src/x.gen.rs", "crates/a/local.rs", "crates/a/gen/out.rs", "tools/target/t.txt",
		"docs/keep.md", "keep.log", "assets/small", "src/link.rs", "srclink", "dangling", ".gitignore", ".dockerignore"}
	out := []string{"src/.main.rs.swp", "src/main.rs~", "src/4913", "crates/a/target/debug/x", "cache/target/y",
		"docs/guide.md", "debug.log", "crates/a/deep/x.log", "assets/big/blob", "target/release/app", ".chefd/state",
		".idea/workspace.xml", ".hg/store", ".git/description", "src/pipe"}
	for _, p := range in {
		if !slices.Contains(shipped, p) {
			t.Errorf("%s is a build input, not shipped", p)
		}
	}
	for _, p := range out {
		if slices.Contains(shipped, p) {
			t.Errorf("%s is not a build input, but shipped", p)
		}
	}
	if t.Failed() {
		t.Logf("shipped: %s", strings.Join(shipped, " "))
	}
}

func TestStepTitle(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"[build 3/3] RUN --mount=type=cache " + codeMarker + " " + cacheMarker + "x sh /run/chefd/code.sh", "[build 3/3] RUN cargo build (workspace code)"},
		{"[cook 2/2] RUN " + cookMarker + " sh -ec 'cargo build --release'", "[cook 2/2] RUN cargo build (dependencies)"},
		{"[build 2/3] COPY src/ /src/", "[build 2/3] COPY src/ /src/"},
		{strings.Repeat("x", 120), strings.Repeat("x", 97) + "..."},
	} {
		if got := StepTitle(tt.in); got != tt.want {
			t.Errorf("StepTitle(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
