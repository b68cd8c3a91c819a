package recipe

import (
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The lockfile is masked and filtered textually, block by block, so the
// result keeps cargo's own formatting and `cargo build --locked` accepts it.

type lockPkg struct {
	name, version, source string
	lines                 []string
	deps                  []lockRef
}

type lockRef struct {
	name, version, source string
	line                  int // index into lines
}

type lockfile struct {
	header  []string
	pkgs    []*lockPkg
	trailer []string
}

// lockField matches `name = "..."`, `version = "..."` or `source = "..."`
// at the start of a line (trailing blanks allowed) and returns the key and
// the value between the quotes.
func lockField(line string) (key, value string, ok bool) {
	for _, k := range [...]string{"name", "version", "source"} {
		rest, found := strings.CutPrefix(line, k+` = "`)
		if !found {
			continue
		}
		rest = strings.TrimRight(rest, " \t\r")
		if !strings.HasSuffix(rest, `"`) {
			return "", "", false
		}
		return k, rest[:len(rest)-1], true
	}
	return "", "", false
}

// lockDep matches one entry line of a multi-line dependencies list,
// `"name version (source)",`, and returns what is between the quotes.
func lockDep(line string) (string, bool) {
	t := strings.TrimSpace(line)
	t = strings.TrimSpace(strings.TrimSuffix(t, ","))
	if len(t) < 2 || t[0] != '"' || t[len(t)-1] != '"' {
		return "", false
	}
	v := t[1 : len(t)-1]
	if strings.Contains(v, `"`) {
		return "", false
	}
	return v, true
}

// quoted returns every "..." string of an inline list.
func quoted(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(s[i+1:], '"')
		if j < 0 {
			return out
		}
		out = append(out, s[i+1:i+1+j])
		s = s[i+1+j+1:]
	}
}

// parseLock splits Cargo.lock text into [[package]] blocks. The text must
// already be valid TOML.
func parseLock(text string) *lockfile {
	lf := &lockfile{}
	var cur *lockPkg
	inTrailer, inDeps := false, false
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case inTrailer:
			lf.trailer = append(lf.trailer, line)
			continue
		case trimmed == "[[package]]":
			cur = &lockPkg{}
			lf.pkgs = append(lf.pkgs, cur)
			inDeps = false
		case strings.HasPrefix(trimmed, "["):
			inTrailer = true
			lf.trailer = append(lf.trailer, line)
			continue
		}
		if cur == nil {
			lf.header = append(lf.header, line)
			continue
		}
		cur.lines = append(cur.lines, line)
		if inDeps {
			if trimmed == "]" {
				inDeps = false
			} else if v, ok := lockDep(line); ok {
				r := parseRef(v)
				r.line = len(cur.lines) - 1
				cur.deps = append(cur.deps, r)
			}
			continue
		}
		if k, v, ok := lockField(line); ok {
			switch k {
			case "name":
				cur.name = v
			case "version":
				cur.version = v
			case "source":
				cur.source = v
			}
		}
		if strings.HasPrefix(trimmed, "dependencies = [") {
			rest := strings.TrimPrefix(trimmed, "dependencies = [")
			if strings.HasSuffix(rest, "]") { // inline list
				for _, q := range quoted(rest) {
					r := parseRef(q)
					r.line = -1
					cur.deps = append(cur.deps, r)
				}
			} else {
				inDeps = true
			}
		}
	}
	return lf
}

func parseRef(s string) lockRef {
	r := lockRef{}
	if i := strings.Index(s, " ("); i >= 0 && strings.HasSuffix(s, ")") {
		r.source = s[i+2 : len(s)-1]
		s = s[:i]
	}
	parts := strings.SplitN(s, " ", 2)
	r.name = parts[0]
	if len(parts) == 2 {
		r.version = parts[1]
	}
	return r
}

// resolve finds the package a dependency reference points at.
func (lf *lockfile) resolve(r lockRef) *lockPkg {
	var found *lockPkg
	for _, p := range lf.pkgs {
		if p.name != r.name || (r.version != "" && p.version != r.version) || (r.source != "" && p.source != r.source) {
			continue
		}
		if found != nil && r.version == "" {
			continue // ambiguous: cargo would have written a version
		}
		found = p
	}
	return found
}

// keepReachable drops every package not reachable from the local packages
// whose names are in roots.
func (lf *lockfile) keepReachable(roots map[string]bool) {
	keep := map[*lockPkg]bool{}
	var queue []*lockPkg
	for _, p := range lf.pkgs {
		if p.source == "" && roots[p.name] {
			keep[p] = true
			queue = append(queue, p)
		}
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, r := range p.deps {
			if d := lf.resolve(r); d != nil && !keep[d] {
				keep[d] = true
				queue = append(queue, d)
			}
		}
	}
	out := lf.pkgs[:0]
	for _, p := range lf.pkgs {
		if keep[p] {
			out = append(out, p)
		}
	}
	lf.pkgs = out
}

// mask replaces the version of every local (source-less) package named in
// local, and the references to them.
func (lf *lockfile) mask(local map[string]bool) {
	old := map[string]bool{} // "name version" of masked packages
	for _, p := range lf.pkgs {
		if p.source != "" || !local[p.name] || p.version == "" {
			continue
		}
		old[p.name+" "+p.version] = true
		for i, l := range p.lines {
			if k, _, ok := lockField(l); ok && k == "version" {
				p.lines[i] = `version = "` + MaskedVersion + `"`
			}
		}
		p.version = MaskedVersion
	}
	for _, p := range lf.pkgs {
		for i, r := range p.deps {
			if r.source != "" || r.version == "" || !old[r.name+" "+r.version] {
				continue
			}
			p.deps[i].version = MaskedVersion
			if r.line >= 0 {
				p.lines[r.line] = strings.Replace(p.lines[r.line], `"`+r.name+" "+r.version+`"`, `"`+r.name+" "+MaskedVersion+`"`, 1)
			}
		}
	}
	sort.SliceStable(lf.pkgs, func(i, j int) bool {
		a, b := lf.pkgs[i], lf.pkgs[j]
		if a.name != b.name {
			return a.name < b.name
		}
		if c := compareSemver(a.version, b.version); c != 0 {
			return c < 0
		}
		return a.source < b.source
	})
}

// externalCount is the number of packages with a source (registry or git).
func (lf *lockfile) externalCount() int {
	n := 0
	for _, p := range lf.pkgs {
		if p.source != "" {
			n++
		}
	}
	return n
}

func (lf *lockfile) String() string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(strings.Join(lf.header, "\n"), "\n "))
	for _, p := range lf.pkgs {
		b.WriteString("\n\n")
		b.WriteString(strings.TrimRight(strings.Join(p.lines, "\n"), "\n "))
	}
	if len(lf.trailer) > 0 {
		b.WriteString("\n\n")
		b.WriteString(strings.TrimRight(strings.Join(lf.trailer, "\n"), "\n "))
	}
	b.WriteString("\n")
	return strings.TrimLeft(b.String(), "\n")
}

// compareSemver orders two versions the semver way (pre-releases first).
func compareSemver(a, b string) int {
	split := func(v string) ([3]uint64, string) {
		var n [3]uint64
		if i := strings.IndexByte(v, '+'); i >= 0 {
			v = v[:i]
		}
		pre := ""
		if i := strings.IndexByte(v, '-'); i >= 0 {
			pre, v = v[i+1:], v[:i]
		}
		for i, p := range strings.SplitN(v, ".", 3) {
			n[i], _ = strconv.ParseUint(p, 10, 64)
		}
		return n, pre
	}
	na, pa := split(a)
	nb, pb := split(b)
	for i := range na {
		if na[i] != nb[i] {
			if na[i] < nb[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case pa == pb:
		return 0
	case pa == "":
		return 1
	case pb == "":
		return -1
	}
	ia, ib := strings.Split(pa, "."), strings.Split(pb, ".")
	for i := 0; i < len(ia) && i < len(ib); i++ {
		if ia[i] == ib[i] {
			continue
		}
		xa, ea := strconv.ParseUint(ia[i], 10, 64)
		xb, eb := strconv.ParseUint(ib[i], 10, 64)
		switch {
		case ea == nil && eb == nil:
			if xa < xb {
				return -1
			}
			return 1
		case ea == nil:
			return -1
		case eb == nil:
			return 1
		case ia[i] < ib[i]:
			return -1
		default:
			return 1
		}
	}
	switch {
	case len(ia) < len(ib):
		return -1
	case len(ia) > len(ib):
		return 1
	}
	return 0
}

// lockCanonical reports whether text is a lockfile in the form cargo writes
// (comments, `key = "string"` or `key = 123`, `[[package]]`-style headers,
// dependency lists of plain strings, `[metadata]` checksums), with no key
// repeated in a table. Such text is always valid TOML, so Compute skips the
// full TOML parse for it (a third of a cold prepare on a workspace with a
// few hundred locked packages); anything else is parsed in full and gets
// the parser's error. FuzzLockCanonical checks the implication.
func lockCanonical(text string) bool {
	if !utf8.ValidString(text) {
		return false
	}
	keys := map[string]bool{}
	headers := map[string]bool{}
	inList, top := false, true
	for len(text) > 0 {
		line := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		for i := 0; i < len(line); i++ {
			if c := line[i]; c < 0x20 && c != '\t' || c == 0x7f {
				return false
			}
		}
		t := trimTOML(line)
		if inList {
			switch {
			case t == "]":
				inList = false
			case strings.HasSuffix(t, ",") && plainString(trimTOML(t[:len(t)-1])): // cargo ends every entry with a comma
			default:
				return false
			}
			continue
		}
		switch {
		case t == "" || strings.HasPrefix(t, "#"):
		case t == "[[package]]" || t == "[[patch.unused]]":
			clear(keys)
			top = false
		case t == "[metadata]":
			if headers[t] {
				return false
			}
			headers[t] = true
			clear(keys)
			top = false
		default:
			k, v, ok := strings.Cut(t, " = ")
			if !ok || !(bareKey(k) || plainString(k)) {
				return false
			}
			if plainString(k) {
				k = k[1 : len(k)-1]
			}
			// cargo writes only `version` above the first table; any other
			// top-level key could clash with a table name
			if keys[k] || top && k != "version" {
				return false
			}
			keys[k] = true
			switch {
			case v == "[":
				inList = true
			case plainString(v), isDigits(v), inlineStrings(v):
			default:
				return false
			}
		}
	}
	return !inList
}

// plainString: a basic TOML string with no escapes and no quotes inside.
func plainString(s string) bool {
	return len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' && !strings.ContainsAny(s[1:len(s)-1], "\"\\")
}

// isDigits: a small decimal integer (cargo writes `version = 3`).
func isDigits(s string) bool {
	if s == "" || len(s) > 9 || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// inlineStrings: ["a", "b"] or [].
func inlineStrings(s string) bool {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return false
	}
	body := trimTOML(s[1 : len(s)-1])
	if body == "" {
		return true
	}
	for _, e := range strings.Split(strings.TrimSuffix(body, ","), ",") {
		if !plainString(trimTOML(e)) {
			return false
		}
	}
	return true
}

// trimTOML trims TOML whitespace (spaces and tabs only).
func trimTOML(s string) string { return strings.Trim(s, " \t") }
