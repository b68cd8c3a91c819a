package daemon

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/chefd/chefd/daemon/api"
)

// TestSchedCrashKeepsHistoryAndIDs: a daemon killed (kill -9) while a
// build and a cook run, with another build queued, leaves its state file
// as it was; the next daemon records the running jobs as interrupted (they
// are not lost from the history) and never hands out an ID the dead one
// did, queued ones included.
func TestSchedCrashKeepsHistoryAndIDs(t *testing.T) {
	a, b := fakeRecipe("a"), fakeRecipe("b")
	file := t.TempDir() + "/state.json"
	f := newFakeBuilder(a)
	f.setStubborn(true) // cancelled jobs keep running: the daemon dies before they end
	h := newHarness(t, f, a, func(o *options) { o.StateFile = file })

	h.recipeBatch(b, "Cargo.toml") // the cook of b runs
	cook := h.next("cook", b)
	t.Cleanup(func() { cook.finish(context.Canceled) }) // stubborn: it waits for this
	cookID := h.event(api.EventCookStart, nil).ID
	// reverted: that cook is obsolete (cancelled, still running); an
	// urgent build of a runs beside it
	h.recipeBatch(a, "Cargo.toml")
	tk := h.submit(api.BuildRequest{Wait: true, Urgent: true})
	build := h.next("build", a)
	t.Cleanup(func() { build.finish(context.Canceled) })
	buildID := tk.Record.ID
	h.code("src/main.rs") // supersedes it: a queued follow-up has its own ID
	build.waitCancelled(t)
	st := h.status()
	must(t, st.Current != nil && st.Current.ID == buildID && st.Pending != nil && len(st.Cooks) == 1,
		"before the crash: current %v, pending %v, cooks %v", st.Current, st.Pending, st.Cooks)
	queuedID := st.Pending.ID

	// kill -9: the state file is what the daemon left on disk now
	after := t.TempDir() + "/state.json"
	crashed, err := os.ReadFile(file)
	if !errors.Is(err, fs.ErrNotExist) { // none: the daemon had saved nothing
		must(t, err == nil, "read the state: %v", err)
		must(t, os.WriteFile(after, crashed, 0o600) == nil, "write")
	}

	// the next daemon
	g := newFakeBuilder(a)
	h2 := newHarness(t, g, a, func(o *options) { o.StateFile = after })
	hist, err := h2.s.History(0)
	must(t, err == nil, "history: %v", err)
	found := map[int64]api.Record{}
	for _, r := range hist {
		found[r.ID] = r
	}
	rec, ok := found[buildID]
	must(t, ok && rec.Result == api.ResultInterrupted && rec.Kind == api.KindBuild && rec.Error != "",
		"build #%d after the crash: %+v (found %v); want it recorded as interrupted", buildID, rec, ok)
	rec, ok = found[cookID]
	must(t, ok && rec.Result == api.ResultInterrupted && rec.Kind == api.KindCook,
		"cook #%d after the crash: %+v (found %v); want it recorded as interrupted", cookID, rec, ok)
	tk2 := h2.submit(api.BuildRequest{Wait: true})
	must(t, tk2.Record.ID > queuedID, "the new daemon's build has ID %d: the dead one handed out up to %d", tk2.Record.ID, queuedID)
	h2.next("build", a).finish(nil)
	must(t, h2.wait(tk2).Result == api.ResultOK, "build after the restart")
}
