package watcher

import (
	"bytes"
	"path"
	"strings"
)

// A small gitignore matcher (gitignore(5) semantics, which differ from
// .dockerignore):
//
//   - a pattern without a slash (other than a trailing one) matches the
//     base name at any depth below the .gitignore's directory;
//   - a pattern with a leading or middle slash is anchored to that directory;
//   - a trailing slash matches directories only;
//   - "**/" leading, "/**" trailing and "/**/" in the middle span directories;
//   - "!" negates, the last matching pattern wins, a deeper .gitignore
//     overrides a shallower one;
//   - a file inside an excluded directory cannot be re-included: the walker
//     never descends into ignored directories, which gives that rule for free.

type gitPattern struct {
	segs     []string // anchored: glob per path segment ("**" spans segments); else one glob for the base name
	anchored bool
	dirOnly  bool
	negate   bool
}

type gitRules struct {
	pats []gitPattern
}

// parseGitignore parses the content of a .gitignore (or info/exclude) file.
// It returns nil when the file has no usable pattern.
func parseGitignore(data []byte) *gitRules {
	var r gitRules
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	for _, raw := range strings.Split(string(data), "\n") {
		if p, ok := parseGitLine(raw); ok {
			r.pats = append(r.pats, p)
		}
	}
	if len(r.pats) == 0 {
		return nil
	}
	return &r
}

func parseGitLine(line string) (gitPattern, bool) {
	var p gitPattern
	line = strings.TrimSuffix(line, "\r")
	if line == "" || line[0] == '#' {
		return p, false
	}
	// Trailing spaces are dropped unless escaped with a backslash.
	for strings.HasSuffix(line, " ") && !strings.HasSuffix(line, `\ `) {
		line = line[:len(line)-1]
	}
	if line == "" {
		return p, false
	}
	if line[0] == '!' {
		p.negate = true
		line = line[1:]
	}
	if strings.HasSuffix(line, "/") {
		p.dirOnly = true
		line = strings.TrimRight(line, "/")
	}
	if line == "" {
		return p, false
	}
	if strings.Contains(line, "/") {
		p.anchored = true
		line = strings.TrimLeft(line, "/")
		if line == "" {
			return p, false
		}
	}
	line = fixCharClasses(line)
	if !p.anchored {
		if _, err := path.Match(line, ""); err != nil {
			return p, false
		}
		p.segs = []string{line}
		return p, true
	}
	for _, s := range strings.Split(line, "/") {
		if s == "" {
			continue // "a//b" is "a/b"
		}
		if s == "**" && len(p.segs) > 0 && p.segs[len(p.segs)-1] == "**" {
			continue
		}
		if _, err := path.Match(s, ""); err != nil {
			return p, false
		}
		p.segs = append(p.segs, s)
	}
	return p, len(p.segs) > 0
}

// fixCharClasses turns gitignore's "[!...]" negated classes into the
// "[^...]" that path.Match understands.
func fixCharClasses(s string) string {
	if !strings.Contains(s, "[!") {
		return s
	}
	b := []byte(s)
	for i := 0; i < len(b)-1; i++ {
		switch b[i] {
		case '\\':
			i++
		case '[':
			if b[i+1] == '!' {
				b[i+1] = '^'
			}
		}
	}
	return string(b)
}

// match evaluates rel (relative to the .gitignore's directory) against the
// rules. matched says whether any pattern matched; ignore is the verdict of
// the last matching one.
func (r *gitRules) match(rel string, isDir bool) (matched, ignore bool) {
	if r == nil {
		return false, false
	}
	base := rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		base = rel[i+1:]
	}
	for i := len(r.pats) - 1; i >= 0; i-- {
		p := &r.pats[i]
		if p.dirOnly && !isDir {
			continue
		}
		var ok bool
		if p.anchored {
			ok = matchSegs(p.segs, rel)
		} else {
			ok, _ = path.Match(p.segs[0], base)
		}
		if ok {
			return true, !p.negate
		}
	}
	return false, false
}

// matchSegs matches a slash-separated name against per-segment globs where
// "**" matches zero or more whole segments (at least one when trailing).
func matchSegs(pat []string, name string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			if len(pat) == 1 {
				return name != ""
			}
			rest := name
			for {
				if matchSegs(pat[1:], rest) {
					return true
				}
				i := strings.IndexByte(rest, '/')
				if i < 0 {
					return false
				}
				rest = rest[i+1:]
			}
		}
		if name == "" {
			return false
		}
		seg, rest, _ := strings.Cut(name, "/")
		if ok, _ := path.Match(pat[0], seg); !ok {
			return false
		}
		pat, name = pat[1:], rest
	}
	return name == ""
}
