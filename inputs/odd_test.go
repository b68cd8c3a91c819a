//go:build unix

package inputs

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDockerignoreFIFO: a FIFO as .dockerignore is an error naming it, at
// once (opening it for reading would wait for a writer forever).
func TestDockerignoreFIFO(t *testing.T) {
	root := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(root, ".dockerignore"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := New(root, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), ".dockerignore") || !strings.Contains(err.Error(), "FIFO") {
			t.Fatalf("New with a FIFO .dockerignore: %v; want an error naming it as a FIFO", err)
		}
	case <-time.After(10 * time.Second): // a failure guard, not what makes the test pass
		t.Fatal("New blocked on a FIFO .dockerignore")
	}
}
