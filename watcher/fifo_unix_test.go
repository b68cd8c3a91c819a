//go:build unix

package watcher

import (
	"path/filepath"
	"syscall"
	"testing"
)

func TestSpecialFilesDoNotBlock(t *testing.T) {
	root := rustTree(t)
	if err := syscall.Mkfifo(filepath.Join(root, "src", "fifo"), 0o644); err != nil {
		t.Skip(err)
	}
	h := start(t, root) // must not hang opening the FIFO
	if err := syscall.Mkfifo(h.path("src/fifo2"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.write("src/f.rs", "after fifo")
	eq(t, "Paths", h.next().Paths, []string{"src/f.rs"})
}
