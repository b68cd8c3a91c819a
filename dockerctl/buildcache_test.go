package dockerctl

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
)

// TestLeftoversPicked: after a build, chefd removes the context records
// the build made (the tar and its unpacked copy, found by the times of the
// build's own steps) and the code-stage snapshots of the workspace's
// earlier builds (with the COPY below each), keeping the newest; nothing
// in use, nothing of another workspace, no cooked layer, no target cache,
// no other build's reusable record.
func TestLeftoversPicked(t *testing.T) {
	f := &fakeEngine{}
	b := fakeBuilder(t, f)
	ws, other := WorkspaceID(b.root), WorkspaceID(t.TempDir())
	t0 := time.Unix(1700000000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	code := func(wsID string) string {
		return execRecordPrefix + "/bin/sh -c " + codeMarker + " " + cacheMarker + "chefd-target-" + wsID + "-0123456789abcdef sh /run/chefd/code.sh"
	}
	rec := func(id, desc, parent string, created time.Time, inUse bool) *build.CacheRecord {
		r := &build.CacheRecord{ID: id, Description: desc, CreatedAt: created, InUse: inUse, Type: "regular"}
		if parent != "" {
			r.Parents = []string{parent}
		}
		return r
	}
	f.caches = []*build.CacheRecord{
		rec("http-ours", httpContextPrefix+"aaa", "", at(3), false),   // received during the upload
		rec("http-old", httpContextPrefix+"bbb", "", at(-600), false), // another build's, long ago
		rec("http-busy", httpContextPrefix+"ccc", "", at(4), true),    // a build running now
		rec("unpack-ours", fileOpRecord, "", at(10.2), false),         // copy /context /
		rec("scratch-later", fileOpRecord, "", at(30), false),         // a COPY into scratch, later
		rec("copy-1", fileOpRecord, "cooked-layer", at(-100), false),  // build 1's sources
		rec("code-1", code(ws), "copy-1", at(-99), false),             // build 1's code step
		rec("copy-2", fileOpRecord, "cooked-layer", at(-50), false),   // build 2's
		rec("code-2", code(ws), "copy-2", at(-49), false),             //
		rec("copy-3", fileOpRecord, "cooked-layer", at(11), false),    // this build's: kept
		rec("code-3", code(ws), "copy-3", at(12), false),              //
		rec("code-other", code(other), "copy-other", at(-20), false),  // another workspace's
		rec("cooked-layer", execRecordPrefix+"/bin/sh -c "+cookMarker+" sh /run/chefd/cook.sh", "", at(-200), false),
		{ID: "target-cache", Type: "exec.cachemount", Description: "cached mount /src/target from exec " + code(ws)[len(execRecordPrefix):], CreatedAt: at(12)},
	}
	var body bytes.Buffer
	body.Write(traceMsg([][]byte{
		pbVertex("v1", remoteContextStep, at(8), at(8), false, ""),
		pbVertex("v2", contextCopyStep, at(10), at(10.5), false, ""),
		pbVertex("v3", "[build 2/3] COPY src/ /src/", at(11), at(11.5), false, ""),
	}, nil))
	body.WriteString(`{"id":"moby.image.id","aux":{"ID":"sha256:abc"}}` + "\n")
	s := newStream(nil)
	if err := s.read(&body); err != nil {
		t.Fatal(err)
	}
	b.pruneLeftovers(context.Background(), s, true, 10*time.Second, 0)
	b.WaitCleanup(context.Background())
	got := slices.Clone(f.removed)
	slices.Sort(got)
	want := []string{"code-1", "code-2", "copy-1", "copy-2", "http-ours", "unpack-ours"}
	if !slices.Equal(got, want) {
		t.Errorf("removed %q, want %q", got, want)
	}

	// a cook: its context records only
	f.removed = nil
	f.caches = append(f.caches, rec("code-4", code(ws), "copy-3", at(13), false))
	f.caches = append(f.caches, rec("unpack-2", fileOpRecord, "", at(10.3), false))
	b.pruneLeftovers(context.Background(), s, false, 10*time.Second, 0)
	b.WaitCleanup(context.Background())
	if !slices.Equal(f.removed, []string{"unpack-2"}) {
		t.Errorf("a cook removed %q, want only its context record", f.removed)
	}

	// A record in use when its build's cleanup ran (the engine releases a
	// finished build's records late) goes with a later build's cleanup,
	// although outside that build's windows; in another process too (the
	// state dir keeps its ID).
	f.removed = nil
	for _, r := range f.caches {
		if r.ID == "http-busy" {
			r.InUse = false
		}
	}
	later := NewWorkspaceBuilder(b.e, b.root, b.cfg, WithStateDir(b.stateDir))
	later.pruneLeftovers(context.Background(), newStream(nil), false, time.Second, 0)
	later.WaitCleanup(context.Background())
	if !slices.Equal(f.removed, []string{"http-busy"}) {
		t.Errorf("the next cleanup removed %q, want the record that was in use", f.removed)
	}
	if _, err := os.Stat(filepath.Join(b.stateDir, leftoversFile)); !os.IsNotExist(err) {
		t.Errorf("the list of leftovers outlives them: %v", err)
	}
}

// TestLeftoversRetried: a leftover in use is tried again within the same
// cleanup, and removed once the engine frees it.
func TestLeftoversRetried(t *testing.T) {
	f := &fakeEngine{}
	b := fakeBuilder(t, f)
	t0 := time.Unix(1700000000, 0)
	busy := &build.CacheRecord{ID: "http-late", Description: httpContextPrefix + "x", CreatedAt: t0.Add(9 * time.Second), InUse: true, Type: "regular"}
	f.caches = []*build.CacheRecord{busy}
	f.onList = func(n int) {
		if n == 3 { // the engine releases it before the third listing
			busy.InUse = false
		}
	}
	var body bytes.Buffer
	body.Write(traceMsg([][]byte{pbVertex("v2", contextCopyStep, t0.Add(10*time.Second), t0.Add(11*time.Second), false, "")}, nil))
	body.WriteString(`{"id":"moby.image.id","aux":{"ID":"sha256:abc"}}` + "\n")
	s := newStream(nil)
	if err := s.read(&body); err != nil {
		t.Fatal(err)
	}
	b.pruneLeftovers(context.Background(), s, false, 5*time.Second, 0)
	b.WaitCleanup(context.Background())
	if !slices.Equal(f.removed, []string{"http-late"}) {
		t.Errorf("removed %q, want the record freed during the cleanup", f.removed)
	}
}

// TestLeftoversBySize: a code build's unpacked context and its tar,
// committed outside the narrow windows (a loaded engine), are found by
// their size within the wide one; another parentless COPY of another size (a cooked image's
// artifacts) is not.
func TestLeftoversBySize(t *testing.T) {
	f := &fakeEngine{}
	b := fakeBuilder(t, f)
	t0 := time.Unix(1700000000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	const sent = 64 << 20
	f.caches = []*build.CacheRecord{
		{ID: "unpack-late", Description: fileOpRecord, CreatedAt: at(45), Size: sent + 4096, Type: "regular"},
		{ID: "cooked-copy", Description: fileOpRecord, CreatedAt: at(8), Size: 75 << 20, Type: "regular"},
		{ID: "unpack-long-after", Description: fileOpRecord, CreatedAt: at(600), Size: sent, Type: "regular"},
		// the tar, committed before the narrow window (its upload began
		// 5 s before the unpacking) on a loaded engine
		{ID: "http-early", Description: httpContextPrefix + "e", CreatedAt: at(-30), Size: sent + 20<<10, Type: "regular"},
		{ID: "http-other-size", Description: httpContextPrefix + "o", CreatedAt: at(-30), Size: 3 << 20, Type: "regular"},
	}
	var body bytes.Buffer
	body.Write(traceMsg([][]byte{pbVertex("v2", contextCopyStep, at(20), at(21), false, "")}, nil))
	body.WriteString(`{"id":"moby.image.id","aux":{"ID":"sha256:abc"}}` + "\n")
	s := newStream(nil)
	if err := s.read(&body); err != nil {
		t.Fatal(err)
	}
	b.pruneLeftovers(context.Background(), s, true, 5*time.Second, sent)
	b.WaitCleanup(context.Background())
	got := slices.Clone(f.removed)
	slices.Sort(got)
	if !slices.Equal(got, []string{"http-early", "unpack-late"}) {
		t.Errorf("removed %q, want the late unpacked context and the early tar only", got)
	}
}
