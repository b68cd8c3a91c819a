package daemon

// The answer to a build request is a build of what the workspace holds
// when the request is made, whatever the events said: the disk decides
// (Builder.Unchanged), not the batches seen.

import (
	"context"
	"testing"
	"time"

	"github.com/chefd/chefd/daemon/api"
)

// TestSchedUnheardChangeBuilds: a change no batch announced (a polled
// subtree not scanned yet, changes git holds, events not yet read) is not
// "nothing changed".
func TestSchedUnheardChangeBuilds(t *testing.T) {
	a := fakeRecipe("a")
	h := newHarness(t, newFakeBuilder(a), a, nil)
	tk := h.submit(api.BuildRequest{Wait: true})
	h.next("build", a).finish(nil)
	first := h.wait(tk)

	h.f.change() // on disk, no event
	again := h.submit(api.BuildRequest{Wait: true})
	must(t, !again.Final(), "a request after an unannounced change was answered with build #%d", again.Record.ID)
	h.next("build", a).finish(nil)
	got := h.wait(again)
	must(t, got.ID != first.ID && got.Result == api.ResultOK && !got.Reused, "answer %v", got)

	// and now the disk matches the new build: reused
	third := h.submit(api.BuildRequest{Wait: true})
	must(t, third.Final() && third.Record.ID == got.ID && third.Record.Reused, "third request %+v", third.Record)
}

// TestSchedRevertAfterFailureReuses: edit, failed build, revert: the
// workspace holds what the last successful build shipped again, so that
// build answers (it is the from-scratch result of this content).
func TestSchedRevertAfterFailureReuses(t *testing.T) {
	a := fakeRecipe("a")
	f := newFakeBuilder(a)
	h := newHarness(t, f, a, func(o *options) { o.Manual = true })
	tk := h.submit(api.BuildRequest{Wait: true})
	h.next("build", a).finish(nil)
	ok := h.wait(tk)

	f.mu.Lock()
	before := f.disk
	f.mu.Unlock()
	f.change()
	tk = h.submit(api.BuildRequest{Wait: true})
	h.next("build", a).finish(errBoom)
	must(t, h.wait(tk).Result == api.ResultFailed, "the broken build")

	f.mu.Lock()
	f.disk = before // reverted
	f.mu.Unlock()
	tk = h.submit(api.BuildRequest{Wait: true})
	must(t, tk.Final() && tk.Record.ID == ok.ID, "after the revert: %+v, want build #%d reused", tk.Record, ok.ID)
}

// TestSchedJoinOnlyWhatIsOnDisk: a request joins the running build only
// when the workspace holds what that build ships; otherwise the running
// build is superseded and the request gets the follow-up.
func TestSchedJoinOnlyWhatIsOnDisk(t *testing.T) {
	a := fakeRecipe("a")
	h := newHarness(t, newFakeBuilder(a), a, nil)
	h.code("crates/app/src/main.rs")
	first := h.next("build", a)
	firstRec := h.event(api.EventBuildStart, nil).Record

	join := h.submit(api.BuildRequest{Wait: true})
	must(t, join.Record.ID == firstRec.ID, "with the disk unchanged the request joins #%d, got #%d", firstRec.ID, join.Record.ID)

	h.f.change() // saved, but no batch yet (a polled subtree, say)
	late := h.submit(api.BuildRequest{Wait: true})
	must(t, late.Record.ID != firstRec.ID, "a request joined a build that does not ship what is on disk")
	first.waitCancelled(t)
	must(t, h.done(api.EventBuildDone, firstRec.ID).Result == api.ResultSuperseded, "the stale build is superseded")
	h.next("build", a).finish(nil)
	got := h.wait(late)
	must(t, got.ID == late.Record.ID && got.Result == api.ResultOK, "late request got %v", got)
	must(t, h.wait(join).ID == got.ID, "the earlier request is handed on to the follow-up")
}

// TestSchedSupersedeLimit: a file rewritten all the time cannot starve
// every build: after maxSupersedes builds in a row were superseded, the
// next one runs to its end.
func TestSchedSupersedeLimit(t *testing.T) {
	a := fakeRecipe("a")
	h := newHarness(t, newFakeBuilder(a), a, nil)
	h.code("gen.rs")
	var last *fakeCall
	var lastID int64
	for i := 0; i <= maxSupersedes; i++ {
		last = h.next("build", a)
		lastID = h.event(api.EventBuildStart, nil).ID
		h.code("gen.rs")
		if i < maxSupersedes {
			last.waitCancelled(t)
			must(t, h.done(api.EventBuildDone, lastID).Result == api.ResultSuperseded, "build %d superseded", i)
		}
	}
	st := h.status() // the loop has handled the batch: a supersede would have cancelled by now
	must(t, last.ctx.Err() == nil, "build #%d was superseded after %d superseded builds", lastID, maxSupersedes)
	must(t, st.Current != nil && st.Current.ID == lastID && st.Pending != nil, "current %v pending %v", st.Current, st.Pending)
	last.finish(nil)
	must(t, h.done(api.EventBuildDone, lastID).Result == api.ResultOK, "it finishes")
	next := h.next("build", a)
	nextID := h.event(api.EventBuildStart, nil).ID
	h.code("gen.rs")
	next.waitCancelled(t) // a new streak: superseded again
	must(t, h.done(api.EventBuildDone, nextID).Result == api.ResultSuperseded, "the streak starts over")
}

// TestSchedHeldStatus: a hold (git mid-operation) shows in the status at
// once, and a request made during it builds what is on disk and says so.
func TestSchedHeldStatus(t *testing.T) {
	a := fakeRecipe("a")
	since := time.Now()
	reason := "MERGE_HEAD"
	h := newHarness(t, newFakeBuilder(a), a, func(o *options) {
		o.Hold = func() (string, time.Time) { return reason, since }
	})
	st := h.status()
	must(t, st.Held == "MERGE_HEAD" && st.HeldSince.Equal(since), "status held %q since %v", st.Held, st.HeldSince)
	tk := h.submit(api.BuildRequest{Wait: true})
	h.next("build", a).finish(nil)
	got := h.wait(tk)
	must(t, got.Result == api.ResultOK && got.GitHeld == "MERGE_HEAD", "answer %v git_held %q", got, got.GitHeld)
}

// TestSchedJoinWaitsForInputs: a request made while the running build is
// still writing its context waits for it to be known, then joins that
// build when it ships what is on disk (instead of queueing another).
func TestSchedJoinWaitsForInputs(t *testing.T) {
	a := fakeRecipe("a")
	f := newFakeBuilder(a)
	gate := make(chan struct{})
	f.inputsGate = gate
	submitting := make(chan struct{}, 1)
	h := newHarness(t, f, a, func(o *options) {
		o.Settle = func(context.Context) error { submitting <- struct{}{}; return nil }
	})
	h.code("crates/app/src/main.rs")
	started := h.event(api.EventBuildStart, nil).Record
	got := make(chan *Ticket, 1)
	go func() {
		tk, err := h.s.Submit(context.Background(), api.BuildRequest{Wait: true})
		if err != nil {
			t.Error(err)
		}
		got <- tk
	}()
	<-submitting
	close(gate)
	h.next("build", a).finish(nil)
	tk := <-got
	must(t, tk != nil, "no ticket")
	ans := h.wait(tk)
	must(t, ans.ID == started.ID && ans.Result == api.ResultOK, "the request did not get the running build #%d: %v", started.ID, ans)
	must(t, h.f.count("build") == 1, "%d builds, want one for both", h.f.count("build"))
}
