package recipe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/chefd/chefd/internal/safefile"
)

// crate is one local package: a workspace member, a path dependency or a
// [patch]/[replace] path crate.
type crate struct {
	m        *manifest
	member   bool
	patch    bool   // provides a [patch] or [replace]: its version is never masked
	edition  string // resolved edition
	targets  *explicitTargets
	deps     []string // absolute directories of local crates it depends on (any kind)
	depNames []string // dependency keys that refer to local crates
}

// workspace is the set of local crates reachable from the root manifest.
type workspace struct {
	root      *manifest
	rootDir   string
	crates    map[string]*crate // by absolute directory
	order     []string          // directories in discovery order
	vendor    []string          // absolute vendor directories (from .cargo/config)
	exclude   []string          // absolute excluded prefixes
	explicit  []string          // absolute non-glob member paths
	wsDeps    table             // [workspace.dependencies]
	fs        *tracker          // records what is read, for the cache
	wsPackage table             // [workspace.package]
	// absolute: some manifest names a local crate by an absolute path
	absolute bool
}

// shown names a path for error messages: relative to the root when inside it.
func (w *workspace) shown(abs string) string {
	r, err := filepath.Rel(w.rootDir, abs)
	if err != nil {
		return abs
	}
	return filepath.ToSlash(r)
}

func hasMeta(p string) bool { return strings.ContainsAny(p, "*?[") }

// FindRoot returns the workspace root for dir: dir itself when its
// Cargo.toml has a [workspace] (or no enclosing workspace claims it), the
// directory named by `package.workspace`, or the nearest parent whose
// workspace lists dir as a member.
func FindRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	m, err := readManifest(nil, abs, "Cargo.toml")
	if err != nil {
		var re *Error
		if errors.As(err, &re) && safefile.Absent(err) {
			re.File = filepath.Join(dir, "Cargo.toml")
			re.Fix = "run chefd in a cargo workspace or pass -C <dir with Cargo.toml>"
		}
		return "", err
	}
	if m.ws != nil {
		return abs, nil
	}
	if w, ok := str(m.pkg, "workspace"); ok {
		return joinPath(abs, w), nil
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		// a parent that cannot be read (missing, a FIFO, too large) claims nothing
		data, err := safefile.ReadRegular(filepath.Join(p, "Cargo.toml"), safefile.TextLimit)
		if err == nil {
			if doc, err := ParseManifest("Cargo.toml", data); err == nil {
				if ws, ok := doc["workspace"].(table); ok {
					if claims(p, ws, abs) {
						return p, nil
					}
					return abs, nil
				}
			}
		}
		if p == filepath.Dir(p) {
			return abs, nil
		}
	}
}

// claims reports whether the workspace at root with table ws lists dir.
func claims(root string, ws table, dir string) bool {
	members, _ := strList(ws, "members")
	excl, _ := strList(ws, "exclude")
	for _, e := range excl {
		if within(dir, joinPath(root, e)) {
			return false
		}
	}
	for _, pat := range members {
		matches, _ := filepath.Glob(joinPath(root, pat))
		for _, mm := range matches {
			if filepath.Clean(mm) == dir {
				return true
			}
		}
	}
	return false
}

// within reports whether p is base or below it.
func within(p, base string) bool {
	if p == base {
		return true
	}
	return strings.HasPrefix(p, strings.TrimSuffix(base, string(filepath.Separator))+string(filepath.Separator))
}

// loadWorkspace discovers every local crate from the root manifest.
func loadWorkspace(ctx context.Context, t *tracker, rootDir string) (*workspace, error) {
	root, err := readManifest(t, rootDir, "Cargo.toml")
	if err != nil {
		return nil, err
	}
	w := &workspace{root: root, rootDir: rootDir, crates: map[string]*crate{}, fs: t}
	w.wsDeps = sub(root.ws, "dependencies")
	w.wsPackage = sub(root.ws, "package")
	if err := w.readVendorDirs(); err != nil {
		return nil, err
	}

	var memberDirs []string
	if root.ws != nil {
		members, ok := strList(root.ws, "members")
		if !ok {
			return nil, errorf("Cargo.toml", lineOf(root.raw, "members"), `write members = ["crates/*", ...]`,
				"`workspace.members` must be a list of strings")
		}
		excl, ok := strList(root.ws, "exclude")
		if !ok {
			return nil, errorf("Cargo.toml", lineOf(root.raw, "exclude"), `write exclude = ["path", ...]`,
				"`workspace.exclude` must be a list of strings")
		}
		for _, e := range excl {
			w.exclude = append(w.exclude, joinPath(rootDir, e))
		}
		for _, pat := range members {
			w.absolute = w.absolute || path.IsAbs(pat)
			if !hasMeta(pat) {
				w.explicit = append(w.explicit, joinPath(rootDir, pat))
			}
		}
		for _, pat := range members {
			dirs, err := w.expandMember(pat)
			if err != nil {
				return nil, err
			}
			memberDirs = append(memberDirs, dirs...)
		}
	}
	if root.pkg != nil {
		memberDirs = append([]string{rootDir}, memberDirs...)
	}

	// Members: read each manifest and discover its targets in one pass on
	// a few workers (this dominates on large workspaces).
	loaded, err := parallel(memberDirs, func(d string) (*crate, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m := root
		if d != rootDir {
			var err error
			if m, err = w.readMember(d); err != nil {
				return nil, err
			}
		}
		c := &crate{m: m, member: true, edition: w.editionOf(m)}
		var err error
		c.targets, err = discoverTargets(w.fs, m, c.edition)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	for _, c := range loaded {
		if _, dup := w.crates[c.m.dir]; dup {
			continue
		}
		w.crates[c.m.dir] = c
		w.order = append(w.order, c.m.dir)
	}

	// [patch] and [replace] path crates.
	if err := w.addPatches(); err != nil {
		return nil, err
	}

	// Follow path dependencies transitively.
	for i := 0; i < len(w.order); i++ {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		c := w.crates[w.order[i]]
		if err := w.followDeps(c); err != nil {
			return nil, err
		}
	}

	// Targets of the other local crates (path dependencies, [patch]).
	var rest []*crate
	for _, d := range w.order {
		if c := w.crates[d]; c.targets == nil {
			c.edition = w.editionOf(c.m)
			rest = append(rest, c)
		}
	}
	if _, err := parallel(rest, func(c *crate) (struct{}, error) {
		var err error
		c.targets, err = discoverTargets(w.fs, c.m, c.edition)
		return struct{}{}, err
	}); err != nil {
		return nil, err
	}
	return w, nil
}

// readMember reads a workspace member's manifest, which must be a package
// and not a workspace root.
func (w *workspace) readMember(d string) (*manifest, error) {
	m, err := readManifest(w.fs, d, w.shown(filepath.Join(d, "Cargo.toml")))
	if err != nil {
		var re *Error
		if errors.As(err, &re) && safefile.Absent(err) {
			re.Msg = fmt.Sprintf("workspace member %s has no Cargo.toml", w.shown(d))
			re.Fix = fmt.Sprintf("add %s/Cargo.toml, or remove %s from `members` (or add it to `exclude`) in Cargo.toml",
				w.shown(d), w.shown(d))
			re.Line = 0
			if l := lineOf(w.root.raw, "members"); l > 0 {
				re.File, re.Line = "Cargo.toml", l
			}
		}
		return nil, err
	}
	if m.pkg == nil {
		return nil, errorf(m.rel, 0, "add a [package] section or remove the directory from `members`",
			"workspace member has no [package] section")
	}
	if m.ws != nil {
		return nil, errorf(m.rel, lineOf(m.raw, "workspace"), "remove its [workspace] section or exclude it from the root workspace",
			"workspace member is itself a workspace root (nested workspaces cannot be members)")
	}
	return m, nil
}

func (w *workspace) add(m *manifest, member bool) *crate {
	c := &crate{m: m, member: member}
	w.crates[m.dir] = c
	w.order = append(w.order, m.dir)
	return c
}

// excluded applies cargo's rule: under an `exclude` prefix and not under an
// explicit (non-glob) member path.
func (w *workspace) excluded(dir string) bool {
	ex := false
	for _, e := range w.exclude {
		if within(dir, e) {
			ex = true
			break
		}
	}
	if !ex {
		return false
	}
	for _, m := range w.explicit {
		if within(dir, m) {
			return false
		}
	}
	return true
}

func (w *workspace) inVendor(dir string) bool {
	for _, v := range w.vendor {
		if within(dir, v) {
			return true
		}
	}
	return false
}

// expandMember expands one `members` entry to member directories.
func (w *workspace) expandMember(pat string) ([]string, error) {
	line := func() int { return lineOf(w.root.raw, pat) } // only errors need it
	full := joinPath(w.rootDir, pat)
	if !hasMeta(pat) {
		st, err := w.fs.stat(full)
		if err != nil {
			e := fileError("Cargo.toml", err)
			e.Line = line()
			if errors.Is(err, fs.ErrNotExist) {
				e.Msg = fmt.Sprintf("workspace member %q does not exist", pat)
				e.Fix = fmt.Sprintf("create %s (with a Cargo.toml) or remove it from `members`", pat)
			} else {
				e.Msg = fmt.Sprintf("workspace member %q: %s", pat, e.Msg)
			}
			return nil, e
		}
		if !st.isDir() {
			return nil, errorf("Cargo.toml", line(), "list the crate's directory, not a file",
				"workspace member %q is not a directory", pat)
		}
		if w.excluded(full) {
			return nil, nil
		}
		return []string{filepath.Clean(full)}, nil
	}
	matches, err := w.globPath(pat)
	if err != nil {
		return nil, errorf("Cargo.toml", line(), "fix the glob pattern", "invalid member pattern %q: %v", pat, err)
	}
	var out []string
	for _, gm := range matches {
		mm := gm.path
		if !gm.dir { // a symlink, or a type the listing did not give
			st, err := w.fs.stat(mm)
			if err != nil {
				if errors.Is(err, syscall.ELOOP) {
					return nil, &Error{File: w.shown(mm), Msg: "symbolic link loop", Err: err,
						Fix: "a symlink on this path points back to itself; replace it with the real directory"}
				}
				continue
			}
			if !st.isDir() {
				continue
			}
		}
		if w.excluded(mm) || w.inVendor(mm) {
			continue
		}
		out = append(out, filepath.Clean(mm))
	}
	if len(matches) == 0 {
		return nil, errorf("Cargo.toml", line(),
			fmt.Sprintf("create a crate that matches %q, or remove the pattern from `members`", pat),
			"workspace member pattern %q matches nothing (cargo fails on it too)", pat)
	}
	sort.Strings(out)
	return out, nil
}

// globPath expands pat (relative to the root, slash-separated, may
// contain **) to absolute matches.
func (w *workspace) globPath(pat string) ([]globMatch, error) {
	root := w.rootDir
	if !strings.Contains(pat, "**") {
		return w.fs.glob(joinPath(root, pat))
	}
	if path.IsAbs(pat) { // as cargo: an absolute pattern is not below the root
		root, pat = "/", strings.TrimLeft(pat, "/")
	}
	parts := strings.Split(pat, "/")
	cur := []string{root}
	for _, p := range parts {
		var next []string
		for _, c := range cur {
			switch {
			case p == "**":
				next = append(next, c)
				next = append(next, w.subdirs(c)...)
			case hasMeta(p):
				m, err := w.fs.glob(filepath.Join(c, p))
				if err != nil {
					return nil, err
				}
				for _, x := range m {
					next = append(next, x.path)
				}
			default:
				next = append(next, filepath.Join(c, p))
			}
		}
		cur = dedupe(next)
	}
	var out []globMatch
	for _, c := range cur {
		if k, err := w.fs.stat(c); err == nil {
			out = append(out, globMatch{c, k.isDir()})
		}
	}
	return out, nil
}

// subdirs lists every directory below dir (not following symlinks,
// skipping target/ and dot directories).
func (w *workspace) subdirs(dir string) []string {
	var out []string
	ents, err := w.fs.readDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range ents {
		if !e.isDir || e.name == "target" || strings.HasPrefix(e.name, ".") {
			continue
		}
		d := filepath.Join(dir, e.name)
		out = append(out, d)
		out = append(out, w.subdirs(d)...)
	}
	return out
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// editionOf resolves a package's edition, following workspace inheritance.
func (w *workspace) editionOf(m *manifest) string {
	switch e := m.pkg["edition"].(type) {
	case string:
		return e
	case table:
		if inh, _ := boolean(e, "workspace"); inh {
			if s, ok := str(w.wsPackage, "edition"); ok {
				return s
			}
		}
	}
	return "2015"
}

// versionOf resolves a package's version ("0.0.0" when absent, as cargo).
func (w *workspace) versionOf(m *manifest) string {
	switch v := m.pkg["version"].(type) {
	case string:
		return v
	case table:
		if s, ok := str(w.wsPackage, "version"); ok {
			if w.wsPackage != nil {
				return s
			}
		}
	}
	return "0.0.0"
}

// readVendorDirs records directory sources named in the root's cargo config.
func (w *workspace) readVendorDirs() error {
	cfg, name, err := readCargoConfig(w.fs, w.rootDir)
	if err != nil || cfg == nil {
		return err
	}
	src := sub(cfg, "source")
	for _, k := range sortedKeys(src) {
		s, _ := src[k].(table)
		if d, ok := str(s, "directory"); ok {
			abs := d
			if !filepath.IsAbs(d) {
				abs = filepath.Join(w.rootDir, filepath.FromSlash(d))
			}
			w.vendor = append(w.vendor, filepath.Clean(abs))
		}
	}
	_ = name
	return nil
}

// sharedParent returns the deepest common ancestor of two absolute paths.
func sharedParent(a, b string) string {
	for !within(a, b) {
		nb := filepath.Dir(b)
		if nb == b {
			return b
		}
		b = nb
	}
	return b
}

func sortedKeys(t table) []string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
