// The batch being collected: when it is due, and what it holds when it goes out.

package watcher

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
)

// hasWork reports whether a batch is being collected.
func (w *Watcher) hasWork() bool {
	return len(w.pending) > 0 || len(w.removedDirs) > 0 || w.rulesDirty || w.rescanned
}

// touch records a raw event at now.
func (w *Watcher) touch(now time.Time) { w.deb.event(now) }

// schedule arms the timer for the next thing to do: emitting the batch, or
// re-checking git while it holds the batch.
func (w *Watcher) schedule() {
	if !w.hasWork() {
		w.timer.Stop()
		return
	}
	if w.git.busy {
		// Re-check git periodically (robust against missed .git events) and
		// warn once if the hold lasts long.
		next := w.cfg.pollInterval
		if w.cfg.gitHoldWarn > 0 && !w.git.warned {
			if d := time.Until(w.git.since.Add(w.cfg.gitHoldWarn)); d < next {
				next = d
			}
		}
		w.timer.Reset(next)
		return
	}
	w.timer.Reset(time.Until(w.deb.due()))
}

func (w *Watcher) onTimer() {
	if !w.hasWork() {
		return
	}
	now := time.Now()
	wasBusy := w.git.busy
	w.updateGit(now)
	if w.git.busy {
		if w.cfg.gitHoldWarn > 0 && !w.git.warned && now.Sub(w.git.since) >= w.cfg.gitHoldWarn {
			w.git.warned = true
			w.warn(fmt.Errorf("watch %s: changes held for %s because git's %s exists; they are reported when it goes away (a stale lock must be removed by hand)",
				w.root, now.Sub(w.git.since).Round(time.Second), w.git.reason))
		}
		return
	}
	if wasBusy || now.Before(w.deb.due()) {
		return // just released, or re-armed: schedule picks the new deadline
	}
	w.flush(now)
}

// change is the net effect of a batch on one path.
type change uint8

const (
	changeNone change = iota
	changeCreated
	changeModified
	changeRemoved
)

// outEntry remembers, for a path of the batch waiting to be received, the
// state the consumer last knew (before that batch).
type outEntry struct {
	base    fileState
	existed bool
}

// flush computes the current batch (hashing at emit time) and queues it.
func (w *Watcher) flush(now time.Time) {
	if w.rulesDirty {
		w.rulesDirty = false
		w.walkAll(walkReconcile)
	}
	if len(w.removedDirs) > 0 {
		for p := range w.files {
			for d := p; ; {
				i := strings.LastIndexByte(d, '/')
				if i < 0 {
					break
				}
				d = d[:i]
				if _, ok := w.removedDirs[d]; ok {
					w.pending[p] = struct{}{}
					break
				}
			}
		}
		clear(w.removedDirs)
	}
	changed := make(map[string]outEntry)
	for p := range w.pending {
		old, had := w.files[p]
		if w.check(p) != changeNone {
			changed[p] = outEntry{base: old, existed: had}
		}
	}
	meta := Batch{First: w.deb.first, Last: w.deb.last, Rescan: w.rescanned}
	if meta.First.IsZero() {
		meta.First, meta.Last = now, now
	}
	w.pending = make(map[string]struct{})
	clear(w.diffStat)
	w.deb.reset()
	w.rescanned = false
	if len(changed) == 0 {
		w.log.Debug("batch had no content change")
		return
	}
	w.merge(changed, meta)
}

// check compares a pending path with its recorded state, updates the record
// and returns the change.
func (w *Watcher) check(rel string) change {
	old, had := w.files[rel]
	if st, ok := w.hs.stateAt(w.abs(rel)); ok {
		w.files[rel] = st
		switch {
		case !had:
			return changeCreated
		case old.same(st):
			return changeNone
		default:
			return changeModified
		}
	}
	if had {
		delete(w.files, rel)
		return changeRemoved
	}
	return changeNone
}

// merge folds a new batch into the one waiting to be received (if any): the
// net change of each path is computed against what the consumer last saw,
// so a file created and removed again, or changed and changed back, before
// the consumer received the batch disappears from it.
func (w *Watcher) merge(changed map[string]outEntry, meta Batch) {
	if w.out == nil {
		w.out, w.outMeta = changed, meta
	} else {
		for p, e := range changed {
			if _, ok := w.out[p]; !ok {
				w.out[p] = e
			}
		}
		if meta.First.Before(w.outMeta.First) {
			w.outMeta.First = meta.First
		}
		if meta.Last.After(w.outMeta.Last) {
			w.outMeta.Last = meta.Last
		}
		w.outMeta.Rescan = w.outMeta.Rescan || meta.Rescan
	}
	changes := make(map[string]change, len(w.out))
	for p, e := range w.out {
		cur, exists := w.files[p]
		switch {
		case e.existed && exists && !e.base.same(cur):
			changes[p] = changeModified
		case e.existed && !exists:
			changes[p] = changeRemoved
		case !e.existed && exists:
			changes[p] = changeCreated
		}
	}
	b := buildBatch(changes, w.outMeta)
	if len(b.Paths) == 0 {
		w.out, w.outReady, w.outBatch = nil, false, Batch{}
		return
	}
	w.outBatch, w.outReady = b, true
	w.log.Debug("batch",
		zap.Stringer("kind", b.Kind),
		zap.Int("paths", len(b.Paths)),
		zap.Int("created", len(b.Created)),
		zap.Int("removed", len(b.Removed)),
		zap.Strings("recipe", b.Recipe),
		zap.Bool("rescan", b.Rescan))
}

func buildBatch(changes map[string]change, meta Batch) Batch {
	b := Batch{First: meta.First, Last: meta.Last, Rescan: meta.Rescan, Kind: KindCode}
	b.Paths = make([]string, 0, len(changes))
	for p, c := range changes {
		if Classify(p, c == changeCreated, c == changeRemoved) == ClassIgnored {
			continue
		}
		b.Paths = append(b.Paths, p)
	}
	sort.Strings(b.Paths)
	for _, p := range b.Paths {
		c := changes[p]
		switch c {
		case changeCreated:
			b.Created = append(b.Created, p)
		case changeRemoved:
			b.Removed = append(b.Removed, p)
		}
		if Classify(p, c == changeCreated, c == changeRemoved) == ClassRecipe {
			b.Recipe = append(b.Recipe, p)
			b.Kind = KindRecipe
		}
	}
	return b
}
