package recipe

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// genWorkspace writes a workspace of n members with 6 targets each (lib,
// main bin, two src/bin bins, an example and a test: 3,000 targets for
// 500 members), chained path dependencies and a few external ones.
func genWorkspace(tb testing.TB, dir string, n int) {
	tb.Helper()
	write := func(p, s string) {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	write("Cargo.toml", `[workspace]
members = ["crates/*"]
resolver = "2"

[workspace.package]
version = "0.1.0"
edition = "2021"

[workspace.dependencies]
serde = { version = "1", features = ["derive"] }
anyhow = "1"
`)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("member-%03d", i)
		deps := "serde = { workspace = true }\nanyhow.workspace = true\n"
		if i > 0 {
			deps += fmt.Sprintf("member-%03d = { path = \"../member-%03d\", version = \"0.1.0\" }\n", i-1, i-1)
		}
		write("crates/"+name+"/Cargo.toml", fmt.Sprintf(`[package]
name = %q
version.workspace = true
edition.workspace = true

[dependencies]
%s
[dev-dependencies]
itoa = "1"
`, name, deps))
		p := "crates/" + name + "/"
		write(p+"src/lib.rs", "pub fn f() {}\n")
		write(p+"src/main.rs", "fn main() {}\n")
		write(p+"src/bin/a.rs", "fn main() {}\n")
		write(p+"src/bin/b/main.rs", "fn main() {}\n")
		write(p+"examples/ex.rs", "fn main() {}\n")
		write(p+"tests/it.rs", "")
	}
}

var benchDir string

func largeWorkspace(b *testing.B) string {
	if benchDir == "" {
		benchDir = filepath.Join(os.TempDir(), "chefd-bench-500")
		if _, err := os.Stat(filepath.Join(benchDir, "crates", "member-499", "tests", "it.rs")); err != nil {
			os.RemoveAll(benchDir)
			genWorkspace(b, benchDir, 500)
		}
	}
	return benchDir
}

// BenchmarkPrepare500 measures chefd's recipe on 500 members / 3,000
// targets. Compare with BenchmarkCargoMetadata500 on the same tree.
func BenchmarkPrepare500(b *testing.B) {
	dir := largeWorkspace(b)
	r, err := Compute(context.Background(), dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if m, tg, _ := r.Summary(); m != 500 || tg != 3000 {
		b.Fatalf("workspace has %d members and %d targets", m, tg)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Compute(context.Background(), dir, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCargoMetadata500 runs `cargo metadata --no-deps --offline` on the
// tree BenchmarkPrepare500 uses.
func BenchmarkCargoMetadata500(b *testing.B) {
	cargo := needCargo(b)
	dir := largeWorkspace(b)
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(cargo, "metadata", "--no-deps", "--offline", "--format-version", "1")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
	}
}

// BenchmarkPrepare500Cached is a warm prepare: the recipe cache re-stats
// every input (manifests and the directories target discovery listed) and
// returns the stored recipe.
func BenchmarkPrepare500Cached(b *testing.B) {
	dir := largeWorkspace(b)
	o := Options{CacheDir: b.TempDir(), racyWindow: -1}
	if _, err := Compute(context.Background(), dir, o); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := Compute(context.Background(), dir, o)
		if err != nil || r.Hash == "" {
			b.Fatal(err)
		}
	}
}
