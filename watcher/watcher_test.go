package watcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// Generous: the machine running the tests may be loaded.
const waitBatch = 10 * time.Second

type harness struct {
	t    *testing.T
	root string
	w    *Watcher

	mu   sync.Mutex
	errs []error
	wg   sync.WaitGroup
}

// start creates a watcher on root with a short debounce and starts it; the
// errors it reports are collected (and logged).
func start(t *testing.T, root string, opts ...Option) *harness {
	t.Helper()
	opts = append([]Option{WithDebounce(50 * time.Millisecond), WithMaxWait(2 * time.Second),
		WithLogger(zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))}, opts...)
	w, err := New(root, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, root: root, w: w}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for err := range w.Errors() {
			h.mu.Lock()
			h.errs = append(h.errs, err)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		h.wg.Wait()
	})
	return h
}

func (h *harness) errors() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errs...)
}

// waitError waits for a reported error satisfying match.
func (h *harness) waitError(match func(error) bool) error {
	h.t.Helper()
	deadline := time.Now().Add(waitBatch)
	for time.Now().Before(deadline) {
		for _, err := range h.errors() {
			if match(err) {
				return err
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("expected error not reported; got %v", h.errors())
	return nil
}

// settle waits until the watcher has no batch in the making (events seen so
// far are all processed into an emitted or dropped batch).
func (h *harness) settle() {
	h.t.Helper()
	deadline := time.Now().Add(waitBatch)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		busy := true
		h.w.do(func() { busy = h.w.hasWork() })
		if !busy {
			return
		}
	}
	h.t.Fatal("watcher did not settle")
}

func (h *harness) path(rel string) string { return filepath.Join(h.root, filepath.FromSlash(rel)) }

func (h *harness) write(rel, content string) {
	h.t.Helper()
	p := h.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) rename(from, to string) {
	h.t.Helper()
	if err := os.Rename(h.path(from), h.path(to)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) remove(rel string) {
	h.t.Helper()
	if err := os.RemoveAll(h.path(rel)); err != nil {
		h.t.Fatal(err)
	}
}

// next waits for the next batch.
func (h *harness) next() Batch {
	h.t.Helper()
	select {
	case b, ok := <-h.w.Batches():
		if !ok {
			h.t.Fatal("batches channel closed")
		}
		h.t.Logf("batch: kind=%v paths=%v created=%v removed=%v recipe=%v rescan=%v",
			b.Kind, short(b.Paths), short(b.Created), short(b.Removed), b.Recipe, b.Rescan)
		return b
	case <-time.After(waitBatch):
		h.t.Fatalf("no batch within %s", waitBatch)
	}
	return Batch{}
}

// none asserts that no batch arrives within d.
func (h *harness) none(d time.Duration) {
	h.t.Helper()
	select {
	case b := <-h.w.Batches():
		h.t.Fatalf("unexpected batch: %+v", b)
	case <-time.After(d):
	}
}

// sentinel writes a fresh file and returns its path: used to prove that
// earlier ignored events produced nothing (the next batch must hold only
// the sentinel).
func (h *harness) sentinel() string {
	h.t.Helper()
	rel := fmt.Sprintf("sentinel-%d.txt", time.Now().UnixNano())
	h.write(rel, rel)
	return rel
}

// nothingElse asserts that nothing before it makes a batch: the next
// batch holds only a fresh sentinel (a batch pending, or changes still
// unreported, would come first or with it). No time window decides.
func (h *harness) nothingElse() {
	h.t.Helper()
	s := h.sentinel()
	eq(h.t, "Paths (only the sentinel)", h.next().Paths, []string{s})
}

func short(s []string) []string {
	if len(s) > 8 {
		return append(append([]string(nil), s[:8]...), fmt.Sprintf("... (%d)", len(s)))
	}
	return s
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %v, want %v", what, short(got), short(want))
	}
}

func mkTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if strings.HasSuffix(rel, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func rustTree(t *testing.T) string {
	return mkTree(t, map[string]string{
		"Cargo.toml":       "[package]\nname = \"app\"\n",
		"Cargo.lock":       "# lock\n",
		"src/main.rs":      "fn main() {}\n",
		"src/f.rs":         "pub fn f() {}\n",
		"src/x.rs":         "pub fn x() {}\n",
		"README.md":        "# app\n",
		"target/debug/app": "bin",
	})
}

func TestVimSave(t *testing.T) {
	h := start(t, rustTree(t))
	// vim with backupcopy=auto, writebackup (Canop/bacon#222 trace).
	h.write("src/4913", "")
	h.remove("src/4913")
	h.rename("src/f.rs", "src/f.rs~")
	h.write("src/f.rs", "pub fn f() { println!(\"new\"); }\n")
	h.remove("src/f.rs~")
	b := h.next()
	eq(t, "Paths", b.Paths, []string{"src/f.rs"})
	eq(t, "Created", b.Created, nil)
	eq(t, "Removed", b.Removed, nil)
	if b.Kind != KindCode || len(b.Recipe) != 0 {
		t.Fatalf("kind %v recipe %v, want code", b.Kind, b.Recipe)
	}
	h.nothingElse()
}

func TestVimSaveCargoTomlTwice(t *testing.T) {
	h := start(t, rustTree(t))
	for i := 1; i <= 2; i++ {
		h.write("4913", "")
		h.remove("4913")
		h.rename("Cargo.toml", "Cargo.toml~")
		h.write("Cargo.toml", fmt.Sprintf("[package]\nname = \"app\"\nversion = \"0.%d.0\"\n", i))
		h.remove("Cargo.toml~")
		b := h.next()
		eq(t, "Paths", b.Paths, []string{"Cargo.toml"})
		eq(t, "Recipe", b.Recipe, []string{"Cargo.toml"})
		if b.Kind != KindRecipe {
			t.Fatalf("save %d: kind %v, want recipe", i, b.Kind)
		}
	}
}

func TestJetBrainsSafeWrite(t *testing.T) {
	h := start(t, rustTree(t))
	h.write("src/x.rs___jb_tmp___", "pub fn x() -> u8 { 1 }\n")
	h.rename("src/x.rs", "src/x.rs___jb_old___")
	h.rename("src/x.rs___jb_tmp___", "src/x.rs")
	h.remove("src/x.rs___jb_old___")
	b := h.next()
	eq(t, "Paths", b.Paths, []string{"src/x.rs"})
	if b.Kind != KindCode || len(b.Created)+len(b.Removed) != 0 {
		t.Fatalf("unexpected batch %+v", b)
	}
}

// VS Code truncates, then writes in place.
func truncateThenWrite(t *testing.T, p, content string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	f, err = os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestVSCodeTruncateThenWrite(t *testing.T) {
	h := start(t, rustTree(t))
	truncateThenWrite(t, h.path("src/main.rs"), "fn main() { println!(\"hi\"); }\n")
	b := h.next()
	eq(t, "Paths", b.Paths, []string{"src/main.rs"})
	if b.Kind != KindCode {
		t.Fatalf("kind %v, want code (editing main.rs)", b.Kind)
	}

	// Identical content: truncate + write back the same bytes, and a touch.
	truncateThenWrite(t, h.path("src/main.rs"), "fn main() { println!(\"hi\"); }\n")
	now := time.Now()
	if err := os.Chtimes(h.path("src/x.rs"), now, now); err != nil {
		t.Fatal(err)
	}
	h.nothingElse()

	// Even when the empty intermediate state is seen on its own (the write
	// comes after the quiet period), restoring the content ends up consistent.
	truncateThenWrite(t, h.path("src/f.rs"), "")
	b = h.next()
	eq(t, "Paths", b.Paths, []string{"src/f.rs"})
	truncateThenWrite(t, h.path("src/f.rs"), "pub fn f() {}\n")
	b = h.next()
	eq(t, "Paths", b.Paths, []string{"src/f.rs"})
}

func TestGitCheckoutHeldUntilLockGoes(t *testing.T) {
	root := rustTree(t)
	if err := os.MkdirAll(filepath.Join(root, ".git", "objects", "ab"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := start(t, root, WithMaxWait(300*time.Millisecond))
	lock := h.path(".git/index.lock")
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	const n = 5000
	began := time.Now()
	var want []string
	for i := 0; i < n; i++ {
		// 50 directories, half of them new, a few nested.
		dir := fmt.Sprintf("crates/c%02d/src", i%50)
		if i%50 >= 25 {
			dir = fmt.Sprintf("new/n%02d/deep/src", i%50)
		}
		rel := fmt.Sprintf("%s/f%04d.rs", dir, i)
		h.write(rel, rel)
		want = append(want, rel)
	}
	// Git also writes inside .git; none of it may show up.
	if err := os.WriteFile(h.path(".git/objects/ab/cdef"), []byte("obj"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.path(".git/HEAD"), []byte("ref: refs/heads/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d files in %s", n, time.Since(began))
	// Hold past the max wait (300ms here) would have emitted.
	h.none(600 * time.Millisecond)
	if err := os.Rename(lock, h.path(".git/index")); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	b := h.next()
	t.Logf("batch %s after the lock went", time.Since(released))
	sort.Strings(want)
	eq(t, "Paths", b.Paths, want)
	eq(t, "Created", b.Created, want)
	h.nothingElse()
}

func TestGitRebaseStateHolds(t *testing.T) {
	root := rustTree(t)
	if err := os.MkdirAll(filepath.Join(root, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := start(t, root, WithMaxWait(200*time.Millisecond))
	if err := os.Mkdir(h.path(".git/rebase-merge"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.write("src/a.rs", "a")
	// Git takes and releases the index lock for each commit it applies.
	for i := 0; i < 3; i++ {
		h.write(".git/index.lock", "")
		h.write("src/x.rs", fmt.Sprintf("step %d", i))
		h.rename(".git/index.lock", ".git/index")
	}
	h.write("Cargo.toml", "[package]\nname = \"app2\"\n")
	h.none(time.Second)
	h.remove(".git/rebase-merge")
	b := h.next()
	eq(t, "Paths", b.Paths, []string{"Cargo.toml", "src/a.rs", "src/x.rs"})
	if b.Kind != KindRecipe {
		t.Fatalf("kind %v, want recipe", b.Kind)
	}
}

func TestGitHoldWarnsWhenLong(t *testing.T) {
	root := rustTree(t)
	if err := os.MkdirAll(filepath.Join(root, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".git", "index.lock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := start(t, root, withGitHoldWarn(200*time.Millisecond))
	h.write("src/a.rs", "a")
	h.waitError(func(err error) bool { return strings.Contains(err.Error(), "index.lock") })
	h.none(100 * time.Millisecond)
	h.remove(".git/index.lock")
	eq(t, "Paths", h.next().Paths, []string{"src/a.rs"})
}

func TestMkdirPBurst(t *testing.T) {
	h := start(t, rustTree(t))
	for i := 0; i < 5; i++ {
		dir := h.path(fmt.Sprintf("a%d/b/c", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "x.rs"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		b := h.next()
		rel := fmt.Sprintf("a%d/b/c/x.rs", i)
		eq(t, "Paths", b.Paths, []string{rel})
		eq(t, "Created", b.Created, []string{rel})
	}
	// The new directories are watched.
	h.write("a0/b/c/y.rs", "y")
	eq(t, "Paths", h.next().Paths, []string{"a0/b/c/y.rs"})
}

func TestIgnoredTreeNeverWatched(t *testing.T) {
	files := map[string]string{
		"Cargo.toml":             "[workspace]\n",
		".gitignore":             "/target\n*.gen.rs\nnode_modules/\n", // .gitignore does not decide
		".dockerignore":          "docs\n**/node_modules\n**/*.log\n!sub/keep.log\nsub/gen\n",
		"src/main.rs":            "fn main() {}\n",
		"src/util/mod.rs":        "",
		"src/x.gen.rs":           "",
		"sub/lib.rs":             "",
		"sub/gen/a/b.rs":         "",
		"sub/other/c.rs":         "",
		"web/node_modules/x/":    "",
		"node_modules/a/b/c/":    "",
		"node_modules/d/":        "",
		"docs/guide/":            "",
		"assets/img/":            "",
		".idea/":                 "",
		"crates/x/Cargo.toml":    "",
		"crates/x/target/debug/": "",
		"crates/x/src/lib.rs":    "",
		"empty/":                 "",
	}
	for i := 0; i < 200; i++ {
		files[fmt.Sprintf("target/debug/deps/d%03d/", i)] = ""
	}
	root := mkTree(t, files)
	h := start(t, root, WithIgnore("assets"))
	want := []string{"", "src", "src/util", "sub", "sub/other", "web", "crates", "crates/x", "crates/x/src", "empty"}
	if got := h.w.WatchCount(); got != len(want) {
		var watched []string
		h.w.do(func() {
			for d := range h.w.watched {
				watched = append(watched, d)
			}
		})
		sort.Strings(watched)
		t.Fatalf("WatchCount = %d, want %d (%q); watched: %q", got, len(want), want, watched)
	}

	// Files left out of the context produce nothing; the re-included one
	// and the git-ignored one (shipped: docker build ignores .gitignore) do.
	h.write("target/debug/x", "x")
	h.write("node_modules/a/b/c/x.js", "x")
	h.write("src/debug.log", "x")
	h.write("sub/gen/a/z.rs", "x")
	h.write("sub/.x.rs.swp", "x")
	h.write("sub/keep.log", "kept")
	h.write("src/x.gen.rs", "generated")
	b := h.next()
	eq(t, "Paths", b.Paths, []string{"src/x.gen.rs", "sub/keep.log"})

	// A changed .dockerignore is re-read: watches follow.
	h.write(".dockerignore", "docs\n**/node_modules\n**/*.log\n!sub/keep.log\nsub/gen\nsub/other\n")
	b = h.next()
	eq(t, "Paths", b.Paths, []string{".dockerignore"})
	if got := h.w.WatchCount(); got != len(want)-1 {
		t.Fatalf("after ignoring sub/other: WatchCount = %d, want %d", got, len(want)-1)
	}
	h.write("sub/other/c.rs", "changed")
	s := h.sentinel()
	eq(t, "Paths", h.next().Paths, []string{s})

	h.write(".dockerignore", "docs\n**/node_modules\n**/*.log\n")
	eq(t, "Paths", h.next().Paths, []string{".dockerignore"})
	if got := h.w.WatchCount(); got != len(want)+2 { // sub/other and sub/gen, sub/gen/a
		t.Fatalf("after un-ignoring: WatchCount = %d, want %d", got, len(want)+2)
	}
	h.write("sub/gen/a/b.rs", "now seen")
	eq(t, "Paths", h.next().Paths, []string{"sub/gen/a/b.rs"})
}

func TestClassificationOnDisk(t *testing.T) {
	h := start(t, rustTree(t))

	h.write("src/bin/new.rs", "fn main() {}\n")
	b := h.next()
	eq(t, "Paths", b.Paths, []string{"src/bin/new.rs"})
	eq(t, "Recipe", b.Recipe, []string{"src/bin/new.rs"})
	if b.Kind != KindRecipe {
		t.Fatalf("new target: kind %v, want recipe", b.Kind)
	}

	h.write("src/main.rs", "fn main() { todo!() }\n")
	if b := h.next(); b.Kind != KindCode || !reflect.DeepEqual(b.Paths, []string{"src/main.rs"}) {
		t.Fatalf("editing main.rs: %+v", b)
	}

	h.write("README.md", "# changed\n")
	if b := h.next(); b.Kind != KindCode || !reflect.DeepEqual(b.Paths, []string{"README.md"}) {
		t.Fatalf("editing README: %+v", b)
	}

	h.write("target/x", "x")
	h.write("target/debug/y", "y")
	s := h.sentinel()
	eq(t, "Paths", h.next().Paths, []string{s})

	h.remove("src/bin/new.rs")
	b = h.next()
	eq(t, "Removed", b.Removed, []string{"src/bin/new.rs"})
	if b.Kind != KindRecipe {
		t.Fatalf("removed target: kind %v, want recipe", b.Kind)
	}
}

func TestMaxWait(t *testing.T) {
	h := start(t, rustTree(t), WithDebounce(100*time.Millisecond), WithMaxWait(300*time.Millisecond))
	begin := time.Now()
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		for i := 0; time.Since(begin) < time.Second; i++ {
			os.WriteFile(h.path("src/f.rs"), []byte(fmt.Sprint("v", i)), 0o644)
			time.Sleep(30 * time.Millisecond)
		}
	}()
	var batches []Batch
	var firstAt time.Time
	deadline := time.After(waitBatch)
collect:
	for {
		select {
		case b := <-h.w.Batches():
			if len(batches) == 0 {
				firstAt = time.Now()
			}
			batches = append(batches, b)
		case <-stop:
			stop = nil
		case <-time.After(500 * time.Millisecond):
			if stop == nil { // writer done and quiet since
				break collect
			}
		case <-deadline:
			break collect
		}
	}
	if len(batches) < 2 {
		t.Fatalf("got %d batches under continuous events, want more than one", len(batches))
	}
	first := batches[0]
	// Loose: emitted about max-wait after the first event, well before the
	// writes stopped.
	if d := firstAt.Sub(first.First); d < 250*time.Millisecond || d > 900*time.Millisecond {
		t.Errorf("first batch emitted %s after its first event, want ~300ms", d)
	}
	t.Logf("%d batches; first emitted %s after its first event", len(batches), firstAt.Sub(first.First))
}

func TestOverflowRescan(t *testing.T) {
	root := rustTree(t)
	var mu sync.Mutex
	dropping := false
	seenMarker := make(chan struct{}, 1)
	filter := func(ev fsnotify.Event) bool {
		mu.Lock()
		defer mu.Unlock()
		if dropping && strings.HasSuffix(ev.Name, "marker~") {
			select {
			case seenMarker <- struct{}{}:
			default:
			}
		}
		return dropping
	}
	h := start(t, root, withEventFilter(filter))
	watches := h.w.WatchCount()

	mu.Lock()
	dropping = true
	mu.Unlock()
	h.write("src/f.rs", "changed while events were lost")
	h.remove("src/x.rs")
	h.write("newdir/n.rs", "new")
	h.write("src/main.rs", "fn main() {}\n") // same content: not a change
	h.write("src/marker~", "")               // the last lost event (ignored, but seen raw)
	select {
	case <-seenMarker:
	case <-time.After(waitBatch):
		t.Fatal("events not seen by the filter")
	}
	mu.Lock()
	dropping = false
	mu.Unlock()
	h.none(200 * time.Millisecond) // really lost

	if !h.w.rescan() {
		t.Fatal("rescan hook did not run")
	}
	b := h.next()
	eq(t, "Paths", b.Paths, []string{"newdir/n.rs", "src/f.rs", "src/x.rs"})
	eq(t, "Created", b.Created, []string{"newdir/n.rs"})
	eq(t, "Removed", b.Removed, []string{"src/x.rs"})
	if !b.Rescan {
		t.Fatal("Rescan = false")
	}
	if got := h.w.WatchCount(); got != watches+1 {
		t.Fatalf("WatchCount after rescan = %d, want %d (newdir watched)", got, watches+1)
	}
	h.waitError(func(err error) bool { return errors.Is(err, fsnotify.ErrEventOverflow) })
	h.write("newdir/m.rs", "m")
	b = h.next()
	eq(t, "Paths", b.Paths, []string{"newdir/m.rs"})
	if b.Rescan {
		t.Fatal("ordinary batch marked Rescan")
	}
}

// TestDescriptorLimitPolls: out of descriptors for watches (kqueue on
// macOS holds one per watched file and directory), a subtree is polled,
// with a warning that says how to raise the limit.
func TestDescriptorLimitPolls(t *testing.T) {
	root := mkTree(t, map[string]string{
		"Cargo.toml":    "[package]\n",
		"src/main.rs":   "fn main() {}\n",
		"src/deep/a.rs": "a",
	})
	h := start(t, root, withDescriptorBudget(1), WithPollInterval(50*time.Millisecond))
	warned := h.waitError(func(err error) bool { return errors.Is(err, ErrDescriptorLimit) })
	if !strings.Contains(warned.Error(), "ulimit -n") {
		t.Fatalf("descriptor-limit warning does not say how to raise it: %v", warned)
	}
	h.write("src/deep/a.rs", "changed, and longer")
	eq(t, "Paths", h.next().Paths, []string{"src/deep/a.rs"})
}

func TestPollingFallback(t *testing.T) {
	root := mkTree(t, map[string]string{
		"Cargo.toml":     "[package]\n",
		"src/main.rs":    "fn main() {}\n",
		"src/deep/a.rs":  "a",
		"other/b.rs":     "b",
		"other/skip.log": "",
		".dockerignore":  "**/*.log\n",
	})
	h := start(t, root, withWatchBudget(1), WithPollInterval(50*time.Millisecond))
	if got := h.w.WatchCount(); got != 1 {
		t.Fatalf("WatchCount = %d, want 1 (root only)", got)
	}
	warned := h.waitError(func(err error) bool { return errors.Is(err, ErrWatchLimit) })
	if !strings.Contains(warned.Error(), "fs.inotify.max_user_watches") {
		t.Fatalf("watch-limit warning does not name the sysctl: %v", warned)
	}
	t.Logf("warning: %v", warned)

	h.write("src/deep/a.rs", "changed, and longer")
	b := h.next()
	eq(t, "Paths", b.Paths, []string{"src/deep/a.rs"})

	h.write("other/new/c.rs", "c")
	h.write("other/x.log", "ignored")
	h.remove("other/b.rs")
	b = h.next()
	eq(t, "Paths", b.Paths, []string{"other/b.rs", "other/new/c.rs"})
	eq(t, "Created", b.Created, []string{"other/new/c.rs"})
	eq(t, "Removed", b.Removed, []string{"other/b.rs"})

	// Polling compares content too: a touch is not a change.
	now := time.Now().Add(time.Second)
	if err := os.Chtimes(h.path("src/main.rs"), now, now); err != nil {
		t.Fatal(err)
	}
	h.none(400 * time.Millisecond)
}

func TestNoInotify(t *testing.T) {
	root := rustTree(t)
	h := start(t, root, func(c *config) { c.noInotify = true }, WithPollInterval(50*time.Millisecond))
	if h.w.WatchCount() != 0 {
		t.Fatalf("WatchCount = %d, want 0", h.w.WatchCount())
	}
	h.write("src/f.rs", "polled")
	eq(t, "Paths", h.next().Paths, []string{"src/f.rs"})
}

func TestDirectoryMovesAndRemoval(t *testing.T) {
	h := start(t, mkTree(t, map[string]string{
		"Cargo.toml":          "",
		"crates/a/src/lib.rs": "lib",
		"crates/a/src/m/x.rs": "x",
		"crates/b/src/lib.rs": "b",
	}))
	h.rename("crates/a", "crates/c")
	b := h.next()
	eq(t, "Paths", b.Paths, []string{"crates/a/src/lib.rs", "crates/a/src/m/x.rs", "crates/c/src/lib.rs", "crates/c/src/m/x.rs"})
	eq(t, "Created", b.Created, []string{"crates/c/src/lib.rs", "crates/c/src/m/x.rs"})
	eq(t, "Recipe", b.Recipe, []string{"crates/a/src/lib.rs", "crates/c/src/lib.rs"})

	// The moved tree is watched under its new name (no stale paths).
	h.write("crates/c/src/m/x.rs", "x2")
	eq(t, "Paths", h.next().Paths, []string{"crates/c/src/m/x.rs"})

	// Moving away and back within one batch is no change at all.
	h.rename("crates/b", "crates/tmp")
	h.rename("crates/tmp", "crates/b")
	s := h.sentinel()
	eq(t, "Paths", h.next().Paths, []string{s})

	h.remove("crates/c")
	b = h.next()
	eq(t, "Removed", b.Removed, []string{"crates/c/src/lib.rs", "crates/c/src/m/x.rs"})
	count := h.w.WatchCount()
	want := 4 // root, crates, crates/b, crates/b/src; nothing of c
	if count != want {
		t.Fatalf("WatchCount = %d, want %d", count, want)
	}
}

func TestChmodIsAChange(t *testing.T) {
	h := start(t, rustTree(t))
	if err := os.Chmod(h.path("src/x.rs"), 0o755); err != nil {
		t.Fatal(err)
	}
	eq(t, "Paths", h.next().Paths, []string{"src/x.rs"})
}

func TestBatchesMergeWhileNotReceived(t *testing.T) {
	h := start(t, rustTree(t))
	h.write("src/new.rs", "new")
	h.write("src/x.rs", "x2")
	// The first batch is computed but not received; then it is undone in part.
	h.settle()
	h.remove("src/new.rs")
	h.write("src/f.rs", "f2")
	h.write("src/x.rs", "pub fn x() {}\n") // back to the recorded content
	h.settle()
	b := h.next()
	// new.rs: created then removed; x.rs: changed then changed back; f.rs:
	// changed. Only f.rs changed from the consumer's point of view.
	eq(t, "Paths", b.Paths, []string{"src/f.rs"})
	eq(t, "Created", b.Created, nil)
	h.nothingElse()
}

func TestSymlinkRoot(t *testing.T) {
	real := rustTree(t)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Skip(err)
	}
	h := start(t, link)
	h.write("src/f.rs", "via link")
	eq(t, "Paths", h.next().Paths, []string{"src/f.rs"})
}

func TestCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		w, err := New(rustTree(t), WithDebounce(10*time.Millisecond), withWatchBudget(2), WithPollInterval(10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(w.Root(), "src", "f.rs"), []byte("x"), 0o644)
		time.Sleep(50 * time.Millisecond) // a batch may be waiting, unreceived
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, ok := <-w.Batches(); ok {
			// drain: a batch could not have been sent after Close
			t.Fatal("batch after Close")
		}
		for range w.Errors() {
		}
		if w.Start() == nil {
			t.Fatal("Start after Close succeeded")
		}
	}
	// Never started.
	w, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, ok := <-w.Batches(); ok {
		t.Fatal("batches open after Close")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("goroutines: %d before, %d after Close\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("New on a missing root succeeded")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := New(f); err == nil {
		t.Fatal("New on a file succeeded")
	}
	if _, err := New(t.TempDir(), WithDebounce(0)); err == nil {
		t.Fatal("zero debounce accepted")
	}
	if _, err := New(t.TempDir(), WithIgnore("[")); err == nil {
		t.Fatal("bad pattern accepted")
	}
	w, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
}

// TestGitStatusLoopDoesNotStarve: a lock taken again and again (git status
// in a prompt or an IDE, every few milliseconds) delays a batch by about
// the max wait, not for ever; a lock held throughout still holds it.
func TestGitStatusLoopDoesNotStarve(t *testing.T) {
	root := rustTree(t)
	if err := os.MkdirAll(filepath.Join(root, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := start(t, root, WithDebounce(100*time.Millisecond), WithMaxWait(500*time.Millisecond))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // git status in a tight loop: the lock is there most of the time
		defer close(done)
		lock := filepath.Join(root, ".git", "index.lock")
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.WriteFile(lock, nil, 0o644)
			time.Sleep(20 * time.Millisecond)
			os.Remove(lock)
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { close(stop); <-done }()
	h.write("src/f.rs", "pub fn f() { /* saved while git status runs */ }\n")
	eq(t, "Paths", h.next().Paths, []string{"src/f.rs"})
}
