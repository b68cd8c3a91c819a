package recipe

// MaskedVersion replaces local crate versions, so that a release of a local
// crate does not change the recipe (the same placeholder cargo-chef uses).
const MaskedVersion = "0.0.1"

// metadataKeys are [package] (and [workspace.package]) keys that cannot
// change how any crate compiles: chefd drops them from the recipe so that
// editing them does not invalidate the cooked image. Local crates are
// compiled from their real manifests in the code build, so their
// CARGO_PKG_* values stay right.
var metadataKeys = []string{
	"authors", "categories", "description", "documentation", "homepage", "keywords",
	"license", "license-file", "metadata", "publish", "readme", "repository", "exclude", "include",
}

// deepCopy copies a decoded TOML value.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(x))
		for k, e := range x {
			c[k] = deepCopy(e)
		}
		return c
	case []map[string]any:
		c := make([]map[string]any, len(x))
		for i, e := range x {
			c[i] = deepCopy(e).(map[string]any)
		}
		return c
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = deepCopy(e)
		}
		return c
	default:
		return v
	}
}

// maskDeps masks the version requirement of path dependencies on masked
// local crates in one dependency table.
func maskDepTable(sec table, masked map[string]bool) {
	for k, v := range sec {
		t, ok := v.(table)
		if !ok {
			continue
		}
		if _, hasPath := t["path"]; !hasPath {
			continue
		}
		name := k
		if p, ok := t["package"].(string); ok && p != "" {
			name = p
		}
		if !masked[name] {
			continue
		}
		if _, ok := t["version"].(string); ok {
			t["version"] = MaskedVersion
		}
	}
}

func maskAllDeps(doc table, masked map[string]bool) {
	for _, s := range depSections {
		if sec := sub(doc, s); sec != nil {
			maskDepTable(sec, masked)
		}
	}
	if tg := sub(doc, "target"); tg != nil {
		for _, v := range tg {
			ct, _ := v.(table)
			for _, s := range depSections {
				if sec := sub(ct, s); sec != nil {
					maskDepTable(sec, masked)
				}
			}
		}
	}
}

// skeletonManifest returns the canonical, masked manifest text of c:
// targets explicit, lints and metadata dropped, local versions masked.
func skeletonManifest(c *crate, masked map[string]bool, rewrite func(doc table)) (string, error) {
	doc := deepCopy(c.m.doc).(table)
	if rewrite != nil {
		rewrite(doc)
	}
	delete(doc, "lints")
	delete(doc, "badges")
	if ws := sub(doc, "workspace"); ws != nil {
		delete(ws, "lints")
		delete(ws, "metadata")
		if wp := sub(ws, "package"); wp != nil {
			for _, k := range metadataKeys {
				delete(wp, k)
			}
			if _, ok := wp["version"].(string); ok {
				wp["version"] = MaskedVersion
			}
		}
		if wd := sub(ws, "dependencies"); wd != nil {
			maskDepTable(wd, masked)
		}
	}
	pkgKey := "package"
	if _, ok := doc["package"]; !ok {
		if _, ok := doc["project"]; ok {
			pkgKey = "project"
		}
	}
	if pkg := sub(doc, pkgKey); pkg != nil && c.targets != nil {
		for _, k := range metadataKeys {
			delete(pkg, k)
		}
		if _, isTable := pkg["version"].(table); !isTable && masked[c.m.name] {
			// a plain version, or none (cargo >= 1.75 reads it as 0.0.0):
			// the placeholder, matching the masked lockfile entry
			pkg["version"] = MaskedVersion
		}
		t := c.targets
		delete(doc, "lib")
		for _, k := range []string{"bin", "example", "test", "bench"} {
			delete(doc, k)
		}
		if t.lib != nil {
			doc["lib"] = t.lib
		}
		for k, list := range map[string][]table{"bin": t.bins, "example": t.examples, "test": t.tests, "bench": t.benches} {
			if len(list) > 0 {
				doc[k] = list
			}
		}
		for _, k := range []string{"autolib", "autobins", "autoexamples", "autotests", "autobenches"} {
			delete(pkg, k)
		}
		pkg["autobins"] = false
		pkg["autoexamples"] = false
		pkg["autotests"] = false
		pkg["autobenches"] = false
		switch len(t.builds) {
		case 0:
			pkg["build"] = false
		case 1:
			pkg["build"] = t.builds[0]
		default:
			l := make([]any, len(t.builds))
			for i, b := range t.builds {
				l[i] = b
			}
			pkg["build"] = l
		}
	}
	maskAllDeps(doc, masked)
	return canonicalTOML(doc), nil
}
