package recipe

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/BurntSushi/toml"

	"github.com/chefd/chefd/internal/safefile"
)

// table is a decoded TOML table.
type table = map[string]any

// manifest is one Cargo.toml as read from disk.
type manifest struct {
	abs  string // absolute path of Cargo.toml
	dir  string // absolute directory
	rel  string // path shown to the user (relative to the workspace root when inside it)
	raw  []byte
	doc  table
	pkg  table // [package] (or legacy [project]); nil for a virtual manifest
	ws   table // [workspace]; nil when absent
	name string
}

// ParseManifest decodes Cargo.toml text. It is the manifest reader that the
// fuzz target exercises: it must return an error, never panic, on any input.
func ParseManifest(name string, data []byte) (map[string]any, error) {
	doc := table{}
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return nil, tomlError(name, err)
	}
	return doc, nil
}

// readManifest reads and decodes dir/Cargo.toml. shown is how the file is
// named in errors.
func readManifest(t *tracker, dir, shown string) (*manifest, error) {
	abs := filepath.Join(dir, "Cargo.toml")
	data, err := t.readFile(abs, safefile.TextLimit)
	if err != nil {
		return nil, fileError(shown, err)
	}
	doc, err := ParseManifest(shown, data)
	if err != nil {
		return nil, err
	}
	m := &manifest{abs: abs, dir: dir, rel: shown, raw: data, doc: doc}
	if p, ok := doc["package"].(table); ok {
		m.pkg = p
	} else if p, ok := doc["project"].(table); ok {
		m.pkg = p
	} else if _, present := doc["package"]; present {
		return nil, &Error{File: shown, Line: lineOf(data, "package"), Msg: "`package` must be a table",
			Fix: "write it as a [package] section"}
	}
	if w, ok := doc["workspace"].(table); ok {
		m.ws = w
	} else if _, present := doc["workspace"]; present {
		return nil, &Error{File: shown, Line: lineOf(data, "workspace"), Msg: "`workspace` must be a table",
			Fix: "write it as a [workspace] section"}
	}
	if m.pkg != nil {
		name, ok := m.pkg["name"].(string)
		if !ok || strings.TrimSpace(name) == "" {
			return nil, &Error{File: shown, Line: lineOf(data, "package"), Msg: "[package] has no `name`",
				Fix: `add name = "<crate name>" to [package]`}
		}
		m.name = name
	}
	if m.pkg == nil && m.ws == nil {
		return nil, &Error{File: shown, Msg: "manifest has neither [package] nor [workspace]",
			Fix: "add a [package] section (a crate) or a [workspace] section (a virtual workspace)"}
	}
	return m, nil
}

// fileError explains a failure to read a file.
func fileError(shown string, err error) *Error {
	var (
		notRegular *safefile.NotRegularError
		tooLarge   *safefile.TooLargeError
	)
	switch {
	case safefile.Dangling(err) != nil:
		return &Error{File: shown, Msg: safefile.Dangling(err).Reason(), Err: err,
			Fix: "point the link at the real file, or remove the link"}
	case errors.As(err, &notRegular):
		return &Error{File: shown, Msg: notRegular.Reason(), Err: err,
			Fix: "replace it with a regular file (cargo reads it too)"}
	case errors.As(err, &tooLarge):
		return &Error{File: shown, Msg: tooLarge.Reason(), Err: err,
			Fix: "no real " + path.Base(shown) + " is this large; restore the file (from git, or let cargo regenerate a Cargo.lock)"}
	case errors.Is(err, fs.ErrNotExist):
		return &Error{File: shown, Msg: "file not found", Err: err,
			Fix: "create it, or remove the reference to its directory"}
	case errors.Is(err, syscall.ELOOP):
		return &Error{File: shown, Msg: "symbolic link loop", Err: err,
			Fix: "a symlink on this path points back to itself; replace it with the real directory"}
	case errors.Is(err, syscall.EISDIR):
		return &Error{File: shown, Msg: "is a directory, not a file", Err: err, Fix: "remove or rename that directory"}
	default:
		return &Error{File: shown, Msg: err.Error(), Err: err, Fix: "check the file's permissions"}
	}
}

// str returns t[key] as a string.
func str(t table, key string) (string, bool) {
	if t == nil {
		return "", false
	}
	s, ok := t[key].(string)
	return s, ok
}

// boolean returns t[key] as a bool (present, value).
func boolean(t table, key string) (bool, bool) {
	if t == nil {
		return false, false
	}
	b, ok := t[key].(bool)
	return b, ok
}

// sub returns t[key] as a table.
func sub(t table, key string) table {
	if t == nil {
		return nil
	}
	s, _ := t[key].(table)
	return s
}

// strList returns t[key] as a list of strings.
func strList(t table, key string) ([]string, bool) {
	v, ok := t[key]
	if !ok {
		return nil, true
	}
	switch l := v.(type) {
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	case []string:
		return l, true
	}
	return nil, false
}

// tableList returns t[key] as an array of tables.
func tableList(t table, key string) ([]table, bool) {
	v, ok := t[key]
	if !ok {
		return nil, true
	}
	switch l := v.(type) {
	case []map[string]any:
		return l, true
	case []any:
		out := make([]table, 0, len(l))
		for _, e := range l {
			m, ok := e.(table)
			if !ok {
				return nil, false
			}
			out = append(out, m)
		}
		return out, true
	}
	return nil, false
}

// depSections are the dependency tables of a manifest, both spellings.
var depSections = []string{
	"dependencies", "dev-dependencies", "dev_dependencies", "build-dependencies", "build_dependencies",
}

// dep is one dependency entry.
type dep struct {
	key     string // the name in the table (may be a rename)
	pkgName string // the real package name
	t       table  // nil when written as a plain version string
	section string
}

// eachDep calls fn for every dependency of doc: plain sections and
// [target.<cfg>] sections.
func eachDep(doc table, fn func(d dep)) {
	visit := func(sec table, section string) {
		keys := make([]string, 0, len(sec))
		for k := range sec {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			d := dep{key: k, pkgName: k, section: section}
			if t, ok := sec[k].(table); ok {
				d.t = t
				if p, ok := t["package"].(string); ok && p != "" {
					d.pkgName = p
				}
			}
			fn(d)
		}
	}
	for _, s := range depSections {
		if sec := sub(doc, s); sec != nil {
			visit(sec, s)
		}
	}
	if tg := sub(doc, "target"); tg != nil {
		cfgs := make([]string, 0, len(tg))
		for c := range tg {
			cfgs = append(cfgs, c)
		}
		sort.Strings(cfgs)
		for _, c := range cfgs {
			ct, _ := tg[c].(table)
			for _, s := range depSections {
				if sec := sub(ct, s); sec != nil {
					visit(sec, "target."+c+"."+s)
				}
			}
		}
	}
}

// relSlash returns target relative to base with forward slashes.
func relSlash(base, target string) string {
	r, err := filepath.Rel(base, target)
	if err != nil {
		return filepath.ToSlash(target)
	}
	return filepath.ToSlash(r)
}

func errorf(file string, line int, fix, format string, args ...any) *Error {
	return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...), Fix: fix}
}
