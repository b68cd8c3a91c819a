package daemon

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
)

// TestSchedRecipeBatchStartsCook: a recipe-affecting batch starts the cook
// of the new recipe at once, without any build request (manual mode: no
// automatic builds at all).
func TestSchedRecipeBatchStartsCook(t *testing.T) {
	a, b := fakeRecipe("a"), fakeRecipe("b")
	h := newHarness(t, newFakeBuilder(a), a, func(o *options) { o.Manual = true })
	h.recipeBatch(b, "crates/app/Cargo.toml")
	select {
	case c := <-h.f.calls:
		must(t, c.kind == "cook" && c.hash == b.Hash, "got %s of %s, want the cook of b", c.kind, api.Short(c.hash))
		ev := h.event(api.EventCookStart, nil)
		must(t, ev.Recipe == b.Hash, "cook.start of %s", api.Short(ev.Recipe))
		must(t, len(ev.Record.RecipeDiff) > 0, "the cook record says why it runs: %v", ev.Record.RecipeDiff)
		c.finish(nil)
	case <-time.After(time.Second):
		t.Fatal("no cook within 1s of the recipe batch")
	}
	rec := h.event(api.EventCookDone, nil).Record
	must(t, rec.Result == api.ResultOK && rec.Recipe == b.Hash, "cook record %v", rec)
	st := h.status()
	must(t, st.Cooked && st.Recipe == b.Hash, "status: cooked=%v recipe=%s", st.Cooked, api.Short(st.Recipe))
	must(t, st.Current == nil && st.Pending == nil && h.f.count("build") == 0, "no build without a request in manual mode")
}

// TestSchedGCAfterCook: a successful cook garbage-collects old cooked
// images, keeping KeepCooked.
func TestSchedGCAfterCook(t *testing.T) {
	a, b := fakeRecipe("a"), fakeRecipe("b")
	f := newFakeBuilder(a)
	// the name says nothing of the recipe: the record does
	f.removeGC = []dockerctl.Removed{{Name: "sha256:0123", Recipe: a.Hash}, {Name: "build cache x (1.0 MB)"}}
	h := newHarness(t, f, a, func(o *options) { o.Manual = true; o.KeepCooked = 4 })
	h.recipeBatch(b, "Cargo.lock")
	h.next("cook", b).finish(nil)
	select {
	case keep := <-f.gcs:
		must(t, keep == 4, "GC keeps %d, want 4", keep)
	case <-time.After(guard):
		t.Fatal("no GC after the cook")
	}
	ev := h.event(api.EventGC, nil)
	must(t, slices.Equal(ev.Paths, dockerctl.RemovedNames(f.removeGC)), "gc event %v", ev.Paths)
	st := h.status()
	for _, c := range st.CookedImages {
		must(t, c.Recipe != a.Hash, "the collected image of a is still listed")
	}
	// no GC when the image already existed (startup check)
	must(t, len(f.gcs) == 0, "extra GC calls")
}

// TestSchedSupersede: a newer code batch cancels the running code build,
// which is reported as superseded (not failed); the follow-up includes
// both batches, and a waiting request gets the follow-up's result.
func TestSchedSupersede(t *testing.T) {
	a := fakeRecipe("a")
	h := newHarness(t, newFakeBuilder(a), a, nil)
	h.code("crates/app/src/main.rs")
	first := h.next("build", a)
	firstRec := h.event(api.EventBuildStart, nil).Record
	ticket := h.submit(api.BuildRequest{Wait: true}) // nothing new: answered by the running build
	must(t, ticket.Record.ID == firstRec.ID, "request attached to #%d, want the running #%d", ticket.Record.ID, firstRec.ID)

	h.code("crates/ledger/src/lib.rs")
	first.waitCancelled(t)
	sup := h.done(api.EventBuildDone, firstRec.ID)
	must(t, sup.Result == api.ResultSuperseded, "first build: %v, want superseded", sup)
	must(t, sup.SupersededBy != 0, "superseded_by not set")

	second := h.next("build", a)
	secRec := h.event(api.EventBuildStart, nil).Record
	must(t, secRec.ID == sup.SupersededBy, "follow-up #%d, superseded_by #%d", secRec.ID, sup.SupersededBy)
	must(t, slices.Equal(secRec.Changed, []string{"crates/app/src/main.rs", "crates/ledger/src/lib.rs"}),
		"follow-up changes %v", secRec.Changed)
	second.finish(nil)

	got := h.wait(ticket)
	must(t, got.ID == secRec.ID && got.Result == api.ResultOK, "the waiter got %v, want #%d ok", got, secRec.ID)
	must(t, got.ImageID == "sha256:img"+a.ShortHash(), "image id %q", got.ImageID)
	must(t, got.Batches == 2 && got.Requests == 1, "batches %d requests %d", got.Batches, got.Requests)
	hist, _ := h.s.History(0)
	must(t, len(hist) == 2 && hist[0].Result == api.ResultOK && hist[1].Result == api.ResultSuperseded, "history %v", hist)
}

// TestSchedCoalesce: while a superseded build winds down (it ignores the
// cancellation for a while), further batches coalesce into one follow-up.
func TestSchedCoalesce(t *testing.T) {
	a := fakeRecipe("a")
	f := newFakeBuilder(a)
	f.setStubborn(true)
	h := newHarness(t, f, a, nil)
	h.code("a.rs")
	first := h.next("build", a)
	h.code("b.rs")
	first.waitCancelled(t)
	h.code("c.rs")
	h.code("d.rs", "a.rs")
	st := h.status()
	must(t, st.Current != nil && st.Pending != nil, "current %v pending %v", st.Current, st.Pending)
	must(t, st.Pending.Batches == 4, "pending coalesces %d batches, want 4 (1 taken over + 3)", st.Pending.Batches)
	must(t, f.count("build") == 1, "%d builds started while the first winds down", f.count("build"))

	first.finish(context.Canceled)
	second := h.next("build", a)
	rec := h.event(api.EventBuildStart, func(ev api.Event) bool { return ev.ID == st.Pending.ID }).Record
	must(t, slices.Equal(rec.Changed, []string{"a.rs", "b.rs", "c.rs", "d.rs"}), "changed %v", rec.Changed)
	second.finish(nil)
	must(t, h.done(api.EventBuildDone, rec.ID).Result == api.ResultOK, "follow-up failed")
	st = h.status()
	must(t, st.Pending == nil && st.Current == nil, "left over: current %v pending %v", st.Current, st.Pending)
	must(t, f.count("build") == 2, "%d builds, want 2", f.count("build"))
}

// TestSchedCookNotCancelledWhenCurrent: code batches, requests and recipe
// batches that keep the hash never cancel the cook of the current recipe;
// the queued build runs after it on the new recipe.
func TestSchedCookNotCancelledWhenCurrent(t *testing.T) {
	a, b := fakeRecipe("a"), fakeRecipe("b")
	h := newHarness(t, newFakeBuilder(a), a, nil)
	h.recipeBatch(b, "crates/app/Cargo.toml")
	cook := h.next("cook", b)
	h.code("crates/app/src/main.rs")
	h.recipeBatch(b, "crates/app/Cargo.toml") // e.g. a description edit: same hash
	h.submit(api.BuildRequest{})
	h.submit(api.BuildRequest{Urgent: true})
	st := h.status()
	must(t, st.State == "cooking" && st.Pending != nil && strings.Contains(st.Pending.Waiting, "cook of recipe "+b.ShortHash()),
		"state %s, pending %+v", st.State, st.Pending)
	must(t, cook.ctx.Err() == nil, "the cook of the current recipe was cancelled")
	must(t, h.f.count("cook") == 1, "%d cooks", h.f.count("cook"))
	cook.finish(nil)
	build := h.next("build", b)
	rec := h.event(api.EventBuildStart, nil).Record
	must(t, len(rec.RecipeDiff) > 0, "the build says the recipe changed: %v", rec.RecipeDiff)
	build.finish(nil)
}

// TestSchedCookCancelledWhenObsolete: a newer recipe cancels the cook of
// the previous one and cooks the newer.
func TestSchedCookCancelledWhenObsolete(t *testing.T) {
	a, b, c := fakeRecipe("a"), fakeRecipe("b"), fakeRecipe("c")
	h := newHarness(t, newFakeBuilder(a), a, func(o *options) { o.Manual = true })
	h.recipeBatch(b, "Cargo.toml")
	cookB := h.next("cook", b)
	idB := h.event(api.EventCookStart, nil).ID
	h.recipeBatch(c, "Cargo.toml")
	cookB.waitCancelled(t)
	cookC := h.next("cook", c)
	rec := h.done(api.EventCookDone, idB)
	must(t, rec.Result == api.ResultCancelled && strings.Contains(rec.Error, "obsolete"), "cook of b: %v", rec)
	must(t, cookC.ctx.Err() == nil, "the cook of c was cancelled")
	cookC.finish(nil)
	must(t, h.event(api.EventCookDone, nil).Record.Result == api.ResultOK, "cook of c")
}

// TestSchedUrgentLane: a normal build waits for a cancelled cook of
// another recipe to stop; an urgent one goes ahead at once on the cooked
// image of the current recipe.
func TestSchedUrgentLane(t *testing.T) {
	a, b := fakeRecipe("a"), fakeRecipe("b")
	f := newFakeBuilder(a)
	h := newHarness(t, f, a, func(o *options) { o.Manual = true })
	f.setStubborn(true) // BuildKit hangs on cancel
	h.recipeBatch(b, "Cargo.toml")
	cookB := h.next("cook", b)
	h.recipeBatch(a, "Cargo.toml") // reverted: back to the cooked recipe
	cookB.waitCancelled(t)

	h.submit(api.BuildRequest{})
	st := h.status()
	must(t, st.Current == nil && st.Pending != nil, "current %v pending %v", st.Current, st.Pending)
	must(t, strings.Contains(st.Pending.Waiting, "cancelled cook of recipe "+b.ShortHash()), "waiting: %q", st.Pending.Waiting)
	must(t, len(st.Cooks) == 1 && strings.Contains(st.Cooks[0].Waiting, "obsolete"), "cooks %+v", st.Cooks)
	must(t, f.count("build") == 0, "a normal build started behind the cook")

	urgent := h.submit(api.BuildRequest{Urgent: true, Wait: true})
	build := h.next("build", a)
	select {
	case <-cookB.returned:
		t.Fatal("the cook of b returned: the test proves nothing")
	default:
	}
	build.finish(nil)
	got := h.wait(urgent)
	must(t, got.Result == api.ResultOK && got.Urgent && got.Recipe == a.Hash, "urgent build %v", got)
	cookB.finish(context.Canceled)
}

// TestSchedWarmOnly: warm-only fails fast when the current recipe has no
// cooked image, saying how long the last cook took; it builds when the
// image exists.
func TestSchedWarmOnly(t *testing.T) {
	a, b := fakeRecipe("a"), fakeRecipe("b")
	f := newFakeBuilder()
	f.cookDur = 3*time.Minute + 12*time.Second
	h := newHarness(t, f, a, func(o *options) { o.Manual = true })

	// startup: a is not cooked: it cooks; warm-only fails while it runs
	cookA := h.next("cook", a)
	_, err := h.s.Submit(context.Background(), api.BuildRequest{WarmOnly: true, Wait: true})
	var nw *api.NotWarmError
	must(t, errors.As(err, &nw), "err %v, want NotWarmError", err)
	must(t, nw.LastCook == 0 && nw.CookingFor > 0 && strings.Contains(err.Error(), "unknown"), "%v", err)
	cookA.finish(nil)
	h.event(api.EventCookDone, nil)

	h.recipeBatch(b, "Cargo.lock")
	cookB := h.next("cook", b)
	_, err = h.s.Submit(context.Background(), api.BuildRequest{WarmOnly: true, Wait: true})
	must(t, errors.As(err, &nw), "err %v, want NotWarmError", err)
	must(t, nw.Recipe == b.Hash && nw.LastCook == f.cookDur, "%+v", nw)
	must(t, strings.Contains(err.Error(), "the last cook took 3m12s"), "message %q", err)
	must(t, f.count("build") == 0, "warm-only started a build")
	cookB.finish(nil)
	h.event(api.EventCookDone, nil)

	tk := h.submit(api.BuildRequest{WarmOnly: true, Wait: true})
	h.next("build", b).finish(nil)
	must(t, h.wait(tk).Result == api.ResultOK, "warm build")
}

// TestSchedNothingChanged: a request when nothing changed since the last
// successful build answers with it; a change builds again.
func TestSchedNothingChanged(t *testing.T) {
	a := fakeRecipe("a")
	h := newHarness(t, newFakeBuilder(a), a, nil)
	tk := h.submit(api.BuildRequest{Wait: true})
	h.next("build", a).finish(nil)
	first := h.wait(tk)
	must(t, first.Result == api.ResultOK && first.Trigger == api.TriggerRequest, "%v", first)

	again := h.submit(api.BuildRequest{Wait: true})
	must(t, again.Final() && again.Record.Reused && again.Record.ID == first.ID, "second request %+v", again.Record)
	must(t, h.f.count("build") == 1, "rebuilt without changes")

	forced := h.submit(api.BuildRequest{Wait: true, Force: true})
	h.next("build", a).finish(nil)
	must(t, h.wait(forced).ID != first.ID, "force reused")

	h.code("src/main.rs")
	h.next("build", a).finish(errBoom)
	failed := h.event(api.EventBuildDone, func(ev api.Event) bool { return ev.Record.Result == api.ResultFailed }).Record
	must(t, strings.Contains(failed.Error, "boom") && slices.Equal(failed.Changed, []string{"src/main.rs"}), "%v", failed)
	// after a failure the same request builds again
	retry := h.submit(api.BuildRequest{Wait: true})
	must(t, !retry.Final(), "reused across a failed build")
	h.next("build", a).finish(nil)
	must(t, h.wait(retry).Result == api.ResultOK, "retry")
}

// TestSchedCookFailure: a failed cook fails the build waiting for it; a
// request retries the cook.
func TestSchedCookFailure(t *testing.T) {
	a, b := fakeRecipe("a"), fakeRecipe("b")
	h := newHarness(t, newFakeBuilder(a), a, nil)
	h.recipeBatch(b, "Cargo.toml")
	h.next("cook", b).finish(errBoom)
	rec := h.event(api.EventBuildDone, nil).Record
	must(t, rec.Result == api.ResultFailed && strings.Contains(rec.Error, "cook of recipe "+b.ShortHash()+" failed"), "%v", rec)
	tk := h.submit(api.BuildRequest{Wait: true})
	h.next("cook", b).finish(nil)
	h.next("build", b).finish(nil)
	must(t, h.wait(tk).Result == api.ResultOK, "retried build")
}

// TestSchedRecipeError: while the recipe cannot be computed, the state is
// recipe-error with the reason (not queued, though a build waits),
// automatic builds wait and requests fail with the reason; a fixed recipe
// builds.
func TestSchedRecipeError(t *testing.T) {
	a := fakeRecipe("a")
	h := newHarness(t, newFakeBuilder(a), a, nil)
	h.plan.set(nil, errors.New("Cargo.toml:3: expected `=`"))
	h.send(watcherRecipeBatch("Cargo.toml"))
	st := h.status()
	must(t, st.State == api.StateRecipeError && strings.Contains(st.RecipeError, "Cargo.toml:3: expected `=`") && st.Pending != nil &&
		strings.Contains(st.Pending.Waiting, "valid recipe"), "status: state %q, recipe error %q, pending %+v", st.State, st.RecipeError, st.Pending)
	_, err := h.s.Submit(context.Background(), api.BuildRequest{Wait: true})
	var re *RecipeError
	must(t, errors.As(err, &re), "err %v", err)
	h.recipeBatch(a, "Cargo.toml")
	h.next("build", a).finish(nil)
	rec := h.event(api.EventBuildDone, nil).Record
	must(t, rec.Result == api.ResultOK && rec.Batches == 2, "%v batches %d", rec, rec.Batches)
}

// TestSchedStop: stopping cancels the running build (cancelled, not
// failed) and answers waiting requests.
func TestSchedStop(t *testing.T) {
	a := fakeRecipe("a")
	h := newHarness(t, newFakeBuilder(a), a, nil)
	tk := h.submit(api.BuildRequest{Wait: true})
	build := h.next("build", a)
	h.s.Stop()
	build.waitCancelled(t)
	got := h.wait(tk)
	must(t, got.Result == api.ResultCancelled, "%v", got)
	select {
	case <-h.s.Done():
	case <-time.After(guard):
		t.Fatal("Run did not return")
	}
	_, err := h.s.Submit(context.Background(), api.BuildRequest{})
	must(t, errors.Is(err, ErrClosed), "submit after stop: %v", err)
}

// TestSchedCancelWatchdog: a cancelled build that never returns is given
// up after CancelGrace, so the follow-up still runs.
func TestSchedCancelWatchdog(t *testing.T) {
	a := fakeRecipe("a")
	f := newFakeBuilder(a)
	f.setStubborn(true)
	h := newHarness(t, f, a, func(o *options) { o.CancelGrace = 20 * time.Millisecond })
	h.code("a.rs")
	first := h.next("build", a)
	h.code("b.rs")
	second := h.next("build", a) // only after the grace
	must(t, first.ctx.Err() != nil, "the first build was not cancelled")
	rec := h.event(api.EventBuildDone, nil).Record
	must(t, rec.Result == api.ResultSuperseded && strings.Contains(rec.Error, "did not stop"), "%v", rec)
	second.finish(nil)
	first.finish(context.Canceled)
}

// TestSchedStateFile: history and the last cook duration survive a restart.
func TestSchedStateFile(t *testing.T) {
	a := fakeRecipe("a")
	file := t.TempDir() + "/state.json"
	f := newFakeBuilder()
	h := newHarness(t, f, a, func(o *options) { o.StateFile = file })
	h.next("cook", a).finish(nil)
	tk := h.submit(api.BuildRequest{Wait: true})
	h.next("build", a).finish(nil)
	id := h.wait(tk).ID
	h.cancel()
	<-h.s.Done()

	s2, err := New(f, h.plan.plan, WithStateFile(file))
	if err != nil {
		t.Fatal(err)
	}
	must(t, s2.lastCook == f.cookDur && s2.nextID >= id, "lastCook %s nextID %d", s2.lastCook, s2.nextID)
	must(t, len(s2.hist.recs) == 2, "history %d", len(s2.hist.recs))
}

// TestJobMoves: the allowed moves reach every state from the first ones,
// end only in done or dropped, and a move outside them is counted.
func TestJobMoves(t *testing.T) {
	reach := map[jobState]bool{stateQueued: true, stateChecking: true}
	for changed := true; changed; {
		changed = false
		for from, tos := range jobMoves {
			for _, to := range tos {
				if reach[from] && !reach[to] {
					reach[to], changed = true, true
				}
			}
		}
	}
	for st := stateQueued; st <= stateDropped; st++ {
		must(t, reach[st], "%v cannot be reached", st)
		final := len(jobMoves[st]) == 0
		must(t, final == (st == stateDone || st == stateDropped), "%v final: %v", st, final)
	}
	s := &Scheduler{log: zap.NewNop()}
	st := stateDone
	s.move(&st, stateRunning, "test")
	must(t, s.illegalMoves == 1 && st == stateRunning, "illegal move: counted %d, state %v", s.illegalMoves, st)
}

// TestSchedModes: the daemon's builds run in its mode (loop here); a
// request for an exact build is never answered by a loop build, reused or
// running, and an exact build answers any request.
func TestSchedModes(t *testing.T) {
	a := fakeRecipe("a")
	h := newHarness(t, newFakeBuilder(a), a, func(o *options) { o.Mode = dockerctl.ModeLoop })

	h.code("src/main.rs")
	c := h.next("build", a)
	must(t, c.mode == dockerctl.ModeLoop, "a save built in mode %q", c.mode)
	c.finish(nil)
	loop := *h.event(api.EventBuildDone, func(api.Event) bool { return true }).Record
	must(t, loop.Mode == dockerctl.ModeLoop && loop.Result == api.ResultOK, "%+v", loop)

	// nothing changed: a plain request takes the loop build, an exact one does not
	again := h.submit(api.BuildRequest{Wait: true})
	must(t, again.Final() && again.Record.Reused && again.Record.ID == loop.ID, "plain request %+v", again.Record)
	exact := h.submit(api.BuildRequest{Wait: true, Exact: true})
	must(t, !exact.Final(), "an exact request was answered by the loop build %+v", exact.Record)
	c = h.next("build", a)
	must(t, c.mode == dockerctl.ModeExact, "the exact request built in mode %q", c.mode)
	c.finish(nil)
	ex := h.wait(exact)
	must(t, ex.Mode == dockerctl.ModeExact && ex.ID != loop.ID, "%+v", ex)

	// the exact build answers both kinds of request
	for _, req := range []api.BuildRequest{{Wait: true}, {Wait: true, Exact: true}} {
		tk := h.submit(req)
		must(t, tk.Final() && tk.Record.ID == ex.ID, "request %+v: %+v", req, tk.Record)
	}

	// an exact request while a save's loop build runs on the same content
	// queues an exact build after it, without superseding it
	h.code("src/main.rs")
	running := h.next("build", a)
	must(t, running.mode == dockerctl.ModeLoop, "mode %q", running.mode)
	tk := h.submit(api.BuildRequest{Wait: true, Exact: true})
	select {
	case <-running.ctx.Done():
		t.Fatal("the exact request superseded a loop build of the same content")
	default:
	}
	running.finish(nil)
	c = h.next("build", a)
	must(t, c.mode == dockerctl.ModeExact, "mode %q", c.mode)
	c.finish(nil)
	must(t, h.wait(tk).Mode == dockerctl.ModeExact, "answer not exact")
}

// TestNoteImages: each service image keeps the daemon's last build of it
// and the build that last gave it a new ID.
func TestNoteImages(t *testing.T) {
	s := &Scheduler{}
	t1, t2 := time.Unix(100, 0), time.Unix(200, 0)
	s.noteImages(&api.Record{ID: 1, Finished: t1, Images: []dockerctl.ImageResult{
		{Service: "api", ImageID: "sha256:a1", Changed: true, Reason: "new image"},
		{Service: "worker", ImageID: "sha256:w1", Reason: "binaries identical"},
	}})
	s.noteImages(&api.Record{ID: 2, Finished: t2, Images: []dockerctl.ImageResult{
		{Service: "api", ImageID: "sha256:a2", Changed: true, Reason: "api changed"},
		{Service: "worker", ImageID: "sha256:w1", Reason: "binaries identical"},
	}})
	for _, c := range []struct {
		svc       string
		id        string
		build     int64
		changedIn int64
		at        time.Time
	}{{"api", "sha256:a2", 2, 2, t2}, {"worker", "sha256:w1", 2, 0, time.Time{}}} {
		im := s.images[c.svc]
		if im == nil || im.ImageID != c.id || im.Build != c.build || im.ChangedIn != c.changedIn || !im.ChangedAt.Equal(c.at) {
			t.Errorf("%s: %+v, want image %s, build %d, changed in %d at %v", c.svc, im, c.id, c.build, c.changedIn, c.at)
		}
	}
	// an image that moved although the build called it unchanged (a tag
	// moved under it) is recorded as moved
	s.noteImages(&api.Record{ID: 3, Finished: t2, Images: []dockerctl.ImageResult{{Service: "worker", ImageID: "sha256:w2"}}})
	if im := s.images["worker"]; im.ChangedIn != 3 {
		t.Errorf("worker moved to another ID: changed in %d, want 3", im.ChangedIn)
	}
}
