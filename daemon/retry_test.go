package daemon

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/recipe"
)

// engineDown is the fake builder behind an engine that can be down:
// HasCooked then fails as dockerctl does, and says so on probes.
type engineDown struct {
	*fakeBuilder
	mu     sync.Mutex
	down   bool
	probes chan struct{}
}

func (e *engineDown) setDown(v bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = v
}

func (e *engineDown) HasCooked(ctx context.Context, r *recipe.Recipe) (bool, error) {
	e.mu.Lock()
	down := e.down
	e.mu.Unlock()
	if down {
		select { // buffered: a probe never blocks the scheduler
		case e.probes <- struct{}{}:
		default:
		}
		return false, &dockerctl.UnreachableError{Host: "unix:///fake.sock", Err: io.EOF}
	}
	return e.fakeBuilder.HasCooked(ctx, r)
}

var errEngineLost = &dockerctl.UnreachableError{Host: "unix:///fake.sock", Err: io.ErrUnexpectedEOF, Lost: true}

// TestSchedCookRetriedWhenEngineBack: a cook that failed because the
// engine went away is tried again, with a growing wait, until the engine
// answers; the retries that find it still down leave no record, and the
// build request meanwhile fails at once as an engine failure (exit 2).
func TestSchedCookRetriedWhenEngineBack(t *testing.T) {
	a := fakeRecipe("a")
	e := &engineDown{fakeBuilder: newFakeBuilder(), probes: make(chan struct{}, 1000)}
	h := newHarness(t, e.fakeBuilder, a, func(o *options) {
		o.Builder = e
		o.EngineRetry, o.EngineRetryMax = 1, 4 // nanoseconds: the probes pace the test
	})
	first := h.next("cook", a)
	e.setDown(true)
	first.finish(errEngineLost) // the engine dies mid-cook
	failed := h.event(api.EventCookDone, nil).Record
	must(t, failed.Result == api.ResultFailed && failed.ErrorCode == api.CodeEngineUnreachable,
		"the failed cook: %+v", failed)

	// while it is down: retried (three probes), no record, and a build
	// request fails as an engine failure
	for range 3 {
		<-e.probes
	}
	tk := h.submit(api.BuildRequest{Wait: true})
	got := h.wait(tk)
	must(t, got.Result == api.ResultFailed && got.ErrorCode == api.CodeEngineUnreachable,
		"a build request while the engine is down: %+v", got)

	// back: the next retry cooks
	e.setDown(false)
	h.next("cook", a).finish(nil)
	ok := h.event(api.EventCookDone, nil).Record
	must(t, ok.Result == api.ResultOK && ok.Trigger == api.TriggerRetry, "the retried cook: %+v", ok)
	hist, err := h.s.History(0)
	must(t, err == nil, "history: %v", err)
	cooks := 0
	for _, r := range hist {
		if r.Kind == api.KindCook {
			cooks++
		}
	}
	must(t, cooks == 2, "%d cook records, want the failure and the retry that cooked", cooks)
}
