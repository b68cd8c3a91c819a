package progress

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chefd/chefd/dockerctl"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeClock is a clock the test moves.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func TestParseMode(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Mode
		err  bool
	}{{"", Auto, false}, {"auto", Auto, false}, {"tty", TTY, false}, {"plain", Plain, false}, {"json", JSON, false}, {"fancy", "", true}} {
		got, err := ParseMode(c.in)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("ParseMode(%q) = %q, %v", c.in, got, err)
		}
	}
	if Auto.Resolve(true) != TTY || Auto.Resolve(false) != Plain || Plain.Resolve(true) != Plain || TTY.Resolve(false) != TTY {
		t.Error("Resolve: auto is tty on a terminal only; an explicit mode stays")
	}
}

func TestBarAndEstimate(t *testing.T) {
	for _, c := range []struct {
		done, total int
		want        string
	}{{0, 4, "[>       ]"}, {2, 4, "[====>   ]"}, {4, 4, "[========]"}, {9, 4, "[========]"}} {
		if got := bar(c.done, c.total, 8); got != c.want {
			t.Errorf("bar(%d, %d) = %q, want %q", c.done, c.total, got, c.want)
		}
	}
	if got := estimate(8*time.Second, 21*time.Second); got != ", about 13s left" {
		t.Errorf("estimate: %q", got)
	}
	if got := estimate(25*time.Second, 21*time.Second); got != ", over the last run's 21s" {
		t.Errorf("estimate past the last run: %q", got)
	}
	if got := estimate(time.Second, 3500*time.Millisecond); got != ", about 2.5s left" {
		t.Errorf("estimate under 10s: %q", got)
	}
}

// TestTTYLiveLine: a running cargo step's live line counts the crates
// cargo compiles (not scrolled), draws the bar against the total, gives
// the time left from the last run, and is cut to the terminal's width;
// the step's end scrolls a line and the live line goes.
func TestTTYLiveLine(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	var out bytes.Buffer
	r := New(&out, TTY, Options{Clock: clock.Now, Width: 200,
		Totals:    map[string]int{dockerctl.StepCookBuild: 4},
		Estimates: map[string]time.Duration{dockerctl.StepCookBuild: 10 * time.Second}})
	step := dockerctl.StepCookBuild
	r.Event(dockerctl.Event{Kind: dockerctl.EventStep, Step: step})
	out.Reset()
	r.Event(dockerctl.Event{Kind: dockerctl.EventLog, Step: step, Text: "   Compiling serde v1.0.152"})
	clock.now = clock.now.Add(4 * time.Second)
	r.Event(dockerctl.Event{Kind: dockerctl.EventLog, Step: step, Text: "   Compiling itoa v1.0.5"})
	r.Event(dockerctl.Event{Kind: dockerctl.EventLog, Step: step, Text: "warning: unused import"})
	got := visible(out.String())
	for _, want := range []string{
		"=> cook: cargo build [=====>              ] 1/4 crates 0.0s, about 10s left (serde)",
		"=> cook: cargo build [==========>         ] 2/4 crates 4.0s, about 6.0s left (itoa)",
		"   warning: unused import\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "   Compiling") {
		t.Errorf("a Compiling line scrolled:\n%s", got)
	}
	narrow := New(&out, TTY, Options{Clock: clock.Now, Width: 20})
	narrow.Event(dockerctl.Event{Kind: dockerctl.EventStep, Step: step})
	out.Reset()
	narrow.Tick()
	l := strings.TrimSuffix(visible(out.String()), "\n")
	if l = l[strings.Index(l, "<clear>")+len("<clear>"):]; len([]rune(l)) > 19 {
		t.Errorf("a live line wider than the terminal: %q", l)
	}
	out.Reset()
	r.Close()
	if got := out.String(); got != "\x1b[1A\x1b[J" {
		t.Errorf("Close: %q, want the live line erased", got)
	}
	r.Event(dockerctl.Event{Kind: dockerctl.EventLog, Text: "late"})
	if strings.Contains(out.String(), "late") {
		t.Error("an event after Close was drawn")
	}
}

// visible makes escape sequences readable.
func visible(s string) string {
	s = strings.NewReplacer("\x1b[1m", "", "\x1b[0m", "", "\x1b[2m", "", "\x1b[31m", "", "\x1b[32m", "",
		"\x1b[33m", "", "\x1b[J", "<clear>").Replace(s)
	return strings.ReplaceAll(s, "\x1b[", "<up ")
}

// replay reads a recorded event stream (chefd --progress json) and
// renders it in mode, the clock following the events' times.
func replay(t *testing.T, file string, mode Mode, opt Options) (string, *Renderer) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	clock := &fakeClock{}
	opt.Clock = clock.Now
	var out bytes.Buffer
	r := New(&out, mode, opt)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev dockerctl.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		clock.now = ev.Time
		r.Event(ev)
	}
	r.Close()
	return out.String(), r
}

// TestGolden renders recorded streams of real builds (a cook from nothing
// of the example, a delta cook, a code build) as tty frames and plain
// lines and compares them with golden files (go test -update rewrites
// them). The tty frames are written with their escape sequences made
// visible.
func TestGolden(t *testing.T) {
	streams, _ := filepath.Glob("testdata/*.events.jsonl")
	if len(streams) == 0 {
		t.Fatal("no recorded streams in testdata")
	}
	for _, file := range streams {
		name := strings.TrimSuffix(filepath.Base(file), ".events.jsonl")
		opt := Options{Width: 100, Totals: map[string]int{dockerctl.StepCookBuild: 32, dockerctl.StepCodeBuild: 3},
			Estimates: map[string]time.Duration{dockerctl.StepCookBuild: 40 * time.Second, dockerctl.StepCodeBuild: 6 * time.Second}}
		for _, mode := range []Mode{TTY, Plain} {
			got, _ := replay(t, file, mode, opt)
			if mode == TTY {
				got = visible(got)
			}
			golden := filepath.Join("testdata", name+"."+string(mode)+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./internal/progress -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("%s, %s: the output differs from %s (go test ./internal/progress -update, then review the diff)", name, mode, golden)
			}
		}
	}
}

// TestGoldenDurations: a replayed stream's step durations are the next
// run's estimates; a cached step gives none.
func TestGoldenDurations(t *testing.T) {
	streams, _ := filepath.Glob("testdata/*.events.jsonl")
	for _, file := range streams {
		_, r := replay(t, file, JSON, Options{})
		d := r.Durations()
		if strings.Contains(file, "code") {
			if d[dockerctl.StepCodeBuild] <= 0 {
				t.Errorf("%s: no duration of %q: %v", file, dockerctl.StepCodeBuild, d)
			}
		}
	}
}
