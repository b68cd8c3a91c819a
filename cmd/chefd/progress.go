package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/internal/progress"
	"github.com/chefd/chefd/recipe"
)

// progressView is a build's progress on stderr (--progress): the events'
// sink, a ticker moving a terminal's clocks, and the steps' durations kept
// for the next run's estimates.
type progressView struct {
	r     *progress.Renderer
	stop  chan struct{}
	done  chan struct{}
	store string                   // the estimates' file ("" none)
	est   map[string]time.Duration // what it held
}

// estimatesFile keeps the last duration of each step, per workspace.
const estimatesFile = "step-times.json"

// newProgress starts a view of a build's progress in the mode --progress
// names, on w; stateDir keeps the steps' durations ("" none); totals are
// the crates each step compiles, when known.
func (a *app) newProgress(w io.Writer, stateDir string, totals map[string]int) (*progressView, error) {
	mode, err := progress.ParseMode(a.progress)
	if err != nil {
		return nil, &exitError{code: 2, msg: err.Error()}
	}
	terminal, width := false, 0
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		terminal = true
		width, _, _ = term.GetSize(int(f.Fd()))
	}
	v := &progressView{stop: make(chan struct{}), done: make(chan struct{})}
	if stateDir != "" {
		v.store = filepath.Join(stateDir, estimatesFile)
	}
	v.est = map[string]time.Duration{}
	if v.store != "" {
		if b, err := os.ReadFile(v.store); err == nil && len(b) < 1<<20 {
			_ = json.Unmarshal(b, &v.est)
		}
	}
	v.r = progress.New(w, mode.Resolve(terminal), progress.Options{Estimates: v.est, Totals: totals, Width: width})
	go func() {
		defer close(v.done)
		if v.r.Mode() != progress.TTY {
			return
		}
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				v.r.Tick()
			case <-v.stop:
				return
			}
		}
	}()
	return v, nil
}

// crateTotals are the crates the cargo steps of a build of r compile at
// most: every locked third-party package for a cook, every local package
// for a code build.
func crateTotals(r *recipe.Recipe) map[string]int {
	third := 0
	if r.LockFile != nil {
		for _, l := range strings.Split(r.LockFile.Contents, "\n") {
			if strings.HasPrefix(l, "source = ") {
				third++
			}
		}
	}
	out := map[string]int{dockerctl.StepCodeBuild: len(r.LocalPackages())}
	if third > 0 {
		out[dockerctl.StepCookBuild] = third
	}
	return out
}

// viewFor is the progress view of a command of a session: none (a nil
// sink) with --json, unless --progress json asks for the events too.
func (a *app) viewFor(asJSON bool, s *session) (*progressView, error) {
	if asJSON && a.progress != string(progress.JSON) {
		return nil, nil
	}
	return a.newProgress(a.stderr, s.builder.StateDir(), crateTotals(s.recipe))
}

// sink is the builder's Progress (nil for no view).
func (v *progressView) sink() dockerctl.Progress {
	if v == nil {
		return nil
	}
	return v.r.Event
}

// close ends the live lines and keeps the steps' durations.
func (v *progressView) close() {
	if v == nil {
		return
	}
	select {
	case <-v.stop:
		return
	default:
	}
	close(v.stop)
	<-v.done
	v.r.Close()
	if v.store == "" {
		return
	}
	seen := v.r.Durations()
	if len(seen) == 0 {
		return
	}
	for k, d := range seen {
		v.est[k] = d
	}
	if b, err := json.Marshal(v.est); err == nil && os.MkdirAll(filepath.Dir(v.store), 0o700) == nil {
		tmp := v.store + ".tmp"
		if os.WriteFile(tmp, b, 0o600) == nil {
			_ = os.Rename(tmp, v.store)
		}
	}
}
