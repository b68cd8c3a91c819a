package watcher

import (
	"testing"
	"time"
)

// TestDebounce drives the batch timing rules with a made-up clock: each
// case is a sequence of events and git releases, and when the batch is due.
func TestDebounce(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		ms      int
		release bool // git lets go at ms (else: an event at ms)
	}
	ev := func(ms ...int) []step {
		var s []step
		for _, m := range ms {
			s = append(s, step{ms: m})
		}
		return s
	}
	tests := []struct {
		name  string
		steps []step
		due   int // ms
	}{
		{"one event: a quiet period later", ev(0), 100},
		{"a later event pushes it back", ev(0, 50), 150},
		{"events that never stop: the max wait", ev(0, 90, 180, 270, 360, 450, 540), 500},
		{"released within the max wait: a quiet period after the release", append(ev(0), step{300, true}), 400},
		{"released past the max wait: at once (git status in a loop cannot starve it)", append(ev(0), step{2000, true}), 500},
		{"an event after a late release: still the first window", append(ev(0), step{2000, true}, step{ms: 2050}), 500},
		{"released just inside the max wait, then events: a new window from the release", append(ev(0), step{450, true}, step{ms: 500}, step{ms: 600}), 700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := debounce{quiet: 100 * time.Millisecond, maxWait: 500 * time.Millisecond}
			for _, s := range tt.steps {
				if s.release {
					d.release(at(s.ms))
				} else {
					d.event(at(s.ms))
				}
			}
			if got := d.due(); !got.Equal(at(tt.due)) {
				t.Fatalf("due at %v, want %dms", got.Sub(t0), tt.due)
			}
		})
	}
	d := debounce{quiet: time.Second, maxWait: time.Second}
	d.event(at(5))
	d.reset()
	d.event(at(7000))
	if !d.first.Equal(at(7000)) || !d.due().Equal(at(8000)) {
		t.Fatalf("after reset: first %v due %v", d.first.Sub(t0), d.due().Sub(t0))
	}
}
