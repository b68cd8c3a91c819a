package main

// Delta cooks end to end (issue 11): a recipe change cooks from the
// artifacts of the last cook of the same key, compiles exactly the
// third-party crates whose inputs changed, and the cooked image holds
// exactly what a from-scratch cook of the same recipe holds.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chefd/chefd/configs"
	"github.com/chefd/chefd/dockerctl"
)

// cookJSON runs `chefd cook --json` (extra args too) and decodes it.
func cookJSON(t *testing.T, dir string, args ...string) dockerctl.CookResult {
	t.Helper()
	return chefdJSON[dockerctl.CookResult](t, dir, append([]string{"cook", "--json"}, args...)...)
}

// relock regenerates dir's Cargo.lock offline in the builder image, as
// cargo would after a manifest edit.
func relock(t *testing.T, dir string) {
	t.Helper()
	cfg, err := configs.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("docker", "run", "--rm", "-v", dir+":/w", "-w", "/w", cfg.BuilderImage,
		"cargo", "generate-lockfile", "--offline").CombinedOutput()
	if err != nil {
		t.Fatalf("re-lock: %v\n%s", err, out)
	}
}

// cookedFiles lists the cooked image's target directory (the image is
// the artifacts alone: its file system is exported, not run).
func cookedFiles(t *testing.T, tag, workdir string) []string {
	t.Helper()
	return cookedFilesOn(t, nil, tag, workdir)
}

// cookedFilesOn is cookedFiles on the engine env names (DOCKER_HOST...).
func cookedFilesOn(t *testing.T, env []string, tag, workdir string) []string {
	t.Helper()
	docker := func(args ...string) *exec.Cmd {
		c := exec.Command("docker", args...)
		c.Env = append(os.Environ(), env...)
		return c
	}
	out, err := docker("create", tag, "none").CombinedOutput()
	if err != nil {
		t.Fatalf("create a container of %s: %v\n%s", tag, err, out)
	}
	id := strings.TrimSpace(string(out))
	defer docker("rm", id).Run()
	export := exec.Command("sh", "-c", "docker export "+id+" | tar -t")
	export.Env = append(os.Environ(), env...)
	list, err := export.Output()
	if err != nil {
		t.Fatalf("list %s: %v", tag, err)
	}
	prefix := strings.TrimPrefix(workdir, "/") + "/target/"
	var files []string
	for _, f := range strings.Split(string(list), "\n") {
		if rest, ok := strings.CutPrefix(f, prefix); ok && rest != "" {
			files = append(files, workdir+"/target/"+strings.TrimSuffix(rest, "/"))
		}
	}
	slices.Sort(files)
	return files
}

// sameFiles reports the differences between two listings.
func sameFiles(t *testing.T, what string, got, want []string) {
	t.Helper()
	var extra, missing []string
	for _, f := range got {
		if _, ok := slices.BinarySearch(want, f); !ok {
			extra = append(extra, f)
		}
	}
	for _, f := range want {
		if _, ok := slices.BinarySearch(got, f); !ok {
			missing = append(missing, f)
		}
	}
	if len(extra)+len(missing) > 0 {
		t.Errorf("%s: the delta-cooked image's target/ differs from the from-scratch cook's:\nextra %v\nmissing %v", what, extra, missing)
	}
}

// imageSize is an image's size in bytes.
func imageSize(t *testing.T, image string) int64 {
	t.Helper()
	out, err := exec.Command("docker", "image", "inspect", "-f", "{{.Size}}", image).Output()
	if err != nil {
		t.Fatalf("inspect %s: %v", image, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("size of %s: %v", image, err)
	}
	return n
}

// binarySum is the sha256 of a file in an image.
func binarySum(t *testing.T, image, file string) string {
	t.Helper()
	id, err := exec.Command("docker", "create", image).Output()
	if err != nil {
		t.Fatalf("docker create %s: %v", image, err)
	}
	c := strings.TrimSpace(string(id))
	defer exec.Command("docker", "rm", c).Run()
	out, err := exec.Command("docker", "cp", c+":"+file, "-").Output() // a tar stream
	if err != nil {
		t.Fatalf("docker cp %s: %v", file, err)
	}
	tr := tar.NewReader(bytes.NewReader(out))
	if _, err := tr.Next(); err != nil {
		t.Fatalf("docker cp %s: %v", file, err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, tr); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// scratchCook cooks the recipe of dir from nothing in a copy of it with an
// image name of its own (--no-cache empties the cook cache first) and
// returns the result and the copy.
func scratchCook(t *testing.T, dir, prefix string) (dockerctl.CookResult, string) {
	t.Helper()
	return scratchCookWith(t, dir, prefix, nil)
}

// scratchCookWith is scratchCook with the copy changed by mutate first;
// with a mutate that gives the copy a cook key of its own (a cargo alias
// changes no artifact), its cook starts from nothing without emptying the
// cook cache dir's next cooks start from.
func scratchCookWith(t *testing.T, dir, prefix string, mutate func(cp string)) (dockerctl.CookResult, string) {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "workspace")
	if out, err := exec.Command("cp", "-a", dir, cp).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	os.RemoveAll(filepath.Join(cp, ".chefd"))
	cfg, err := configs.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	edit(t, filepath.Join(cp, "chefd.toml"), `image = "`+cfg.Image+`"`, `image = "`+cfg.Image+`-`+prefix+`"`)
	t.Cleanup(func() { removeImages(cfg.Image + "-" + prefix); removeImages(cfg.Image + "-" + prefix + "-cooked") })
	args := []string{"--no-cache"}
	if mutate != nil {
		mutate(cp)
		args = nil
	}
	res := cookJSON(t, cp, args...)
	if res.Seed != "" || res.Skipped {
		t.Fatalf("the from-scratch cook had a seed %q (skipped %v)", res.Seed, res.Skipped)
	}
	return res, cp
}

// TestE2EDeltaCookExample: on the example, a dependency added from the
// builder's crate source cooks only the crates it brings; removing it again
// cooks no third-party crate, and the cooked image holds exactly what the
// first cook (from nothing) of that recipe held; the code builds after
// them compile no third-party crate and the images run; gc then removes
// the other recipe's cooked image and target cache and keeps the current
// ones and the cook cache. The delta cook of regex is compared with a
// from-scratch cook of its recipe (files, size, binaries); the other kinds
// of change are compared in TestE2EDeltaCookChanges, on a workspace that
// cooks in seconds.
func TestE2EDeltaCookExample(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel() // with the other delta-cook tests, after the package's serial ones
	needEngine(t)
	dir := exampleCopy(t)
	ownImage(t, dir, "chefd-e2e-delta")
	// A cook key of its own (an alias changes no build): the first cook
	// starts from nothing whatever ran on this engine before.
	nonce := fmt.Sprintf("chefd-nonce-%d", time.Now().UnixNano())
	if err := os.MkdirAll(filepath.Join(dir, ".cargo"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".cargo/config.toml"), []byte("[alias]\n"+nonce+" = \"build\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := cookJSON(t, dir)
	if first.Seed != "" || first.Compiled.ThirdParty < 30 {
		t.Fatalf("first cook: seed %q, %d third-party crates; want a cook from nothing", first.Seed, first.Compiled.ThirdParty)
	}
	firstFiles := cookedFiles(t, first.Tag, "/src") // a cook from nothing
	firstBuild := buildJSON(t, dir, "--tag", "first")
	firstSums := map[string]string{}
	for _, bin := range []string{"app", "report"} {
		firstSums[bin] = binarySum(t, firstBuild.Image, "/usr/local/bin/"+bin)
	}

	// 1. regex, new to the workspace: its crates and nothing else.
	edit(t, filepath.Join(dir, "crates/report/Cargo.toml"), "[dependencies]\n", "[dependencies]\nregex = \"1\"\n")
	relock(t, dir)
	added := cookJSON(t, dir)
	if added.Seed != first.Tag[strings.LastIndexByte(first.Tag, ':')+1:] {
		t.Errorf("cook after adding regex: seed %q, want the first recipe", added.Seed)
	}
	wantNew := []string{"aho-corasick v0.7.19", "memchr v2.5.0", "regex v1.7.1", "regex-syntax v0.6.27"}
	got := slices.Clone(added.Compiled.ThirdPartyNames)
	slices.Sort(got)
	if !slices.Equal(got, wantNew) {
		t.Errorf("the delta cook compiled %v, want %v", got, wantNew)
	}
	t.Logf("add regex: delta cook %.1fs (%d third-party), first cook from nothing %.1fs (%d)", added.Duration.Seconds(),
		added.Compiled.ThirdParty, first.Duration.Seconds(), first.Compiled.ThirdParty)
	b := buildJSON(t, dir, "--tag", "delta")
	if b.Compiled.ThirdParty != 0 {
		t.Errorf("the code build after the delta cook compiled third-party crates: %v", b.Compiled.ThirdPartyNames)
	}
	if out := dockerRun(t, b.Image); !strings.Contains(out, "app: hello from chefd example") {
		t.Errorf("the image prints %q", out)
	}
	// Without CHEFD_E2E_FULL (the CI suite: a cook from nothing of the
	// example costs 1-2 minutes of the suite's 30), the delta image holds
	// every file of the cook from nothing before it and, beyond them, only
	// files of the four crates it added; the other direction (step 2) and
	// TestE2EDeltaCookChanges compare with cooks from scratch.
	addedFiles := cookedFiles(t, added.Tag, "/src")
	for _, f := range firstFiles {
		if !slices.Contains(addedFiles, f) {
			t.Errorf("add regex: the delta-cooked image lacks %s, which the cook from nothing held", f)
		}
	}
	for _, f := range addedFiles {
		if !slices.Contains(firstFiles, f) && !strings.Contains(f, "regex") && !strings.Contains(f, "aho") && !strings.Contains(f, "memchr") &&
			!strings.HasSuffix(f, "/Cargo.lock") {
			t.Errorf("add regex: the delta-cooked image holds %s, of none of the crates added", f)
		}
	}
	if os.Getenv("CHEFD_E2E_FULL") == "" {
		t.Log("add regex: compared with the cook before it (CHEFD_E2E_FULL=1 compares with a cook from scratch)")
	} else {
		compareAddWithScratch(t, dir, nonce, added, b)
	}

	// 2. regex removed again, its cooked image gone: no third-party crate
	// compiled, and none of regex's artifacts in the image.
	edit(t, filepath.Join(dir, "crates/report/Cargo.toml"), "regex = \"1\"\n", "")
	relock(t, dir)
	removeImages(first.Tag[:strings.LastIndexByte(first.Tag, ':')])
	removed := cookJSON(t, dir)
	if removed.Compiled.ThirdParty != 0 {
		t.Errorf("the cook after removing regex compiled %v", removed.Compiled.ThirdPartyNames)
	}
	files := cookedFiles(t, removed.Tag, "/src")
	for _, f := range files {
		if strings.Contains(f, "regex") || strings.Contains(f, "aho_corasick") || strings.Contains(f, "aho-corasick") {
			t.Errorf("the cooked image of the recipe without regex holds %s", f)
			break
		}
	}
	// The recipe of the first cook (a cook from nothing) again, unless
	// the lockfile cargo wrote differs from the example's: the same files
	// as a from-scratch cook.
	if removed.Tag == first.Tag {
		sameFiles(t, "remove regex", files, firstFiles)
	} else {
		res, _ := scratchCook(t, dir, "scratch2")
		sameFiles(t, "remove regex", files, cookedFiles(t, res.Tag, "/src"))
	}
	b = buildJSON(t, dir, "--tag", "delta")
	if b.Compiled.ThirdParty != 0 {
		t.Errorf("the code build after removing regex compiled third-party crates: %v", b.Compiled.ThirdPartyNames)
	}
	if out := dockerRun(t, b.Image); !strings.Contains(out, "app: hello from chefd example") {
		t.Errorf("the image prints %q", out)
	}
	if removed.Tag == first.Tag {
		for _, bin := range []string{"app", "report"} {
			d := binarySum(t, b.Image, "/usr/local/bin/"+bin)
			t.Logf("%s: on the delta-cooked image %s, on the cook from nothing %s, bit-identical %v", bin, d, firstSums[bin], d == firstSums[bin])
		}
	}

	// 3. gc keeping one recipe: with the current recipe older than the
	// newest (ryu, added and removed again), the newest and the current
	// one stay with their target caches, and the regex recipe's target
	// cache goes (its cooked image went in 2.); so does nothing of the
	// cook cache of their key.
	regexHash := added.Tag[strings.LastIndexByte(added.Tag, ':')+1:]
	current := removed.Tag[strings.LastIndexByte(removed.Tag, ':')+1:]
	edit(t, filepath.Join(dir, "crates/report/Cargo.toml"), "[dependencies]\n", "[dependencies]\nryu = \"1\"\n")
	relock(t, dir)
	ryu := buildJSON(t, dir, "--tag", "delta")
	ryuHash := ryu.CookedTag[strings.LastIndexByte(ryu.CookedTag, ':')+1:]
	edit(t, filepath.Join(dir, "crates/report/Cargo.toml"), "ryu = \"1\"\n", "")
	relock(t, dir)
	if b := buildJSON(t, dir, "--tag", "delta"); b.CookedTag != removed.Tag {
		t.Fatalf("removing ryu gave the recipe %s, want %s", b.CookedTag, removed.Tag)
	}
	edit(t, filepath.Join(dir, "chefd.toml"), "\nentrypoint = ", "\nkeep-cooked = 1\nentrypoint = ")
	gc := chefd(t, dir, nil, "gc")
	if gc.code != 0 {
		t.Fatalf("chefd gc: exit %d\n%s%s", gc.code, gc.stdout, gc.stderr)
	}
	t.Logf("gc:\n%s\n%s", gc.stdout, gc.stderr)
	caches := targetCaches(t)
	ws := dockerctl.WorkspaceID(dir)
	if caches["chefd-target-"+ws+"-"+regexHash] {
		t.Errorf("gc left the regex recipe's target cache (%s)", regexHash)
	}
	for _, h := range []string{current, ryuHash} {
		if !caches["chefd-target-"+ws+"-"+h] {
			t.Errorf("gc removed the target cache of %s (the current recipe %s, the newest %s)", h, current, ryuHash)
		}
	}
	for _, tag := range []string{removed.Tag, ryu.CookedTag} {
		if err := exec.Command("docker", "image", "inspect", tag).Run(); err != nil {
			t.Errorf("gc removed %s (the current recipe's or the newest cooked image)", tag)
		}
	}
	if key := cookKeyOf(t, removed.Tag); strings.Contains(gc.stdout, "chefd-cook-"+key) {
		t.Errorf("gc removed the cook cache of the current key %s", key)
	}
}

// tinyWorkspace writes a workspace whose only third-party crate,
// chefd-tiny, comes from a directory source in the workspace holding it in
// two versions (0.1.0 and 0.1.1, with a feature "loud"). app prints
// chefd_tiny::greeting().
func tinyWorkspace(t *testing.T) string {
	t.Helper()
	return tinyWorkspaceWith(t, "")
}

// tinyWorkspaceWith is tinyWorkspace with buildScript as chefd-tiny's
// build.rs ("" for none).
func tinyWorkspaceWith(t *testing.T, buildScript string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tiny")
	nonce := fmt.Sprintf("chefd-nonce-%d", time.Now().UnixNano())
	files := map[string]string{
		"Cargo.toml": "[workspace]\nmembers = [\"app\"]\nresolver = \"2\"\n",
		"chefd.toml": fmt.Sprintf("image = \"chefd-e2e-tiny-%d\"\nbuilder-image = \"chefd/rust-builder:bookworm-1.96\"\n"+
			"runtime-image = \"scratch\"\ntarget = \"x86_64-unknown-linux-gnu\"\nrustflags = \"-C target-feature=+crt-static\"\n", time.Now().UnixNano()),
		".cargo/config.toml": "[source.crates-io]\nreplace-with = \"vendored\"\n\n[source.vendored]\ndirectory = \"vendor\"\n\n[alias]\n" + nonce + " = \"build\"\n",
		"app/Cargo.toml":     "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nchefd-tiny = \"=0.1.0\"\n",
		"app/src/main.rs":    "fn main() {\n    println!(\"app: {}\", chefd_tiny::greeting());\n}\n",
	}
	for _, v := range []string{"0.1.0", "0.1.1"} {
		files["vendor/chefd-tiny-"+v+"/Cargo.toml"] = "[package]\nname = \"chefd-tiny\"\nversion = \"" + v + "\"\nedition = \"2021\"\n\n[features]\nloud = []\n"
		files["vendor/chefd-tiny-"+v+"/src/lib.rs"] = tinyLib("tiny " + v)
		if buildScript != "" {
			files["vendor/chefd-tiny-"+v+"/build.rs"] = buildScript
		}
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"0.1.0", "0.1.1"} {
		writeChecksums(t, filepath.Join(dir, "vendor/chefd-tiny-"+v))
	}
	relock(t, dir)
	cfg, _ := configs.Load(dir)
	t.Cleanup(func() { removeImages(cfg.Image); removeImages(cfg.Image + "-cooked") })
	return dir
}

func tinyLib(greeting string) string {
	return fmt.Sprintf("pub fn greeting() -> String {\n    let g = %q;\n    if cfg!(feature = \"loud\") { g.to_uppercase() } else { g.to_string() }\n}\n", greeting)
}

// writeChecksums writes the .cargo-checksum.json of a vendored crate, with
// the sha256 of its source files as cargo vendor does.
func writeChecksums(t *testing.T, crate string) {
	t.Helper()
	sums := map[string]string{}
	for _, f := range []string{"Cargo.toml", "src/lib.rs", "build.rs"} {
		b, err := os.ReadFile(filepath.Join(crate, f))
		if os.IsNotExist(err) && f == "build.rs" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		sums[f] = hex.EncodeToString(s[:])
	}
	b, _ := json.Marshal(map[string]any{"files": sums, "package": nil})
	if err := os.WriteFile(filepath.Join(crate, ".cargo-checksum.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestE2EDeltaCookChanges: a version bump, a feature change, a vendored
// crate changed in place (same version), a new local crate and a profile
// change, each cooked after the other on a workspace with one third-party
// crate from a directory source: the delta cook compiles exactly what
// changed, the code build none of it, the image prints what the current
// sources say, and every delta-cooked image holds the same files as a
// from-scratch cook of its recipe (and the binaries built on them are
// compared).
func TestE2EDeltaCookChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	needEngine(t)
	dir := tinyWorkspace(t)
	step := func(name string, wantSeed bool, wantThird []string, wantOut string) {
		t.Helper()
		res := buildJSON(t, dir, "--tag", "tiny")
		if res.Cook == nil || res.Cook.Skipped {
			t.Fatalf("%s: no cook ran: %+v", name, res.Cook)
		}
		if (res.Cook.Seed != "") != wantSeed {
			t.Errorf("%s: cook seed %q, want a seed: %v", name, res.Cook.Seed, wantSeed)
		}
		if !slices.Equal(res.Cook.Compiled.ThirdPartyNames, wantThird) {
			t.Errorf("%s: the cook compiled %v, want %v", name, res.Cook.Compiled.ThirdPartyNames, wantThird)
		}
		if res.Compiled.ThirdParty != 0 {
			t.Errorf("%s: the code build compiled third-party crates: %v", name, res.Compiled.ThirdPartyNames)
		}
		if out := strings.TrimSpace(dockerRun(t, res.Image)); out != wantOut {
			t.Errorf("%s: the image prints %q, want %q", name, out, wantOut)
		}
		t.Logf("%s: cook %.1fs, seed %q, compiled %v, layer on %q, made whole %v", name, res.Cook.Duration.Seconds(), res.Cook.Seed,
			res.Cook.Compiled.Names, res.Cook.LayerOn, res.Cook.Flattened)
		if wantSeed { // every delta cook against a from-scratch cook of its recipe
			scratch, scratchDir := scratchCook(t, dir, "scratch")
			sameFiles(t, name, cookedFiles(t, res.Cook.Tag, "/src"), cookedFiles(t, scratch.Tag, "/src"))
			if d, s := imageSize(t, res.Cook.Tag), imageSize(t, scratch.Tag); d > s+s/20 || d < s-s/20 {
				t.Errorf("%s: the delta-cooked image is %d bytes, the from-scratch one %d (more than 5%% apart)", name, d, s)
			}
			sb := buildJSON(t, scratchDir, "--tag", "tiny")
			d, s := binarySum(t, res.Image, "/usr/local/bin/app"), binarySum(t, sb.Image, "/usr/local/bin/app")
			if d != s {
				t.Logf("%s: the binary differs from the from-scratch path's (%s, %s)", name, d, s)
			}
		}
	}
	step("first build", false, []string{"chefd-tiny v0.1.0"}, "app: tiny 0.1.0")

	edit(t, filepath.Join(dir, "app/Cargo.toml"), `"=0.1.0"`, `"=0.1.1"`)
	relock(t, dir)
	step("version bump", true, []string{"chefd-tiny v0.1.1"}, "app: tiny 0.1.1")

	edit(t, filepath.Join(dir, "app/Cargo.toml"), `chefd-tiny = "=0.1.1"`, `chefd-tiny = { version = "=0.1.1", features = ["loud"] }`)
	step("feature change", true, []string{"chefd-tiny v0.1.1"}, "app: TINY 0.1.1")

	// The vendored crate changed in place: same name and version, new
	// source (and checksums). Cargo would take the cached artifact as
	// fresh; chefd must not.
	crate := filepath.Join(dir, "vendor/chefd-tiny-0.1.1")
	if err := os.WriteFile(filepath.Join(crate, "src/lib.rs"), []byte(tinyLib("tiny patched")), 0o644); err != nil {
		t.Fatal(err)
	}
	writeChecksums(t, crate)
	step("vendored crate changed in place", true, []string{"chefd-tiny v0.1.1"}, "app: TINY PATCHED")

	// A new local crate: no third-party crate compiled.
	for name, data := range map[string]string{
		"util/Cargo.toml": "[package]\nname = \"util\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
		"util/src/lib.rs": "pub fn suffix() -> &'static str { \"!\" }\n",
	} {
		writeWSFile(t, filepath.Join(dir, filepath.FromSlash(name)), data)
	}
	edit(t, filepath.Join(dir, "Cargo.toml"), `members = ["app"]`, `members = ["app", "util"]`)
	edit(t, filepath.Join(dir, "app/Cargo.toml"), "[dependencies]\n", "[dependencies]\nutil = { path = \"../util\" }\n")
	edit(t, filepath.Join(dir, "app/src/main.rs"), `println!("app: {}", chefd_tiny::greeting());`, `println!("app: {}{}", chefd_tiny::greeting(), util::suffix());`)
	relock(t, dir)
	step("new local crate", true, nil, "app: TINY PATCHED!")

	// Another profile is another key: a cook from nothing.
	edit(t, filepath.Join(dir, "chefd.toml"), "runtime-image", "profile = \"dev\"\nruntime-image")
	step("profile change", false, []string{"chefd-tiny v0.1.1"}, "app: TINY PATCHED!")
}

// TestE2EDeltaCookRandom: random sequences of recipe changes on the
// vendored workspace (version bumps back and forth, a feature on and off,
// the vendored crate changed in place and reverted) with cooks that are
// interrupted while cargo runs (chefd-tiny's build script takes a second),
// cook caches pruned and --no-cache cooks in between: every image built
// prints what its sources say. CHEFD_DELTA_SEED and CHEFD_DELTA_STEPS
// (6) replay or lengthen a run.
func TestE2EDeltaCookRandom(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	needEngine(t)
	seed := int64(envInt("CHEFD_DELTA_SEED", int(time.Now().UnixNano()%1e9)))
	steps := envInt("CHEFD_DELTA_STEPS", 6)
	t.Logf("seed %d (CHEFD_DELTA_SEED=%d to replay), %d steps", seed, seed, steps)
	rng := rand.New(rand.NewSource(seed))
	dir := tinyWorkspaceWith(t, "fn main() {\n    std::thread::sleep(std::time::Duration::from_millis(1500));\n}\n")
	ver, loud := "0.1.0", false
	patch := map[string]int{"0.1.0": 0, "0.1.1": 0}
	greeting := func(v string) string {
		if patch[v] == 0 {
			return "tiny " + v
		}
		return fmt.Sprintf("tiny %s #%d", v, patch[v])
	}
	setSource := func(v string) {
		crate := filepath.Join(dir, "vendor/chefd-tiny-"+v)
		if err := os.WriteFile(filepath.Join(crate, "src/lib.rs"), []byte(tinyLib(greeting(v))), 0o644); err != nil {
			t.Fatal(err)
		}
		writeChecksums(t, crate)
	}
	manifest := func() {
		writeWSFile(t, filepath.Join(dir, "app/Cargo.toml"), appManifest("", ver, loud))
		lock := filepath.Join(dir, "Cargo.lock")
		b, err := os.ReadFile(lock)
		if err != nil {
			t.Fatal(err)
		}
		out := regexp.MustCompile(`name = "chefd-tiny"\nversion = "[^"]*"`).ReplaceAllString(string(b), `name = "chefd-tiny"`+"\n"+`version = "`+ver+`"`)
		if err := os.WriteFile(lock, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := func() string {
		g := greeting(ver)
		if loud {
			g = strings.ToUpper(g)
		}
		return "app: " + g
	}
	var lastCooked string
	check := func(how string) {
		t.Helper()
		res := buildJSON(t, dir, "--tag", "tiny")
		lastCooked = res.CookedTag
		if out := strings.TrimSpace(dockerRun(t, res.Image)); out != want() {
			t.Fatalf("after %s: the image prints %q, want %q (seed %d)", how, out, want(), seed)
		}
		if res.Compiled.ThirdParty != 0 {
			t.Errorf("after %s: the code build compiled third-party crates %v", how, res.Compiled.ThirdPartyNames)
		}
		cook := "no cook"
		if res.Cook != nil && !res.Cook.Skipped {
			cook = fmt.Sprintf("cook seed %q compiled %v", res.Cook.Seed, res.Cook.Compiled.ThirdPartyNames)
		}
		t.Logf("  %s: ok (%s; %s)", how, want(), cook)
	}
	check("the first build")
	for i := 0; i < steps; i++ {
		var what string
		switch rng.Intn(4) {
		case 0:
			ver = map[string]string{"0.1.0": "0.1.1", "0.1.1": "0.1.0"}[ver]
			manifest()
			what = "bump to " + ver
		case 1:
			loud = !loud
			manifest()
			what = fmt.Sprintf("loud %v", loud)
		case 2:
			patch[ver]++
			setSource(ver)
			what = fmt.Sprintf("%s changed in place (#%d)", ver, patch[ver])
		case 3:
			if patch[ver] > 0 {
				patch[ver]--
			} else {
				patch[ver]++
			}
			setSource(ver)
			what = fmt.Sprintf("%s changed back (#%d)", ver, patch[ver])
		}
		switch rng.Intn(4) {
		case 0:
			interruptCook(t, dir)
			what += ", a cook interrupted"
		case 1:
			n := pruneCookCache(t, cookKeyOf(t, lastCooked))
			what += fmt.Sprintf(", %d cook cache pruned", n)
		case 2:
			r := chefd(t, dir, nil, "cook", "--no-cache")
			if r.code != 0 {
				t.Fatalf("cook --no-cache: %s", r.stderr)
			}
			what += ", cook --no-cache"
		}
		check(fmt.Sprintf("step %d: %s", i+1, what))
	}
}

// appManifest is the tiny workspace's app/Cargo.toml: the dependencies
// deps, and chefd-tiny of version ver, with its feature "loud" or not.
func appManifest(deps, ver string, loud bool) string {
	dep := `chefd-tiny = "=` + ver + `"`
	if loud {
		dep = `chefd-tiny = { version = "=` + ver + `", features = ["loud"] }`
	}
	return "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n" + deps + dep + "\n"
}

// interruptCook starts `chefd build` and sends SIGINT once chefd-tiny
// compiles (its build script runs for a second and a half).
func interruptCook(t *testing.T, dir string) {
	t.Helper()
	cmd, stderr, hit, done := watchedBuild(t, dir, "Compiling chefd-tiny")
	select {
	case <-hit:
		cmd.Process.Signal(syscall.SIGINT)
	case <-done: // nothing to cook (the recipe was cooked before)
		return
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the build never compiled chefd-tiny:\n%s", stderr.String())
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("chefd did not end a minute after SIGINT")
	}
}

// watchedBuild starts `chefd build` in dir; hit is closed once its
// stderr holds match, done gets its end.
func watchedBuild(t *testing.T, dir, match string) (cmd *exec.Cmd, stderr *bytes.Buffer, hit chan struct{}, done chan error) {
	t.Helper()
	cmd = exec.Command(chefdBinary(t), "-C", dir, "build")
	stderr, hit, done = &bytes.Buffer{}, make(chan struct{}), make(chan error, 1)
	cmd.Stderr = &lineWatcher{w: stderr, match: match, hit: hit}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	return cmd, stderr, hit, done
}

// cookKeyOf is the cook key a cooked image is labelled with.
func cookKeyOf(t *testing.T, tag string) string {
	t.Helper()
	out, err := exec.Command("docker", "image", "inspect", "-f", `{{index .Config.Labels "chefd.cook-key"}}`, tag).Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("the cook key of %s: %v %q", tag, err, out)
	}
	return strings.TrimSpace(string(out))
}

// pruneCookCache removes the cook cache of key from the engine, as
// `docker builder prune` would.
func pruneCookCache(t *testing.T, key string) int {
	t.Helper()
	return pruneCacheMounts(t, "CHEFD_COOKCACHE=chefd-cook-"+key)
}

// compareAddWithScratch compares the delta cook that added regex with a
// from-scratch cook of the same recipe: the same files, the same size
// within 5 %, and the binaries built on either.
func compareAddWithScratch(t *testing.T, dir, nonce string, added dockerctl.CookResult, b dockerctl.BuildResult) {
	t.Helper()
	scratch, scratchDir := scratchCookWith(t, dir, "scratch-regex", func(cp string) {
		edit(t, filepath.Join(cp, ".cargo/config.toml"), nonce, nonce+"-scratch")
	})
	sameFiles(t, "add regex", cookedFiles(t, added.Tag, "/src"), cookedFiles(t, scratch.Tag, "/src"))
	if d, s := imageSize(t, added.Tag), imageSize(t, scratch.Tag); d > s+s/20 || d < s-s/20 {
		t.Errorf("add regex: the delta-cooked image is %d bytes, the from-scratch one %d (more than 5%% apart)", d, s)
	}
	sb := buildJSON(t, scratchDir, "--tag", "scratch")
	for _, bin := range []string{"app", "report"} {
		d, s := binarySum(t, b.Image, "/usr/local/bin/"+bin), binarySum(t, sb.Image, "/usr/local/bin/"+bin)
		t.Logf("add regex: %s on the delta-cooked image %s, on the from-scratch one %s, bit-identical %v", bin, d, s, d == s)
	}
}

// TestE2ECookLayers: cooked images as layers on the newest cooked image of
// their cook key (dockerctl/deltalayer.go), over random generations of
// recipe changes (version bumps back and forth, a feature on and off, the
// vendored crate changed in place) on a workspace whose unchanging padding
// crate keeps a generation's removals small, with the newest cooked image
// removed now and then (the base is then an older one). After each cook:
// the image's target/ holds the same files as a cook from scratch of its
// recipe (a cook key of its own), its size is within 5% of that cook's,
// it has a bounded number of layers, the code build on it compiles no
// third-party crate and the image prints what the sources say. The run
// must have made real layers and whole copies. CHEFD_LAYER_SEED replays.
func TestE2ECookLayers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	needEngine(t)
	seed := int64(envInt("CHEFD_LAYER_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("seed %d (CHEFD_LAYER_SEED=%d to replay)", seed, seed)
	rng := rand.New(rand.NewSource(seed))
	dir := tinyWorkspace(t)
	// chefd-pad: a third-party crate of about 1 MB that never changes
	pad := filepath.Join(dir, "vendor/chefd-pad-0.1.0")
	for name, data := range map[string]string{
		"Cargo.toml": "[package]\nname = \"chefd-pad\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
		"src/lib.rs": "pub static PAD: [u8; 1_000_000] = [7; 1_000_000];\n",
	} {
		writeWSFile(t, filepath.Join(pad, filepath.FromSlash(name)), data)
	}
	writeChecksums(t, pad)
	ver, loud, patch := "0.1.0", false, map[string]int{}
	manifest := func() {
		writeWSFile(t, filepath.Join(dir, "app/Cargo.toml"), appManifest("chefd-pad = \"0.1.0\"\n", ver, loud))
		relock(t, dir)
	}
	greeting := func() string {
		g := "tiny " + ver
		if patch[ver] > 0 {
			g = fmt.Sprintf("tiny %s #%d", ver, patch[ver])
		}
		if loud {
			g = strings.ToUpper(g)
		}
		return "app: " + g
	}
	manifest()
	var layered, whole int
	steps := envInt("CHEFD_LAYER_STEPS", 8)
	lastTag := ""
	for i := 0; i <= steps; i++ {
		what, broken := "the first cook", ""
		if i > 0 {
			op := rng.Intn(3)
			if i == 2 {
				op = 2 // a recipe never cooked before, for the broken base
			}
			switch op {
			case 0:
				ver = map[string]string{"0.1.0": "0.1.1", "0.1.1": "0.1.0"}[ver]
				what = "bump to " + ver
			case 1:
				loud = !loud
				what = fmt.Sprintf("loud %v", loud)
			case 2:
				patch[ver]++
				crate := filepath.Join(dir, "vendor/chefd-tiny-"+ver)
				if err := os.WriteFile(filepath.Join(crate, "src/lib.rs"), []byte(tinyLib(fmt.Sprintf("tiny %s #%d", ver, patch[ver]))), 0o644); err != nil {
					t.Fatal(err)
				}
				writeChecksums(t, crate)
				what = fmt.Sprintf("%s changed in place (#%d)", ver, patch[ver])
			}
			manifest()
			if i == 2 && lastTag != "" {
				// the newest cooked image of the key is one the layer step
				// cannot use (its target/ a file): the cook runs again as a
				// whole copy
				broken = brokenBase(t, cookKeyOf(t, lastTag))
				what += ", a broken base the newest"
			} else if rng.Intn(4) == 0 {
				// the newest cooked image goes: the next base is an older one
				cfg, _ := configs.Load(dir)
				out, _ := exec.Command("docker", "images", "-q", "--filter", "label=chefd.kind=cooked", cfg.Image+"-cooked").Output()
				if ids := strings.Fields(string(out)); len(ids) > 1 {
					exec.Command("docker", "rmi", "-f", ids[0]).Run()
					what += ", the newest cooked image removed"
				}
			}
		}
		res := buildJSON(t, dir, "--tag", "layers")
		if broken != "" {
			exec.Command("docker", "rmi", "-f", broken).Run()
		}
		if out := strings.TrimSpace(dockerRun(t, res.Image)); out != greeting() {
			t.Fatalf("step %d (%s): the image prints %q, want %q (seed %d)", i, what, out, greeting(), seed)
		}
		if res.Compiled.ThirdParty != 0 {
			t.Errorf("step %d (%s): the code build compiled third-party crates %v (seed %d)", i, what, res.Compiled.ThirdPartyNames, seed)
		}
		if res.Cook == nil || res.Cook.Skipped {
			t.Logf("step %d (%s): no cook (the recipe's cooked image exists)", i, what)
			continue
		}
		lastTag = res.Cook.Tag
		if broken != "" && (res.Cook.LayerOn != "" || res.Cook.Flattened) {
			t.Errorf("step %d (%s): the cook is a layer on %q (made whole %v), want a whole copy", i, what, res.Cook.LayerOn, res.Cook.Flattened)
		}
		kind := "a whole copy"
		switch {
		case res.Cook.LayerOn != "":
			kind, layered = "a layer on "+res.Cook.LayerOn, layered+1
		case res.Cook.Flattened:
			kind, whole = "a layer made whole", whole+1
		default:
			whole++
		}
		layers := imageLayers(t, res.Cook.Tag)
		scratch, _ := scratchCookWith(t, dir, fmt.Sprintf("scratch%d", i), func(cp string) {
			f := filepath.Join(cp, ".cargo/config.toml")
			b, _ := os.ReadFile(f)
			os.WriteFile(f, append(b, fmt.Sprintf("chefd-nonce-scratch-%d = \"build\"\n", time.Now().UnixNano())...), 0o644)
		})
		sameFiles(t, fmt.Sprintf("step %d (%s, seed %d)", i, what, seed), cookedFiles(t, res.Cook.Tag, "/src"), cookedFiles(t, scratch.Tag, "/src"))
		d, s := imageSize(t, res.Cook.Tag), imageSize(t, scratch.Tag)
		if d > s+s/20 || d < s-s/20 {
			t.Errorf("step %d (%s): the cooked image is %d bytes, the from-scratch one %d (more than 5%% apart; seed %d)", i, what, d, s, seed)
		}
		if layers > 13 {
			t.Errorf("step %d (%s): the cooked image has %d layers (seed %d)", i, what, layers, seed)
		}
		t.Logf("step %d (%s): %s, %d layers, %d bytes (from scratch %d), compiled %v", i, what, kind, layers, d, s, res.Cook.Compiled.ThirdPartyNames)
	}
	t.Logf("%d cooks were layers, %d whole copies", layered, whole)

	// A second checkout under another image name, same recipe and key:
	// its cooked image is the first one's layers under its own labels.
	second := filepath.Join(t.TempDir(), "second")
	if out, err := exec.Command("cp", "-a", dir, second).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	os.RemoveAll(filepath.Join(second, ".chefd"))
	cfg, _ := configs.Load(dir)
	edit(t, filepath.Join(second, "chefd.toml"), `image = "`+cfg.Image+`"`, `image = "`+cfg.Image+`-second"`)
	t.Cleanup(func() { removeImages(cfg.Image + "-second"); removeImages(cfg.Image + "-second-cooked") })
	res := buildJSON(t, second, "--tag", "layers")
	if res.Cook == nil || res.Cook.LayerOn == "" || res.Cook.Compiled.ThirdParty+res.Cook.Compiled.Local != 0 {
		t.Errorf("the second checkout's cook: %+v; want the first checkout's cooked image, nothing compiled", res.Cook)
	} else {
		sameFiles(t, "second checkout", cookedFiles(t, res.Cook.Tag, "/src"),
			cookedFiles(t, strings.Replace(res.Cook.Tag, "-second-cooked:", "-cooked:", 1), "/src"))
		t.Logf("second checkout: cooked in %.2fs from %s", res.Cook.Duration.Seconds(), res.Cook.LayerOn)
	}
	if out := strings.TrimSpace(dockerRun(t, res.Image)); out != greeting() {
		t.Errorf("the second checkout's image prints %q, want %q", out, greeting())
	}
	if res.Compiled.ThirdParty != 0 {
		t.Errorf("the second checkout's code build compiled third-party crates %v", res.Compiled.ThirdPartyNames)
	}
	if steps >= 8 && layered < 2 {
		t.Errorf("%d cooks were layers and %d whole copies: want layers (seed %d)", layered, whole, seed)
	}
}

// brokenBase imports an image that pickLayerBase takes for the newest
// cooked image of cook key key, whose target directory is a file, and
// returns its tag.
func brokenBase(t *testing.T, key string) string {
	t.Helper()
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	tw.WriteHeader(&tar.Header{Name: "src/", Mode: 0o755, Typeflag: tar.TypeDir})
	tw.WriteHeader(&tar.Header{Name: "src/target", Mode: 0o644, Size: 6})
	tw.Write([]byte("broken"))
	tw.Close()
	tag := fmt.Sprintf("chefd-e2e-broken-base:%d", time.Now().UnixNano())
	cmd := exec.Command("docker", "import",
		"--change", "LABEL chefd.kind=cooked",
		"--change", "LABEL chefd.cook-key="+key,
		"--change", "LABEL chefd.cooked-at="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano),
		"-", tag)
	cmd.Stdin = &tarball
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	return tag
}

// imageLayers is the number of layers of an image.
func imageLayers(t *testing.T, image string) int {
	t.Helper()
	out, err := exec.Command("docker", "image", "inspect", "-f", "{{len .RootFS.Layers}}", image).Output()
	if err != nil {
		t.Fatalf("inspect %s: %v", image, err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}
