package dockerctl

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/chefd/chefd/recipe"
)

// syncFunc is the shell function of the cook step's vendor sync.
func syncFunc(t *testing.T) string {
	t.Helper()
	r := &recipe.Recipe{Hash: hashOf('v'), WorkspaceDir: ".", VendorDirs: []string{"vendor"}}
	s := vendorSync(r, []*vendorDir{{rel: "vendor"}})
	i := strings.LastIndex(s, "}\n")
	if i < 0 {
		t.Fatalf("no function in\n%s", s)
	}
	return s[:i+2]
}

// TestVendorSync runs the cook step's vendor sync on a directory standing
// for the cache: shipped items replace what it holds, unlisted entries go,
// kept items must be in its record with the listed digest (else exit 42
// before anything changes), and an interrupted sync leaves no record.
func TestVendorSync(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	fn := syncFunc(t)
	dir := t.TempDir()
	cache, ship, want := filepath.Join(dir, "cache"), filepath.Join(dir, "ship"), filepath.Join(dir, "want")
	os.MkdirAll(cache, 0o755)
	put := func(root, item, content string) {
		os.RemoveAll(filepath.Join(root, item))
		os.MkdirAll(filepath.Join(root, item, "src"), 0o755)
		os.WriteFile(filepath.Join(root, item, "Cargo.toml"), []byte(content), 0o644)
		os.WriteFile(filepath.Join(root, item, "src/lib.rs"), []byte(content), 0o644)
	}
	run := func(list string) (string, int) {
		t.Helper()
		os.WriteFile(want, []byte(list), 0o644)
		cmd := exec.Command("sh", "-c", "set -e\n"+fn+"chefd_vendor_sync \"$1\" \"$2\" \"$3\"\necho synced", "sh", cache, ship, want)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	items := func() []string {
		var out []string
		es, _ := os.ReadDir(cache)
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	content := func(item string) string {
		b, _ := os.ReadFile(filepath.Join(cache, item, "Cargo.toml"))
		return string(b)
	}
	record := func() string {
		b, _ := os.ReadFile(filepath.Join(cache, vendorRecord))
		return string(b)
	}

	// an empty cache, every item shipped
	put(ship, "a-1.0.0", "a1")
	put(ship, "b-1.0.0", "b1")
	if out, code := run("S da1 a-1.0.0\nS db1 b-1.0.0\n"); code != 0 || !strings.Contains(out, "synced") {
		t.Fatalf("first sync: exit %d\n%s", code, out)
	}
	if got := items(); !slices.Equal(got, []string{vendorRecord, "a-1.0.0", "b-1.0.0"}) {
		t.Fatalf("cache holds %q", got)
	}
	if record() != "da1 a-1.0.0\ndb1 b-1.0.0\n" {
		t.Fatalf("record %q", record())
	}

	// everything kept: nothing changes
	os.RemoveAll(ship)
	os.MkdirAll(ship, 0o755)
	if out, code := run("K da1 a-1.0.0\nK db1 b-1.0.0\n"); code != 0 {
		t.Fatalf("kept: exit %d\n%s", code, out)
	}

	// a kept item the record lists with another digest: stop, change nothing
	if out, code := run("K da1 a-1.0.0\nK dbX b-1.0.0\n"); code != 42 || !strings.Contains(out, vendorMissing) {
		t.Fatalf("a kept item with another digest: exit %d\n%s", code, out)
	}
	if record() != "da1 a-1.0.0\ndb1 b-1.0.0\n" || content("b-1.0.0") != "b1" {
		t.Fatalf("a refused sync changed the cache: record %q", record())
	}
	// a kept item the cache does not hold
	if _, code := run("K da1 a-1.0.0\nK dc1 c-1.0.0\n"); code != 42 {
		t.Fatalf("a kept item not in the cache: exit %d", code)
	}

	// a bump as cargo vendor does it: b replaced by b-2, a changed in
	// place (shipped), an unlisted entry and a stale temporary record go
	put(ship, "a-1.0.0", "a1 patched")
	put(ship, "b-2.0.0", "b2")
	put(cache, "junk", "junk")
	os.WriteFile(filepath.Join(cache, vendorRecord+".tmp"), []byte("x"), 0o644)
	if out, code := run("S da1p a-1.0.0\nS db2 b-2.0.0\n"); code != 0 {
		t.Fatalf("bump: exit %d\n%s", code, out)
	}
	if got := items(); !slices.Equal(got, []string{vendorRecord, "a-1.0.0", "b-2.0.0"}) {
		t.Fatalf("cache holds %q after the bump", got)
	}
	if content("a-1.0.0") != "a1 patched" || content("b-2.0.0") != "b2" {
		t.Fatalf("contents %q %q", content("a-1.0.0"), content("b-2.0.0"))
	}
	if b, _ := os.ReadFile(filepath.Join(cache, "a-1.0.0/src/lib.rs")); string(b) != "a1 patched" {
		t.Fatalf("an item changed in place kept an old file: %q", b)
	}

	// no record (pruned cache, interrupted sync): every kept item is missing
	os.Remove(filepath.Join(cache, vendorRecord))
	if _, code := run("K da1p a-1.0.0\nK db2 b-2.0.0\n"); code != 42 {
		t.Fatalf("no record: exit %d", code)
	}
}

// TestVendorItems: a vendor directory's items and their digests; a digest
// changes with any file of its item, and the hints decide what ships.
func TestVendorItems(t *testing.T) {
	root := t.TempDir()
	write := func(rel, data string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("vendor/a-1.0.0/Cargo.toml", "a")
	write("vendor/a-1.0.0/src/lib.rs", "a")
	write("vendor/b-1.0.0/Cargo.toml", "b")
	write("vendor/.git-keep", "ignored by cargo")
	r := &recipe.Recipe{Hash: hashOf('i'), WorkspaceDir: ".", ContextRoot: root, VendorDirs: []string{"vendor"}}
	b := fakeBuilder(t, &fakeEngine{})
	b.stateDir = t.TempDir()
	dirs, ok, err := vendorDirs(root, r)
	if err != nil || !ok || len(dirs) != 1 {
		t.Fatalf("vendorDirs: %v %v %v", dirs, ok, err)
	}
	if got := sortedItemNames(dirs[0]); !slices.Equal(got, []string{"a-1.0.0", "b-1.0.0"}) {
		t.Fatalf("items %q", got)
	}
	b.planShipping(dirs, false)
	if n, all := vendorItemsShipped(dirs); n != 2 || all != 2 {
		t.Fatalf("no hint: %d of %d shipped, want all", n, all)
	}
	if err := writeVendor(newContextWriter(io.Discard), dirs); err != nil { // as a cook does
		t.Fatal(err)
	}
	b.writeHints(dirs)
	before := dirs[0].items[0].digest
	write("vendor/a-1.0.0/src/lib.rs", "a changed")
	dirs, _, _ = vendorDirs(root, r)
	if err := b.planShipping(dirs, false); err != nil {
		t.Fatal(err)
	}
	if dirs[0].items[0].digest == before {
		t.Fatal("a changed file left its item's digest as it was")
	}
	if !dirs[0].items[0].ship || dirs[0].items[1].ship {
		t.Fatalf("after a change of a: ship a %v, b %v; want a only", dirs[0].items[0].ship, dirs[0].items[1].ship)
	}
	b.planShipping(dirs, true)
	if n, _ := vendorItemsShipped(dirs); n != 2 {
		t.Fatalf("ship all: %d shipped", n)
	}
	// an item name the step's lists cannot carry: no vendor cache
	write("vendor/bad name/Cargo.toml", "x")
	if _, ok, err := vendorDirs(root, r); ok || err != nil {
		t.Fatalf("an item with a space: ok %v, %v", ok, err)
	}
}

// sortedItemNames is for tests.
func sortedItemNames(d *vendorDir) []string {
	var out []string
	for _, it := range d.items {
		out = append(out, it.name)
	}
	sort.Strings(out)
	return out
}
