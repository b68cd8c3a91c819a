package daemon

import (
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/recipe"
)

// Default backoff of the cook retried after the engine went away: 1s,
// 2s, 4s... up to 1 minute between attempts.
const (
	defaultEngineRetry    = time.Second
	defaultEngineRetryMax = time.Minute
)

// engineRetry retries the cook of the current recipe that failed because
// no engine answered: when the engine is back, the cooked image is ready
// before anyone asks for a build. A cook that finds no engine at its first
// check leaves no record (runCook), so retries while the engine is down
// do not fill the history; the wait
// doubles each time, and any cook that succeeds resets it.
type engineRetry struct {
	hash    string
	attempt int
	timer   *time.Timer
}

// retryCook schedules the next attempt at r's cook after a failure whose
// cause is the engine.
func (s *Scheduler) retryCook(r *recipe.Recipe, err error) {
	if s.closing || !dockerctl.IsUnreachable(err) {
		return
	}
	if s.retry.hash != r.Hash {
		s.stopRetry()
		s.retry.hash = r.Hash
	}
	wait := s.opts.EngineRetry << min(s.retry.attempt, 16)
	if wait > s.opts.EngineRetryMax || wait <= 0 {
		wait = s.opts.EngineRetryMax
	}
	s.retry.attempt++
	if s.retry.timer != nil {
		s.retry.timer.Stop()
	}
	s.log.Info("the engine is unreachable; the cook will be retried", zap.String("recipe", r.ShortHash()),
		zap.Duration("in", wait), zap.Int("attempt", s.retry.attempt))
	hash := r.Hash
	s.retry.timer = time.AfterFunc(wait, func() { s.post(func() { s.retryDue(hash) }) })
}

// retryDue starts the retried cook if it is still wanted: the recipe is
// still current, and no cooked image or cook of it appeared meanwhile.
func (s *Scheduler) retryDue(hash string) {
	if s.closing || s.retry.hash != hash || s.cur == nil || s.cur.Hash != hash ||
		s.cooked[hash] != nil || s.activeCook(hash) != nil {
		return
	}
	delete(s.cookFailed, hash)
	s.ensureCook(s.cur, nil, api.TriggerRetry)
}

// stopRetry forgets the pending retry (a cook succeeded, the daemon stops).
func (s *Scheduler) stopRetry() {
	if s.retry.timer != nil {
		s.retry.timer.Stop()
	}
	s.retry = engineRetry{}
}
