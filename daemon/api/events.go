package api

import (
	"time"

	"github.com/chefd/chefd/dockerctl"
)

// EventType is the type of an event of the stream.
type EventType string

// Event types of the event stream (GET /v1/events, NDJSON).
const (
	EventBatch         EventType = "batch"          // the watcher reported changes (Paths, Message = kind)
	EventRecipe        EventType = "recipe"         // a new recipe (Recipe, Diff)
	EventRecipeError   EventType = "recipe.error"   // the recipe could not be computed (Message)
	EventCookStart     EventType = "cook.start"     // a cook started (Record)
	EventCookProgress  EventType = "cook.progress"  // progress of a cook (Progress)
	EventCookDone      EventType = "cook.done"      // a cook finished (Record)
	EventBuildQueued   EventType = "build.queued"   // a build was queued (Record)
	EventBuildStart    EventType = "build.start"    // a build started (Record)
	EventBuildProgress EventType = "build.progress" // progress of a build (Progress)
	EventBuildDone     EventType = "build.done"     // a build finished: ok, failed, superseded or cancelled (Record)
	EventGC            EventType = "gc"             // cooked images were removed (Paths)
	EventWarning       EventType = "warning"        // a watcher or builder problem (Message)
	EventStopping      EventType = "stopping"       // the daemon is shutting down
	EventDropped       EventType = "dropped"        // this subscriber missed Count events (it read too slowly)
	EventStuck         EventType = "stuck"          // a build or cook printed nothing for a while (Record: StuckSince)
)

// Event is one line of the event stream.
type Event struct {
	Seq      int64            `json:"seq"`
	Time     time.Time        `json:"time"`
	Type     EventType        `json:"type"`
	ID       int64            `json:"id,omitempty"` // the build or cook record
	Recipe   string           `json:"recipe,omitempty"`
	Paths    []string         `json:"paths,omitempty"`
	Diff     []string         `json:"diff,omitempty"`
	Message  string           `json:"message,omitempty"`
	Record   *Record          `json:"record,omitempty"`
	Progress *dockerctl.Event `json:"progress,omitempty"`
	Count    int              `json:"count,omitempty"`
	Error    *APIError        `json:"error,omitempty"` // an "error" line of a build stream
}
