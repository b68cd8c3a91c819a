// Package dashboard is chefd's web page (chefd ui): the daemon's state,
// running and queued builds with live progress, the history as a timeline
// of phases, plots of save-to-image and cook times, each build's why, and
// its log, live, with two actions (build now, cancel).
//
// It serves on loopback only, behind a random token: every request for
// the daemon's data or an action must carry it (the page's URL holds it; the
// page sends it in a header). An action also needs the page's own origin
// (Origin, Sec-Fetch-Site) and a JSON body, so a cross-site form or fetch
// changes nothing; a Host other than the listener's address is refused
// (DNS rebinding). The static assets (the same in every chefd binary) are
// embedded and public.
package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
)

// Daemon is what the page reads and asks of the daemon (*api.Client).
type Daemon interface {
	Status(ctx context.Context, recent int) (api.FullStatus, error)
	History(ctx context.Context, n int) ([]api.Record, error)
	Events(ctx context.Context, fn func(raw []byte, ev api.Event) error) error
	Build(ctx context.Context, req api.BuildRequest, onEvent func(api.Event)) (api.Record, error)
	Cancel(ctx context.Context, id int64) (api.Record, error)
}

//go:embed assets
var assets embed.FS

// TokenHeader carries the token on the page's requests.
const TokenHeader = "X-Chefd-Token"

// NewToken returns a random token (256 bits, hex).
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// Server is the dashboard of one daemon.
type Server struct {
	d     Daemon
	token string
	hosts []string // the Host values accepted
	log   *zap.Logger
	hub   *hub
}

// New returns the dashboard of d for a listener on addr (host:port, a
// loopback address), guarded by token. Run must run for live updates.
func New(d Daemon, addr, token string, log *zap.Logger) (*Server, error) {
	if len(token) < 32 {
		return nil, errors.New("dashboard: the token is too short")
	}
	if err := CheckAddr(addr); err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	if log == nil {
		log = zap.NewNop()
	}
	hosts := []string{addr, net.JoinHostPort("localhost", port)}
	return &Server{d: d, token: token, hosts: hosts, log: log, hub: newHub(log)}, nil
}

// CheckAddr refuses an address the dashboard may not listen on: anything
// but host:port with a loopback IP.
func CheckAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: want host:port, e.g. 127.0.0.1:0", addr)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q: the dashboard listens on a loopback address only (127.0.0.1 or ::1); reach it from elsewhere through an SSH tunnel", addr)
	}
	return nil
}

// URL is the page's address, with its token.
func (s *Server) URL() string { return "http://" + s.hosts[0] + "/?token=" + s.token }

// Run follows the daemon's events (reconnecting while the daemon is away)
// for the page's live updates and logs, until ctx is done.
func (s *Server) Run(ctx context.Context) { s.hub.run(ctx, s.d) }

// Handler serves the page and its API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.Handle("GET /{$}", s.reader(s.page))
	mux.Handle("GET /api/status", s.reader(s.status))
	mux.Handle("GET /api/history", s.reader(s.history))
	mux.Handle("GET /api/log", s.reader(s.buildLog))
	mux.Handle("GET /api/events", s.reader(s.events))
	mux.Handle("POST /api/build", s.action(s.build))
	mux.Handle("POST /api/cancel", s.action(s.cancel))
	return s.guard(mux)
}

// guard: the Host check and the headers of every answer.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer") // the token is in the page's URL
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'none'; base-uri 'none'")
		h.Set("Cache-Control", "no-store")
		if !s.hostOK(r.Host) {
			http.Error(w, "chefd ui: wrong Host (open the URL chefd ui printed)", http.StatusMisdirectedRequest)
			return
		}
		if r.Method == http.MethodOptions { // a cross-origin preflight: never granted
			http.Error(w, "chefd ui: cross-origin requests are refused", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) hostOK(host string) bool {
	for _, h := range s.hosts {
		if host == h {
			return true
		}
	}
	return false
}

// tokenOK: the token in the header, or (for a page load and the event
// stream, which cannot send headers) in the query.
func (s *Server) tokenOK(r *http.Request, queryToo bool) bool {
	got := r.Header.Get(TokenHeader)
	if got == "" && queryToo {
		got = r.URL.Query().Get("token")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1
}

// crossSite reports a request that a page of another origin made.
func (s *Server) crossSite(r *http.Request) bool {
	if sf := r.Header.Get("Sec-Fetch-Site"); sf != "" && sf != "same-origin" && sf != "none" {
		return true
	}
	if o := r.Header.Get("Origin"); o != "" && !s.originOK(o) {
		return true
	}
	return false
}

func (s *Server) originOK(o string) bool {
	for _, h := range s.hosts {
		if o == "http://"+h {
			return true
		}
	}
	return false
}

// allowed answers a request of another site (403) or without the token
// (401) and reports whether it may go on. The token comes in the header,
// or for reads also in the query (a page load and the event stream cannot
// send headers).
func (s *Server) allowed(w http.ResponseWriter, r *http.Request, queryToken bool) bool {
	if s.crossSite(r) {
		http.Error(w, "chefd ui: cross-site request refused", http.StatusForbidden)
		return false
	}
	if !s.tokenOK(r, queryToken) {
		http.Error(w, "chefd ui: missing or wrong token (open the URL chefd ui printed)", http.StatusUnauthorized)
		return false
	}
	return true
}

func (s *Server) reader(f http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.allowed(w, r, true) {
			f(w, r)
		}
	})
}

// action: the token in the header only (a form cannot set one), the
// page's own origin, a JSON body.
func (s *Server) action(f http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.allowed(w, r, false) {
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			http.Error(w, "chefd ui: an action's body is JSON", http.StatusUnsupportedMediaType)
			return
		}
		f(w, r)
	})
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	data, err := assets.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(data)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeErr answers with the daemon's error (its status when it has one).
func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusBadGateway
	var ae *api.APIError
	if errors.As(err, &ae) && ae.Status != 0 {
		code = ae.Status
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.d.Status(r.Context(), 0)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	if n <= 0 || n > 500 {
		n = 100
	}
	h, err := s.d.History(r.Context(), n)
	if err != nil {
		writeErr(w, err)
		return
	}
	if h == nil {
		h = []api.Record{}
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) buildLog(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.URL.Query().Get("id"), 10, 64)
	if err != nil || id <= 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "id: want a build or cook ID"})
		return
	}
	lines, dropped, ok := s.hub.logOf(id)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "lines": lines, "dropped": dropped, "seen": ok})
}

// events streams the daemon's events as server-sent events (each the
// daemon's JSON event), and "hello" first.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	ch, cancel := s.hub.subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	fmt.Fprintf(w, "event: hello\ndata: {\"connected\":%t}\n\n", s.hub.connected())
	if rc.Flush() != nil {
		return
	}
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case line, ok := <-ch:
			if !ok {
				return // too slow: the page reconnects and reloads
			}
			if _, err := fmt.Fprintf(w, "data: %s\n\n", line); err != nil || rc.Flush() != nil {
				return
			}
		case <-ping.C:
			if _, err := io.WriteString(w, ": ping\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Server) build(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Exact bool `json:"exact"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "build: " + err.Error()})
		return
	}
	rec, err := s.d.Build(r.Context(), api.BuildRequest{Force: true, Exact: body.Exact}, nil)
	if err != nil {
		writeErr(w, err)
		return
	}
	s.log.Info("build requested from the dashboard", zap.Int64("id", rec.ID))
	writeJSON(w, http.StatusOK, map[string]any{"record": rec})
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID int64 `json:"id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "cancel: " + err.Error()})
		return
	}
	rec, err := s.d.Cancel(r.Context(), body.ID)
	if err != nil {
		writeErr(w, err)
		return
	}
	s.log.Info("cancel requested from the dashboard", zap.Int64("id", rec.ID))
	writeJSON(w, http.StatusOK, map[string]any{"record": rec})
}
