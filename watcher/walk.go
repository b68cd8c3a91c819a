package watcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/inputs"
)

type walkMode uint8

const (
	walkStart     walkMode = iota // record every file's state silently
	walkNew                       // a directory appeared: every file it holds is pending
	walkRescan                    // events were lost: diff the whole tree against the records
	walkReconcile                 // ignore rules changed: like rescan, newly visible files are adopted silently
	walkPoll                      // a polled subtree: diff against the records, add no watch
)

type walk struct {
	mode      walkMode
	seenDirs  map[string]struct{} // rescan/reconcile: directories visited
	seenNew   map[string]struct{} // diff modes: visible files not yet recorded
	added     int                 // paths added to pending
	limitHits int                 // watches refused for lack of inotify watches
	hashJobs  chan<- string       // walkStart: files to hash in parallel (nil: inline)
}

// walkDir visits the directory rel (already known not to be ignored; ctx is
// its match context), adding a watch first when watch is true so that
// nothing created during the listing is missed, then prunes ignored
// children before descending.
func (w *Watcher) walkDir(wk *walk, rel string, ctx inputs.Parent, watch bool) {
	if wk.seenDirs != nil {
		wk.seenDirs[rel] = struct{}{}
	}
	if watch {
		if _, polled := w.pollRoots[rel]; polled {
			watch = false
		} else {
			watch = w.addWatch(wk, rel)
		}
	}
	abs := w.abs(rel)
	f, err := os.Open(abs)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			w.warn(fmt.Errorf("read dir %s: %w", abs, err))
		}
		return
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.warn(fmt.Errorf("read dir %s: %w", abs, err))
	}
	hasCargo := false
	for _, e := range ents {
		if e.Name() == "Cargo.toml" {
			hasCargo = true
		}
	}
	for _, e := range ents {
		name := e.Name()
		crel := name
		if rel != "" {
			crel = rel + "/" + name
		}
		t := e.Type()
		if t.IsDir() {
			if skip, cctx := w.match.SkipDir(crel, ctx, &hasCargo); !skip {
				w.walkDir(wk, crel, cctx, watch)
			}
			continue
		}
		if !trackable(t) || w.match.SkipFile(crel, ctx) {
			continue
		}
		w.visitFile(wk, crel, e)
	}
}

func (w *Watcher) visitFile(wk *walk, rel string, e fs.DirEntry) {
	if wk.mode == walkNew {
		w.addPending(wk, rel)
		return
	}
	if wk.mode == walkStart {
		if wk.hashJobs != nil {
			wk.hashJobs <- rel
		} else if st, ok := w.hs.stateAt(w.abs(rel)); ok {
			w.files[rel] = st
		}
		return
	}
	fi, err := e.Info()
	if err != nil {
		return
	}
	old, ok := w.files[rel]
	if ok {
		old.mode |= stateSeen
		w.files[rel] = old
	}
	// A path already pending from an earlier diff only counts again if it
	// changed since (else every poll would restart the quiet period).
	if seen, again := w.diffStat[rel]; again {
		if !seen.sameStat(fi) {
			w.diffStat[rel] = statOf(fi)
			w.addPending(wk, rel)
		}
		if !ok {
			wk.seenNew[rel] = struct{}{}
		}
		return
	}
	if ok {
		if !old.sameStat(fi) {
			w.diffStat[rel] = statOf(fi)
			w.addPending(wk, rel)
		}
		return
	}
	if wk.mode == walkReconcile {
		if _, ok := w.pending[rel]; !ok {
			if st, ok := w.hs.state(w.abs(rel), fi); ok {
				st.mode |= stateSeen
				w.files[rel] = st
			}
			return
		}
	}
	wk.seenNew[rel] = struct{}{}
	w.diffStat[rel] = statOf(fi)
	w.addPending(wk, rel)
}

func (w *Watcher) addPending(wk *walk, rel string) {
	w.pending[rel] = struct{}{}
	if wk != nil {
		wk.added++
	}
}

// finishDiff completes a diff walk over scope: recorded files that were not
// seen either vanished (pending, reported as removed) or became ignored
// (forgotten silently); pending paths that became ignored are dropped.
func (w *Watcher) finishDiff(wk *walk, scope string) {
	for p := range w.pending {
		if !isUnder(p, scope) {
			continue
		}
		if _, ok := wk.seenNew[p]; ok {
			continue
		}
		if st, ok := w.files[p]; ok && st.mode&stateSeen != 0 {
			continue
		}
		if _, err := os.Lstat(w.abs(p)); err == nil {
			delete(w.pending, p) // exists but no longer visible: ignored now
		}
	}
	for p, st := range w.files {
		if !isUnder(p, scope) {
			continue
		}
		if st.mode&stateSeen != 0 {
			st.mode &^= stateSeen
			w.files[p] = st
			continue
		}
		if _, err := os.Lstat(w.abs(p)); err == nil {
			delete(w.files, p)
			continue
		}
		w.addPending(wk, p)
	}
}

// walkStartParallel is Start's walk: one goroutine lists directories and
// adds watches while a few workers hash files (open/read/close dominate).
func (w *Watcher) walkStartParallel() {
	n := min(runtime.GOMAXPROCS(0), 4)
	wk := &walk{mode: walkStart}
	if n < 2 {
		w.walkDir(wk, "", inputs.Parent{}, w.fsw != nil)
		return
	}
	jobs := make(chan string, 1024)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs := newHasher(w.cfg.hashLimit)
			for rel := range jobs {
				if st, ok := hs.stateAt(w.abs(rel)); ok {
					mu.Lock()
					w.files[rel] = st
					mu.Unlock()
				}
			}
		}()
	}
	wk.hashJobs = jobs
	w.walkDir(wk, "", inputs.Parent{}, w.fsw != nil)
	close(jobs)
	wg.Wait()
}

// walkAll walks the whole tree in a diff mode: it re-reads every ignore
// file, adds missing watches, drops watches of directories that vanished or
// became ignored, and diffs files against the records.
func (w *Watcher) walkAll(mode walkMode) {
	begin := time.Now()
	w.loadRules()
	wk := &walk{mode: mode, seenDirs: make(map[string]struct{}), seenNew: make(map[string]struct{})}
	w.walkDir(wk, "", inputs.Parent{}, w.fsw != nil)
	for d := range w.watched {
		if _, ok := wk.seenDirs[d]; !ok {
			w.unwatch(d)
		}
	}
	for d := range w.pollRoots {
		if _, ok := wk.seenDirs[d]; !ok {
			w.removePollRoot(d)
		}
	}
	w.finishDiff(wk, "")
	w.updateCount()
	now := time.Now()
	if mode == walkRescan {
		w.rescanned = true
		w.touch(now)
	} else if wk.added > 0 {
		w.touch(now)
	}
	w.log.Debug("rescanned",
		zap.Bool("overflow", mode == walkRescan),
		zap.Int("pending", len(w.pending)),
		zap.Int("watches", w.WatchCount()),
		zap.Duration("took", now.Sub(begin)))
}

// poll diffs every polled subtree against the records.
func (w *Watcher) poll() {
	roots := make([]string, 0, len(w.pollRoots))
	for r := range w.pollRoots {
		roots = append(roots, r)
	}
	added := 0
	for _, root := range roots {
		wk := &walk{mode: walkPoll, seenNew: make(map[string]struct{})}
		fi, err := os.Lstat(w.abs(root))
		switch {
		case err != nil || !fi.IsDir():
			w.removePollRoot(root)
		case root == "":
			w.walkDir(wk, "", inputs.Parent{}, false)
		default:
			if skip, ctx := w.match.Dir(root); skip {
				w.removePollRoot(root)
			} else {
				w.walkDir(wk, root, ctx, false)
			}
		}
		w.finishDiff(wk, root)
		added += wk.added
	}
	if added > 0 {
		w.touch(time.Now())
	}
}

// addWatch adds an inotify watch on the directory rel. On ENOSPC the
// subtree becomes a polled subtree and false is returned.
func (w *Watcher) addWatch(wk *walk, rel string) bool {
	if w.fsw == nil {
		return false
	}
	var err error
	if _, ok := w.watched[rel]; !ok && w.cfg.watchBudget > 0 && len(w.watched) >= w.cfg.watchBudget {
		err = w.cfg.budgetErr
	}
	if err == nil {
		err = w.fsw.Add(w.abs(rel))
	}
	if err == nil {
		w.watched[rel] = struct{}{}
		return true
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		w.addPollRoot(rel)
		wk.limitHits++
		// One warning per walk, and at most one every 10 minutes.
		if wk.limitHits == 1 && (w.limitWarn.IsZero() || time.Since(w.limitWarn) > 10*time.Minute) {
			w.limitWarn = time.Now()
			w.warnWatch(w.abs(rel), err, fmt.Sprintf("polling that subtree every %s instead (%d subtrees polled)", w.cfg.pollInterval, len(w.pollRoots)))
		} else {
			w.log.Debug("watch limit: polling subtree", zap.String("dir", rel), zap.Error(err))
		}
		return false
	}
	w.warn(fmt.Errorf("watch %s: %w", w.abs(rel), err))
	return false
}

// warnWatch reports a failure to add a watch, with the sysctl to raise when
// the limit was reached.
func (w *Watcher) warnWatch(dir string, err error, fallback string) {
	if errors.Is(err, syscall.ENOSPC) {
		w.warn(fmt.Errorf("watch %s: %w: %w (%d watches in use); raise it with `sudo sysctl fs.inotify.max_user_watches=524288` (persist it in /etc/sysctl.d/); %s",
			dir, ErrWatchLimit, err, len(w.watched), fallback))
		return
	}
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		w.warn(fmt.Errorf("watch %s: %w: %w (%d watches in use; on macOS kqueue holds one descriptor per watched file and directory); "+
			"raise the limit (`ulimit -n 65536`; on macOS also `sudo launchctl limit maxfiles 65536 200000`) or leave big trees out with .dockerignore; %s",
			dir, ErrDescriptorLimit, err, len(w.watched), fallback))
		return
	}
	w.warn(fmt.Errorf("watch %s: %w; %s", dir, err, fallback))
}

func (w *Watcher) unwatch(rel string) {
	if w.fsw != nil {
		_ = w.fsw.Remove(w.abs(rel)) // may already be gone with the directory
	}
	delete(w.watched, rel)
}

func (w *Watcher) addPollRoot(rel string) {
	w.pollRoots[rel] = struct{}{}
	if w.ticker == nil {
		w.ticker = time.NewTicker(w.cfg.pollInterval)
	}
}

func (w *Watcher) removePollRoot(rel string) {
	delete(w.pollRoots, rel)
	if len(w.pollRoots) == 0 && w.ticker != nil {
		w.ticker.Stop()
		w.ticker = nil
	}
}

// isUnder reports whether p is dir or lies below it ("" is the root).
func isUnder(p, dir string) bool {
	if dir == "" {
		return true
	}
	return p == dir || (len(p) > len(dir) && p[len(dir)] == '/' && p[:len(dir)] == dir)
}
