package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
)

const secretRecipe = "5ec7e7ec1pe0000000000000000000000000000000000000000000000000000"

// fakeDaemon counts the actions it was asked for.
type fakeDaemon struct {
	mu              sync.Mutex
	builds, cancels int
	events          chan []byte
}

func (f *fakeDaemon) Status(ctx context.Context, recent int) (api.FullStatus, error) {
	return api.FullStatus{Status: api.Status{State: api.StateIdle, Recipe: secretRecipe}}, nil
}

func (f *fakeDaemon) History(ctx context.Context, n int) ([]api.Record, error) {
	return []api.Record{{ID: 1, Kind: api.KindBuild, Recipe: secretRecipe, Result: api.ResultOK}}, nil
}

func (f *fakeDaemon) Events(ctx context.Context, fn func(raw []byte, ev api.Event) error) error {
	_ = fn([]byte(`{"type":"subscribed"}`), api.Event{Type: api.EventSubscribed})
	for {
		select {
		case <-ctx.Done():
			return nil
		case raw := <-f.events:
			var ev api.Event
			if err := json.Unmarshal(raw, &ev); err != nil {
				return err
			}
			_ = fn(raw, ev)
		}
	}
}

func (f *fakeDaemon) Build(ctx context.Context, req api.BuildRequest, _ func(api.Event)) (api.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.builds++
	return api.Record{ID: 2, Kind: api.KindBuild, Result: api.ResultQueued}, nil
}

func (f *fakeDaemon) Cancel(ctx context.Context, id int64) (api.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancels++
	return api.Record{ID: id, Result: api.ResultCancelled}, nil
}

func (f *fakeDaemon) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.builds, f.cancels
}

// TestSecurity: without the token nothing is read or changed; a request of
// another origin (a cross-site form, fetch or preflight) changes nothing;
// a foreign Host (DNS rebinding) is refused. The page's own requests work.
func TestSecurity(t *testing.T) {
	f := &fakeDaemon{events: make(chan []byte)}
	addr := "127.0.0.1:4711"
	token := strings.Repeat("ab", 32)
	s, err := New(f, addr, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	self := "http://" + addr
	type req struct {
		name, method, path, body string
		hdr                      map[string]string
		want                     int
		acts                     bool // the fake is asked for an action
	}
	json := map[string]string{"Content-Type": "application/json"}
	with := func(m ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, x := range m {
			for k, v := range x {
				out[k] = v
			}
		}
		return out
	}
	tok := map[string]string{TokenHeader: token}
	same := map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin"}
	evil := map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
	cases := []req{
		{name: "page without token", method: "GET", path: "/", want: 401},
		{name: "status without token", method: "GET", path: "/api/status", want: 401},
		{name: "history with a wrong token", method: "GET", path: "/api/history?token=" + strings.Repeat("cd", 32), want: 401},
		{name: "events without token", method: "GET", path: "/api/events", want: 401},
		{name: "log without token", method: "GET", path: "/api/log?id=1", want: 401},
		{name: "status read by another site (token leaked into its page)", method: "GET", path: "/api/status?token=" + token, hdr: evil, want: 403},
		{name: "build without token", method: "POST", path: "/api/build", body: "{}", hdr: with(json, same), want: 401},
		{name: "cross-site form post", method: "POST", path: "/api/build", body: "token=" + token,
			hdr: with(evil, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}), want: 403},
		{name: "cross-site no-cors fetch", method: "POST", path: "/api/cancel", body: `{"id":0}`,
			hdr: with(evil, map[string]string{"Content-Type": "text/plain;charset=UTF-8"}), want: 403},
		{name: "cross-site fetch that knows the token", method: "POST", path: "/api/build", body: "{}", hdr: with(json, evil, tok), want: 403},
		{name: "token in the query of an action", method: "POST", path: "/api/build?token=" + token, body: "{}", hdr: with(json, same), want: 401},
		{name: "same-origin form post with the token", method: "POST", path: "/api/build", body: "{}",
			hdr: with(same, tok, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}), want: 415},
		{name: "preflight", method: "OPTIONS", path: "/api/build", hdr: evil, want: 403},
		{name: "DNS rebinding (foreign Host)", method: "GET", path: "/api/status?token=" + token, hdr: map[string]string{"Host": "evil.example:4711"}, want: 421},
		{name: "GET cannot act", method: "GET", path: "/api/build?token=" + token, want: 405},
		{name: "page with token", method: "GET", path: "/?token=" + token, want: 200},
		{name: "status with token", method: "GET", path: "/api/status", hdr: tok, want: 200},
		{name: "static assets are public", method: "GET", path: "/static/app.js", want: 200},
		{name: "build from the page", method: "POST", path: "/api/build", body: "{}", hdr: with(json, same, tok), want: 200, acts: true},
		{name: "cancel from the page", method: "POST", path: "/api/cancel", body: `{"id":2}`, hdr: with(json, same, tok), want: 200, acts: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b0, c0 := f.counts()
			r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			r.Host = addr
			for k, v := range c.hdr {
				if k == "Host" {
					r.Host = v
					continue
				}
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			body, _ := io.ReadAll(w.Result().Body)
			if w.Code != c.want {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, w.Code, body, c.want)
			}
			b1, c1 := f.counts()
			if acted := b1 != b0 || c1 != c0; acted != c.acts {
				t.Errorf("the daemon was asked for an action: %v, want %v", acted, c.acts)
			}
			if c.want != 200 && (strings.Contains(string(body), secretRecipe[:12]) || strings.Contains(string(body), "<html")) {
				t.Errorf("a refused request read %q", body)
			}
			if w.Header().Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("CORS granted: %v", w.Header())
			}
		})
	}
}

func TestNewRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:80", "192.168.1.2:80", "[::]:80", "example.com:80", "nonsense"} {
		if _, err := New(&fakeDaemon{}, addr, strings.Repeat("ab", 32), nil); err == nil {
			t.Errorf("%s: accepted", addr)
		}
	}
	if _, err := New(&fakeDaemon{}, "127.0.0.1:1", "short", nil); err == nil {
		t.Error("a short token was accepted")
	}
}

// TestHubLogs: the hub keeps a job's lines from progress events, bounded,
// and drops a page that reads too slowly.
func TestHubLogs(t *testing.T) {
	h := newHub(nil)
	for i := 0; i < logLines+10; i++ {
		h.note(api.Event{ID: 3, Type: api.EventBuildProgress, Progress: progressEvent("line")})
	}
	lines, dropped, seen := h.logOf(3)
	if !seen || len(lines)+dropped != logLines+10 || len(lines) > logLines {
		t.Fatalf("kept %d lines, dropped %d, seen %v", len(lines), dropped, seen)
	}
	if _, _, seen := h.logOf(4); seen {
		t.Fatal("a job never seen has a log")
	}
	ch, cancel := h.subscribe()
	defer cancel()
	for i := 0; i < subBuffer+1; i++ {
		h.fanout([]byte("{}"))
	}
	n := 0
	for range ch {
		n++
	}
	if n != subBuffer {
		t.Fatalf("a slow page got %d events before it was dropped, want %d", n, subBuffer)
	}
}

func progressEvent(text string) *dockerctl.Event {
	return &dockerctl.Event{Kind: dockerctl.EventLog, Text: text}
}

// TestEventsRelay: the page's event stream says whether the daemon is
// connected, then carries each daemon event as one server-sent event, and
// the hub keeps the job's log lines for /api/log.
func TestEventsRelay(t *testing.T) {
	f := &fakeDaemon{events: make(chan []byte)}
	token := strings.Repeat("ef", 32)
	s, err := New(f, "127.0.0.1:4712", token, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	get := func(path string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
		req.Host = "127.0.0.1:4712"
		req.Header.Set(TokenHeader, token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get("/api/events")
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	next := func() string { // the next event's data line
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended: %v", err)
			}
			if strings.HasPrefix(line, "data: ") {
				return strings.TrimSpace(strings.TrimPrefix(line, "data: "))
			}
		}
	}
	if hello := next(); hello != `{"connected":true}` && hello != `{"connected":false}` {
		t.Fatalf("hello: %q", hello)
	}
	raw := `{"seq":9,"type":"build.progress","id":7,"progress":{"kind":"log","text":"   Compiling app v0.1.0"}}`
	f.events <- []byte(raw)
	for {
		if got := next(); got == raw {
			break
		} else if !strings.Contains(got, "dashboard.connected") {
			t.Fatalf("relayed %q, want %q", got, raw)
		}
	}
	body, _ := io.ReadAll(get("/api/log?id=7").Body)
	if !strings.Contains(string(body), "Compiling app") {
		t.Fatalf("log of job 7: %s", body)
	}
}
