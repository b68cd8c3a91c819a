package dockerctl

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chefd/chefd/configs"
	"github.com/chefd/chefd/recipe"
)

// inputsOf lists root's context and ships it to nowhere, as a build does.
func inputsOf(t testing.TB, b *WorkspaceBuilder, r *recipe.Recipe, taken time.Time) *Inputs {
	t.Helper()
	files, err := b.contextFiles(r)
	if err != nil {
		t.Fatal(err)
	}
	in := newInputs(r, taken)
	cw := newContextWriter(io.Discard)
	for _, f := range files {
		d, err := cw.addHashed("src", f)
		if err != nil {
			t.Fatal(err)
		}
		in.add(f, d)
	}
	return in
}

// testWorkspace writes files into a new workspace and binds a builder
// (no engine) and its recipe to it.
func testWorkspace(t testing.TB, files map[string]string) (*WorkspaceBuilder, *recipe.Recipe) {
	t.Helper()
	root := t.TempDir()
	write(t, root, files)
	cfg, err := configs.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	r, err := recipe.Compute(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	return &WorkspaceBuilder{root: root, cfg: SettingsOf(cfg)}, r
}

// TestUnchanged: the workspace matches what a build shipped until a byte,
// a file or a mode changes; a touch or an atomic rewrite of the same bytes
// is no change; a file changed too close to the listing is compared by
// content.
func TestUnchanged(t *testing.T) {
	b, r := testWorkspace(t, map[string]string{
		"Cargo.toml":  "[package]\nname = \"a\"\nversion = \"0.1.0\"\n",
		"src/main.rs": "fn main() {}\n",
		"src/lib.rs":  "pub fn f() {}\n",
	})
	p := func(rel string) string { return filepath.Join(b.root, rel) }
	old := time.Now().Add(-time.Hour)
	for _, f := range []string{"Cargo.toml", "src/main.rs", "src/lib.rs"} {
		os.Chtimes(p(f), old, old)
	}
	check := func(in *Inputs, want bool, what string) {
		t.Helper()
		got, err := b.Unchanged(context.Background(), r, in)
		if err != nil || got != want {
			t.Fatalf("%s: Unchanged = %v, %v; want %v", what, got, err, want)
		}
	}
	in := inputsOf(t, b, r, time.Now())
	check(in, true, "nothing changed")
	check(nil, false, "no build")

	os.Chtimes(p("src/lib.rs"), time.Now(), time.Now())
	check(in, true, "touched")
	os.WriteFile(p("src/lib.rs.tmp"), []byte("pub fn f() {}\n"), 0o644)
	os.Rename(p("src/lib.rs.tmp"), p("src/lib.rs"))
	check(in, true, "rewritten with the same bytes (new inode)")

	st, _ := os.Stat(p("src/main.rs"))
	os.WriteFile(p("src/main.rs"), []byte("fn main() {1}\n"), 0o644) // same size
	os.Chtimes(p("src/main.rs"), st.ModTime(), st.ModTime())
	check(in, false, "same size, mtime restored")
	os.WriteFile(p("src/main.rs"), []byte("fn main() {}\n"), 0o644)
	check(in, true, "reverted")

	os.WriteFile(p("src/new.rs"), nil, 0o644)
	check(in, false, "a new file")
	os.Remove(p("src/new.rs"))
	check(in, true, "the new file removed")
	os.Chmod(p("src/lib.rs"), 0o755)
	check(in, false, "mode")
	os.Chmod(p("src/lib.rs"), 0o644)
	os.Remove(p("src/lib.rs"))
	check(in, false, "a file removed")

	// racy: listed right after its last change, then changed again within
	// the timestamp granularity with the same size: caught by content
	b2, r2 := testWorkspace(t, map[string]string{"Cargo.toml": "[package]\nname = \"b\"\nversion = \"0.1.0\"\n", "src/main.rs": "fn main() {}\n"})
	in2 := inputsOf(t, b2, r2, time.Now())
	fi, _ := os.Stat(filepath.Join(b2.root, "src/main.rs"))
	os.WriteFile(filepath.Join(b2.root, "src/main.rs"), []byte("fn main() {2}\n"[:len("fn main() {}\n")]), 0o644)
	os.Chtimes(filepath.Join(b2.root, "src/main.rs"), fi.ModTime(), fi.ModTime())
	if ok, _ := b2.Unchanged(context.Background(), r2, in2); ok {
		t.Fatal("a racy change was taken for no change")
	}
	other := *r2
	other.Hash = "other"
	if ok, _ := b2.Unchanged(context.Background(), &other, in2); ok {
		t.Fatal("another recipe was taken for no change")
	}
}

// BenchmarkUnchanged5000: the check behind the daemon's answer that the
// workspace holds what the last build shipped, on 5,000 files in 500
// directories, none changed.
func BenchmarkUnchanged5000(b *testing.B) {
	files := map[string]string{"Cargo.toml": "[package]\nname = \"a\"\nversion = \"0.1.0\"\n", "src/main.rs": "fn main() {}\n"}
	for i := 0; i < 5000; i++ {
		files[fmt.Sprintf("src/m%03d/f%d.rs", i/10, i)] = fmt.Sprintf("pub fn f%d() {}\n", i)
	}
	wb, r := testWorkspace(b, files)
	old := time.Now().Add(-time.Hour)
	filepath.Walk(wb.root, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			os.Chtimes(p, old, old)
		}
		return nil
	})
	// the build lists the tree a while after the last change (else every
	// file is too recent to trust its stat, and is read)
	time.Sleep(racyWindow + 100*time.Millisecond)
	in := inputsOf(b, wb, r, time.Now())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ok, err := wb.Unchanged(context.Background(), r, in); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
