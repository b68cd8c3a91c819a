// Package dockerctl turns recipes into images on a Docker engine: the
// cooked dependency image (keyed by the recipe hash) and the code build on
// top of it, through BuildKit with a build context chefd makes itself.
package dockerctl

import (
	"time"
)

// Phase is one timed part of a cook or build.
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
}

// Crates counts the crates cargo compiled.
type Crates struct {
	ThirdParty int      `json:"third_party"`
	Local      int      `json:"local"`
	Names      []string `json:"names,omitempty"` // "name vX.Y.Z", in compile order
	// ThirdPartyNames are the third-party ones among Names.
	ThirdPartyNames []string `json:"third_party_names,omitempty"`
}

// CookResult describes a cooked dependency image.
type CookResult struct {
	Tag      string        `json:"tag"`      // <image>-cooked:<recipe hash 16>
	ImageID  string        `json:"image_id"` // sha256:...
	Skipped  bool          `json:"skipped"`  // the image already existed
	Duration time.Duration `json:"duration_ns"`
	Compiled Crates        `json:"compiled"`
	Phases   []Phase       `json:"phases"`
	// Seed is what the cook started from: the short hash of the recipe
	// whose third-party artifacts the cook cache held (a delta cook),
	// "interrupted" (a cook of the same key that did not finish), or ""
	// (a cook from nothing).
	Seed string `json:"seed,omitempty"`
	// SeedImage is the image that filled an empty cook cache before the
	// cook (a cooked image of another recipe with the same cook key, on
	// the engine or from the cooked repository); Seed is its recipe.
	SeedImage string `json:"seed_image,omitempty"`
	// Pulled is the registry reference the cooked image was pulled from
	// (Settings.CookedRepo) instead of cooked; Pushed the one it was
	// pushed to.
	Pulled string `json:"pulled,omitempty"`
	Pushed string `json:"pushed,omitempty"`
	// LayerOn is the image the cooked image is a layer on (deltalayer.go:
	// a tag of the newest cooked image of the cook key); "" when it is a
	// whole copy. Flattened: a layer that hid too much of its base was
	// made a whole copy.
	LayerOn   string `json:"layer_on,omitempty"`
	Flattened bool   `json:"flattened,omitempty"`
	// Warnings: the registry could not serve or take the image (the cook
	// went on without it).
	Warnings []string `json:"warnings,omitempty"`
}

// ContextStats is what a code build's context held and cost on the way
// to the engine.
type ContextStats struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"` // the files' sizes
	// Sent is the bytes on the wire (the tar, gzip-compressed when Gzip:
	// an engine over the network, WithCompression).
	Sent int64 `json:"sent"`
	Gzip bool  `json:"gzip,omitempty"`
	// Upload is the time from the first byte written to the last one the
	// engine read.
	Upload time.Duration `json:"upload_ns"`
}

// BuildResult describes a finished code build.
type BuildResult struct {
	Image     string `json:"image"`    // <image>:<tag>
	ImageID   string `json:"image_id"` // sha256:...
	CookedTag string `json:"cooked_tag"`
	// Engine is the Docker engine that built it (its DOCKER_HOST address).
	Engine string `json:"engine,omitempty"`
	// Mode is how the code build compiled the workspace's crates.
	Mode     Mode          `json:"mode"`
	Cook     *CookResult   `json:"cook,omitempty"` // set when the build had to cook first
	Duration time.Duration `json:"duration_ns"`
	Compiled Crates        `json:"compiled"`
	Phases   []Phase       `json:"phases"`
	// Context: the code build's context (nil when the build did not start).
	Context *ContextStats `json:"context,omitempty"`
	// Warnings are the lines of a warning about the build (a large
	// context: its largest files and the .dockerignore lines that would
	// leave them out), also sent as progress output.
	Warnings []string `json:"warnings,omitempty"`
	// Inputs is what the build shipped from the workspace (see
	// WorkspaceBuilder.Unchanged).
	Inputs *Inputs `json:"-"`
	// Images are the service images of a workspace with several
	// (Settings.Images), in the configuration's order; Image and ImageID
	// are then the first one's.
	Images []ImageResult `json:"images,omitempty"`
	// Unchanged: one image (the shorthand), and its tag named this ID
	// before the build: its binaries are identical, so BuildKit's
	// content-based cache made the same image (docker compose up -d
	// leaves it alone).
	Unchanged bool `json:"unchanged,omitempty"`
}

// ImageResult is what a build did to one service image.
type ImageResult struct {
	Service string `json:"service"`
	Image   string `json:"image"`    // <name>:<tag>
	ImageID string `json:"image_id"` // sha256:...
	// Changed: the image moved to a new ID. An image whose binaries,
	// runtime base, entrypoint and labels (but the commit) equal those of
	// the image its tag named keeps that image.
	Changed bool `json:"changed"`
	// Reason says why it changed or not ("binaries identical", "api
	// changed", "new image", "runtime image changed", ...).
	Reason string `json:"reason"`
}

// EventKind classifies progress events.
type EventKind string

const (
	EventStep  EventKind = "step"  // a build step started or finished
	EventLog   EventKind = "log"   // a line of output (cargo, rustc)
	EventError EventKind = "error" // the build failed
	// EventWarning: something went wrong that the build went on without
	// (a registry that could not serve a cooked image)
	EventWarning EventKind = "warning"
	// EventInputs: the context is complete; Event.Inputs says what it holds.
	EventInputs EventKind = "inputs"
)

// Event is one progress event of a cook or build.
type Event struct {
	Time     time.Time     `json:"time"`
	Kind     EventKind     `json:"kind"`
	Step     string        `json:"step,omitempty"`
	Text     string        `json:"text,omitempty"`
	Done     bool          `json:"done,omitempty"`
	Cached   bool          `json:"cached,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Inputs   *Inputs       `json:"-"` // EventInputs
}

// Progress receives events; it must not block for long. nil discards.
type Progress func(Event)
