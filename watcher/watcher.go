// Package watcher watches a Rust workspace and reports debounced batches of
// files whose content really changed, classified as recipe-affecting or
// code-only.
//
// The shape follows Tilt's internal/watch: a small Notify interface, ignore
// matching that prunes directories before any watch is added, and editor
// temporaries listed in their own file (ephemeral.go). On top of that:
//
//   - one inotify watch per directory, never per file, so atomic saves
//     (rename over Cargo.toml) keep being seen;
//   - new directories are watched, then walked, so a "mkdir -p a/b/c && touch
//     a/b/c/x.rs" burst is not missed;
//   - debounce with a quiet period and a maximum wait;
//   - batches are held while git holds .git/index.lock or a rebase, merge,
//     cherry-pick or revert is in progress, then emitted as one;
//   - contents are hashed when a batch is emitted, so saves that leave the
//     bytes unchanged (touch, VS Code's truncate-then-write of identical
//     content) produce nothing;
//   - a kernel queue overflow triggers a full rescan; running out of inotify
//     watches falls back to polling the affected subtree.
//
// The watcher keeps no package-level state: everything lives in a *Watcher.
package watcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/chefd/chefd/inputs"
)

// Batch is one debounced set of changes under the root.
type Batch struct {
	// Paths are slash-separated paths relative to the root, sorted and
	// deduplicated: only files whose content really changed, or that were
	// created or removed.
	Paths []string
	// Created is the subset of Paths that appeared.
	Created []string
	// Removed is the subset of Paths that disappeared.
	Removed []string
	// Kind is KindRecipe if any path is recipe-affecting, else KindCode.
	Kind Kind
	// Recipe lists the recipe-affecting paths.
	Recipe []string
	// Rescan is true when the batch comes from a full rescan (queue overflow).
	Rescan bool
	// First and Last are the times of the first and last raw event in the batch.
	First, Last time.Time
}

// Notify is a source of batches.
type Notify interface {
	// Start walks the tree, adds the watches and returns when ready.
	Start() error
	// Close stops everything and closes the channels.
	Close() error
	// Batches delivers debounced, content-checked batches.
	Batches() <-chan Batch
	// Errors delivers non-fatal problems and warnings. It is buffered and
	// never blocks the watcher: when the reader falls behind, errors are
	// dropped (and logged).
	Errors() <-chan error
}

// ErrWatchLimit is wrapped by the warning sent when inotify runs out of
// watches (ENOSPC) and a subtree falls back to polling.
var ErrWatchLimit = errors.New("inotify watch limit reached (raise fs.inotify.max_user_watches)")

// ErrDescriptorLimit is wrapped by the warning sent when adding a watch runs
// out of file descriptors (EMFILE, ENFILE: on macOS, kqueue holds one per
// watched file and directory) and a subtree falls back to polling.
var ErrDescriptorLimit = errors.New("out of file descriptors for watches")

// Watcher watches one workspace root. It implements Notify.
type Watcher struct {
	root string // absolute, symlinks resolved
	cfg  config
	log  *zap.Logger

	batches  chan Batch
	errs     chan error
	done     chan struct{}
	loopDone chan struct{}
	reqs     chan func()

	mu       sync.Mutex // guards started, closed
	started  bool
	closed   bool
	closeErr error

	watchCount atomic.Int64

	// Owned by Start, then by the loop goroutine only.
	fsw       *fsnotify.Watcher
	match     *inputs.Matcher // which files are build inputs (re-read when .dockerignore changes)
	hs        *hasher
	files     map[string]fileState // tracked files -> last known state
	watched   map[string]struct{}  // directories under inotify watch (rel)
	pollRoots map[string]struct{}  // subtrees polled instead (rel)
	ticker    *time.Ticker
	git       gitState
	// hold mirrors the git directory and hold for Hold (other goroutines).
	holdMu sync.Mutex
	hold   struct {
		dir, reason string
		since       time.Time
	}
	limitWarn time.Time // last watch-limit warning (they are rate-limited)

	// Current (not yet emitted) batch.
	pending     map[string]struct{}  // paths with raw events, checked at emit time
	removedDirs map[string]struct{}  // directories that vanished; their files are checked at emit time
	diffStat    map[string]fileState // stat of paths made pending by rescans/polls (no hash)
	rulesDirty  bool                 // an ignore file changed: reconcile before emitting
	rescanned   bool
	deb         debounce // when it is due
	timer       *time.Timer

	// Emitted but not yet received batch; later batches merge into it.
	out      map[string]outEntry
	outMeta  Batch
	outBatch Batch
	outReady bool

	// Sync: cookies awaited (by file name), and Syncs waiting for the
	// emitted batch to be received.
	cookies    map[string]chan struct{}
	outWaiters []chan struct{}
	syncSeq    atomic.Int64
}

var _ Notify = (*Watcher)(nil)

// New prepares a watcher for root. Nothing is watched until Start.
func New(root string, opts ...Option) (*Watcher, error) {
	cfg := config{
		quiet:        100 * time.Millisecond,
		maxWait:      2 * time.Second,
		pollInterval: time.Second,
		log:          zap.NewNop(),
		gitHold:      true,
		hashLimit:    defaultHashLimit,
		gitHoldWarn:  30 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.quiet <= 0 || cfg.maxWait <= 0 || cfg.pollInterval <= 0 {
		return nil, fmt.Errorf("watch %s: debounce, max wait and poll interval must be positive", root)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("watch %s: not a directory", root)
	}
	match, err := rulesFor(abs, cfg)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	w := &Watcher{
		root:        abs,
		cfg:         cfg,
		log:         cfg.log.With(zap.String("root", abs)),
		batches:     make(chan Batch),
		errs:        make(chan error, 64),
		done:        make(chan struct{}),
		loopDone:    make(chan struct{}),
		reqs:        make(chan func()),
		cookies:     make(map[string]chan struct{}),
		match:       match,
		hs:          newHasher(cfg.hashLimit),
		deb:         debounce{quiet: cfg.quiet, maxWait: cfg.maxWait},
		files:       make(map[string]fileState),
		watched:     make(map[string]struct{}),
		pollRoots:   make(map[string]struct{}),
		pending:     make(map[string]struct{}),
		removedDirs: make(map[string]struct{}),
		diffStat:    make(map[string]fileState),
	}
	return w, nil
}

// Root returns the absolute, symlink-resolved root being watched.
func (w *Watcher) Root() string { return w.root }

// Batches implements Notify.
func (w *Watcher) Batches() <-chan Batch { return w.batches }

// Errors implements Notify.
func (w *Watcher) Errors() <-chan error { return w.errs }

// WatchCount returns the number of directories under inotify watch,
// including the top level of the git directory when it is watched.
func (w *Watcher) WatchCount() int { return int(w.watchCount.Load()) }

// rulesFor is the matcher of build inputs under root: the built-in rules
// alone for a path crate outside the workspace (as the build context ships
// it), else with the root's .dockerignore and the ignore patterns.
func rulesFor(root string, cfg config) (*inputs.Matcher, error) {
	if cfg.builtinOnly {
		return inputs.Builtin(root), nil
	}
	return inputs.New(root, cfg.ignores)
}

// loadRules re-reads the root .dockerignore. A broken one is reported and
// the rules in force stay.
func (w *Watcher) loadRules() {
	m, err := rulesFor(w.root, w.cfg)
	if err != nil {
		w.warn(fmt.Errorf("%w (the previous rules stay in force)", err))
		return
	}
	w.match = m
}

// Start implements Notify: it walks the tree, records the content of every
// file, adds the watches and starts the event loop.
func (w *Watcher) Start() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("watch %s: watcher closed", w.root)
	}
	if w.started {
		return fmt.Errorf("watch %s: already started", w.root)
	}
	begin := time.Now()
	if fi, err := os.Stat(w.root); err != nil {
		return fmt.Errorf("watch %s: %w", w.root, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("watch %s: not a directory", w.root)
	}
	if !w.cfg.noInotify {
		fsw, err := fsnotify.NewBufferedWatcher(4096)
		switch {
		case err == nil:
			w.fsw = fsw
		case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
			w.warn(fmt.Errorf("watch %s: %w: too many inotify instances; raise it with `sudo sysctl fs.inotify.max_user_instances=1024`; polling every %s instead",
				w.root, err, w.cfg.pollInterval))
		default:
			return fmt.Errorf("watch %s: %w", w.root, err)
		}
	}
	if w.fsw == nil {
		w.addPollRoot("")
	}
	w.setupGit()
	w.loadRules()
	w.walkStartParallel()
	w.updateCount()
	w.git.busy, w.git.reason = w.gitHoldReason()
	if w.git.busy {
		w.git.since = time.Now()
	}

	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	w.log.Info("watching",
		zap.Int("files", len(w.files)),
		zap.Int("watches", w.WatchCount()),
		zap.Int("polled_subtrees", len(w.pollRoots)),
		zap.Duration("took", time.Since(begin)))
	w.started = true
	go w.loop()
	return nil
}

// Close implements Notify. It stops the loop, the inotify reader and the
// polling ticker, and closes both channels. It is safe to call more than once.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	started := w.started
	w.mu.Unlock()

	close(w.done)
	if !started {
		close(w.batches)
		close(w.errs)
		return nil
	}
	<-w.loopDone
	return w.closeErr
}

// warn logs err and delivers it on Errors without ever blocking.
func (w *Watcher) warn(err error) {
	w.log.Warn("watcher", zap.Error(err))
	select {
	case w.errs <- err:
	default:
		w.log.Warn("errors channel full, dropping error", zap.Error(err))
	}
}

func (w *Watcher) updateCount() {
	n := len(w.watched)
	if w.git.watched {
		n++
	}
	w.watchCount.Store(int64(n))
}

func (w *Watcher) abs(rel string) string {
	if rel == "" {
		return w.root
	}
	return w.root + string(filepath.Separator) + filepath.FromSlash(rel)
}

// relOf converts an event's absolute name to a slash-separated relative path.
func (w *Watcher) relOf(name string) (string, bool) {
	if name == w.root {
		return "", true
	}
	if len(name) > len(w.root) && name[len(w.root)] == filepath.Separator && name[:len(w.root)] == w.root {
		return filepath.ToSlash(name[len(w.root)+1:]), true
	}
	return "", false
}

// do runs f on the loop goroutine and waits for it (test hooks).
func (w *Watcher) do(f func()) bool {
	ran := make(chan struct{})
	select {
	case w.reqs <- func() { f(); close(ran) }:
		<-ran
		return true
	case <-w.done:
		return false
	}
}

// trackedFiles returns the number of files with a recorded state (tests).
func (w *Watcher) trackedFiles() int {
	n := 0
	w.do(func() { n = len(w.files) })
	return n
}

// rescan simulates a kernel queue overflow (test hook).
func (w *Watcher) rescan() bool {
	return w.do(func() { w.handleFsError(fsnotify.ErrEventOverflow) })
}

func (w *Watcher) loop() {
	defer func() {
		w.timer.Stop()
		if w.ticker != nil {
			w.ticker.Stop()
		}
		if w.fsw != nil {
			w.closeErr = w.fsw.Close()
		}
		close(w.batches)
		close(w.errs)
		close(w.loopDone)
	}()
	var evC <-chan fsnotify.Event
	var errC <-chan error
	if w.fsw != nil {
		evC, errC = w.fsw.Events, w.fsw.Errors
	}
	for {
		var outC chan<- Batch
		if w.outReady {
			outC = w.batches
		}
		var tickC <-chan time.Time
		if w.ticker != nil {
			tickC = w.ticker.C
		}
		select {
		case <-w.done:
			return
		case ev, ok := <-evC:
			if !ok {
				evC = nil
				continue
			}
			if w.cfg.eventFilter != nil && w.cfg.eventFilter(ev) {
				continue
			}
			w.handleEvent(ev)
		case err, ok := <-errC:
			if !ok {
				errC = nil
				continue
			}
			w.handleFsError(err)
		case <-w.timer.C:
			w.onTimer()
		case <-tickC:
			w.poll()
		case f := <-w.reqs:
			f()
		case outC <- w.outBatch:
			w.out, w.outReady = nil, false
			w.outBatch = Batch{}
			for _, ch := range w.outWaiters {
				close(ch)
			}
			w.outWaiters = nil
		}
		w.schedule()
	}
}

func (w *Watcher) handleFsError(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		w.warn(fmt.Errorf("watch %s: %w: events were lost, rescanning (consider raising fs.inotify.max_queued_events)", w.root, err))
		w.walkAll(walkRescan)
		return
	}
	w.warn(fmt.Errorf("watch %s: %w", w.root, err))
}
