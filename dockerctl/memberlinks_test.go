package dockerctl

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chefd/chefd/recipe"
)

// symlinkWorkspace is a workspace whose member "linked" is a symlink to a
// directory inside the root and whose member "far" is a symlink to one
// outside it (cargo builds both through their links), with symlink loops
// in a member's src/.
func symlinkWorkspace(t *testing.T) (root string) {
	t.Helper()
	top := t.TempDir()
	root = filepath.Join(top, "ws")
	write(t, root, map[string]string{
		"Cargo.toml":              "[workspace]\nmembers = [\"app\", \"linked\", \"far\"]\nresolver = \"2\"\n",
		"app/Cargo.toml":          "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nlk = { path = \"../linked\" }\nfar = { path = \"../far\" }\n",
		"app/src/main.rs":         "fn main() { println!(\"{} {}\", lk::f(), far::g()); }\n",
		"elsewhere/lk/Cargo.toml": "[package]\nname = \"lk\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
		"elsewhere/lk/src/lib.rs": "pub fn f() -> u32 { 1 }\n",
		"elsewhere/lk/notes.log":  "dockerignored in the workspace",
		".dockerignore":           "**/*.log\n",
	})
	write(t, top, map[string]string{
		"shared/far/Cargo.toml":       "[package]\nname = \"far\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
		"shared/far/src/lib.rs":       "pub fn g() -> u32 { 2 }\n",
		"shared/far/target/debug/big": "its build directory",
	})
	for link, to := range map[string]string{
		"linked":           "elsewhere/lk",
		"far":              "../shared/far",
		"app/src/loop":     "loop",
		"app/src/a":        "b",
		"app/src/b":        "a",
		"app/src/up":       "..",
		"app/src/dangling": "nowhere",
	} {
		if err := os.Symlink(to, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestSymlinkedMemberIsShipped: a member crate whose directory is a
// symlink (inside or outside the workspace) is shipped as the directory
// cargo reads, at the member's path, with the rules that apply there;
// every other symlink, loops included, ships as a symlink.
func TestSymlinkedMemberIsShipped(t *testing.T) {
	root := symlinkWorkspace(t)
	r, err := recipe.Compute(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	b := &WorkspaceBuilder{root: root}
	files, err := b.contextFiles(r)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ctxFile{}
	for _, f := range files {
		got[f.rel] = f
	}
	pre := r.WorkspaceDir + "/"
	if r.WorkspaceDir == "." {
		pre = ""
	}
	for _, rel := range []string{"linked/Cargo.toml", "linked/src/lib.rs", "far/Cargo.toml", "far/src/lib.rs"} {
		f, ok := got[pre+rel]
		if !ok || f.link != "" || !f.mode.IsRegular() {
			t.Errorf("%s: not shipped as the member's file (%+v)", rel, f)
		}
	}
	for _, rel := range []string{"linked", "far"} {
		if _, ok := got[pre+rel]; ok {
			t.Errorf("%s: the member's directory ships as a symlink", rel)
		}
	}
	for _, rel := range []string{"linked/notes.log", "far/target/debug/big"} {
		if _, ok := got[pre+rel]; ok {
			t.Errorf("%s: shipped, but the rules leave it out", rel)
		}
	}
	for _, rel := range []string{"app/src/loop", "app/src/a", "app/src/b", "app/src/up", "app/src/dangling"} {
		if f, ok := got[pre+rel]; !ok || f.link == "" {
			t.Errorf("%s: not shipped as a symlink (%+v)", rel, f)
		}
	}
	if t.Failed() {
		var names []string
		for rel := range got {
			names = append(names, rel)
		}
		slices.Sort(names)
		t.Logf("context root %s, workspace dir %s, shipped %q", r.ContextRoot, r.WorkspaceDir, names)
	}
}

// TestSymlinkedMemberBuilds builds the workspace on the engine: cargo
// builds the symlinked members, and the symlink loops in src/ are no
// obstacle.
func TestSymlinkedMemberBuilds(t *testing.T) {
	e := engine(t)
	needBuilder(t, e)
	root := symlinkWorkspace(t)
	r, err := recipe.Compute(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Settings{Image: "chefd-test-symlinks", Tag: "t", BuilderImage: testBuilder, RuntimeImage: testBuilder}
	b := NewWorkspaceBuilder(e, root, cfg, WithStateDir(t.TempDir()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := b.Build(ctx, r, ModeExact, nil)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if len(res.Compiled.Names) < 3 {
		t.Errorf("compiled %q, want app, lk and far", res.Compiled.Names)
	}
}

// TestStampSymlinkLoops runs stamp.sh on sources holding symlink loops: a
// link is stamped itself (never followed), and a path that a loop makes
// unreachable is left alone instead of failing the build.
func TestStampSymlinkLoops(t *testing.T) {
	for _, tool := range []string{"sh", "awk", "xargs", "touch", "date"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run stamp.sh on the host: %v", tool, err)
		}
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	write(t, src, map[string]string{"app/src/main.rs": "fn main() {}\n"})
	for link, to := range map[string]string{
		"app/src/loop": "loop", "app/src/a": "b", "app/src/b": "a", "app/src/up": "..",
		"app/src/abs": "/src/app/src/abs", "app/src/loopdir": "loopdir",
	} {
		if err := os.Symlink(to, filepath.Join(src, link)); err != nil {
			t.Fatal(err)
		}
	}
	paths := []string{"app/src/main.rs", "app/src/loop", "app/src/a", "app/src/b", "app/src/up", "app/src/abs",
		"app/src/loopdir/x.rs"} // below a loop: cannot be reached
	var list strings.Builder
	list.WriteString("chefd-sources 1 key\n")
	for _, p := range paths {
		list.WriteString(strings.Repeat("0", 32) + " " + p + "\n")
	}
	old := []unix.Timeval{unix.NsecToTimeval(stableTime.UnixNano()), unix.NsecToTimeval(stableTime.UnixNano())}
	for _, p := range paths[:6] {
		if err := unix.Lutimes(filepath.Join(src, p), old); err != nil {
			t.Fatal(err)
		}
	}
	listFile := filepath.Join(dir, "sources")
	if err := os.WriteFile(listFile, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "stamp.sh")
	if err := os.WriteFile(script, []byte(stampScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", script, "begin")
	cmd.Env = append(os.Environ(), "CHEFD_SRC="+src, "CHEFD_TARGET="+filepath.Join(dir, "target"), "CHEFD_LIST="+listFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("stamp.sh begin: %v\n%s", err, out)
	}
	recent := time.Now().Add(-time.Hour)
	for _, p := range paths[:6] {
		st, err := os.Lstat(filepath.Join(src, p))
		if err != nil {
			t.Fatal(err)
		}
		if mt := st.ModTime(); mt.Before(recent) {
			t.Errorf("%s: not stamped (mtime %v)", p, mt)
		}
	}
	if !strings.Contains(string(out), "app/src/loopdir/x.rs cannot be reached") {
		t.Errorf("no word about the unreachable path:\n%s", out)
	}
}
