package watcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestGitInitAtRuntime(t *testing.T) {
	h := start(t, rustTree(t), WithMaxWait(300*time.Millisecond))
	before := h.w.WatchCount()
	if err := os.Mkdir(h.path(".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.write(".git/HEAD", "ref: refs/heads/main\n")
	deadline := time.Now().Add(waitBatch)
	for h.w.WatchCount() != before+1 {
		if time.Now().After(deadline) {
			t.Fatalf("WatchCount = %d, want %d (.git watched)", h.w.WatchCount(), before+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.write(".git/index.lock", "")
	h.write("src/f.rs", "during checkout")
	h.none(600 * time.Millisecond) // past the max wait
	h.remove(".git/index.lock")
	eq(t, "Paths", h.next().Paths, []string{"src/f.rs"})
}

func TestGitWorktreeFile(t *testing.T) {
	gitdir := filepath.Join(t.TempDir(), "main.git", "worktrees", "wt")
	if err := os.MkdirAll(gitdir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := rustTree(t)
	if err := os.WriteFile(filepath.Join(root, ".git"), []byte("gitdir: "+gitdir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := start(t, root, WithMaxWait(300*time.Millisecond))
	if err := os.WriteFile(filepath.Join(gitdir, "index.lock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.write("src/f.rs", "in a worktree")
	h.none(600 * time.Millisecond) // past the max wait
	if err := os.Remove(filepath.Join(gitdir, "index.lock")); err != nil {
		t.Fatal(err)
	}
	eq(t, "Paths", h.next().Paths, []string{"src/f.rs"})
}

func TestWithGitHoldDisabled(t *testing.T) {
	root := rustTree(t)
	if err := os.MkdirAll(filepath.Join(root, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".git", "index.lock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := start(t, root, WithGitHold(false))
	h.write("src/f.rs", "not held")
	eq(t, "Paths", h.next().Paths, []string{"src/f.rs"})
}

func TestDockerignoreReread(t *testing.T) {
	h := start(t, mkTree(t, map[string]string{
		"Cargo.toml":     "",
		"src/main.rs":    "",
		"docs/guide.md":  "",
		"docs/img/a.png": "",
	}))
	before := h.w.WatchCount() // root, src, docs, docs/img
	h.write(".dockerignore", "docs\n")
	eq(t, "Paths", h.next().Paths, []string{".dockerignore"})
	if got := h.w.WatchCount(); got != before-2 {
		t.Fatalf("WatchCount = %d, want %d", got, before-2)
	}
	h.write("docs/guide.md", "ignored now")
	s := h.sentinel()
	eq(t, "Paths", h.next().Paths, []string{s})

	// A re-inclusion keeps the directory walked.
	h.write(".dockerignore", "docs\n!docs/guide.md\n")
	eq(t, "Paths", h.next().Paths, []string{".dockerignore"})
	h.write("docs/guide.md", "included again")
	h.write("docs/other.md", "still ignored")
	eq(t, "Paths", h.next().Paths, []string{"docs/guide.md"})
}

// TestGitignoredFilesSeen: .gitignore does not decide what is watched (a
// git-ignored Cargo.lock or generated file is still shipped).
func TestGitignoredFilesSeen(t *testing.T) {
	h := start(t, mkTree(t, map[string]string{
		".gitignore": "Cargo.lock\n*.toml\n",
		"Cargo.toml": "[package]\n",
		"Cargo.lock": "v1",
		"other.toml": "",
		"src/lib.rs": "",
	}))
	h.write("Cargo.lock", "v2")
	h.write("other.toml", "shipped")
	b := h.next()
	eq(t, "Paths", b.Paths, []string{"Cargo.lock", "other.toml"})
	if b.Kind != KindRecipe {
		t.Fatalf("kind %v, want recipe", b.Kind)
	}
}

func TestBigFilesComparedByStat(t *testing.T) {
	h := start(t, rustTree(t), withHashLimit(8))
	h.write("src/f.rs", "a different, longer content")
	eq(t, "Paths", h.next().Paths, []string{"src/f.rs"})
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(h.path("src/f.rs"), later, later); err != nil {
		t.Fatal(err)
	}
	// Not hashed: a new mtime counts as a change.
	eq(t, "Paths", h.next().Paths, []string{"src/f.rs"})
}

func TestRemoveDeepTree(t *testing.T) {
	files := map[string]string{"Cargo.toml": ""}
	var want []string
	for i := 0; i < 40; i++ {
		rel := fmt.Sprintf("gen/d%d/e%d/f.rs", i%8, i)
		files[rel] = rel
		want = append(want, rel)
	}
	// An hour-long quiet period and a Sync: the batch holds every removal
	// RemoveAll made, however slowly a loaded machine makes them (with a
	// 50 ms quiet period a CI run once split it into two batches).
	h := start(t, mkTree(t, files), WithDebounce(time.Hour), WithMaxWait(2*time.Hour))
	before := h.w.WatchCount()
	h.remove("gen")
	ctx, cancel := context.WithTimeout(context.Background(), waitBatch)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.w.Sync(ctx) }()
	b := h.next()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(b.Removed) != len(want) || len(b.Paths) != len(want) {
		t.Fatalf("removed %d paths (%d in batch), want %d", len(b.Removed), len(b.Paths), len(want))
	}
	if got := h.w.WatchCount(); got != before-1-8-40 {
		t.Fatalf("WatchCount = %d, want %d", got, before-49)
	}
}
