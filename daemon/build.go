// The scheduler's code builds: queued, coalesced, superseded, finished.

package daemon

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/recipe"
	"github.com/chefd/chefd/watcher"
)

// buildJob is a code build, queued (Scheduler.pending) or started
// (Scheduler.build).
type buildJob struct {
	rec      *api.Record
	changes  changeSet
	gen      int64
	r        *recipe.Recipe
	cancel   context.CancelFunc
	waiters  []chan api.Record
	urgent   bool
	explicit bool
	state    jobState
	stopAs   api.Result // how a stopping build ends: superseded or cancelled
	stopWhy  string     // why a cancelled build stopped (default: the daemon stops)
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

type trigger struct {
	kind   api.Trigger
	paths  []string
	batch  bool
	urgent bool
	force  bool
	exact  bool // a request for an exact build
	waiter chan api.Record
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
	s.bus.publish(api.Event{Type: api.EventBatch, Paths: capLines(b.Paths, maxChanged), Message: b.Kind.String()})
	if b.Kind == watcher.KindRecipe || b.Rescan {
		s.replan(api.TriggerWatch)
	}
	if s.opts.Manual {
		return
	}
	s.request(trigger{kind: api.TriggerWatch, paths: b.Paths, batch: true})
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
	if b := s.build; b != nil && b.state != stateStopping && (s.gen > b.gen || t.stale == b || s.cur != nil && b.r.Hash != s.cur.Hash) {
		if b.streak < maxSupersedes {
			s.supersede(b)
		} else {
			s.log.Info("not superseding: the builds before it were superseded; it finishes first",
				zap.Int64("id", b.rec.ID), zap.Int("superseded_in_a_row", b.streak))
		}
	}
	var j *buildJob
	if b := s.build; b != nil && b.state != stateStopping && t.join == b && s.cur != nil && b.r.Hash == s.cur.Hash {
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
	if t.kind == api.TriggerRequest {
		j.explicit = true
	}
	if t.urgent {
		j.urgent = true
		j.rec.Urgent = true
	}
	if t.exact {
		j.rec.Mode = dockerctl.ModeExact
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
	if o.rec.Mode == dockerctl.ModeExact { // its requests may have asked for exact
		j.rec.Mode = dockerctl.ModeExact
	}
}

// modeAnswers: a build of mode have answers a request (exact: it asked
// for an exact build). An exact build answers any request.
func modeAnswers(have dockerctl.Mode, exact bool) bool {
	return !exact || have == dockerctl.ModeExact
}

// queue returns the queued build, creating it.
func (s *Scheduler) queue(kind api.Trigger) *buildJob {
	if s.pending == nil {
		s.pending = &buildJob{
			rec: &api.Record{ID: s.newID(), Kind: api.KindBuild, Trigger: kind, Queued: time.Now(), Result: api.ResultQueued,
				Mode: s.opts.Mode},
			tail: &outputTail{max: 60},
		}
		s.bus.publish(api.Event{Type: api.EventBuildQueued, ID: s.pending.rec.ID, Record: s.pending.rec.Clone()})
	}
	return s.pending
}

// supersede cancels the running build; the queued build takes over its
// changes and requests.
func (s *Scheduler) supersede(b *buildJob) {
	p := s.queue(api.TriggerWatch)
	p.absorb(b)
	b.rec.SupersededBy = p.rec.ID
	s.log.Info("superseding build", zap.Int64("id", b.rec.ID), zap.Int64("by", p.rec.ID))
	s.stopBuild(b, api.ResultSuperseded, "", true)
}

// stopBuild cancels the running build b, which ends as result (with why,
// for a cancelled one) once the engine has stopped its step; with grace,
// it is given up after CancelGrace (dropBuild) so that the next can run.
func (s *Scheduler) stopBuild(b *buildJob, result api.Result, why string, grace bool) {
	s.move(&b.state, stateStopping, b.label())
	b.stopAs, b.stopWhy = result, why
	b.cancel()
	if grace {
		b.timer = time.AfterFunc(s.opts.CancelGrace, func() { s.post(func() { s.dropBuild(b) }) })
	}
}

// cancelPending ends the queued build p as cancelled, at once.
func (s *Scheduler) cancelPending(p *buildJob, why string) {
	if s.pending == p {
		s.pending = nil
	}
	p.rec.Result, p.rec.Error, p.rec.Waiting = api.ResultCancelled, why, ""
	p.rec.Finished = time.Now()
	s.finishBuild(p)
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
			s.failPending(p, &RecipeError{s.recipeErr})
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
				s.failPending(p, fmt.Errorf("the cook of recipe %s failed: %w", r.ShortHash(), err))
				return
			}
			s.ensureCook(r, nil, p.rec.Trigger)
			c = s.activeCook(r.Hash)
		}
		switch {
		case c == nil:
			s.setWaiting(p, "the cook of recipe "+r.ShortHash())
		case c.state == stateChecking:
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

func (s *Scheduler) failPending(p *buildJob, err error) {
	if s.pending == p {
		s.pending = nil
	}
	rec := p.rec
	msg := err.Error()
	rec.Result, rec.Error, rec.ErrorCode, rec.Waiting = api.ResultFailed, msg, errorCode(err), ""
	rec.Finished = time.Now()
	if s.cur != nil {
		rec.Recipe = s.cur.Hash
	}
	s.log.Warn("build failed", zap.Int64("id", rec.ID), zap.String("error", msg))
	s.finishBuild(p)
}

func (s *Scheduler) startBuild(p *buildJob, r *recipe.Recipe) {
	s.pending = nil
	s.move(&p.state, stateRunning, p.label())
	ctx, cancel := context.WithCancel(s.jobCtx)
	p.cancel, p.gen, p.r, p.ready = cancel, s.gen, r, make(chan struct{})
	rec := p.rec
	rec.Recipe, rec.Started, rec.Result, rec.Waiting = r.Hash, time.Now(), api.ResultRunning, ""
	if s.lastBuilt != nil && s.lastBuilt.Hash != r.Hash {
		rec.RecipeDiff = capLines(recipe.Diff(s.lastBuilt, r), 100)
	}
	s.lastBuilt = r
	p.changes.fill(rec)
	s.build = p
	s.dog.saw(rec.ID, rec.Started)
	s.log.Info("building", zap.Int64("id", rec.ID), zap.String("recipe", r.ShortHash()),
		zap.Strings("why", rec.Why()), zap.Bool("urgent", p.urgent))
	s.bus.publish(api.Event{Type: api.EventBuildStart, ID: rec.ID, Recipe: r.Hash, Record: rec.Clone()})
	publish := s.progress(api.EventBuildProgress, rec.ID, r.Hash, p.tail)
	progress := func(ev dockerctl.Event) {
		if ev.Kind == dockerctl.EventInputs {
			s.post(func() { p.inputs = ev.Inputs; p.markReady() })
			return
		}
		publish(ev)
	}
	mode := rec.Mode
	written := s.saveState() // the running record: a crash leaves it on disk
	go func() {
		waitWritten(ctx, written)
		res, err := s.opts.Builder.Build(ctx, r, mode, progress)
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
	s.move(&b.state, stateDropped, b.label())
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
	if b.state == stateDropped {
		s.log.Info("an abandoned build ended", zap.Int64("id", b.rec.ID), zap.Error(err))
		return
	}
	stopping := b.state == stateStopping
	s.move(&b.state, stateDone, b.label())
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
	rec.Image, rec.ImageID, rec.CookedTag, rec.Images = res.Image, res.ImageID, res.CookedTag, res.Images
	rec.Unchanged = res.Unchanged
	if res.Cook != nil && res.Cook.ImageID != "" && s.cooked[b.r.Hash] == nil {
		s.cooked[b.r.Hash] = &api.CookedImage{Recipe: b.r.Hash, Tag: res.Cook.Tag, ImageID: res.Cook.ImageID, Since: time.Now()}
	}
	switch {
	case err == nil:
		rec.Result = api.ResultOK
		s.lastOK, s.lastOKIn = rec, res.Inputs
		s.noteImages(rec)
		if s.lastOKIn == nil {
			s.lastOKIn = b.inputs
		}
		s.log.Info("built", zap.Int64("id", rec.ID), zap.String("image", rec.Image), zap.String("image_id", rec.ImageID),
			zap.Duration("took", rec.Duration), zap.Int("local", rec.Compiled.Local), zap.Int("third_party", rec.Compiled.ThirdParty))
	case stopping || s.closing:
		rec.Result = b.stopAs
		if rec.Result == "" {
			rec.Result = api.ResultCancelled
		}
		if rec.Result == api.ResultSuperseded {
			rec.Error = fmt.Sprintf("superseded by build #%d (newer changes)", rec.SupersededBy)
		} else if b.stopWhy != "" {
			rec.Error = b.stopWhy
		} else {
			rec.Error = "cancelled: the daemon is stopping"
		}
		s.log.Info("build stopped", zap.Int64("id", rec.ID), zap.String("result", string(rec.Result)))
	default:
		rec.Result = api.ResultFailed
		rec.Error, rec.ErrorCode = err.Error(), errorCode(err)
		rec.Output = b.tail.tail()
		s.log.Warn("build failed", zap.Int64("id", rec.ID), zap.Error(err), zap.Strings("output", rec.Output))
	}
	s.finishBuild(b)
	s.maybeStart()
}

// finishBuild records a finished build and answers its requests.
func (s *Scheduler) finishBuild(b *buildJob) {
	if b.state == stateQueued { // failed or cancelled before it started
		s.move(&b.state, stateDone, b.label())
	}
	rec := b.rec
	if rec.Result == api.ResultOK || rec.Result == api.ResultFailed {
		s.last = rec
	}
	s.finish(rec)
	s.bus.publish(api.Event{Type: api.EventBuildDone, ID: rec.ID, Recipe: rec.Recipe, Record: rec.Clone()})
	for _, w := range b.waiters {
		w <- *rec.Clone()
	}
	b.waiters = nil
}

// finish adds a record to the history and saves the state.
func (s *Scheduler) finish(rec *api.Record) {
	s.hist.add(rec)
	s.saveState()
}

// progress forwards builder progress to the event stream.
func (s *Scheduler) progress(typ api.EventType, id int64, hash string, tail *outputTail) dockerctl.Progress {
	return func(ev dockerctl.Event) {
		if s.dog.saw(id, time.Now()) {
			s.post(func() { s.unstuck(id) })
		}
		switch ev.Kind {
		case dockerctl.EventLog, dockerctl.EventError:
			tail.add(ev.Text)
			s.log.Debug("output", zap.Int64("id", id), zap.String("line", ev.Text))
		case dockerctl.EventWarning:
			tail.add("warning: " + ev.Text)
			s.Warn(ev.Text)
		case dockerctl.EventStep:
			if ev.Done {
				s.log.Debug("step", zap.Int64("id", id), zap.String("step", ev.Step),
					zap.Bool("cached", ev.Cached), zap.Duration("took", ev.Duration))
			}
		}
		e := ev
		s.bus.publish(api.Event{Type: typ, ID: id, Recipe: hash, Progress: &e})
	}
}

// errorCode classifies a failure for the client (api.Record.ErrorCode).
func errorCode(err error) string {
	if dockerctl.IsUnreachable(err) {
		return api.CodeEngineUnreachable
	}
	return ""
}

// noteImages records what a successful build did with each service image:
// the build, and the build that last gave it a new ID.
func (s *Scheduler) noteImages(rec *api.Record) {
	if len(rec.Images) == 0 {
		return
	}
	if s.images == nil {
		s.images = map[string]*api.ServiceImage{}
	}
	for _, im := range rec.Images {
		st := s.images[im.Service]
		if st == nil {
			st = &api.ServiceImage{}
			s.images[im.Service] = st
		}
		moved := im.Changed || (st.ImageID != "" && st.ImageID != im.ImageID)
		st.ImageResult, st.Build = im, rec.ID
		if moved {
			st.ChangedIn, st.ChangedAt = rec.ID, rec.Finished
		}
	}
}
