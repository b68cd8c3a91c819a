package daemon

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/recipe"
	"github.com/chefd/chefd/watcher"
)

// Option configures a Scheduler (New) or the daemon (Config.Options).
type Option func(*options)

// options configure a Scheduler (set by the Option functions below;
// Builder and Plan are New's arguments).
type options struct {
	Builder Builder
	Plan    PlanFunc
	// Batches come from the watcher; nil runs without one (builds on
	// request only).
	Batches <-chan watcher.Batch
	Log     *zap.Logger
	// KeepCooked is how many cooked images GC keeps. Default 3.
	KeepCooked int
	// HistorySize bounds the build history. Default 50.
	HistorySize int
	// Manual disables automatic code builds on changes; cooks still start
	// when the recipe changes.
	Manual bool
	// Settle is called before a build request is decided, so that changes
	// saved just before the request have reached the scheduler (e.g. wait
	// for the watcher's debounce). nil: no wait.
	Settle func(ctx context.Context) error
	// CancelGrace is how long a cancelled build or cook may take to stop
	// before the scheduler stops waiting for it (BuildKit sometimes hangs on
	// cancel). Default 30s.
	CancelGrace time.Duration
	// StateFile, when set, keeps the history and the last cook duration
	// across restarts.
	StateFile string
	// OnRecipe, when set, is called on the scheduler's loop with each new
	// recipe (it must not block): Run points the watcher at the path crates
	// outside the workspace with it.
	OnRecipe func(*recipe.Recipe)
	// EngineRetry is the first wait before a cook that failed because the
	// engine was unreachable is tried again; it doubles up to
	// EngineRetryMax. Defaults 1s and 1 minute.
	EngineRetry, EngineRetryMax time.Duration
	// Mode is the mode of the daemon's builds (saves, build requests);
	// a request may ask for an exact build. Default dockerctl.ModeExact.
	Mode dockerctl.Mode
	// Hold reports a hold on automatic builds (git in the middle of an
	// operation): the file that holds them and since when; "" when none.
	Hold func() (reason string, since time.Time)
	// StuckAfter is how long a build or cook may print nothing before it
	// is reported as possibly stuck (stuck.go). Default 10 minutes.
	StuckAfter time.Duration
}

// WithStuckAfter sets how long a job may print nothing before it is
// reported as possibly stuck.
func WithStuckAfter(d time.Duration) Option { return func(o *options) { o.StuckAfter = d } }

// WithBatches feeds the scheduler the watcher's batches (Run sets it).
func WithBatches(b <-chan watcher.Batch) Option { return func(o *options) { o.Batches = b } }

// WithLog sets the logger (default: none).
func WithLog(l *zap.Logger) Option { return func(o *options) { o.Log = l } }

// WithKeepCooked sets how many cooked images GC keeps (default 3).
func WithKeepCooked(n int) Option { return func(o *options) { o.KeepCooked = n } }

// WithHistorySize bounds the build history (default 50).
func WithHistorySize(n int) Option { return func(o *options) { o.HistorySize = n } }

// WithMode sets the mode of the daemon's builds (default exact; the
// daemon's Run uses loop unless chefd.toml or CI says otherwise).
func WithMode(m dockerctl.Mode) Option { return func(o *options) { o.Mode = m } }

// WithManual turns automatic code builds off (cooks still start when the
// recipe changes).
func WithManual(v bool) Option { return func(o *options) { o.Manual = v } }

// WithSettle sets what a build request waits for before it is decided (Run
// sets the watcher's Sync).
func WithSettle(f func(ctx context.Context) error) Option { return func(o *options) { o.Settle = f } }

// WithCancelGrace sets how long a cancelled job may take to stop (default
// 30s).
func WithCancelGrace(d time.Duration) Option { return func(o *options) { o.CancelGrace = d } }

// WithStateFile keeps the history across restarts in file (Run sets it).
func WithStateFile(file string) Option { return func(o *options) { o.StateFile = file } }

// WithOnRecipe is called on the loop with each new recipe; it must not
// block (Run sets it).
func WithOnRecipe(f func(*recipe.Recipe)) Option { return func(o *options) { o.OnRecipe = f } }

// WithHold reports a hold on automatic builds (Run sets the watcher's).
func WithHold(f func() (reason string, since time.Time)) Option {
	return func(o *options) { o.Hold = f }
}

// WithEngineRetry sets the first and the longest wait between attempts at
// a cook that failed because the engine was unreachable (defaults 1s and
// 1 minute).
func WithEngineRetry(first, longest time.Duration) Option {
	return func(o *options) { o.EngineRetry, o.EngineRetryMax = first, longest }
}
