// The scheduler's status snapshot.

package daemon

import (
	"time"
)

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
