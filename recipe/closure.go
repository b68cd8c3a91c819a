package recipe

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// closure returns the local crates needed to build the named binaries (all
// crates when names is empty) and the binary names resolved: a name is a
// binary target of a member, or a member package whose binaries are meant.
// from is where the names were written (zero: --bin), for errors.
func (w *workspace) closure(names []string, from Source) (map[string]bool, []string, error) {
	keep := map[string]bool{}
	if len(names) == 0 {
		for _, d := range w.order {
			keep[d] = true
		}
		return keep, []string{}, nil
	}
	var starts []string
	binSet := map[string]bool{}
	var all []string
	for _, d := range w.order {
		c := w.crates[d]
		if !c.member || c.targets == nil {
			continue
		}
		for _, t := range c.targets.list {
			if t.Kind == KindBin {
				all = append(all, t.Name)
			}
		}
	}
	sort.Strings(all)
	for _, name := range names {
		found := false
		for _, d := range w.order {
			c := w.crates[d]
			if !c.member || c.targets == nil {
				continue
			}
			for _, t := range c.targets.list {
				if t.Kind == KindBin && t.Name == name {
					starts = append(starts, d)
					binSet[name] = true
					found = true
				}
			}
		}
		if found {
			continue
		}
		for _, d := range w.order {
			c := w.crates[d]
			if c.member && c.m.name == name && c.targets != nil {
				for _, t := range c.targets.list {
					if t.Kind == KindBin {
						binSet[t.Name] = true
						found = true
					}
				}
				if !found {
					main := path.Join(path.Dir(c.m.rel), "src/main.rs")
					e := binsError(from, all, "package %q has no binary target: cargo finds none in %s "+
						"(no src/main.rs, no src/bin/*.rs, no [[bin]])", name, c.m.rel)
					e.Fix = "create " + main + " (or add a [[bin]] with its path to " + c.m.rel + "), or " + e.Fix
					return nil, nil, e
				}
				starts = append(starts, d)
			}
		}
		if !found {
			return nil, nil, binsError(from, all, "no workspace binary or package named %q", name)
		}
	}
	queue := append([]string(nil), starts...)
	for _, s := range starts {
		keep[s] = true
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		for _, dep := range w.crates[d].deps {
			if !keep[dep] {
				keep[dep] = true
				queue = append(queue, dep)
			}
		}
	}
	// [patch] crates stay: the root manifest names them.
	for _, d := range w.order {
		if w.crates[d].patch && !keep[d] {
			keep[d] = true
			for _, dep := range w.crates[d].deps {
				keep[dep] = true
			}
		}
	}
	bins := make([]string, 0, len(binSet))
	for b := range binSet {
		bins = append(bins, b)
	}
	sort.Strings(bins)
	return keep, bins, nil
}

// binsError is an error about a selected binary: at the `bins` line of
// chefd.toml when it was selected there, else (--bin) in the root's
// Cargo.toml.
func binsError(from Source, all []string, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if from.File != "" {
		fix := "list binaries of the workspace in `bins` (" + strings.Join(all, ", ") + "), or remove `bins` to ship them all"
		if len(all) == 0 {
			fix = "remove `bins` (the workspace has no binary)"
		}
		return &Error{File: from.File, Line: from.Line, Msg: "bins: " + msg, Fix: fix}
	}
	manifest := "Cargo.toml"
	fix := "choose one of the workspace's binaries: " + strings.Join(all, ", ")
	if len(all) == 0 {
		fix = "drop --bin (the workspace has no binary)"
	}
	return &Error{File: manifest, Msg: "--bin: " + msg, Fix: fix}
}

// rootRewrite returns the edit applied to the root manifest when the
// recipe is filtered to a closure: members list the kept members only,
// default-members goes, [workspace.dependencies] keeps the entries kept
// crates inherit, and a root package outside the closure is dropped.
func (w *workspace) rootRewrite(keep map[string]bool) func(table) {
	return func(doc table) {
		ws := sub(doc, "workspace")
		if ws != nil {
			var members []any
			var dirs []string
			for d := range keep {
				if c := w.crates[d]; c.member && d != w.rootDir {
					dirs = append(dirs, relSlash(w.rootDir, d))
				}
			}
			sort.Strings(dirs)
			for _, d := range dirs {
				members = append(members, d)
			}
			if members == nil {
				members = []any{}
			}
			ws["members"] = members
			delete(ws, "default-members")
			if wd := sub(ws, "dependencies"); wd != nil {
				used := map[string]bool{}
				for d := range keep {
					eachDep(w.crates[d].m.doc, func(dp dep) {
						if inh, _ := boolean(dp.t, "workspace"); inh {
							used[dp.key] = true
						}
					})
				}
				for k := range wd {
					if !used[k] {
						delete(wd, k)
					}
				}
			}
		}
		if !keep[w.rootDir] {
			for _, k := range []string{"package", "project", "lib", "bin", "example", "test", "bench",
				"dependencies", "dev-dependencies", "dev_dependencies", "build-dependencies",
				"build_dependencies", "target", "features", "badges", "lints"} {
				delete(doc, k)
			}
		}
	}
}
