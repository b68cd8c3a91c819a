package recipe

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/chefd/chefd/internal/testws"
)

func computeWith(t *testing.T, dir string, o ...Option) *Recipe {
	t.Helper()
	r, err := Compute(context.Background(), dir, o...)
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	return r
}

// TestCacheFollowsEveryHashCase replays the hash table with the cache on:
// a cached Compute must always equal a fresh one.
func TestCacheFollowsEveryHashCase(t *testing.T) {
	for _, tc := range hashCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			copyTree(t, "testdata/hashbase", dir)
			cache := t.TempDir()
			intent := Intent{}
			if tc.intent.Bins != nil {
				intent = tc.intent
			}
			cached := []Option{WithIntent(intent), WithCacheDir(cache), withRacyWindow(-1)}
			fresh := computeWith(t, dir, WithIntent(intent))
			if got := computeWith(t, dir, cached...); got.Hash != fresh.Hash {
				t.Fatalf("first cached compute differs")
			}
			if got := computeWith(t, dir, cached...); got.Hash != fresh.Hash {
				t.Fatalf("cache hit differs")
			}
			if tc.edit != nil {
				tc.edit(t, dir)
			}
			afterIntent := intent
			if tc.after != nil {
				afterIntent = *tc.after
			}
			want := computeWith(t, dir, WithIntent(afterIntent))
			got := computeWith(t, dir, WithIntent(afterIntent), WithCacheDir(cache), withRacyWindow(-1))
			if got.Hash != want.Hash {
				t.Fatalf("after the edit the cache returned %s, a fresh compute %s", got.Hash[:12], want.Hash[:12])
			}
		})
	}
}

// TestCacheHitAndInvalidation proves the cache is used, restores the
// host-only fields, and is dropped when an input moves.
func TestCacheHitAndInvalidation(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "testdata/hashbase", dir)
	cache := t.TempDir()
	o := []Option{WithCacheDir(cache), withRacyWindow(-1)}
	first := computeWith(t, dir, o...)
	// doctor the stored hash: a hit returns it
	doctorCache(t, cache)
	hit := computeWith(t, dir, o...)
	if hit.Hash != "doctored" {
		t.Fatalf("no cache hit: %s", hit.Hash)
	}
	if hit.Root != first.Root || hit.ContextRoot != first.ContextRoot || hit.External != first.External || len(hit.SkeletonFiles()) != len(first.SkeletonFiles()) {
		t.Errorf("cached recipe lost fields: %+v", hit)
	}
	// a new file where cargo looks for targets invalidates it
	os.WriteFile(filepath.Join(dir, "tool", "src", "lib.rs"), nil, 0o644)
	if got := computeWith(t, dir, o...); got.Hash == "doctored" {
		t.Fatal("a new target file did not invalidate the cache")
	}
	// racy entries are not stored: files written just now
	cache2 := t.TempDir()
	computeWith(t, dir, WithCacheDir(cache2))
	if files, _ := filepath.Glob(filepath.Join(cache2, "recipe-*.gob")); len(files) != 0 {
		t.Errorf("an entry with inputs changed in the last 2 s was stored")
	}
}

// doctorCache rewrites the one stored entry's hash, so a hit is visible.
func doctorCache(t *testing.T, cache string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(cache, "recipe-*.gob"))
	if len(files) != 1 {
		t.Fatalf("cache files: %v", files)
	}
	data, _ := os.ReadFile(files[0])
	dec := gob.NewDecoder(bytes.NewReader(data))
	var e cacheEntry
	var r Recipe
	var raw []byte
	if err := dec.Decode(&e); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	r.Hash = "doctored"
	if err := writeCacheFile(files[0], &e, &r); err != nil {
		t.Fatal(err)
	}
}

// TestCacheSurvivesSourceEdits: editing any .rs file, including one whose
// existence alone makes a target (src/bin/b/main.rs), keeps the cache
// valid; deleting that file does not.
func TestCacheSurvivesSourceEdits(t *testing.T) {
	dir := t.TempDir()
	if err := testws.Generate(dir, 3); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	o := []Option{WithCacheDir(cache), withRacyWindow(-1)}
	computeWith(t, dir, o...)
	doctorCache(t, cache)
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || filepath.Ext(p) != ".rs" {
			return err
		}
		return os.WriteFile(p, []byte("// edited\nfn main() {}\n"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := computeWith(t, dir, o...); got.Hash != "doctored" {
		t.Fatal("editing .rs files invalidated the recipe cache")
	}
	if err := os.Remove(filepath.Join(dir, "crates", "member-001", "src", "bin", "b", "main.rs")); err != nil {
		t.Fatal(err)
	}
	want := computeWith(t, dir)
	if got := computeWith(t, dir, o...); got.Hash != want.Hash {
		t.Fatalf("after removing a target file the cache returned %s, a fresh compute %s", got.Hash, want.Hash)
	}
}

// TestCacheSurvivesEditorTemporaries: swap and backup files created next to
// sources (in src/, the package directory and a target directory's parent)
// keep the cache valid; a new target file or directory in the same places
// does not.
func TestCacheSurvivesEditorTemporaries(t *testing.T) {
	dir := t.TempDir()
	if err := testws.Generate(dir, 2); err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(dir, "crates", "member-001")
	cache := t.TempDir()
	o := []Option{WithCacheDir(cache), withRacyWindow(-1)}
	computeWith(t, dir, o...)
	doctorCache(t, cache)
	for _, f := range []string{"src/.lib.rs.swp", ".Cargo.toml.swp", "src/bin/b/.main.rs.swp", "#README.md#", "src/main.rs~"} {
		if err := os.WriteFile(filepath.Join(pkg, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := computeWith(t, dir, o...); got.Hash != "doctored" {
		t.Fatal("editor temporaries invalidated the recipe cache")
	}
	for _, add := range []string{"benches/speed.rs", "build.rs", "src/bin/c/main.rs"} {
		t.Run(add, func(t *testing.T) {
			p := filepath.Join(pkg, filepath.FromSlash(add))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("fn main() {}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			want := computeWith(t, dir)
			if got := computeWith(t, dir, o...); got.Hash != want.Hash {
				t.Fatalf("after adding %s the cache returned %s, a fresh compute %s", add, got.Hash, want.Hash)
			}
			computeWith(t, dir, o...) // store the new state
			doctorCache(t, cache)
		})
	}
}

// TestCacheFollowsSymlinkTargets: a target file that is a symbolic link
// exists only while what it points to does; the link's directory does not
// change when the target comes or goes, and the cache must still notice.
func TestCacheFollowsSymlinkTargets(t *testing.T) {
	dir := t.TempDir()
	if err := testws.Generate(dir, 1); err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(dir, "crates", "member-000")
	shared := filepath.Join(dir, "shared")
	if err := os.MkdirAll(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(pkg, "src", "lib.rs")
	os.Remove(lib)
	if err := os.WriteFile(filepath.Join(shared, "lib.rs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../shared/lib.rs", lib); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../shared/benches", filepath.Join(pkg, "benches")); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	o := []Option{WithCacheDir(cache), withRacyWindow(-1)}
	same := func(step string) {
		t.Helper()
		want := computeWith(t, dir)
		if got := computeWith(t, dir, o...); got.Hash != want.Hash {
			t.Fatalf("%s: the cache returned %s, a fresh compute %s", step, got.Hash[:12], want.Hash[:12])
		}
	}
	same("first")
	same("warm")
	if err := os.Remove(filepath.Join(shared, "lib.rs")); err != nil { // the lib's link now dangles
		t.Fatal(err)
	}
	same("link target removed")
	if err := os.MkdirAll(filepath.Join(shared, "benches"), 0o755); err != nil { // the benches link now resolves
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shared, "benches", "b.rs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	same("link target created")
}

// TestCacheHitEqualsFresh: a recipe from the cache is the one a fresh
// compute makes, down to empty lists (gob decodes an empty list as nil,
// which JSON-derived keys, such as dockerctl's cook key, tell apart: a
// cache hit gave another cook cache than the first cook).
func TestCacheHitEqualsFresh(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "testdata/hashbase", dir)
	cache := t.TempDir()
	for _, intent := range []Intent{{}, {Profile: "release", Features: []string{}, Bins: []string{}}} {
		fresh := computeWith(t, dir, WithIntent(intent))
		computeWith(t, dir, WithIntent(intent), WithCacheDir(cache), withRacyWindow(-1))
		hit := computeWith(t, dir, WithIntent(intent), WithCacheDir(cache), withRacyWindow(-1))
		if !reflect.DeepEqual(hit, fresh) {
			a, _ := json.Marshal(fresh)
			b, _ := json.Marshal(hit)
			t.Errorf("a cache hit differs from a fresh compute:\nfresh %s\nhit   %s", a, b)
		}
	}
}
