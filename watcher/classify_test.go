package watcher

import "testing"

func TestClassify(t *testing.T) {
	tests := []struct {
		rel              string
		created, removed bool
		want             Class
	}{
		// Manifests and toolchain files, at any depth, any change.
		{"Cargo.toml", false, false, ClassRecipe},
		{"Cargo.lock", false, false, ClassRecipe},
		{"crates/api/Cargo.toml", false, false, ClassRecipe},
		{"crates/api/Cargo.toml", true, false, ClassRecipe},
		{"crates/api/Cargo.toml", false, true, ClassRecipe},
		{"rust-toolchain", false, false, ClassRecipe},
		{"rust-toolchain.toml", false, false, ClassRecipe},
		{"crates/x/rust-toolchain.toml", false, false, ClassRecipe},
		{".cargo/config", false, false, ClassRecipe},
		{".cargo/config.toml", false, false, ClassRecipe},
		{"crates/x/.cargo/config.toml", false, false, ClassRecipe},
		{"config.toml", false, false, ClassCode},
		{"src/config.toml", false, false, ClassCode},
		{"chefd.toml", false, false, ClassRecipe},
		{"examples/chefd.toml", false, false, ClassCode},
		{"./Cargo.toml", false, false, ClassRecipe},

		// Target files and build scripts: recipe when created or removed.
		{"build.rs", true, false, ClassRecipe},
		{"build.rs", false, true, ClassRecipe},
		{"build.rs", false, false, ClassCode},
		{"crates/sys/build.rs", true, false, ClassRecipe},
		{"src/main.rs", true, false, ClassRecipe},
		{"src/main.rs", false, false, ClassCode},
		{"src/lib.rs", false, true, ClassRecipe},
		{"crates/core/src/lib.rs", true, false, ClassRecipe},
		{"src/bin/new.rs", true, false, ClassRecipe},
		{"src/bin/new.rs", false, false, ClassCode},
		{"crates/app/src/bin/x.rs", true, false, ClassRecipe},
		{"crates/app/src/bin/x.rs", false, true, ClassRecipe},
		{"src/bin/tool/main.rs", true, false, ClassRecipe},
		{"src/bin/tool/helper.rs", true, false, ClassCode},
		{"examples/demo.rs", true, false, ClassRecipe},
		{"examples/demo/main.rs", true, false, ClassRecipe},
		{"examples/demo/util.rs", true, false, ClassCode},
		{"tests/it.rs", true, false, ClassRecipe},
		{"tests/it/main.rs", false, true, ClassRecipe},
		{"tests/common/mod.rs", true, false, ClassCode},
		{"crates/a/benches/b.rs", true, false, ClassRecipe},
		{"benches/b/main.rs", true, false, ClassRecipe},
		{"src/util.rs", true, false, ClassCode},
		{"src/bin/notes.txt", true, false, ClassCode},
		{"main.rs", true, false, ClassCode},
		{"lib.rs", true, false, ClassCode},
		{"src/main.rs.bak", true, false, ClassCode},

		// Everything else.
		{"README.md", false, false, ClassCode},
		{"src/api/handlers.rs", false, false, ClassCode},
		{"Dockerfile", false, false, ClassCode},
		{".gitignore", false, false, ClassCode},
		{"targets/x.rs", false, false, ClassCode},
		{"crates/target/x.rs", false, false, ClassCode}, // only the root target/ is known here

		// Built-in ignores.
		{"target/debug/app", false, false, ClassIgnored},
		{"target", false, false, ClassIgnored},
		{".git/index", false, false, ClassIgnored},
		{"vendor/x/.git/HEAD", false, false, ClassIgnored},
		{".chefd/state.json", false, false, ClassIgnored},
		{".idea/workspace.xml", false, false, ClassIgnored},
		{"src/4913", true, false, ClassIgnored},
		{"src/main.rs~", true, false, ClassIgnored},
		{"src/.main.rs.swp", true, false, ClassIgnored},
		{"src/.main.rs.swx", true, false, ClassIgnored},
		{"Cargo.toml~", false, false, ClassIgnored},
		{"src/.#lib.rs", true, false, ClassIgnored},
		{"src/#lib.rs#", true, false, ClassIgnored},
		{"src/x.rs___jb_tmp___", true, false, ClassIgnored},
		{"src/x.rs___jb_old___", true, false, ClassIgnored},
		{"src/.x.rs.kate-swp", true, false, ClassIgnored},
		{".DS_Store", true, false, ClassIgnored},
		{"src/foo-go-tmp-umask", true, false, ClassIgnored},
		{"", false, false, ClassIgnored},
		{".", false, false, ClassIgnored},
	}
	for _, tt := range tests {
		if got := Classify(tt.rel, tt.created, tt.removed); got != tt.want {
			t.Errorf("Classify(%q, created=%v, removed=%v) = %v, want %v", tt.rel, tt.created, tt.removed, got, tt.want)
		}
	}
}

func TestKindString(t *testing.T) {
	if KindCode.String() != "code" || KindRecipe.String() != "recipe" || Kind(7).String() != "Kind(7)" {
		t.Fatalf("Kind.String: %v %v %v", KindCode, KindRecipe, Kind(7))
	}
	if ClassIgnored.String() != "ignored" || ClassCode.String() != "code" || ClassRecipe.String() != "recipe" {
		t.Fatalf("Class.String: %v %v %v", ClassIgnored, ClassCode, ClassRecipe)
	}
}
