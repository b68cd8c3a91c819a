package dockerctl

// A model of the code step, run on the host with the real stamp.sh: a fresh
// copy of the sources with the context's old mtimes for every build, a
// persistent target directory, and a fake cargo that rebuilds a unit exactly
// when cargo would (an input newer than the artifact, a dependency rebuilt
// or newer than it). Randomized sequences of edits, reverts, local version bumps,
// failed and interrupted builds, resets, pruned caches and a clock that
// jumps back check, after every successful build, that every artifact was
// built from the current content. The clock is virtual (a `date` on PATH),
// so every run of a seed is the same.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chefd/chefd/recipe"
)

type stampUnit struct {
	name  string
	files []string // inputs (context-relative)
	deps  []string // units it depends on
}

type stampModel struct {
	t       *testing.T
	rng     *rand.Rand
	dir     string
	tgt     string
	bin     string
	nowFile string
	clock   time.Time
	content map[string]string // the workspace
	units   []stampUnit
	log     []string
}

var stampUnits = []stampUnit{
	{name: "ledger", files: []string{"ledger/src/lib.rs", "ledger/src/util.rs"}},
	{name: "app", files: []string{"app/src/main.rs"}, deps: []string{"ledger"}},
	{name: "report", files: []string{"report/src/main.rs", "report/data.txt"}, deps: []string{"ledger"}},
}

func newStampModel(t *testing.T, seed int64) *stampModel {
	for _, tool := range []string{"sh", "awk", "find", "xargs", "touch", "date", "mktemp", "tr", "head", "tail"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run stamp.sh on the host: %v", tool, err)
		}
	}
	dir := t.TempDir()
	m := &stampModel{t: t, rng: rand.New(rand.NewSource(seed)), dir: dir, tgt: filepath.Join(dir, "target"),
		bin: filepath.Join(dir, "bin"), nowFile: filepath.Join(dir, "now"),
		clock: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), units: stampUnits,
		content: map[string]string{"Cargo.toml": "[workspace] version = 1\n", "Cargo.lock": "lock 1\n"}}
	for _, u := range m.units {
		m.content[filepath.Dir(filepath.Dir(u.files[0]))+"/Cargo.toml"] = "[package] name = " + u.name + "\n"
		for _, f := range u.files {
			m.content[f] = "v0 " + f
		}
	}
	realDate, _ := exec.LookPath("date")
	os.MkdirAll(m.bin, 0o755)
	// date +%s.%N answers the virtual clock; anything else is the real date.
	wrapper := "#!/bin/sh\nif [ \"$1\" = +%s.%N ]; then cat " + m.nowFile + "; else exec " + realDate + " \"$@\"; fi\n"
	if err := os.WriteFile(filepath.Join(m.bin, "date"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *stampModel) tick(d time.Duration) time.Time {
	m.clock = m.clock.Add(d)
	return m.clock
}

func (m *stampModel) recipe() *recipe.Recipe {
	r := &recipe.Recipe{Hash: "recipe", LockFile: &recipe.File{Path: "Cargo.lock"}}
	r.Manifests = append(r.Manifests, recipe.Manifest{Path: "Cargo.toml"})
	for _, u := range m.units {
		r.Manifests = append(r.Manifests, recipe.Manifest{Path: filepath.Dir(filepath.Dir(u.files[0])) + "/Cargo.toml", Package: u.name})
	}
	return r
}

// version is the workspace version: part of every artifact's name, as
// cargo's metadata hash is.
func (m *stampModel) version() string {
	return strings.TrimSpace(strings.TrimPrefix(m.content["Cargo.toml"], "[workspace] version = "))
}

func (m *stampModel) artifact(u stampUnit) string {
	return filepath.Join(m.tgt, "release", ".fingerprint", u.name+"-"+m.version(), "out")
}

// expected is what a from-scratch build of unit u holds now.
func (m *stampModel) expected(u stampUnit) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", u.name, m.version())
	for _, f := range u.files {
		fmt.Fprintf(h, "%s=%s\n", f, m.content[f])
	}
	for _, d := range u.deps {
		fmt.Fprintf(h, "dep %s\n", m.expected(m.unit(d)))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func (m *stampModel) unit(name string) stampUnit {
	for _, u := range m.units {
		if u.name == name {
			return u
		}
	}
	m.t.Fatalf("no unit %s", name)
	return stampUnit{}
}

// build runs one code step; failAt < len(units) makes "cargo" stop before
// that unit (a compile error, a cancel, a kill). It returns the units
// rebuilt.
func (m *stampModel) build(failAt int, reset bool) []string {
	t := m.t
	src := filepath.Join(m.dir, "src")
	os.RemoveAll(src)
	idx := newSourceIndex(m.recipe())
	var rels []string
	for rel := range m.content {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		p := filepath.Join(src, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(m.content[rel]), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := contentDigest(ctxFile{abs: p, mode: 0o644})
		if err != nil {
			t.Fatal(err)
		}
		idx.add(rel, d)
	}
	filepath.Walk(src, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			os.Chtimes(p, stableTime, stableTime) // what COPY gives every file
		}
		return nil
	})
	list, always := idx.lists()
	os.WriteFile(filepath.Join(m.dir, "sources"), list, 0o644)
	os.WriteFile(filepath.Join(m.dir, "always"), always, 0o644)
	os.WriteFile(filepath.Join(m.dir, "stamp.sh"), []byte(stampScript), 0o644)
	now := m.tick(time.Duration(1+m.rng.Intn(5000)) * time.Millisecond)
	os.WriteFile(m.nowFile, []byte(fmt.Sprintf("%d.%09d\n", now.Unix(), now.Nanosecond())), 0o644)
	env := append(os.Environ(), "PATH="+m.bin+":"+os.Getenv("PATH"), "CHEFD_SRC="+src, "CHEFD_TARGET="+m.tgt,
		"CHEFD_LIST="+filepath.Join(m.dir, "sources"), "CHEFD_ALWAYS="+filepath.Join(m.dir, "always"))
	if reset {
		env = append(env, "CHEFD_RESET=1")
	}
	stamp := func(arg string) {
		cmd := exec.Command("sh", filepath.Join(m.dir, "stamp.sh"), arg)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("stamp.sh %s: %v\n%s\nsteps:\n%s", arg, err, out, strings.Join(m.log, "\n"))
		}
	}
	stamp("begin")
	var rebuilt []string
	did := map[string]bool{}
	for i, u := range m.units {
		if i >= failAt {
			return rebuilt
		}
		art := m.artifact(u)
		fresh := true
		st, err := os.Stat(art)
		if err != nil {
			fresh = false
		} else {
			for _, f := range u.files {
				if fi, err := os.Stat(filepath.Join(src, f)); err != nil || fi.ModTime().After(st.ModTime()) {
					fresh = false
				}
			}
			for _, d := range u.deps {
				// cargo: a dependency rebuilt now, or built after this unit
				di, err := os.Stat(m.artifact(m.unit(d)))
				if did[d] || err != nil || di.ModTime().After(st.ModTime()) {
					fresh = false
				}
			}
		}
		if fresh {
			continue
		}
		// cargo builds from what /src holds now
		h := sha256.New()
		fmt.Fprintf(h, "%s %s\n", u.name, m.version())
		for _, f := range u.files {
			b, _ := os.ReadFile(filepath.Join(src, f))
			fmt.Fprintf(h, "%s=%s\n", f, b)
		}
		for _, d := range u.deps {
			b, _ := os.ReadFile(m.artifact(m.unit(d)))
			fmt.Fprintf(h, "dep %s\n", b)
		}
		os.MkdirAll(filepath.Dir(art), 0o755)
		os.WriteFile(art, []byte(hex.EncodeToString(h.Sum(nil)[:8])), 0o644)
		at := m.tick(time.Duration(1+m.rng.Intn(3000)) * time.Millisecond)
		os.Chtimes(art, at, at)
		did[u.name] = true
		rebuilt = append(rebuilt, u.name)
	}
	stamp("commit")
	for _, u := range m.units {
		got, _ := os.ReadFile(m.artifact(u))
		if string(got) != m.expected(u) {
			t.Fatalf("after a successful build, %s was built from other content (got %s, want %s); steps:\n%s",
				u.name, got, m.expected(u), strings.Join(m.log, "\n"))
		}
	}
	return rebuilt
}

func (m *stampModel) step() {
	files := []string{"ledger/src/lib.rs", "ledger/src/util.rs", "app/src/main.rs", "report/src/main.rs", "report/data.txt"}
	switch op := m.rng.Intn(12); {
	case op < 4:
		f := files[m.rng.Intn(len(files))]
		v := fmt.Sprintf("v%d %s", m.rng.Intn(3), f)
		m.content[f] = v
		m.log = append(m.log, "edit "+f+" -> "+v)
	case op == 4:
		v := 1 + m.rng.Intn(2)
		m.content["Cargo.toml"] = "[workspace] version = " + strconv.Itoa(v) + "\n"
		m.content["Cargo.lock"] = "lock " + strconv.Itoa(v) + "\n"
		m.log = append(m.log, fmt.Sprintf("version %d", v))
	case op == 5:
		if m.rng.Intn(2) == 0 {
			m.content["app/src/extra.rs"] = "new"
			m.log = append(m.log, "add app/src/extra.rs")
		} else {
			delete(m.content, "app/src/extra.rs")
			m.log = append(m.log, "delete app/src/extra.rs")
		}
	case op == 6:
		at := m.rng.Intn(len(m.units))
		m.log = append(m.log, fmt.Sprintf("failed build (stops before unit %d): rebuilt %v", at, m.build(at, false)))
	case op == 7:
		os.RemoveAll(m.tgt)
		m.log = append(m.log, "cache pruned")
	case op == 8:
		m.tick(-time.Duration(1+m.rng.Intn(60)) * time.Second)
		m.log = append(m.log, "clock back")
	case op == 9:
		m.log = append(m.log, fmt.Sprintf("build --no-cache: rebuilt %v", m.build(len(m.units), true)))
	default:
		m.log = append(m.log, fmt.Sprintf("build: rebuilt %v", m.build(len(m.units), false)))
	}
}

// TestStampRandomized runs random sequences (CHEFD_STAMP_SEEDS seeds, 10 by
// default) of 60 steps each.
func TestStampRandomized(t *testing.T) {
	seeds := 10
	if s, err := strconv.Atoi(os.Getenv("CHEFD_STAMP_SEEDS")); err == nil && s > 0 {
		seeds = s
	}
	if testing.Short() {
		seeds = 5
	}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			m := newStampModel(t, seed)
			for i := 0; i < 60; i++ {
				m.step()
			}
		})
	}
}

// TestStampRebuildsOnlyWhatChanged: after a successful build, a build with
// no change rebuilds nothing, and an edit rebuilds its unit and dependents.
func TestStampRebuildsOnlyWhatChanged(t *testing.T) {
	m := newStampModel(t, 1)
	if got := m.build(3, false); strings.Join(got, ",") != "ledger,app,report" {
		t.Fatalf("first build rebuilt %v", got)
	}
	if got := m.build(3, false); len(got) != 0 {
		t.Fatalf("a build with no change rebuilt %v", got)
	}
	m.content["app/src/main.rs"] = "v1"
	if got := m.build(3, false); strings.Join(got, ",") != "app" {
		t.Fatalf("an app edit rebuilt %v", got)
	}
	m.content["ledger/src/util.rs"] = "v1"
	if got := m.build(3, false); strings.Join(got, ",") != "ledger,app,report" {
		t.Fatalf("a ledger edit rebuilt %v", got)
	}
	// the sequence: an edit compiled by a failed build, then reverted
	m.content["ledger/src/lib.rs"] = "ENTRIES-Y"
	m.content["app/src/main.rs"] = "broken"
	m.build(1, false) // ledger compiled, app fails
	m.content["ledger/src/lib.rs"] = "v0 ledger/src/lib.rs"
	m.content["app/src/main.rs"] = "v1"
	if got := m.build(3, false); strings.Join(got, ",") != "ledger,app,report" {
		t.Fatalf("after a failed build and a revert, rebuilt %v", got)
	}
	// an added file reruns the package (its manifest's digest covers the file list)
	m.content["report/build-input.txt"] = "x"
	if got := m.build(3, false); len(got) != 0 {
		t.Fatalf("a file no unit reads rebuilt %v", got)
	}
}

// TestStampRecord checks the record stamp.sh keeps: epochs for changes
// until a build succeeds, the context's own mtime after it.
func TestStampRecord(t *testing.T) {
	m := newStampModel(t, 2)
	m.build(0, false) // stamped, cargo failed at once
	rec, err := os.ReadFile(filepath.Join(m.tgt, ".chefd", "sources"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(rec)), "\n")
	if !strings.HasPrefix(lines[0], sourcesFormat+" ") {
		t.Fatalf("record header %q", lines[0])
	}
	for _, l := range lines[1:] {
		if f := strings.SplitN(l, " ", 3); len(f) != 3 || f[1] == "0" {
			t.Fatalf("before a success every entry has an epoch: %q", l)
		}
	}
	m.build(3, false)
	rec, _ = os.ReadFile(filepath.Join(m.tgt, ".chefd", "sources"))
	for _, l := range strings.Split(strings.TrimSpace(string(rec)), "\n")[1:] {
		if f := strings.SplitN(l, " ", 3); f[1] != "0" {
			t.Fatalf("after a success every entry has epoch 0: %q", l)
		}
	}
}

// TestStampBaseIsStableTime: stamp.sh gives the context root the context's
// own mtime.
func TestStampBaseIsStableTime(t *testing.T) {
	if want := fmt.Sprintf("base=%d ", stableTime.Unix()); !strings.Contains(stampScript, want) {
		t.Fatalf("stamp.sh does not set %q", want)
	}
}

// TestStampEpochCap: a long run of failed builds, each with another file
// changed, leaves at most 16 distinct epochs in the record (older ones
// rounded up), and the next successful build is still right.
func TestStampEpochCap(t *testing.T) {
	m := newStampModel(t, 3)
	var files []string
	for i := 0; i < 20; i++ {
		f := fmt.Sprintf("ledger/src/m%02d.rs", i)
		files = append(files, f)
		m.content[f] = "v0"
	}
	m.units = []stampUnit{{name: "ledger", files: files}, {name: "app", files: []string{"app/src/main.rs"}, deps: []string{"ledger"}}}
	m.build(2, false)
	for i, f := range files {
		m.content[f] = fmt.Sprintf("v%d", i+1)
		m.build(0, false) // cargo fails at once
	}
	rec, err := os.ReadFile(filepath.Join(m.tgt, ".chefd", "sources"))
	if err != nil {
		t.Fatal(err)
	}
	epochs := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(rec)), "\n")[1:] {
		if f := strings.SplitN(l, " ", 3); f[1] != "0" {
			epochs[f[1]] = true
		}
	}
	if len(epochs) > 16 || len(epochs) < 2 {
		t.Fatalf("%d distinct epochs in the record, want 2 to 16", len(epochs))
	}
	if got := m.build(2, false); strings.Join(got, ",") != "ledger,app" {
		t.Fatalf("rebuilt %v", got)
	}
}
