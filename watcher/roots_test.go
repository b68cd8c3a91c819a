package watcher

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRootsOutside: a path crate outside the workspace is watched once
// SetOutside names it, its files are named from the workspace root, Sync
// covers it, and it stops being watched when it is no longer named.
func TestRootsOutside(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "ws")
	out := filepath.Join(base, "shared")
	for _, d := range []string{filepath.Join(root, "src"), filepath.Join(out, "src")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "Cargo.toml"), []byte("[package]\n"), 0o644)
	os.WriteFile(filepath.Join(out, "Cargo.toml"), []byte("[package]\n"), 0o644)
	os.WriteFile(filepath.Join(out, ".dockerignore"), []byte("src\n"), 0o644) // not the workspace's: ignored
	r, err := NewRoots(root, WithDebounce(time.Hour), WithGitHold(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan Batch, 16)
	go func() {
		for b := range r.Batches() {
			got <- b
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sync := func() {
		t.Helper()
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}

	r.SetOutside([]string{out})
	os.WriteFile(filepath.Join(out, "src", "lib.rs"), []byte("pub fn f() {}\n"), 0o644)
	os.WriteFile(filepath.Join(root, "src", "main.rs"), []byte("fn main() {}\n"), 0o644)
	sync() // an hour-long quiet period: only Sync emits
	var paths []string
	for len(paths) < 2 {
		select {
		case b := <-got:
			paths = append(paths, b.Paths...)
		case <-time.After(waitBatch):
			t.Fatalf("batches so far: %q", paths)
		}
	}
	want := map[string]bool{"../shared/src/lib.rs": true, "src/main.rs": true}
	for _, p := range paths {
		if !want[p] {
			t.Fatalf("paths %q, want those of %v", paths, want)
		}
	}

	r.SetOutside(nil)
	r.mu.Lock()
	left := len(r.extra)
	r.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d outside watchers left after SetOutside(nil)", left)
	}
	os.WriteFile(filepath.Join(out, "src", "lib.rs"), []byte("pub fn g() {}\n"), 0o644)
	os.WriteFile(filepath.Join(root, "src", "main.rs"), []byte("fn main() { }\n"), 0o644)
	sync()
	for {
		select {
		case b := <-got:
			for _, p := range b.Paths {
				if p != "src/main.rs" {
					t.Fatalf("a batch from a directory no longer named: %v", b.Paths)
				}
			}
			return // the root's change came, the outside one did not
		case <-time.After(waitBatch):
			t.Fatal("the root's change did not come")
		}
	}
}
