package safefile

import (
	"bytes"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readGuarded runs ReadRegular and fails the test if it does not return
// within a minute (a FIFO read that blocks would otherwise hang the suite).
func readGuarded(t *testing.T, path string, limit int64) ([]byte, error) {
	t.Helper()
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		d, err := ReadRegular(path, limit)
		done <- result{d, err}
	}()
	select {
	case r := <-done:
		return r.data, r.err
	case <-time.After(time.Minute):
		t.Fatalf("ReadRegular(%s) did not return", path)
		return nil, nil
	}
}

func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sparse := filepath.Join(dir, "sparse")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil { // 1 TiB, no blocks
		t.Fatal(err)
	}
	f.Close()
	const limit = 1 << 10
	tests := []struct {
		name, path string
		want       []byte
		errHas     string // "" for success
		errIs      error
	}{
		{name: "regular", path: write("a", []byte("x = 1\n")), want: []byte("x = 1\n")},
		{name: "empty", path: write("e", nil), want: []byte{}},
		{name: "at the limit", path: write("l", bytes.Repeat([]byte("a"), limit)), want: bytes.Repeat([]byte("a"), limit)},
		{name: "one byte over", path: write("o", bytes.Repeat([]byte("a"), limit+1)), errHas: "larger than 1024 bytes"},
		{name: "sparse terabyte", path: sparse, errHas: "larger than 1024 bytes"},
		{name: "symlink to a regular file", path: link("la", "a"), want: []byte("x = 1\n")},
		{name: "FIFO", path: fifo, errHas: "not a regular file (a FIFO); chefd reads only regular files"},
		{name: "symlink to a FIFO", path: link("lf", "fifo"), errHas: "not a regular file (a symbolic link to fifo, a FIFO)"},
		{name: "symlink to /dev/zero", path: link("z", "/dev/zero"), errHas: "not a regular file (a symbolic link to /dev/zero, a character device)"},
		{name: "socket", path: sock, errHas: "not a regular file (a socket)"},
		{name: "directory", path: dir, errIs: syscall.EISDIR},
		{name: "missing", path: filepath.Join(dir, "nope"), errIs: fs.ErrNotExist},
		{name: "dangling symlink", path: link("d", "gone.toml"), errHas: "a symbolic link to gone.toml, which does not exist", errIs: fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := readGuarded(t, tc.path, limit)
			if tc.errHas == "" && tc.errIs == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(data, tc.want) {
					t.Fatalf("read %q, want %q", data, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("read %d bytes, want an error", len(data))
			}
			if !strings.HasPrefix(err.Error(), tc.path+": ") && tc.errHas != "" {
				t.Errorf("error %q does not start with the path", err)
			}
			if tc.errHas != "" && !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q, want it to contain %q", err, tc.errHas)
			}
			if tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Errorf("error %q is not %v", err, tc.errIs)
			}
		})
	}
}

// TestReadOpenFIFO: a FIFO that replaces a file after its stat neither
// blocks the open nor is read.
func TestReadOpenFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "Cargo.toml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := readOpen(fifo, 1<<20)
		done <- err
	}()
	select {
	case err := <-done:
		var nr *NotRegularError
		if !errors.As(err, &nr) || nr.Kind != "a FIFO" {
			t.Fatalf("readOpen on a FIFO: %v, want a NotRegularError", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("readOpen blocked on a FIFO")
	}
}

// TestReadStatIdentity: the identity is the open file's, as recipe's
// cache needs.
func TestReadStatIdentity(t *testing.T) {
	p := filepath.Join(t.TempDir(), "Cargo.lock")
	if err := os.WriteFile(p, []byte("version = 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, st, err := ReadStat(p, LockLimit)
	if err != nil {
		t.Fatal(err)
	}
	var want syscall.Stat_t
	if err := syscall.Stat(p, &want); err != nil {
		t.Fatal(err)
	}
	if string(data) != "version = 4\n" || st.Ino != want.Ino || st.Size != want.Size {
		t.Fatalf("ReadStat: %q, ino %d size %d; want ino %d size %d", data, st.Ino, st.Size, want.Ino, want.Size)
	}
}
