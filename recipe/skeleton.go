package recipe

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
)

// SkeletonFile is one file of the materialised skeleton.
type SkeletonFile struct {
	// Path is relative to the context root, slash-separated.
	Path     string
	Contents string
}

// SkeletonFiles lists every file of the skeleton: manifests, lockfile,
// cargo config, toolchain file, and a dummy source for every target
// (`fn main() {}` for bins, examples, build scripts and harness = false
// tests/benches; empty for libraries and harness tests), sorted by path.
func (r *Recipe) SkeletonFiles() []SkeletonFile {
	files := map[string]string{}
	for _, m := range r.Manifests {
		files[m.Path] = m.Contents
		for _, t := range m.Targets {
			p := path.Join(m.Dir(), t.Path)
			body := ""
			if t.Stub == StubMain {
				body = stubMainS
			}
			if prev, ok := files[p]; ok && prev == stubMainS {
				continue // a file used by two targets: main wins
			}
			files[p] = body
		}
	}
	for _, f := range []*File{r.LockFile, r.ConfigFile, r.ToolchainFile} {
		if f != nil {
			files[f.Path] = f.Contents
		}
	}
	out := make([]SkeletonFile, 0, len(files))
	for p, c := range files {
		out = append(out, SkeletonFile{Path: p, Contents: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// WriteSkeleton writes the skeleton tree into dir (the context root: the
// workspace lands in dir/WorkspaceDir).
func (r *Recipe) WriteSkeleton(dir string) error {
	for _, f := range r.SkeletonFiles() {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("write skeleton: %w", err)
		}
		if err := os.WriteFile(p, []byte(f.Contents), 0o644); err != nil {
			return fmt.Errorf("write skeleton: %w", err)
		}
	}
	return nil
}
