package watcher

import (
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// Functional options of New (the shape of ko's pkg/build/options.go); the
// unexported ones are knobs for tests.

// Option configures a Watcher.
type Option func(*config)

type config struct {
	quiet        time.Duration
	maxWait      time.Duration
	pollInterval time.Duration
	ignores      []string
	log          *zap.Logger
	gitHold      bool
	builtinOnly  bool // a path crate outside the workspace (Roots)

	// Unexported knobs, for tests.
	watchBudget int                       // >0: pretend inotify has this many watches
	budgetErr   error                     // what adding one more watch then fails with (ENOSPC)
	hashLimit   int64                     // files above are compared by size+mtime
	gitHoldWarn time.Duration             // warn when git holds batches this long
	eventFilter func(fsnotify.Event) bool // returns true to drop a raw event
	noInotify   bool                      // behave as if inotify were unavailable
}

// WithDebounce sets the quiet period: a batch is emitted once no event
// arrived for that long. Default 100ms.
func WithDebounce(quiet time.Duration) Option {
	return func(c *config) { c.quiet = quiet }
}

// WithMaxWait sets how long after its first event a batch is emitted even if
// events keep coming. Default 2s.
func WithMaxWait(d time.Duration) Option {
	return func(c *config) { c.maxWait = d }
}

// WithIgnore adds ignore patterns in .dockerignore syntax (e.g. from
// chefd.toml). They apply on top of the built-in rules and the root
// .dockerignore (package inputs: what is watched is what is shipped).
func WithIgnore(patterns ...string) Option {
	return func(c *config) { c.ignores = append(c.ignores, patterns...) }
}

// WithLogger sets the logger. Default zap.NewNop().
func WithLogger(l *zap.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithPollInterval sets the interval of the polling fallback used for
// subtrees that could not get inotify watches. Default 1s.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) { c.pollInterval = d }
}

// WithGitHold enables or disables holding batches while git works
// (.git/index.lock, rebase-merge/, rebase-apply/, MERGE_HEAD,
// CHERRY_PICK_HEAD, REVERT_HEAD). Default enabled.
func WithGitHold(enabled bool) Option {
	return func(c *config) { c.gitHold = enabled }
}

// withWatchBudget makes adding more than n directory watches fail as if the
// inotify limit were reached (test knob for the polling fallback).
func withWatchBudget(n int) Option {
	return func(c *config) { c.watchBudget, c.budgetErr = n, syscall.ENOSPC }
}

// withDescriptorBudget is withWatchBudget failing with EMFILE, as kqueue
// does when the process runs out of descriptors.
func withDescriptorBudget(n int) Option {
	return func(c *config) { c.watchBudget, c.budgetErr = n, syscall.EMFILE }
}

// withEventFilter installs a hook that sees every raw event first and may drop it.
func withEventFilter(f func(fsnotify.Event) bool) Option {
	return func(c *config) { c.eventFilter = f }
}

func withGitHoldWarn(d time.Duration) Option {
	return func(c *config) { c.gitHoldWarn = d }
}

func withHashLimit(n int64) Option {
	return func(c *config) { c.hashLimit = n }
}
