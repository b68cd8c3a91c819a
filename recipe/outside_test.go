package recipe

import (
	"slices"
	"testing"
)

func TestOutsideDirs(t *testing.T) {
	m := func(p string) Manifest { return Manifest{Path: p} }
	r := &Recipe{WorkspaceDir: "ws", Manifests: []Manifest{
		m("ws/Cargo.toml"), m("ws/crates/a/Cargo.toml"), m("shared/Cargo.toml"),
		m("shared/inner/Cargo.toml"), m("libs/b/Cargo.toml"), m("wsx/Cargo.toml"),
	}}
	if got, want := r.OutsideDirs(), []string{"libs/b", "shared", "wsx"}; !slices.Equal(got, want) {
		t.Fatalf("OutsideDirs = %q, want %q (a crate inside another listed once; wsx is not under ws)", got, want)
	}
	if got := (&Recipe{WorkspaceDir: ".", Manifests: []Manifest{m("Cargo.toml")}}).OutsideDirs(); len(got) != 0 {
		t.Fatalf("a workspace at the context root has nothing outside: %q", got)
	}
}
