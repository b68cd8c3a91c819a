// The scheduler's shutdown, and the history kept across restarts.

package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
)

func (s *Scheduler) shutdown() {
	s.closing = true
	s.log.Info("stopping: cancelling builds and cooks")
	s.bus.publish(api.Event{Type: api.EventStopping})
	if p := s.pending; p != nil {
		s.pending = nil
		p.rec.Result, p.rec.Error, p.rec.Waiting = api.ResultCancelled, "cancelled: the daemon is stopping", ""
		p.rec.Finished = time.Now()
		s.finishBuild(p)
	}
	if b := s.build; b != nil && b.state != stateStopping {
		s.move(&b.state, stateStopping, b.label())
		b.stopAs = api.ResultCancelled
		b.cancel()
	}
	for _, c := range s.cooks {
		if c.state != stateStopping {
			s.move(&c.state, stateStopping, c.label())
			c.cancel()
		}
	}
	grace := time.NewTimer(s.opts.CancelGrace)
	defer grace.Stop()
	for s.build != nil || len(s.cooks) > 0 || s.gcRunning > 0 {
		select {
		case f := <-s.calls:
			f()
		case <-grace.C:
			s.log.Warn("builds or cooks did not stop in time; leaving them",
				zap.Bool("build", s.build != nil), zap.Int("cooks", len(s.cooks)))
			if b := s.build; b != nil {
				s.dropBuild(b)
			}
			s.bus.close()
			return
		}
	}
	s.bus.close()
}

// persisted is the content of Options.StateFile.
type persisted struct {
	LastCook time.Duration `json:"last_cook_ns"`
	History  []api.Record  `json:"history"` // oldest first
}

func (s *Scheduler) loadState() {
	if s.opts.StateFile == "" {
		return
	}
	data, err := os.ReadFile(s.opts.StateFile)
	if err != nil {
		return
	}
	var p persisted
	if err := json.Unmarshal(data, &p); err != nil {
		s.log.Warn("ignoring unreadable state file", zap.String("file", s.opts.StateFile), zap.Error(err))
		return
	}
	s.lastCook = p.LastCook
	for i := range p.History {
		rec := p.History[i]
		if !rec.Result.Done() {
			rec.Result, rec.Error = api.ResultCancelled, "the daemon stopped"
		}
		s.hist.add(&rec)
		s.nextID = max(s.nextID, rec.ID)
	}
}

// saveState hands a snapshot of the history to the state writer: the
// loop never waits for the disk.
func (s *Scheduler) saveState() {
	if s.saver == nil {
		return
	}
	p := persisted{LastCook: s.lastCook, History: make([]api.Record, 0, len(s.hist.recs))}
	for _, r := range s.hist.recs {
		p.History = append(p.History, *r.Clone())
	}
	s.saver.save(p)
}

// stateWriter writes snapshots of the history to the state file on its own
// goroutine. A snapshot not yet written is replaced by a newer one.
type stateWriter struct {
	path string
	log  *zap.Logger
	ch   chan persisted
	done chan struct{}
}

func newStateWriter(path string, log *zap.Logger) *stateWriter {
	w := &stateWriter{path: path, log: log, ch: make(chan persisted, 1), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for p := range w.ch {
			w.write(p)
		}
	}()
	return w
}

func (w *stateWriter) save(p persisted) {
	for {
		select {
		case w.ch <- p:
			return
		default:
			select { // drop the older snapshot still waiting
			case <-w.ch:
			default:
			}
		}
	}
}

// close writes the last snapshot and stops.
func (w *stateWriter) close() {
	close(w.ch)
	<-w.done
}

func (w *stateWriter) write(p persisted) {
	data, err := json.Marshal(p)
	if err == nil {
		tmp := w.path + ".tmp"
		if err = os.MkdirAll(filepath.Dir(tmp), 0o700); err == nil {
			if err = os.WriteFile(tmp, data, 0o600); err == nil {
				err = os.Rename(tmp, w.path)
			}
		}
	}
	if err != nil {
		w.log.Debug("cannot save state", zap.Error(err))
	}
}
