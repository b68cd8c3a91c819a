package watcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chefd/chefd/inputs"
)

// Sync returns once every change made under the root before the call has
// been handed to the reader of Batches (or nothing was pending).
//
// It uses watchman's cookie technique: inotify reports one instance's events
// in order, so once the event of a file Sync creates in the root arrives,
// every earlier event has been read. The batch being collected is then
// emitted at once, without waiting for the quiet period, and Sync waits until
// the reader has received it. While git holds batches (a checkout or rebase
// in progress) the held changes are not forced out. When the cookie cannot
// be written or its event does not arrive in time (the root is polled after
// running out of inotify watches), Sync falls back to waiting twice the
// quiet period.
func (w *Watcher) Sync(ctx context.Context) error {
	name := fmt.Sprintf("%s%d-%d", inputs.CookiePrefix, os.Getpid(), w.syncSeq.Add(1))
	seen := make(chan struct{})
	if !w.do(func() { w.cookies[name] = seen }) {
		return fmt.Errorf("watch %s: closed", w.root)
	}
	defer w.do(func() { delete(w.cookies, name) })
	cookie := filepath.Join(w.root, name)
	wait := 2 * w.cfg.quiet
	if err := os.WriteFile(cookie, nil, 0o600); err != nil {
		w.log.Debug("sync: cannot write a cookie, waiting instead")
		return sleepCtx(ctx, wait)
	}
	defer os.Remove(cookie)
	timeout := time.NewTimer(w.cfg.maxWait + wait)
	defer timeout.Stop()
	select {
	case <-seen:
	case <-timeout.C:
		return nil // no event came (polled root): the wait has been long enough
	case <-ctx.Done():
		return ctx.Err()
	}
	var received chan struct{}
	w.do(func() {
		if w.hasWork() && !w.git.busy {
			w.flush(time.Now())
		}
		if w.outReady {
			received = make(chan struct{})
			w.outWaiters = append(w.outWaiters, received)
		}
	})
	if received == nil {
		return nil
	}
	select {
	case <-received:
		return nil
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cookieEvent handles an event on a Sync cookie; it reports whether the
// event was one.
func (w *Watcher) cookieEvent(rel string) bool {
	if !strings.HasPrefix(rel, inputs.CookiePrefix) || strings.Contains(rel, "/") {
		return false
	}
	if ch, ok := w.cookies[rel]; ok {
		close(ch)
		delete(w.cookies, rel)
	}
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
