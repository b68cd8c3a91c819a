package recipe

import (
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// Target kinds, as cargo metadata names the broad kind.
const (
	KindLib         = "lib"
	KindBin         = "bin"
	KindExample     = "example"
	KindTest        = "test"
	KindBench       = "bench"
	KindBuildScript = "build-script"
)

// Stub kinds: what the skeleton writes for a target.
const (
	StubEmpty = "empty" // an empty file: libraries, harness tests and benches
	StubMain  = "main"  // fn main() {}: bins, examples, build scripts, harness = false
	stubMainS = "fn main() {}\n"
)

// Target is one compilation target of a package, made explicit.
type Target struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Path is relative to the package directory, slash-separated.
	Path string `json:"path"`
	Stub string `json:"stub"`
}

// explicitTargets is the discovered target set of one package, with the
// manifest tables that describe them (filled in with name and path).
type explicitTargets struct {
	lib      table
	bins     []table
	examples []table
	tests    []table
	benches  []table
	builds   []string // build script paths, relative to the package
	list     []Target
}

// targetCtx carries what target discovery needs about a package.
type targetCtx struct {
	fs      *tracker
	m       *manifest
	edition string
	stats   map[string]fs.FileMode // memoised stats; -1 (all bits) when missing
}

const missing = fs.FileMode(1<<32 - 1)

func (c *targetCtx) stat(rel string) fs.FileMode {
	if m, ok := c.stats[rel]; ok {
		return m
	}
	mode := missing
	if st, err := c.fs.stat(filepath.Join(c.m.dir, filepath.FromSlash(rel))); err == nil {
		switch {
		case st.isDir():
			mode = fs.ModeDir
		case st.isRegular():
			mode = 0
		default:
			mode = fs.ModeIrregular
		}
	}
	c.stats[rel] = mode
	return mode
}

func (c *targetCtx) exists(rel string) bool { return c.stat(rel) != missing }

func (c *targetCtx) isFile(rel string) bool {
	m := c.stat(rel)
	return m != missing && m.IsRegular()
}

type inferred struct{ name, path string }

// inferDir lists cargo's auto-discovered targets in a directory: `x.rs`
// files and `x/main.rs` subdirectories, dot entries and names that are
// not UTF-8 skipped.
//
// The directory is opened straight away (a missing one costs one failed
// open, as cheap as a stat) and, as in cargo, one that cannot be read
// holds no targets.
func (c *targetCtx) inferDir(rel string) []inferred {
	ents, err := c.fs.readDir(filepath.Join(c.m.dir, filepath.FromSlash(rel)))
	if err != nil {
		return nil
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].name < ents[j].name })
	var out []inferred
	for _, e := range ents {
		n := e.name
		// cargo skips names that are not UTF-8 (and so cannot be target
		// names): they are no targets
		if strings.HasPrefix(n, ".") || !utf8.ValidString(n) {
			continue
		}
		// cargo uses the entry's own type: a symlink is never a directory here
		if e.isDir {
			if c.exists(path.Join(rel, n, "main.rs")) {
				out = append(out, inferred{n, path.Join(rel, n, "main.rs")})
			}
			continue
		}
		if strings.HasSuffix(n, ".rs") && len(n) > 3 {
			out = append(out, inferred{strings.TrimSuffix(n, ".rs"), path.Join(rel, n)})
		}
	}
	return out
}

// normPath cleans a target path written in a manifest, relative to the
// package directory.
func normPath(p string) string {
	p = filepath.ToSlash(p)
	if strings.HasPrefix(p, "/") {
		return path.Clean(p)
	}
	return path.Clean(p)
}

// discoverTargets applies cargo's target rules (explicit tables, auto
// discovery, auto* keys and the 2015-edition rules) to one package.
func discoverTargets(t *tracker, m *manifest, edition string) (*explicitTargets, error) {
	c := &targetCtx{fs: t, m: m, edition: edition, stats: map[string]fs.FileMode{}}
	out := &explicitTargets{}
	e2015 := edition == "2015"

	// library
	libT := sub(m.doc, "lib")
	if _, present := m.doc["lib"]; present && libT == nil {
		return nil, errorf(m.rel, lineOf(m.raw, "lib"), "write it as a [lib] section", "`lib` must be a table")
	}
	autolib, hasAutolib := boolean(m.pkg, "autolib")
	inferredLib := ""
	if c.exists("src/lib.rs") && (!hasAutolib || autolib) {
		inferredLib = "src/lib.rs"
	}
	if libT != nil || inferredLib != "" {
		lib := table{}
		for k, v := range libT {
			lib[k] = v
		}
		name, ok := lib["name"].(string)
		if !ok {
			name = strings.ReplaceAll(m.name, "-", "_")
		}
		if strings.Contains(name, "-") {
			return nil, errorf(m.rel, lineOf(m.raw, "lib"), "use underscores in [lib] name",
				"library target names cannot contain hyphens: %s", name)
		}
		p, ok := lib["path"].(string)
		switch {
		case ok:
			p = normPath(p)
		case inferredLib != "":
			p = inferredLib
		case c.exists("src/lib.rs"):
			p = "src/lib.rs"
		case e2015 && c.exists("src/"+name+".rs"):
			p = "src/" + name + ".rs"
		default:
			return nil, errorf(m.rel, lineOf(m.raw, "lib"), "create src/lib.rs or set path in [lib]",
				"can't find library `%s`", name)
		}
		lib["name"] = name
		lib["path"] = p
		out.lib = lib
		out.list = append(out.list, Target{Kind: KindLib, Name: name, Path: p, Stub: StubEmpty})
	}
	hasLib := out.lib != nil

	// binaries
	binInferred := []inferred{}
	if c.exists("src/main.rs") {
		binInferred = append(binInferred, inferred{m.name, "src/main.rs"})
	}
	binInferred = append(binInferred, c.inferDir("src/bin")...)
	bins, err := c.merge("bin", "autobins", binInferred, func(name string) string {
		if !e2015 {
			return ""
		}
		if !hasLib && c.exists("src/"+name+".rs") {
			return "src/" + name + ".rs"
		}
		if c.exists("src/main.rs") {
			return "src/main.rs"
		}
		if c.exists("src/bin/main.rs") {
			return "src/bin/main.rs"
		}
		return ""
	})
	if err != nil {
		return nil, err
	}
	out.bins = bins
	for _, b := range bins {
		out.list = append(out.list, Target{Kind: KindBin, Name: b["name"].(string), Path: b["path"].(string), Stub: StubMain})
	}

	// examples, tests, benches
	for _, k := range []struct {
		section, auto, dir, kind string
		dst                      *[]table
	}{
		{"example", "autoexamples", "examples", KindExample, &out.examples},
		{"test", "autotests", "tests", KindTest, &out.tests},
		{"bench", "autobenches", "benches", KindBench, &out.benches},
	} {
		legacy := func(name string) string { return "" }
		if k.section == "bench" {
			legacy = func(name string) string {
				if e2015 && name == "bench" && c.exists("src/bench.rs") {
					return "src/bench.rs"
				}
				return ""
			}
		}
		ts, err := c.merge(k.section, k.auto, c.inferDir(k.dir), legacy)
		if err != nil {
			return nil, err
		}
		*k.dst = ts
		for _, t := range ts {
			stub := StubMain
			if k.kind == KindTest || k.kind == KindBench {
				stub = StubEmpty
				if h, ok := t["harness"].(bool); ok && !h {
					stub = StubMain
				}
			}
			out.list = append(out.list, Target{Kind: k.kind, Name: t["name"].(string), Path: t["path"].(string), Stub: stub})
		}
	}

	// build scripts
	switch b := m.pkg["build"].(type) {
	case nil:
		if c.isFile("build.rs") {
			out.builds = []string{"build.rs"}
		}
	case bool:
		if b {
			out.builds = []string{"build.rs"}
		}
	case string:
		out.builds = []string{normPath(b)}
	case []any:
		for _, e := range b {
			s, ok := e.(string)
			if !ok {
				return nil, errorf(m.rel, lineOf(m.raw, "build"), `write build = "build.rs" or a list of paths`,
					"`package.build` entries must be strings")
			}
			out.builds = append(out.builds, normPath(s))
		}
	default:
		return nil, errorf(m.rel, lineOf(m.raw, "build"), `write build = "build.rs", build = false, or remove the key`,
			"`package.build` must be a string or a boolean")
	}
	if len(out.list) == 0 {
		// cargo's own check, when it parses the manifest
		dir := path.Dir(m.rel)
		return nil, errorf(m.rel, lineOf(m.raw, "package"),
			"create "+path.Join(dir, "src/main.rs")+" (a binary) or "+path.Join(dir, "src/lib.rs")+
				" (a library), or add a [[bin]] or [lib] section with the `path` of the crate's source",
			"no targets specified in the manifest: cargo needs src/lib.rs, src/main.rs, a [lib] section or a [[bin]] section")
	}
	for _, b := range out.builds {
		stem := strings.TrimSuffix(path.Base(b), path.Ext(b))
		out.list = append(out.list, Target{Kind: KindBuildScript, Name: "build-script-" + stem, Path: b, Stub: StubMain})
	}
	return out, nil
}

// merge combines explicit [[section]] tables with inferred targets, the way
// cargo's toml_targets_and_inferred and target_path do.
func (c *targetCtx) merge(section, autoKey string, inf []inferred, legacy func(string) string) ([]table, error) {
	m := c.m
	explicit, ok := tableList(m.doc, section)
	if !ok {
		return nil, errorf(m.rel, lineOf(m.raw, section), "write each entry as a [["+section+"]] section",
			"`%s` must be an array of tables", section)
	}
	auto, hasAuto := boolean(m.pkg, autoKey)
	if _, present := m.pkg[autoKey]; present && !hasAuto {
		return nil, errorf(m.rel, lineOf(m.raw, autoKey), "write "+autoKey+" = true or false", "`%s` must be a boolean", autoKey)
	}
	var result []table
	if explicit == nil {
		if hasAuto && !auto {
			return nil, nil
		}
		for _, i := range inf {
			result = append(result, table{"name": i.name, "path": i.path})
		}
	} else {
		seenNames := map[string]bool{}
		seenPaths := map[string]bool{}
		for _, t := range explicit {
			cp := table{}
			for k, v := range t {
				cp[k] = v
			}
			name, ok := cp["name"].(string)
			if !ok || strings.TrimSpace(name) == "" {
				return nil, errorf(m.rel, lineOf(m.raw, section), `add name = "..." to every [[`+section+`]] entry`,
					"%s target %s.name is required", section, section)
			}
			seenNames[name] = true
			if p, ok := cp["path"].(string); ok {
				seenPaths[normPath(p)] = true
			}
			result = append(result, cp)
		}
		var rem []table
		for _, i := range inf {
			if !seenNames[i.name] && !seenPaths[i.path] {
				rem = append(rem, table{"name": i.name, "path": i.path})
			}
		}
		discover := auto
		if !hasAuto {
			discover = c.edition != "2015"
		}
		if discover {
			result = append(result, rem...)
		}
	}
	sort.SliceStable(result, func(i, j int) bool { return result[i]["name"].(string) < result[j]["name"].(string) })
	seen := map[string]bool{}
	for _, t := range result {
		name := t["name"].(string)
		if seen[name] {
			return nil, errorf(m.rel, lineOf(m.raw, name), "rename one of them or set `path` explicitly",
				"found duplicate %s name %s, but all %s targets must have a unique name", section, name, section)
		}
		seen[name] = true
		if p, ok := t["path"].(string); ok {
			t["path"] = normPath(p)
			continue
		}
		var matches []string
		for _, i := range inf {
			if i.name == name {
				matches = append(matches, i.path)
			}
		}
		switch {
		case len(matches) == 1:
			t["path"] = matches[0]
		default:
			if lp := legacy(name); lp != "" {
				t["path"] = lp
				continue
			}
			dir := map[string]string{"bin": "src/bin", "example": "examples", "test": "tests", "bench": "benches"}[section]
			if len(matches) > 1 {
				return nil, errorf(m.rel, lineOf(m.raw, name), "set `path` for it in ["+"["+section+"]]",
					"cannot infer path for `%s` %s: both %s and %s exist", name, section, matches[0], matches[1])
			}
			return nil, errorf(m.rel, lineOf(m.raw, name), "create the file or set `path` in [["+section+"]]",
				"can't find `%s` %s at `%s/%s.rs` or `%s/%s/main.rs`", name, section, dir, name, dir, name)
		}
	}
	return result, nil
}

// sortTargets orders a target list deterministically.
func sortTargets(ts []Target) {
	order := map[string]int{KindLib: 0, KindBin: 1, KindExample: 2, KindTest: 3, KindBench: 4, KindBuildScript: 5}
	sort.Slice(ts, func(i, j int) bool {
		if order[ts[i].Kind] != order[ts[j].Kind] {
			return order[ts[i].Kind] < order[ts[j].Kind]
		}
		if ts[i].Name != ts[j].Name {
			return ts[i].Name < ts[j].Name
		}
		return ts[i].Path < ts[j].Path
	})
}
