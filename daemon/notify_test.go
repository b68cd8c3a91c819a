package daemon

import (
	"testing"
	"time"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
)

// TestNotification: what the desktop is told of a finished build or cook
// no client asked for; nothing for a request's build, a superseded or
// cancelled one, or an event that is not an end.
func TestNotification(t *testing.T) {
	rec := func(kind api.JobKind, trigger api.Trigger, res api.Result) *api.Record {
		return &api.Record{ID: 7, Kind: kind, Trigger: trigger, Result: res, Duration: 6240 * time.Millisecond,
			Image: "shop:dev", CookedTag: "shop-cooked:7dad3c0b931a6e0c", Compiled: dockerctl.Crates{Local: 2},
			Error: "\nerror[E0308]: mismatched types\n --> crates/app/src/main.rs:12:5\n"}
	}
	for _, c := range []struct {
		ev          api.Event
		title, body string
		ok          bool
	}{
		{api.Event{Type: api.EventBuildDone, Record: rec(api.KindBuild, api.TriggerWatch, api.ResultOK)},
			"chefd: build #7 ok in 6.2s", "shop:dev (2 crates compiled)", true},
		{api.Event{Type: api.EventBuildDone, Record: rec(api.KindBuild, api.TriggerWatch, api.ResultFailed)},
			"chefd: build #7 failed after 6.2s", "error[E0308]: mismatched types", true},
		{api.Event{Type: api.EventCookDone, Record: rec(api.KindCook, api.TriggerWatch, api.ResultOK)},
			"chefd: cook #7 ok in 6.2s", "shop-cooked:7dad3c0b931a6e0c (2 crates compiled)", true},
		{api.Event{Type: api.EventBuildDone, Record: rec(api.KindBuild, api.TriggerRequest, api.ResultOK)}, "", "", false},
		{api.Event{Type: api.EventBuildDone, Record: rec(api.KindBuild, api.TriggerWatch, api.ResultSuperseded)}, "", "", false},
		{api.Event{Type: api.EventBuildDone, Record: rec(api.KindBuild, api.TriggerWatch, api.ResultCancelled)}, "", "", false},
		{api.Event{Type: api.EventBuildStart, Record: rec(api.KindBuild, api.TriggerWatch, api.ResultRunning)}, "", "", false},
	} {
		title, body, ok := notification(c.ev)
		if title != c.title || body != c.body || ok != c.ok {
			t.Errorf("%s %s %s: (%q, %q, %v), want (%q, %q, %v)", c.ev.Type, c.ev.Record.Trigger, c.ev.Record.Result,
				title, body, ok, c.title, c.body, c.ok)
		}
	}
}
