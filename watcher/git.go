package watcher

import (
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/internal/gitrepo"
)

// gitState tracks whether git is in the middle of an operation, during
// which batches are held.
type gitState struct {
	dir     string // absolute git directory ("" if none)
	watched bool   // its top level is under inotify watch
	busy    bool
	reason  string // the file that holds batches, e.g. "index.lock"
	since   time.Time
	warned  bool
}

// isGitHoldName reports whether a top-level entry of the git directory
// signals an operation in progress.
func isGitHoldName(name string) bool {
	switch name {
	case "index.lock", "rebase-merge", "rebase-apply", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD":
		return true
	}
	return false
}

// gitHoldReason returns the first hold file present in the git directory.
func (w *Watcher) gitHoldReason() (bool, string) {
	if !w.cfg.gitHold {
		return false, ""
	}
	n := holdFileIn(w.git.dir)
	return n != "", n
}

// holdFileIn returns the first hold file present in the git directory dir.
func holdFileIn(dir string) string {
	if dir == "" {
		return ""
	}
	for _, n := range [...]string{"index.lock", "rebase-merge", "rebase-apply", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD"} {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			return n
		}
	}
	return ""
}

// Hold reports what holds batches while git is in the middle of an
// operation: the file that says so (index.lock, MERGE_HEAD, rebase-merge...)
// and since when; "" when nothing does. It looks at the git directory
// itself, so a hold shows at once, before its event is read. Safe for
// concurrent use.
func (w *Watcher) Hold() (string, time.Time) {
	if !w.cfg.gitHold {
		return "", time.Time{}
	}
	w.holdMu.Lock()
	h := w.hold
	w.holdMu.Unlock()
	if h.dir == "" { // git init since the watcher last looked
		if repo, ok := gitrepo.Find(w.root); ok {
			h.dir = repo.Dir
		}
	}
	reason := holdFileIn(h.dir)
	if reason == "" {
		return "", time.Time{}
	}
	if h.reason == "" {
		h.since = time.Now() // its event is not read yet
	}
	return reason, h.since
}

// mirrorHold publishes the loop's git state for Hold.
func (w *Watcher) mirrorHold() {
	w.holdMu.Lock()
	w.hold.dir = w.git.dir
	w.hold.reason, w.hold.since = "", time.Time{}
	if w.git.busy {
		w.hold.reason, w.hold.since = w.git.reason, w.git.since
	}
	w.holdMu.Unlock()
}

// setupGit finds the git directory of the root (package gitrepo: ".git" or
// the directory a ".git" file points to in worktrees and submodules, at the
// root or above it) and watches its top level only (not objects/, refs/...).
func (w *Watcher) setupGit() {
	if w.git.watched && w.fsw != nil {
		_ = w.fsw.Remove(w.git.dir)
	}
	w.git.dir, w.git.watched = "", false
	w.mirrorHold()
	repo, ok := gitrepo.Find(w.root)
	if !ok {
		w.updateCount()
		return
	}
	dir := repo.Dir
	w.git.dir = dir
	w.mirrorHold()
	if w.cfg.gitHold && w.fsw != nil {
		if err := w.fsw.Add(dir); err != nil {
			w.warnWatch(dir, err, "git operations are detected by polling instead")
		} else {
			w.git.watched = true
		}
	}
	w.updateCount()
}

// isGitEvent reports whether an event comes from the git directory's watch.
func (w *Watcher) isGitEvent(name string) bool {
	return w.git.dir != "" && (name == w.git.dir || filepath.Dir(name) == w.git.dir)
}

// updateGit re-checks the hold files and handles transitions.
func (w *Watcher) updateGit(now time.Time) {
	busy, reason := w.gitHoldReason()
	switch {
	case busy && !w.git.busy:
		w.git.busy, w.git.reason, w.git.since, w.git.warned = true, reason, now, false
		w.log.Debug("git busy: holding batches", zap.String("reason", reason))
	case !busy && w.git.busy:
		w.git.busy, w.git.reason = false, ""
		if w.hasWork() {
			// Everything collected while git worked goes out as one batch,
			// after a quiet period counted from now; but a batch already
			// older than the max wait goes out at once, or a lock taken
			// again and again (git status in a prompt or an IDE) would
			// starve it.
			w.deb.release(now)
		}
		w.log.Debug("git done: releasing batches", zap.Duration("held", now.Sub(w.git.since)))
	case busy:
		w.git.reason = reason
	}
	w.mirrorHold()
}
