package recipe

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadDirComplete lists directories whose entries need many getdents64
// buffers, with names of every length up to the maximum, on the test
// filesystem and on tmpfs: the early stop on greedy filesystems must never
// drop an entry.
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
