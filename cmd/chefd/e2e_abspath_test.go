package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EAbsolutePathDependency: a path dependency written as an absolute
// path (cargo takes it as it is) cooks and builds, and the image runs: the
// recipe follows it (it used to be taken as relative to the workspace and
// reported "not found"), and the cook and code steps reach the sources at
// that host path inside the builder.
func TestE2EAbsolutePathDependency(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	needEngine(t)
	dir := exampleCopy(t)
	ownImage(t, dir, "chefd-e2e-abspath")
	abs := filepath.Join(dir, "crates/ledger")
	edit(t, filepath.Join(dir, "Cargo.toml"), `ledger = { path = "crates/ledger" }`, `ledger = { path = "`+abs+`" }`)
	res := buildJSON(t, dir, "--tag", "abspath")
	if res.Cook == nil || res.ImageID == "" {
		t.Fatalf("build: %+v", res)
	}
	if out := dockerRun(t, res.Image); !strings.Contains(out, "ledger") && strings.TrimSpace(out) == "" {
		t.Fatalf("the image printed nothing")
	}
	// an edit of the crate named absolutely rebuilds it
	edit(t, filepath.Join(abs, "src/lib.rs"), "pub ", "// edited\npub ")
	res = buildJSON(t, dir, "--tag", "abspath")
	if res.Compiled.ThirdParty != 0 || res.Compiled.Local == 0 {
		t.Fatalf("an edit of the absolutely named crate: compiled %+v", res.Compiled)
	}
}
