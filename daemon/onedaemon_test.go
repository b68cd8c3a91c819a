package daemon

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chefd/chefd/daemon/api"
)

// TestDaemonOnePerWorkspace: a second daemon of the same workspace started
// with another $XDG_RUNTIME_DIR (another terminal, a systemd unit) does not
// start: its BusyError names the first one's pid and socket. A client of
// the second environment finds the first daemon (api.Locate); once it has
// stopped, its own paths again.
func TestDaemonOnePerWorkspace(t *testing.T) {
	ws := t.TempDir()
	rt1, rt2 := t.TempDir(), t.TempDir()
	p1, err := api.ResolvePaths(ws, rt1)
	must(t, err == nil, "resolve: %v", err)
	p2, err := api.ResolvePaths(ws, rt2)
	must(t, err == nil && p1.Socket != p2.Socket, "resolve: %v (%s, %s)", err, p1.Socket, p2.Socket)
	a := fakeRecipe("a")
	first := startDaemon(t, newFakeBuilder(a), a, &p1)

	second := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		second <- Run(first.ctx(), Config{Paths: p2, Ready: func(api.Info) { close(ready) },
			Builder: newFakeBuilder(a), Plan: (&fakePlan{r: a}).plan, Options: []Option{WithLog(zaptest.NewLogger(t))}})
	}()
	select {
	case err := <-second:
		var busy *BusyError
		must(t, errors.As(err, &busy), "second daemon: %v, want a BusyError", err)
		must(t, busy.PID == os.Getpid() && busy.Socket == p1.Socket && strings.Contains(err.Error(), p1.Socket),
			"second daemon: %v; want pid %d and socket %s", err, os.Getpid(), p1.Socket)
	case <-ready:
		t.Fatalf("a second daemon started for %s (socket %s) beside the first (socket %s)", ws, p2.Socket, p1.Socket)
	case <-time.After(guard):
		t.Fatal("the second Run neither failed nor got ready")
	}
	_, err = os.Stat(p2.Socket)
	must(t, errors.Is(err, os.ErrNotExist), "the second daemon left a socket: %v", err)

	// the other environment's client finds the running daemon
	loc, err := api.Locate(ws, rt2)
	must(t, err == nil && loc.Socket == p1.Socket && loc.Log == p1.Log, "Locate from the other environment: %+v %v", loc, err)
	c := api.NewClient(loc.Socket)
	defer c.Close()
	info, err := c.Ping(first.ctx())
	must(t, err == nil && info.PID == os.Getpid(), "ping through the located socket: %+v %v", info, err)

	must(t, first.c.Stop(first.ctx()) == nil, "stop")
	select {
	case err := <-first.errc:
		must(t, err == nil, "Run: %v", err)
		first.errc <- nil // for the cleanup
	case <-time.After(guard):
		t.Fatal("the first daemon did not stop")
	}
	_, err = os.Stat(p1.RunningFile())
	must(t, errors.Is(err, os.ErrNotExist), "the running record outlived the daemon: %v", err)
	loc, err = api.Locate(ws, rt2)
	must(t, err == nil && loc.Socket == p2.Socket, "Locate without a daemon: %+v %v", loc, err)
}
