package watcher

import "time"

// debounce decides when the batch being collected is due. It holds times
// only and never reads the clock: every method takes "now", so its rules
// are tested with made-up clocks (debounce_test.go), the shape of
// docker compose's pkg/watch debounce.
//
// The rules: a batch is due a quiet period after its last event, but no
// later than the max wait after its first one. When git lets go of a
// batch it held, the batch waits a quiet period from that moment, unless
// it is already older than the max wait: then it is due at once (a lock
// taken again and again, by git status in a prompt or an IDE, would
// otherwise starve it).
type debounce struct {
	quiet, maxWait time.Duration

	first, last time.Time // the batch's first and last events
	window      time.Time // start of the max-wait window
	released    time.Time // when git last let go of the batch
}

// event records a change at now.
func (d *debounce) event(now time.Time) {
	if d.first.IsZero() {
		d.first, d.window = now, now
	}
	d.last = now
}

// release records that git let go of the batch at now.
func (d *debounce) release(now time.Time) {
	d.released = now
	if now.Sub(d.first) < d.maxWait {
		d.window = now
	} else {
		d.window = d.first
	}
}

// due is when the batch goes out.
func (d *debounce) due() time.Time {
	base := d.last
	if d.released.After(base) {
		base = d.released
	}
	t := base.Add(d.quiet)
	if limit := d.window.Add(d.maxWait); limit.Before(t) {
		t = limit
	}
	return t
}

// reset forgets the batch (it went out).
func (d *debounce) reset() {
	d.first, d.last, d.window, d.released = time.Time{}, time.Time{}, time.Time{}, time.Time{}
}
