package daemon

import (
	"context"
	"errors"
	"testing"

	"github.com/chefd/chefd/daemon/api"
)

// TestSchedCancel: a cancel request stops the running build (cancelled,
// "by a request", its waiter answered), then the queued one; a build that
// is neither is not found, and nothing else starts.
func TestSchedCancel(t *testing.T) {
	a := fakeRecipe("a")
	f := newFakeBuilder(a)
	h := newHarness(t, f, a, nil)
	tk := h.submit(api.BuildRequest{Wait: true})
	build := h.next("build", a)
	rec := h.event(api.EventBuildStart, nil).Record
	got, err := h.s.Cancel(0)
	must(t, err == nil && got.ID == rec.ID, "cancel: %v %v", got, err)
	build.waitCancelled(t)
	done := h.done(api.EventBuildDone, rec.ID)
	must(t, done.Result == api.ResultCancelled && done.Error == "cancelled by a request", "%v", done)
	must(t, h.wait(tk).Result == api.ResultCancelled, "the waiter was not told")

	_, err = h.s.Cancel(0)
	var ae *api.APIError
	must(t, errors.As(err, &ae) && ae.Code == api.CodeNotFound, "nothing to cancel: %v", err)
	_, err = h.s.Cancel(rec.ID)
	must(t, errors.As(err, &ae) && ae.Code == api.CodeNotFound, "a finished build: %v", err)

	// a queued build: the running one ignores its cancellation for a while
	f.setStubborn(true)
	h.code("a.rs")
	first := h.next("build", a)
	h.code("b.rs")
	first.waitCancelled(t)
	st := h.status()
	must(t, st.Pending != nil, "no queued follow-up")
	got, err = h.s.Cancel(st.Pending.ID)
	must(t, err == nil && got.Result == api.ResultCancelled, "cancel queued: %v %v", got, err)
	first.finish(context.Canceled)
	h.done(api.EventBuildDone, st.Current.ID)
	st = h.status()
	must(t, st.Pending == nil && st.Current == nil, "left over: current %v pending %v", st.Current, st.Pending)
	must(t, f.count("build") == 2, "%d builds, want 2", f.count("build"))
}
