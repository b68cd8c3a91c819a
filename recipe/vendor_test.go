package recipe

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestVendoredCrateIdentity: a vendored crate changed in place (its
// .cargo-checksum.json updated, as cargo requires, the lockfile not) is a
// new recipe, also through the recipe cache; the Diff names the crate.
func TestVendoredCrateIdentity(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, filepath.Join("testdata/fixtures", "vendor-config"), dir)
	sums := filepath.Join(dir, "vendor/itoa/.cargo-checksum.json")
	if err := os.WriteFile(sums, []byte(`{"files":{"src/lib.rs":"aa"},"package":"p1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	compute := func() *Recipe {
		t.Helper()
		r, err := Compute(context.Background(), dir, WithCacheDir(cache), withRacyWindow(-1))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := compute()
	if len(first.VendorSums) != 1 || first.VendorSums[0].Path != "vendor/itoa/.cargo-checksum.json" {
		t.Fatalf("vendor sums %+v", first.VendorSums)
	}
	if again := compute(); again.Hash != first.Hash {
		t.Fatal("the same vendored crates changed the hash")
	}
	if err := os.WriteFile(sums, []byte(`{"files":{"src/lib.rs":"bb"},"package":"p1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := compute()
	if changed.Hash == first.Hash {
		t.Fatal("a vendored crate changed in place kept the recipe")
	}
	if d := Diff(first, changed); !slices.Equal(d, []string{"vendored crate vendor/itoa changed"}) {
		t.Fatalf("diff %q", d)
	}
	os.Remove(sums)
	if gone := compute(); gone.Hash == changed.Hash || len(gone.VendorSums) != 0 {
		t.Fatalf("removing the checksum file kept the recipe: %+v", gone.VendorSums)
	}
}
