package dockerctl

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chefd/chefd/recipe"
)

// TestLayerKeepRandom runs the cook step's keep in a shell against random
// base images: a cook cache of units (some of this recipe's, some not),
// and a base image's target directory that holds some of them as the cache
// does, some with another time or content, some not at all, units of other
// recipes, extra files in a unit and entries of another type. The base
// with the layer applied (its listed entries removed, as the layer tool
// does, then the copied units over it, as the COPY does) must equal, entry
// for entry (type, size, content, modification time to the nanosecond),
// what the whole copy of the same cache holds; and the layer copies no
// unit the base holds as the cache does.
func TestLayerKeepRandom(t *testing.T) {
	for _, tool := range []string{"sh", "awk", "find", "xargs", "cp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	seed := time.Now().UnixNano() % 1e6
	if s := os.Getenv("CHEFD_LAYER_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (CHEFD_LAYER_SEED to replay)", seed)
	rng := rand.New(rand.NewSource(seed))
	r := &recipe.Recipe{Hash: hashOf('l'), WorkspaceDir: ".", Intent: recipe.Intent{Profile: "release"},
		Manifests: []recipe.Manifest{{Path: "Cargo.toml", Package: "app"}}}
	for round := 0; round < 12; round++ {
		root := t.TempDir()
		cache := filepath.Join(root, "cache")
		units := makeUnits(t, rng, cache)
		// this recipe's units: a random subset
		var mine []unitFiles
		var json strings.Builder
		for _, u := range units {
			if rng.Intn(3) > 0 {
				mine = append(mine, u)
				fmt.Fprintf(&json, `{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#%s@1.0.0","filenames":["/src/target/release/deps/lib%s-%s.rlib"]}`+"\n", u.name, u.name, u.hash)
			}
		}
		whole := runKeep(t, r, root, "whole", cache, "", json.String())
		base := filepath.Join(root, "base")
		var kept []string
		copyTree(t, whole, base)
		for _, u := range mine {
			switch rng.Intn(7) {
			case 0: // held as the cache holds it
				kept = append(kept, u.paths[0])
			case 1: // another time
				touch(t, filepath.Join(base, u.paths[0]), time.Unix(1e9+rng.Int63n(1e6), rng.Int63n(1e9)))
			case 2: // another build of the unit: same size, another content and time
				p := filepath.Join(base, u.paths[0])
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, p, strings.Repeat("z", int(st.Size())), st.ModTime().Add(time.Nanosecond))
			case 3: // missing
				os.RemoveAll(filepath.Join(base, u.paths[0]))
			case 4: // an extra file in the unit's directory (or a file where a directory is)
				if st, err := os.Stat(filepath.Join(base, u.dir)); err == nil && st.IsDir() {
					writeFile(t, filepath.Join(base, u.dir, "extra"), "extra", time.Now())
				}
			case 6: // another mode
				if err := os.Chmod(filepath.Join(base, u.paths[0]), 0o600); err != nil {
					t.Fatal(err)
				}
			case 5: // another type
				p := filepath.Join(base, u.paths[0])
				os.RemoveAll(p)
				writeFile(t, filepath.Join(p, "inside"), "a directory now", time.Now())
			}
		}
		// units of other recipes
		for i := 0; i < rng.Intn(4); i++ {
			h := fmt.Sprintf("%016x", rng.Uint64())
			writeFile(t, filepath.Join(base, "release/deps/libold-"+h+".rlib"), "old", time.Now())
			writeFile(t, filepath.Join(base, "release/.fingerprint/old-"+h+"/lib-old"), "old", time.Now())
		}
		writeFile(t, filepath.Join(base, "release/stale-dir/x/y"), "stale", time.Now())

		// the cache again, as the whole copy's run found it
		os.RemoveAll(cache)
		makeUnitsAgain(t, units, cache)
		layer := runKeep(t, r, root, "layer", cache, base, json.String())
		applied := filepath.Join(root, "applied")
		copyTree(t, base, applied)
		del, err := os.ReadFile(filepath.Join(root, "layer", "delete"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range strings.Split(strings.TrimSpace(string(del)), "\n") {
			if p != "" {
				if err := os.RemoveAll(filepath.Join(applied, p)); err != nil {
					t.Fatal(err)
				}
			}
		}
		copyTree(t, layer, applied)
		got, want := treeOf(t, applied), treeOf(t, whole)
		for p, w := range want {
			if g, ok := got[p]; !ok {
				t.Errorf("round %d (seed %d): %s missing after the layer", round, seed, p)
			} else if g != w {
				t.Errorf("round %d (seed %d): %s is %s after the layer, the whole copy has %s", round, seed, p, g, w)
			}
		}
		for p := range got {
			if _, ok := want[p]; !ok {
				t.Errorf("round %d (seed %d): %s left by the layer", round, seed, p)
			}
		}
		for _, p := range kept {
			if _, err := os.Lstat(filepath.Join(layer, p)); err == nil {
				t.Errorf("round %d (seed %d): the layer copies %s, which the base holds as the cache does", round, seed, p)
			}
		}
	}
}

// unitFiles is a fake cargo unit in a cook cache: its files (paths[0]
// its library), and the directory of its own (fingerprint).
type unitFiles struct {
	name, hash string
	dir        string
	paths      []string
	data       map[string]string
	times      map[string]time.Time
}

func makeUnits(t *testing.T, rng *rand.Rand, cache string) []unitFiles {
	t.Helper()
	var units []unitFiles
	for i := 0; i < 10; i++ {
		u := unitFiles{name: fmt.Sprintf("u%d", i), hash: fmt.Sprintf("%016x", rng.Uint64()), data: map[string]string{}, times: map[string]time.Time{}}
		u.dir = "release/.fingerprint/" + u.name + "-" + u.hash
		u.paths = []string{
			"release/deps/lib" + u.name + "-" + u.hash + ".rlib",
			"release/deps/" + u.name + "-" + u.hash + ".d",
			u.dir + "/lib-" + u.name,
			u.dir + "/lib-" + u.name + ".json",
		}
		if rng.Intn(2) == 0 {
			u.paths = append(u.paths, "release/build/"+u.name+"-"+u.hash+"/out/gen.rs")
		}
		for _, p := range u.paths {
			u.data[p] = strings.Repeat(string(rune('a'+rng.Intn(26))), 1+rng.Intn(300))
			u.times[p] = time.Unix(1.7e9+rng.Int63n(1e6), rng.Int63n(1e9))
		}
		units = append(units, u)
	}
	makeUnitsAgain(t, units, cache)
	// what a cook cache also holds: lock files, cargo's own files, a local
	// crate's artifacts (not in the units)
	writeFile(t, filepath.Join(cache, "release/.cargo-lock"), "", time.Unix(1.7e9, 5))
	writeFile(t, filepath.Join(cache, ".rustc_info.json"), "{}", time.Unix(1.7e9, 7))
	return units
}

func makeUnitsAgain(t *testing.T, units []unitFiles, cache string) {
	t.Helper()
	for _, u := range units {
		for _, p := range u.paths {
			writeFile(t, filepath.Join(cache, p), u.data[p], u.times[p])
		}
	}
	writeFile(t, filepath.Join(cache, "release/.cargo-lock"), "", time.Unix(1.7e9, 5))
	writeFile(t, filepath.Join(cache, ".rustc_info.json"), "{}", time.Unix(1.7e9, 7))
}

// runKeep runs cookKeep (layered when base is not "") on a copy of cache
// in root/ws/target and returns the directory it copied into the image
// (the step's cookedDir is root/<name>).
func runKeep(t *testing.T, r *recipe.Recipe, root, name, cache, base, units string) string {
	t.Helper()
	ws := filepath.Join(root, "ws-"+name)
	copyTree(t, cache, filepath.Join(ws, "target"))
	tmp := filepath.Join(root, "tmp-"+name)
	step := filepath.Join(root, "step-"+name)
	for _, d := range []string{tmp, step} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(tmp, "units.json"), units, time.Now())
	writeFile(t, filepath.Join(step, "vendor.sums"), "", time.Now())
	prev := filepath.Join(root, "prev-"+name)
	if base != "" {
		copyTree(t, base, filepath.Join(prev, "src", "target"))
	}
	script := cookKeep(r, r.ShortHash(), base != "")
	script = strings.NewReplacer(cookedDir, filepath.Join(root, name), prevMount, prev, stepDir, step,
		"/tmp/chefd-units.json", filepath.Join(tmp, "units.json"), "/tmp/chefd-", tmp+"/chefd-").Replace(script)
	cmd := exec.Command("sh", "-ec", script)
	cmd.Dir = ws
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the keep (%s): %v\n%s\n%s", name, err, out, script)
	}
	live, ok := cookedBytes(strings.Split(string(out), "\n"))
	if !ok {
		t.Errorf("the keep (%s) does not say what the image holds:\n%s", name, out)
	}
	if base == "" { // a whole copy: what it says it holds is its files' sizes
		var sum int64
		filepath.WalkDir(filepath.Join(root, name, "target"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if st, err := os.Lstat(p); err == nil {
					sum += st.Size()
				}
			}
			return nil
		})
		if live != sum {
			t.Errorf("the keep says the image holds %d bytes; its files hold %d", live, sum)
		}
	}
	return filepath.Join(root, name, "target")
}

// treeOf maps each entry below dir to its type, mode, size, time and digest
// (directories: their type; the stamp: its presence).
func treeOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			m[rel] = "dir"
			return nil
		}
		if rel == ".chefd-cook-stamp" {
			m[rel] = "stamp"
			return nil
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		m[rel] = fmt.Sprintf("file %v %d %d %s", st.Mode(), st.Size(), st.ModTime().UnixNano(), hex.EncodeToString(sum[:4]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func writeFile(t *testing.T, p, data string, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	touch(t, p, mtime)
}

func touch(t *testing.T, p string, mtime time.Time) {
	t.Helper()
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies src into dst as cp -a does (times kept).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", src+"/.", dst+"/").CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v %s", src, dst, err, out)
	}
}

// TestBloated: a layered image is made whole past maxDeadPercent.
func TestBloated(t *testing.T) {
	for _, c := range []struct {
		size, live int64
		want       bool
	}{
		{100 << 20, 100 << 20, false},
		{103 << 20, 100 << 20, false},
		{104 << 20, 100 << 20, true},
		{10400, 10000, true},
		{10300, 10000, false},
	} {
		if got := bloated(c.size, c.live); got != c.want {
			t.Errorf("bloated(%d, %d) = %v, want %v", c.size, c.live, got, c.want)
		}
	}
}

// TestLayerFailed: a layered cook whose cook step's script failed (cargo,
// or a request for a seed or the vendored crates) is not run again as a
// whole copy; any other failure (the base, the tool, the layer step, a
// cook step cancelled by them) is.
func TestLayerFailed(t *testing.T) {
	cook := "[cook 4/4] RUN --mount=type=cache,id=chefd-cook-x " + cookMarker + " sh /run/chefd/cook.sh"
	for _, c := range []struct {
		name     string
		vertices map[string]string // name -> error
		want     bool
	}{
		{"cargo failed", map[string]string{cook: `executor failed running [/bin/sh -c CHEFD_STEP=cook sh /run/chefd/cook.sh]: exit code: 101`}, false},
		{"seed asked for", map[string]string{cook: `executor failed running [/bin/sh -c CHEFD_STEP=cook sh /run/chefd/cook.sh]: exit code: 43`}, false},
		{"the tool failed, the cook cancelled", map[string]string{
			"[chefd-tool 2/2] RUN " + toolMarker + " sh /run/chefd-tool/build.sh": "executor failed running [...]: exit code: 1",
			cook: "context canceled"}, true},
		{"the layer step failed", map[string]string{cook: "", "[chefd-layer 1/2] RUN /.chefd/tool/sync " + layerMarker: `failed to create shim: OCI runtime create failed: exec: no such file or directory`}, true},
		{"the base is gone", map[string]string{}, true},
	} {
		s := newStream(nil)
		for name, err := range c.vertices {
			s.vertices[name] = &vertex{name: name, err: err}
			s.order = append(s.order, name)
		}
		if got := layerFailed(s); got != c.want {
			t.Errorf("%s: layerFailed = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestCookDockerfileLayered: a layered cook's Dockerfile takes its base
// as a build argument before the first FROM, mounts it in the cook step,
// builds the tool in a stage of its own, and ends with the layer stage
// (its tool step marked, in exec form: the base has no shell) and the flat
// copy; a whole copy's Dockerfile has none of it.
func TestCookDockerfileLayered(t *testing.T) {
	r := &recipe.Recipe{Hash: hashOf('e'), WorkspaceDir: ".", Intent: recipe.Intent{Profile: "release"}}
	df := cookDockerfile(r, "chefd-cook-test", nil, nil, true)
	first := strings.Index(df, "FROM ")
	if i := strings.Index(df, "ARG PREV\n"); i < 0 || i > first {
		t.Errorf("ARG PREV is not before the first FROM:\n%s", df)
	}
	for _, want := range []string{
		"FROM ${PREV} AS chefd-prev\n",
		"--mount=type=bind,from=chefd-prev,target=" + prevMount + " ",
		"FROM ${BUILDER} AS chefd-tool\n",
		"FROM chefd-prev AS " + stageLayer + "\n",
		`"` + layerMarker + `"]`,
		"COPY --from=cook " + cookedOut + "/ /src/target/\n",
		"FROM scratch AS " + stageFlat + "\n",
		"COPY --from=" + stageLayer + " /src/target/ /src/target/\n",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("the layered Dockerfile lacks %q:\n%s", want, df)
		}
	}
	if got := markedTitle("[chefd-layer 1/2] RUN /.chefd/tool/sync /src/target /.chefd/cooked/delete " + layerMarker); got != titleCookLayer {
		t.Errorf("the layer step's title is %q", got)
	}
	whole := cookDockerfile(r, "chefd-cook-test", nil, nil, false)
	for _, not := range []string{"PREV", "chefd-prev", "chefd-tool", stageLayer} {
		if strings.Contains(whole, not) {
			t.Errorf("the whole copy's Dockerfile has %q:\n%s", not, whole)
		}
	}
}
