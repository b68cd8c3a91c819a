package recipe

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestBadInput: every bad workspace gets an *Error naming the file (and the
// line for TOML) with a fix, never a panic.
func TestBadInput(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		setup func(t *testing.T, dir string)
		file  string
		line  int
		msg   string
	}{
		{
			name:  "malformed root TOML",
			files: map[string]string{"Cargo.toml": "[workspace]\nmembers = [\"a\",\n\n[package\n"},
			file:  "Cargo.toml", line: 4, msg: "invalid TOML",
		},
		{
			name: "malformed member TOML",
			files: map[string]string{
				"Cargo.toml":   "[workspace]\nmembers = [\"a\"]\n",
				"a/Cargo.toml": "[package]\nname = \"a\"\nversion = = \"1\"\n",
			},
			file: "a/Cargo.toml", line: 3, msg: "invalid TOML",
		},
		{
			name:  "member glob matching nothing",
			files: map[string]string{"Cargo.toml": "[workspace]\nresolver = \"2\"\nmembers = [\"crates/*\"]\n"},
			file:  "Cargo.toml", line: 3, msg: "matches nothing",
		},
		{
			name: "member without Cargo.toml",
			files: map[string]string{
				"Cargo.toml":     "[workspace]\n\nmembers = [\"crates/*\"]\n",
				"crates/a/x.txt": "",
			},
			file: "Cargo.toml", line: 3, msg: "crates/a has no Cargo.toml",
		},
		{
			name:  "literal member missing",
			files: map[string]string{"Cargo.toml": "[workspace]\nmembers = [\"gone\"]\n"},
			file:  "Cargo.toml", line: 2, msg: `"gone" does not exist`,
		},
		{
			name: "missing path dependency",
			files: map[string]string{
				"Cargo.toml":        "[package]\nname = \"a\"\nversion = \"0.1.0\"\n\n[dependencies]\nhelper = { path = \"../helper\" }\n",
				"src/lib.rs":        "",
				"../helper/.keep":   "",
				"../helper/src/x.r": "",
			},
			file: "Cargo.toml", line: 6, msg: "helper",
		},
		{
			name: "path dependency escaping to /",
			files: map[string]string{
				"Cargo.toml": "[package]\nname = \"a\"\nversion = \"0.1.0\"\n\n[dependencies]\nroot = { path = \"../../../../../../../../../../../../../\" }\n",
				"src/lib.rs": "",
			},
			file: "Cargo.toml", line: 6, msg: "escapes to /",
		},
		{
			name: "symlink loop member",
			files: map[string]string{
				"Cargo.toml": "[workspace]\nmembers = [\"loop\"]\n",
			},
			setup: func(t *testing.T, dir string) {
				if err := os.Symlink("loop", filepath.Join(dir, "ws", "loop")); err != nil {
					t.Fatal(err)
				}
			},
			file: "Cargo.toml", line: 2, msg: "symbolic link loop",
		},
		{
			name: "symlink loop path dependency",
			files: map[string]string{
				"Cargo.toml": "[package]\nname = \"a\"\nversion = \"0.1.0\"\n\n[dependencies]\nb = { path = \"b\" }\n",
				"src/lib.rs": "",
			},
			setup: func(t *testing.T, dir string) {
				if err := os.Symlink("b", filepath.Join(dir, "ws", "b")); err != nil {
					t.Fatal(err)
				}
			},
			file: "Cargo.toml", line: 6, msg: "symbolic link loop",
		},
		{
			name:  "package without name",
			files: map[string]string{"Cargo.toml": "[package]\nversion = \"0.1.0\"\n"},
			file:  "Cargo.toml", line: 1, msg: "no `name`",
		},
		{
			name:  "bin without name",
			files: map[string]string{"Cargo.toml": "[package]\nname = \"a\"\nversion = \"0.1.0\"\n\n[[bin]]\npath = \"x.rs\"\n"},
			file:  "Cargo.toml", line: 5, msg: "bin.name is required",
		},
		{
			name:  "explicit bin with no file",
			files: map[string]string{"Cargo.toml": "[package]\nname = \"a\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[[bin]]\nname = \"ghost\"\n"},
			file:  "Cargo.toml", line: 7, msg: "can't find `ghost` bin",
		},
		{
			name:  "lib declared without source",
			files: map[string]string{"Cargo.toml": "[package]\nname = \"a\"\nversion = \"0.1.0\"\n\n[lib]\nname = \"a\"\n"},
			file:  "Cargo.toml", line: 5, msg: "can't find library",
		},
		{
			name: "malformed lockfile",
			files: map[string]string{
				"Cargo.toml": "[package]\nname = \"a\"\nversion = \"0.1.0\"\n",
				"src/lib.rs": "",
				"Cargo.lock": "version = 3\n\n[[package]]\nname = \"a\"\nversion = \n",
			},
			file: "Cargo.lock", line: 5, msg: "invalid TOML",
		},
		{
			name:  "no Cargo.toml at all",
			files: map[string]string{"README": ""},
			file:  "Cargo.toml", msg: "not found",
		},
		{
			name:  "wrong type for members",
			files: map[string]string{"Cargo.toml": "[workspace]\nmembers = \"a\"\n"},
			file:  "Cargo.toml", line: 2, msg: "must be a list",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ws := filepath.Join(dir, "ws")
			os.MkdirAll(ws, 0o755)
			for name, body := range tc.files {
				p := filepath.Join(ws, name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			_, err := Compute(context.Background(), ws)
			if err == nil {
				t.Fatal("want an error")
			}
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("want *recipe.Error, got %T: %v", err, err)
			}
			if !strings.HasSuffix(re.File, tc.file) {
				t.Errorf("file = %q, want %q (%v)", re.File, tc.file, err)
			}
			if tc.line != 0 && re.Line != tc.line {
				t.Errorf("line = %d, want %d (%v)", re.Line, tc.line, err)
			}
			if !strings.Contains(re.Msg, tc.msg) {
				t.Errorf("message %q does not contain %q", re.Msg, tc.msg)
			}
			if re.Fix == "" {
				t.Errorf("no fix in %v", err)
			}
			t.Logf("%v", err)
		})
	}
}

// FuzzParseManifest: the manifest reader and the target/masking code behind
// it never panic, whatever the bytes.
func FuzzParseManifest(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/fixtures/*/Cargo.toml")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("[package]\nname = \"x\"\n[[bin]]\nname = 3\n"))
	f.Add([]byte("[workspace]\nmembers = [1, 2]\n[workspace.dependencies]\na = { path = 3 }\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := ParseManifest("Cargo.toml", data)
		if err != nil {
			var re *Error
			if !errors.As(err, &re) || re.File == "" {
				t.Fatalf("error without file: %v", err)
			}
			return
		}
		// Run the whole pipeline on a one-package workspace made of it.
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "Cargo.toml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, "src", "bin"), 0o755)
		os.WriteFile(filepath.Join(dir, "src", "lib.rs"), nil, 0o644)
		os.WriteFile(filepath.Join(dir, "src", "main.rs"), nil, 0o644)
		text := canonicalTOML(doc)
		back, err := ParseManifest("canonical", []byte(text))
		if err != nil {
			t.Fatalf("canonical text does not parse: %v\n%s", err, text)
		}
		if !reflect.DeepEqual(normalizeDoc(doc), normalizeDoc(back)) {
			t.Fatalf("canonical round trip differs:\n%s", text)
		}
		r, err := Compute(context.Background(), dir)
		if err == nil {
			r.SkeletonFiles()
		}
	})
}

// TestCanonicalRoundTrip: decoding the canonical text gives back the
// document, for every fixture manifest.
func TestCanonicalRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/fixtures/*/*.toml")
	more, _ := filepath.Glob("testdata/fixtures/*/*/*.toml")
	files = append(files, more...)
	files = append(files, "testdata/hashbase/Cargo.toml", "testdata/hashbase/app/Cargo.toml")
	extra := []byte("[package]\nname = \"x\"\nf = 1.5\ni = -3\nd = 1979-05-27T07:32:00Z\nld = 1979-05-27\nlt = 07:32:00\nldt = 1979-05-27T07:32:00\n" +
		"s = \"tab\\tquote\\\" back\\\\ nl\\n uni \\u00e9 ctl \\u0001\"\n\"quoted key\" = true\nmixed = [1, \"a\", [2]]\ninl = [{ a = 1 }, { b = { c = 2 } }]\n" +
		"[[bin]]\nname = \"a\"\n[bin.sub]\nx = 1\n[[bin]]\nname = \"b\"\n[empty]\n")
	os.WriteFile(filepath.Join(t.TempDir(), "x"), extra, 0o644)
	check := func(name string, data []byte) {
		doc, err := ParseManifest(name, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		text := canonicalTOML(doc)
		back, err := ParseManifest(name, []byte(text))
		if err != nil {
			t.Fatalf("%s: canonical text does not parse: %v\n%s", name, err, text)
		}
		if !reflect.DeepEqual(normalizeDoc(doc), normalizeDoc(back)) {
			t.Fatalf("%s: round trip differs\n%s", name, text)
		}
		if again := canonicalTOML(back); again != text {
			t.Fatalf("%s: canonical form is not stable:\n%s\n---\n%s", name, text, again)
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		check(f, data)
	}
	check("extra", extra)
}

// normalizeDoc makes arrays of tables and plain arrays comparable.
func normalizeDoc(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = normalizeDoc(e)
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeDoc(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeDoc(e)
		}
		return out
	case time.Time:
		return x.Format(time.RFC3339Nano) + x.Location().String()
	}
	return v
}
