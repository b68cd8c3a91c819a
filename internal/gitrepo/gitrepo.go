// Package gitrepo finds the git repository a workspace lives in and reads
// its HEAD commit: a repository's own .git directory, or the directory a
// .git file points to (a worktree, a submodule), at the workspace root or
// in a directory above it (a workspace in a monorepo). The watcher (git in
// the middle of an operation) and the image labels (the commit) both use
// it, so they cannot disagree about which repository that is.
package gitrepo

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// Repo is a work tree's git directories.
type Repo struct {
	// Dir is the work tree's own git directory: HEAD, index, index.lock,
	// MERGE_HEAD, rebase-merge...
	Dir string
	// Common is the directory its worktrees share: refs, packed-refs
	// (Dir itself outside a worktree).
	Common string
}

// Find looks for .git in root, then in each directory above it, the way
// git does. ok is false when there is none, or it points nowhere.
func Find(root string) (r Repo, ok bool) {
	for dir := filepath.Clean(root); ; {
		dotgit := filepath.Join(dir, ".git")
		if fi, err := os.Lstat(dotgit); err == nil {
			return open(dir, dotgit, fi)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return Repo{}, false
		}
		dir = parent
	}
}

func open(top, dotgit string, fi os.FileInfo) (Repo, bool) {
	dir := dotgit
	switch {
	case fi.Mode().IsRegular(): // "gitdir: <path>", relative to the work tree
		data, err := os.ReadFile(dotgit)
		if err != nil {
			return Repo{}, false
		}
		line, _, _ := strings.Cut(string(data), "\n")
		p, found := strings.CutPrefix(strings.TrimSpace(line), "gitdir:")
		if !found {
			return Repo{}, false
		}
		if p = strings.TrimSpace(p); !filepath.IsAbs(p) {
			p = filepath.Join(top, p)
		}
		dir = filepath.Clean(p)
	case fi.Mode()&os.ModeSymlink != 0:
		if p, err := filepath.EvalSymlinks(dotgit); err == nil {
			dir = p
		}
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return Repo{}, false
	}
	r := Repo{Dir: dir, Common: dir}
	if data, err := os.ReadFile(filepath.Join(dir, "commondir")); err == nil {
		p := strings.TrimSpace(string(data))
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			r.Common = filepath.Clean(p)
		}
	}
	return r, true
}

// Head returns the commit HEAD names, "" when it cannot tell (no commit
// yet, an unreadable ref).
func (r Repo) Head() string {
	if r.Dir == "" {
		return ""
	}
	head, err := os.ReadFile(filepath.Join(r.Dir, "HEAD"))
	if err != nil {
		return ""
	}
	h := strings.TrimSpace(string(head))
	ref, symbolic := strings.CutPrefix(h, "ref: ")
	if !symbolic {
		return h // detached
	}
	for _, d := range []string{r.Common, r.Dir} {
		if b, err := os.ReadFile(filepath.Join(d, filepath.FromSlash(ref))); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	f, err := os.Open(filepath.Join(r.Common, "packed-refs"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if hash, name, ok := strings.Cut(sc.Text(), " "); ok && name == ref {
			return hash
		}
	}
	return ""
}
