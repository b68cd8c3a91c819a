// Package testws generates the large cargo workspace that the prepare
// benchmarks (recipe's and the CLI's) measure against cargo metadata.
package testws

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Generate writes a workspace of n members into dir, with 6 targets each
// (lib, main bin, a src/bin file, a src/bin/<dir>/main.rs bin, an example
// and a test: 3,000 targets for 500 members), chained path dependencies
// and a few external ones.
func Generate(dir string, n int) error {
	write := func(p, s string) error {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		return os.WriteFile(full, []byte(s), 0o644)
	}
	if err := write("Cargo.toml", `[workspace]
members = ["crates/*"]
resolver = "2"

[workspace.package]
version = "0.1.0"
edition = "2021"

[workspace.dependencies]
serde = { version = "1", features = ["derive"] }
anyhow = "1"
`); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("member-%03d", i)
		deps := "serde = { workspace = true }\nanyhow.workspace = true\n"
		if i > 0 {
			deps += fmt.Sprintf("member-%03d = { path = \"../member-%03d\", version = \"0.1.0\" }\n", i-1, i-1)
		}
		p := "crates/" + name + "/"
		files := [][2]string{
			{p + "Cargo.toml", fmt.Sprintf(`[package]
name = %q
version.workspace = true
edition.workspace = true

[dependencies]
%s
[dev-dependencies]
itoa = "1"
`, name, deps)},
			{p + "src/lib.rs", "pub fn f() {}\n"},
			{p + "src/main.rs", "fn main() {}\n"},
			{p + "src/bin/a.rs", "fn main() {}\n"},
			{p + "src/bin/b/main.rs", "fn main() {}\n"},
			{p + "examples/ex.rs", "fn main() {}\n"},
			{p + "tests/it.rs", ""},
		}
		for _, f := range files {
			if err := write(f[0], f[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Cached returns the directory of a generated n-member workspace under the
// system temp dir, generating it unless a complete one is already there.
func Cached(n int) (string, error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("chefd-bench-%d", n))
	last := filepath.Join(dir, "crates", fmt.Sprintf("member-%03d", n-1), "tests", "it.rs")
	if _, err := os.Stat(last); err == nil {
		return dir, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := Generate(dir, n); err != nil {
		return "", fmt.Errorf("generate %s: %w", dir, err)
	}
	return dir, nil
}

// Tree is Cached for a test or benchmark: it fails tb on error.
func Tree(tb testing.TB, n int) string {
	tb.Helper()
	dir, err := Cached(n)
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}
