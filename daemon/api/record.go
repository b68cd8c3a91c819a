package api

import (
	"fmt"
	"strings"
	"time"

	"github.com/chefd/chefd/dockerctl"
)

// Result is the outcome of a build or cook.
type Result string

const (
	ResultQueued     Result = "queued"     // waiting: for a cook, or for the previous build to stop
	ResultRunning    Result = "running"    // the builder works on it
	ResultOK         Result = "ok"         // finished; ImageID is set
	ResultFailed     Result = "failed"     // finished with an error
	ResultSuperseded Result = "superseded" // cancelled because newer changes arrived; a follow-up build takes over
	ResultCancelled  Result = "cancelled"  // cancelled: the daemon stopped, or a cook's recipe became obsolete
	// ResultInterrupted: the daemon died while it ran (kill -9, a crash);
	// the next daemon records it so.
	ResultInterrupted Result = "interrupted"
)

// Done reports whether the result is final.
func (r Result) Done() bool { return r != ResultQueued && r != ResultRunning && r != "" }

// JobKind says whether a record is a build or a cook.
type JobKind string

// Record kinds.
const (
	KindBuild JobKind = "build"
	KindCook  JobKind = "cook"
)

// Trigger is what made a build or cook run.
type Trigger string

// Triggers.
const (
	TriggerWatch   Trigger = "watch"   // the watcher saw changes
	TriggerRequest Trigger = "request" // chefd build (or the API)
	TriggerStartup Trigger = "startup" // the daemon started
	TriggerRetry   Trigger = "retry"   // a cook retried after the engine came back
)

// Record describes one build or cook: why it ran, its phases, what it
// compiled and how it ended.
type Record struct {
	ID      int64   `json:"id"`
	Kind    JobKind `json:"kind"`             // "build" or "cook"
	Recipe  string  `json:"recipe,omitempty"` // recipe hash
	Trigger Trigger `json:"trigger"`          // "watch", "request", "startup"
	Urgent  bool    `json:"urgent,omitempty"`
	// Changed lists the files whose changes the build includes (at most
	// 50; ChangedCount has the total).
	Changed      []string `json:"changed,omitempty"`
	ChangedCount int      `json:"changed_count,omitempty"`
	// RecipeDiff explains a new recipe (recipe.Diff against the recipe of
	// the previous build, or for a cook the previous recipe).
	RecipeDiff []string `json:"recipe_diff,omitempty"`
	// Batches is the number of watcher batches coalesced into this build;
	// Requests the number of build requests it answers.
	Batches  int `json:"batches,omitempty"`
	Requests int `json:"requests,omitempty"`
	// Waiting says what a queued build waits for.
	Waiting  string            `json:"waiting,omitempty"`
	Queued   time.Time         `json:"queued"`
	Started  time.Time         `json:"started,omitzero"`
	Finished time.Time         `json:"finished,omitzero"`
	Duration time.Duration     `json:"duration_ns,omitempty"` // Started to Finished
	Phases   []dockerctl.Phase `json:"phases,omitempty"`
	Compiled dockerctl.Crates  `json:"compiled"`
	// Seed is what a cook started from (dockerctl.CookResult.Seed).
	Seed string `json:"seed,omitempty"`
	// SeedImage filled the cook's empty cook cache
	// (dockerctl.CookResult.SeedImage).
	SeedImage string `json:"seed_image,omitempty"`
	// Pulled and Pushed: the registry reference a cook pulled its image
	// from instead of cooking, or pushed it to (dockerctl.CookResult).
	Pulled string `json:"pulled,omitempty"`
	Pushed string `json:"pushed,omitempty"`
	// Warnings of a cook the registry could not serve.
	Warnings []string `json:"warnings,omitempty"`
	Result   Result   `json:"result"`
	Error    string   `json:"error,omitempty"`
	// StuckSince: the running job printed nothing since then, for longer
	// than the daemon's stuck-after (possibly stuck); zero otherwise.
	StuckSince time.Time `json:"stuck_since,omitzero"`
	// ErrorCode classifies a failure the client acts on:
	// CodeEngineUnreachable (the engine was down or went away).
	ErrorCode string `json:"error_code,omitempty"`
	// SupersededBy is the ID of the build that took over.
	SupersededBy int64  `json:"superseded_by,omitempty"`
	Image        string `json:"image,omitempty"`
	ImageID      string `json:"image_id,omitempty"`
	// Images: each service image of a workspace with several, changed or
	// not and why (dockerctl.BuildResult.Images).
	Images []dockerctl.ImageResult `json:"images,omitempty"`
	// Unchanged: one image (the shorthand), and its tag named this ID
	// before the build (dockerctl.BuildResult.Unchanged).
	Unchanged bool   `json:"unchanged,omitempty"`
	CookedTag string `json:"cooked_tag,omitempty"`
	// Mode is how a build compiles the workspace's crates: "loop"
	// (incremental) or "exact" (what ships).
	Mode dockerctl.Mode `json:"mode,omitempty"`
	// Reused is set on the answer to a build request when nothing changed
	// since this (successful) build: no new build ran.
	Reused bool `json:"reused,omitempty"`
	// GitHeld is set on the answer to a build request made while git was in
	// the middle of an operation (the file that said so): the build is of
	// what was on disk, which git may still change.
	GitHeld string `json:"git_held,omitempty"`
	// Output holds the last lines of output of a failed build.
	Output []string `json:"output,omitempty"`
}

// Why summarises why the record ran, one line per reason.
func (r *Record) Why() []string {
	var out []string
	switch r.Trigger {
	case TriggerStartup:
		out = append(out, "daemon started")
	case TriggerRequest:
		if r.ChangedCount == 0 && len(r.RecipeDiff) == 0 {
			out = append(out, "requested")
		}
	}
	for _, d := range r.RecipeDiff {
		out = append(out, "recipe: "+d)
	}
	if n := r.ChangedCount; n > 0 {
		files := strings.Join(r.Changed, ", ")
		if n > len(r.Changed) {
			files += fmt.Sprintf(" and %d more", n-len(r.Changed))
		}
		noun := "files"
		if n == 1 {
			noun = "file"
		}
		out = append(out, fmt.Sprintf("%d %s changed: %s", n, noun, files))
	}
	return out
}

// String is the record in one line: "#id kind result error".
func (r Record) String() string {
	return strings.TrimSpace(fmt.Sprintf("#%d %s %s %s", r.ID, r.Kind, r.Result, r.Error))
}

// Clone copies the record, with its own slices.
func (r *Record) Clone() *Record {
	if r == nil {
		return nil
	}
	c := *r
	c.Changed = append([]string(nil), r.Changed...)
	c.RecipeDiff = append([]string(nil), r.RecipeDiff...)
	c.Phases = append([]dockerctl.Phase(nil), r.Phases...)
	c.Output = append([]string(nil), r.Output...)
	c.Warnings = append([]string(nil), r.Warnings...)
	c.Compiled.Names = append([]string(nil), r.Compiled.Names...)
	return &c
}
