// Package inputs decides which files of a workspace are build inputs. It
// is the one definition that both the build context (dockerctl: what is
// shipped) and the watcher (what is watched) use, so that they cannot
// disagree: a file is watched exactly when it is shipped.
//
// A path is left out when:
//   - a built-in rule says so: version-control and chefd directories
//     (.git, .hg, .svn, .chefd) and editor state (.idea) at any depth;
//     cargo's target directories (the root's target/, a target/ next to a
//     Cargo.toml, or one tagged with CACHEDIR.TAG); editor and OS
//     temporaries (see Ephemeral); the watcher's sync cookies;
//   - the root .dockerignore excludes it (with its "!" re-includes, the
//     way docker build reads it);
//   - a pattern of chefd.toml's `ignore` (the same syntax) excludes it.
//
// .gitignore does not decide: docker build ships git-ignored files (a
// generated src/gen.rs, say), so chefd ships and watches them too. Keep big
// generated trees out with .dockerignore, which keeps them out of both.
package inputs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/chefd/chefd/internal/safefile"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// CookiePrefix names the files the watcher writes in the workspace root for
// an instant to sync with inotify; they are never build inputs.
const CookiePrefix = ".chefd-sync-"

// Matcher decides which paths under one root are build inputs. It is not
// safe for concurrent use (patternmatcher compiles lazily).
type Matcher struct {
	root          string
	docker, extra *patternmatcher.PatternMatcher
}

// Parent carries a directory's pattern results down a walk, so that each
// path is matched once. The zero value means "not known": the parents of
// the path are then matched again.
type Parent struct {
	docker, extra patternmatcher.MatchInfo
}

// New reads root's .dockerignore and adds extra patterns (.dockerignore
// syntax, from chefd.toml). A pattern that does not compile is an error
// that names its file.
func New(root string, extra []string) (*Matcher, error) {
	m := &Matcher{root: root}
	name := filepath.Join(root, ".dockerignore")
	data, err := safefile.ReadRegular(name, safefile.TextLimit) // a FIFO never blocks
	switch {
	case err == nil:
		pats, rerr := ignorefile.ReadAll(bytes.NewReader(data))
		if rerr == nil {
			m.docker, rerr = compile(pats)
		}
		if rerr != nil {
			return nil, fmt.Errorf("read %s: %w", name, rerr)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(extra) > 0 {
		pats, err := ignorefile.ReadAll(strings.NewReader(strings.Join(extra, "\n")))
		if err == nil {
			m.extra, err = compile(pats)
		}
		if err != nil {
			return nil, fmt.Errorf("chefd.toml ignore patterns: %w", err)
		}
	}
	return m, nil
}

// Builtin is a matcher of the built-in rules alone, for a tree that no
// .dockerignore governs (a path crate outside the workspace).
func Builtin(root string) *Matcher { return &Matcher{root: root} }

func compile(pats []string) (*patternmatcher.PatternMatcher, error) {
	if len(pats) == 0 {
		return nil, nil
	}
	pm, err := patternmatcher.New(pats)
	if err != nil {
		return nil, err
	}
	// Compile every pattern now so that a bad one is reported here, once.
	if _, err := pm.MatchesOrParentMatches("x"); err != nil {
		return nil, err
	}
	return pm, nil
}

// SkipDir reports whether the directory rel (slash path relative to the
// root) and everything below it are left out: not shipped, not walked, not
// watched. parentHasCargo says whether its parent directory holds a
// Cargo.toml (nil: look on disk). It returns the match results for the
// directory's children. A directory that a pattern excludes is still
// walked when a "!" pattern may re-include something below it.
func (m *Matcher) SkipDir(rel string, parent Parent, parentHasCargo *bool) (bool, Parent) {
	var ctx Parent
	base := path.Base(rel)
	if builtinDir(base) || rel == "target" {
		return true, ctx
	}
	if base == "target" && m.isTargetDir(rel, parentHasCargo) {
		return true, ctx
	}
	var hit bool
	if m.docker != nil {
		hit, ctx.docker, _ = m.docker.MatchesUsingParentResults(rel, parent.docker)
		if hit && !mayReinclude(m.docker, rel) {
			return true, ctx
		}
	}
	if m.extra != nil {
		hit, ctx.extra, _ = m.extra.MatchesUsingParentResults(rel, parent.extra)
		if hit && !mayReinclude(m.extra, rel) {
			return true, ctx
		}
	}
	return false, ctx
}

// SkipFile reports whether the file rel (whose directory was not skipped;
// parent holds that directory's results) is left out.
func (m *Matcher) SkipFile(rel string, parent Parent) bool {
	if Ephemeral(path.Base(rel)) {
		return true
	}
	if m.docker != nil {
		if hit, _, _ := m.docker.MatchesUsingParentResults(rel, parent.docker); hit {
			return true
		}
	}
	if m.extra != nil {
		if hit, _, _ := m.extra.MatchesUsingParentResults(rel, parent.extra); hit {
			return true
		}
	}
	return false
}

// Dir is SkipDir for a single directory whose parents' results are not at
// hand (an event, a polled subtree): it matches every parent first.
func (m *Matcher) Dir(rel string) (bool, Parent) {
	var p Parent
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' {
			var skip bool
			if skip, p = m.SkipDir(rel[:i], p, nil); skip {
				return true, p
			}
		}
	}
	return m.SkipDir(rel, p, nil)
}

// Excluded reports whether the file rel is left out, matching every one of
// its parents (for a single event; a walk uses SkipDir and SkipFile).
func (m *Matcher) Excluded(rel string) bool {
	dir := path.Dir(rel)
	if dir == "." {
		return m.SkipFile(rel, Parent{})
	}
	skip, p := m.Dir(dir)
	return skip || m.SkipFile(rel, p)
}

// BuiltinOut reports whether rel is left out by a built-in rule that needs
// no look at the disk (every rule but the target/ next to a Cargo.toml).
func BuiltinOut(rel string) bool {
	first, _, _ := strings.Cut(rel, "/")
	if first == "target" || first == ".chefd" {
		return true
	}
	for rest := rel; ; {
		seg, tail, more := strings.Cut(rest, "/")
		if !more {
			return Ephemeral(seg) || builtinDir(seg)
		}
		if builtinDir(seg) {
			return true
		}
		rest = tail
	}
}

// builtinDir: directories never shipped or watched, by name.
func builtinDir(base string) bool {
	switch base {
	case ".git", ".hg", ".svn", ".chefd", ".idea":
		return true
	}
	return false
}

// isTargetDir reports whether the directory rel named target is cargo's:
// next to a Cargo.toml, or tagged by cargo with CACHEDIR.TAG.
func (m *Matcher) isTargetDir(rel string, parentHasCargo *bool) bool {
	if parentHasCargo != nil && *parentHasCargo {
		return true
	}
	abs := filepath.Join(m.root, filepath.FromSlash(rel))
	if parentHasCargo == nil {
		if _, err := os.Lstat(filepath.Join(filepath.Dir(abs), "Cargo.toml")); err == nil {
			return true
		}
	}
	_, err := os.Lstat(filepath.Join(abs, "CACHEDIR.TAG"))
	return err == nil
}

// mayReinclude reports whether an exclusion ("!") pattern of pm could match
// something below dir, in which case dir must still be walked even though
// it matches.
func mayReinclude(pm *patternmatcher.PatternMatcher, dir string) bool {
	if !pm.Exclusions() {
		return false
	}
	dsegs := strings.Split(dir, "/")
	for _, p := range pm.Patterns() {
		if !p.Exclusion() {
			continue
		}
		psegs := strings.Split(filepath.ToSlash(p.String()), "/")
		could := true
		for i, ds := range dsegs {
			if i >= len(psegs) || strings.Contains(psegs[i], "**") {
				break // the pattern ends at an ancestor, or spans directories
			}
			if ok, _ := path.Match(psegs[i], ds); !ok {
				could = false
				break
			}
		}
		if could {
			return true
		}
	}
	return false
}
