package daemon

import (
	"sync"

	"github.com/chefd/chefd/daemon/api"
)

// maxChanged bounds the changed files kept in a record.
const maxChanged = 50

// changeSet accumulates changed paths (deduplicated, in arrival order).
type changeSet struct {
	seen  map[string]bool
	paths []string
}

func (c *changeSet) add(paths ...string) {
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	for _, p := range paths {
		if !c.seen[p] {
			c.seen[p] = true
			c.paths = append(c.paths, p)
		}
	}
}

func (c *changeSet) merge(o *changeSet) { c.add(o.paths...) }

// fill writes the set into a record (capped).
func (c *changeSet) fill(r *api.Record) {
	r.ChangedCount = len(c.paths)
	r.Changed = append([]string(nil), c.paths[:min(len(c.paths), maxChanged)]...)
}

// history is a bounded list of finished records, oldest first.
type history struct {
	max  int
	recs []*api.Record
}

func (h *history) add(r *api.Record) {
	h.recs = append(h.recs, r.Clone())
	if over := len(h.recs) - h.max; over > 0 {
		h.recs = append([]*api.Record(nil), h.recs[over:]...)
	}
}

// list returns copies, newest first, at most n (n <= 0: all).
func (h *history) list(n int) []api.Record {
	if n <= 0 || n > len(h.recs) {
		n = len(h.recs)
	}
	out := make([]api.Record, 0, n)
	for i := len(h.recs) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, *h.recs[i].Clone())
	}
	return out
}

// outputTail keeps the last lines of a build's output; safe for the
// progress goroutine and the loop.
type outputTail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (o *outputTail) add(line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lines = append(o.lines, line)
	if len(o.lines) > 2*o.max {
		o.lines = append([]string(nil), o.lines[len(o.lines)-o.max:]...)
	}
}

func (o *outputTail) tail() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.lines) > o.max {
		return append([]string(nil), o.lines[len(o.lines)-o.max:]...)
	}
	return append([]string(nil), o.lines...)
}
