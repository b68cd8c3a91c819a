package testws

import (
	"os"
	"path/filepath"
	"testing"
)

// Small writes a two-member workspace (a virtual root, crates/app with a
// binary, crates/lib with a library and, when extra holds them, more
// files: path to content) into dir/ws and returns ws. The tests of odd
// and hostile files (recipe's and the CLI's) start from it.
func Small(tb testing.TB, dir string, extra map[string]string) string {
	tb.Helper()
	ws := filepath.Join(dir, "ws")
	files := map[string]string{
		"Cargo.toml":             "[workspace]\nmembers = [\"crates/*\"]\nresolver = \"2\"\n",
		"Cargo.lock":             "version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n[[package]]\nname = \"lib\"\nversion = \"0.1.0\"\n",
		"crates/app/Cargo.toml":  "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
		"crates/app/src/main.rs": "fn main() {}\n",
		"crates/lib/Cargo.toml":  "[package]\nname = \"lib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
		"crates/lib/src/lib.rs":  "",
	}
	for name, body := range extra {
		files[name] = body
	}
	for name, body := range files {
		p := filepath.Join(ws, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return ws
}
