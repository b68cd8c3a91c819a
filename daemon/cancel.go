package daemon

import (
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
)

// cancelledByRequest is the error of a build a request cancelled.
const cancelledByRequest = "cancelled by a request"

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
			s.log.Info("cancelling build on request", zap.Int64("id", b.rec.ID))
			s.stopBuild(b, api.ResultCancelled, cancelledByRequest, true)
			rec, found = *b.rec.Clone(), true
			return
		}
		if b != nil && b.rec.ID == id { // already stopping
			rec, found = *b.rec.Clone(), true
			return
		}
		if p := s.pending; p != nil && (id == 0 || p.rec.ID == id) {
			s.log.Info("cancelled queued build on request", zap.Int64("id", p.rec.ID))
			s.cancelPending(p, cancelledByRequest)
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
