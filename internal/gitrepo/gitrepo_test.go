package gitrepo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestFind: the repository and commit git itself reports, for a plain
// repository, a workspace in a subdirectory, a worktree, packed refs and
// a detached HEAD.
func TestFind(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("git is needed under CI")
		}
		t.Skip("no git")
	}
	base := t.TempDir()
	main := filepath.Join(base, "main")
	os.MkdirAll(filepath.Join(main, "rust", "ws"), 0o755)
	git(t, main, "init", "-q")
	os.WriteFile(filepath.Join(main, "rust", "ws", "Cargo.toml"), []byte("[workspace]\n"), 0o644)
	git(t, main, "add", "-A")
	git(t, main, "commit", "-qm", "one")
	wt := filepath.Join(base, "wt")
	git(t, main, "worktree", "add", "-q", "-b", "side", wt)
	os.WriteFile(filepath.Join(wt, "x"), []byte("x"), 0o644)
	git(t, wt, "add", "x")
	git(t, wt, "commit", "-qm", "two")
	packed := filepath.Join(base, "packed")
	git(t, base, "clone", "-q", main, packed)
	git(t, packed, "pack-refs", "--all")
	detached := filepath.Join(base, "detached")
	git(t, base, "clone", "-q", main, detached)
	git(t, detached, "checkout", "-q", "--detach")

	for _, dir := range []string{main, filepath.Join(main, "rust", "ws"), wt, packed, detached} {
		r, ok := Find(dir)
		if !ok {
			t.Errorf("%s: no repository found", dir)
			continue
		}
		if want := git(t, dir, "rev-parse", "--absolute-git-dir"); r.Dir != want {
			t.Errorf("%s: git dir %s, want %s", dir, r.Dir, want)
		}
		if want := git(t, dir, "rev-parse", "HEAD"); r.Head() != want {
			t.Errorf("%s: HEAD %q, want %s", dir, r.Head(), want)
		}
	}
	if _, ok := Find(t.TempDir()); ok {
		t.Error("a repository found where there is none")
	}
	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, ".git"), []byte("gitdir: nowhere\n"), 0o644)
	if _, ok := Find(broken); ok {
		t.Error("a .git file pointing nowhere counts as a repository")
	}
}
