package recipe

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/chefd/chefd/internal/safefile"
)

// Path dependencies: [dependencies] (and the other dependency tables),
// [workspace.dependencies], [patch] and [replace] entries with a `path`.

// joinPath resolves a path written in a manifest against base the way
// cargo (Rust's Path::join) does: a relative path is joined to base, an
// absolute one is taken as it is.
func joinPath(base, p string) string {
	p = filepath.FromSlash(p)
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(base, p)
}

// followDeps records c's path dependencies and loads the crates they name.
func (w *workspace) followDeps(c *crate) error {
	var firstErr error
	eachDep(c.m.doc, func(d dep) {
		if firstErr != nil || d.t == nil {
			return
		}
		base := c.m.dir
		t := d.t
		if inh, _ := boolean(t, "workspace"); inh {
			wt, ok := w.wsDeps[d.key].(table)
			if !ok {
				return // not a path dependency (or an error cargo reports)
			}
			t = wt
			base = w.rootDir
		}
		p, ok := str(t, "path")
		if !ok {
			return
		}
		dir, err := w.loadPathCrate(c.m, d.key, base, p, c.member)
		if err != nil {
			firstErr = err
			return
		}
		c.deps = append(c.deps, dir)
		c.depNames = append(c.depNames, d.key)
	})
	return firstErr
}

// loadPathCrate loads the crate at p, referenced from m under key: p is
// relative to base, or absolute (taken as it is, as cargo does).
func (w *workspace) loadPathCrate(from *manifest, key, base, p string, fromMember bool) (string, error) {
	dir := joinPath(base, p)
	absolute := filepath.IsAbs(filepath.FromSlash(p))
	w.absolute = w.absolute || absolute
	if _, ok := w.crates[dir]; ok {
		return dir, nil
	}
	line := func() int { return lineOf(from.raw, key) } // only errors need it
	shown := w.shown(dir)
	if absolute {
		shown = dir
	}
	escapes := func() error {
		if sharedParent(dir, w.rootDir) != string(filepath.Separator) {
			return nil
		}
		return errorf(from.rel, line(),
			"point `path` at a crate directory that shares a parent directory (other than /) with the workspace",
			"path dependency %q = %q escapes to %s: chefd cannot place it in the build context", key, p, dir)
	}
	if !absolute { // an absolute path that does not exist is reported as such first
		if err := escapes(); err != nil {
			return "", err
		}
	}
	m, err := readManifest(w.fs, dir, w.shown(filepath.Join(dir, "Cargo.toml")))
	if err != nil {
		var re *Error
		if errors.As(err, &re) {
			switch {
			case safefile.Dangling(err) != nil:
			case errors.Is(err, fs.ErrNotExist):
				re.File, re.Line = from.rel, line()
				re.Msg = fmt.Sprintf("path dependency %q = { path = %q }: %s/Cargo.toml not found", key, p, shown)
				re.Fix = "fix the `path`, or restore the crate at that location"
			case errors.Is(err, syscall.ELOOP):
				re.File, re.Line = from.rel, line()
				re.Msg = fmt.Sprintf("path dependency %q = { path = %q }: symbolic link loop", key, p)
			}
		}
		return "", err
	}
	if absolute { // a relative one was checked above
		if err := escapes(); err != nil {
			return "", err
		}
	}
	if m.pkg == nil {
		return "", errorf(from.rel, line(), "point `path` at a crate (a Cargo.toml with [package])",
			"path dependency %q: %s has no [package] section", key, m.rel)
	}
	member := fromMember && within(dir, w.rootDir) && !w.excluded(dir) && w.root.ws != nil
	w.add(m, member)
	return dir, nil
}

// addPatches loads [patch.*] and [replace] path crates of the root.
func (w *workspace) addPatches() error {
	mark := func(key, p string) error {
		dir, err := w.loadPathCrate(w.root, key, w.rootDir, p, false)
		if err != nil {
			return err
		}
		w.crates[dir].patch = true
		return nil
	}
	patch := sub(w.root.doc, "patch")
	regs := sortedKeys(patch)
	for _, r := range regs {
		pt, _ := patch[r].(table)
		for _, k := range sortedKeys(pt) {
			if e, ok := pt[k].(table); ok {
				if p, ok := str(e, "path"); ok {
					if err := mark(k, p); err != nil {
						return err
					}
				}
			}
		}
	}
	repl := sub(w.root.doc, "replace")
	for _, k := range sortedKeys(repl) {
		if e, ok := repl[k].(table); ok {
			if p, ok := str(e, "path"); ok {
				if err := mark(k, p); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
