// Diff lines of the lockfile and of the other files a recipe carries.

package recipe

import (
	"fmt"
	"sort"
	"strings"
)

type lockVer struct{ version, source string }

func (v lockVer) String() string {
	if v.source == "" || v.source == cratesIO {
		return v.version
	}
	src := v.source
	if i := strings.IndexByte(src, '#'); i >= 0 && strings.HasPrefix(src, "git+") {
		src = src[:i] // the commit is shown by the version change anyway
	}
	return v.version + " (" + src + ")"
}

// fileAddedRemoved handles a file that is absent on one side or unchanged;
// done is false when both exist and differ.
func fileAddedRemoved(a, b *File) (lines []string, done bool) {
	switch {
	case a == nil && b == nil:
		return nil, true
	case a == nil:
		return []string{"+ " + b.Path}, true
	case b == nil:
		return []string{"- " + a.Path}, true
	case a.Contents == b.Contents && a.Path == b.Path:
		return nil, true
	}
	return nil, false
}

func diffLockFile(a, b *File) []string {
	if lines, done := fileAddedRemoved(a, b); done {
		return lines
	}
	label := b.Path
	versions := func(text string) map[string][]lockVer {
		out := map[string][]lockVer{}
		for _, p := range parseLock(text).pkgs {
			if p.source == "" && p.version == MaskedVersion {
				continue // a masked local crate: the manifest lines tell
			}
			v := lockVer{p.version, p.source}
			if strings.HasPrefix(p.source, "git+") {
				// the commit after '#' is what pins a git package
				if i := strings.IndexByte(p.source, '#'); i >= 0 {
					v.version += "#" + shortCommit(p.source[i+1:])
				}
			}
			out[p.name] = append(out[p.name], v)
		}
		return out
	}
	va, vb := versions(a.Contents), versions(b.Contents)
	var out []string
	for _, name := range unionKeys(va, vb) {
		removed := minusVers(va[name], vb[name])
		added := minusVers(vb[name], va[name])
		if len(removed) == 1 && len(added) == 1 {
			x, y := removed[0], added[0]
			if x.version == y.version {
				out = append(out, fmt.Sprintf("%s: %s %s source %s -> %s", label, name, x.version, orDash(x.source), orDash(y.source)))
			} else {
				out = append(out, fmt.Sprintf("%s: %s %s -> %s", label, name, x, y))
			}
			continue
		}
		for _, v := range removed {
			out = append(out, fmt.Sprintf("%s: - %s %s", label, name, v))
		}
		for _, v := range added {
			out = append(out, fmt.Sprintf("%s: + %s %s", label, name, v))
		}
	}
	if len(out) == 0 {
		out = append(out, label+" changed")
	}
	return out
}

func shortCommit(c string) string {
	if len(c) > 8 {
		return c[:8]
	}
	return c
}

func minusVers(a, b []lockVer) []lockVer {
	var out []lockVer
	for _, x := range a {
		found := false
		for _, y := range b {
			if x == y {
				found = true
				break
			}
		}
		if !found {
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool { return compareSemver(out[i].version, out[j].version) < 0 })
	return out
}

// diffTextFile compares the cargo config or toolchain files: "+ path",
// "- path", or "path changed (key a -> b; ...)".
func diffTextFile(a, b *File) []string {
	if lines, done := fileAddedRemoved(a, b); done {
		return lines
	}
	head := b.Path + " changed"
	if a.Path != b.Path {
		head = a.Path + " -> " + b.Path
		if a.Contents == b.Contents {
			return []string{head}
		}
	}
	var parts []string
	da, errA := ParseManifest(a.Path, []byte(a.Contents))
	db, errB := ParseManifest(b.Path, []byte(b.Contents))
	if errA == nil && errB == nil && (len(da) > 0 || len(db) > 0) {
		fa, fb := map[string]string{}, map[string]string{}
		for k, v := range da {
			flattenValue(diffKey(k), v, fa)
		}
		for k, v := range db {
			flattenValue(diffKey(k), v, fb)
		}
		for _, k := range unionKeys(fa, fb) {
			x, inA := fa[k]
			y, inB := fb[k]
			switch {
			case !inA:
				parts = append(parts, fmt.Sprintf("+ %s = %s", k, y))
			case !inB:
				parts = append(parts, fmt.Sprintf("- %s = %s", k, x))
			case x != y:
				parts = append(parts, fmt.Sprintf("%s %s -> %s", k, x, y))
			}
		}
	} else {
		// legacy one-line rust-toolchain: "1.80.0"
		x, y := strings.TrimSpace(a.Contents), strings.TrimSpace(b.Contents)
		if !strings.Contains(x, "\n") && !strings.Contains(y, "\n") && len(x) < 80 && len(y) < 80 {
			parts = append(parts, x+" -> "+y)
		}
	}
	const maxParts = 5
	if len(parts) > maxParts {
		parts = append(parts[:maxParts], fmt.Sprintf("and %d more", len(parts)-maxParts))
	}
	if len(parts) > 0 {
		head += " (" + strings.Join(parts, "; ") + ")"
	}
	return []string{head}
}
