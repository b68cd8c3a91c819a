package dockerctl

// How a code build stays correct whatever happened before it.
//
// The target directory is a BuildKit cache mount that outlives every build:
// failed ones, cancelled ones, ones killed with the client, ones run by
// another client of the engine. cargo decides what to rebuild by comparing
// each artifact's time with the mtimes of its inputs, so the mtimes the
// sources get inside the build are the whole story. They cannot come from
// the host (a revert restores old content with a new mtime, a checkout sets
// any mtime, the engine's clock is not the host's), and a record of "what
// the cache was built from" kept by the client drifts from the cache itself
// (a failed build compiled some crates, a prune emptied it, another client
// used it).
//
// So the record lives in the cache and is written by the build step that
// uses it, before cargo runs (stamp.sh). For every source it holds the
// content digest and the epoch: the moment that content first entered this
// cache. Each build sends the digests of exactly the bytes it ships
// (computed while the context is streamed), and stamp.sh gives every file
// its epoch as mtime: unchanged content keeps its old epoch, anything else
// gets now. An artifact is newer than all its inputs only if cargo built it
// after each took its current content, which is exactly "built from the
// current content". Failed and cancelled builds need nothing special: their
// record was written before cargo started, and the artifacts they left are
// older than any later change of their inputs.
//
// After cargo succeeds every unit of the graph matches the sources, so the
// epochs collapse to the context's own old mtime (stamp.sh commit) and the
// next build touches only what changed. That is sound because the unit graph
// of one record is fixed: the record carries a key over the recipe and the
// real manifests, lockfile, cargo config and toolchain file, and a build
// with another key (a local version bump, say, which renames artifacts)
// forgets the record, so every source is new and no artifact of another
// graph can come back as fresh.
//
// Directories carry a digest of their listing (cargo's rerun-if-changed on a
// directory looks at directory mtimes), and each package manifest's digest
// also covers the package's file list (a build script without
// rerun-if-changed reruns when the newest file of its package changes, so
// adding or deleting a file reruns it). Vendored third-party sources stay
// out: they belong to the cooked image.

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/chefd/chefd/recipe"
)

// stampScript is run by the code step; see the comment above.
//
//go:embed stamp.sh
var stampScript string

// sourcesFormat is the record format stamp.sh reads and writes.
const sourcesFormat = "chefd-sources 1"

// sourceIndex collects the digests of the files a code build ships and
// writes the list stamp.sh reads.
type sourceIndex struct {
	r        *recipe.Recipe
	vendor   []string          // vendored source dirs (context-relative), left out
	packages map[string]string // package dir -> manifest path
	digests  map[string]string // context-relative path -> content digest
}

func newSourceIndex(r *recipe.Recipe) *sourceIndex {
	s := &sourceIndex{r: r, packages: map[string]string{}, digests: map[string]string{}}
	for _, v := range r.VendorDirs {
		s.vendor = append(s.vendor, strings.TrimSuffix(v, "/"))
	}
	for _, m := range r.Manifests {
		if m.Package != "" {
			s.packages[m.Dir()] = m.Path
		}
	}
	return s
}

// add records the digest of one shipped file.
func (s *sourceIndex) add(rel, digest string) { s.digests[rel] = digest }

func (s *sourceIndex) vendored(rel string) bool {
	for _, v := range s.vendor {
		if rel == v || strings.HasPrefix(rel, v+"/") || v == "." {
			return true
		}
	}
	return false
}

// packageOf returns the manifest of the innermost package holding rel.
func (s *sourceIndex) packageOf(rel string) string {
	for d := path.Dir(rel); ; d = path.Dir(d) {
		if m, ok := s.packages[d]; ok {
			return m
		}
		if d == "." || d == "/" {
			return ""
		}
	}
}

func digestOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// key identifies the unit graph: the recipe and the real content of every
// file the recipe was computed from.
func (s *sourceIndex) key() string {
	parts := []string{sourcesFormat, s.r.Hash}
	var inputs []string
	for _, m := range s.r.Manifests {
		inputs = append(inputs, m.Path)
	}
	for _, f := range []*recipe.File{s.r.LockFile, s.r.ConfigFile, s.r.ToolchainFile} {
		if f != nil {
			inputs = append(inputs, f.Path)
		}
	}
	sort.Strings(inputs)
	for _, p := range inputs {
		d, ok := s.digests[p]
		if !ok {
			d = "absent"
		}
		parts = append(parts, p, d)
	}
	return digestOf(parts...)
}

// lists returns the list stamp.sh reads (a header, then "DIGEST PATH"
// lines) and the NUL-separated paths it must always stamp (names with a
// newline, which a line cannot carry).
func (s *sourceIndex) lists() (list, always []byte) {
	rels := make([]string, 0, len(s.digests))
	for rel := range s.digests {
		if !s.vendored(rel) {
			rels = append(rels, rel)
		}
	}
	sort.Strings(rels)
	children := map[string][]string{} // dir -> entry names
	pkgFiles := map[string][]string{} // manifest -> files of its package
	seenDir := map[string]bool{}
	for _, rel := range rels {
		if m := s.packageOf(rel); m != "" {
			pkgFiles[m] = append(pkgFiles[m], rel)
		}
		for p := rel; p != "."; {
			d := path.Dir(p)
			key := d + "\x00" + path.Base(p)
			if !seenDir[key] {
				seenDir[key] = true
				children[d] = append(children[d], path.Base(p))
			}
			p = d
		}
	}
	var b strings.Builder
	var nul strings.Builder
	b.WriteString(sourcesFormat + " " + s.key() + "\n")
	entry := func(rel, digest string) {
		if strings.ContainsAny(rel, "\n") {
			nul.WriteString(rel)
			nul.WriteByte(0)
			return
		}
		fmt.Fprintf(&b, "%s %s\n", digest, rel)
	}
	for _, rel := range rels {
		d := s.digests[rel]
		if files, ok := pkgFiles[rel]; ok && path.Base(rel) == "Cargo.toml" {
			d = digestOf(append([]string{"package", d}, files...)...)
		}
		entry(rel, d)
	}
	dirs := make([]string, 0, len(children))
	for d := range children {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		names := children[d]
		sort.Strings(names)
		entry(d, digestOf(append([]string{"dir"}, names...)...))
	}
	return []byte(b.String()), []byte(nul.String())
}
