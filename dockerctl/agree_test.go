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

	"github.com/chefd/chefd/recipe"
	"github.com/chefd/chefd/watcher"
)

// TestWatchedIsShipped walks a tree of tricky cases and checks that the
// files the watcher reports when every file changes are exactly the files
// the build context ships (both decide through package inputs), and that
// the tricky cases land on the right side.
func TestWatchedIsShipped(t *testing.T) {
	ctxRoot := t.TempDir() // the context root: the workspace and a path crate beside it
	root := filepath.Join(ctxRoot, "ws")
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
		"crates/a/Cargo.toml":       "[package]\nname = \"a\"\nversion = \"0.1.0\"\n\n[dependencies]\nshared = { path = \"../../../shared\" }\n",
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
		// a path crate outside the workspace: the built-in rules only
		"../shared/Cargo.toml":      "[package]\nname = \"shared\"\nversion = \"0.1.0\"\n",
		"../shared/src/lib.rs":      "",
		"../shared/.dockerignore":   "src\n", // not the workspace's: it does not apply
		"../shared/debug.log":       "shipped: the workspace's .dockerignore does not reach here",
		"../shared/src/.lib.rs.swp": "",
		"../shared/target/debug/x":  "its build directory",
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
	r, err := recipe.Compute(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	if r.ContextRoot != ctxRoot || !slices.Equal(r.OutsideDirs(), []string{"shared"}) {
		t.Fatalf("context root %s, outside %q: the tree is not what this test means", r.ContextRoot, r.OutsideDirs())
	}

	w, err := watcher.NewRoots(root, watcher.WithIgnore(ignore...), watcher.WithDebounce(20*time.Millisecond), watcher.WithGitHold(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetOutside([]string{filepath.Join(ctxRoot, "shared")})
	seen := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range w.Batches() {
			for _, p := range b.Paths {
				seen[filepath.Join(root, filepath.FromSlash(p))] = true
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

	b := &WorkspaceBuilder{root: root, cfg: Settings{Ignore: ignore}}
	list, err := b.contextFiles(r)
	if err != nil {
		t.Fatal(err)
	}
	var shipped, watched []string
	for _, f := range list {
		rel, err := filepath.Rel(root, filepath.Join(ctxRoot, filepath.FromSlash(f.rel)))
		if err != nil {
			t.Fatal(err)
		}
		shipped = append(shipped, filepath.ToSlash(rel))
	}
	for p := range seen {
		rel, err := filepath.Rel(root, p)
		if err != nil {
			t.Fatal(err)
		}
		watched = append(watched, filepath.ToSlash(rel))
	}
	sort.Strings(shipped)
	sort.Strings(watched)
	if !slices.Equal(shipped, watched) {
		t.Errorf("the watcher and the context disagree\nshipped: %q\nwatched: %q", shipped, watched)
	}
	in := []string{"notes.txt", "src/x.gen.rs", "crates/a/local.rs", "crates/a/gen/out.rs", "tools/target/t.txt",
		"docs/keep.md", "keep.log", "assets/small", "src/link.rs", "srclink", "dangling", ".gitignore", ".dockerignore",
		"../shared/src/lib.rs", "../shared/debug.log", "../shared/.dockerignore"}
	out := []string{"src/.main.rs.swp", "src/main.rs~", "src/4913", "crates/a/target/debug/x", "cache/target/y",
		"docs/guide.md", "debug.log", "crates/a/deep/x.log", "assets/big/blob", "target/release/app", ".chefd/state",
		".idea/workspace.xml", ".hg/store", ".git/description", "src/pipe", "../shared/src/.lib.rs.swp", "../shared/target/debug/x"}
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
