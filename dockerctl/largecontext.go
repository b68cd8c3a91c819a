package dockerctl

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// maxListed is how many files or directories a large-context warning
// names.
const maxListed = 5

// contextWarning returns, when the files of a code build's context are
// large by cfg's thresholds (in total, or one file), the lines of a
// warning: how large, the largest files (or, when no file is large on its
// own, the largest directories) and the .dockerignore lines that would
// leave them out. nil when the context is not large. root is the
// workspace root, ctxRoot the context root (files are relative to it).
func contextWarning(files []ctxFile, cfg Settings, ctxRoot, root string) []string {
	total, file := cfg.LargeContext, cfg.LargeFile
	if total == 0 {
		total = DefaultLargeContext
	}
	if file == 0 {
		file = DefaultLargeFile
	}
	type entry struct {
		rel   string // workspace-relative, slash
		size  int64
		files int
		dir   bool
	}
	// The usual build warns of nothing: sum first, name paths only then.
	var sum int64
	var big []entry
	for _, f := range files {
		if f.link != "" {
			continue
		}
		sum += f.size
		if file > 0 && f.size >= file {
			big = append(big, entry{rel: workspaceRel(f.rel, ctxRoot, root), size: f.size, files: 1})
		}
	}
	if len(big) == 0 && (total < 0 || sum < total) {
		return nil
	}
	listed := big
	what := "files"
	if len(listed) == 0 {
		what = "directories (by the size of the files directly in them)"
		dirs := map[string]*entry{}
		for _, f := range files {
			if f.link != "" {
				continue
			}
			d := path.Dir(workspaceRel(f.rel, ctxRoot, root))
			if dirs[d] == nil {
				dirs[d] = &entry{rel: d, dir: true}
			}
			dirs[d].size += f.size
			dirs[d].files++
		}
		for _, d := range dirs {
			listed = append(listed, *d)
		}
	}
	sort.Slice(listed, func(i, j int) bool {
		if listed[i].size != listed[j].size {
			return listed[i].size > listed[j].size
		}
		return listed[i].rel < listed[j].rel
	})
	if len(listed) > maxListed {
		listed = listed[:maxListed]
	}
	lines := []string{fmt.Sprintf("warning: the build context is %s in %d files, all of it sent to the engine on every build; the largest %s:",
		humanBytes(sum), len(files), what)}
	var ignore, outside []string
	for _, e := range listed {
		name := e.rel
		if e.dir {
			name += fmt.Sprintf("/ (%d files)", e.files)
		}
		lines = append(lines, fmt.Sprintf("  %10s  %s", humanBytes(e.size), name))
		switch {
		case e.rel == "." || e.rel == "":
		case strings.HasPrefix(e.rel, "../"):
			outside = append(outside, e.rel)
		default:
			ignore = append(ignore, dockerignoreLine(e.rel))
		}
	}
	if len(ignore) > 0 {
		lines = append(lines, "  to leave them out of the context (and the watcher), add to .dockerignore:")
		for _, l := range ignore {
			lines = append(lines, "    "+l)
		}
	}
	for _, o := range outside {
		lines = append(lines, fmt.Sprintf("  %s is in a path crate outside the workspace, which .dockerignore does not reach: move it out of the crate", o))
	}
	return lines
}

// contextSize is the size of the files of a context (symlinks aside).
func contextSize(files []ctxFile) int64 {
	var n int64
	for _, f := range files {
		if f.link == "" {
			n += f.size
		}
	}
	return n
}

// workspaceRel is a context-relative path relative to the workspace root
// (it starts with ../ outside the workspace).
func workspaceRel(rel, ctxRoot, root string) string {
	if ctxRoot == "" || ctxRoot == root {
		return rel
	}
	r, err := filepath.Rel(root, filepath.Join(ctxRoot, filepath.FromSlash(rel)))
	if err != nil {
		return rel
	}
	return filepath.ToSlash(r)
}

// dockerignoreLine is the .dockerignore line that leaves out exactly the
// workspace-relative path rel (anchored at the root, pattern characters
// escaped).
func dockerignoreLine(rel string) string {
	var b strings.Builder
	b.WriteByte('/')
	for _, r := range rel {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// humanBytes formats a size for people.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
