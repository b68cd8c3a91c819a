// The scheduler's garbage collection of cooked images and target caches.

package daemon

import (
	"context"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
)

func (s *Scheduler) startGC() {
	s.gcRunning++
	keep := s.opts.KeepCooked
	go func() {
		removed, err := s.opts.Builder.GC(s.jobCtx, keep)
		s.post(func() {
			s.gcRunning--
			s.gcDone(removed, err)
		})
	}()
}

func (s *Scheduler) gcDone(removed []dockerctl.Removed, err error) {
	if err != nil {
		s.log.Warn("garbage collection of cooked images failed", zap.Error(err))
		s.bus.publish(api.Event{Type: api.EventWarning, Message: "gc: " + err.Error()})
	}
	if len(removed) == 0 {
		return
	}
	names := dockerctl.RemovedNames(removed)
	s.log.Info("removed old cooked images", zap.Strings("images", names))
	s.bus.publish(api.Event{Type: api.EventGC, Paths: names})
	for _, rm := range removed {
		if rm.Recipe != "" {
			delete(s.cooked, rm.Recipe)
		}
	}
	if s.cur != nil && s.cooked[s.cur.Hash] == nil && s.activeCook(s.cur.Hash) == nil && !s.closing {
		s.log.Warn("garbage collection removed the current recipe's cooked image; cooking it again",
			zap.String("recipe", s.cur.ShortHash()))
		s.ensureCook(s.cur, []string{"its cooked image was garbage-collected"}, api.TriggerWatch)
	}
}

// GC removes old cooked images now (keeping KeepCooked) and returns their names.
func (s *Scheduler) GC(ctx context.Context) ([]string, error) {
	removed, err := s.opts.Builder.GC(ctx, s.opts.KeepCooked)
	if derr := s.do(func() { s.gcDone(removed, nil) }); derr != nil && err == nil {
		err = derr
	}
	return dockerctl.RemovedNames(removed), err
}
