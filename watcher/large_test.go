package watcher

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Large-tree measurements. Creating 50,000 files is slow on some disks
// (~1ms per file here); point TMPDIR at a tmpfs to speed it up:
//
//	TMPDIR=/dev/shm CHEFD_WATCHER_MEM=1 go test -run TestStartMemory -v ./watcher/
//	TMPDIR=/dev/shm go test -run '^$' -bench BenchmarkStartLargeTree -benchmem ./watcher/

// makeLargeTree writes n files (100 B to ~4 KB) in directories of 20, shaped
// like a Rust workspace, plus a target/ directory that must cost nothing.
func makeLargeTree(tb testing.TB, root string, n int) {
	tb.Helper()
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	write := func(rel string, data []byte) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	write("Cargo.toml", []byte("[workspace]\nmembers = [\"crates/*\"]\n"))
	write(".gitignore", []byte("/target\n"))
	for i := 0; i < n; i++ {
		crate, mod := i/1000, (i/20)%50
		size := 100 + (i*7919)%3900
		copy(buf, strconv.Itoa(i)) // distinct contents
		write(fmt.Sprintf("crates/c%03d/src/m%02d/f%05d.rs", crate, mod, i), buf[:size])
	}
	for i := 0; i < 200; i++ {
		write(fmt.Sprintf("target/debug/deps/d%03d/x.o", i), buf[:100])
	}
}

func BenchmarkStartLargeTree(b *testing.B) {
	const n = 50000
	root := b.TempDir()
	began := time.Now()
	makeLargeTree(b, root, n)
	b.Logf("created %d files in %s under %s", n, time.Since(began), root)
	b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			w, err := New(root)
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Start(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if got := w.trackedFiles(); got != n+2 {
				b.Fatalf("tracked %d files, want %d", got, n+2)
			}
			w.Close()
			b.StartTimer()
		}
	})
}

// TestStartMemory reports the memory of a process that watches a large tree
// (default 50,000 files; CHEFD_WATCHER_MEM_FILES overrides). It measures in
// a child process so the numbers are the watcher's, not the test's. It only
// logs: the budget is 50 MB RSS idle.
func TestStartMemory(t *testing.T) {
	if os.Getenv("CHEFD_WATCHER_MEM") == "" {
		t.Skip("set CHEFD_WATCHER_MEM=1 to measure (slow: creates 50,000 files)")
	}
	n := 50000
	if s := os.Getenv("CHEFD_WATCHER_MEM_FILES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	began := time.Now()
	makeLargeTree(t, root, n)
	t.Logf("created %d files in %s", n, time.Since(began))

	cmd := exec.Command(os.Args[0], "-test.run=^TestStartMemoryChild$", "-test.v")
	cmd.Env = append(os.Environ(), "CHEFD_WATCHER_MEM_ROOT="+root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, "MEM ") {
			t.Log(strings.TrimSpace(line[strings.Index(line, "MEM "):]))
		}
	}
}

// TestStartMemoryChild is the child of TestStartMemory.
func TestStartMemoryChild(t *testing.T) {
	root := os.Getenv("CHEFD_WATCHER_MEM_ROOT")
	if root == "" {
		t.Skip("helper process for TestStartMemory")
	}
	t.Logf("MEM before: %s", memLine())
	began := time.Now()
	w, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	t.Logf("MEM after Start (%s, %d files, %d watches): %s", took.Round(time.Millisecond), w.trackedFiles(), w.WatchCount(), memLine())
	runtime.GC()
	t.Logf("MEM after GC: %s", memLine())
	time.Sleep(3 * time.Second) // idle: the runtime returns memory to the OS in the background
	t.Logf("MEM idle 3s: %s", memLine())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func memLine() string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, hwm := "?", "?"
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == "VmRSS:" {
				rss = kb(f[1])
			}
			if len(f) >= 2 && f[0] == "VmHWM:" {
				hwm = kb(f[1])
			}
		}
	}
	return fmt.Sprintf("rss=%s peak_rss=%s heap_inuse=%.1fMB heap_alloc=%.1fMB sys=%.1fMB",
		rss, hwm, float64(ms.HeapInuse)/1e6, float64(ms.HeapAlloc)/1e6, float64(ms.Sys)/1e6)
}

func kb(s string) string {
	n, err := strconv.Atoi(s)
	if err != nil {
		return s
	}
	return fmt.Sprintf("%.1fMB", float64(n)/1024)
}
