// The scheduler's cooks: one per recipe, never cancelled while current.

package daemon

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/recipe"
)

// cookJob is the cook of one recipe's dependency image.
type cookJob struct {
	r        *recipe.Recipe
	diff     []string
	trigger  api.Trigger
	cancel   context.CancelFunc
	rec      *api.Record // nil while checking for an existing image
	state    jobState
	obsolete bool // it stops because the recipe changed
	timer    *time.Timer
	queued   time.Time
	tail     *outputTail
}

func (s *Scheduler) activeCook(hash string) *cookJob {
	for _, c := range s.cooks {
		if c.r.Hash == hash && c.state != stateStopping {
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
func (s *Scheduler) ensureCook(r *recipe.Recipe, diff []string, trigger api.Trigger) {
	if s.closing || s.cooked[r.Hash] != nil || s.activeCook(r.Hash) != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.jobCtx)
	c := &cookJob{r: r, diff: diff, trigger: trigger, cancel: cancel, state: stateChecking,
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
	if dockerctl.IsUnreachable(err) {
		// No engine: a cook cannot start. No record (a build waiting for
		// it fails as an engine failure); retried with backoff (retry.go).
		s.post(func() { s.cookDone(c, dockerctl.CookResult{}, err) })
		return
	}
	if err != nil && ctx.Err() == nil {
		s.log.Debug("cannot tell whether the cooked image exists; cooking", zap.Error(err))
	}
	if ctx.Err() != nil {
		s.post(func() { s.cookDone(c, dockerctl.CookResult{}, ctx.Err()) })
		return
	}
	var written <-chan struct{}
	if s.do(func() { written = s.cookStarted(c) }) != nil {
		return
	}
	waitWritten(ctx, written)
	res, err := s.opts.Builder.Cook(ctx, c.r, s.progress(api.EventCookProgress, c.rec.ID, c.r.Hash, c.tail))
	s.post(func() { s.cookDone(c, res, err) })
}

// cookStarted records the cook as running; the channel is closed once the
// record is on disk (saveState).
func (s *Scheduler) cookStarted(c *cookJob) <-chan struct{} {
	now := time.Now()
	s.move(&c.state, stateRunning, c.label())
	c.rec = &api.Record{ID: s.newID(), Kind: api.KindCook, Recipe: c.r.Hash, Trigger: c.trigger,
		RecipeDiff: c.diff, Queued: c.queued, Started: now, Result: api.ResultRunning}
	s.dog.saw(c.rec.ID, now)
	s.log.Info("cooking", zap.Int64("id", c.rec.ID), zap.String("recipe", c.r.ShortHash()))
	s.bus.publish(api.Event{Type: api.EventCookStart, ID: c.rec.ID, Recipe: c.r.Hash, Record: c.rec.Clone()})
	if s.pending != nil {
		s.maybeStart() // refresh what the queued build waits for
	}
	return s.saveState()
}

// stopCook cancels a cook; the watchdog gives up on it after CancelGrace.
func (s *Scheduler) stopCook(c *cookJob) {
	s.move(&c.state, stateStopping, c.label())
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
	s.move(&c.state, stateDropped, c.label())
	s.log.Warn("a cancelled cook did not stop in time; no longer waiting for it",
		zap.String("recipe", c.r.ShortHash()), zap.Duration("grace", s.opts.CancelGrace))
	if c.rec != nil {
		s.finishCookRecord(c, api.ResultCancelled, fmt.Sprintf("%s; did not stop within %s", s.cookCancelReason(c), s.opts.CancelGrace))
	}
	s.maybeStart()
}

func (s *Scheduler) cookCancelReason(c *cookJob) string {
	if c.obsolete {
		return "obsolete: the recipe changed"
	}
	return "cancelled: the daemon is stopping"
}

func (s *Scheduler) finishCookRecord(c *cookJob, result api.Result, errText string) {
	rec := c.rec
	rec.Result = result
	rec.Error = errText
	rec.Finished = time.Now()
	if rec.Duration == 0 {
		rec.Duration = rec.Finished.Sub(rec.Started)
	}
	s.finish(rec)
	s.bus.publish(api.Event{Type: api.EventCookDone, ID: rec.ID, Recipe: rec.Recipe, Record: rec.Clone()})
}

func (s *Scheduler) cookDone(c *cookJob, res dockerctl.CookResult, err error) {
	if c.timer != nil {
		c.timer.Stop()
	}
	s.removeCook(c)
	stopping := c.state == stateStopping
	if c.state != stateDropped {
		s.move(&c.state, stateDone, c.label())
	}
	hash := c.r.Hash
	if err == nil {
		tag := res.Tag
		if t, ok := s.opts.Builder.(Tagger); ok && tag == "" {
			tag = t.CookedTag(c.r)
		}
		s.cooked[hash] = &api.CookedImage{Recipe: hash, Tag: tag, ImageID: res.ImageID, Since: time.Now()}
		delete(s.cookFailed, hash)
		if s.retry.hash == hash {
			s.stopRetry()
		}
		if c.rec != nil && c.state != stateDropped {
			rec := c.rec
			rec.Phases, rec.Compiled, rec.Seed, rec.SeedImage = res.Phases, res.Compiled, res.Seed, res.SeedImage
			rec.Pulled, rec.Pushed, rec.Warnings = res.Pulled, res.Pushed, res.Warnings
			rec.ImageID, rec.CookedTag = res.ImageID, res.Tag
			rec.Duration = res.Duration
			if rec.Duration == 0 {
				rec.Duration = time.Since(rec.Started)
			}
			if !res.Skipped {
				s.lastCook = rec.Duration
			}
			s.log.Info("cooked", zap.Int64("id", rec.ID), zap.String("recipe", c.r.ShortHash()),
				zap.Duration("took", rec.Duration), zap.String("seed", res.Seed), zap.Int("third_party", res.Compiled.ThirdParty))
			s.finishCookRecord(c, api.ResultOK, "")
			if !res.Skipped {
				s.startGC()
			}
		} else if c.rec == nil {
			s.log.Debug("cooked image exists", zap.String("recipe", c.r.ShortHash()))
		}
	} else if c.state != stateDropped {
		switch { // done, or dropped (abandoned: nothing more to record)
		case stopping || s.closing:
			if c.rec != nil {
				s.finishCookRecord(c, api.ResultCancelled, s.cookCancelReason(c))
			}
		default:
			s.cookFailed[hash] = err
			s.retryCook(c.r, err)
			s.log.Warn("cook failed", zap.String("recipe", c.r.ShortHash()), zap.Error(err),
				zap.Strings("output", c.tail.tail()))
			if c.rec != nil {
				c.rec.Output = c.tail.tail()
				c.rec.ErrorCode = errorCode(err)
				s.finishCookRecord(c, api.ResultFailed, err.Error())
			}
		}
	}
	s.maybeStart()
}
