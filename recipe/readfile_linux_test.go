package recipe

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadDirComplete lists directories whose entries need many getdents64
// buffers, with names of every length up to the maximum, on the test
// filesystem and on tmpfs: no entry may be dropped.
func TestReadDirComplete(t *testing.T) {
	bases := []string{t.TempDir()}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "chefd-readdir-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			bases = append(bases, d)
		}
	}
	for _, base := range bases {
		for _, n := range []int{0, 1, 37, 300, 2500} {
			dir := filepath.Join(base, fmt.Sprint(n))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{}
			for i := 0; i < n; i++ {
				name := fmt.Sprintf("%d-%s", i, strings.Repeat("x", i%250))
				want[name] = true
				if i%7 == 0 {
					err := os.Mkdir(filepath.Join(dir, name), 0o755)
					if err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var l lister
			ents, _, err := l.readDirKey(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != n {
				t.Fatalf("%s: listed %d entries, want %d", dir, len(ents), n)
			}
			for _, e := range ents {
				if !want[e.name] {
					t.Fatalf("%s: unexpected entry %q", dir, e.name)
				}
				var idx int
				fmt.Sscanf(e.name, "%d-", &idx)
				if e.isDir != (idx%7 == 0) {
					t.Fatalf("%s: %q isDir=%v", dir, e.name, e.isDir)
				}
				delete(want, e.name)
			}
		}
	}
}

// TestReadDirUnderSignals lists a directory that needs several getdents64
// calls while the process is flooded with signals: the kernel ends a call
// early when a signal is pending, and that short result must not be taken
// for the end of the directory.
func TestReadDirUnderSignals(t *testing.T) {
	dir := t.TempDir()
	const n = 3000
	for i := 0; i < n; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("entry-%04d-%s", i, strings.Repeat("y", 40))), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				syscall.Kill(os.Getpid(), syscall.SIGURG) // Go's own preemption signal: harmless
			}
		}
	}()
	defer func() { close(stop); <-done }()
	var l lister
	for i := 0; i < 100; i++ {
		ents, _, err := l.readDirKey(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != n {
			t.Fatalf("listing %d: %d entries, want %d", i, len(ents), n)
		}
	}
}
