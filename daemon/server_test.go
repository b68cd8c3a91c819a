package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/internal/flock"
	"github.com/chefd/chefd/recipe"
)

// testDaemon runs Run over a real unix socket in a temp dir with the fake
// builder.
type testDaemon struct {
	t      *testing.T
	paths  api.Paths
	f      *fakeBuilder
	plan   *fakePlan
	c      *api.Client
	info   api.Info
	errc   chan error
	cancel context.CancelFunc
}

func startDaemon(t *testing.T, f *fakeBuilder, r *recipe.Recipe, paths *api.Paths) *testDaemon {
	t.Helper()
	if paths == nil {
		p, err := api.ResolvePaths(t.TempDir(), "")
		if err != nil {
			t.Fatal(err)
		}
		paths = &p
	}
	d := &testDaemon{t: t, paths: *paths, f: f, plan: &fakePlan{r: r}, errc: make(chan error, 1)}
	ready := make(chan api.Info, 1)
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() {
		d.errc <- Run(ctx, Config{Paths: d.paths, Version: "test", Ready: func(i api.Info) { ready <- i },
			Builder: f, Plan: d.plan.plan, Options: []Option{WithLog(zaptest.NewLogger(t)), WithKeepCooked(2)}})
	}()
	select {
	case d.info = <-ready:
	case err := <-d.errc:
		t.Fatalf("Run: %v", err)
	case <-time.After(guard):
		t.Fatal("the daemon did not get ready")
	}
	d.c = api.NewClient(d.paths.Socket)
	t.Cleanup(func() {
		cancel()
		go func() { // release what still blocks
			for {
				select {
				case c := <-f.calls:
					c.finish(context.Canceled)
				case <-time.After(guard):
					return
				}
			}
		}()
		select {
		case <-d.errc:
		case <-time.After(guard):
			t.Error("Run did not return")
		}
		d.c.Close()
	})
	return d
}

func (d *testDaemon) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	d.t.Cleanup(cancel)
	return ctx
}

func (d *testDaemon) next(kind string) *fakeCall {
	d.t.Helper()
	select {
	case c := <-d.f.calls:
		if c.kind != kind {
			d.t.Fatalf("got a %s call, want %s", c.kind, kind)
		}
		return c
	case <-time.After(guard):
		d.t.Fatalf("no %s call", kind)
	}
	return nil
}

// TestDaemonAPI drives the daemon through its client: ping, build with
// --wait (streamed and plain), the event stream, status, warm-only, gc,
// logs and stop.
func TestDaemonAPI(t *testing.T) {
	a, b := fakeRecipe("a"), fakeRecipe("b")
	f := newFakeBuilder(a)
	d := startDaemon(t, f, a, nil)

	info, err := d.c.Ping(d.ctx())
	must(t, err == nil && info.PID == os.Getpid() && info.Version == "test", "ping: %+v %v", info, err)
	st, err := os.Stat(d.paths.Socket)
	must(t, err == nil && st.Mode().Perm() == 0o600, "socket mode %v (%v)", st.Mode(), err)

	// event stream
	evCtx, stopEvents := context.WithCancel(context.Background())
	defer stopEvents()
	subscribed := make(chan struct{})
	var evMu sync.Mutex
	var seen []api.Event
	evDone := make(chan error, 1)
	go func() {
		evDone <- d.c.Events(evCtx, func(raw []byte, ev api.Event) error {
			if !bytes.HasPrefix(raw, []byte("{")) {
				return fmt.Errorf("raw line %q is not a JSON object", raw) // ends Events: evDone reports it
			}
			if ev.Type == api.EventSubscribed {
				close(subscribed)
				return nil
			}
			evMu.Lock()
			seen = append(seen, ev)
			evMu.Unlock()
			return nil
		})
	}()
	select {
	case <-subscribed:
	case <-time.After(guard):
		t.Fatal("no subscribed line")
	}

	// build --wait, streamed
	type answer struct {
		rec    api.Record
		err    error
		events []api.EventType
	}
	got := make(chan answer, 1)
	go func() {
		var types []api.EventType
		rec, err := d.c.Build(d.ctx(), api.BuildRequest{Wait: true}, func(ev api.Event) { types = append(types, ev.Type) })
		got <- answer{rec, err, types}
	}()
	d.next("build").finish(nil)
	ans := <-got
	must(t, ans.err == nil && ans.rec.Result == api.ResultOK && ans.rec.ImageID == "sha256:img"+a.ShortHash(), "build: %+v %v", ans.rec, ans.err)
	must(t, slices.Contains(ans.events, api.EventBuildStart), "streamed events %v", ans.events)

	// nothing changed: the same build, plain request
	again, err := d.c.Build(d.ctx(), api.BuildRequest{Wait: true}, nil)
	must(t, err == nil && again.Reused && again.ID == ans.rec.ID, "second build: %+v %v", again, err)

	// status
	fs, err := d.c.Status(d.ctx(), 5)
	must(t, err == nil, "status: %v", err)
	must(t, fs.Daemon.PID == os.Getpid() && fs.State == "idle" && fs.Recipe == a.Hash && fs.Cooked, "status %+v", fs.Status)
	must(t, fs.LastOK != nil && fs.LastOK.ID == ans.rec.ID && len(fs.Recent) == 1, "status builds: last_ok %v recent %d", fs.LastOK, len(fs.Recent))
	must(t, len(fs.CookedImages) == 1 && fs.CookedImages[0].Recipe == a.Hash, "cooked images %+v", fs.CookedImages)
	hist, err := d.c.History(d.ctx(), 0)
	must(t, err == nil && len(hist) == 1, "history %v %v", hist, err)

	// warm-only on a recipe without a cooked image
	d.plan.set(b, nil)
	_, err = d.c.Build(d.ctx(), api.BuildRequest{Wait: true, WarmOnly: true}, nil)
	var ae *api.APIError
	must(t, errors.As(err, &ae) && ae.Code == "not_warm" && ae.NotWarm != nil && ae.NotWarm.Recipe == b.Hash, "warm-only: %v", err)
	_, err = d.c.Build(d.ctx(), api.BuildRequest{Wait: true, WarmOnly: true}, func(api.Event) {})
	must(t, errors.As(err, &ae) && ae.Code == "not_warm", "streamed warm-only: %v", err)
	d.next("cook").finish(nil) // the new recipe started cooking meanwhile

	// gc
	select { // the cook triggered one
	case <-f.gcs:
	case <-time.After(guard):
		t.Fatal("no GC after the cook")
	}
	removed, err := d.c.GC(d.ctx())
	must(t, err == nil && len(removed) == 0, "gc: %v %v", removed, err)
	must(t, <-f.gcs == 2, "gc keep")

	// logs
	must(t, os.WriteFile(d.paths.Log, []byte(`{"level":"info","ts":1700000000.5,"msg":"cooked","recipe":"abc"}`+"\nplain line\n"), 0o600) == nil, "write log")
	var logs bytes.Buffer
	must(t, d.c.Logs(d.ctx(), 10, false, false, &logs) == nil, "logs")
	must(t, strings.Contains(logs.String(), "INFO  cooked recipe=abc") && strings.Contains(logs.String(), "plain line"), "logs %q", logs.String())

	// the event stream sees the build and the cook (delivery is asynchronous: wait)
	wanted := []api.EventType{api.EventBuildQueued, api.EventBuildStart, api.EventBuildProgress, api.EventBuildDone, api.EventRecipe, api.EventCookStart, api.EventCookDone}
	deadline := time.Now().Add(guard)
	for {
		evMu.Lock()
		have := map[api.EventType]bool{}
		var types []api.EventType
		for _, ev := range seen {
			have[ev.Type] = true
			types = append(types, ev.Type)
		}
		evMu.Unlock()
		var missing api.EventType
		for _, w := range wanted {
			if !have[w] {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %v lack %s", types, missing)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// stop
	must(t, d.c.Stop(d.ctx()) == nil, "stop")
	select {
	case err := <-d.errc:
		must(t, err == nil, "Run: %v", err)
		d.errc <- nil // for the cleanup
	case <-time.After(guard):
		t.Fatal("Run did not return after stop")
	}
	_, err = os.Stat(d.paths.Socket)
	must(t, errors.Is(err, os.ErrNotExist), "socket left behind: %v", err)
	held, _ := flock.Held(d.paths.Lock)
	must(t, !held, "lock still held")
	_, err = d.c.Ping(d.ctx())
	must(t, errors.Is(err, api.ErrNotRunning), "ping after stop: %v", err)
	select {
	case err := <-evDone:
		must(t, err == nil, "event stream: %v", err)
	case <-time.After(guard):
		t.Fatal("the event stream did not end with the daemon")
	}
}

// TestDaemonStopCancelsBuild: stopping while a build runs answers the
// waiting request with a cancelled build.
func TestDaemonStopCancelsBuild(t *testing.T) {
	a := fakeRecipe("a")
	d := startDaemon(t, newFakeBuilder(a), a, nil)
	got := make(chan api.Record, 1)
	go func() {
		rec, _ := d.c.Build(d.ctx(), api.BuildRequest{Wait: true}, func(api.Event) {})
		got <- rec
	}()
	build := d.next("build")
	must(t, d.c.Stop(d.ctx()) == nil, "stop")
	build.waitCancelled(t)
	select {
	case rec := <-got:
		must(t, rec.Result == api.ResultCancelled, "%+v", rec)
	case <-time.After(guard):
		t.Fatal("the waiting request got no answer")
	}
}
