package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/recipe"
	"github.com/chefd/chefd/watcher"
)

// guard bounds every wait of the tests: it is a failure guard, never what
// makes a test pass.
const guard = 10 * time.Second

// fakeRecipe returns a recipe whose hash is derived from name.
func fakeRecipe(name string) *recipe.Recipe {
	sum := sha256.Sum256([]byte(name))
	return &recipe.Recipe{Hash: hex.EncodeToString(sum[:]), Format: recipe.Format}
}

// fakeCall is one Cook or Build call of the fake builder, blocked until
// the test releases it.
type fakeCall struct {
	kind    string // "cook" or "build"
	hash    string
	mode    dockerctl.Mode // a build's
	ctx     context.Context
	p       dockerctl.Progress
	release chan error
	// returned is closed when the call has returned.
	returned chan struct{}
}

// finish releases the call with err (nil: success).
func (c *fakeCall) finish(err error) { c.release <- err }

func (c *fakeCall) waitCancelled(t *testing.T) {
	t.Helper()
	select {
	case <-c.ctx.Done():
	case <-time.After(guard):
		t.Fatalf("%s of %s was not cancelled", c.kind, api.Short(c.hash))
	}
}

// fakeBuilder implements Builder. Cook and Build announce themselves on
// calls and block until released; unless stubborn, they return early with
// ctx.Err() when cancelled.
type fakeBuilder struct {
	mu       sync.Mutex
	cooked   map[string]bool
	stubborn bool          // ignore cancellation (a hanging BuildKit)
	cookDur  time.Duration // reported by successful cooks
	counts   map[string]int
	hasErr   error
	calls    chan *fakeCall
	gcs      chan int
	removeGC []dockerctl.Removed // GC reports these as removed
	// disk is the workspace's version: a build ships the version current
	// when it starts, Unchanged compares it with the current one.
	disk   int
	inputs map[*dockerctl.Inputs]int
	// inputsGate, when set, holds every build before its inputs are known.
	inputsGate chan struct{}
}

// change makes a change on "disk" (the harness does it for every batch it
// sends; a test can also change the disk without any event).
func (f *fakeBuilder) change() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disk++
}

func (f *fakeBuilder) Unchanged(ctx context.Context, r *recipe.Recipe, in *dockerctl.Inputs) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts["unchanged"]++
	v, ok := f.inputs[in]
	return ok && v == f.disk, nil
}

func newFakeBuilder(cooked ...*recipe.Recipe) *fakeBuilder {
	f := &fakeBuilder{cooked: map[string]bool{}, counts: map[string]int{},
		calls: make(chan *fakeCall, 100), gcs: make(chan int, 100), cookDur: 90 * time.Second,
		inputs: map[*dockerctl.Inputs]int{}}
	for _, r := range cooked {
		f.cooked[r.Hash] = true
	}
	return f
}

func (f *fakeBuilder) setStubborn(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stubborn = v
}

func (f *fakeBuilder) count(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[kind]
}

// has reports whether r counts as cooked (without counting a call).
func (f *fakeBuilder) has(r *recipe.Recipe) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hasErr == nil && f.cooked[r.Hash]
}

func (f *fakeBuilder) HasCooked(ctx context.Context, r *recipe.Recipe) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts["has"]++
	if f.hasErr != nil {
		return false, f.hasErr
	}
	return f.cooked[r.Hash], nil
}

func (f *fakeBuilder) call(ctx context.Context, kind string, r *recipe.Recipe, mode dockerctl.Mode, p dockerctl.Progress) error {
	f.mu.Lock()
	f.counts[kind]++
	stubborn := f.stubborn
	f.mu.Unlock()
	c := &fakeCall{kind: kind, hash: r.Hash, mode: mode, ctx: ctx, p: p, release: make(chan error, 1), returned: make(chan struct{})}
	defer close(c.returned)
	f.calls <- c
	if stubborn {
		return <-c.release
	}
	select {
	case err := <-c.release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeBuilder) Cook(ctx context.Context, r *recipe.Recipe, p dockerctl.Progress) (dockerctl.CookResult, error) {
	err := f.call(ctx, "cook", r, "", p)
	if err != nil {
		return dockerctl.CookResult{}, err
	}
	f.mu.Lock()
	f.cooked[r.Hash] = true
	dur := f.cookDur
	f.mu.Unlock()
	return dockerctl.CookResult{Tag: "app-cooked:" + r.ShortHash(), ImageID: "sha256:cook" + r.ShortHash(),
		Duration: dur, Compiled: dockerctl.Crates{ThirdParty: 40},
		Phases: []dockerctl.Phase{{Name: "cook", Duration: dur}}}, nil
}

func (f *fakeBuilder) Build(ctx context.Context, r *recipe.Recipe, mode dockerctl.Mode, p dockerctl.Progress) (dockerctl.BuildResult, error) {
	in := &dockerctl.Inputs{}
	f.mu.Lock()
	f.inputs[in] = f.disk
	gate := f.inputsGate
	f.mu.Unlock()
	if gate != nil {
		<-gate // the context is still being written
	}
	if p != nil {
		p(dockerctl.Event{Kind: dockerctl.EventInputs, Inputs: in})
		p(dockerctl.Event{Kind: dockerctl.EventStep, Step: "cargo build"})
	}
	err := f.call(ctx, "build", r, mode, p)
	if err != nil {
		return dockerctl.BuildResult{}, err
	}
	return dockerctl.BuildResult{Image: "app:dev", Mode: mode, Inputs: in, ImageID: "sha256:img" + r.ShortHash(), CookedTag: "app-cooked:" + r.ShortHash(),
		Duration: 5 * time.Second, Compiled: dockerctl.Crates{Local: 3},
		Phases: []dockerctl.Phase{{Name: "build", Duration: 5 * time.Second}}}, nil
}

func (f *fakeBuilder) GC(ctx context.Context, keep int) ([]dockerctl.Removed, error) {
	f.mu.Lock()
	removed := f.removeGC
	f.mu.Unlock()
	f.gcs <- keep
	return removed, nil
}

// fakePlan is a PlanFunc whose answer the test sets.
type fakePlan struct {
	mu  sync.Mutex
	r   *recipe.Recipe
	err error
}

func (p *fakePlan) set(r *recipe.Recipe, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.r, p.err = r, err
}

func (p *fakePlan) plan(ctx context.Context) (*recipe.Recipe, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.r, p.err
}

// harness runs a Scheduler on a fake builder.
type harness struct {
	t       *testing.T
	s       *Scheduler
	f       *fakeBuilder
	plan    *fakePlan
	batches chan watcher.Batch
	events  <-chan api.Event
	cancel  context.CancelFunc
}

func newHarness(t *testing.T, f *fakeBuilder, start *recipe.Recipe, mod func(*options)) *harness {
	t.Helper()
	h := &harness{t: t, f: f, plan: &fakePlan{r: start}, batches: make(chan watcher.Batch)}
	// mod sees the options as the test set them (the harness's own first)
	// and may replace any, the Builder included.
	opts := []Option{WithBatches(h.batches), WithLog(zaptest.NewLogger(t)), WithKeepCooked(2)}
	if mod != nil {
		opts = append(opts, Option(mod))
	}
	s, err := New(f, h.plan.plan, opts...)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	h.events, _ = s.Subscribe(1000)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go s.Run(ctx)
	if _, err := s.Status(0); err != nil { // the startup plan has run
		t.Fatal(err)
	}
	if f.has(start) {
		// The startup check of a cooked recipe finishes at once; let it,
		// so that a test's first batch never races it.
		deadline := time.Now().Add(guard)
		for {
			st, err := s.Status(0)
			if err != nil {
				t.Fatal(err)
			}
			if st.Cooked && len(st.Cooks) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the startup check of the cooked recipe did not finish: %+v", st)
			}
			time.Sleep(time.Millisecond)
		}
	}
	t.Cleanup(func() {
		f.setStubborn(false)
		cancel()
		// release whatever still blocks
		go func() {
			for {
				select {
				case c := <-f.calls:
					c.finish(context.Canceled)
				case <-s.Done():
					return
				}
			}
		}()
		select {
		case <-s.Done():
			if s.illegalMoves != 0 { // the loop has ended: no race
				t.Errorf("%d job state moves the scheduler may not make (see the log)", s.illegalMoves)
			}
		case <-time.After(guard):
			t.Error("scheduler did not stop")
		}
	})
	return h
}

func (h *harness) code(paths ...string) {
	h.t.Helper()
	h.send(watcher.Batch{Paths: paths, Kind: watcher.KindCode})
}

func (h *harness) recipeBatch(r *recipe.Recipe, paths ...string) {
	h.t.Helper()
	h.plan.set(r, nil)
	h.send(watcher.Batch{Paths: paths, Kind: watcher.KindRecipe, Recipe: paths})
}

func (h *harness) send(b watcher.Batch) {
	h.t.Helper()
	h.f.change()
	select {
	case h.batches <- b:
	case <-time.After(guard):
		h.t.Fatal("the scheduler does not take batches")
	}
}

// next returns the next Cook or Build call.
func (h *harness) next(kind string, r *recipe.Recipe) *fakeCall {
	h.t.Helper()
	select {
	case c := <-h.f.calls:
		if c.kind != kind || (r != nil && c.hash != r.Hash) {
			h.t.Fatalf("got %s of %s, want %s of %s", c.kind, api.Short(c.hash), kind, api.Short(hashOf(r)))
		}
		return c
	case <-time.After(guard):
		h.t.Fatalf("no %s of %s", kind, api.Short(hashOf(r)))
	}
	return nil
}

func hashOf(r *recipe.Recipe) string {
	if r == nil {
		return "any"
	}
	return r.Hash
}

// event waits for an event of typ that matches ok (nil: any).
func (h *harness) event(typ api.EventType, ok func(api.Event) bool) api.Event {
	h.t.Helper()
	timeout := time.After(guard)
	for {
		select {
		case ev, open := <-h.events:
			if !open {
				h.t.Fatalf("event stream closed while waiting for %s", typ)
			}
			if ev.Type == typ && (ok == nil || ok(ev)) {
				return ev
			}
		case <-timeout:
			h.t.Fatalf("no %s event", typ)
		}
	}
}

// done waits for the build.done (or cook.done) of record id.
func (h *harness) done(typ api.EventType, id int64) api.Record {
	h.t.Helper()
	return *h.event(typ, func(ev api.Event) bool { return ev.ID == id }).Record
}

func (h *harness) status() api.Status {
	h.t.Helper()
	st, err := h.s.Status(50)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) submit(req api.BuildRequest) *Ticket {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	t, err := h.s.Submit(ctx, req)
	if err != nil {
		h.t.Fatalf("Submit: %v", err)
	}
	return t
}

func (h *harness) wait(t *Ticket) api.Record {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	r, err := t.Wait(ctx)
	if err != nil {
		h.t.Fatalf("Wait: %v", err)
	}
	return r
}

var errBoom = errors.New("boom: cargo exited with 101")

func must(t *testing.T, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}

func watcherRecipeBatch(paths ...string) watcher.Batch {
	return watcher.Batch{Paths: paths, Kind: watcher.KindRecipe, Recipe: paths}
}
