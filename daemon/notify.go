package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
)

// NotifyFunc shows a desktop notification (internal/notify's Notifier).
type NotifyFunc func(ctx context.Context, title, body string) error

// notification is what a finished build or cook that no client asked for
// says on the desktop: its result, its time and, when it failed, the first
// line of its error. ok false: nothing to say (a request's build, whose
// client shows it; a superseded or cancelled one, another follows).
func notification(ev api.Event) (title, body string, ok bool) {
	r := ev.Record
	if r == nil {
		return "", "", false
	}
	what := "build"
	if r.Kind == api.KindCook {
		what = "cook"
	}
	if ev.Type == api.EventStuck {
		// whoever asked: a client waiting on it sees no more than this
		return fmt.Sprintf("chefd: %s #%d may be stuck", what, r.ID), ev.Message, true
	}
	if r.Trigger == api.TriggerRequest || (ev.Type != api.EventBuildDone && ev.Type != api.EventCookDone) {
		return "", "", false
	}
	switch r.Result {
	case api.ResultOK:
		title = fmt.Sprintf("chefd: %s #%d ok in %s", what, r.ID, r.Duration.Round(100*time.Millisecond))
		body = r.Image
		if r.Kind == api.KindCook {
			body = r.CookedTag
		}
		if r.Compiled.ThirdParty+r.Compiled.Local > 0 {
			body += fmt.Sprintf(" (%d crates compiled)", r.Compiled.ThirdParty+r.Compiled.Local)
		}
	case api.ResultFailed, api.ResultInterrupted:
		title = fmt.Sprintf("chefd: %s #%d %s after %s", what, r.ID, r.Result, r.Duration.Round(100*time.Millisecond))
		body = firstLine(r.Error)
	default:
		return "", "", false
	}
	return title, body, true
}

// firstLine is the first non-empty line of s, at most 200 characters.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 200 {
				l = l[:200] + "…"
			}
			return l
		}
	}
	return ""
}

// notifyLoop shows the notifications of the scheduler's events until ctx
// is done. A failed notification is logged once, then at debug level.
func notifyLoop(ctx context.Context, s *Scheduler, notify NotifyFunc, log *zap.Logger) {
	events, cancel := s.Subscribe(64)
	defer cancel()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case ev, open := <-events:
			if !open {
				return
			}
			title, body, ok := notification(ev)
			if !ok {
				continue
			}
			nctx, stop := context.WithTimeout(ctx, 5*time.Second)
			err := notify(nctx, title, body)
			stop()
			switch {
			case err != nil && !warned:
				warned = true
				log.Warn("could not show a desktop notification (notify = true)", zap.Error(err))
			case err != nil:
				log.Debug("desktop notification", zap.Error(err))
			}
		}
	}
}
