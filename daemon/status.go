// The scheduler's status snapshot.

package daemon

import (
	"slices"
	"strings"

	"github.com/chefd/chefd/daemon/api"
)

func (s *Scheduler) state() api.State {
	switch {
	case s.closing:
		return api.StateStopping
	case s.build != nil:
		return api.StateBuilding
	case s.cooking():
		return api.StateCooking
	case s.recipeErr != nil: // a queued build waits for the recipe: say why
		return api.StateRecipeError
	case s.pending != nil:
		return api.StateQueued
	}
	return api.StateIdle
}

// cooking reports whether the current recipe's cook runs (not just the
// check for an existing image).
func (s *Scheduler) cooking() bool {
	c := s.activeCook(s.curHash())
	return c != nil && c.state != stateChecking
}

func (s *Scheduler) curHash() string {
	if s.cur == nil {
		return ""
	}
	return s.cur.Hash
}

// Status returns a snapshot; recent is the number of history records to
// include (newest first).
func (s *Scheduler) Status(recent int) (api.Status, error) {
	var st api.Status
	err := s.do(func() {
		st = api.Status{State: s.state(), Recipe: s.curHash(), RecipeComputed: s.curAt,
			LastCook: s.lastCook, Changes: s.gen, Manual: s.opts.Manual, Mode: s.opts.Mode, CookedImages: []api.CookedImage{}}
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
				rec := c.rec.Clone()
				if c.state == stateStopping {
					rec.Waiting = "it to stop (" + s.cookCancelReason(c) + ")"
				}
				st.Cooks = append(st.Cooks, *rec)
			} else {
				st.Cooks = append(st.Cooks, api.Record{Kind: api.KindCook, Recipe: c.r.Hash, Trigger: c.trigger,
					Queued: c.queued, Result: api.ResultQueued, Waiting: "the check for an existing image"})
			}
		}
		if s.build != nil {
			st.Current = s.build.rec.Clone()
		}
		if s.pending != nil {
			st.Pending = s.pending.rec.Clone()
		}
		st.Last, st.LastOK = s.last.Clone(), s.lastOK.Clone()
		for _, im := range s.images {
			st.Images = append(st.Images, *im)
		}
		slices.SortFunc(st.Images, func(a, b api.ServiceImage) int { return strings.Compare(a.Service, b.Service) })
		if recent > 0 {
			st.Recent = s.hist.list(recent)
		}
	})
	return st, err
}

func sortCooked(l []api.CookedImage) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j].Since.After(l[j-1].Since); j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

// History returns up to n finished records, newest first (n <= 0: all).
func (s *Scheduler) History(n int) ([]api.Record, error) {
	var out []api.Record
	err := s.do(func() { out = s.hist.list(n) })
	return out, err
}

// Warn publishes a warning (from the watcher, say) on the event stream.
func (s *Scheduler) Warn(msg string) {
	s.bus.publish(api.Event{Type: api.EventWarning, Message: msg})
}
