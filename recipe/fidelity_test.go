package recipe

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden recipes under testdata/golden")

// needCargo returns the cargo binary, failing under CI when it is missing.
func needCargo(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("cargo")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cargo is required under CI but not found: %v", err)
		}
		t.Skip("cargo not installed")
	}
	return p
}

// copyTree copies a fixture into a temp dir (symlinks kept).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if info.Mode()&os.ModeSymlink != 0 {
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, out)
		}
		if info.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fixtureRoot returns the workspace root inside a fixture copy.
func fixtureRoot(dir string) string {
	if b, err := os.ReadFile(filepath.Join(dir, "ROOT")); err == nil {
		return filepath.Join(dir, strings.TrimSpace(string(b)))
	}
	return dir
}

type metaTarget struct {
	Kind             []string `json:"kind"`
	CrateTypes       []string `json:"crate_types"`
	Name             string   `json:"name"`
	Path             string   `json:"path"`
	RequiredFeatures []string `json:"required-features"`
	Edition          string   `json:"edition"`
	Test             bool     `json:"test"`
	Doctest          bool     `json:"doctest"`
}

type metaDep struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Optional bool     `json:"optional"`
	Features []string `json:"features"`
	Target   string   `json:"target"`
	Rename   string   `json:"rename"`
	Default  bool     `json:"uses_default_features"`
	Req      string   `json:"req"`
	Path     string   `json:"path"`
}

type metaPkg struct {
	Name     string              `json:"name"`
	Edition  string              `json:"edition"`
	Features map[string][]string `json:"features"`
	Links    string              `json:"links"`
	Targets  []metaTarget        `json:"targets"`
	Deps     []metaDep           `json:"dependencies"`
}

type metadata struct {
	Members        []string
	DefaultMembers []string
	Packages       []metaPkg
}

// cargoMetadata runs `cargo metadata --no-deps --offline` in dir and
// normalises the parts the recipe must reproduce.
func cargoMetadata(t *testing.T, cargo, dir string) metadata {
	t.Helper()
	cmd := exec.Command(cargo, "metadata", "--no-deps", "--offline", "--format-version", "1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CARGO_TARGET_DIR="+filepath.Join(t.TempDir(), "target"))
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("cargo metadata in %s: %v\n%s", dir, err, msg)
	}
	var raw struct {
		Packages []struct {
			metaPkg
			ID           string `json:"id"`
			ManifestPath string `json:"manifest_path"`
			Targets      []struct {
				metaTarget
				SrcPath string `json:"src_path"`
			} `json:"targets"`
		} `json:"packages"`
		WorkspaceMembers        []string `json:"workspace_members"`
		WorkspaceDefaultMembers []string `json:"workspace_default_members"`
		WorkspaceRoot           string   `json:"workspace_root"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	idName := map[string]string{}
	var md metadata
	for _, p := range raw.Packages {
		idName[p.ID] = p.Name
		pkgDir := filepath.Dir(p.ManifestPath)
		mp := p.metaPkg
		mp.Targets = nil
		for _, tg := range p.Targets {
			mt := tg.metaTarget
			mt.Path = relSlash(pkgDir, tg.SrcPath)
			sort.Strings(mt.Kind)
			sort.Strings(mt.CrateTypes)
			sort.Strings(mt.RequiredFeatures)
			mp.Targets = append(mp.Targets, mt)
		}
		sort.Slice(mp.Targets, func(i, j int) bool {
			a, b := mp.Targets[i], mp.Targets[j]
			if a.Name != b.Name {
				return a.Name < b.Name
			}
			return strings.Join(a.Kind, ",") < strings.Join(b.Kind, ",")
		})
		for i := range mp.Deps {
			d := &mp.Deps[i]
			sort.Strings(d.Features)
			if d.Path != "" {
				d.Path = relSlash(pkgDir, d.Path)
				d.Req = "" // local versions are masked
			}
		}
		sort.Slice(mp.Deps, func(i, j int) bool {
			a, b := mp.Deps[i], mp.Deps[j]
			return a.Name+a.Kind+a.Target+a.Rename < b.Name+b.Kind+b.Target+b.Rename
		})
		md.Packages = append(md.Packages, mp)
	}
	sort.Slice(md.Packages, func(i, j int) bool { return md.Packages[i].Name < md.Packages[j].Name })
	for _, id := range raw.WorkspaceMembers {
		md.Members = append(md.Members, idName[id])
	}
	for _, id := range raw.WorkspaceDefaultMembers {
		md.DefaultMembers = append(md.DefaultMembers, idName[id])
	}
	sort.Strings(md.Members)
	sort.Strings(md.DefaultMembers)
	return md
}

func fixtureNames(t *testing.T) []string {
	ents, err := os.ReadDir("testdata/fixtures")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestFidelity checks, for every fixture, that cargo sees the same packages,
// targets and dependencies in the skeleton as in the original workspace.
func TestFidelity(t *testing.T) {
	cargo := needCargo(t)
	names := fixtureNames(t)
	if len(names) < 15 {
		t.Fatalf("want at least 15 fixtures, have %d", len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := t.TempDir()
			copyTree(t, filepath.Join("testdata/fixtures", name), src)
			root := fixtureRoot(src)
			want := cargoMetadata(t, cargo, root)

			r, err := Compute(context.Background(), root)
			if err != nil {
				t.Fatalf("Compute: %v", err)
			}
			checkSkeleton(t, cargo, r, want)
		})
	}
}

// checkSkeleton writes r's skeleton and fails unless cargo metadata sees in
// it what it saw in the original (want).
func checkSkeleton(t *testing.T, cargo string, r *Recipe, want metadata) {
	t.Helper()
	skel := t.TempDir()
	if err := r.WriteSkeleton(skel); err != nil {
		t.Fatal(err)
	}
	got := cargoMetadata(t, cargo, filepath.Join(skel, r.WorkspaceDir))
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.MarshalIndent(got, "", " ")
		wj, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("skeleton metadata differs\n--- skeleton:\n%s\n--- original:\n%s", gj, wj)
	}
}

// TestGolden pins each fixture's recipe JSON (run with -update to accept).
func TestGolden(t *testing.T) {
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			src := t.TempDir()
			copyTree(t, filepath.Join("testdata/fixtures", name), src)
			r, err := Compute(context.Background(), fixtureRoot(src))
			if err != nil {
				t.Fatalf("Compute: %v", err)
			}
			got, err := r.JSON()
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata/golden", name+".json")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./recipe -run TestGolden -update)", err)
			}
			if strings.TrimSpace(string(want)) != strings.TrimSpace(string(got)) {
				t.Errorf("recipe differs from %s (run with -update if intended)\n%s", golden, got)
			}
		})
	}
}

// TestFidelityBinFilter: with one binary selected, the filtered skeleton
// still loads in cargo, and every package it keeps looks to cargo exactly
// as in the original workspace.
func TestFidelityBinFilter(t *testing.T) {
	cargo := needCargo(t)
	checked := 0
	for _, name := range fixtureNames(t) {
		src := t.TempDir()
		copyTree(t, filepath.Join("testdata/fixtures", name), src)
		root := fixtureRoot(src)
		full, err := Compute(context.Background(), root)
		if err != nil {
			t.Fatal(err)
		}
		bins := full.Bins()
		if len(bins) == 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			want := cargoMetadata(t, cargo, root)
			byName := map[string]metaPkg{}
			for _, p := range want.Packages {
				byName[p.Name] = p
			}
			r, err := Compute(context.Background(), root, WithIntent(Intent{Bins: bins[:1]}))
			if err != nil {
				t.Fatalf("Compute --bin %s: %v", bins[0], err)
			}
			skel := t.TempDir()
			if err := r.WriteSkeleton(skel); err != nil {
				t.Fatal(err)
			}
			got := cargoMetadata(t, cargo, filepath.Join(skel, r.WorkspaceDir))
			if len(got.Packages) == 0 {
				t.Fatal("filtered skeleton has no package")
			}
			for _, p := range got.Packages {
				if !reflect.DeepEqual(p, byName[p.Name]) {
					gj, _ := json.MarshalIndent(p, "", " ")
					wj, _ := json.MarshalIndent(byName[p.Name], "", " ")
					t.Errorf("package %s differs with --bin %s\n--- skeleton:\n%s\n--- original:\n%s", p.Name, bins[0], gj, wj)
				}
			}
		})
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d fixtures have binaries", checked)
	}
}

// TestFidelityCorpus runs the fidelity check on every crate or workspace
// directory under $CHEFD_CORPUS (for example crate sources unpacked from
// Debian's librust-*-dev packages): real-world manifests, not fixtures
// written for chefd. Published crates carry two manifests: Cargo.toml as
// cargo package normalised it, and Cargo.toml.orig as its authors wrote
// it (auto-discovery and all); both are checked. Manifests that cargo
// itself cannot load (an .orig inheriting from a workspace it was cut out
// of, say) are counted and skipped. Without CHEFD_CORPUS the test does not
// run.
func TestFidelityCorpus(t *testing.T) {
	corpus := os.Getenv("CHEFD_CORPUS")
	if corpus == "" {
		t.Skip("set CHEFD_CORPUS to a directory of crate sources")
	}
	cargo := needCargo(t)
	ents, err := os.ReadDir(corpus)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	count := map[string]int{}
	t.Run("crates", func(t *testing.T) {
		for _, e := range ents {
			dir := filepath.Join(corpus, e.Name())
			for _, manifest := range []string{"Cargo.toml", "Cargo.toml.orig"} {
				if _, err := os.Stat(filepath.Join(dir, manifest)); err != nil {
					continue
				}
				t.Run(e.Name()+"/"+manifest, func(t *testing.T) {
					t.Parallel()
					src := t.TempDir()
					copyTree(t, dir, src)
					if manifest != "Cargo.toml" {
						if err := os.Rename(filepath.Join(src, manifest), filepath.Join(src, "Cargo.toml")); err != nil {
							t.Fatal(err)
						}
					}
					cmd := exec.Command(cargo, "metadata", "--no-deps", "--offline", "--format-version", "1")
					cmd.Dir = src
					if err := cmd.Run(); err != nil {
						mu.Lock()
						count[manifest+" unloadable"]++
						mu.Unlock()
						t.Skipf("cargo cannot load it: %v", err)
					}
					want := cargoMetadata(t, cargo, src)
					r, err := Compute(context.Background(), src)
					var re *Error
					if errors.As(err, &re) && errors.Is(err, fs.ErrNotExist) && strings.Contains(re.Msg, "path dependency") {
						// cargo metadata --no-deps never opens path
						// dependencies; a build would fail on it.
						mu.Lock()
						count[manifest+" missing path dependency"]++
						mu.Unlock()
						t.Skipf("%v", err)
					}
					if err != nil {
						t.Fatalf("Compute: %v", err)
					}
					checkSkeleton(t, cargo, r, want)
					mu.Lock()
					count[manifest+" checked"]++
					mu.Unlock()
				})
			}
		}
	})
	t.Logf("%v", count)
}
