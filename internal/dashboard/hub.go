package dashboard

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/internal/progress"
)

// Bounds of what the hub keeps: the log lines of a job (the oldest are
// dropped), the jobs whose logs it keeps, what a page may lag behind.
const (
	logLines  = 5000
	logJobs   = 40
	subBuffer = 1024
	lineLimit = 4096 // a longer line is cut
)

// hub follows the daemon's event stream once, keeps the recent jobs' log
// lines, and hands each event to the open pages.
type hub struct {
	log *zap.Logger

	mu    sync.Mutex
	up    bool
	subs  map[chan []byte]struct{}
	logs  map[int64]*jobLog
	order []int64 // jobs by first event, oldest first
}

type jobLog struct {
	lines   []string
	dropped int
}

func newHub(log *zap.Logger) *hub {
	if log == nil {
		log = zap.NewNop()
	}
	return &hub{log: log, subs: map[chan []byte]struct{}{}, logs: map[int64]*jobLog{}}
}

// run follows d's events until ctx is done, reconnecting every second while
// the daemon does not answer.
func (h *hub) run(ctx context.Context, d Daemon) {
	for ctx.Err() == nil {
		err := d.Events(ctx, func(raw []byte, ev api.Event) error {
			if ev.Type == api.EventSubscribed {
				h.setUp(true)
			}
			h.note(ev)
			h.fanout(raw)
			return nil
		})
		h.setUp(false)
		if ctx.Err() != nil {
			return
		}
		h.log.Debug("dashboard: the daemon's event stream ended", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (h *hub) setUp(up bool) {
	h.mu.Lock()
	changed := h.up != up
	h.up = up
	h.mu.Unlock()
	if changed {
		state := []byte(`{"type":"dashboard.disconnected"}`)
		if up {
			state = []byte(`{"type":"dashboard.connected"}`)
		}
		h.fanout(state)
	}
}

func (h *hub) connected() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up
}

// note keeps the log lines of progress events.
func (h *hub) note(ev api.Event) {
	if ev.ID == 0 || ev.Progress == nil {
		return
	}
	line := progressLine(*ev.Progress)
	if line == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.logs[ev.ID]
	if l == nil {
		l = &jobLog{}
		h.logs[ev.ID] = l
		h.order = append(h.order, ev.ID)
		if len(h.order) > logJobs {
			delete(h.logs, h.order[0])
			h.order = h.order[1:]
		}
	}
	if len(l.lines) >= logLines {
		n := len(l.lines) / 10
		l.lines = append(l.lines[:0], l.lines[n:]...)
		l.dropped += n
	}
	l.lines = append(l.lines, line)
}

// progressLine is a progress event as a log line ("" for none): the
// line of --progress plain, cut at lineLimit.
func progressLine(p dockerctl.Event) string {
	s, _ := progress.PlainLine(p)
	s = strings.TrimRight(s, "\r\n")
	if len(s) > lineLimit {
		s = s[:lineLimit] + "…"
	}
	return s
}

// logOf returns a job's kept lines, how many older ones were dropped, and
// whether the hub saw the job at all.
func (h *hub) logOf(id int64) ([]string, int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.logs[id]
	if l == nil {
		return []string{}, 0, false
	}
	return append([]string{}, l.lines...), l.dropped, true
}

// subscribe returns a channel of events (JSON lines); it is closed when
// the page reads too slowly (the page reconnects and reloads).
func (h *hub) subscribe() (<-chan []byte, func()) {
	ch := make(chan []byte, subBuffer)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}
}

func (h *hub) fanout(raw []byte) {
	line := append([]byte(nil), raw...)
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- line:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}
