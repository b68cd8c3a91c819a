package watcher

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chefd/chefd/inputs"
)

// TestSyncDeliversPendingChanges: with a quiet period of an hour, a save is
// still handed to the reader before Sync returns; the cookie never shows in
// a batch; a Sync with nothing pending returns with no batch.
func TestSyncDeliversPendingChanges(t *testing.T) {
	h := start(t, rustTree(t), WithDebounce(time.Hour), WithMaxWait(2*time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), waitBatch)
	defer cancel()
	sync := func() chan error {
		done := make(chan error, 1)
		go func() { done <- h.w.Sync(ctx) }()
		return done
	}

	h.write("src/f.rs", "pub fn f() { /* saved just before the build request */ }\n")
	done := sync()
	// Sync hands the batch over and waits for it to be received: until this
	// test reads it, Sync cannot return.
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Sync returned (%v) before anyone received the batch", err)
	default:
	}
	b := h.next() // an hour-long quiet period: only Sync can have emitted it
	eq(t, "Paths", b.Paths, []string{"src/f.rs"})
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// nothing pending: returns at once, no batch
	if err := <-sync(); err != nil {
		t.Fatal(err)
	}
	h.write("src/x.rs", "pub fn x() { /* next */ }\n")
	done = sync()
	b = h.next()
	eq(t, "Paths", b.Paths, []string{"src/x.rs"})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, p := range b.Paths {
		if strings.Contains(p, inputs.CookiePrefix) {
			t.Fatalf("a Sync cookie reached a batch: %v", b.Paths)
		}
	}
	// nothing else is pending: a Sync now hands over only a sentinel
	s := h.sentinel()
	done = sync()
	eq(t, "Paths (only the sentinel)", h.next().Paths, []string{s})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSyncHonoursGitHold: changes held while git works are not forced out
// by a Sync.
func TestSyncHonoursGitHold(t *testing.T) {
	root := rustTree(t)
	h := start(t, root, WithDebounce(50*time.Millisecond))
	h.write(".git/index.lock", "")
	h.write("src/f.rs", "pub fn f() { /* during a checkout */ }\n")
	ctx, cancel := context.WithTimeout(context.Background(), waitBatch)
	defer cancel()
	if err := h.w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	h.none(300 * time.Millisecond)
	h.remove(".git/index.lock")
	b := h.next()
	eq(t, "Paths", b.Paths, []string{"src/f.rs"})
}

// TestHoldShowsAtOnce: Hold names the file that holds batches as soon as
// it exists, before the watcher has read its event, and keeps the time the
// hold began.
func TestHoldShowsAtOnce(t *testing.T) {
	root := rustTree(t)
	h := start(t, root)
	if err := os.Mkdir(filepath.Join(root, ".git"), 0o755); err != nil { // git init while watched
		t.Fatal(err)
	}
	if r, _ := h.w.Hold(); r != "" {
		t.Fatalf("held by %q with no git operation", r)
	}
	h.write(".git/MERGE_HEAD", "abc\n")
	r, since := h.w.Hold()
	if r != "MERGE_HEAD" || since.IsZero() {
		t.Fatalf("Hold() = %q, %v right after MERGE_HEAD appeared", r, since)
	}
	h.remove(".git/MERGE_HEAD")
	if r, _ := h.w.Hold(); r != "" {
		t.Fatalf("still held by %q after MERGE_HEAD went", r)
	}
}

// TestHoldFindsTheRepository: git operations are seen in the repository a
// workspace lives in when it is a subdirectory of it (a monorepo), and in a
// worktree's own git directory (.git is a file there).
func TestHoldFindsTheRepository(t *testing.T) {
	root := rustTree(t)
	parentGit := filepath.Join(filepath.Dir(root), ".git")
	if err := os.Mkdir(parentGit, 0o755); err != nil {
		t.Fatal(err)
	}
	h := start(t, root)
	if err := os.WriteFile(filepath.Join(parentGit, "MERGE_HEAD"), []byte("abc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, _ := h.w.Hold(); r != "MERGE_HEAD" {
		t.Fatalf("a merge in the repository above the workspace: Hold() = %q", r)
	}

	wt := rustTree(t)
	gitDir := filepath.Join(t.TempDir(), "worktrees", "wt")
	if err := os.MkdirAll(gitDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wt, ".git"), []byte("gitdir: "+gitDir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h2 := start(t, wt)
	if err := os.WriteFile(filepath.Join(gitDir, "index.lock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r, _ := h2.w.Hold(); r != "index.lock" {
		t.Fatalf("a lock in the worktree's git directory: Hold() = %q", r)
	}
}
