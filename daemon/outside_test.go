package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/chefd/chefd/recipe"
)

// TestWatchedOutside: the watcher is pointed at the path crates outside
// the workspace and at what a symlinked member directory points to
// outside it; a link that stays inside the root needs nothing more.
func TestWatchedOutside(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(base, "ws")
	for _, d := range []string{"ws/crates/real", "far/app", "shared"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../../far/app", filepath.Join(ws, "crates/app")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(ws, "crates/inside")); err != nil {
		t.Fatal(err)
	}
	r := &recipe.Recipe{Root: ws, ContextRoot: base, WorkspaceDir: "ws", Manifests: []recipe.Manifest{
		{Path: "ws/Cargo.toml"}, {Path: "ws/crates/app/Cargo.toml"}, {Path: "ws/crates/inside/Cargo.toml"},
		{Path: "shared/Cargo.toml"},
	}}
	got := watchedOutside(r)
	want := []string{filepath.Join(base, "shared"), filepath.Join(base, "far/app")}
	if !slices.Equal(got, want) {
		t.Fatalf("watched outside: %q, want %q", got, want)
	}
}
