package daemon

import (
	"fmt"
	"testing"
	"time"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
)

// TestWatchdogDue: a job silent for longer than the limit is due once;
// output makes it fresh again (and says it was flagged).
func TestWatchdogDue(t *testing.T) {
	w := newWatchdog()
	t0 := time.Unix(1000, 0)
	w.saw(1, t0)
	w.saw(2, t0.Add(8*time.Minute))
	due := w.due(t0.Add(11*time.Minute), 10*time.Minute)
	if len(due) != 1 || !due[1].Equal(t0) {
		t.Fatalf("due %v, want job 1 silent since %v", due, t0)
	}
	if again := w.due(t0.Add(12*time.Minute), 10*time.Minute); len(again) != 0 {
		t.Errorf("job 1 due twice: %v", again)
	}
	if !w.saw(1, t0.Add(13*time.Minute)) {
		t.Error("output of a flagged job: not reported as resumed")
	}
	if w.saw(2, t0.Add(13*time.Minute)) {
		t.Error("output of a job never flagged reported as resumed")
	}
	w.forget(1)
	if due := w.due(t0.Add(time.Hour), 10*time.Minute); len(due) != 1 || due[2].IsZero() {
		t.Errorf("after job 1 was forgotten: due %v, want job 2 only", due)
	}
}

// TestSchedStuckCook: a cook silent past stuck-after is reported on the
// stream and in status as possibly stuck, with a notification's text;
// its next output clears it.
func TestSchedStuckCook(t *testing.T) {
	a, b := fakeRecipe("a"), fakeRecipe("b")
	h := newHarness(t, newFakeBuilder(a), a, func(o *options) { o.Manual = true; o.StuckAfter = time.Hour })
	h.recipeBatch(b, "crates/app/Cargo.toml")
	c := h.next("cook", b)
	id := h.event(api.EventCookStart, nil).Record.ID
	// the check as the loop's ticker would run it, two hours on
	if err := h.s.do(func() { h.s.checkStuck(time.Now().Add(2 * time.Hour)) }); err != nil {
		t.Fatal(err)
	}
	ev := h.event(api.EventStuck, nil)
	if ev.ID != id || ev.Record == nil || ev.Record.StuckSince.IsZero() {
		t.Fatalf("stuck event %+v", ev)
	}
	if title, body, ok := notification(ev); !ok || title != fmt.Sprintf("chefd: cook #%d may be stuck", id) || body != ev.Message {
		t.Errorf("notification (%q, %q, %v)", title, body, ok)
	}
	st := h.status()
	if len(st.Cooks) != 1 || st.Cooks[0].StuckSince.IsZero() {
		t.Fatalf("status does not say the cook may be stuck: %+v", st.Cooks)
	}
	c.p(dockerctl.Event{Kind: dockerctl.EventLog, Text: "   Compiling serde v1.0.152"})
	h.s.do(func() {}) // the loop ran what the output posted before this
	if st := h.status(); len(st.Cooks) != 1 || !st.Cooks[0].StuckSince.IsZero() {
		t.Errorf("the cook's output did not clear its stuck report: %+v", st.Cooks)
	}
	c.finish(nil)
	h.event(api.EventCookDone, nil)
}
