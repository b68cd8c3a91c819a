// Package daemon is chefd's background builder: it watches a workspace,
// prewarms the cooked dependency image whenever the recipe changes, and
// rebuilds only the code when sources change.
//
// The Scheduler decides what runs when. It talks to a Builder (the Docker
// side, dockerctl.WorkspaceBuilder in production, a fake in tests) and
// owns all of its state in one goroutine (the loop); builds and cooks run
// on their own goroutines and report back to the loop. The rules:
//
//   - a recipe-affecting batch recomputes the recipe; a new hash starts its
//     cook at once, in the background;
//   - a cook whose recipe is still current is never cancelled; a cook made
//     obsolete by a newer recipe is;
//   - a code batch (or a request) builds the code on the cooked image of the
//     current recipe, after its cook when one runs;
//   - a newer batch supersedes the running code build: it is cancelled,
//     recorded as superseded (not failed), and everything it would have
//     built moves to the follow-up; batches arriving meanwhile coalesce into
//     that one follow-up build;
//   - an urgent build does not wait for cooks of other recipes to wind down;
//     a warm-only build fails fast when the current recipe has no cooked
//     image, saying how long the last cook took;
//   - a request is answered by a build of what the workspace holds when it
//     is made: the last successful one, or the running one, only when the
//     workspace still holds exactly what it shipped (checked on disk, not
//     inferred from events), else a new one;
//   - at most maxSupersedes builds in a row are superseded, so a file that
//     changes all the time cannot starve every build;
//   - after a successful cook, old cooked images are garbage-collected.
//
// The server and Run put the Scheduler behind HTTP+JSON on a unix
// socket (the contract and the client: package api); see README-daemon.md.
package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/recipe"
	"github.com/chefd/chefd/watcher"
)

// Builder cooks and builds one workspace (dockerctl.WorkspaceBuilder).
type Builder interface {
	HasCooked(ctx context.Context, r *recipe.Recipe) (bool, error)
	Cook(ctx context.Context, r *recipe.Recipe, p dockerctl.Progress) (dockerctl.CookResult, error)
	// Build runs the code build on the cooked image of r (dockerctl cooks first if the image is missing, but the scheduler should cook explicitly before).
	Build(ctx context.Context, r *recipe.Recipe, mode dockerctl.Mode, p dockerctl.Progress) (dockerctl.BuildResult, error)
	GC(ctx context.Context, keep int) (removed []dockerctl.Removed, err error)
	// Unchanged reports whether the workspace still holds exactly what a
	// build shipped (its BuildResult.Inputs, or the Inputs of its
	// EventInputs progress event), for recipe r.
	Unchanged(ctx context.Context, r *recipe.Recipe, in *dockerctl.Inputs) (bool, error)
}

// PlanFunc computes the current recipe (recipe.Compute with the intent from
// chefd.toml).
type PlanFunc func(ctx context.Context) (*recipe.Recipe, error)

// Tagger is optionally implemented by a Builder to name cooked images in
// the status.
type Tagger interface {
	CookedTag(r *recipe.Recipe) string
}

// ErrClosed is returned by requests to a stopped scheduler.
var ErrClosed = errors.New("the daemon is stopping")

// RecipeError is returned for a build request when the recipe cannot be
// computed (a broken Cargo.toml, say).
type RecipeError struct{ Err error }

func (e *RecipeError) Error() string { return "recipe: " + e.Err.Error() }
func (e *RecipeError) Unwrap() error { return e.Err }

// Ticket is the answer to a build request.
type Ticket struct {
	// Record is the build as it was when the request was taken (queued or
	// running), or the final answer when Done is nil (a reused build).
	Record api.Record
	done   chan api.Record
	held   string
}

// Final reports whether Record is already the answer.
func (t *Ticket) Final() bool { return t.done == nil }

// Wait returns the finished build that answers the request: a build
// started after the request (superseded builds hand the request on to
// their follow-up), or the reused one.
func (t *Ticket) Wait(ctx context.Context) (api.Record, error) {
	if t.done == nil {
		return t.Record, nil
	}
	select { // an answer wins over a cancelled ctx
	case r := <-t.done:
		r.GitHeld = t.held
		t.Record, t.done = r, nil
		return r, nil
	default:
	}
	select {
	case r := <-t.done:
		r.GitHeld = t.held
		t.Record, t.done = r, nil
		return r, nil
	case <-ctx.Done():
		return t.Record, ctx.Err()
	}
}

// Scheduler runs cooks and builds; see the package documentation.
type Scheduler struct {
	opts options
	log  *zap.Logger
	bus  *bus

	calls    chan func()
	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
	jobCtx   context.Context
	jobStop  context.CancelFunc

	// Owned by the loop.
	batches      <-chan watcher.Batch
	cur          *recipe.Recipe
	curAt        time.Time
	recipeErr    error
	gen          int64
	cooked       map[string]*api.CookedImage
	cooks        []*cookJob
	cookFailed   map[string]error
	retry        engineRetry
	lastCook     time.Duration
	build        *buildJob
	pending      *buildJob
	lastBuilt    *recipe.Recipe
	last         *api.Record
	lastOK       *api.Record
	dog          *watchdog                    // when running jobs last printed (stuck.go)
	images       map[string]*api.ServiceImage // by service name
	lastOKIn     *dockerctl.Inputs            // what lastOK shipped
	hist         history
	illegalMoves int          // job state moves jobMoves does not allow (a bug)
	saver        *stateWriter // while Run runs, with WithStateFile
	nextID       int64        // the last ID handed out
	reserved     int64        // the IDs up to it are reserved on disk (persisted.LastID)
	gcRunning    int
	closing      bool
}

// New returns a scheduler; Run drives it.
func New(b Builder, plan PlanFunc, opt ...Option) (*Scheduler, error) {
	opts := options{Builder: b, Plan: plan}
	for _, f := range opt {
		f(&opts)
	}
	if opts.Builder == nil || opts.Plan == nil {
		return nil, errors.New("daemon: Builder and Plan are required")
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if !opts.Mode.Valid() {
		opts.Mode = dockerctl.ModeExact
	}
	if opts.KeepCooked <= 0 {
		opts.KeepCooked = 3
	}
	if opts.HistorySize <= 0 {
		opts.HistorySize = 50
	}
	if opts.CancelGrace <= 0 {
		opts.CancelGrace = 30 * time.Second
	}
	if opts.StuckAfter <= 0 {
		opts.StuckAfter = defaultStuckAfter
	}
	if opts.EngineRetry <= 0 {
		opts.EngineRetry = defaultEngineRetry
	}
	if opts.EngineRetryMax < opts.EngineRetry {
		opts.EngineRetryMax = max(defaultEngineRetryMax, opts.EngineRetry)
	}
	jobCtx, jobStop := context.WithCancel(context.Background())
	s := &Scheduler{
		dog:        newWatchdog(),
		opts:       opts,
		log:        opts.Log,
		bus:        newBus(),
		calls:      make(chan func()),
		stopCh:     make(chan struct{}),
		done:       make(chan struct{}),
		jobCtx:     jobCtx,
		jobStop:    jobStop,
		batches:    opts.Batches,
		cooked:     map[string]*api.CookedImage{},
		cookFailed: map[string]error{},
		hist:       history{max: opts.HistorySize},
	}
	s.loadState()
	return s, nil
}

// Run runs the scheduler until ctx is done or Stop is called, then cancels
// what runs (waiting up to CancelGrace for it to stop) and returns.
func (s *Scheduler) Run(ctx context.Context) error {
	defer close(s.done)
	defer s.jobStop()
	if s.opts.StateFile != "" {
		s.saver = newStateWriter(s.opts.StateFile, s.log)
		defer s.saver.close() // the last history is on disk before Done
	}
	s.replan(api.TriggerStartup)
	tick := time.NewTicker(min(s.opts.StuckAfter/4, 30*time.Second))
	defer tick.Stop()
	for {
		select {
		case now := <-tick.C:
			s.checkStuck(now)
		case f := <-s.calls:
			f()
		case b, ok := <-s.batches:
			if !ok {
				s.batches = nil
				continue
			}
			s.onBatch(b)
		case <-ctx.Done():
			s.shutdown()
			return nil
		case <-s.stopCh:
			s.shutdown()
			return nil
		}
	}
}

// Stop asks Run to return (gracefully). It does not wait; see Done.
func (s *Scheduler) Stop() { s.stopOnce.Do(func() { close(s.stopCh) }) }

// Done is closed when Run has returned.
func (s *Scheduler) Done() <-chan struct{} { return s.done }

// Subscribe returns the event stream and a function that ends it. The
// channel closes when the scheduler stops.
func (s *Scheduler) Subscribe(buffer int) (<-chan api.Event, func()) { return s.bus.subscribe(buffer) }

// do runs f on the loop and waits for it.
func (s *Scheduler) do(f func()) error {
	ran := make(chan struct{})
	select {
	case s.calls <- func() { f(); close(ran) }:
	case <-s.done:
		return ErrClosed
	}
	<-ran
	return nil
}

// post hands f to the loop without waiting for it to run (dropped once
// the loop has ended).
func (s *Scheduler) post(f func()) {
	select {
	case s.calls <- f:
	case <-s.done:
	}
}

// newID hands out the next ID. IDs are reserved on disk idBlock at a
// time before they are handed out, so that a daemon killed with IDs in
// use never lets the next one use them again.
func (s *Scheduler) newID() int64 {
	s.nextID++
	if s.nextID > s.reserved {
		s.reserved = s.nextID + idBlock - 1
		<-s.saveState() // rare: once per idBlock IDs
	}
	return s.nextID
}
