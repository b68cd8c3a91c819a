package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EAbsolutePathDependency: a path dependency written as an absolute
// path (cargo takes it as it is) cooks and builds, and the image runs: the
// recipe follows it (it used to be taken as relative to the workspace and
// reported "not found"), and the cook and code steps reach the sources at
// that host path inside the builder. The workspace has one third-party
// crate (itoa) so that its cook takes seconds: the subject is the layout.
func TestE2EAbsolutePathDependency(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	needEngine(t)
	dir := filepath.Join(t.TempDir(), "abspath")
	abs := filepath.Join(dir, "crates/ledger")
	image := "chefd-e2e-abspath-" + strings.ToLower(filepath.Base(filepath.Dir(dir)))
	files := map[string]string{
		"Cargo.toml": "[workspace]\nmembers = [\"crates/ledger\", \"crates/app\"]\nresolver = \"2\"\n\n" +
			"[workspace.dependencies]\nledger = { path = \"" + abs + "\" }\n",
		"crates/ledger/Cargo.toml": "[package]\nname = \"ledger\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\n",
		"crates/ledger/src/lib.rs": "pub fn banner() -> String {\n    let mut b = itoa::Buffer::new();\n    format!(\"ledger v{}\", b.format(1u8))\n}\n",
		"crates/app/Cargo.toml":    "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nledger.workspace = true\n",
		"crates/app/src/main.rs":   "fn main() {\n    println!(\"app: {}\", ledger::banner());\n}\n",
		"chefd.toml": "image = \"" + image + "\"\nbuilder-image = \"chefd/rust-builder:bookworm-1.96\"\nruntime-image = \"scratch\"\n" +
			"target = \"x86_64-unknown-linux-gnu\"\nrustflags = \"-C target-feature=+crt-static\"\n",
	}
	for rel, text := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { removeImages(image); removeImages(image + "-cooked") })
	res := buildJSON(t, dir, "--tag", "abspath")
	if res.Cook == nil || res.ImageID == "" {
		t.Fatalf("build: %+v", res)
	}
	if out := dockerRun(t, res.Image); !strings.Contains(out, "app: ledger v1") {
		t.Fatalf("the image prints %q", out)
	}
	// an edit of the crate named absolutely rebuilds it
	edit(t, filepath.Join(abs, "src/lib.rs"), "ledger v", "ledger edited v")
	res = buildJSON(t, dir, "--tag", "abspath")
	if res.Compiled.ThirdParty != 0 || res.Compiled.Local == 0 {
		t.Fatalf("an edit of the absolutely named crate: compiled %+v", res.Compiled)
	}
	if out := dockerRun(t, res.Image); !strings.Contains(out, "app: ledger edited v1") {
		t.Fatalf("after the edit the image prints %q", out)
	}
}
