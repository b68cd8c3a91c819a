package daemon

import (
	"sync"
	"time"

	"github.com/chefd/chefd/daemon/api"
)

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
	ch      chan api.Event
	dropped int
}

func newBus() *bus { return &bus{subs: map[*sub]struct{}{}} }

func (b *bus) publish(ev api.Event) {
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
			case s.ch <- api.Event{Seq: ev.Seq, Time: ev.Time, Type: api.EventDropped, Count: s.dropped}:
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
func (b *bus) subscribe(buffer int) (<-chan api.Event, func()) {
	s := &sub{ch: make(chan api.Event, buffer)}
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
