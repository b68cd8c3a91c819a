// The scheduler's recipe: recomputed on a recipe batch or a request.

package daemon

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/recipe"
)

// replan recomputes the recipe; a new hash cancels obsolete cooks and
// starts the cook of the new recipe.
func (s *Scheduler) replan(trigger api.Trigger) error {
	r, err := s.opts.Plan(s.jobCtx)
	if err != nil {
		if s.recipeErr == nil || s.recipeErr.Error() != err.Error() {
			s.log.Warn("cannot compute the recipe", zap.Error(err))
			s.bus.publish(api.Event{Type: api.EventRecipeError, Message: err.Error()})
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
	if s.opts.OnRecipe != nil {
		s.opts.OnRecipe(r)
	}
	diff := capLines(recipe.Diff(old, r), 100)
	if old == nil {
		members, targets, external := r.Summary()
		s.log.Info("recipe", zap.String("recipe", r.ShortHash()), zap.Int("crates", members),
			zap.Int("targets", targets), zap.Int("external", external))
	} else {
		s.log.Info("recipe changed", zap.String("recipe", r.ShortHash()), zap.Strings("changes", diff))
	}
	s.bus.publish(api.Event{Type: api.EventRecipe, Recipe: r.Hash, Diff: diff})
	for _, c := range s.cooks {
		if c.r.Hash != r.Hash && c.state != stateStopping {
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
