package dockerctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.uber.org/zap"

	"github.com/chefd/chefd/recipe"
)

// fakeEngine is an engine of images and build-cache records in memory,
// for the unit tests of GC, cache pruning and the cooked image check.
type fakeEngine struct {
	mu      sync.Mutex
	images  []image.Summary
	caches  []*build.CacheRecord
	removed []string        // image IDs and cache record IDs, in order
	lists   int             // build-cache listings so far
	onList  func(n int)     // called (locked) at the nth listing
	inUse   map[string]bool // image IDs a container uses

	// a registry: reference -> image; its faults
	registry  map[string]image.Summary
	regErr    error // DistributionInspect's (down, refused)
	pullErr   string
	pushErr   string
	pulls     []string
	pushes    []string
	gotAuth   []string
	regBlocks chan struct{} // DistributionInspect waits for it or ctx
}

func (f *fakeEngine) DistributionInspect(ctx context.Context, ref, auth string) (registry.DistributionInspect, error) {
	f.mu.Lock()
	f.gotAuth = append(f.gotAuth, auth)
	block, err := f.regBlocks, f.regErr
	_, ok := f.registry[ref]
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return registry.DistributionInspect{}, ctx.Err()
		}
	}
	if err != nil {
		return registry.DistributionInspect{}, err
	}
	if !ok {
		return registry.DistributionInspect{}, cerrdefs.ErrNotFound.WithMessage(ref + ": manifest unknown")
	}
	return registry.DistributionInspect{}, nil
}

// jsonLines is a pull's or push's message stream.
func jsonLines(msgs ...string) io.ReadCloser {
	return io.NopCloser(strings.NewReader(strings.Join(msgs, "\n") + "\n"))
}

// errorMessage is the engine's message of a failed pull or push.
func errorMessage(msg string) string {
	return `{"errorDetail":{"message":"` + msg + `"},"error":"` + msg + `"}`
}

func (f *fakeEngine) ImagePull(_ context.Context, ref string, opts image.PullOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls = append(f.pulls, ref)
	f.gotAuth = append(f.gotAuth, opts.RegistryAuth)
	if f.pullErr != "" {
		return jsonLines(`{"status":"Pulling fs layer","id":"abc"}`, errorMessage(f.pullErr)), nil
	}
	im, ok := f.registry[ref]
	if !ok {
		return nil, cerrdefs.ErrNotFound.WithMessage("manifest unknown")
	}
	im.RepoTags = []string{ref}
	f.images = append(f.images, im)
	return jsonLines(`{"status":"Pulling fs layer","id":"abc"}`, `{"status":"Pull complete","id":"abc"}`), nil
}

func (f *fakeEngine) ImagePush(_ context.Context, ref string, opts image.PushOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushes = append(f.pushes, ref)
	f.gotAuth = append(f.gotAuth, opts.RegistryAuth)
	if f.pushErr != "" {
		return jsonLines(errorMessage(f.pushErr)), nil
	}
	for _, im := range f.images {
		if slices.Contains(im.RepoTags, ref) {
			if f.registry == nil {
				f.registry = map[string]image.Summary{}
			}
			f.registry[ref] = image.Summary{ID: im.ID, Labels: im.Labels}
			return jsonLines(`{"status":"Pushed","id":"abc"}`), nil
		}
	}
	return nil, cerrdefs.ErrNotFound.WithMessage("no such image: " + ref)
}

func (f *fakeEngine) ImageTag(_ context.Context, source, target string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, im := range f.images {
		if im.ID == source || slices.Contains(im.RepoTags, source) {
			for j := range f.images { // a tag names one image
				f.images[j].RepoTags = slices.DeleteFunc(slices.Clone(f.images[j].RepoTags), func(t string) bool { return t == target })
			}
			f.images[i].RepoTags = append(f.images[i].RepoTags, target)
			return nil
		}
	}
	return cerrdefs.ErrNotFound.WithMessage("no such image: " + source)
}

func (f *fakeEngine) ImageBuild(context.Context, io.Reader, build.ImageBuildOptions) (build.ImageBuildResponse, error) {
	return build.ImageBuildResponse{}, fmt.Errorf("the fake engine does not build")
}

func (f *fakeEngine) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, im := range f.images {
		if im.ID == ref || slices.Contains(im.RepoTags, ref) {
			return image.InspectResponse{ID: im.ID, Config: &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Labels: im.Labels}}}, nil
		}
	}
	return image.InspectResponse{}, cerrdefs.ErrNotFound.WithMessage("no such image: " + ref)
}

func (f *fakeEngine) ImageList(_ context.Context, opts image.ListOptions) ([]image.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []image.Summary
next:
	for _, im := range f.images {
		for _, l := range opts.Filters.Get("label") {
			k, v, _ := strings.Cut(l, "=")
			if im.Labels[k] != v {
				continue next
			}
		}
		if slices.Contains(opts.Filters.Get("dangling"), "true") && len(im.RepoTags) > 0 {
			continue next
		}
		for _, repo := range opts.Filters.Get("reference") {
			if !slices.ContainsFunc(im.RepoTags, func(t string) bool { return strings.HasPrefix(t, repo+":") }) {
				continue next
			}
		}
		out = append(out, im)
	}
	return out, nil
}

func (f *fakeEngine) ImageRemove(_ context.Context, id string, opts image.RemoveOptions) ([]image.DeleteResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, im := range f.images {
		if im.ID == id && f.inUse[id] && !opts.Force {
			return nil, cerrdefs.ErrConflict.WithMessage("image " + id + " is being used by a container")
		}
		if im.ID == id {
			f.images = slices.Delete(f.images, i, i+1)
			f.removed = append(f.removed, id)
			return []image.DeleteResponse{{Deleted: id}}, nil
		}
		if slices.Contains(im.RepoTags, id) { // a tag: untagged, the image goes with its last tag
			f.removed = append(f.removed, id)
			f.images[i].RepoTags = slices.DeleteFunc(slices.Clone(im.RepoTags), func(t string) bool { return t == id })
			if len(f.images[i].RepoTags) == 0 {
				f.images = slices.Delete(f.images, i, i+1)
			}
			return []image.DeleteResponse{{Untagged: id}}, nil
		}
	}
	return nil, cerrdefs.ErrNotFound.WithMessage("no such image: " + id)
}

func (f *fakeEngine) DiskUsage(context.Context, types.DiskUsageOptions) (types.DiskUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if f.onList != nil {
		f.onList(f.lists)
	}
	return types.DiskUsage{BuildCache: slices.Clone(f.caches)}, nil
}

func (f *fakeEngine) BuildCachePrune(_ context.Context, opts build.CachePruneOptions) (*build.CachePruneReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := opts.Filters.Get("id")
	if len(ids) == 0 {
		return nil, fmt.Errorf("chefd must never prune the whole build cache")
	}
	// dockerd hands BuildKit the filter "id~=VALUE": a regular expression
	var deleted []string
	f.caches = slices.DeleteFunc(f.caches, func(c *build.CacheRecord) bool {
		for _, id := range ids {
			if ok, _ := regexp.MatchString(id, c.ID); ok && !c.InUse {
				f.removed = append(f.removed, c.ID)
				deleted = append(deleted, c.ID)
				return true
			}
		}
		return false
	})
	return &build.CachePruneReport{CachesDeleted: deleted}, nil
}

func (f *fakeEngine) Close() error { return nil }

func (f *fakeEngine) ContainerCreate(context.Context, *container.Config, *container.HostConfig,
	*network.NetworkingConfig, *ocispec.Platform, string) (container.CreateResponse, error) {
	return container.CreateResponse{}, errors.New("fake engine: no containers")
}

func (f *fakeEngine) CopyFromContainer(context.Context, string, string) (io.ReadCloser, container.PathStat, error) {
	return nil, container.PathStat{}, errors.New("fake engine: no containers")
}

func (f *fakeEngine) ImageLoad(context.Context, io.Reader, ...client.ImageLoadOption) (image.LoadResponse, error) {
	return image.LoadResponse{}, errors.New("fake engine: no image load")
}

func (f *fakeEngine) ContainerRemove(context.Context, string, container.RemoveOptions) error {
	return nil
}

// cooked adds a cooked image of hash for the workspace at root.
func (f *fakeEngine) cooked(root, img, hash string, created int64) {
	f.images = append(f.images, image.Summary{ID: "sha256:" + hash[:12], Created: created,
		RepoTags: []string{img + "-cooked:" + hash[:16]},
		Labels:   map[string]string{"chefd.kind": "cooked", "chefd.workspace": root, "chefd.recipe": hash}})
}

// targetCache adds the target cache record of a code step of hash.
func (f *fakeEngine) targetCache(root, hash string, inUse bool) {
	f.caches = append(f.caches, &build.CacheRecord{ID: "cache-" + hash[:8], Type: "exec.cachemount", InUse: inUse,
		Description: "mount / from exec /bin/sh -c " + codeMarker + " " + cacheMarker + "chefd-target-" + WorkspaceID(root) + "-" + hash[:16] + " sh /run/chefd/code.sh"})
}

// loopCache adds the record of the loop-mode target cache of hash.
func (f *fakeEngine) loopCache(root, hash string) {
	f.caches = append(f.caches, &build.CacheRecord{ID: "loop-" + hash[:8], Type: "exec.cachemount",
		Description: "mount / from exec /bin/sh -c " + codeMarker + " " + cacheMarker + targetCacheID(root, hash[:16], ModeLoop) + " sh /run/chefd/code.sh"})
}

// cookCache adds the record of a cook cache of key.
func (f *fakeEngine) cookCache(key string, inUse bool) {
	f.caches = append(f.caches, &build.CacheRecord{ID: "cook-" + key, Type: "exec.cachemount", InUse: inUse,
		Description: "mount /src/target from exec /bin/sh -c " + cookMarker + " " + cookCacheMarker + cookCacheID(key) + " sh /run/chefd/cook.sh"})
}

func fakeBuilder(t *testing.T, f *fakeEngine) *WorkspaceBuilder {
	t.Helper()
	root := t.TempDir()
	b := NewWorkspaceBuilder(&Engine{api: f, host: "fake", log: zap.NewNop()}, root, Settings{Image: "app", Tag: "dev"}, WithStateDir(t.TempDir()))
	b.cleanupPause = time.Microsecond
	return b
}

func hashOf(c byte) string { return strings.Repeat(string(c), 64) }

// TestGCKeepsNewestAndCurrent: GC removes this workspace's cooked images
// beyond the newest keep, never the current recipe's, never another
// workspace's; the target caches of the removed recipes go too, by ID,
// except one in use.
func TestGCKeepsNewestAndCurrent(t *testing.T) {
	f := &fakeEngine{}
	b := fakeBuilder(t, f)
	other := t.TempDir()
	a, c, d, e := hashOf('a'), hashOf('c'), hashOf('d'), hashOf('e')
	f.cooked(b.root, "app", a, 100) // the oldest, but current
	f.cooked(b.root, "app", c, 200)
	f.cooked(b.root, "app", d, 300)
	f.cooked(b.root, "app", e, 400)
	f.cooked(other, "app", hashOf('f'), 50) // another workspace
	for _, h := range []string{a, c, d, e} {
		f.targetCache(b.root, h, false)
		f.loopCache(b.root, h) // each mode has its own
	}
	f.targetCache(other, hashOf('f'), false)
	b.mu.Lock()
	b.current = "app-cooked:" + a[:16]
	b.mu.Unlock()

	removed, err := b.GC(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	var recipes, names []string
	for _, r := range removed {
		names = append(names, r.Name)
		if r.Recipe != "" {
			recipes = append(recipes, r.Recipe)
		}
	}
	if !slices.Equal(recipes, []string{c}) {
		t.Fatalf("removed recipes %q, want only %s (keep 2 newest and the current one)", recipes, c[:8])
	}
	if !slices.Equal(f.removed, []string{"sha256:" + c[:12], "cache-" + c[:8], "loop-" + c[:8]}) {
		t.Fatalf("engine saw removals %q", f.removed)
	}
	if len(names) != 3 || !strings.Contains(names[1], "build cache chefd-target-") || !strings.Contains(names[2], "-loop ") {
		t.Fatalf("names %q", names)
	}

	// a target cache in use stays, whatever its recipe
	f.removed = nil
	f.targetCache(b.root, hashOf('9'), true)
	if _, err := b.GC(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	if len(f.removed) != 0 {
		t.Fatalf("removed %q, want nothing (a cache in use, nothing beyond keep)", f.removed)
	}
}

// TestGCCookCaches: GC removes the cook caches of keys no cooked image on
// the engine has (any workspace's), never the last cook's key, never one
// in use.
func TestGCCookCaches(t *testing.T) {
	f := &fakeEngine{}
	b := fakeBuilder(t, f)
	f.cooked(b.root, "app", hashOf('a'), 100)
	f.images[0].Labels[labelCookKey] = "k-mine"
	f.cooked(t.TempDir(), "other", hashOf('b'), 100)
	f.images[1].Labels[labelCookKey] = "k-other"
	f.cookCache("k-mine", false)
	f.cookCache("k-other", false)        // another workspace's cooked image has it
	f.cookCache("k-gone", false)         // no cooked image: an intent left behind
	second := *f.caches[len(f.caches)-1] // a second record of the same cache id
	second.ID, second.Size = "cook-k-gone-2", 2e6
	f.caches[len(f.caches)-1].Size = 1e6
	f.caches = append(f.caches, &second)
	f.cookCache("k-busy", true)
	f.cookCache("k-last", false)
	b.mu.Lock()
	b.current, b.currentKey = "app-cooked:"+hashOf('a')[:16], "k-last"
	b.mu.Unlock()
	removed, err := b.GC(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.removed, []string{"cook-k-gone", "cook-k-gone-2"}) || len(removed) != 1 || !strings.Contains(removed[0].Name, "chefd-cook-k-gone (3.0 MB)") {
		t.Fatalf("removed %q (%v), want only the cook cache of k-gone, both its records, named once", f.removed, removed)
	}
}

// TestHasCooked: the cooked image check asks the engine for the tag.
func TestHasCooked(t *testing.T) {
	f := &fakeEngine{}
	b := fakeBuilder(t, f)
	r := &recipe.Recipe{Hash: hashOf('b')}
	if has, err := b.HasCooked(context.Background(), r); err != nil || has {
		t.Fatalf("HasCooked with no image = %v, %v", has, err)
	}
	f.cooked(b.root, "app", r.Hash, 1)
	if has, err := b.HasCooked(context.Background(), r); err != nil || !has {
		t.Fatalf("HasCooked with the image = %v, %v", has, err)
	}
}
