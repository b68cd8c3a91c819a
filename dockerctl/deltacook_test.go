package dockerctl

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	s := cookScript(r, r.ShortHash(), true, nil, nil, false)
	for _, want := range []string{"--message-format=json-render-diagnostics", `path\+file:`, cookedOut, "wipe\n", cookSeedLine, cookColdLine} {
		if !strings.Contains(s, want) {
			t.Errorf("the cook script lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(cookScript(r, r.ShortHash(), false, nil, nil, false), "\nwipe\n") {
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
		df := cookDockerfile(r, "chefd-cook-test", nil, nil, false)
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

// TestCookPrepareSeed runs the cook step's preparation in a shell: an
// empty cache takes the seed image's files with their mtimes and names
// the seed's recipe; a seed without its vendored crates' digests has
// every vendored crate cleaned; a cache that holds anything is left alone.
func TestCookPrepareSeed(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	r := &recipe.Recipe{Hash: hashOf('s'), WorkspaceDir: ".", Intent: recipe.Intent{Profile: "release"},
		VendorSums: []recipe.File{{Path: "vendor/tiny/.cargo-checksum.json", Contents: "d1"}}}
	seed := &cookSeed{Ref: "reg.test/x-cooked:seed-0123456789abcdef", Hash: "7dad3c0b931a6e0c"}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		name        string
		cache       map[string]string // the cache's files before
		record      bool              // the seed has its vendor record
		wantSeeded  bool
		wantCleaned bool
	}{
		{name: "empty cache, seed with record", record: true, wantSeeded: true},
		{name: "empty cache, seed without record", wantSeeded: true, wantCleaned: true},
		{name: "warm cache", cache: map[string]string{".chefd-cook-recipe": "aaaaaaaaaaaaaaaa\n", "release/deps/libx-0123456789abcdef.rlib": "x"}, record: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			seedDir, step, target := filepath.Join(root, "seed"), filepath.Join(root, "step"), filepath.Join(root, "ws", "target")
			files := map[string]string{
				seedDir + "/release/deps/libserde-0123456789abcdef.rlib":           "rlib",
				seedDir + "/release/.fingerprint/serde-0123456789abcdef/lib-serde": "fp",
				step + "/vendor.sums":               "d1 " + root + "/ws/vendor/tiny\n",
				root + "/ws/vendor/tiny/Cargo.toml": "[package]\nname = \"tiny\"\n",
			}
			if c.record {
				files[seedDir+"/"+cookVendorRecord] = "d1 " + root + "/ws/vendor/tiny\n"
			}
			for f, data := range c.cache {
				files[filepath.Join(target, f)] = data
			}
			for f, data := range files {
				if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(f, old, old); err != nil {
					t.Fatal(err)
				}
			}
			script := cookPrepare(r, false, seed)
			script = strings.NewReplacer(seedMount, seedDir, stepDir, step,
				"cargo clean", "echo CLEANED").Replace(script)
			cmd := exec.Command("sh", "-ec", script)
			cmd.Dir = filepath.Join(root, "ws")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s\n%s", err, out, script)
			}
			rlib := filepath.Join(target, "release/deps/libserde-0123456789abcdef.rlib")
			st, statErr := os.Stat(rlib)
			if c.wantSeeded {
				if statErr != nil || !st.ModTime().Equal(old) {
					t.Errorf("the seed's artifact is not in the cache with its mtime: %v %v", st, statErr)
				}
				if got := seedOf(strings.Split(string(out), "\n")); got != seed.Hash {
					t.Errorf("seed %q, want %q\n%s", got, seed.Hash, out)
				}
				if !strings.Contains(string(out), seedFilled) {
					t.Errorf("no line %q:\n%s", seedFilled, out)
				}
			} else {
				if statErr == nil {
					t.Errorf("a warm cache took the seed's files")
				}
				if got := seedOf(strings.Split(string(out), "\n")); got != "aaaaaaaaaaaaaaaa" {
					t.Errorf("seed %q, want the cache's own recipe\n%s", got, out)
				}
			}
			if cleaned := strings.Contains(string(out), "CLEANED"); cleaned != c.wantCleaned {
				t.Errorf("vendored crates cleaned: %v, want %v\n%s", cleaned, c.wantCleaned, out)
			}
		})
	}
}

// TestCookPrepareAsksForSeed: asked to, the step stops before anything
// else when its cache is empty, and goes on when it holds anything.
func TestCookPrepareAsksForSeed(t *testing.T) {
	r := &recipe.Recipe{Hash: hashOf('s'), WorkspaceDir: ".", Intent: recipe.Intent{Profile: "release"}}
	for _, warm := range []bool{false, true} {
		root := t.TempDir()
		if warm {
			if err := os.MkdirAll(filepath.Join(root, "target", "release"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		script := strings.NewReplacer(stepDir, root).Replace(cookPrepare(r, false, &cookSeed{Ask: true}))
		if err := os.WriteFile(filepath.Join(root, "vendor.sums"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-ec", script)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		asked := strings.Contains(string(out), seedWanted)
		if warm == asked || warm != (err == nil) {
			t.Errorf("warm cache %v: asked %v, error %v\n%s", warm, asked, err, out)
		}
		if _, err := os.Stat(filepath.Join(root, "target", ".chefd-cook-running")); (err == nil) != warm {
			t.Errorf("warm cache %v: the step went on: %v", warm, err == nil)
		}
	}
}

// TestCookDockerfileSeed: with a seed, the Dockerfile declares every ARG
// a FROM line uses before the first FROM (BuildKit's rule) and mounts the
// seed's target directory for the step; asking for a seed changes nothing.
func TestCookDockerfileSeed(t *testing.T) {
	r := &recipe.Recipe{Hash: hashOf('d'), WorkspaceDir: ".", Intent: recipe.Intent{Profile: "release"}}
	df := cookDockerfile(r, "chefd-cook-test", nil, &cookSeed{Ref: "reg/x-cooked:seed-0123456789abcdef", Hash: "0123456789abcdef"}, false)
	first := strings.Index(df, "\nFROM ")
	for _, arg := range []string{"ARG BUILDER\n", "ARG SEED\n"} {
		if i := strings.Index(df, arg); i < 0 || i > first {
			t.Errorf("%q is not before the first FROM:\n%s", arg, df)
		}
	}
	if !strings.Contains(df, "--mount=type=bind,from=seed,source=/src/target,target="+seedMount+" ") {
		t.Errorf("no mount of the seed:\n%s", df)
	}
	if plain := cookDockerfile(r, "chefd-cook-test", nil, nil, false); cookDockerfile(r, "chefd-cook-test", nil, &cookSeed{Ask: true}, false) != plain {
		t.Error("asking for a seed changed the Dockerfile")
	}
}
