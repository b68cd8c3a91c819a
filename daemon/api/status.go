package api

import (
	"time"

	"github.com/chefd/chefd/dockerctl"
)

// CookedImage is a cooked image the scheduler knows exists.
type CookedImage struct {
	Recipe  string    `json:"recipe"`
	Tag     string    `json:"tag,omitempty"`
	ImageID string    `json:"image_id,omitempty"`
	Since   time.Time `json:"since"`
}

// ServiceImage is the state of one service image of a workspace with
// several: what the daemon's last successful build did with it, and the
// build that last moved it to a new ID.
type ServiceImage struct {
	dockerctl.ImageResult
	// Build is the ID of the daemon's last successful build of it.
	Build int64 `json:"build"`
	// ChangedIn is the build that made its current image (0: none of the
	// daemon's builds: it was already there), ChangedAt when.
	ChangedIn int64     `json:"changed_in,omitempty"`
	ChangedAt time.Time `json:"changed_at,omitzero"`
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
	// Images: each service image, by service name order (several images).
	Images   []ServiceImage `json:"images,omitempty"`
	LastCook time.Duration  `json:"last_cook_ns,omitempty"`
	Changes  int64          `json:"changes"` // batches seen
	Manual   bool           `json:"manual,omitempty"`
	// Mode is the mode of the daemon's builds ("loop" or "exact"); a
	// request may still ask for an exact build.
	Mode dockerctl.Mode `json:"mode,omitempty"`
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
	StateQueued      State = "queued"       // a build waits (for a cook, or a cancelled build to stop)
	StateCooking     State = "cooking"      // a cook runs, no build
	StateBuilding    State = "building"     // a build runs
	StateRecipeError State = "recipe-error" // the recipe cannot be computed (RecipeError says why); builds wait for it
	StateStopping    State = "stopping"
)
