package daemon

// Stuck builds: a build or cook that printed nothing for longer than
// options.StuckAfter (a hung build script, a network fetch that never
// ends, an engine that stopped answering mid-step) is reported as
// possibly stuck: its record's StuckSince, an EventStuck on the stream
// (and a notification with notify = true). Output ends the report.

import (
	"sync"
	"time"

	"github.com/chefd/chefd/daemon/api"
)

// defaultStuckAfter is how long a job may print nothing before it is
// reported as possibly stuck.
const defaultStuckAfter = 10 * time.Minute

// watchdog keeps when each running job last printed something. Progress
// callbacks (the builder's goroutines) write it; the check reads it.
type watchdog struct {
	mu      sync.Mutex
	last    map[int64]time.Time
	flagged map[int64]bool
}

func newWatchdog() *watchdog {
	return &watchdog{last: map[int64]time.Time{}, flagged: map[int64]bool{}}
}

// saw records output of job id at t; it reports whether the job was
// flagged as stuck (its output resumed).
func (w *watchdog) saw(id int64, t time.Time) (resumed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last[id] = t
	resumed = w.flagged[id]
	delete(w.flagged, id)
	return resumed
}

// forget drops a job that ended.
func (w *watchdog) forget(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.last, id)
	delete(w.flagged, id)
}

// due returns the jobs silent for longer than after at now that were not
// flagged yet, and flags them, with when each last printed.
func (w *watchdog) due(now time.Time, after time.Duration) map[int64]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out map[int64]time.Time
	for id, t := range w.last {
		if !w.flagged[id] && now.Sub(t) > after {
			if out == nil {
				out = map[int64]time.Time{}
			}
			out[id] = t
			w.flagged[id] = true
		}
	}
	return out
}

// checkStuck flags the running jobs silent for longer than StuckAfter (on
// the scheduler's loop): their records' StuckSince and an EventStuck. A
// job that is not running any more is forgotten.
func (s *Scheduler) checkStuck(now time.Time) {
	for id, since := range s.dog.due(now, s.opts.StuckAfter) {
		rec := s.runningRecord(id)
		if rec == nil {
			s.dog.forget(id)
			continue
		}
		rec.StuckSince = since
		s.log.Warn("a job printed nothing for a while: possibly stuck")
		s.bus.publish(api.Event{Type: api.EventStuck, ID: id, Recipe: rec.Recipe, Record: rec.Clone(),
			Message: "no output since " + since.Format(time.TimeOnly)})
	}
}

// unstuck clears a job's StuckSince once it prints again (on the loop).
func (s *Scheduler) unstuck(id int64) {
	if rec := s.runningRecord(id); rec != nil {
		rec.StuckSince = time.Time{}
	}
}

// runningRecord is the record of the running build or cook id (nil: none).
func (s *Scheduler) runningRecord(id int64) *api.Record {
	if s.build != nil && s.build.rec != nil && s.build.rec.ID == id {
		return s.build.rec
	}
	for _, c := range s.cooks {
		if c.rec != nil && c.rec.ID == id {
			return c.rec
		}
	}
	return nil
}
