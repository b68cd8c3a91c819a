package recipe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// edit rewrites a file of the workspace copy.
type edit func(t *testing.T, dir string)

func replaceIn(file, old, new string) edit {
	return func(t *testing.T, dir string) {
		t.Helper()
		p := filepath.Join(dir, file)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), old) {
			t.Fatalf("%s does not contain %q", file, old)
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func appendTo(file, text string) edit {
	return func(t *testing.T, dir string) {
		t.Helper()
		p := filepath.Join(dir, file)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, append(b, []byte(text)...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(file, text string) edit {
	return func(t *testing.T, dir string) {
		t.Helper()
		p := filepath.Join(dir, file)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func touch(file string) edit {
	return func(t *testing.T, dir string) {
		t.Helper()
		future := time.Now().Add(time.Hour)
		if err := os.Chtimes(filepath.Join(dir, file), future, future); err != nil {
			t.Fatal(err)
		}
	}
}

func both(edits ...edit) edit {
	return func(t *testing.T, dir string) {
		for _, e := range edits {
			e(t, dir)
		}
	}
}

func hashOf(t *testing.T, dir string, intent Intent) string {
	t.Helper()
	r, err := Compute(context.Background(), dir, WithIntent(intent))
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	return r.Hash
}

type hashCase struct {
	name    string
	intent  Intent // intent for both computations
	after   *Intent
	edit    edit
	changed bool
}

// hashCases lists what must and must not change the recipe hash.
func hashCases() []hashCase {
	appOnly := Intent{Bins: []string{"app"}}
	return []hashCase{
		// --- must not change ---
		{name: "rs edit", edit: replaceIn("app/src/main.rs", "hello", "bonjour")},
		{name: "new module file", edit: writeFile("app/src/util.rs", "pub fn x() {}\n")},
		{name: "build.rs body edit", edit: replaceIn("lib/build.rs", "build.rs", "src/x.txt")},
		{name: "touch sources and manifests", edit: both(touch("app/src/main.rs"), touch("app/Cargo.toml"), touch("Cargo.lock"))},
		{name: "comments and formatting", edit: both(
			replaceIn("app/Cargo.toml", "[dependencies]\n", "# deps follow\n[dependencies]   # trailing\n\n"),
			replaceIn("Cargo.toml", `members = ["app", "lib", "tool"]`, "members = [\n  \"app\",\n  \"lib\",\n  \"tool\", # the tool\n]"),
			replaceIn("lib/Cargo.toml", "serde = { workspace = true }", "[dependencies.serde]\nworkspace = true"))},
		{name: "key order", edit: replaceIn("tool/Cargo.toml", "name = \"tool\"\nversion = \"0.3.0\"", "version = \"0.3.0\"\nname = \"tool\"")},
		{name: "package version bump", edit: both(
			replaceIn("tool/Cargo.toml", `version = "0.3.0"`, `version = "0.4.0"`),
			replaceIn("Cargo.lock", "name = \"tool\"\nversion = \"0.3.0\"", "name = \"tool\"\nversion = \"0.4.0\""))},
		{name: "workspace.package version bump", edit: both(
			replaceIn("Cargo.toml", `version = "1.0.0"`, `version = "1.1.0"`),
			replaceIn("Cargo.lock", "name = \"app\"\nversion = \"1.0.0\"", "name = \"app\"\nversion = \"1.1.0\""))},
		{name: "path requirement bump", edit: both(
			replaceIn("lib/Cargo.toml", `version = "1.0.0"`, `version = "2.0.0"`),
			replaceIn("Cargo.toml", `mylib = { path = "lib", version = "1.0.0" }`, `mylib = { path = "lib", version = "2.0.0" }`),
			replaceIn("Cargo.lock", "name = \"mylib\"\nversion = \"1.0.0\"", "name = \"mylib\"\nversion = \"2.0.0\""))},
		{name: "lockfile local version", edit: replaceIn("Cargo.lock", "name = \"app\"\nversion = \"1.0.0\"", "name = \"app\"\nversion = \"1.0.7\"")},
		{name: "lints edit", edit: both(
			replaceIn("Cargo.toml", `unsafe_code = "forbid"`, `unsafe_code = "deny"`+"\nmissing_docs = \"warn\""),
			appendTo("tool/Cargo.toml", "\n[lints.clippy]\npedantic = \"warn\"\n"))},
		{name: "package metadata edit", edit: both(
			replaceIn("app/Cargo.toml", `description = "the app"`, `description = "the best app"`),
			appendTo("tool/Cargo.toml", "\n[package.metadata.deb]\nmaintainer = \"me\"\n"))},
		{name: "with --bin: unrelated member gets a dependency", intent: appOnly,
			edit: replaceIn("tool/Cargo.toml", `regex = "1"`, `regex = "1"`+"\nryu = \"1\"")},
		{name: "with --bin: unrelated member gets a target", intent: appOnly,
			edit: writeFile("tool/src/bin/extra.rs", "fn main() {}\n")},
		{name: "with --bin: unrelated lockfile entry", intent: appOnly,
			edit: replaceIn("Cargo.lock", "name = \"regex\"\nversion = \"1.10.5\"", "name = \"regex\"\nversion = \"1.10.6\"")},

		// --- must change ---
		{name: "add dependency", edit: replaceIn("app/Cargo.toml", `anyhow = "1"`, "anyhow = \"1\"\nryu = \"1\""), changed: true},
		{name: "remove dependency", edit: replaceIn("app/Cargo.toml", "anyhow = \"1\"\n", ""), changed: true},
		{name: "change dependency requirement", edit: replaceIn("app/Cargo.toml", `anyhow = "1"`, `anyhow = "1.0.80"`), changed: true},
		{name: "add dev-dependency", edit: replaceIn("app/Cargo.toml", `itoa = "1"`, "itoa = \"1\"\nryu = \"1\""), changed: true},
		{name: "add build-dependency", edit: replaceIn("lib/Cargo.toml", `cc = "1"`, "cc = \"1\"\npkg-config = \"0.3\""), changed: true},
		{name: "add target dependency", edit: replaceIn("app/Cargo.toml", `libc = "0.2"`, "libc = \"0.2\"\nnix = \"0.29\""), changed: true},
		{name: "add workspace dependency", edit: replaceIn("Cargo.toml", `serde = { version = "1", features = ["derive"] }`,
			"serde = { version = \"1\", features = [\"derive\"] }\nryu = \"1\""), changed: true},
		{name: "dependency feature", edit: replaceIn("Cargo.toml", `features = ["derive"]`, `features = ["derive", "rc"]`), changed: true},
		{name: "features table", edit: appendTo("tool/Cargo.toml", "\n[features]\nfast = []\n"), changed: true},
		{name: "lockfile external version", edit: replaceIn("Cargo.lock", "name = \"serde\"\nversion = \"1.0.203\"", "name = \"serde\"\nversion = \"1.0.204\""), changed: true},
		{name: "new bin file", edit: writeFile("app/src/bin/x.rs", "fn main() {}\n"), changed: true},
		{name: "new test file", edit: writeFile("app/tests/y.rs", ""), changed: true},
		{name: "new example file", edit: writeFile("app/examples/z.rs", "fn main() {}\n"), changed: true},
		{name: "new bench dir target", edit: writeFile("lib/benches/b/main.rs", "fn main() {}\n"), changed: true},
		{name: "new build.rs", edit: writeFile("app/build.rs", "fn main() {}\n"), changed: true},
		{name: "new member", edit: both(replaceIn("Cargo.toml", `"tool"]`, `"tool", "extra"]`),
			writeFile("extra/Cargo.toml", "[package]\nname = \"extra\"\nversion = \"0.1.0\"\n"), writeFile("extra/src/lib.rs", "")), changed: true},
		{name: "toolchain edit", edit: replaceIn("rust-toolchain.toml", "stable", "1.80.0"), changed: true},
		{name: "cargo config edit", edit: replaceIn(".cargo/config.toml", "false", "true"), changed: true},
		{name: "profile edit", edit: replaceIn("Cargo.toml", "lto = false", "lto = true"), changed: true},
		{name: "with --bin: closure member gets a dependency", intent: appOnly,
			edit: replaceIn("lib/Cargo.toml", `cc = "1"`, "cc = \"1\"\nryu = \"1\""), changed: true},
		{name: "intent: profile", after: &Intent{Profile: "dev"}, changed: true},
		{name: "intent: features", after: &Intent{Features: []string{"x"}}, changed: true},
		{name: "intent: no-default-features", after: &Intent{NoDefaultFeatures: true}, changed: true},
		{name: "intent: target", after: &Intent{Target: "x86_64-unknown-linux-gnu"}, changed: true},
		{name: "intent: rustflags", after: &Intent{RustFlags: "-C target-cpu=native"}, changed: true},
		{name: "intent: bins", after: &Intent{Bins: []string{"tool"}}, changed: true},
	}
}

// TestHashTable checks every case of hashCases.
func TestHashTable(t *testing.T) {
	base := Intent{}
	for _, tc := range hashCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			copyTree(t, "testdata/hashbase", dir)
			intent := base
			if tc.intent.Bins != nil {
				intent = tc.intent
			}
			before := hashOf(t, dir, intent)
			if tc.edit != nil {
				tc.edit(t, dir)
			}
			afterIntent := intent
			if tc.after != nil {
				afterIntent = *tc.after
			}
			after := hashOf(t, dir, afterIntent)
			if (before != after) != tc.changed {
				t.Errorf("hash changed = %v, want %v", before != after, tc.changed)
			}
		})
	}
}

// TestHashDeterministic computes the same recipe many times.
func TestHashDeterministic(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "testdata/hashbase", dir)
	first := hashOf(t, dir, Intent{})
	for i := 0; i < 20; i++ {
		if h := hashOf(t, dir, Intent{Features: []string{"b", "a", "a"}}); h == first {
			t.Fatal("features must change the hash")
		}
		if h := hashOf(t, dir, Intent{}); h != first {
			t.Fatalf("run %d: hash %s != %s", i, h, first)
		}
	}
	a := hashOf(t, dir, Intent{Features: []string{"b", "a"}})
	b := hashOf(t, dir, Intent{Features: []string{"a,b"}})
	if a != b {
		t.Fatal("feature order and spelling must not matter")
	}
}

// TestHashIsSHA256OfJSON: the streaming hash equals the sha256 of the
// recipe's JSON (hash field empty) plus a newline, for every fixture.
func TestHashIsSHA256OfJSON(t *testing.T) {
	for _, name := range fixtureNames(t) {
		src := t.TempDir()
		copyTree(t, filepath.Join("testdata/fixtures", name), src)
		r, err := Compute(context.Background(), fixtureRoot(src))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c := *r
		c.Hash = ""
		b, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(append(b, '\n'))
		if want := hex.EncodeToString(sum[:]); r.Hash != want {
			t.Errorf("%s: hash %s, sha256 of the JSON %s", name, r.Hash, want)
		}
	}
}
