// Package progress renders a build's progress events (dockerctl.Event) in
// the convention of docker buildx's --progress:
//
//   - tty: one live line per running step, with a bar of the crates cargo
//     compiled out of the crates it has to compile (when the caller knows
//     how many), the elapsed time and an estimate from the last run of the
//     same step; everything else (finished steps, the compiler's warnings
//     and errors, other output) scrolls above the live lines;
//   - plain: one line per event, as chefd always printed (logs, CI);
//   - json: one event per line, as JSON.
//
// A Renderer is safe for concurrent use: the caller sends events and, on
// a terminal, calls Tick every few hundred milliseconds to move the clocks.
// Time comes from an injected clock, so frames are reproducible.
package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/chefd/chefd/dockerctl"
)

// Mode is how a Renderer renders.
type Mode string

// The modes of --progress.
const (
	Auto  Mode = "auto" // TTY on a terminal, else Plain
	TTY   Mode = "tty"
	Plain Mode = "plain"
	JSON  Mode = "json"
)

// ParseMode reads a --progress value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Auto, TTY, Plain, JSON:
		return m, nil
	case "":
		return Auto, nil
	}
	return "", fmt.Errorf("--progress %q: want auto, tty, plain or json", s)
}

// Resolve turns Auto into TTY on a terminal and Plain elsewhere.
func (m Mode) Resolve(terminal bool) Mode {
	if m != Auto && m != "" {
		return m
	}
	if terminal {
		return TTY
	}
	return Plain
}

// Options tune a Renderer.
type Options struct {
	// Clock is the time (default time.Now).
	Clock func() time.Time
	// Estimates are the durations of the last run of each step, by step
	// title (dockerctl.StepTitle): the live line says how long is left.
	Estimates map[string]time.Duration
	// Totals are the crates each step compiles, by step title, when the
	// caller knows (a cook of a recipe: its third-party packages): the live
	// line draws a bar.
	Totals map[string]int
	// Width is the terminal's width (default 80): live lines are cut to it
	// so that none wraps.
	Width int
}

// Renderer renders events to a writer in one mode.
type Renderer struct {
	mu      sync.Mutex
	w       io.Writer
	mode    Mode
	opt     Options
	running []*step
	drawn   int // live lines on the screen
	seen    map[string]time.Duration
	closed  bool
}

// step is a running step.
type step struct {
	title  string
	start  time.Time
	crates int
	last   string // the crate compiling last
}

// compilingRe matches cargo's "Compiling name vX (path)" lines.
var compilingRe = regexp.MustCompile(`^\s*Compiling (\S+) v\S+`)

// New returns a Renderer writing to w in mode (Auto is read as Plain:
// resolve it first).
func New(w io.Writer, mode Mode, opt Options) *Renderer {
	if opt.Clock == nil {
		opt.Clock = time.Now
	}
	if opt.Width <= 0 {
		opt.Width = 80
	}
	if mode == Auto || mode == "" {
		mode = Plain
	}
	return &Renderer{w: w, mode: mode, opt: opt, seen: map[string]time.Duration{}}
}

// Mode is the renderer's mode.
func (r *Renderer) Mode() Mode { return r.mode }

// Event renders one event.
func (r *Renderer) Event(ev dockerctl.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	title := dockerctl.StepTitle(ev.Step)
	if ev.Kind == dockerctl.EventStep && ev.Done && !ev.Cached {
		r.seen[title] = ev.Duration
	}
	switch r.mode {
	case JSON:
		b, err := json.Marshal(ev)
		if err == nil {
			fmt.Fprintf(r.w, "%s\n", b)
		}
	case Plain:
		if line, ok := PlainLine(ev); ok {
			fmt.Fprintln(r.w, line)
		}
	case TTY:
		r.ttyEvent(ev, title)
	}
}

// Line renders a line of the caller's own (the daemon's news), above the
// live lines on a terminal.
func (r *Renderer) Line(text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.mode == JSON {
		return
	}
	if r.mode == TTY {
		r.redraw([]string{text})
		return
	}
	fmt.Fprintln(r.w, text)
}

// Tick redraws the live lines (their clocks); a no-op but on a terminal.
func (r *Renderer) Tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode == TTY && !r.closed && len(r.running) > 0 {
		r.redraw(nil)
	}
}

// Close erases the live lines; later events are dropped.
func (r *Renderer) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode == TTY && !r.closed {
		r.running = nil
		r.redraw(nil)
	}
	r.closed = true
}

// Durations are the steps' durations seen so far, by title (a cached
// step's is not one): the next run's Estimates.
func (r *Renderer) Durations() map[string]time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]time.Duration, len(r.seen))
	for k, v := range r.seen {
		out[k] = v
	}
	return out
}

// PlainLine is an event's line in Plain mode (chefd's output of old; the
// dashboard's logs too), false for an event that has none.
func PlainLine(ev dockerctl.Event) (string, bool) {
	title := dockerctl.StepTitle(ev.Step)
	switch ev.Kind {
	case dockerctl.EventStep:
		switch {
		case !ev.Done:
			return "step: " + title, true
		case ev.Cached:
			return "step: " + title + " CACHED", true
		default:
			return fmt.Sprintf("step: %s done in %.1fs", title, ev.Duration.Seconds()), true
		}
	case dockerctl.EventLog:
		return "   " + ev.Text, true
	case dockerctl.EventError:
		return "error: " + ev.Text, true
	case dockerctl.EventWarning:
		return "warning: " + ev.Text, true
	}
	return "", false
}

const (
	bold  = "\x1b[1m"
	dim   = "\x1b[2m"
	red   = "\x1b[31m"
	green = "\x1b[32m"
	amber = "\x1b[33m"
	reset = "\x1b[0m"
)

func (r *Renderer) ttyEvent(ev dockerctl.Event, title string) {
	var scroll []string
	switch ev.Kind {
	case dockerctl.EventStep:
		i := r.find(title)
		switch {
		case !ev.Done && i < 0:
			r.running = append(r.running, &step{title: title, start: r.opt.Clock()})
		case !ev.Done:
		case ev.Cached:
			r.remove(i)
			scroll = append(scroll, dim+"=> "+title+" CACHED"+reset)
		default:
			r.remove(i)
			scroll = append(scroll, fmt.Sprintf("%s=> %s done in %.1fs%s", green, title, ev.Duration.Seconds(), reset))
		}
	case dockerctl.EventLog:
		if m := compilingRe.FindStringSubmatch(ev.Text); m != nil {
			if i := r.find(title); i >= 0 {
				r.running[i].crates++
				r.running[i].last = m[1]
			}
			break // counted in the live line, not scrolled
		}
		scroll = append(scroll, "   "+ev.Text)
	case dockerctl.EventError:
		scroll = append(scroll, red+"error: "+ev.Text+reset)
	case dockerctl.EventWarning:
		scroll = append(scroll, amber+"warning: "+ev.Text+reset)
	default:
		return
	}
	r.redraw(scroll)
}

func (r *Renderer) find(title string) int {
	for i, s := range r.running {
		if s.title == title {
			return i
		}
	}
	return -1
}

func (r *Renderer) remove(i int) {
	if i >= 0 {
		r.running = append(r.running[:i], r.running[i+1:]...)
	}
}

// redraw erases the live lines, prints scroll above them, and draws them
// again.
func (r *Renderer) redraw(scroll []string) {
	var b strings.Builder
	if r.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\x1b[J", r.drawn)
	}
	for _, l := range scroll {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	now := r.opt.Clock()
	for _, s := range r.running {
		b.WriteString(bold + cut(r.liveLine(s, now), r.opt.Width-1) + reset + "\n")
	}
	r.drawn = len(r.running)
	io.WriteString(r.w, b.String())
}

// liveLine is a running step's line: "=> cook: cargo build
// [=====>      ] 12/32 crates 8.1s, about 13s left (serde_json)".
func (r *Renderer) liveLine(s *step, now time.Time) string {
	line := "=> " + s.title
	elapsed := now.Sub(s.start)
	if total := r.opt.Totals[s.title]; total > 0 {
		line += " " + bar(s.crates, total, 20) + fmt.Sprintf(" %d/%d crates", s.crates, total)
	} else if s.crates > 0 {
		line += fmt.Sprintf(" %d crates", s.crates)
	}
	line += fmt.Sprintf(" %.1fs", elapsed.Seconds())
	if est, ok := r.opt.Estimates[s.title]; ok && est > 0 {
		line += estimate(elapsed, est)
	}
	if s.last != "" {
		line += " (" + s.last + ")"
	}
	return line
}

// estimate says how much of the last run's time est is left.
func estimate(elapsed, est time.Duration) string {
	if left := est - elapsed; left > 0 {
		return fmt.Sprintf(", about %s left", round(left))
	}
	return fmt.Sprintf(", over the last run's %s", round(est))
}

func round(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// bar draws done of total in width cells.
func bar(done, total, width int) string {
	if done > total {
		done = total
	}
	n := done * width / total
	b := strings.Repeat("=", n)
	if n < width {
		b += ">" + strings.Repeat(" ", width-n-1)
	}
	return "[" + b + "]"
}

// cut shortens s to n runes.
func cut(s string, n int) string {
	if n <= 0 {
		return s
	}
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	return string(rs[:n])
}
