package watcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ignorer decides which paths under the root are watched and reported. It
// combines, in this order: built-in ignores (root target/ and .chefd/, any
// .git/, a target/ next to a Cargo.toml, editor temporaries), the root
// .dockerignore and the WithIgnore patterns (dockerignore syntax, via
// patternmatcher), and .gitignore files at every level (plus
// .git/info/exclude).
//
// Recipe inputs are exempt from .gitignore (not from .dockerignore): library
// crates often gitignore Cargo.lock, yet cargo-chef reads it when present.
//
// It is not safe for concurrent use (patternmatcher compiles lazily); the
// watcher uses it from Start and then only from its loop goroutine.
type ignorer struct {
	root    string
	git     map[string]*gitRules // directory rel path ("" = root) -> rules of its .gitignore
	exclude *gitRules            // .git/info/exclude, lowest precedence
	docker  *patternmatcher.PatternMatcher
	extra   *patternmatcher.PatternMatcher
}

// matchCtx carries the parent directory's patternmatcher results down a walk.
// The zero value means "unknown parent": parents are then re-checked.
type matchCtx struct {
	docker, extra patternmatcher.MatchInfo
}

func newIgnorer(root string, extra []string) (*ignorer, error) {
	ig := &ignorer{root: root, git: make(map[string]*gitRules)}
	if len(extra) > 0 {
		pats, err := ignorefile.ReadAll(strings.NewReader(strings.Join(extra, "\n")))
		if err != nil {
			return nil, fmt.Errorf("ignore patterns: %w", err)
		}
		if ig.extra, err = newMatcher(pats); err != nil {
			return nil, fmt.Errorf("ignore patterns: %w", err)
		}
	}
	return ig, nil
}

func newMatcher(pats []string) (*patternmatcher.PatternMatcher, error) {
	if len(pats) == 0 {
		return nil, nil
	}
	pm, err := patternmatcher.New(pats)
	if err != nil {
		return nil, err
	}
	// Compile every pattern now so a bad one is reported once, here.
	if _, err := pm.MatchesOrParentMatches("x"); err != nil {
		return nil, err
	}
	return pm, nil
}

// loadRoot (re)reads the root .dockerignore and .git/info/exclude.
func (ig *ignorer) loadRoot(gitDir string) error {
	var errs []error
	ig.docker = nil
	f, err := os.Open(filepath.Join(ig.root, ".dockerignore"))
	switch {
	case err == nil:
		pats, rerr := ignorefile.ReadAll(f)
		f.Close()
		if rerr == nil {
			ig.docker, rerr = newMatcher(pats)
		}
		if rerr != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", f.Name(), rerr))
		}
	case !errors.Is(err, fs.ErrNotExist):
		errs = append(errs, fmt.Errorf("read .dockerignore: %w", err))
	}
	ig.exclude = nil
	if gitDir != "" {
		if data, err := os.ReadFile(filepath.Join(gitDir, "info", "exclude")); err == nil {
			ig.exclude = parseGitignore(data)
		}
	}
	return errors.Join(errs...)
}

// loadGit (re)reads dir's .gitignore; present says whether the walk saw one.
func (ig *ignorer) loadGit(dir string, present bool) error {
	if !present {
		delete(ig.git, dir)
		return nil
	}
	data, err := os.ReadFile(filepath.Join(ig.root, filepath.FromSlash(dir), ".gitignore"))
	if err != nil {
		delete(ig.git, dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read .gitignore in %q: %w", dir, err)
	}
	if r := parseGitignore(data); r != nil {
		ig.git[dir] = r
	} else {
		delete(ig.git, dir)
	}
	return nil
}

// dropGitUnder forgets the rules of dir and every directory below it.
func (ig *ignorer) dropGitUnder(dir string) {
	for d := range ig.git {
		if isUnder(d, dir) {
			delete(ig.git, d)
		}
	}
}

// gitIgnored evaluates the .gitignore files of rel's ancestors, shallow to
// deep, last match wins. Ancestors themselves are assumed not ignored (the
// walker does not descend into ignored directories).
func (ig *ignorer) gitIgnored(rel string, isDir bool) bool {
	ignored := false
	if ok, ign := ig.exclude.match(rel, isDir); ok {
		ignored = ign
	}
	if len(ig.git) == 0 {
		return ignored
	}
	if ok, ign := ig.git[""].match(rel, isDir); ok {
		ignored = ign
	}
	if len(ig.git) == 1 && ig.git[""] != nil {
		return ignored
	}
	for i := 0; i < len(rel); i++ {
		if rel[i] != '/' {
			continue
		}
		if r := ig.git[rel[:i]]; r != nil {
			if ok, ign := r.match(rel[i+1:], isDir); ok {
				ignored = ign
			}
		}
	}
	return ignored
}

// gitExempt reports whether a file is a recipe input that .gitignore must
// not hide.
func gitExempt(rel string) bool {
	return isRecipeFile(rel)
}

// underIgnoredCargoDir reports whether rel sits directly in a ".cargo"
// directory that .gitignore ignores (such a directory is still watched for
// its config files, but nothing else in it counts).
func (ig *ignorer) underIgnoredCargoDir(rel string) bool {
	dir := path.Dir(rel)
	return path.Base(dir) == ".cargo" && ig.gitIgnored(dir, true)
}

// skipDir decides whether the directory rel (base name base) is pruned:
// not watched, not walked. hasCargo says whether its parent holds a
// Cargo.toml (nil: look on disk). It returns the context for its children.
func (ig *ignorer) skipDir(rel, base string, parent matchCtx, hasCargo *bool) (bool, matchCtx) {
	var ctx matchCtx
	if base == ".git" || isEphemeralDir(base) || rel == "target" || rel == ".chefd" {
		return true, ctx
	}
	if base == "target" {
		has := false
		if hasCargo != nil {
			has = *hasCargo
		} else {
			_, err := os.Lstat(filepath.Join(ig.root, filepath.FromSlash(path.Dir(rel)), "Cargo.toml"))
			has = err == nil
		}
		if has {
			return true, ctx // a nested workspace's build directory
		}
	}
	var m bool
	if ig.docker != nil {
		m, ctx.docker, _ = ig.docker.MatchesUsingParentResults(rel, parent.docker)
		if m && !mayReinclude(ig.docker, rel) {
			return true, ctx
		}
	}
	if ig.extra != nil {
		m, ctx.extra, _ = ig.extra.MatchesUsingParentResults(rel, parent.extra)
		if m && !mayReinclude(ig.extra, rel) {
			return true, ctx
		}
	}
	if base == ".cargo" {
		return false, ctx // watched for config.toml even when gitignored
	}
	if ig.underIgnoredCargoDir(rel) || ig.gitIgnored(rel, true) {
		return true, ctx
	}
	return false, ctx
}

// skipFile decides whether the file rel (base name base) is ignored.
func (ig *ignorer) skipFile(rel, base string, parent matchCtx) bool {
	if isEphemeral(base) || builtinIgnored(rel) {
		return true
	}
	if ig.docker != nil {
		if m, _, _ := ig.docker.MatchesUsingParentResults(rel, parent.docker); m {
			return true
		}
	}
	if ig.extra != nil {
		if m, _, _ := ig.extra.MatchesUsingParentResults(rel, parent.extra); m {
			return true
		}
	}
	if gitExempt(rel) {
		return false
	}
	return ig.underIgnoredCargoDir(rel) || ig.gitIgnored(rel, false)
}

// mayReinclude reports whether an exclusion ("!") pattern of pm could match
// something below dir, in which case dir must still be walked even though it
// matches (dockerignore allows re-including files of an excluded directory).
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
				break // pattern ends at an ancestor, or spans directories
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

// isUnder reports whether p is dir or lies below it ("" is the root).
func isUnder(p, dir string) bool {
	if dir == "" {
		return true
	}
	return p == dir || (len(p) > len(dir) && p[len(dir)] == '/' && p[:len(dir)] == dir)
}
