package recipe

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chefd/chefd/internal/testws"
)

// computeGuarded runs Compute and fails the test when it has not returned
// within half a minute (a read that blocks on a FIFO would hang the suite).
func computeGuarded(t *testing.T, dir string, opts ...Option) (*Recipe, error) {
	t.Helper()
	type result struct {
		r   *Recipe
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := Compute(context.Background(), dir, opts...)
		done <- result{r, err}
	}()
	select {
	case res := <-done:
		return res.r, res.err
	case <-time.After(30 * time.Second):
		t.Fatalf("Compute(%s) did not return within 30s (blocked reading a file?)", dir)
		return nil, nil
	}
}

// hostileWorkspace writes a two-member workspace (crates/app with a
// binary, crates/lib with a library and a src/bin tool) into dir/ws and
// returns ws.
func hostileWorkspace(t *testing.T, dir string) string {
	t.Helper()
	return testws.Small(t, dir, map[string]string{"crates/lib/src/bin/tool.rs": "fn main() {}\n"})
}

func mkfifo(t *testing.T, p string) {
	t.Helper()
	os.Remove(p)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// TestHostileFiles: only regular files are read, never more than a limit,
// and a file that cannot be read is an error naming it (a FIFO must not
// hang the recipe, a link to /dev/zero must not eat the memory); a
// dangling link is an error, not an absent file.
func TestHostileFiles(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, ws string)
		file  string // *Error.File
		msg   string // part of *Error.Msg
	}{
		{
			name:  "FIFO root Cargo.toml",
			setup: func(t *testing.T, ws string) { mkfifo(t, filepath.Join(ws, "Cargo.toml")) },
			file:  "Cargo.toml", msg: "not a regular file (a FIFO); chefd reads only regular files",
		},
		{
			name:  "FIFO member manifest",
			setup: func(t *testing.T, ws string) { mkfifo(t, filepath.Join(ws, "crates/lib/Cargo.toml")) },
			file:  "crates/lib/Cargo.toml", msg: "not a regular file (a FIFO)",
		},
		{
			name:  "FIFO Cargo.lock",
			setup: func(t *testing.T, ws string) { mkfifo(t, filepath.Join(ws, "Cargo.lock")) },
			file:  "Cargo.lock", msg: "not a regular file (a FIFO)",
		},
		{
			name: "FIFO cargo config",
			setup: func(t *testing.T, ws string) {
				os.Mkdir(filepath.Join(ws, ".cargo"), 0o755)
				mkfifo(t, filepath.Join(ws, ".cargo/config.toml"))
			},
			file: ".cargo/config.toml", msg: "not a regular file (a FIFO)",
		},
		{
			name:  "FIFO toolchain file",
			setup: func(t *testing.T, ws string) { mkfifo(t, filepath.Join(ws, "rust-toolchain.toml")) },
			file:  "rust-toolchain.toml", msg: "not a regular file (a FIFO)",
		},
		{
			name:  "Cargo.lock linked to /dev/zero",
			setup: func(t *testing.T, ws string) { symlink(t, "/dev/zero", filepath.Join(ws, "Cargo.lock")) },
			file:  "Cargo.lock", msg: "not a regular file (a symbolic link to /dev/zero, a character device)",
		},
		{
			name:  "member manifest linked to /dev/zero",
			setup: func(t *testing.T, ws string) { symlink(t, "/dev/zero", filepath.Join(ws, "crates/app/Cargo.toml")) },
			file:  "crates/app/Cargo.toml", msg: "a character device",
		},
		{
			name: "Cargo.lock over the limit",
			setup: func(t *testing.T, ws string) {
				if err := os.Truncate(filepath.Join(ws, "Cargo.lock"), 64<<20+1); err != nil { // sparse
					t.Fatal(err)
				}
			},
			file: "Cargo.lock", msg: "larger than 64 MiB",
		},
		{
			name: "member manifest over the limit",
			setup: func(t *testing.T, ws string) {
				if err := os.Truncate(filepath.Join(ws, "crates/lib/Cargo.toml"), 1<<40); err != nil { // 1 TiB, sparse
					t.Fatal(err)
				}
			},
			file: "crates/lib/Cargo.toml", msg: "larger than 16 MiB",
		},
		{
			name:  "dangling Cargo.lock",
			setup: func(t *testing.T, ws string) { symlink(t, "../gone/Cargo.lock", filepath.Join(ws, "Cargo.lock")) },
			file:  "Cargo.lock", msg: "a symbolic link to ../gone/Cargo.lock, which does not exist",
		},
		{
			name:  "dangling member manifest",
			setup: func(t *testing.T, ws string) { symlink(t, "gone.toml", filepath.Join(ws, "crates/lib/Cargo.toml")) },
			file:  "crates/lib/Cargo.toml", msg: "a symbolic link to gone.toml, which does not exist",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := hostileWorkspace(t, t.TempDir())
			tc.setup(t, ws)
			_, err := computeGuarded(t, ws)
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("want a *recipe.Error, got %v", err)
			}
			if re.File != tc.file || !strings.Contains(re.Msg, tc.msg) || re.Fix == "" {
				t.Fatalf("error %q (file %q), want file %q and a message with %q, and a fix", err, re.File, tc.file, tc.msg)
			}
		})
	}
}

// TestHostileParent: a FIFO Cargo.toml in a directory above a package
// (FindRoot looks there for an enclosing workspace) claims nothing and
// does not block.
func TestHostileParent(t *testing.T) {
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkg")
	if err := os.MkdirAll(filepath.Join(pkg, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(pkg, "Cargo.toml"), []byte("[package]\nname = \"pkg\"\nversion = \"0.1.0\"\n"), 0o644)
	os.WriteFile(filepath.Join(pkg, "src/main.rs"), []byte("fn main() {}\n"), 0o644)
	mkfifo(t, filepath.Join(dir, "Cargo.toml"))
	r, err := computeGuarded(t, pkg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Root != pkg {
		t.Fatalf("root %s, want %s", r.Root, pkg)
	}
}

// TestMissingTargets: a package without any target is cargo's "no
// targets specified" error, with the file to create; a package selected
// by `bins` that has no binary says so at the chefd.toml line, with the
// file to create.
func TestMissingTargets(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(t *testing.T, ws string)
		opts     []Option
		file     string
		line     int
		msg, fix string
	}{
		{
			name:  "no src/main.rs, nothing else",
			setup: func(t *testing.T, ws string) { os.Remove(filepath.Join(ws, "crates/app/src/main.rs")) },
			opts:  []Option{WithIntent(Intent{Bins: []string{"app"}}), WithBinsFrom(Source{File: "/w/chefd.toml", Line: 3})},
			file:  "crates/app/Cargo.toml", line: 1,
			msg: "no targets specified in the manifest", fix: "create crates/app/src/main.rs",
		},
		{
			name: "a library, no src/main.rs, selected in chefd.toml",
			setup: func(t *testing.T, ws string) {
				os.Rename(filepath.Join(ws, "crates/app/src/main.rs"), filepath.Join(ws, "crates/app/src/lib.rs"))
			},
			opts: []Option{WithIntent(Intent{Bins: []string{"app"}}), WithBinsFrom(Source{File: "/w/chefd.toml", Line: 3})},
			file: "/w/chefd.toml", line: 3,
			msg: `bins: package "app" has no binary target`, fix: "create crates/app/src/main.rs",
		},
		{
			name: "an unknown binary in chefd.toml",
			opts: []Option{WithIntent(Intent{Bins: []string{"nope"}}), WithBinsFrom(Source{File: "/w/chefd.toml", Line: 2})},
			file: "/w/chefd.toml", line: 2,
			msg: `bins: no workspace binary or package named "nope"`, fix: "app, tool",
		},
		{
			name: "an unknown binary on the command line",
			opts: []Option{WithIntent(Intent{Bins: []string{"nope"}})},
			file: "Cargo.toml",
			msg:  `--bin: no workspace binary or package named "nope"`, fix: "app, tool",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := hostileWorkspace(t, t.TempDir())
			if tc.setup != nil {
				tc.setup(t, ws)
			}
			_, err := computeGuarded(t, ws, tc.opts...)
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("want a *recipe.Error, got %v", err)
			}
			if re.File != tc.file || re.Line != tc.line || !strings.Contains(re.Msg, tc.msg) || !strings.Contains(re.Fix, tc.fix) {
				t.Fatalf("error %q at %s:%d; want %s:%d, a message with %q and a fix with %q",
					err, re.File, re.Line, tc.file, tc.line, tc.msg, tc.fix)
			}
		})
	}
}

// TestNonUTF8TargetNames: cargo skips target files and directories whose
// names are not UTF-8 (checked with cargo 1.95: `cargo metadata` lists
// only the valid one); the recipe must not have them either.
func TestNonUTF8TargetNames(t *testing.T) {
	ws := hostileWorkspace(t, t.TempDir())
	bin := filepath.Join(ws, "crates/lib/src/bin")
	for _, p := range []string{"bad\xff.rs", "d\xfe/main.rs"} {
		p = filepath.Join(bin, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("fn main() {}\n"), 0o644); err != nil {
			t.Skipf("this filesystem refuses non-UTF-8 names: %v", err)
		}
	}
	for _, p := range []string{"examples/ex\xff.rs", "tests/t\xfe.rs"} {
		p = filepath.Join(ws, "crates/lib", p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := computeGuarded(t, ws)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Bins(); !slices.Equal(got, []string{"app", "tool"}) {
		t.Errorf("bins %q, want [app tool] (cargo has no target named by bytes that are not UTF-8)", got)
	}
	for _, m := range r.Manifests {
		for _, tg := range m.Targets {
			if !strings.Contains(tg.Path, "\xff") && !strings.Contains(tg.Path, "\xfe") {
				continue
			}
			t.Errorf("%s: phantom target %s %q at %q", m.Path, tg.Kind, tg.Name, tg.Path)
		}
	}
}
