package daemon

import (
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
)

// Cancel stops the build with this ID: the running one (its build step is
// cancelled, and it ends as cancelled once the engine has stopped it) or
// the queued one (it ends at once). ID 0 means the running build, else the
// queued one. What the cancelled build would have built is not lost: the
// next build ships the whole workspace, as every build does.
//
// Cooks are not cancelled: a cook of the current recipe is what every
// later build waits for, and one of an old recipe is cancelled already.
func (s *Scheduler) Cancel(id int64) (api.Record, error) {
	var (
		rec   api.Record
		found bool
	)
	err := s.do(func() {
		b := s.build
		if b != nil && (id == 0 || b.rec.ID == id) && b.state != stateStopping {
			s.move(&b.state, stateStopping, b.label())
			b.stopAs = api.ResultCancelled
			b.stopWhy = "cancelled by a request"
			s.log.Info("cancelling build on request", zap.Int64("id", b.rec.ID))
			b.cancel()
			b.timer = time.AfterFunc(s.opts.CancelGrace, func() { s.post(func() { s.dropBuild(b) }) })
			rec, found = *b.rec.Clone(), true
			return
		}
		if b != nil && b.rec.ID == id { // already stopping
			rec, found = *b.rec.Clone(), true
			return
		}
		if p := s.pending; p != nil && (id == 0 || p.rec.ID == id) {
			s.pending = nil
			p.rec.Result, p.rec.Error, p.rec.Waiting = api.ResultCancelled, "cancelled by a request", ""
			p.rec.Finished = time.Now()
			s.log.Info("cancelled queued build on request", zap.Int64("id", p.rec.ID))
			s.finishBuild(p)
			rec, found = *p.rec.Clone(), true
		}
	})
	if err != nil {
		return api.Record{}, err
	}
	if !found {
		what := "no build is running or queued"
		if id != 0 {
			what = fmt.Sprintf("build #%d is not running or queued", id)
		}
		return api.Record{}, &api.APIError{Code: api.CodeNotFound, Status: http.StatusNotFound, Message: what}
	}
	return rec, nil
}
