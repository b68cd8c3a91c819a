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
// Server, Client and Run put the Scheduler behind HTTP+JSON on a unix
// socket; see README-daemon.md.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/recipe"
	"github.com/chefd/chefd/watcher"
)

// Builder cooks and builds one workspace (dockerctl.WorkspaceBuilder).
type Builder interface {
	HasCooked(ctx context.Context, r *recipe.Recipe) (bool, error)
	Cook(ctx context.Context, r *recipe.Recipe, p dockerctl.Progress) (dockerctl.CookResult, error)
	// Build runs the code build on the cooked image of r (dockerctl cooks first if the image is missing, but the scheduler should cook explicitly before).
	Build(ctx context.Context, r *recipe.Recipe, p dockerctl.Progress) (dockerctl.BuildResult, error)
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

// Options configure a Scheduler.
type Options struct {
	Builder Builder
	Plan    PlanFunc
	// Batches come from the watcher; nil runs without one (builds on
	// request only).
	Batches <-chan watcher.Batch
	Log     *zap.Logger
	// KeepCooked is how many cooked images GC keeps. Default 3.
	KeepCooked int
	// HistorySize bounds the build history. Default 50.
	HistorySize int
	// Manual disables automatic code builds on changes; cooks still start
	// when the recipe changes.
	Manual bool
	// Settle is called before a build request is decided, so that changes
	// saved just before the request have reached the scheduler (e.g. wait
	// for the watcher's debounce). nil: no wait.
	Settle func(ctx context.Context) error
	// CancelGrace is how long a cancelled build or cook may take to stop
	// before the scheduler stops waiting for it (BuildKit sometimes hangs on
	// cancel). Default 30s.
	CancelGrace time.Duration
	// StateFile, when set, keeps the history and the last cook duration
	// across restarts.
	StateFile string
	// Hold reports a hold on automatic builds (git in the middle of an
	// operation): the file that holds them and since when; "" when none.
	Hold func() (reason string, since time.Time)
}

// ErrClosed is returned by requests to a stopped scheduler.
var ErrClosed = errors.New("the daemon is stopping")

// NotWarmError is returned for a warm-only build request when the current
// recipe has no cooked image.
type NotWarmError struct {
	Recipe string `json:"recipe"`
	// LastCook is how long the last cook took (0: no cook finished yet).
	LastCook time.Duration `json:"last_cook_ns"`
	// CookingFor is how long the cook of Recipe has been running (0: none runs).
	CookingFor time.Duration `json:"cooking_for_ns"`
	// CookError is the error of the last cook of Recipe, if it failed.
	CookError string `json:"cook_error,omitempty"`
}

func (e *NotWarmError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--warm-only: recipe %s has no cooked image", short(e.Recipe))
	switch {
	case e.CookingFor > 0:
		fmt.Fprintf(&b, "; its cook has been running for %s", roundDur(e.CookingFor))
	case e.CookError != "":
		fmt.Fprintf(&b, "; its cook failed: %s", e.CookError)
	}
	if e.LastCook > 0 {
		fmt.Fprintf(&b, "; the last cook took %s", roundDur(e.LastCook))
	} else {
		b.WriteString("; no cook has finished yet, so how long one takes is unknown")
	}
	return b.String()
}

// RecipeError is returned for a build request when the recipe cannot be
// computed (a broken Cargo.toml, say).
type RecipeError struct{ Err error }

func (e *RecipeError) Error() string { return "recipe: " + e.Err.Error() }
func (e *RecipeError) Unwrap() error { return e.Err }

// BuildRequest asks for a code build.
type BuildRequest struct {
	// Wait: the answer is the finished build (else the queued one).
	Wait bool `json:"wait"`
	// Urgent: do not wait for cooks of other recipes to wind down.
	Urgent bool `json:"urgent"`
	// WarmOnly: fail fast (NotWarmError) when the current recipe has no
	// cooked image.
	WarmOnly bool `json:"warm_only"`
	// Force: build even when nothing changed since the last successful build.
	Force bool `json:"force"`
}

// CookedImage is a cooked image the scheduler knows exists.
type CookedImage struct {
	Recipe  string    `json:"recipe"`
	Tag     string    `json:"tag,omitempty"`
	ImageID string    `json:"image_id,omitempty"`
	Since   time.Time `json:"since"`
}

// Status is a snapshot of the scheduler.
type Status struct {
	State          State         `json:"state"`
	Recipe         string        `json:"recipe,omitempty"`
	RecipeComputed time.Time     `json:"recipe_computed,omitzero"`
	RecipeError    string        `json:"recipe_error,omitempty"`
	Cooked         bool          `json:"cooked"` // the current recipe has a cooked image
	CookedImages   []CookedImage `json:"cooked_images"`
	Cooks          []Record      `json:"cooks,omitempty"` // running cooks
	Current        *Record       `json:"current,omitempty"`
	Pending        *Record       `json:"pending,omitempty"`
	Last           *Record       `json:"last,omitempty"`    // last finished build
	LastOK         *Record       `json:"last_ok,omitempty"` // last successful build
	LastCook       time.Duration `json:"last_cook_ns,omitempty"`
	Changes        int64         `json:"changes"` // batches seen
	Manual         bool          `json:"manual,omitempty"`
	// Held names what holds automatic builds (git mid-operation: its
	// index.lock, MERGE_HEAD, rebase-merge...), since HeldSince. Build
	// requests still build what is on disk.
	Held      string    `json:"held,omitempty"`
	HeldSince time.Time `json:"held_since,omitzero"`
	Recent    []Record  `json:"recent,omitempty"` // newest first
}

// Ticket is the answer to a build request.
type Ticket struct {
	// Record is the build as it was when the request was taken (queued or
	// running), or the final answer when Done is nil (a reused build).
	Record Record
	done   chan Record
	held   string
}

// Final reports whether Record is already the answer.
func (t *Ticket) Final() bool { return t.done == nil }

// Wait returns the finished build that answers the request: a build
// started after the request (superseded builds hand the request on to
// their follow-up), or the reused one.
func (t *Ticket) Wait(ctx context.Context) (Record, error) {
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
	opts Options
	log  *zap.Logger
	bus  *bus

	calls    chan func()
	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
	jobCtx   context.Context
	jobStop  context.CancelFunc

	// Owned by the loop.
	batches    <-chan watcher.Batch
	cur        *recipe.Recipe
	curAt      time.Time
	recipeErr  error
	gen        int64
	cooked     map[string]*CookedImage
	cooks      []*cookJob
	cookFailed map[string]error
	lastCook   time.Duration
	build      *buildJob
	pending    *buildJob
	lastBuilt  *recipe.Recipe
	last       *Record
	lastOK     *Record
	lastOKIn   *dockerctl.Inputs // what lastOK shipped
	hist       history
	nextID     int64
	gcRunning  int
	closing    bool
}

type cookJob struct {
	r        *recipe.Recipe
	diff     []string
	trigger  Trigger
	cancel   context.CancelFunc
	rec      *Record // nil while checking for an existing image
	checking bool
	stopping bool
	obsolete bool
	dropped  bool // abandoned after CancelGrace
	timer    *time.Timer
	queued   time.Time
	tail     *outputTail
}

type buildJob struct {
	rec      *Record
	changes  changeSet
	gen      int64
	r        *recipe.Recipe
	cancel   context.CancelFunc
	waiters  []chan Record
	urgent   bool
	explicit bool
	stopping bool
	stopAs   Result
	dropped  bool
	timer    *time.Timer
	tail     *outputTail
	// inputs is what the running build ships, once its context is written;
	// ready is closed then, or when the build ends without them.
	inputs *dockerctl.Inputs
	ready  chan struct{}
	// streak counts the builds superseded in a row before this one.
	streak int
}

// maxSupersedes is how many builds in a row a newer change may supersede:
// the next one runs to its end, and what changed meanwhile waits for it.
// A file rewritten all the time (a log, a generator in a loop) then delays
// builds instead of starving every one of them.
const maxSupersedes = 2

// New returns a scheduler; Run drives it.
func New(opts Options) (*Scheduler, error) {
	if opts.Builder == nil || opts.Plan == nil {
		return nil, errors.New("daemon: Builder and Plan are required")
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
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
	jobCtx, jobStop := context.WithCancel(context.Background())
	s := &Scheduler{
		opts:       opts,
		log:        opts.Log,
		bus:        newBus(),
		calls:      make(chan func()),
		stopCh:     make(chan struct{}),
		done:       make(chan struct{}),
		jobCtx:     jobCtx,
		jobStop:    jobStop,
		batches:    opts.Batches,
		cooked:     map[string]*CookedImage{},
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
	s.replan(TriggerStartup)
	for {
		select {
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
func (s *Scheduler) Subscribe(buffer int) (<-chan Event, func()) { return s.bus.subscribe(buffer) }

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

func (s *Scheduler) newID() int64 {
	s.nextID++
	return s.nextID
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// ---- recipe ----

// replan recomputes the recipe; a new hash cancels obsolete cooks and
// starts the cook of the new recipe.
func (s *Scheduler) replan(trigger Trigger) error {
	r, err := s.opts.Plan(s.jobCtx)
	if err != nil {
		if s.recipeErr == nil || s.recipeErr.Error() != err.Error() {
			s.log.Warn("cannot compute the recipe", zap.Error(err))
			s.bus.publish(Event{Type: EventRecipeError, Message: err.Error()})
		}
		s.recipeErr = err
		return err
	}
	if s.recipeErr != nil {
		s.log.Info("recipe computes again", zap.String("recipe", r.ShortHash()))
	}
	s.recipeErr = nil
	if s.lastBuilt == nil {
		s.lastBuilt = r // the baseline the first build's recipe diff is against
	}
	if s.cur != nil && s.cur.Hash == r.Hash {
		s.cur = r
		return nil
	}
	old := s.cur
	s.cur, s.curAt = r, time.Now()
	diff := capLines(recipe.Diff(old, r), 100)
	if old == nil {
		members, targets, external := r.Summary()
		s.log.Info("recipe", zap.String("recipe", r.ShortHash()), zap.Int("crates", members),
			zap.Int("targets", targets), zap.Int("external", external))
	} else {
		s.log.Info("recipe changed", zap.String("recipe", r.ShortHash()), zap.Strings("changes", diff))
	}
	s.bus.publish(Event{Type: EventRecipe, Recipe: r.Hash, Diff: diff})
	for _, c := range s.cooks {
		if c.r.Hash != r.Hash && !c.stopping {
			c.obsolete = true
			s.stopCook(c)
		}
	}
	s.ensureCook(r, diff, trigger)
	// a queued build now waits for another cook
	s.maybeStart()
	return nil
}

func capLines(lines []string, n int) []string {
	if len(lines) <= n {
		return lines
	}
	return append(lines[:n:n], fmt.Sprintf("... and %d more", len(lines)-n))
}

// ---- cooks ----

func (s *Scheduler) activeCook(hash string) *cookJob {
	for _, c := range s.cooks {
		if c.r.Hash == hash && !c.stopping {
			return c
		}
	}
	return nil
}

// otherCook returns a cook (running or winding down) of another recipe.
func (s *Scheduler) otherCook(hash string) *cookJob {
	for _, c := range s.cooks {
		if c.r.Hash != hash {
			return c
		}
	}
	return nil
}

// ensureCook starts the cook of r unless its image is known or a cook of
// it runs. The cook first asks whether the image exists.
func (s *Scheduler) ensureCook(r *recipe.Recipe, diff []string, trigger Trigger) {
	if s.closing || s.cooked[r.Hash] != nil || s.activeCook(r.Hash) != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.jobCtx)
	c := &cookJob{r: r, diff: diff, trigger: trigger, cancel: cancel, checking: true,
		queued: time.Now(), tail: &outputTail{max: 40}}
	s.cooks = append(s.cooks, c)
	go s.runCook(ctx, c)
}

func (s *Scheduler) runCook(ctx context.Context, c *cookJob) {
	has, err := s.opts.Builder.HasCooked(ctx, c.r)
	if err == nil && has {
		s.post(func() { s.cookDone(c, dockerctl.CookResult{Skipped: true}, nil) })
		return
	}
	if err != nil && ctx.Err() == nil {
		s.log.Debug("cannot tell whether the cooked image exists; cooking", zap.Error(err))
	}
	if ctx.Err() != nil {
		s.post(func() { s.cookDone(c, dockerctl.CookResult{}, ctx.Err()) })
		return
	}
	if s.do(func() { s.cookStarted(c) }) != nil {
		return
	}
	res, err := s.opts.Builder.Cook(ctx, c.r, s.progress(EventCookProgress, c.rec.ID, c.r.Hash, c.tail))
	s.post(func() { s.cookDone(c, res, err) })
}

func (s *Scheduler) cookStarted(c *cookJob) {
	now := time.Now()
	c.checking = false
	c.rec = &Record{ID: s.newID(), Kind: KindCook, Recipe: c.r.Hash, Trigger: c.trigger,
		RecipeDiff: c.diff, Queued: c.queued, Started: now, Result: ResultRunning}
	s.log.Info("cooking", zap.Int64("id", c.rec.ID), zap.String("recipe", c.r.ShortHash()))
	s.bus.publish(Event{Type: EventCookStart, ID: c.rec.ID, Recipe: c.r.Hash, Record: c.rec.clone()})
	if s.pending != nil {
		s.maybeStart() // refresh what the queued build waits for
	}
}

// stopCook cancels a cook; the watchdog gives up on it after CancelGrace.
func (s *Scheduler) stopCook(c *cookJob) {
	c.stopping = true
	c.cancel()
	why := "daemon stopping"
	if c.obsolete && s.cur != nil {
		why = "recipe changed to " + s.cur.ShortHash()
	}
	s.log.Info("cancelling cook", zap.String("recipe", c.r.ShortHash()), zap.String("why", why))
	c.timer = time.AfterFunc(s.opts.CancelGrace, func() { s.post(func() { s.dropCook(c) }) })
}

func (s *Scheduler) removeCook(c *cookJob) bool {
	for i, x := range s.cooks {
		if x == c {
			s.cooks = append(s.cooks[:i], s.cooks[i+1:]...)
			return true
		}
	}
	return false
}

// dropCook gives up waiting for a cancelled cook.
func (s *Scheduler) dropCook(c *cookJob) {
	if !s.removeCook(c) {
		return
	}
	c.dropped = true
	s.log.Warn("a cancelled cook did not stop in time; no longer waiting for it",
		zap.String("recipe", c.r.ShortHash()), zap.Duration("grace", s.opts.CancelGrace))
	if c.rec != nil {
		s.finishCookRecord(c, ResultCancelled, fmt.Sprintf("%s; did not stop within %s", s.cookCancelReason(c), s.opts.CancelGrace))
	}
	s.maybeStart()
}

func (s *Scheduler) cookCancelReason(c *cookJob) string {
	if c.obsolete {
		return "obsolete: the recipe changed"
	}
	return "cancelled: the daemon is stopping"
}

func (s *Scheduler) finishCookRecord(c *cookJob, result Result, errText string) {
	rec := c.rec
	rec.Result = result
	rec.Error = errText
	rec.Finished = time.Now()
	if rec.Duration == 0 {
		rec.Duration = rec.Finished.Sub(rec.Started)
	}
	s.finish(rec)
	s.bus.publish(Event{Type: EventCookDone, ID: rec.ID, Recipe: rec.Recipe, Record: rec.clone()})
}

func (s *Scheduler) cookDone(c *cookJob, res dockerctl.CookResult, err error) {
	if c.timer != nil {
		c.timer.Stop()
	}
	s.removeCook(c)
	hash := c.r.Hash
	if err == nil {
		tag := res.Tag
		if t, ok := s.opts.Builder.(Tagger); ok && tag == "" {
			tag = t.CookedTag(c.r)
		}
		s.cooked[hash] = &CookedImage{Recipe: hash, Tag: tag, ImageID: res.ImageID, Since: time.Now()}
		delete(s.cookFailed, hash)
		if c.rec != nil && !c.dropped {
			rec := c.rec
			rec.Phases, rec.Compiled = res.Phases, res.Compiled
			rec.ImageID, rec.CookedTag = res.ImageID, res.Tag
			rec.Duration = res.Duration
			if rec.Duration == 0 {
				rec.Duration = time.Since(rec.Started)
			}
			if !res.Skipped {
				s.lastCook = rec.Duration
			}
			s.log.Info("cooked", zap.Int64("id", rec.ID), zap.String("recipe", c.r.ShortHash()),
				zap.Duration("took", rec.Duration), zap.Int("third_party", res.Compiled.ThirdParty))
			s.finishCookRecord(c, ResultOK, "")
			if !res.Skipped {
				s.startGC()
			}
		} else if c.rec == nil {
			s.log.Debug("cooked image exists", zap.String("recipe", c.r.ShortHash()))
		}
	} else if !c.dropped {
		switch {
		case c.stopping || s.closing:
			if c.rec != nil {
				s.finishCookRecord(c, ResultCancelled, s.cookCancelReason(c))
			}
		default:
			s.cookFailed[hash] = err
			s.log.Warn("cook failed", zap.String("recipe", c.r.ShortHash()), zap.Error(err),
				zap.Strings("output", c.tail.tail()))
			if c.rec != nil {
				c.rec.Output = c.tail.tail()
				s.finishCookRecord(c, ResultFailed, err.Error())
			}
		}
	}
	s.maybeStart()
}

// ---- garbage collection ----

func (s *Scheduler) startGC() {
	s.gcRunning++
	keep := s.opts.KeepCooked
	go func() {
		removed, err := s.opts.Builder.GC(s.jobCtx, keep)
		s.post(func() {
			s.gcRunning--
			s.gcDone(removed, err)
		})
	}()
}

func (s *Scheduler) gcDone(removed []dockerctl.Removed, err error) {
	if err != nil {
		s.log.Warn("garbage collection of cooked images failed", zap.Error(err))
		s.bus.publish(Event{Type: EventWarning, Message: "gc: " + err.Error()})
	}
	if len(removed) == 0 {
		return
	}
	names := dockerctl.RemovedNames(removed)
	s.log.Info("removed old cooked images", zap.Strings("images", names))
	s.bus.publish(Event{Type: EventGC, Paths: names})
	for _, rm := range removed {
		if rm.Recipe != "" {
			delete(s.cooked, rm.Recipe)
		}
	}
	if s.cur != nil && s.cooked[s.cur.Hash] == nil && s.activeCook(s.cur.Hash) == nil && !s.closing {
		s.log.Warn("garbage collection removed the current recipe's cooked image; cooking it again",
			zap.String("recipe", s.cur.ShortHash()))
		s.ensureCook(s.cur, []string{"its cooked image was garbage-collected"}, TriggerWatch)
	}
}

// GC removes old cooked images now (keeping KeepCooked) and returns their names.
func (s *Scheduler) GC(ctx context.Context) ([]string, error) {
	removed, err := s.opts.Builder.GC(ctx, s.opts.KeepCooked)
	if derr := s.do(func() { s.gcDone(removed, nil) }); derr != nil && err == nil {
		err = derr
	}
	return dockerctl.RemovedNames(removed), err
}

// ---- builds ----

type trigger struct {
	kind   Trigger
	paths  []string
	batch  bool
	urgent bool
	force  bool
	waiter chan Record
	// join is the running build a request may take as its answer: the
	// workspace was checked to hold exactly what that build ships.
	join *buildJob
	// stale: the workspace was checked to differ from what the running
	// build ships.
	stale *buildJob
}

func (s *Scheduler) onBatch(b watcher.Batch) {
	if s.closing {
		return
	}
	s.gen++
	s.log.Debug("changes", zap.String("kind", b.Kind.String()), zap.Int("files", len(b.Paths)),
		zap.Strings("paths", capLines(b.Paths, 20)), zap.Bool("rescan", b.Rescan))
	s.bus.publish(Event{Type: EventBatch, Paths: capLines(b.Paths, maxChanged), Message: b.Kind.String()})
	if b.Kind == watcher.KindRecipe || b.Rescan {
		s.replan(TriggerWatch)
	}
	if s.opts.Manual {
		return
	}
	s.request(trigger{kind: TriggerWatch, paths: b.Paths, batch: true})
}

// drainBatches handles the batches the watcher has ready.
func (s *Scheduler) drainBatches() {
	for s.batches != nil {
		select {
		case b, ok := <-s.batches:
			if !ok {
				s.batches = nil
				return
			}
			s.onBatch(b)
		default:
			return
		}
	}
}

// request adds a trigger to the build that will answer it: the running
// build when the workspace was checked to hold what it ships (t.join),
// else the queued one. A running build that misses changes is superseded,
// unless maxSupersedes builds in a row already were.
func (s *Scheduler) request(t trigger) *buildJob {
	if b := s.build; b != nil && !b.stopping && (s.gen > b.gen || t.stale == b || s.cur != nil && b.r.Hash != s.cur.Hash) {
		if b.streak < maxSupersedes {
			s.supersede(b)
		} else {
			s.log.Info("not superseding: the builds before it were superseded; it finishes first",
				zap.Int64("id", b.rec.ID), zap.Int("superseded_in_a_row", b.streak))
		}
	}
	var j *buildJob
	if b := s.build; b != nil && !b.stopping && t.join == b && s.cur != nil && b.r.Hash == s.cur.Hash {
		j = b
	} else {
		j = s.queue(t.kind)
	}
	j.merge(t)
	if j == s.pending {
		s.maybeStart()
	}
	return j
}

func (j *buildJob) merge(t trigger) {
	if t.batch {
		j.rec.Batches++
	}
	j.changes.add(t.paths...)
	if j.rec.Started.IsZero() {
		j.changes.fill(j.rec)
	}
	if t.waiter != nil {
		j.waiters = append(j.waiters, t.waiter)
		j.rec.Requests++
	}
	if t.kind == TriggerRequest {
		j.explicit = true
	}
	if t.urgent {
		j.urgent = true
		j.rec.Urgent = true
	}
}

// absorb moves what a superseded build was for into j.
func (j *buildJob) absorb(o *buildJob) {
	j.changes.merge(&o.changes)
	j.changes.fill(j.rec)
	j.waiters = append(j.waiters, o.waiters...)
	o.waiters = nil
	j.rec.Batches += o.rec.Batches
	j.rec.Requests += o.rec.Requests
	j.streak = max(j.streak, o.streak+1)
	j.explicit = j.explicit || o.explicit
	if o.urgent {
		j.urgent, j.rec.Urgent = true, true
	}
}

// queue returns the queued build, creating it.
func (s *Scheduler) queue(kind Trigger) *buildJob {
	if s.pending == nil {
		s.pending = &buildJob{
			rec:  &Record{ID: s.newID(), Kind: KindBuild, Trigger: kind, Queued: time.Now(), Result: ResultQueued},
			tail: &outputTail{max: 60},
		}
		s.bus.publish(Event{Type: EventBuildQueued, ID: s.pending.rec.ID, Record: s.pending.rec.clone()})
	}
	return s.pending
}

// supersede cancels the running build; the queued build takes over its
// changes and requests.
func (s *Scheduler) supersede(b *buildJob) {
	p := s.queue(TriggerWatch)
	p.absorb(b)
	b.stopping, b.stopAs = true, ResultSuperseded
	b.rec.SupersededBy = p.rec.ID
	s.log.Info("superseding build", zap.Int64("id", b.rec.ID), zap.Int64("by", p.rec.ID))
	b.cancel()
	b.timer = time.AfterFunc(s.opts.CancelGrace, func() { s.post(func() { s.dropBuild(b) }) })
}

func (s *Scheduler) setWaiting(p *buildJob, what string) {
	if p.rec.Waiting != what {
		p.rec.Waiting = what
		s.log.Debug("build waits", zap.Int64("id", p.rec.ID), zap.String("for", what))
	}
}

// maybeStart starts the queued build when it can run.
func (s *Scheduler) maybeStart() {
	if s.closing || s.build != nil || s.pending == nil {
		return
	}
	p := s.pending
	if s.recipeErr != nil {
		if len(p.waiters) > 0 || s.cur == nil {
			s.failPending(p, (&RecipeError{s.recipeErr}).Error())
			return
		}
		s.setWaiting(p, "a valid recipe ("+s.recipeErr.Error()+")")
		return
	}
	r := s.cur
	if s.cooked[r.Hash] == nil {
		c := s.activeCook(r.Hash)
		if c == nil {
			if err := s.cookFailed[r.Hash]; err != nil {
				s.failPending(p, fmt.Sprintf("the cook of recipe %s failed: %v", r.ShortHash(), err))
				return
			}
			s.ensureCook(r, nil, p.rec.Trigger)
			c = s.activeCook(r.Hash)
		}
		switch {
		case c == nil:
			s.setWaiting(p, "the cook of recipe "+r.ShortHash())
		case c.checking:
			s.setWaiting(p, "the cooked image check of recipe "+r.ShortHash())
		default:
			s.setWaiting(p, fmt.Sprintf("the cook of recipe %s (#%d)", r.ShortHash(), c.rec.ID))
		}
		return
	}
	if !p.urgent {
		if c := s.otherCook(r.Hash); c != nil {
			s.setWaiting(p, "the cancelled cook of recipe "+c.r.ShortHash()+" to stop")
			return
		}
	}
	s.startBuild(p, r)
}

func (s *Scheduler) failPending(p *buildJob, msg string) {
	if s.pending == p {
		s.pending = nil
	}
	rec := p.rec
	rec.Result, rec.Error, rec.Waiting = ResultFailed, msg, ""
	rec.Finished = time.Now()
	if s.cur != nil {
		rec.Recipe = s.cur.Hash
	}
	s.log.Warn("build failed", zap.Int64("id", rec.ID), zap.String("error", msg))
	s.finishBuild(p)
}

func (s *Scheduler) startBuild(p *buildJob, r *recipe.Recipe) {
	s.pending = nil
	ctx, cancel := context.WithCancel(s.jobCtx)
	p.cancel, p.gen, p.r, p.ready = cancel, s.gen, r, make(chan struct{})
	rec := p.rec
	rec.Recipe, rec.Started, rec.Result, rec.Waiting = r.Hash, time.Now(), ResultRunning, ""
	if s.lastBuilt != nil && s.lastBuilt.Hash != r.Hash {
		rec.RecipeDiff = capLines(recipe.Diff(s.lastBuilt, r), 100)
	}
	s.lastBuilt = r
	p.changes.fill(rec)
	s.build = p
	s.log.Info("building", zap.Int64("id", rec.ID), zap.String("recipe", r.ShortHash()),
		zap.Strings("why", rec.Why()), zap.Bool("urgent", p.urgent))
	s.bus.publish(Event{Type: EventBuildStart, ID: rec.ID, Recipe: r.Hash, Record: rec.clone()})
	publish := s.progress(EventBuildProgress, rec.ID, r.Hash, p.tail)
	progress := func(ev dockerctl.Event) {
		if ev.Kind == dockerctl.EventInputs {
			s.post(func() { p.inputs = ev.Inputs; p.markReady() })
			return
		}
		publish(ev)
	}
	go func() {
		res, err := s.opts.Builder.Build(ctx, r, progress)
		s.post(func() { s.buildDone(p, res, err) })
	}()
}

// dropBuild gives up waiting for a cancelled build.
// markReady says that the build's inputs are known, or will never be.
func (j *buildJob) markReady() {
	select {
	case <-j.ready:
	default:
		close(j.ready)
	}
}

func (s *Scheduler) dropBuild(b *buildJob) {
	if s.build != b {
		return
	}
	s.build = nil
	b.dropped = true
	b.markReady()
	s.log.Warn("a cancelled build did not stop in time; no longer waiting for it",
		zap.Int64("id", b.rec.ID), zap.Duration("grace", s.opts.CancelGrace))
	rec := b.rec
	rec.Result = b.stopAs
	rec.Error = fmt.Sprintf("did not stop within %s of its cancellation", s.opts.CancelGrace)
	rec.Finished = time.Now()
	rec.Duration = rec.Finished.Sub(rec.Started)
	s.finishBuild(b)
	s.maybeStart()
}

func (s *Scheduler) buildDone(b *buildJob, res dockerctl.BuildResult, err error) {
	b.markReady()
	if b.timer != nil {
		b.timer.Stop()
	}
	if b.dropped {
		s.log.Info("an abandoned build ended", zap.Int64("id", b.rec.ID), zap.Error(err))
		return
	}
	if s.build == b {
		s.build = nil
	}
	rec := b.rec
	rec.Finished = time.Now()
	rec.Duration = rec.Finished.Sub(rec.Started)
	if wait := rec.Started.Sub(rec.Queued); wait >= time.Millisecond {
		rec.Phases = append(rec.Phases, dockerctl.Phase{Name: "wait", Duration: wait})
	}
	rec.Phases = append(rec.Phases, res.Phases...)
	rec.Compiled = res.Compiled
	rec.Image, rec.ImageID, rec.CookedTag = res.Image, res.ImageID, res.CookedTag
	if res.Cook != nil && res.Cook.ImageID != "" && s.cooked[b.r.Hash] == nil {
		s.cooked[b.r.Hash] = &CookedImage{Recipe: b.r.Hash, Tag: res.Cook.Tag, ImageID: res.Cook.ImageID, Since: time.Now()}
	}
	switch {
	case err == nil:
		rec.Result = ResultOK
		s.lastOK, s.lastOKIn = rec, res.Inputs
		if s.lastOKIn == nil {
			s.lastOKIn = b.inputs
		}
		s.log.Info("built", zap.Int64("id", rec.ID), zap.String("image", rec.Image), zap.String("image_id", rec.ImageID),
			zap.Duration("took", rec.Duration), zap.Int("local", rec.Compiled.Local), zap.Int("third_party", rec.Compiled.ThirdParty))
	case b.stopping || s.closing:
		rec.Result = b.stopAs
		if rec.Result == "" {
			rec.Result = ResultCancelled
		}
		if rec.Result == ResultSuperseded {
			rec.Error = fmt.Sprintf("superseded by build #%d (newer changes)", rec.SupersededBy)
		} else {
			rec.Error = "cancelled: the daemon is stopping"
		}
		s.log.Info("build stopped", zap.Int64("id", rec.ID), zap.String("result", string(rec.Result)))
	default:
		rec.Result = ResultFailed
		rec.Error = err.Error()
		rec.Output = b.tail.tail()
		s.log.Warn("build failed", zap.Int64("id", rec.ID), zap.Error(err), zap.Strings("output", rec.Output))
	}
	s.finishBuild(b)
	s.maybeStart()
}

// finishBuild records a finished build and answers its requests.
func (s *Scheduler) finishBuild(b *buildJob) {
	rec := b.rec
	if rec.Result == ResultOK || rec.Result == ResultFailed {
		s.last = rec
	}
	s.finish(rec)
	s.bus.publish(Event{Type: EventBuildDone, ID: rec.ID, Recipe: rec.Recipe, Record: rec.clone()})
	for _, w := range b.waiters {
		w <- *rec.clone()
	}
	b.waiters = nil
}

// finish adds a record to the history and saves the state.
func (s *Scheduler) finish(rec *Record) {
	s.hist.add(rec)
	s.saveState()
}

// progress forwards builder progress to the event stream.
func (s *Scheduler) progress(typ EventType, id int64, hash string, tail *outputTail) dockerctl.Progress {
	return func(ev dockerctl.Event) {
		switch ev.Kind {
		case dockerctl.EventLog, dockerctl.EventError:
			tail.add(ev.Text)
			s.log.Debug("output", zap.Int64("id", id), zap.String("line", ev.Text))
		case dockerctl.EventStep:
			if ev.Done {
				s.log.Debug("step", zap.Int64("id", id), zap.String("step", ev.Step),
					zap.Bool("cached", ev.Cached), zap.Duration("took", ev.Duration))
			}
		}
		e := ev
		s.bus.publish(Event{Type: typ, ID: id, Recipe: hash, Progress: &e})
	}
}

// ---- requests ----

// Submit takes a build request. It settles (Options.Settle), recomputes
// the recipe, and answers with a build of what the workspace holds now:
// the last successful build when the workspace still holds exactly what it
// shipped (Ticket.Final; not with Force), the running one when it ships
// exactly that, else the queued one.
func (s *Scheduler) Submit(ctx context.Context, req BuildRequest) (*Ticket, error) {
	if s.opts.Settle != nil {
		if err := s.opts.Settle(ctx); err != nil {
			return nil, err
		}
	}
	var (
		r       *recipe.Recipe
		cooked  bool
		failure error
	)
	if err := s.do(func() {
		s.drainBatches()
		if s.closing {
			failure = ErrClosed
			return
		}
		if err := s.replan(TriggerRequest); err != nil {
			failure = &RecipeError{err}
			return
		}
		r, cooked = s.cur, s.cooked[s.cur.Hash] != nil
	}); err != nil {
		return nil, err
	}
	if failure != nil {
		return nil, failure
	}
	if req.WarmOnly && !cooked {
		has, err := s.opts.Builder.HasCooked(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("--warm-only: cannot tell whether the cooked image exists: %w", err)
		}
		if err := s.do(func() {
			if has && s.cooked[r.Hash] == nil {
				tag := ""
				if t, ok := s.opts.Builder.(Tagger); ok {
					tag = t.CookedTag(r)
				}
				s.cooked[r.Hash] = &CookedImage{Recipe: r.Hash, Tag: tag, Since: time.Now()}
			}
			if !has {
				failure = s.notWarm(r.Hash)
			}
		}); err != nil {
			return nil, err
		}
		if failure != nil {
			return nil, failure
		}
	}
	// The workspace as it is now decides the answer: the last successful
	// build, or the running one, may answer only if it ships exactly what
	// is on disk. Events can be late or held (a polled subtree, git in the
	// middle of an operation), the disk cannot.
	var (
		reuse, run     *Record
		reuseIn, runIn *dockerctl.Inputs
		job            *buildJob
	)
	for {
		var ready chan struct{} // the running build's context is still being written
		if err := s.do(func() {
			s.drainBatches()
			r, reuse, reuseIn, job, run, runIn = s.cur, nil, nil, nil, nil, nil
			if req.Force || s.closing {
				return
			}
			if s.lastOK != nil && s.lastOKIn != nil && s.lastOK.Recipe == r.Hash && s.build == nil && s.pending == nil {
				reuse, reuseIn = s.lastOK, s.lastOKIn
			}
			if b := s.build; b != nil && !b.stopping && b.r.Hash == r.Hash {
				if b.inputs == nil {
					ready = b.ready
					return
				}
				job, run, runIn = b, b.rec, b.inputs
			}
		}); err != nil {
			return nil, err
		}
		if ready == nil {
			break
		}
		select { // milliseconds: until the build has listed and hashed its context
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	reuseOK := reuse != nil && s.unchanged(ctx, r, reuseIn)
	runOK := run != nil && s.unchanged(ctx, r, runIn)
	held := ""
	if s.opts.Hold != nil {
		held, _ = s.opts.Hold()
	}
	var t *Ticket
	if err := s.do(func() {
		if s.closing {
			failure = ErrClosed
			return
		}
		if req.WarmOnly && s.cooked[s.cur.Hash] == nil {
			failure = s.notWarm(s.cur.Hash)
			return
		}
		if reuseOK && s.lastOK == reuse && s.build == nil && s.pending == nil && s.cur.Hash == r.Hash {
			rec := s.lastOK.clone()
			rec.Reused, rec.GitHeld = true, held
			t = &Ticket{Record: *rec}
			s.log.Info("the workspace holds what the last successful build shipped", zap.Int64("id", rec.ID))
			return
		}
		if runOK && job.rec.Result.Done() && job.rec.Result != ResultSuperseded && job.rec.Result != ResultCancelled {
			// the build it was checked against ended meanwhile: that is the answer
			rec := job.rec.clone()
			rec.GitHeld = held
			t = &Ticket{Record: *rec}
			return
		}
		delete(s.cookFailed, s.cur.Hash) // a request retries a failed cook
		w := make(chan Record, 1)
		tr := trigger{kind: TriggerRequest, urgent: req.Urgent, force: req.Force, waiter: w}
		if runOK {
			tr.join = job
		} else if run != nil {
			tr.stale = job
		}
		j := s.request(tr)
		t = &Ticket{Record: *j.rec.clone(), done: w, held: held}
		t.Record.GitHeld = held
	}); err != nil {
		return nil, err
	}
	if failure != nil {
		return nil, failure
	}
	return t, nil
}

// unchanged asks the builder whether the workspace holds exactly in; an
// error counts as a change.
func (s *Scheduler) unchanged(ctx context.Context, r *recipe.Recipe, in *dockerctl.Inputs) bool {
	ok, err := s.opts.Builder.Unchanged(ctx, r, in)
	if err != nil {
		s.log.Debug("cannot compare the workspace with a build; building", zap.Error(err))
		return false
	}
	return ok
}

// Build submits a request and, with Wait, waits for the answer.
func (s *Scheduler) Build(ctx context.Context, req BuildRequest) (Record, error) {
	t, err := s.Submit(ctx, req)
	if err != nil {
		return Record{}, err
	}
	if !req.Wait {
		return t.Record, nil
	}
	return t.Wait(ctx)
}

func (s *Scheduler) notWarm(hash string) *NotWarmError {
	e := &NotWarmError{Recipe: hash, LastCook: s.lastCook}
	if c := s.activeCook(hash); c != nil {
		if c.rec != nil {
			e.CookingFor = time.Since(c.rec.Started)
		} else {
			e.CookingFor = time.Since(c.queued)
		}
	} else if err := s.cookFailed[hash]; err != nil {
		e.CookError = err.Error()
	}
	return e
}

// ---- status ----

// State is what the daemon does as a whole (Status.State).
type State string

// States.
const (
	StateIdle        State = "idle"
	StateQueued      State = "queued"       // a build waits (for a cook, or a recipe that computes)
	StateCooking     State = "cooking"      // a cook runs, no build
	StateBuilding    State = "building"     // a build runs
	StateRecipeError State = "recipe-error" // the recipe cannot be computed
	StateStopping    State = "stopping"
)

func (s *Scheduler) state() State {
	switch {
	case s.closing:
		return StateStopping
	case s.build != nil:
		return StateBuilding
	case s.cooking():
		return StateCooking
	case s.pending != nil:
		return StateQueued
	case s.recipeErr != nil:
		return StateRecipeError
	}
	return StateIdle
}

// cooking reports whether the current recipe's cook runs (not just the
// check for an existing image).
func (s *Scheduler) cooking() bool {
	c := s.activeCook(s.curHash())
	return c != nil && !c.checking
}

func (s *Scheduler) curHash() string {
	if s.cur == nil {
		return ""
	}
	return s.cur.Hash
}

// Status returns a snapshot; recent is the number of history records to
// include (newest first).
func (s *Scheduler) Status(recent int) (Status, error) {
	var st Status
	err := s.do(func() {
		st = Status{State: s.state(), Recipe: s.curHash(), RecipeComputed: s.curAt,
			LastCook: s.lastCook, Changes: s.gen, Manual: s.opts.Manual, CookedImages: []CookedImage{}}
		if s.opts.Hold != nil {
			st.Held, st.HeldSince = s.opts.Hold()
		}
		if s.recipeErr != nil {
			st.RecipeError = s.recipeErr.Error()
		}
		st.Cooked = s.cooked[s.curHash()] != nil
		for _, c := range s.cooked {
			st.CookedImages = append(st.CookedImages, *c)
		}
		sortCooked(st.CookedImages)
		for _, c := range s.cooks {
			if c.rec != nil {
				rec := c.rec.clone()
				if c.stopping {
					rec.Waiting = "it to stop (" + s.cookCancelReason(c) + ")"
				}
				st.Cooks = append(st.Cooks, *rec)
			} else {
				st.Cooks = append(st.Cooks, Record{Kind: KindCook, Recipe: c.r.Hash, Trigger: c.trigger,
					Queued: c.queued, Result: ResultQueued, Waiting: "the check for an existing image"})
			}
		}
		if s.build != nil {
			st.Current = s.build.rec.clone()
		}
		if s.pending != nil {
			st.Pending = s.pending.rec.clone()
		}
		st.Last, st.LastOK = s.last.clone(), s.lastOK.clone()
		if recent > 0 {
			st.Recent = s.hist.list(recent)
		}
	})
	return st, err
}

func sortCooked(l []CookedImage) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j].Since.After(l[j-1].Since); j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

// History returns up to n finished records, newest first (n <= 0: all).
func (s *Scheduler) History(n int) ([]Record, error) {
	var out []Record
	err := s.do(func() { out = s.hist.list(n) })
	return out, err
}

// Warn publishes a warning (from the watcher, say) on the event stream.
func (s *Scheduler) Warn(msg string) {
	s.bus.publish(Event{Type: EventWarning, Message: msg})
}

// ---- shutdown and state ----

func (s *Scheduler) shutdown() {
	s.closing = true
	s.log.Info("stopping: cancelling builds and cooks")
	s.bus.publish(Event{Type: EventStopping})
	if p := s.pending; p != nil {
		s.pending = nil
		p.rec.Result, p.rec.Error, p.rec.Waiting = ResultCancelled, "cancelled: the daemon is stopping", ""
		p.rec.Finished = time.Now()
		s.finishBuild(p)
	}
	if b := s.build; b != nil && !b.stopping {
		b.stopping, b.stopAs = true, ResultCancelled
		b.cancel()
	}
	for _, c := range s.cooks {
		if !c.stopping {
			c.stopping = true
			c.cancel()
		}
	}
	grace := time.NewTimer(s.opts.CancelGrace)
	defer grace.Stop()
	for s.build != nil || len(s.cooks) > 0 || s.gcRunning > 0 {
		select {
		case f := <-s.calls:
			f()
		case <-grace.C:
			s.log.Warn("builds or cooks did not stop in time; leaving them",
				zap.Bool("build", s.build != nil), zap.Int("cooks", len(s.cooks)))
			if b := s.build; b != nil {
				s.dropBuild(b)
			}
			s.bus.close()
			return
		}
	}
	s.bus.close()
}

// persisted is the content of Options.StateFile.
type persisted struct {
	LastCook time.Duration `json:"last_cook_ns"`
	History  []Record      `json:"history"` // oldest first
}

func (s *Scheduler) loadState() {
	if s.opts.StateFile == "" {
		return
	}
	data, err := os.ReadFile(s.opts.StateFile)
	if err != nil {
		return
	}
	var p persisted
	if err := json.Unmarshal(data, &p); err != nil {
		s.log.Warn("ignoring unreadable state file", zap.String("file", s.opts.StateFile), zap.Error(err))
		return
	}
	s.lastCook = p.LastCook
	for i := range p.History {
		rec := p.History[i]
		if !rec.Result.Done() {
			rec.Result, rec.Error = ResultCancelled, "the daemon stopped"
		}
		s.hist.add(&rec)
		s.nextID = max(s.nextID, rec.ID)
	}
}

func (s *Scheduler) saveState() {
	if s.opts.StateFile == "" {
		return
	}
	p := persisted{LastCook: s.lastCook, History: make([]Record, 0, len(s.hist.recs))}
	for _, r := range s.hist.recs {
		p.History = append(p.History, *r)
	}
	data, err := json.Marshal(p)
	if err == nil {
		tmp := s.opts.StateFile + ".tmp"
		if err = os.MkdirAll(filepath.Dir(tmp), 0o700); err == nil {
			if err = os.WriteFile(tmp, data, 0o600); err == nil {
				err = os.Rename(tmp, s.opts.StateFile)
			}
		}
	}
	if err != nil {
		s.log.Debug("cannot save state", zap.Error(err))
	}
}
