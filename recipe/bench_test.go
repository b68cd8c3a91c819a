package recipe

import (
	"context"
	"testing"

	"github.com/chefd/chefd/internal/safefile"
	"github.com/chefd/chefd/internal/testws"
)

func largeWorkspace(b *testing.B) string { return testws.Tree(b, 500) }

// BenchmarkPrepare500 measures chefd's recipe on 500 members / 3,000
// targets, in process and without the recipe cache. The CLI benchmarks in
// cmd/chefd put `chefd prepare` and `cargo metadata` side by side.
func BenchmarkPrepare500(b *testing.B) {
	dir := largeWorkspace(b)
	r, err := Compute(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	if m, tg, _ := r.Summary(); m != 500 || tg != 3000 {
		b.Fatalf("workspace has %d members and %d targets", m, tg)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Compute(context.Background(), dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrepare500Cached is a warm prepare: the recipe cache re-stats
// every input (manifests and the directories target discovery listed) and
// returns the stored recipe.
func BenchmarkPrepare500Cached(b *testing.B) {
	dir := largeWorkspace(b)
	o := []Option{WithCacheDir(b.TempDir()), withRacyWindow(-1)}
	if _, err := Compute(context.Background(), dir, o...); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := Compute(context.Background(), dir, o...)
		if err != nil || r.Hash == "" {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrepare500SyscallFloor makes the system calls a cold Compute
// must make on the same tree (list crates/, then per member: read
// Cargo.toml; stat src/lib.rs, src/main.rs, src/bin/b/main.rs and
// build.rs; list src/bin, examples, tests and benches) and nothing else:
// no parsing, no recipe. It is the floor under BenchmarkPrepare500 on this
// machine, on the same worker pool.
func BenchmarkPrepare500SyscallFloor(b *testing.B) {
	dir := largeWorkspace(b)
	var l lister
	ents, _, err := l.readDirKey(dir + "/crates")
	if err != nil {
		b.Fatal(err)
	}
	members := make([]string, 0, len(ents))
	for _, e := range ents {
		members = append(members, dir+"/crates/"+e.name)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var l lister
		if _, _, err := l.readDirKey(dir + "/crates"); err != nil {
			b.Fatal(err)
		}
		_, err := parallel(members, func(m string) (int, error) {
			if _, _, err := readFileKey(m+"/Cargo.toml", safefile.TextLimit); err != nil {
				return 0, err
			}
			for _, f := range []string{"/src/lib.rs", "/src/main.rs", "/src/bin/b/main.rs", "/build.rs"} {
				statPath(m + f)
			}
			for _, d := range []string{"/src/bin", "/examples", "/tests", "/benches"} {
				l.readDirKey(m + d)
			}
			return 0, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
