package watcher

import (
	"fmt"
	"path"
	"strings"

	"github.com/chefd/chefd/inputs"
)

// Kind says what a batch means for the build.
type Kind int

const (
	// KindCode: only source files changed; rebuild the code layer.
	KindCode Kind = iota
	// KindRecipe: at least one change can alter the cargo-chef recipe;
	// recompute it (and cook if its hash changed).
	KindRecipe
)

func (k Kind) String() string {
	switch k {
	case KindCode:
		return "code"
	case KindRecipe:
		return "recipe"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Class is the classification of one path.
type Class int

const (
	// ClassIgnored: never part of a batch (built-in ignores: target/, .git/,
	// .chefd/, editor temporaries).
	ClassIgnored Class = iota
	// ClassCode: an ordinary input of the code layer.
	ClassCode
	// ClassRecipe: the change can alter the recipe.
	ClassRecipe
)

func (c Class) String() string {
	switch c {
	case ClassIgnored:
		return "ignored"
	case ClassCode:
		return "code"
	case ClassRecipe:
		return "recipe"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Classify classifies a change to rel, a slash-separated path relative to
// the workspace root. created and removed say whether the file appeared or
// disappeared (both false: its content changed).
//
// Classify only knows the built-in rules (inputs.BuiltinOut); .dockerignore
// and WithIgnore patterns are applied by the Watcher (inputs.Matcher) before
// it classifies.
//
// Recipe-affecting, at any depth: Cargo.toml, Cargo.lock, rust-toolchain,
// rust-toolchain.toml, .cargo/config, .cargo/config.toml, and chefd.toml at
// the root. Creating or removing (not editing) a target file or build
// script is recipe-affecting too: build.rs, src/main.rs, src/lib.rs,
// src/bin/*.rs, src/bin/*/main.rs, and {examples,tests,benches}/*.rs,
// {examples,tests,benches}/*/main.rs, matched as a path suffix so that
// crates/app/src/bin/x.rs counts.
func Classify(rel string, created, removed bool) Class {
	rel = strings.TrimPrefix(rel, "./")
	if rel == "" || rel == "." || strings.HasPrefix(rel, "/") || strings.HasSuffix(rel, "/") {
		return ClassIgnored
	}
	if inputs.BuiltinOut(rel) {
		return ClassIgnored
	}
	if isRecipeFile(rel) {
		return ClassRecipe
	}
	if (created || removed) && isTargetFile(rel) {
		return ClassRecipe
	}
	return ClassCode
}

// isRecipeFile reports whether rel is a manifest or toolchain/config file.
func isRecipeFile(rel string) bool {
	dir, base := path.Split(rel)
	switch base {
	case "Cargo.toml", "Cargo.lock", "rust-toolchain", "rust-toolchain.toml":
		return true
	case "config", "config.toml":
		return path.Base(strings.TrimSuffix(dir, "/")) == ".cargo"
	case "chefd.toml":
		return dir == ""
	}
	return false
}

// isTargetFile reports whether rel is a file whose existence defines a cargo
// target or a build script.
func isTargetFile(rel string) bool {
	if !strings.HasSuffix(rel, ".rs") {
		return false
	}
	// seg(i) is the i-th segment from the end (0 = base name), "" if absent.
	segs := strings.Split(rel, "/")
	seg := func(i int) string {
		if i >= len(segs) {
			return ""
		}
		return segs[len(segs)-1-i]
	}
	base := seg(0)
	if base == "build.rs" {
		return true
	}
	isGroup := func(s string) bool { return s == "examples" || s == "tests" || s == "benches" }
	switch {
	case (base == "main.rs" || base == "lib.rs") && seg(1) == "src": // src/main.rs, src/lib.rs
		return true
	case seg(1) == "bin" && seg(2) == "src": // src/bin/*.rs
		return true
	case isGroup(seg(1)): // examples/*.rs, tests/*.rs, benches/*.rs
		return true
	case base == "main.rs" && seg(2) == "bin" && seg(3) == "src": // src/bin/*/main.rs
		return true
	case base == "main.rs" && isGroup(seg(2)): // examples/*/main.rs ...
		return true
	}
	return false
}
