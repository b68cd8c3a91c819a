// The scheduler's shutdown, and the history kept across restarts.

package daemon

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
)

func (s *Scheduler) shutdown() {
	s.closing = true
	defer s.saveFinalState()
	s.stopRetry()
	s.log.Info("stopping: cancelling builds and cooks")
	s.bus.publish(api.Event{Type: api.EventStopping})
	if p := s.pending; p != nil {
		s.cancelPending(p, "cancelled: the daemon is stopping")
	}
	if b := s.build; b != nil && b.state != stateStopping {
		s.stopBuild(b, api.ResultCancelled, "", false) // Run waits CancelGrace for it
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
	// Running are the builds and cooks that ran when the snapshot was
	// taken: a daemon killed (kill -9, a crash) leaves them here, and the
	// next one records them as interrupted.
	Running []api.Record `json:"running,omitempty"`
	// LastID is the highest ID handed out, or reserved (idBlock) while
	// the daemon runs: the next daemon starts above it, so that no ID is
	// ever used twice, even after a crash.
	LastID int64 `json:"last_id,omitempty"`
}

// idBlock is how many IDs the scheduler reserves on disk at a time: the
// loop waits for the disk once per idBlock jobs, and a crash skips at
// most idBlock IDs.
const idBlock = 10

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
	s.nextID = p.LastID
	for i := range p.History {
		rec := p.History[i]
		if !rec.Result.Done() {
			interrupted(&rec)
		}
		s.hist.add(&rec)
		s.nextID = max(s.nextID, rec.ID)
	}
	for i := range p.Running {
		rec := p.Running[i]
		interrupted(&rec)
		s.log.Warn("the previous daemon stopped while this ran; recorded as interrupted",
			zap.Int64("id", rec.ID), zap.String("kind", string(rec.Kind)))
		s.hist.add(&rec)
		s.nextID = max(s.nextID, rec.ID)
	}
	s.reserved = s.nextID
}

// interrupted marks a record of a job that was running when its daemon
// died.
func interrupted(rec *api.Record) {
	rec.Result, rec.Waiting = api.ResultInterrupted, ""
	rec.Error = "interrupted: the daemon stopped while it ran (killed, or it crashed)"
}

// saveState hands a snapshot of the history and the running jobs to the
// state writer: the loop does not wait for the disk. The returned channel
// is closed once the snapshot (or a newer one) is written.
func (s *Scheduler) saveState() <-chan struct{} {
	if s.saver == nil {
		return closedChan
	}
	p := persisted{LastCook: s.lastCook, History: make([]api.Record, 0, len(s.hist.recs)), LastID: s.reserved}
	for _, r := range s.hist.recs {
		p.History = append(p.History, *r.Clone())
	}
	if b := s.build; b != nil && b.rec.Result == api.ResultRunning {
		p.Running = append(p.Running, *b.rec.Clone())
	}
	for _, c := range s.cooks {
		if c.rec != nil && c.rec.Result == api.ResultRunning {
			p.Running = append(p.Running, *c.rec.Clone())
		}
	}
	return s.saver.save(p)
}

// saveFinalState saves the state of a daemon that stops: the IDs it
// reserved but did not use are free again.
func (s *Scheduler) saveFinalState() {
	s.reserved = s.nextID
	s.saveState()
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// waitWritten waits until written is closed or ctx is done: a job starts
// once its running record is on disk, so that a crash leaves it there.
func waitWritten(ctx context.Context, written <-chan struct{}) {
	select {
	case <-written:
	case <-ctx.Done():
	}
}

// stateWriter writes snapshots of the history to the state file on its own
// goroutine. A snapshot not yet written is replaced by a newer one (which
// then answers for both).
type stateWriter struct {
	path string
	log  *zap.Logger
	ch   chan snapshot
	done chan struct{}
}

// snapshot is a state to write, and the channels to close once it is.
type snapshot struct {
	p       persisted
	written []chan struct{}
}

func newStateWriter(path string, log *zap.Logger) *stateWriter {
	w := &stateWriter{path: path, log: log, ch: make(chan snapshot, 1), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for snap := range w.ch {
			w.write(snap.p)
			for _, c := range snap.written {
				close(c)
			}
		}
	}()
	return w
}

// save queues p; the channel is closed once it is written. It is called
// from the scheduler's loop only.
func (w *stateWriter) save(p persisted) <-chan struct{} {
	written := make(chan struct{})
	snap := snapshot{p: p, written: []chan struct{}{written}}
	for {
		select {
		case w.ch <- snap:
			return written
		default:
			select { // replace the older snapshot still waiting
			case old := <-w.ch:
				snap.written = append(snap.written, old.written...)
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
