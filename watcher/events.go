package watcher

import (
	"fmt"
	"os"
	"path"
	"time"

	"github.com/fsnotify/fsnotify"
)

// handleEvent turns one raw event into pending paths, watch changes, or git
// state changes.
func (w *Watcher) handleEvent(ev fsnotify.Event) {
	if w.isGitEvent(ev.Name) {
		if ev.Name == w.git.dir {
			switch {
			case ev.Has(fsnotify.Create): // re-created (rm -rf .git && git init)
				w.setupGit()
				w.updateGit(time.Now())
			case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
				w.git.watched = false
				w.updateCount()
				w.updateGit(time.Now())
			}
		} else if isGitHoldName(path.Base(ev.Name)) {
			w.updateGit(time.Now())
		}
		return
	}
	rel, ok := w.relOf(ev.Name)
	if !ok {
		return
	}
	if w.cookieEvent(rel) {
		return
	}
	if rel == "" {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			w.warn(fmt.Errorf("watch %s: the root directory was removed or moved", w.root))
		}
		return
	}
	now := time.Now()
	base := path.Base(rel)
	if rel == ".git" {
		if ev.Has(fsnotify.Create) { // git init, or a clone/worktree appearing
			w.setupGit()
			w.updateGit(now)
		}
		return
	}
	if rel == ".dockerignore" && !ev.Has(fsnotify.Chmod) {
		w.rulesDirty = true
		w.touch(now)
	}
	_, tracked := w.files[rel]
	switch {
	case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
		if w.isWatchedDir(rel) {
			w.dropDir(rel)
			w.touch(now)
		} else if tracked {
			w.addPending(nil, rel)
			w.touch(now)
		}
	case ev.Has(fsnotify.Create):
		fi, err := os.Lstat(ev.Name)
		if err != nil {
			if tracked {
				w.addPending(nil, rel)
				w.touch(now)
			}
			return
		}
		if fi.IsDir() {
			w.dirCreated(rel, base, now)
			return
		}
		if tracked || (trackable(fi.Mode()) && !w.match.Excluded(rel)) {
			w.addPending(nil, rel)
			w.touch(now)
		}
	case ev.Has(fsnotify.Write):
		if tracked || !w.match.Excluded(rel) {
			w.addPending(nil, rel)
			w.touch(now)
		}
	case ev.Has(fsnotify.Chmod):
		// Only for known files: a permission change matters to an image
		// layer, and a plain touch is dropped by the content check.
		if tracked {
			w.addPending(nil, rel)
			w.touch(now)
		}
	}
}

func (w *Watcher) isWatchedDir(rel string) bool {
	if _, ok := w.watched[rel]; ok {
		return true
	}
	_, ok := w.pollRoots[rel]
	return ok
}

// dirCreated watches and walks a directory that appeared (mkdir, or moved
// in). Files already inside are pending: at emit time they are reported as
// created unless they are known with the same content (a directory moved
// away and back).
func (w *Watcher) dirCreated(rel, base string, now time.Time) {
	skip, ctx := w.match.Dir(rel)
	if skip {
		return
	}
	wk := &walk{mode: walkNew}
	w.walkDir(wk, rel, ctx, true)
	w.updateCount()
	if wk.added > 0 {
		w.touch(now)
	}
}

// dropDir forgets a directory that was removed or moved away: its watches
// (and those below it) go now, so that a new directory at the same inode
// gets fresh paths; its files are checked when the batch is emitted.
func (w *Watcher) dropDir(rel string) {
	for d := range w.watched {
		if isUnder(d, rel) {
			w.unwatch(d)
		}
	}
	for d := range w.pollRoots {
		if isUnder(d, rel) {
			w.removePollRoot(d)
		}
	}
	w.removedDirs[rel] = struct{}{}
	w.updateCount()
}
