package dockerctl

// What a build leaves in the engine's build cache, and what chefd removes.
//
// A build's context goes to the engine as a tar body. BuildKit (in dockerd)
// keeps it as a record of its own ("http url http://build-context-<id>",
// the tar) and unpacks it into a second one (step "copy /context /"). The
// URL is made for one build, so neither record can ever serve again; the
// engine keeps both until its own GC, which dockerd leaves off by default.
// A code build also leaves its stage's snapshots: the COPY of the sources
// on the cooked image and the code step's root (a changed file is copied
// up there when stamp.sh sets its time). With a large file in the
// workspace every build left four copies of it behind.
//
// So after each build chefd removes, by ID (at once after a large
// context, else in the background), the context records the build
// made (found from the build's own trace: created while its steps
// "[internal] load remote build context" and "copy /context /" ran) and
// the code-stage snapshots of this workspace's earlier builds (their
// commands name the workspace's target cache), keeping the newest, which
// lets an identical rebuild hit the cache. Nothing else is touched: never
// the engine's whole build cache, which other projects share. A loaded
// engine may still hold a finished build's records for a while: one in
// use is tried again a few times, then by the next build's cleanup (its
// ID kept in the state dir), never removed while in use.

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/chefd/chefd/internal/safefile"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"go.uber.org/zap"
)

const (
	remoteContextStep = "[internal] load remote build context"
	contextCopyStep   = "copy /context /"
	httpContextPrefix = "http url http://build-context-"
	fileOpRecord      = "fileop target"
	execRecordPrefix  = "mount / from exec "
	cacheMountType    = "exec.cachemount" // a target cache: never a leftover
	// recordSlack widens a step's time window when matching the creation
	// time of its records (both are the engine's clock). On a loaded engine
	// a record is committed seconds after its step reports (1 s left one
	// 64 MiB context copy behind per build in a CI run). Wide is safe: the
	// records matched this way are context records, which no build can
	// use again (each build's context has a URL of its own), and one in
	// use is never removed.
	recordSlack = 10 * time.Second
	// contextSlack widens the window in which a code build's unpacked
	// context is found by its size (leftovers).
	contextSlack = 2 * time.Minute
	// pruneTimeout bounds the cleanup after a build.
	pruneTimeout = 30 * time.Second
)

// window is the time a step ran, on the engine's clock.
type window struct{ from, to time.Time }

// windows are the times the steps of one name ran (the context is loaded
// twice: for the Dockerfile, then for the build).
type windows []window

func (ws windows) hold(t time.Time) bool {
	for _, w := range ws {
		if !t.Before(w.from.Add(-recordSlack)) && !t.After(w.to.Add(recordSlack)) {
			return true
		}
	}
	return false
}

// stepWindows are when the steps named name ran in this build (not when
// they were cached).
func (s *stream) stepWindows(name string) windows {
	var out windows
	for _, d := range s.order {
		v := s.vertices[d]
		if v.name == name && !v.cached && !v.started.IsZero() && !v.completed.IsZero() {
			out = append(out, window{v.started, v.completed})
		}
	}
	return out
}

// leftovers picks, from the engine's build-cache records, those a build
// (traced by s, elapsed long) left that no build can use: its context
// records, and, for a code build, the code-stage snapshots of this
// workspace but the newest.
// Records in use are picked too (their removal waits until they are
// free). The order is removable (children first).
//
// A code build's unpacked context, and its tar (sent bytes), are also
// found by their size in a wider window (contextSlack): on a loaded engine
// their records were committed outside the narrow one and stayed for good.
func leftovers(recs []*build.CacheRecord, s *stream, workspaceID string, code bool, elapsed time.Duration, sent int64) []*build.CacheRecord {
	var out []*build.CacheRecord
	byID := map[string]*build.CacheRecord{}
	for _, r := range recs {
		if r != nil {
			byID[r.ID] = r
		}
	}
	// The tar's record is made while it is received, which a large context
	// makes long, before the step that loads it reports: from the start of
	// the build (elapsed before the unpacking) to the end of the unpacking.
	unpack := s.stepWindows(contextCopyStep)
	load := s.stepWindows(remoteContextStep)
	var wide windows
	if len(unpack) > 0 {
		load = append(load, window{unpack[0].from.Add(-elapsed), unpack[len(unpack)-1].to})
		wide = windows{{unpack[0].from.Add(-contextSlack), unpack[len(unpack)-1].to.Add(contextSlack)}}
	}
	for _, r := range recs {
		if r == nil {
			continue
		}
		switch {
		case strings.HasPrefix(r.Description, httpContextPrefix) && load.hold(r.CreatedAt):
			out = append(out, r)
		case strings.HasPrefix(r.Description, httpContextPrefix) && sent > 0 && sizeNear(r.Size, sent) && wide.hold(r.CreatedAt):
			// the tar itself, committed late on a loaded engine
			out = append(out, r)
		case r.Description == fileOpRecord && parentOf(r) == "" && unpack.hold(r.CreatedAt):
			out = append(out, r)
		case r.Description == fileOpRecord && parentOf(r) == "" && sent > 0 && sizeNear(r.Size, sent) && wide.hold(r.CreatedAt):
			out = append(out, r)
		}
	}
	if !code {
		return out
	}
	var stages []*build.CacheRecord
	mark := cacheMarker + targetCachePrefix(workspaceID)
	for _, r := range recs {
		if r != nil && r.Type != cacheMountType && strings.HasPrefix(r.Description, execRecordPrefix) && strings.Contains(r.Description, codeMarker) &&
			strings.Contains(r.Description, mark) {
			stages = append(stages, r)
		}
	}
	if len(stages) < 2 {
		return out
	}
	sort.Slice(stages, func(i, j int) bool { return stages[i].CreatedAt.After(stages[j].CreatedAt) })
	keepParent := parentOf(stages[0])
	for _, r := range stages[1:] {
		out = append(out, r)
		// its parent: the COPY of that build's sources on the cooked image
		if p := byID[parentOf(r)]; p != nil && p.ID != keepParent && p.Description == fileOpRecord {
			out = append(out, p)
		}
	}
	return out
}

// sizeNear: a record of size n holds about sent bytes of files (a tar's
// headers and the file system's blocks make them differ a little).
func sizeNear(n, sent int64) bool {
	d := n - sent
	if d < 0 {
		d = -d
	}
	return d <= 1<<20+sent/10
}

func parentOf(r *build.CacheRecord) string {
	if len(r.Parents) > 0 {
		return r.Parents[0]
	}
	//lint:ignore SA1019 engines before API 1.42 (dockerd 20.10) fill only Parent
	return r.Parent
}

// syncCleanupFrom: after a build whose context was at least this large,
// its leftovers are removed before the build returns (they are large, and
// so was the upload); after a smaller one, in the background. The daemon
// removes them all in the background (WithBackgroundCleanup): a save of a
// workspace with 67 MB of vendored crates waited 3.6 s for it.
const syncCleanupFrom = 16 << 20

// cleanup removes the leftovers of a build (traced by s, elapsed long,
// whose context was sent bytes large): at once after a large context,
// else in the background (WaitCleanup waits for it).
// It reports whether the cleanup ran before it returned.
func (b *WorkspaceBuilder) cleanup(ctx context.Context, s *stream, code bool, elapsed time.Duration, sent int64) (done bool) {
	if s == nil || b.e == nil {
		return false
	}
	if sent >= syncCleanupFrom && !b.bgCleanup {
		b.pruneLeftovers(ctx, s, code, elapsed, sent)
		return true
	}
	b.cleanups.Add(1)
	go func() {
		defer b.cleanups.Done()
		b.pruneLeftovers(ctx, s, code, elapsed, sent)
	}()
	return false
}

// StopRetries ends the background retries of leftovers (a stopping
// process: their IDs are kept for the next build's cleanup).
func (b *WorkspaceBuilder) StopRetries() { b.quitOnce.Do(func() { close(b.quit) }) }

// WaitCleanup waits until the leftovers of the builds made so far are
// removed from the engine's build cache (after a build with a small
// context that runs in the background), or ctx is done.
func (b *WorkspaceBuilder) WaitCleanup(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		b.cleanups.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pruneLeftovers removes what leftovers picks, and the leftovers of earlier
// builds that outlived their own cleanup, in one call (by IDs: the engine
// reads the id filter as a regular expression; one ID a call when it does
// not). A record still in use (a loaded engine releases a finished build's
// records late), or one the prune left, is kept by ID in the state dir
// (leftoversFile) for the next build's cleanup, in this process or
// another, and tried again in the background after a pause, a few times
// (WaitCleanup waits for that too): a build waits for one listing and one
// prune at most. It is best effort: a failure is logged, never the
// build's. It runs even when the build was cancelled (bounded by
// pruneTimeout).
func (b *WorkspaceBuilder) pruneLeftovers(ctx context.Context, s *stream, code bool, elapsed time.Duration, sent int64) {
	b.prunePicked(ctx, func(cache []*build.CacheRecord) []*build.CacheRecord {
		return leftovers(cache, s, WorkspaceID(b.root), code, elapsed, sent)
	}, sent >= syncCleanupFrom)
}

// traced is one build's trace for cleanupAll.
type traced struct {
	s       *stream
	elapsed time.Duration
	sent    int64
}

// cleanupAll removes the leftovers of several builds (the service images
// of one code build) in the background with one listing of the build
// cache, not one each.
func (b *WorkspaceBuilder) cleanupAll(ctx context.Context, builds []traced) {
	if len(builds) == 0 || b.e == nil {
		return
	}
	b.cleanups.Add(1)
	go func() {
		defer b.cleanups.Done()
		b.prunePicked(ctx, func(cache []*build.CacheRecord) []*build.CacheRecord {
			var all []*build.CacheRecord
			for _, t := range builds {
				all = append(all, leftovers(cache, t.s, WorkspaceID(b.root), false, t.elapsed, t.sent)...)
			}
			return all
		}, false)
	}()
}

// prunePicked removes what pick picks, and the leftovers of earlier
// builds, retrying those in use in the background. Each retry picks
// again: a loaded engine commits a large context's record seconds after
// the build, so the first listing may not hold it yet; with again (a
// large context) the retries run even when the first try left nothing.
func (b *WorkspaceBuilder) prunePicked(ctx context.Context, pick func([]*build.CacheRecord) []*build.CacheRecord, again bool) {
	b.cleanMu.Lock()
	defer b.cleanMu.Unlock()
	want := b.readLeftovers()
	want = b.pruneOnce(ctx, want, pick)
	b.writeLeftovers(want)
	if len(want) == 0 && !again {
		return
	}
	b.cleanups.Add(1)
	go func() {
		defer b.cleanups.Done()
		pause := b.cleanupPause
		for attempt := 1; attempt <= pruneAttempts && (len(want) > 0 || again && attempt == 1); attempt++ {
			select {
			case <-time.After(pause):
			case <-b.quit: // the process is stopping: the next one's cleanup takes them
				return
			}
			pause *= 2
			b.cleanMu.Lock()
			want = b.pruneOnce(ctx, b.readLeftovers(), pick)
			b.writeLeftovers(want)
			b.cleanMu.Unlock()
		}
		if len(want) > 0 {
			b.log.Debug("leftovers still in the build cache; the next build's cleanup tries again", zap.Int("records", len(want)))
		}
	}()
}

// pruneOnce lists the build cache, adds what pick picks (nil: nothing) to
// want, removes those of want that are not in use, and returns the IDs of
// want still in the cache.
func (b *WorkspaceBuilder) pruneOnce(ctx context.Context, want map[string]bool, pick func([]*build.CacheRecord) []*build.CacheRecord) map[string]bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pruneTimeout)
	defer cancel()
	cache, err := b.e.BuildCache(ctx)
	if err != nil {
		b.log.Warn("could not list the build cache to remove a build's leftovers", zap.Error(err))
		return want
	}
	if pick != nil {
		for _, r := range pick(cache) {
			want[r.ID] = true
		}
	}
	var free []*build.CacheRecord
	left := map[string]bool{}
	for _, r := range cache {
		if r != nil && want[r.ID] {
			left[r.ID] = true
			if !r.InUse {
				free = append(free, r)
			}
		}
	}
	if len(free) > 0 {
		for _, id := range b.pruneRecords(ctx, free) {
			delete(left, id)
		}
	}
	return left
}

const (
	// pruneAttempts and retryPause: a leftover in use is tried again after
	// 0.5, 1 and 2 s (each try lists the build cache, seconds of the engine's
	// time on a busy one), then by the next build's cleanup.
	pruneAttempts = 3
	retryPause    = 500 * time.Millisecond
	// leftoversFile, in the state dir, lists the IDs of leftovers that
	// outlived their build's cleanup (at most maxLeftovers).
	leftoversFile = "leftovers"
	maxLeftovers  = 1024
)

// pruneRecords removes recs from the build cache and returns the IDs of
// the records the engine removed.
func (b *WorkspaceBuilder) pruneRecords(ctx context.Context, recs []*build.CacheRecord) []string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = regexp.QuoteMeta(r.ID)
	}
	rep, err := b.e.api.BuildCachePrune(ctx, build.CachePruneOptions{Filters: filters.NewArgs(filters.Arg("id", "^("+strings.Join(ids, "|")+")$"))})
	if err == nil && rep != nil && len(rep.CachesDeleted) > 0 {
		b.log.Debug("removed a build's leftovers from the build cache", zap.Int("records", len(rep.CachesDeleted)),
			zap.Uint64("bytes", rep.SpaceReclaimed))
		return rep.CachesDeleted
	}
	var deleted []string
	for _, r := range recs {
		rep, err := b.e.api.BuildCachePrune(ctx, build.CachePruneOptions{Filters: filters.NewArgs(filters.Arg("id", r.ID))})
		if err != nil {
			b.log.Warn("could not remove a build's leftover", zap.String("record", r.ID), zap.String("what", r.Description), zap.Error(err))
		} else if rep != nil {
			deleted = append(deleted, rep.CachesDeleted...)
		}
	}
	return deleted
}

// readLeftovers reads the IDs of the leftovers earlier builds could not
// remove.
func (b *WorkspaceBuilder) readLeftovers() map[string]bool {
	out := map[string]bool{}
	data, err := safefile.ReadRegular(filepath.Join(b.stateDir, leftoversFile), 64<<10)
	if err != nil {
		return out
	}
	for _, id := range strings.Fields(string(data)) {
		if len(out) < maxLeftovers && recordID.MatchString(id) {
			out[id] = true
		}
	}
	return out
}

// recordID is the shape of a build-cache record's ID.
var recordID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// writeLeftovers keeps ids for the next cleanup (none: the file goes).
func (b *WorkspaceBuilder) writeLeftovers(ids map[string]bool) {
	p := filepath.Join(b.stateDir, leftoversFile)
	if len(ids) == 0 {
		_ = os.Remove(p)
		return
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	sort.Strings(list)
	if len(list) > maxLeftovers {
		list = list[:maxLeftovers]
	}
	writeStateFile(p, []byte(strings.Join(list, "\n")+"\n"))
}
