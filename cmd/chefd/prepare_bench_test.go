package main

// Prepare benchmarks (issue 2), process against process, on the generated
// 500-member workspace:
//
//	go test ./cmd/chefd -run '^$' -bench 'PrepareCLI|CargoMetadataCLI' -benchtime 20x

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chefd/chefd/internal/testws"
)

func benchTree(b *testing.B) string { return testws.Tree(b, 500) }

func runPrepare(b *testing.B, bin, dir, cache string) {
	cmd := exec.Command(bin, "-C", dir, "prepare")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("chefd prepare: %v\n%s", err, out)
	}
}

// BenchmarkPrepareCLI500Cold: `chefd prepare` with an empty recipe cache
// (a first run, or one after every input changed), storing the cache.
func BenchmarkPrepareCLI500Cold(b *testing.B) {
	bin, dir := chefdBinary(b), benchTree(b)
	root := b.TempDir()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cache := filepath.Join(root, "c")
		if err := os.RemoveAll(cache); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		runPrepare(b, bin, dir, cache)
	}
}

// BenchmarkPrepareCLI500Warm: `chefd prepare` again, nothing changed (the
// recipe cache re-stats every input).
func BenchmarkPrepareCLI500Warm(b *testing.B) {
	bin, dir := chefdBinary(b), benchTree(b)
	cache := b.TempDir()
	runPrepare(b, bin, dir, cache)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runPrepare(b, bin, dir, cache)
	}
}

// BenchmarkCargoMetadataCLI500: `cargo metadata --no-deps --offline` on the
// same tree, with the toolchain's cargo (not rustup's proxy).
func BenchmarkCargoMetadataCLI500(b *testing.B) {
	cargo, err := exec.LookPath("cargo")
	if err != nil {
		if os.Getenv("CI") != "" {
			b.Fatalf("cargo is required under CI: %v", err)
		}
		b.Skip("cargo not installed")
	}
	if out, err := exec.Command("rustup", "which", "cargo").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		cargo = strings.TrimSpace(string(out))
	}
	dir := benchTree(b)
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(cargo, "metadata", "--no-deps", "--offline", "--format-version", "1")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
	}
}
