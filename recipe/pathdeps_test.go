package recipe

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestAbsolutePathDependency: an absolute `path` is taken as it is, as
// cargo does (a crate outside the workspace is shipped and watched like a
// relative one); a missing one is an error naming the manifest line and
// the absolute path, never a path below the workspace.
func TestAbsolutePathDependency(t *testing.T) {
	const pkg = "[package]\nname = %q\nversion = \"0.1.0\"\nedition = \"2021\"\n"
	lib := func(name string) map[string]string {
		return map[string]string{"Cargo.toml": strings.ReplaceAll(pkg, "%q", `"`+name+`"`), "src/lib.rs": ""}
	}
	cases := []struct {
		name string
		// root manifest; ABS is replaced by the temp directory (absolute)
		root string
		// crates below the temp directory, by directory
		crates map[string]map[string]string
		// want: manifests of the recipe (context-relative), outside dirs
		manifests []string
		outside   []string
		// or an error: file, line and message parts
		errFile  string
		errLine  int
		errParts []string
	}{
		{
			name:      "outside the workspace",
			root:      "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nledger = { path = \"ABS/libs/ledger\" }\n",
			crates:    map[string]map[string]string{"libs/ledger": lib("ledger")},
			manifests: []string{"libs/ledger/Cargo.toml", "ws/Cargo.toml"},
			outside:   []string{"libs/ledger"},
		},
		{
			name:      "inside the workspace",
			root:      "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nledger = { path = \"ABS/ws/crates/ledger\" }\n",
			crates:    map[string]map[string]string{"ws/crates/ledger": lib("ledger")},
			manifests: []string{"Cargo.toml", "crates/ledger/Cargo.toml"},
		},
		{
			name: "workspace dependency, and a member named absolutely",
			root: "[workspace]\nmembers = [\"ABS/ws/app\"]\n\n[workspace.dependencies]\nledger = { path = \"ABS/libs/ledger\" }\n",
			crates: map[string]map[string]string{
				"libs/ledger": lib("ledger"),
				"ws/app": {"Cargo.toml": "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nledger.workspace = true\n",
					"src/main.rs": "fn main() {}\n"},
			},
			manifests: []string{"libs/ledger/Cargo.toml", "ws/Cargo.toml", "ws/app/Cargo.toml"},
			outside:   []string{"libs/ledger"},
		},
		{
			name: "a member named absolutely",
			root: "[workspace]\nmembers = [\"ABS/ws/app\"]\n",
			crates: map[string]map[string]string{
				"ws/app": {"Cargo.toml": "[package]\nname = \"app\"\nversion = \"0.1.0\"\n", "src/main.rs": "fn main() {}\n"},
			},
			manifests: []string{"Cargo.toml", "app/Cargo.toml"},
		},
		{
			name:      "[patch]",
			root:      "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nledger = \"1\"\n\n[patch.crates-io]\nledger = { path = \"ABS/libs/ledger\" }\n",
			crates:    map[string]map[string]string{"libs/ledger": lib("ledger")},
			manifests: []string{"libs/ledger/Cargo.toml", "ws/Cargo.toml"},
			outside:   []string{"libs/ledger"},
		},
		{
			name:     "missing, below the temp directory",
			root:     "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nledger = { path = \"ABS/libs/ledger\" }\n",
			errFile:  "Cargo.toml",
			errLine:  7,
			errParts: []string{`path dependency "ledger"`, "ABS/libs/ledger/Cargo.toml not found"},
		},
		{
			name:     "missing at the filesystem root",
			root:     "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nledger = { path = \"/chefd-no-such-dir/crates/ledger\" }\n",
			errFile:  "Cargo.toml",
			errLine:  7,
			errParts: []string{"/chefd-no-such-dir/crates/ledger/Cargo.toml not found"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			write := func(p, body string) {
				p = filepath.Join(base, p)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "ABS", base)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("ws/Cargo.toml", tc.root)
			write("ws/src/main.rs", "fn main() {}\n")
			for dir, files := range tc.crates {
				for name, body := range files {
					write(filepath.Join(dir, name), body)
				}
			}
			r, err := Compute(context.Background(), filepath.Join(base, "ws"))
			if tc.errParts != nil {
				var re *Error
				if !errors.As(err, &re) {
					t.Fatalf("want a *recipe.Error, got %v", err)
				}
				if re.File != tc.errFile || re.Line != tc.errLine {
					t.Errorf("error at %s:%d, want %s:%d (%v)", re.File, re.Line, tc.errFile, tc.errLine, err)
				}
				for _, part := range tc.errParts {
					if part = strings.ReplaceAll(part, "ABS", base); !strings.Contains(re.Msg, part) {
						t.Errorf("error %q does not say %q", re.Msg, part)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range r.Manifests {
				got = append(got, m.Path)
			}
			if !slices.Equal(got, tc.manifests) {
				t.Errorf("manifests %q, want %q", got, tc.manifests)
			}
			if out := r.OutsideDirs(); !slices.Equal(out, tc.outside) {
				t.Errorf("outside dirs %q, want %q", out, tc.outside)
			}
			if r.HostRoot != r.ContextRoot {
				t.Errorf("HostRoot %q, want the context root %q (manifests name crates absolutely)", r.HostRoot, r.ContextRoot)
			}
		})
	}
}
