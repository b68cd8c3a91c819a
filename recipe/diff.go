package recipe

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Diff explains why the recipe changed from old to cur, one readable line
// per change, in a stable order:
//
//	intent: profile release -> dev
//	crates/app: + dependency regex = "1"
//	crates/app: ~ dependency serde: features ["derive"] -> ["derive", "rc"]
//	crates/app: + feature fast = ["regex/perf"]
//	crates/app: + target bin "x" (src/bin/x.rs)
//	crates/app: ~ profile.release.lto false -> true
//	+ crates/new (package new)
//	Cargo.lock: serde 1.0.152 -> 1.0.153
//	Cargo.lock: + regex 1.10.0
//	rust-toolchain.toml changed (toolchain.channel "1.80" -> "1.81")
//
// Manifests are labelled with their directory ("Cargo.toml" for the
// manifest at the context root). It compares the parsed TOML of the
// manifests (dependency tables, features, other keys), their targets, the
// package versions of the lockfile, the cargo config and toolchain files
// and the intent. It returns nil when either recipe is nil or both have
// the same hash; when the hashes differ but no difference is found, a
// single "recipe changed" line.
func Diff(old, cur *Recipe) []string {
	if old == nil || cur == nil {
		return nil
	}
	if old.Hash != "" && old.Hash == cur.Hash {
		return nil
	}
	var out []string
	if old.Format != cur.Format {
		out = append(out, fmt.Sprintf("recipe format %d -> %d", old.Format, cur.Format))
	}
	out = append(out, diffIntent(old.Intent, cur.Intent)...)
	if old.WorkspaceDir != cur.WorkspaceDir {
		out = append(out, fmt.Sprintf("workspace directory %s -> %s", old.WorkspaceDir, cur.WorkspaceDir))
	}
	out = append(out, diffManifests(old.Manifests, cur.Manifests)...)
	out = append(out, diffLockFile(old.LockFile, cur.LockFile)...)
	out = append(out, diffTextFile(old.ConfigFile, cur.ConfigFile)...)
	out = append(out, diffTextFile(old.ToolchainFile, cur.ToolchainFile)...)
	if a, b := diffList(old.VendorDirs), diffList(cur.VendorDirs); a != b {
		out = append(out, fmt.Sprintf("vendor directories %s -> %s", a, b))
	}
	out = append(out, diffVendorSums(old.VendorSums, cur.VendorSums)...)
	if len(out) == 0 && old.Hash != cur.Hash {
		out = append(out, fmt.Sprintf("recipe changed (%s -> %s)", shortOf(old.Hash), shortOf(cur.Hash)))
	}
	return out
}

// diffVendorSums names the vendored crates whose checksum files changed,
// came or went.
func diffVendorSums(a, b []File) []string {
	was := map[string]string{}
	for _, f := range a {
		was[f.Path] = f.Contents
	}
	var out []string
	for _, f := range b {
		crate := path.Dir(f.Path)
		switch old, ok := was[f.Path]; {
		case !ok:
			out = append(out, "vendored crate "+crate+" added")
		case old != f.Contents:
			out = append(out, "vendored crate "+crate+" changed")
		}
		delete(was, f.Path)
	}
	for p := range was {
		out = append(out, "vendored crate "+path.Dir(p)+" removed")
	}
	sort.Strings(out)
	return out
}

func shortOf(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	if h == "" {
		return "?"
	}
	return h
}

func diffIntent(a, b Intent) []string {
	var out []string
	add := func(what, x, y string) {
		if x != y {
			out = append(out, fmt.Sprintf("intent: %s %s -> %s", what, x, y))
		}
	}
	orNone := func(s, none string) string {
		if s == "" {
			return none
		}
		return s
	}
	add("profile", orNone(a.Profile, "release"), orNone(b.Profile, "release"))
	add("features", diffList(a.Features), diffList(b.Features))
	add("no-default-features", strconv.FormatBool(a.NoDefaultFeatures), strconv.FormatBool(b.NoDefaultFeatures))
	add("target", orNone(a.Target, "(host)"), orNone(b.Target, "(host)"))
	add("rustflags", strconv.Quote(a.RustFlags), strconv.Quote(b.RustFlags))
	add("bins", diffList(a.Bins), diffList(b.Bins))
	return out
}

// diffList renders a string list as [a, b].
func diffList(l []string) string {
	return "[" + strings.Join(l, ", ") + "]"
}

// manifestLabel names a manifest in diff lines: its directory.
func manifestLabel(m Manifest) string {
	if d := m.Dir(); d != "." {
		return d
	}
	return m.Path
}

func diffManifests(a, b []Manifest) []string {
	byPath := func(ms []Manifest) map[string]Manifest {
		out := make(map[string]Manifest, len(ms))
		for _, m := range ms {
			out[m.Path] = m
		}
		return out
	}
	am, bm := byPath(a), byPath(b)
	paths := make([]string, 0, len(am)+len(bm))
	for p := range am {
		paths = append(paths, p)
	}
	for p := range bm {
		if _, ok := am[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var out []string
	for _, p := range paths {
		x, inA := am[p]
		y, inB := bm[p]
		switch {
		case !inA:
			out = append(out, "+ "+manifestLabel(y)+describeManifest(y))
		case !inB:
			out = append(out, "- "+manifestLabel(x)+describeManifest(x))
		default:
			out = append(out, diffManifest(x, y)...)
		}
	}
	return out
}

func describeManifest(m Manifest) string {
	if m.Package != "" {
		return " (package " + m.Package + ")"
	}
	return " (" + m.Path + ")"
}

// targetSections are the manifest tables that describe targets; their name
// and path are compared through Manifest.Targets instead.
var targetSections = map[string]bool{"lib": true, "bin": true, "example": true, "test": true, "bench": true}

func diffManifest(a, b Manifest) []string {
	if a.Contents == b.Contents && targetsEqual(a.Targets, b.Targets) && a.Package == b.Package {
		return nil
	}
	label := manifestLabel(b)
	var out []string
	line := func(format string, args ...any) {
		out = append(out, label+": "+fmt.Sprintf(format, args...))
	}
	if a.Package != b.Package {
		line("package %s -> %s", orDash(a.Package), orDash(b.Package))
	}
	docA, errA := ParseManifest(a.Path, []byte(a.Contents))
	docB, errB := ParseManifest(b.Path, []byte(b.Contents))
	if errA == nil && errB == nil {
		// dependencies
		da, db := collectDeps(docA), collectDeps(docB)
		for _, k := range unionKeys(da, db) {
			x, inA := da[k]
			y, inB := db[k]
			switch {
			case !inA:
				line("+ %s %s = %s", y.where, y.name, renderValue(y.val))
			case !inB:
				line("- %s %s = %s", x.where, x.name, renderValue(x.val))
			case renderValue(x.val) != renderValue(y.val):
				line("~ %s %s: %s", y.where, y.name, diffDep(x.val, y.val))
			}
		}
		// features
		fa, fb := sub(docA, "features"), sub(docB, "features")
		for _, k := range unionKeys(fa, fb) {
			x, inA := fa[k]
			y, inB := fb[k]
			switch {
			case !inA:
				line("+ feature %s = %s", k, renderValue(y))
			case !inB:
				line("- feature %s", k)
			case renderValue(x) != renderValue(y):
				line("~ feature %s %s -> %s", k, renderValue(x), renderValue(y))
			}
		}
	}
	// targets
	ta, tb := targetMap(a.Targets), targetMap(b.Targets)
	for _, k := range unionKeys(ta, tb) {
		x, inA := ta[k]
		y, inB := tb[k]
		switch {
		case !inA:
			line("+ target %s %q (%s)", y.Kind, y.Name, y.Path)
		case !inB:
			line("- target %s %q (%s)", x.Kind, x.Name, x.Path)
		default:
			if x.Path != y.Path {
				line("~ target %s %q path %s -> %s", y.Kind, y.Name, x.Path, y.Path)
			}
			if x.Stub != y.Stub {
				line("~ target %s %q stub %s -> %s", y.Kind, y.Name, x.Stub, y.Stub)
			}
		}
	}
	// everything else, as dotted keys
	if errA == nil && errB == nil {
		fa, fb := map[string]string{}, map[string]string{}
		flattenManifest(docA, fa)
		flattenManifest(docB, fb)
		for _, k := range unionKeys(fa, fb) {
			x, inA := fa[k]
			y, inB := fb[k]
			switch {
			case !inA:
				line("+ %s = %s", k, y)
			case !inB:
				line("- %s = %s", k, x)
			case x != y:
				line("~ %s %s -> %s", k, x, y)
			}
		}
	}
	if a.Masked != b.Masked {
		line("version masked %t -> %t", a.Masked, b.Masked)
	}
	if a.Member != b.Member {
		line("workspace member %t -> %t", a.Member, b.Member)
	}
	if len(out) == 0 && a.Contents != b.Contents {
		line("manifest changed")
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func targetsEqual(a, b []Target) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func targetMap(ts []Target) map[string]Target {
	out := make(map[string]Target, len(ts))
	for _, t := range ts {
		out[t.Kind+"\x00"+t.Name] = t
	}
	return out
}

// depEntry is one dependency of a manifest, wherever it is declared.
type depEntry struct {
	where string // "dependency", "dev-dependency", "build-dependency (target cfg(unix))", "workspace dependency"
	name  string
	val   any
}

func depKind(section string) string {
	switch section {
	case "dev-dependencies", "dev_dependencies":
		return "dev-dependency"
	case "build-dependencies", "build_dependencies":
		return "build-dependency"
	}
	return "dependency"
}

// collectDeps gathers every dependency entry of a manifest, keyed by where
// and name.
func collectDeps(doc table) map[string]depEntry {
	out := map[string]depEntry{}
	visit := func(sec table, where string) {
		for name, v := range sec {
			out[where+"\x00"+name] = depEntry{where: where, name: name, val: v}
		}
	}
	for _, s := range depSections {
		visit(sub(doc, s), depKind(s))
	}
	for cfg, v := range sub(doc, "target") {
		ct, _ := v.(table)
		for _, s := range depSections {
			visit(sub(ct, s), depKind(s)+" (target "+cfg+")")
		}
	}
	visit(sub(sub(doc, "workspace"), "dependencies"), "workspace dependency")
	return out
}

// diffDep describes how one dependency's specification changed, key by key
// ("version "1" -> "2", + features = ["rc"]").
func diffDep(a, b any) string {
	asTable := func(v any) table {
		switch x := v.(type) {
		case table:
			return x
		case string:
			return table{"version": x}
		}
		return nil
	}
	ta, tb := asTable(a), asTable(b)
	if ta == nil || tb == nil {
		return renderValue(a) + " -> " + renderValue(b)
	}
	var parts []string
	for _, k := range orderedKeys(unionKeys(ta, tb)) {
		x, inA := ta[k]
		y, inB := tb[k]
		switch {
		case !inA:
			parts = append(parts, fmt.Sprintf("+ %s = %s", k, renderValue(y)))
		case !inB:
			parts = append(parts, fmt.Sprintf("- %s = %s", k, renderValue(x)))
		case renderValue(x) != renderValue(y):
			parts = append(parts, fmt.Sprintf("%s %s -> %s", k, renderValue(x), renderValue(y)))
		}
	}
	return strings.Join(parts, ", ")
}

// flattenManifest writes every key of doc that the dependency, feature and
// target comparisons do not cover, as "dotted.key" -> rendered value.
func flattenManifest(doc table, out map[string]string) {
	for _, k := range unionKeys(doc, nil) {
		v := doc[k]
		switch {
		case k == "features" || isDepSection(k):
			continue
		case k == "target":
			for cfg, cv := range sub(doc, "target") {
				ct, ok := cv.(table)
				if !ok {
					out["target."+diffKey(cfg)] = renderValue(cv)
					continue
				}
				for ck, x := range ct {
					if isDepSection(ck) {
						continue
					}
					flattenValue("target."+diffKey(cfg)+"."+diffKey(ck), x, out)
				}
			}
		case k == "workspace":
			for wk, x := range sub(doc, "workspace") {
				if wk == "dependencies" {
					continue
				}
				flattenValue("workspace."+diffKey(wk), x, out)
			}
		case k == "package" || k == "project":
			for pk, x := range sub(doc, k) {
				if pk == "name" || pk == "build" { // build: the build-script target tells
					continue
				}
				flattenValue(k+"."+diffKey(pk), x, out)
			}
		case targetSections[k]:
			flattenTargets(k, v, out)
		default:
			flattenValue(diffKey(k), v, out)
		}
	}
}

func isDepSection(s string) bool {
	for _, d := range depSections {
		if s == d {
			return true
		}
	}
	return false
}

// flattenTargets flattens [lib] or [[bin]]-style sections, keyed by target
// name, leaving out name and path.
func flattenTargets(section string, v any, out map[string]string) {
	emit := func(prefix string, t table) {
		for k, x := range t {
			if k == "name" || k == "path" {
				continue
			}
			flattenValue(prefix+"."+diffKey(k), x, out)
		}
	}
	switch x := v.(type) {
	case table:
		emit(section, x)
	case []map[string]any:
		for i, t := range x {
			emit(section+"."+targetKey(t, i), t)
		}
	case []any:
		for i, e := range x {
			if t, ok := e.(table); ok {
				emit(section+"."+targetKey(t, i), t)
			} else {
				out[fmt.Sprintf("%s.%d", section, i)] = renderValue(e)
			}
		}
	default:
		out[section] = renderValue(v)
	}
}

func targetKey(t table, i int) string {
	if n, ok := t["name"].(string); ok && n != "" {
		return diffKey(n)
	}
	return strconv.Itoa(i)
}

func flattenValue(prefix string, v any, out map[string]string) {
	if t, ok := v.(table); ok && len(t) > 0 {
		for k, x := range t {
			flattenValue(prefix+"."+diffKey(k), x, out)
		}
		return
	}
	out[prefix] = renderValue(v)
}

// diffKey quotes a key for a dotted path when it is not a bare TOML key.
func diffKey(k string) string {
	if k == "" {
		return `""`
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "'" + k + "'"
		}
	}
	return k
}

// renderValue renders a decoded TOML value as inline TOML, keys sorted
// ("version" first).
func renderValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "(none)"
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = renderValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []string:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = strconv.Quote(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []map[string]any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = renderValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case table:
		if len(x) == 0 {
			return "{}"
		}
		keys := orderedKeys(unionKeys(x, nil))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = diffKey(k) + " = " + renderValue(x[k])
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	return fmt.Sprint(v)
}

// orderedKeys puts "version" first, the rest stays sorted.
func orderedKeys(keys []string) []string {
	for i, k := range keys {
		if k == "version" && i > 0 {
			copy(keys[1:i+1], keys[:i])
			keys[0] = "version"
			break
		}
	}
	return keys
}

// unionKeys returns the sorted union of two maps' keys.
func unionKeys[V any](a, b map[string]V) []string {
	seen := make(map[string]bool, len(a)+len(b))
	out := make([]string, 0, len(a)+len(b))
	for _, m := range []map[string]V{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// crates.io's registry source, left out of lockfile lines.
const cratesIO = "registry+https://github.com/rust-lang/crates.io-index"
