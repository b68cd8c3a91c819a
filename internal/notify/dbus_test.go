//go:build !darwin && !windows

package notify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chefd/chefd/internal/notify/notifytest"
)

// TestDBusNotify sends a notification through a real session bus to a
// notification server started by the test and checks its text; a bus
// without a server, or no bus, is an error, not a hang.
func TestDBusNotify(t *testing.T) {
	addr, srv := notifytest.Start(t)
	n := &DBus{Address: addr, Timeout: -1}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Notify(ctx, "chefd: build #7 failed", "error[E0308]: mismatched types (crates/app/src/main.rs:12)"); err != nil {
		t.Fatal(err)
	}
	got := srv.Wait(1, 5*time.Second)
	want := notifytest.Notification{App: "chefd", Summary: "chefd: build #7 failed", Body: "error[E0308]: mismatched types (crates/app/src/main.rs:12)"}
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	other := &DBus{Address: notifytest.Bus(t), Timeout: -1}
	if err := other.Notify(ctx, "t", "b"); err == nil {
		t.Error("no server: no error")
	}
	gone := &DBus{Address: "unix:path=" + t.TempDir() + "/none"}
	if err := gone.Notify(ctx, "t", "b"); err == nil || !strings.Contains(err.Error(), ErrUnavailable.Error()) {
		t.Errorf("no bus: %v", err)
	}
}
