package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
)

// warnings keeps the last few warnings for the status.
type warnings struct {
	mu   sync.Mutex
	list []api.Warning
}

func (w *warnings) add(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, api.Warning{Time: time.Now(), Message: msg})
	if len(w.list) > 10 {
		w.list = w.list[len(w.list)-10:]
	}
}

func (w *warnings) get() []api.Warning {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]api.Warning(nil), w.list...)
}

type server struct {
	s     *Scheduler
	info  api.Info
	log   *zap.Logger
	stop  func()
	warns *warnings
	quit  chan struct{} // closed when the daemon stops: ends event and log streams
	once  sync.Once
}

// close ends the event and log streams (build requests get their answers
// from the stopping scheduler).
func (sv *server) close() { sv.once.Do(func() { close(sv.quit) }) }

// streamContext is the request's context, also cancelled by close.
func (sv *server) streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	go func() {
		select {
		case <-sv.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// NewHandler serves the daemon API for s. stop is called (after the
// answer is sent) by POST /v1/stop.
//
//	GET  /v1/ping              Info
//	GET  /v1/status?recent=N   FullStatus
//	GET  /v1/history?n=N       []Record, newest first
//	POST /v1/build             BuildRequest → {"record": Record}; with "stream": true
//	                           (or ?stream=1) an NDJSON stream of events ending
//	                           with a "result" or "error" line
//	GET  /v1/events            NDJSON stream of Event
//	GET  /v1/logs?n=N&follow=1&raw=1  the daemon log (text)
//	POST /v1/gc                {"removed": [...]}
//	POST /v1/cancel            {"id": N} (0: the running build, else the queued
//	                           one) → {"record": Record}; 404 "not_found"
//	POST /v1/stop              {"stopping": true}
func NewHandler(s *Scheduler, info api.Info, stop func(), log *zap.Logger) http.Handler {
	return newServer(s, info, stop, log, &warnings{}).handler()
}

func newServer(s *Scheduler, info api.Info, stop func(), log *zap.Logger, w *warnings) *server {
	if log == nil {
		log = zap.NewNop()
	}
	return &server{s: s, info: info, log: log, stop: stop, warns: w, quit: make(chan struct{})}
}

// Request limits: the API's requests are small JSON bodies; anything
// bigger is refused before it is read (413, code "too_large"), so a client
// cannot make the daemon hold it in memory. Headers: MaxHeaderBytes.
const (
	MaxRequestBody = 1 << 20
	MaxHeaderBytes = 64 << 10
)

func tooLarge() *api.APIError {
	return &api.APIError{Code: "too_large", Status: http.StatusRequestEntityTooLarge,
		Message: fmt.Sprintf("request body larger than %d bytes (the daemon's requests are small JSON objects)", MaxRequestBody)}
}

// limitBody refuses a body declared larger than MaxRequestBody and caps
// the rest (a chunked body of unknown length): reading past the cap fails
// with *http.MaxBytesError.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxRequestBody {
			writeError(w, tooLarge())
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBody)
		next.ServeHTTP(w, r)
	})
}

func (sv *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", sv.ping)
	mux.HandleFunc("GET /v1/status", sv.status)
	mux.HandleFunc("GET /v1/history", sv.history)
	mux.HandleFunc("POST /v1/build", sv.build)
	mux.HandleFunc("GET /v1/events", sv.events)
	mux.HandleFunc("GET /v1/logs", sv.logs)
	mux.HandleFunc("POST /v1/gc", sv.gc)
	mux.HandleFunc("POST /v1/cancel", sv.cancel)
	mux.HandleFunc("POST /v1/stop", sv.stopHandler)
	return limitBody(mux)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// apiError maps scheduler errors to API errors.
func apiError(err error) *api.APIError {
	var nw *api.NotWarmError
	var re *RecipeError
	var ae *api.APIError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &nw):
		return &api.APIError{Code: "not_warm", Message: nw.Error(), NotWarm: nw, Status: http.StatusConflict}
	case errors.As(err, &re):
		return &api.APIError{Code: "recipe", Message: re.Error(), Status: http.StatusUnprocessableEntity}
	case errors.Is(err, ErrClosed):
		return &api.APIError{Code: "stopping", Message: err.Error(), Status: http.StatusServiceUnavailable}
	case errorCode(err) == api.CodeEngineUnreachable:
		return &api.APIError{Code: api.CodeEngineUnreachable, Message: err.Error(), Status: http.StatusServiceUnavailable}
	}
	return &api.APIError{Code: "internal", Message: err.Error(), Status: http.StatusInternalServerError}
}

func writeError(w http.ResponseWriter, err error) {
	ae := apiError(err)
	writeJSON(w, ae.Status, ae)
}

func intParam(r *http.Request, name string, def int) int {
	if v := r.URL.Query().Get(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func boolParam(r *http.Request, name string) bool {
	b, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return b
}

func (sv *server) ping(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, sv.info)
}

func (sv *server) status(w http.ResponseWriter, r *http.Request) {
	st, err := sv.s.Status(intParam(r, "recent", 10))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.FullStatus{Daemon: sv.info, Warnings: sv.warns.get(), Status: st})
}

func (sv *server) history(w http.ResponseWriter, r *http.Request) {
	h, err := sv.s.History(intParam(r, "n", 0))
	if err != nil {
		writeError(w, err)
		return
	}
	if h == nil {
		h = []api.Record{}
	}
	writeJSON(w, http.StatusOK, h)
}

func (sv *server) build(w http.ResponseWriter, r *http.Request) {
	var body api.BuildBody
	if !decodeBody(w, r, &body, "build request") {
		return
	}
	if boolParam(r, "stream") {
		body.Stream = true
	}
	ctx := r.Context()
	if !body.Stream {
		rec, err := sv.s.Build(ctx, body.BuildRequest)
		if err != nil {
			if ctx.Err() != nil {
				return // the client went away
			}
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"record": rec})
		return
	}
	// stream: subscribe first so that no event of the build is missed
	events, unsubscribe := sv.s.Subscribe(4096)
	defer unsubscribe()
	out := newStream(w)
	out.send(api.Event{Type: api.EventSubscribed, Time: time.Now()})
	type answer struct {
		rec api.Record
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		rec, err := sv.s.Build(ctx, body.BuildRequest)
		answered <- answer{rec, err}
	}()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if isBuildEvent(ev.Type) {
				out.send(ev)
			}
		case a := <-answered:
			// deliver what is already queued, then the answer
			for drained := false; !drained && events != nil; {
				select {
				case ev, ok := <-events:
					if !ok {
						drained = true
					} else if isBuildEvent(ev.Type) {
						out.send(ev)
					}
				default:
					drained = true
				}
			}
			if a.err != nil {
				if ctx.Err() != nil {
					return
				}
				out.send(api.Event{Type: api.EventError, Time: time.Now(), Error: apiError(a.err)})
				return
			}
			rec := a.rec
			out.send(api.Event{Type: api.EventResult, Time: time.Now(), ID: rec.ID, Recipe: rec.Recipe, Record: &rec})
			return
		case <-ctx.Done():
			return
		}
	}
}

// decodeBody reads a request's JSON body (none is fine) into v, or answers
// the error (413 "too_large", 400 "bad_request") and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, what string) bool {
	if r.ContentLength == 0 {
		return true
	}
	err := json.NewDecoder(r.Body).Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, tooLarge())
	} else {
		writeJSON(w, http.StatusBadRequest, &api.APIError{Code: "bad_request", Message: what + ": " + err.Error()})
	}
	return false
}

func isBuildEvent(t api.EventType) bool {
	switch t {
	case api.EventRecipe, api.EventRecipeError, api.EventCookStart, api.EventCookProgress, api.EventCookDone,
		api.EventBuildQueued, api.EventBuildStart, api.EventBuildProgress, api.EventBuildDone, api.EventStopping, api.EventDropped, api.EventStuck:
		return true
	}
	return false
}

// stream writes NDJSON lines, flushing each.
type stream struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	enc *json.Encoder
	err error
}

func newStream(w http.ResponseWriter) *stream {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	return &stream{w: w, rc: http.NewResponseController(w), enc: json.NewEncoder(w)}
}

func (s *stream) send(ev api.Event) {
	if s.err != nil {
		return
	}
	if s.err = s.enc.Encode(ev); s.err == nil {
		s.err = s.rc.Flush()
	}
}

func (sv *server) events(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := sv.streamContext(r)
	defer cancel()
	events, unsubscribe := sv.s.Subscribe(4096)
	defer unsubscribe()
	out := newStream(w)
	out.send(api.Event{Type: api.EventSubscribed, Time: time.Now()})
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			out.send(ev)
			if out.err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (sv *server) logs(w http.ResponseWriter, r *http.Request) {
	var format func([]byte) []byte
	if !boolParam(r, "raw") {
		format = api.FormatLogLine
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rc := http.NewResponseController(w)
	ctx, cancel := sv.streamContext(r)
	defer cancel()
	err := api.TailLog(ctx, sv.info.Paths.Log, intParam(r, "n", 100), boolParam(r, "follow"), w, format,
		func() { _ = rc.Flush() })
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(w, "(no log yet: %s)\n", sv.info.Paths.Log)
	} else if err != nil && ctx.Err() == nil {
		sv.log.Debug("logs", zap.Error(err))
	}
}

func (sv *server) gc(w http.ResponseWriter, r *http.Request) {
	removed, err := sv.s.GC(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if removed == nil {
		removed = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": removed})
}

func (sv *server) cancel(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID int64 `json:"id"`
	}
	if !decodeBody(w, r, &body, "cancel request") {
		return
	}
	rec, err := sv.s.Cancel(body.ID)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"record": rec})
}

func (sv *server) stopHandler(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"stopping": true, "pid": sv.info.PID})
	_ = http.NewResponseController(w).Flush()
	sv.log.Info("stop requested over the API")
	if sv.stop != nil {
		sv.stop()
	}
}
