// The scheduler's shutdown, and the history kept across restarts.

package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/chefd/chefd/daemon/api"

	"go.uber.org/zap"
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
	if b := s.build; b != nil && !b.stopping {
		b.stopping, b.stopAs = true, api.ResultCancelled
		b.cancel()
	}
	for _, c := range s.cooks {
		if !c.stopping {
			c.stopping = true
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

func (s *Scheduler) saveState() {
	if s.opts.StateFile == "" {
		return
	}
	p := persisted{LastCook: s.lastCook, History: make([]api.Record, 0, len(s.hist.recs))}
	for _, r := range s.hist.recs {
		p.History = append(p.History, *r)
	}
	data, err := json.Marshal(p)
	if err == nil {
		tmp := s.opts.StateFile + ".tmp"
		if err = os.MkdirAll(filepath.Dir(tmp), 0o700); err == nil {
			if err = os.WriteFile(tmp, data, 0o600); err == nil {
				err = os.Rename(tmp, s.opts.StateFile)
			}
		}
	}
	if err != nil {
		s.log.Debug("cannot save state", zap.Error(err))
	}
}
