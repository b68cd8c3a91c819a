package daemon

import (
	"sync"
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

// bus fans events out to subscribers. Publishing never blocks: a
// subscriber that does not keep up loses events and later gets a
// "dropped" event with the count.
type bus struct {
	mu     sync.Mutex
	seq    int64
	subs   map[*sub]struct{}
	closed bool
}

type sub struct {
	ch      chan Event
	dropped int
}

func newBus() *bus { return &bus{subs: map[*sub]struct{}{}} }

func (b *bus) publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.seq++
	ev.Seq = b.seq
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	for s := range b.subs {
		if s.dropped > 0 {
			select {
			case s.ch <- Event{Seq: ev.Seq, Time: ev.Time, Type: EventDropped, Count: s.dropped}:
				s.dropped = 0
			default:
				s.dropped++
				continue
			}
		}
		select {
		case s.ch <- ev:
		default:
			s.dropped++
		}
	}
}

// subscribe returns a channel of events and a function that ends the
// subscription. The channel is closed when the bus closes or cancel runs.
func (b *bus) subscribe(buffer int) (<-chan Event, func()) {
	s := &sub{ch: make(chan Event, buffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	b.subs[s] = struct{}{}
	return s.ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[s]; ok {
			delete(b.subs, s)
			close(s.ch)
		}
	}
}

func (b *bus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for s := range b.subs {
		close(s.ch)
	}
	b.subs = nil
}
