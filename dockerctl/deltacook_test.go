package dockerctl

import (
	"strings"
	"testing"

	"github.com/chefd/chefd/recipe"
)

// TestCookKey: recipes that differ only in their dependency graph or local
// crates share a cook key; another builder image, intent, workspace path
// in the container, cargo config or toolchain file is another key (its
// cache is never used as a seed).
func TestCookKey(t *testing.T) {
	base := func() *recipe.Recipe {
		return &recipe.Recipe{Hash: hashOf('a'), WorkspaceDir: ".", Intent: recipe.Intent{Profile: "release"},
			Manifests: []recipe.Manifest{{Path: "Cargo.toml", Package: "app"}},
			LockFile:  &recipe.File{Path: "Cargo.lock", Contents: "v1"}}
	}
	k0 := cookKey(base(), "sha256:b1")
	same := []struct {
		name string
		edit func(r *recipe.Recipe)
	}{
		{"another lockfile", func(r *recipe.Recipe) { r.LockFile.Contents = "v2" }},
		{"another recipe hash", func(r *recipe.Recipe) { r.Hash = hashOf('b') }},
		{"a new local crate", func(r *recipe.Recipe) {
			r.Manifests = append(r.Manifests, recipe.Manifest{Path: "util/Cargo.toml", Package: "util"})
		}},
		{"a vendored crate changed", func(r *recipe.Recipe) {
			r.VendorSums = []recipe.File{{Path: "vendor/x/.cargo-checksum.json", Contents: "d2"}}
		}},
	}
	for _, c := range same {
		r := base()
		c.edit(r)
		if k := cookKey(r, "sha256:b1"); k != k0 {
			t.Errorf("%s: key %s, want the same key %s", c.name, k, k0)
		}
	}
	other := []struct {
		name    string
		builder string
		edit    func(r *recipe.Recipe)
	}{
		{"another builder image", "sha256:b2", func(*recipe.Recipe) {}},
		{"another profile", "sha256:b1", func(r *recipe.Recipe) { r.Intent.Profile = "dev" }},
		{"features", "sha256:b1", func(r *recipe.Recipe) { r.Intent.Features = []string{"x"} }},
		{"no default features", "sha256:b1", func(r *recipe.Recipe) { r.Intent.NoDefaultFeatures = true }},
		{"a target", "sha256:b1", func(r *recipe.Recipe) { r.Intent.Target = "x86_64-unknown-linux-musl" }},
		{"rustflags", "sha256:b1", func(r *recipe.Recipe) { r.Intent.RustFlags = "-C target-cpu=native" }},
		{"bins", "sha256:b1", func(r *recipe.Recipe) { r.Intent.Bins = []string{"app"} }},
		{"another workspace dir", "sha256:b1", func(r *recipe.Recipe) { r.WorkspaceDir = "ws" }},
		{"a cargo config", "sha256:b1", func(r *recipe.Recipe) {
			r.ConfigFile = &recipe.File{Path: ".cargo/config.toml", Contents: "[build]\n"}
		}},
		{"a toolchain file", "sha256:b1", func(r *recipe.Recipe) {
			r.ToolchainFile = &recipe.File{Path: "rust-toolchain.toml", Contents: "[toolchain]\n"}
		}},
		{"an absolute host root", "sha256:b1", func(r *recipe.Recipe) { r.HostRoot = "/home/u/proj" }},
	}
	seen := map[string]string{k0: "base"}
	for _, c := range other {
		r := base()
		c.edit(r)
		k := cookKey(r, c.builder)
		if prev, ok := seen[k]; ok {
			t.Errorf("%s: key %s, the same as %s's", c.name, k, prev)
		}
		seen[k] = c.name
	}
}

// TestSeedOf: the cook step's line naming its seed.
func TestSeedOf(t *testing.T) {
	for _, c := range []struct {
		lines []string
		want  string
	}{
		{[]string{"chefd-step: x", cookSeedLine + "7dad3c0b931a6e0c"}, "7dad3c0b931a6e0c"},
		{[]string{"  " + cookSeedLine + "interrupted  "}, "interrupted"},
		{[]string{cookColdLine}, ""},
		{[]string{"Compiling serde v1.0.0", "chefd: cook seeded from a b"}, ""},
		{nil, ""},
	} {
		if got := seedOf(c.lines); got != c.want {
			t.Errorf("seedOf(%q) = %q, want %q", c.lines, got, c.want)
		}
	}
}

// TestCookScriptKeepsOnlyThirdParty: the cook step's selection reads
// cargo's units (path+file ones are local) and names the cooked image's
// output directory.
func TestCookScriptKeepsOnlyThirdParty(t *testing.T) {
	r := &recipe.Recipe{Hash: hashOf('c'), WorkspaceDir: ".", Intent: recipe.Intent{Profile: "release"},
		Manifests: []recipe.Manifest{{Path: "Cargo.toml", Package: "app"}}}
	s := cookScript(r, r.ShortHash(), true, nil)
	for _, want := range []string{"--message-format=json-render-diagnostics", `path\+file:`, cookedOut, "wipe\n", cookSeedLine, cookColdLine} {
		if !strings.Contains(s, want) {
			t.Errorf("the cook script lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(cookScript(r, r.ShortHash(), false, nil), "\nwipe\n") {
		t.Error("the cook script empties the cache without --no-cache")
	}
}

// TestMountVendor: the cook bind-mounts vendored sources only where the
// mounts cannot hide each other, the skeleton or the target directory;
// the Dockerfile mounts each at its own path.
func TestMountVendor(t *testing.T) {
	for _, c := range []struct {
		ws     string
		vendor []string
		want   bool
	}{
		{".", nil, true},
		{".", []string{"vendor"}, true},
		{"rust", []string{"rust/vendor", "third_party/crates"}, true},
		{".", []string{"."}, false},
		{".", []string{"../elsewhere"}, false},
		{".", []string{"target/vendor"}, false},
		{"rust", []string{"rust/target/v"}, false},
		{".", []string{"vendor", "vendor/more"}, false},
	} {
		r := &recipe.Recipe{Hash: hashOf('v'), WorkspaceDir: c.ws, VendorDirs: c.vendor, Intent: recipe.Intent{Profile: "release"}}
		if got := mountVendor(r); got != c.want {
			t.Errorf("mountVendor(workspace %q, vendor %q) = %v, want %v", c.ws, c.vendor, got, c.want)
		}
		df := cookDockerfile(r, "chefd-cook-test", nil)
		for _, v := range c.vendor {
			mount := "--mount=type=bind,source=vendor/" + v + ",target=/src/" + v + " "
			if strings.Contains(df, mount) != c.want {
				t.Errorf("workspace %q, vendor %q: mount %q in the Dockerfile: %v, want %v\n%s", c.ws, c.vendor, mount, !c.want, c.want, df)
			}
		}
	}
}

// TestCodeScriptModes: only a loop-mode code step turns incremental
// compilation on, and each mode has a target cache of its own.
func TestCodeScriptModes(t *testing.T) {
	r := &recipe.Recipe{Hash: hashOf('m'), WorkspaceDir: ".", Intent: recipe.Intent{Profile: "release"}}
	if s := codeScript(r, []string{"app"}, false, ModeLoop, false); !strings.Contains(s, "export CARGO_INCREMENTAL=1\n") {
		t.Errorf("loop mode without incremental compilation:\n%s", s)
	}
	if s := codeScript(r, []string{"app"}, false, ModeExact, false); strings.Contains(s, "CARGO_INCREMENTAL=1") {
		t.Errorf("exact mode with incremental compilation:\n%s", s)
	}
	if !strings.Contains(envLines(r), "CARGO_INCREMENTAL=0") {
		t.Errorf("the cook and exact builds must not compile incrementally:\n%s", envLines(r))
	}
	loop, exact := targetCacheID("/w", "0123456789abcdef", ModeLoop), targetCacheID("/w", "0123456789abcdef", ModeExact)
	if loop == exact || !strings.HasPrefix(loop, exact) {
		t.Errorf("target caches: loop %q, exact %q: want two, the loop one named after the exact one", loop, exact)
	}
}
