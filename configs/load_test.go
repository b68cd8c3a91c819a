package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadGuarded runs Load and fails the test when it has not returned within
// half a minute (a FIFO chefd.toml would block it).
func loadGuarded(t *testing.T, dir string) (Config, error) {
	t.Helper()
	type result struct {
		cfg Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		cfg, err := Load(dir)
		done <- result{cfg, err}
	}()
	select {
	case r := <-done:
		return r.cfg, r.err
	case <-time.After(30 * time.Second):
		t.Fatal("Load did not return within 30s (blocked reading chefd.toml?)")
		return Config{}, nil
	}
}

// TestLoadOddFiles: only a regular chefd.toml is read, within a size
// limit; a FIFO, a device, a dangling link or a huge file is an error
// naming the file, never a hang, the defaults or all the memory.
func TestLoadOddFiles(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, p string)
		msg   string // "" : the defaults, no error
	}{
		{name: "absent", setup: func(t *testing.T, p string) {}},
		{
			name:  "FIFO",
			setup: func(t *testing.T, p string) { must(t, syscall.Mkfifo(p, 0o644)) },
			msg:   "not a regular file (a FIFO); chefd reads only regular files",
		},
		{
			name:  "link to /dev/zero",
			setup: func(t *testing.T, p string) { must(t, os.Symlink("/dev/zero", p)) },
			msg:   "not a regular file (a symbolic link to /dev/zero, a character device)",
		},
		{
			name:  "dangling link",
			setup: func(t *testing.T, p string) { must(t, os.Symlink("../shared/chefd.toml", p)) },
			msg:   "a symbolic link to ../shared/chefd.toml, which does not exist",
		},
		{
			name: "larger than the limit",
			setup: func(t *testing.T, p string) {
				must(t, os.WriteFile(p, nil, 0o644))
				must(t, os.Truncate(p, 1<<40)) // sparse
			},
			msg: "larger than 16 MiB",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "app")
			must(t, os.Mkdir(dir, 0o755))
			p := filepath.Join(dir, FileName)
			tc.setup(t, p)
			cfg, err := loadGuarded(t, dir)
			if tc.msg == "" {
				if err != nil || cfg.Image != "app" {
					t.Fatalf("Load: %+v, %v; want the defaults", cfg, err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != p || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Load: %v; want a *configs.Error naming %s and saying %q", err, p, tc.msg)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestEntrypointLine: an entrypoint that is not a binary of the workspace
// is an error at its line of chefd.toml.
func TestEntrypointLine(t *testing.T) {
	dir := t.TempDir()
	text := "image = \"app\"\n\n# the image's command\nentrypoint = \"nope\"\n"
	cfg, err := Parse(dir, filepath.Join(dir, FileName), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Line("entrypoint"); got != 4 {
		t.Errorf("Line(entrypoint) = %d, want 4", got)
	}
	err = cfg.CheckEntrypoint([]string{"app", "tool"})
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 4 || ce.Key != "entrypoint" || !strings.Contains(ce.Msg, "app, tool") {
		t.Fatalf("CheckEntrypoint: %v; want an error at line 4 listing the binaries", err)
	}
	if err := cfg.CheckEntrypoint([]string{"nope"}); err != nil {
		t.Fatalf("CheckEntrypoint with the binary present: %v", err)
	}
}
