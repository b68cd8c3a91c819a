package dockerctl

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"go.uber.org/zap"

	"github.com/chefd/chefd/configs"
	"github.com/chefd/chefd/inputs"
	"github.com/chefd/chefd/internal/flock"
	"github.com/chefd/chefd/internal/gitrepo"
	"github.com/chefd/chefd/recipe"
)

// WorkspaceBuilder cooks and builds one workspace with the settings of its
// chefd.toml. It is safe for concurrent use; code builds of the workspace
// are serialised (a file lock, also across processes).
type WorkspaceBuilder struct {
	e           *Engine
	root        string
	cfg         Settings
	builderOpts // log, version, state dir, no-cache

	mu      sync.Mutex
	current string // cooked tag of the recipe last cooked or built: GC keeps it
	// currentKey is the cook key of the last cook: GC keeps its cook cache.
	currentKey string
	// noLayers are the builder images whose rustc could not build the
	// layer tool (deltalayer.go): their cooked images are whole copies.
	noLayers map[string]bool

	cleanups sync.WaitGroup // background removals of builds' leftovers (buildcache.go)
	cleanMu  sync.Mutex     // one removal of leftovers at a time (they share leftoversFile)
	quit     chan struct{}  // closed by StopRetries
	quitOnce sync.Once
}

func (b *WorkspaceBuilder) use(r *recipe.Recipe) {
	b.mu.Lock()
	b.current = b.CookedTag(r)
	b.mu.Unlock()
}

// KeepCurrent makes r the current recipe, whose cooked image and target
// cache GC always keeps (Cook and Build do so themselves).
func (b *WorkspaceBuilder) KeepCurrent(r *recipe.Recipe) { b.use(r) }

// NewWorkspaceBuilder binds an engine to a workspace root and its
// settings.
func NewWorkspaceBuilder(e *Engine, root string, cfg Settings, opts ...BuilderOption) *WorkspaceBuilder {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = filepath.Join(root, ".chefd")
	}
	o := builderOpts{log: zap.NewNop(), version: "dev", stateDir: filepath.Join(dir, "chefd", WorkspaceID(root)), cleanupPause: retryPause}
	for _, f := range opts {
		f(&o)
	}
	return &WorkspaceBuilder{e: e, root: root, cfg: cfg, builderOpts: o, quit: make(chan struct{})}
}

// writeStateFile replaces a file of the client's state dir whole (a
// temporary file renamed over it: a reader, in this process or another,
// sees the old content or the new). It is best effort: state is a hint.
func writeStateFile(p string, data []byte) {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(p), filepath.Base(p)+".tmp*")
	if err != nil {
		return
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
}

// targetCachePrefix starts the id of every target cache of the workspace
// with this ID; targetCacheID is the one of a recipe (short hash). GC and
// the leftover cleanup find the caches by it.
func targetCachePrefix(workspaceID string) string { return "chefd-target-" + workspaceID + "-" }

// Each mode has a target cache of its own. The stamp record of a target
// cache (stamp.sh) holds for every unit cargo builds in it: after a
// successful build every unit matches the sources. Loop and exact builds
// compile the workspace's crates as different units (other metadata, same
// sources), so one mode's success says nothing of the other's units: an
// exact build after loop builds in a shared cache would take its old units
// as fresh and ship stale code.
func targetCacheID(root, shortHash string, mode Mode) string {
	id := targetCachePrefix(WorkspaceID(root)) + shortHash
	if mode == ModeLoop {
		id += loopCacheSuffix
	}
	return id
}

// loopCacheSuffix ends the id of a loop-mode target cache.
const loopCacheSuffix = "-loop"

// WorkspaceID is a short stable identifier of a workspace root.
func WorkspaceID(root string) string {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = root
	}
	sum := sha256.Sum256([]byte(abs))
	return fmt.Sprintf("%x", sum[:6])
}

// CookedTag is the tag of the cooked image of r.
func (b *WorkspaceBuilder) CookedTag(r *recipe.Recipe) string { return CookedTag(b.cfg.Image, r) }

// CookedTag is the tag of the cooked image of r for the image name image:
// <image>-cooked:<short recipe hash>.
func CookedTag(image string, r *recipe.Recipe) string { return image + "-cooked:" + r.ShortHash() }

// Removed is one thing GC removed.
type Removed struct {
	// Name says what it was, for people: a cooked image's tag (or ID), or
	// "build cache <id> (<size>)".
	Name string
	// Recipe is the full hash of the recipe a cooked image was cooked for
	// ("" for a target cache).
	Recipe string
}

// RemovedNames lists the names of rs.
func RemovedNames(rs []Removed) []string {
	names := make([]string, 0, len(rs))
	for _, r := range rs {
		names = append(names, r.Name)
	}
	return names
}

// StateDir is the workspace's client state directory (the build lock,
// leftovers; the CLI keeps its step times there).
func (b *WorkspaceBuilder) StateDir() string { return b.stateDir }

// ImageRef is the final image reference.
func (b *WorkspaceBuilder) ImageRef() string { return b.cfg.Image + ":" + b.cfg.Tag }

// HasCooked reports whether the cooked image of r exists (cooked with
// the builder image the settings name now).
func (b *WorkspaceBuilder) HasCooked(ctx context.Context, r *recipe.Recipe) (bool, error) {
	id, err := b.cookedID(ctx, r)
	return id != "", err
}

// cookedID is the ID of r's cooked image, "" when there is none, or when
// it was cooked with another builder image than the one the settings
// name now (the tag moved: a new toolchain or crate source); the code
// build runs in the builder image, on the cooked artifacts.
func (b *WorkspaceBuilder) cookedID(ctx context.Context, r *recipe.Recipe) (string, error) {
	tag := b.CookedTag(r)
	ins, err := b.e.inspectImage(ctx, tag)
	if ins == nil {
		return "", err
	}
	var cookedWith string
	if ins.Config != nil {
		cookedWith = ins.Config.Labels[labelBuilder]
	}
	if cookedWith == "" {
		return ins.ID, nil
	}
	now, err := b.e.imageID(ctx, b.cfg.BuilderImage)
	if err != nil || now == "" || now == cookedWith {
		return ins.ID, err
	}
	b.log.Info("the cooked image was cooked with another builder image: cooking again", zap.String("tag", tag),
		zap.String("builder", b.cfg.BuilderImage), zap.String("cooked_with", cookedWith), zap.String("now", now))
	return "", nil
}

func (b *WorkspaceBuilder) labels(kind string, r *recipe.Recipe) map[string]string {
	l := map[string]string{
		"chefd":           "1",
		"chefd.kind":      kind,
		"chefd.recipe":    r.Hash,
		"chefd.workspace": b.root,
		"chefd.version":   b.version,
	}
	if kind == "image" {
		if c := commitOf(b.root); c != "" {
			l["chefd.commit"] = c
			l["org.opencontainers.image.revision"] = c
		}
	}
	return l
}

// Cook builds <image>-cooked:<hash16> from the skeleton unless it exists.
func (b *WorkspaceBuilder) Cook(ctx context.Context, r *recipe.Recipe, p Progress) (CookResult, error) {
	start := time.Now()
	tag := b.CookedTag(r)
	res := CookResult{Tag: tag}
	b.use(r)
	id, err := b.cookedID(ctx, r)
	if err != nil {
		return res, err
	}
	if id != "" {
		res.ImageID, res.Skipped = id, true
		res.Duration = time.Since(start)
		return res, nil
	}
	if err := checkSrcRoot(r); err != nil {
		return res, err
	}
	builderID, err := b.baseImage(ctx, b.cfg.BuilderImage, "builder", p)
	if err != nil {
		return res, err
	}
	key := cookKey(r, builderID)
	b.log.Debug("cook key", zap.String("key", key), zap.String("builder", builderID))
	b.mu.Lock()
	b.currentKey = key
	b.mu.Unlock()
	// the registry is asked for a seed only when it answered the
	// manifest check (one warning for a registry that is down or slow)
	askRegistry := b.cfg.CookedRepo != ""
	if b.cfg.CookedRepo != "" && !b.noCache {
		id, _, err := b.fetchCooked(ctx, r, key, p)
		askRegistry = err == nil
		if err != nil && ctx.Err() != nil {
			return res, err
		}
		if err != nil {
			res.Warnings = append(res.Warnings, b.warn(p, err.Error()+"; cooking here"))
		}
		if id != "" {
			res.ImageID, res.Pulled = id, RemoteCookedRef(b.cfg.CookedRepo, r)
			res.Duration = time.Since(start)
			b.log.Info("pulled the cooked image", zap.String("ref", res.Pulled), zap.Duration("took", res.Duration))
			return res, nil
		}
	}
	// before the vendor plan, which hashes every vendored crate: a cooked
	// image of the same recipe needs none of it
	var base *layerBase
	if !b.noCache && !b.noLayer(builderID) {
		base = b.pickLayerBase(ctx, r, key)
	}
	if base.sameRecipe(r) {
		s, err := b.cookSame(ctx, r, key, builderID, tag, base, p)
		b.cleanup(ctx, s, false, time.Since(start), 0)
		if err == nil {
			res.Duration, res.ImageID, res.LayerOn = time.Since(start), s.imageID, base.Ref
			b.log.Info("cooked from a cooked image of the same recipe", zap.String("tag", tag), zap.String("from", base.Ref))
			b.pushCooked(ctx, r, &res, start, p)
			return res, nil
		}
		if ctx.Err() != nil {
			return res, err
		}
		b.log.Info("could not take the cooked image of the same recipe: cooking", zap.String("from", base.Ref), zap.Error(err))
		base = nil
	}
	dirs, cached, err := vendorDirs(b.root, r)
	if err != nil {
		return res, err
	}
	if !cached {
		dirs = nil
	}
	if err := b.planShipping(dirs, b.noCache); err != nil {
		return res, err
	}
	var seed *cookSeed
	if askRegistry && !b.noCache {
		seed = &cookSeed{Ask: true}
	}
	stage := ""
	if base != nil {
		stage = stageLayer
		b.log.Debug("the cooked image is a layer", zap.String("base", base.Ref), zap.Int("layers", base.Layers))
	}
	s, err := b.cookOnce(ctx, r, key, builderID, tag, dirs, seed, base, stage, p)
	var compiled Crates
	for range 3 {
		switch {
		case err != nil && seed != nil && seed.Ask && s != nil && sawLine(s.lines, seedWanted):
			// an empty cook cache: the repository's seed of the key, if any
			var drop func()
			seed, drop = b.seedFor(ctx, key, p)
			defer drop()
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
		case err != nil && dirs != nil && s != nil && sawLine(s.lines, vendorMissing):
			// the cache lacked an item the hint said it held: ship them all
			b.log.Info("the vendor cache does not hold what the last cook left; shipping every vendored crate")
			b.dropHints(dirs)
			if err := b.planShipping(dirs, true); err != nil {
				return res, err
			}
		case err != nil && base != nil && ctx.Err() == nil && s != nil && layerFailed(s):
			// not the cook step's own failure: the base or the layer tool
			b.log.Info("the cook as a layer on the base image failed: cooking a whole copy",
				zap.String("base", base.Ref), zap.Error(err))
			if sawLine(s.lines, layerToolFailed) {
				b.setNoLayer(builderID)
			}
			base, stage = nil, ""
			compiled = s.crates // what cargo compiled then is fresh in the run again
		default:
			continue
		}
		s, err = b.cookOnce(ctx, r, key, builderID, tag, dirs, seed, base, stage, p)
	}
	if err == nil && base != nil {
		res.LayerOn = base.Ref
		if flat := b.flattenIfBloated(ctx, r, key, builderID, tag, dirs, seed, base, s, p); flat != nil {
			res.LayerOn, res.Flattened = "", true
			b.cleanup(ctx, flat, false, time.Since(start), 0)
			s.imageID = flat.imageID
		}
	}
	if err == nil && dirs != nil {
		b.writeHints(dirs)
	}
	b.cleanup(ctx, s, false, time.Since(start), 0)
	res.Duration = time.Since(start)
	if s != nil {
		res.Compiled = s.crates
		if res.Compiled.ThirdParty+res.Compiled.Local == 0 {
			res.Compiled = compiled
		}
		res.Phases = s.steps()
		res.ImageID = s.imageID
		res.Seed = seedOf(s.lines)
		if seed != nil && seed.Ref != "" && sawLine(s.lines, seedFilled) {
			res.SeedImage = seed.Ref
		}
	}
	if err != nil {
		return res, fmt.Errorf("cook %s: %w", tag, err)
	}
	b.log.Info("cooked", zap.String("tag", tag), zap.Duration("took", res.Duration), zap.String("seed", res.Seed),
		zap.Int("third_party", res.Compiled.ThirdParty))
	b.pushCooked(ctx, r, &res, start, p)
	return res, nil
}

// pushCooked pushes the image a cook made to the cooked repository when
// the settings say so (Settings.PushCooked); a failure is a warning.
func (b *WorkspaceBuilder) pushCooked(ctx context.Context, r *recipe.Recipe, res *CookResult, start time.Time, p Progress) {
	if !b.cfg.PushCooked || b.cfg.CookedRepo == "" {
		return
	}
	ref, err := b.PushCooked(ctx, r, p)
	if err != nil {
		res.Warnings = append(res.Warnings, b.warn(p, err.Error()+"; the cooked image stays on this engine only"))
	}
	res.Pushed = ref
	res.Duration = time.Since(start)
}

// cookedLabels are a cooked image's labels: chefd's, the cook key, the
// builder image's ID (cookedID) and the time of the cook (GC's order).
func (b *WorkspaceBuilder) cookedLabels(r *recipe.Recipe, key, builderID string) map[string]string {
	l := b.labels("cooked", r)
	l[labelCookKey], l[labelBuilder], l[labelCookedAt] = key, builderID, time.Now().UTC().Format(time.RFC3339Nano)
	return l
}

// warn logs a warning and reports it as progress; it returns msg.
func (b *WorkspaceBuilder) warn(p Progress, msg string) string {
	b.log.Warn(msg)
	if p != nil {
		p(Event{Time: time.Now(), Kind: EventWarning, Text: msg})
	}
	return msg
}

// cookOnce runs one cook build of r (key, tag), its vendored sources in
// the vendor caches dirs (nil: bind mounts or the skeleton), with seed
// (nil: none). With vendor caches or a seed asked for, an error event is
// held back until the caller knows whether the cook runs again (every
// vendored crate shipped, the seed pulled).
//
// With base, the image is a layer on it (deltalayer.go); stage is the
// stage to build then (stageLayer or stageFlat).
func (b *WorkspaceBuilder) cookOnce(ctx context.Context, r *recipe.Recipe, key, builderID, tag string, dirs []*vendorDir, seed *cookSeed, base *layerBase, stage string, p Progress) (*stream, error) {
	df, script := cookDockerfile(r, cookCacheID(key), dirs, seed, base != nil), cookScript(r, r.ShortHash(), b.noCache, dirs, seed, base != nil)
	if n, all := vendorItemsShipped(dirs); all > 0 {
		b.log.Debug("vendored crates shipped to the vendor cache", zap.Int("shipped", n), zap.Int("items", all))
	}
	write := func(cw *contextWriter) error {
		files := []ctxFile{
			{rel: "chefd/Dockerfile", data: []byte(df), mode: 0o644},
			{rel: "chefd/cook.sh", data: []byte(script), mode: 0o644},
			{rel: "chefd/vendor.sums", data: []byte(vendorSums(r)), mode: 0o644},
		}
		if base != nil {
			files = append(files,
				ctxFile{rel: layerToolDir + "/sync.rs", data: []byte(layerToolSource), mode: 0o644},
				ctxFile{rel: layerToolDir + "/build.sh", data: []byte(layerToolBuild()), mode: 0o644})
		}
		for _, f := range files {
			if err := cw.add("", f); err != nil {
				return err
			}
		}
		for _, f := range r.SkeletonFiles() {
			if err := cw.add("skeleton", ctxFile{rel: f.Path, data: []byte(f.Contents), mode: 0o644}); err != nil {
				return err
			}
		}
		if dirs != nil {
			return writeVendor(cw, dirs)
		}
		prefix := "skeleton"
		if mountVendor(r) {
			prefix = cookVendorDir
		}
		for _, v := range r.VendorDirs {
			// the directory itself, for the mount of an empty one
			if err := cw.mkdirs(path.Join(prefix, v, "x")); err != nil {
				return err
			}
			dir := filepath.Join(r.ContextRoot, filepath.FromSlash(v))
			files, err := collect(dir, r.ContextRoot, inputs.Builtin(dir))
			if err != nil {
				return err
			}
			sortFiles(files)
			for _, f := range files {
				if err := cw.add(prefix, f); err != nil {
					return err
				}
			}
		}
		return nil
	}
	args := map[string]*string{"BUILDER": &b.cfg.BuilderImage}
	if seed != nil {
		args["SEED"] = &seed.Ref
	}
	if base != nil {
		args["PREV"] = &base.Ref
	}
	var held []Event
	progress := p
	if (dirs != nil || seed != nil && seed.Ask || base != nil) && p != nil {
		progress = func(ev Event) {
			if ev.Kind == EventError {
				held = append(held, ev)
				return
			}
			p(ev)
		}
	}
	s, err := b.e.build(ctx, write, build.ImageBuildOptions{
		NoCache:    b.noCache,
		Dockerfile: "chefd/Dockerfile",
		Tags:       []string{tag},
		Labels:     b.cookedLabels(r, key, builderID),
		BuildArgs:  args,
		Target:     stage,
	}, progress)
	if len(held) > 0 && (s == nil || !sawLine(s.lines, vendorMissing) && !sawLine(s.lines, seedWanted) && !(base != nil && layerFailed(s))) {
		for _, ev := range held {
			p(ev)
		}
	}
	return s, err
}

// ShippedBins are the binaries copied into the final image (bins of
// chefd.toml, else every binary of the recipe) and the entrypoint.
//
// With several images: the union of theirs, and no entrypoint (each
// image has its own).
func ShippedBins(cfg Settings, r *recipe.Recipe) ([]string, string) {
	if len(cfg.Images) > 0 {
		return allBins(cfg.Images), ""
	}
	bins := cfg.Bins
	if len(bins) == 0 {
		bins = r.Bins()
	}
	entry := cfg.Entrypoint
	if entry == "" && len(bins) > 0 {
		entry = bins[0]
	}
	return bins, entry
}

// Build cooks r if needed, then builds the code on the cooked image in
// mode and tags <image>:<tag> (labelled with the mode).
func (b *WorkspaceBuilder) Build(ctx context.Context, r *recipe.Recipe, mode Mode, p Progress) (BuildResult, error) {
	start := time.Now()
	res := BuildResult{Image: b.ImageRef(), CookedTag: b.CookedTag(r), Mode: mode, Engine: b.e.Host()}
	if len(b.cfg.Images) > 0 {
		res.Image = b.cfg.Images[0].Ref()
	}
	if !mode.Valid() {
		return res, fmt.Errorf("build mode %q: want %q or %q", mode, ModeExact, ModeLoop)
	}
	b.use(r)
	if err := checkSrcRoot(r); err != nil {
		return res, err
	}
	have, err := b.HasCooked(ctx, r)
	if err != nil {
		return res, err
	}
	if !have {
		cr, err := b.Cook(ctx, r, p)
		res.Cook = &cr
		res.Phases = append(res.Phases, Phase{Name: "cook", Duration: cr.Duration})
		if err != nil {
			return res, err
		}
	}
	multi := len(b.cfg.Images) > 0
	type baseRef struct{ ref, role string }
	bases := []baseRef{{b.cfg.BuilderImage, "builder"}}
	if !multi {
		bases = append(bases, baseRef{b.cfg.RuntimeImage, "runtime"})
	}
	for _, im := range b.cfg.Images {
		if !slices.ContainsFunc(bases, func(o baseRef) bool { return o.ref == im.RuntimeImage }) {
			bases = append(bases, baseRef{im.RuntimeImage, "runtime"})
		}
	}
	runtimeIDs := map[string]string{}
	for _, im := range bases {
		pull := b.baseImage
		if im.role == "builder" && res.Cook != nil && b.pullPolicy() == PullAlways {
			pull = func(ctx context.Context, ref, _ string, _ Progress) (string, error) { return b.e.imageID(ctx, ref) } // the cook pulled it
		}
		id, err := pull(ctx, im.ref, im.role, p)
		if err != nil {
			return res, err
		}
		runtimeIDs[im.ref] = id // a runtime image may be the builder image too
	}
	bins, entry := ShippedBins(b.cfg, r)
	if len(bins) == 0 {
		return res, fmt.Errorf("no binary to ship: the workspace has no binary target (set bins in %s)", configs.FileName)
	}

	// One code build of this workspace at a time, across processes.
	lock, err := flock.Wait(ctx, filepath.Join(b.stateDir, "build.lock"), 50*time.Millisecond)
	if err != nil {
		return res, err
	}
	defer lock.Unlock()

	t0 := time.Now()
	files, err := b.contextFiles(r)
	if err != nil {
		return res, err
	}
	cacheID := targetCacheID(b.root, r.ShortHash(), mode)
	res.Phases = append(res.Phases, Phase{Name: "context", Duration: time.Since(t0)})
	b.log.Debug("code build context", zap.Int("files", len(files)))
	if w := contextWarning(files, b.cfg, r.ContextRoot, b.root); w != nil {
		res.Warnings = w
		b.log.Warn("large build context", zap.Strings("warning", w))
		for _, l := range w {
			if p != nil {
				p(Event{Time: time.Now(), Kind: EventLog, Step: "context", Text: l})
			}
		}
	}

	df := codeDockerfile(r, cacheID, b.cfg.RuntimeImage, entry)
	tag, labels := b.ImageRef(), withLabel(withLabel(b.labels("image", r), labelMode, string(mode)), labelImage, b.cfg.Image)
	if multi {
		// the binaries alone, under a tag of this build's own (images.go)
		df = binsDockerfile(r, cacheID)
		tag, labels = b.cfg.Image+"-bins:"+randomTag(), b.labels("bins", r)
	}
	script := codeScript(r, bins, b.noCache, mode, multi)
	src := newSourceIndex(r)
	in := newInputs(r, t0)
	written := make(chan struct{})
	write := func(cw *contextWriter) error {
		for _, f := range []ctxFile{
			{rel: "chefd/Dockerfile", data: []byte(df), mode: 0o644},
			{rel: "chefd/stamp.sh", data: []byte(stampScript), mode: 0o644},
			{rel: "chefd/code.sh", data: []byte(script), mode: 0o644},
		} {
			if err := cw.add("", f); err != nil {
				return err
			}
		}
		for _, f := range files {
			d, err := cw.addHashed("src", f)
			if err != nil {
				return err
			}
			src.add(f.rel, d)
			in.add(f, d)
		}
		list, always := src.lists()
		if err := cw.add("", ctxFile{rel: "chefd/sources", data: list, mode: 0o644}); err != nil {
			return err
		}
		if err := cw.add("", ctxFile{rel: "chefd/always", data: always, mode: 0o644}); err != nil {
			return err
		}
		close(written)
		if p != nil {
			p(Event{Time: time.Now(), Kind: EventInputs, Inputs: in})
		}
		return nil
	}
	cooked := b.CookedTag(r)
	prevID := ""
	if !multi {
		prevID, _ = b.e.imageID(ctx, tag) // "": no image yet, or unreadable (then "changed")
	}
	t1 := time.Now()
	s, err := b.e.build(ctx, write, build.ImageBuildOptions{
		NoCache:    b.noCache,
		Dockerfile: "chefd/Dockerfile",
		Tags:       []string{tag},
		Labels:     labels,
		BuildArgs:  map[string]*string{"COOKED": &cooked, "BUILDER": &b.cfg.BuilderImage},
	}, p)
	if multi && s != nil && s.imageID != "" {
		defer b.e.removeBins(ctx, tag)
	}
	res.Phases = append(res.Phases, Phase{Name: "build", Duration: time.Since(t1)})
	t2 := time.Now()
	if b.cleanup(ctx, s, true, t2.Sub(t1), contextSize(files)) {
		res.Phases = append(res.Phases, Phase{Name: "cleanup", Duration: time.Since(t2)})
	}
	if s != nil {
		res.Compiled = s.crates
		res.ImageID = s.imageID
		res.Context = &ContextStats{Files: len(files), Bytes: contextSize(files), Sent: s.sent.Wire, Gzip: s.sent.Gzip,
			Upload: s.sent.Took}
		res.Unchanged = err == nil && !multi && prevID != "" && prevID == s.imageID
	}
	if err == nil && multi {
		t3 := time.Now()
		res.Images, err = b.serviceImages(ctx, r, mode, tag, runtimeIDs, sumsFromLog(s), p)
		res.Phases = append(res.Phases, Phase{Name: "images", Duration: time.Since(t3)})
		if len(res.Images) > 0 {
			res.Image, res.ImageID = res.Images[0].Image, res.Images[0].ImageID
		}
	}
	if err == nil {
		// the image this build superseded, and older ones beyond keep-images
		for _, rm := range b.pruneSuperseded(ctx, b.keepImages(), tag) {
			b.log.Info("removed a superseded image", zap.String("image", rm.Name))
		}
	}
	res.Duration = time.Since(start)
	if err != nil {
		return res, err
	}
	select {
	case <-written: // an image means the engine read the whole context
		done := *in // in itself went out with EventInputs: never written again
		done.image = res.ImageID
		if multi {
			done.tagged = map[string]string{}
			for _, im := range res.Images {
				done.tagged[im.Image] = im.ImageID
			}
		}
		res.Inputs = &done
	default:
	}
	b.log.Info("built", zap.String("image", res.Image), zap.String("id", res.ImageID),
		zap.Duration("took", res.Duration), zap.String("mode", string(mode)), zap.Int("local", res.Compiled.Local),
		zap.Int("third_party", res.Compiled.ThirdParty))
	return res, nil
}

// contextFiles lists the code build's sources: the workspace's build inputs
// (package inputs: minus .dockerignore, chefd.toml ignores and the built-in
// rules) and every local crate outside it (built-in rules only), at their
// place relative to the context root; a crate whose directory is a
// symlink is shipped as the directory cargo reads (followMemberLinks).
func (b *WorkspaceBuilder) contextFiles(r *recipe.Recipe) ([]ctxFile, error) {
	m, err := inputs.New(b.root, b.cfg.Ignore)
	if err != nil {
		return nil, err
	}
	files, err := collect(b.root, r.ContextRoot, m)
	if err != nil {
		return nil, err
	}
	for _, d := range r.OutsideDirs() {
		dir := filepath.Join(r.ContextRoot, filepath.FromSlash(d))
		more, err := collect(dir, r.ContextRoot, inputs.Builtin(dir))
		if err != nil {
			return nil, err
		}
		files = append(files, more...)
	}
	if files, err = followMemberLinks(r, files, b.root, m); err != nil {
		return nil, err
	}
	sortFiles(files)
	return files, nil
}

// build runs one BuildKit build with a tar context written by write.
//
// The context travels gzip-compressed when the engine compresses
// (WithCompression); the stream records what went on the wire.
func (e *Engine) build(ctx context.Context, write func(*contextWriter) error, opts build.ImageBuildOptions, p Progress) (*stream, error) {
	pr, pw := io.Pipe()
	sent := make(chan sendStats, 1)
	go func() {
		t0 := time.Now()
		wire := &countWriter{w: pw}
		var w io.Writer = wire
		var gz *gzip.Writer
		if e.compress {
			gz, _ = gzip.NewWriterLevel(wire, gzip.BestSpeed) // a valid level: no error
			w = gz
		}
		cw := newContextWriter(w)
		err := write(cw)
		if err == nil {
			err = cw.Close()
		}
		if err == nil && gz != nil {
			err = gz.Close()
		}
		sent <- sendStats{Wire: wire.n, Took: time.Since(t0), Gzip: gz != nil}
		pw.CloseWithError(err)
	}()
	opts.Version = build.BuilderBuildKit
	opts.PullParent = false
	opts.Remove = true
	opts.ForceRemove = true
	resp, err := e.api.ImageBuild(ctx, pr, opts)
	if err != nil {
		pr.CloseWithError(err)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := e.transportError(err); IsUnreachable(err) {
			return nil, err
		}
		return nil, fmt.Errorf("start build: %w", err)
	}
	defer resp.Body.Close()
	s := newStream(p)
	err = s.read(resp.Body)
	select {
	case st := <-sent:
		s.sent = st
	default:
	}
	if err != nil {
		if ctx.Err() != nil {
			return s, ctx.Err()
		}
		return s, e.transportError(err)
	}
	return s, nil
}

// sendStats is what a build's context cost on the way to the engine.
type sendStats struct {
	Wire int64         // bytes on the wire (compressed when Gzip)
	Took time.Duration // from the first byte written to the last read
	Gzip bool
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ran reports whether the step marked with marker executed (not cached)
// and finished without error.
func (s *stream) ran(marker string) bool {
	v := s.step(marker)
	return v != nil && !v.cached && !v.started.IsZero() && !v.completed.IsZero() && v.err == ""
}

// step is the first step whose name holds marker (nil: none).
func (s *stream) step(marker string) *vertex {
	for _, d := range s.order {
		if v := s.vertices[d]; strings.Contains(v.name, marker) {
			return v
		}
	}
	return nil
}

// GC removes this workspace's cooked images beyond the newest keep; the
// cooked image of the recipe last cooked or built is always kept.
func (b *WorkspaceBuilder) GC(ctx context.Context, keep int) ([]Removed, error) {
	b.mu.Lock()
	current := b.current
	b.mu.Unlock()
	imgs, err := b.e.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", "chefd.kind=cooked"),
		filters.Arg("label", "chefd.workspace="+b.root),
	)})
	if err != nil {
		return nil, fmt.Errorf("list cooked images: %w", err)
	}
	if b.cfg.CookedRepo != "" {
		// cooked images pulled from the cooked repository carry the
		// workspace label of the machine that cooked them, and its tag
		pulled, err := b.e.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
			filters.Arg("label", "chefd.kind=cooked"),
			filters.Arg("reference", b.cfg.CookedRepo),
		)})
		if err != nil {
			return nil, fmt.Errorf("list cooked images: %w", err)
		}
		for _, im := range pulled {
			if !slices.ContainsFunc(imgs, func(o image.Summary) bool { return o.ID == im.ID }) {
				imgs = append(imgs, im)
			}
		}
	}
	sort.SliceStable(imgs, func(i, j int) bool { return cookedAt(imgs[i]).After(cookedAt(imgs[j])) })
	var removed []Removed
	kept := map[string]bool{} // short recipe hashes whose target caches stay
	if current != "" {
		kept[tagHash(current)] = true
	}
	for i, im := range imgs {
		if i < keep || slices.Contains(im.RepoTags, current) {
			for _, t := range im.RepoTags {
				kept[tagHash(t)] = true
			}
			continue
		}
		name := im.ID
		if len(im.RepoTags) > 0 {
			name = im.RepoTags[0]
		}
		if _, err := b.e.api.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			b.log.Warn("could not remove cooked image", zap.String("image", name), zap.Error(err))
			continue
		}
		removed = append(removed, Removed{Name: name, Recipe: im.Labels["chefd.recipe"]})
	}
	// superseded final images beyond keep-images (a build removes them
	// too; these are the ones builds of an earlier configuration left)
	removed = append(removed, b.pruneSuperseded(ctx, b.keepImages(), "")...)
	cache, err := b.e.BuildCache(ctx)
	if err != nil {
		return removed, fmt.Errorf("list build cache: %w", err)
	}
	removed = append(removed, b.pruneTargetCaches(ctx, cache, kept)...)
	cooks, err := b.pruneCookCaches(ctx, cache)
	return append(removed, cooks...), err
}

// cookedAt is when a cooked image was cooked: its label (the image's own
// creation time is that of its newest layer, which BuildKit's layer
// cache may have made long before), else its creation time.
func cookedAt(im image.Summary) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, im.Labels[labelCookedAt]); err == nil {
		return t
	}
	return time.Unix(im.Created, 0)
}

// pruneCookCaches removes the cook caches (deltacook.go) of the keys no
// cooked image on the engine has any more, whatever its workspace (a cook
// cache is the engine's): an intent or builder image left behind. The key
// of the last cook of this builder stays too. By ID, never one in use.
func (b *WorkspaceBuilder) pruneCookCaches(ctx context.Context, cache []*build.CacheRecord) ([]Removed, error) {
	imgs, err := b.e.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "chefd.kind=cooked"))})
	if err != nil {
		return nil, fmt.Errorf("list cooked images: %w", err)
	}
	keep := map[string]bool{}
	for _, im := range imgs {
		if k := im.Labels[labelCookKey]; k != "" {
			keep[cookCacheID(k)] = true
		}
	}
	b.mu.Lock()
	if b.currentKey != "" {
		keep[cookCacheID(b.currentKey)] = true
	}
	b.mu.Unlock()
	return b.pruneMounts(ctx, cache, cookMarker, func(id string) bool {
		return strings.HasPrefix(id, cookCacheID("")) && !keep[id]
	}), nil
}

// tagHash is the short recipe hash a cooked image's tag ends with.
func tagHash(tag string) string { return tag[strings.LastIndexByte(tag, ':')+1:] }

// pruneTargetCaches removes, of the build cache records listed in cache,
// this workspace's target-directory cache mounts
// (their source record goes with them) whose recipe is not in keep (short
// hashes). Only those records are pruned, by ID: never the engine's whole
// build cache, which other projects share.
func (b *WorkspaceBuilder) pruneTargetCaches(ctx context.Context, cache []*build.CacheRecord, keep map[string]bool) []Removed {
	prefix := targetCachePrefix(WorkspaceID(b.root))
	return b.pruneMounts(ctx, cache, codeMarker, func(id string) bool {
		hash, ok := strings.CutPrefix(id, prefix)
		hash = strings.TrimSuffix(hash, loopCacheSuffix)
		return ok && hash != "" && !keep[hash]
	})
}

// pruneMounts removes, by ID, the cache mounts among cache of the steps
// marked with step whose cache id (named in the command after cacheMarker
// or cookCacheMarker) remove picks; never one in use. A failure is logged.
//
// A cache id can have several records (one per snapshot BuildKit kept);
// the removals are reported once per id, with their sizes added up.
func (b *WorkspaceBuilder) pruneMounts(ctx context.Context, cache []*build.CacheRecord, step string, remove func(id string) bool) []Removed {
	var order []string
	size := map[string]int64{}
	for _, rec := range cache {
		if rec == nil || rec.Type != cacheMountType || rec.InUse || !strings.Contains(rec.Description, step) {
			continue
		}
		id := mountID(rec.Description)
		if id == "" || !remove(id) {
			continue
		}
		if _, err := b.e.api.BuildCachePrune(ctx, build.CachePruneOptions{Filters: filters.NewArgs(filters.Arg("id", rec.ID))}); err != nil {
			b.log.Warn("could not remove a cache mount", zap.String("cache", id), zap.Error(err))
			continue
		}
		if _, seen := size[id]; !seen {
			order = append(order, id)
		}
		size[id] += rec.Size
	}
	removed := make([]Removed, 0, len(order))
	for _, id := range order {
		removed = append(removed, Removed{Name: fmt.Sprintf("build cache %s (%.1f MB)", id, float64(size[id])/1e6)})
	}
	return removed
}

// mountID is the cache id a step's command names after cacheMarker or
// cookCacheMarker ("" when it names none).
func mountID(description string) string {
	for _, m := range []string{cacheMarker, cookCacheMarker} {
		if i := strings.Index(description, m); i >= 0 {
			if f := strings.Fields(description[i+len(m):]); len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}

// commitOf is the commit the workspace's HEAD names ("" outside git).
func commitOf(root string) string {
	r, ok := gitrepo.Find(root)
	if !ok {
		return ""
	}
	return r.Head()
}

// withLabel is l with one more label.
func withLabel(l map[string]string, k, v string) map[string]string {
	l[k] = v
	return l
}
