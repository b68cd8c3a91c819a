// The scheduler's answers to build requests (chefd build).

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

// Submit takes a build request. It settles (Options.Settle), recomputes
// the recipe, and answers with a build of what the workspace holds now:
// the last successful build when the workspace still holds exactly what it
// shipped (Ticket.Final; not with Force), the running one when it ships
// exactly that, else the queued one.
func (s *Scheduler) Submit(ctx context.Context, req api.BuildRequest) (*Ticket, error) {
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
		if err := s.replan(api.TriggerRequest); err != nil {
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
				s.cooked[r.Hash] = &api.CookedImage{Recipe: r.Hash, Tag: tag, Since: time.Now()}
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
	exact := req.Exact || req.Urgent // the hotfix lane builds what ships
	var (
		reuse, run     *api.Record
		reuseIn, runIn *dockerctl.Inputs
		runMode        dockerctl.Mode
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
			if s.lastOK != nil && s.lastOKIn != nil && s.lastOK.Recipe == r.Hash && s.build == nil && s.pending == nil &&
				modeAnswers(s.lastOK.Mode, exact) {
				reuse, reuseIn = s.lastOK, s.lastOKIn
			}
			if b := s.build; b != nil && b.state != stateStopping && b.r.Hash == r.Hash {
				if b.inputs == nil {
					ready = b.ready
					return
				}
				job, run, runIn, runMode = b, b.rec, b.inputs, b.rec.Mode
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
	runSame := run != nil && s.unchanged(ctx, r, runIn)
	runOK := runSame && modeAnswers(runMode, exact)
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
			rec := s.lastOK.Clone()
			rec.Reused, rec.GitHeld = true, held
			t = &Ticket{Record: *rec}
			s.log.Info("the workspace holds what the last successful build shipped", zap.Int64("id", rec.ID))
			return
		}
		if runOK && job.rec.Result.Done() && job.rec.Result != api.ResultSuperseded && job.rec.Result != api.ResultCancelled {
			// the build it was checked against ended meanwhile: that is the answer
			rec := job.rec.Clone()
			rec.GitHeld = held
			t = &Ticket{Record: *rec}
			return
		}
		delete(s.cookFailed, s.cur.Hash) // a request retries a failed cook
		w := make(chan api.Record, 1)
		tr := trigger{kind: api.TriggerRequest, urgent: req.Urgent, force: req.Force, exact: exact, waiter: w}
		if runOK {
			tr.join = job
		} else if run != nil && !runSame {
			tr.stale = job // the running build ships other content (not just another mode)
		}
		j := s.request(tr)
		t = &Ticket{Record: *j.rec.Clone(), done: w, held: held}
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
func (s *Scheduler) Build(ctx context.Context, req api.BuildRequest) (api.Record, error) {
	t, err := s.Submit(ctx, req)
	if err != nil {
		return api.Record{}, err
	}
	if !req.Wait {
		return t.Record, nil
	}
	return t.Wait(ctx)
}

func (s *Scheduler) notWarm(hash string) *api.NotWarmError {
	e := &api.NotWarmError{Recipe: hash, LastCook: s.lastCook}
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
