package dockerctl

// Several service images of one workspace (Settings.Images): one cook and
// one code build compile every binary any image ships (shared crates
// once); the code build's image is the binaries alone (binsDockerfile),
// under a tag of its own build; each service image is then made from it
// by a small build of its own (serviceDockerfile), or kept.
//
// Only changed images move: a service image carries a content key (its
// binaries' SHA-256 sums, the runtime base's image ID, the entrypoint and
// its labels but the commit and build time). When the image its tag names
// has the key the new one would have, it is kept (same ID: `docker compose
// up -d` leaves the service alone) and no build runs for it.

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"go.uber.org/zap"

	"github.com/chefd/chefd/recipe"
)

const (
	// sumsFile holds the binaries' sums in the binaries image
	// ("<sha256>  <name>" lines, sha256sum's format); it never ships.
	sumsFile = ".chefd-sums"
	// sumsLimit bounds what is read of it.
	sumsLimit = 1 << 20
	// sumLinePrefix marks the sums in the code step's log
	sumLinePrefix = "chefd-sum "

	labelContent = "chefd.content" // a service image's content key
	labelBinSums = "chefd.bins"    // its binaries' sums: "name=sha256,..."
	labelRuntime = "chefd.runtime" // its runtime base's image ID
	labelImage   = "chefd.image"   // its repository (GC keeps a few per image)
	labelBuiltAt = "chefd.built-at"

	// serviceBuilds is how many service images are built at once.
	serviceBuilds = 4
)

// randomTag is a tag no other build uses: the binaries image of one
// build must not be replaced by another's (a second checkout of the same
// name) before its service images are made.
func randomTag() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// allBins is the union of the images' binaries, sorted.
func allBins(imgs []ImageSpec) []string {
	set := map[string]bool{}
	var out []string
	for _, im := range imgs {
		for _, b := range im.Bins {
			if !set[b] {
				set[b] = true
				out = append(out, b)
			}
		}
	}
	sort.Strings(out)
	return out
}

// binsContainer creates a container of the binaries image ref, never
// started: the engine copies files out of it. remove removes it.
func (e *Engine) binsContainer(ctx context.Context, ref string) (id string, remove func(), err error) {
	c, err := e.api.ContainerCreate(ctx, &container.Config{Image: ref, Cmd: []string{"/" + sumsFile},
		Labels: map[string]string{"chefd": "1"}}, nil, nil, nil, "")
	if err != nil {
		return "", nil, fmt.Errorf("read the binaries: create a container of %s: %w", ref, err)
	}
	return c.ID, func() {
		e.api.ContainerRemove(context.WithoutCancel(ctx), c.ID, container.RemoveOptions{Force: true})
	}, nil
}

// readSums reads the binaries' sums out of the binaries image ref.
func (e *Engine) readSums(ctx context.Context, ref string) (map[string]string, error) {
	id, remove, err := e.binsContainer(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer remove()
	rc, _, err := e.api.CopyFromContainer(ctx, id, "/"+sumsFile)
	if err != nil {
		return nil, fmt.Errorf("read the binaries' sums from %s: %w", ref, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		return nil, fmt.Errorf("read the binaries' sums from %s: %w", ref, err)
	}
	return parseSums(io.LimitReader(tr, sumsLimit))
}

// sumsFromLog takes the sums out of the code step's log lines (nil when
// the step printed none).
func sumsFromLog(s *stream) map[string]string {
	if s == nil || !s.ran(codeMarker) {
		return nil
	}
	var b strings.Builder
	for _, l := range s.lines {
		if rest, ok := strings.CutPrefix(l, sumLinePrefix); ok {
			b.WriteString(rest + "\n")
		}
	}
	sums, err := parseSums(strings.NewReader(b.String()))
	if err != nil {
		return nil
	}
	return sums
}

func hasAll(sums map[string]string, bins []string) bool {
	if sums == nil {
		return false
	}
	for _, b := range bins {
		if sums[b] == "" {
			return false
		}
	}
	return true
}

// parseSums reads sha256sum's output: "<64 hex>  <name>" (or " *<name>").
func parseSums(r io.Reader) (map[string]string, error) {
	sums := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 67 || line[64] != ' ' {
			return nil, fmt.Errorf("binaries' sums: unexpected line %q", line)
		}
		if _, err := hex.DecodeString(line[:64]); err != nil {
			return nil, fmt.Errorf("binaries' sums: unexpected line %q", line)
		}
		sums[strings.TrimPrefix(line[66:], "*")] = line[:64]
	}
	return sums, sc.Err()
}

// contentKey is the key of a service image: what it ships and how it
// starts. Labels that change on every build (commit, build time) are out.
func contentKey(spec ImageSpec, sums map[string]string, runtimeID string, labels map[string]string) (key, binSums string, err error) {
	h := sha256.New()
	fmt.Fprintf(h, "chefd-image-v1\nruntime %s %s\nentrypoint %q\n", spec.RuntimeImage, runtimeID, spec.Entrypoint)
	var pairs []string
	for _, b := range spec.Bins {
		s, ok := sums[b]
		if !ok {
			return "", "", fmt.Errorf("binary %s of image %s was not built", b, spec.Name)
		}
		fmt.Fprintf(h, "bin %s %s\n", b, s)
		pairs = append(pairs, b+"="+s)
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if volatileLabel(k) {
			continue
		}
		fmt.Fprintf(h, "label %q %q\n", k, labels[k])
	}
	return hex.EncodeToString(h.Sum(nil)), strings.Join(pairs, ","), nil
}

// volatileLabel: a label that differs between builds of the same content.
func volatileLabel(k string) bool {
	switch k {
	case "chefd.commit", "org.opencontainers.image.revision", labelBuiltAt, labelContent, labelBinSums:
		return true
	}
	return false
}

// changeReason says why an image with these labels (the one the tag
// named, nil when none) differs from the new content.
func changeReason(old map[string]string, labels map[string]string, binSums, runtimeID string) string {
	if old == nil {
		return "new image"
	}
	if old[labelContent] == "" {
		return "the image its tag named was not built by chefd for several images"
	}
	var changed []string
	was := map[string]string{}
	for _, p := range strings.Split(old[labelBinSums], ",") {
		if k, v, ok := strings.Cut(p, "="); ok {
			was[k] = v
		}
	}
	for _, p := range strings.Split(binSums, ",") {
		if k, v, ok := strings.Cut(p, "="); ok && was[k] != v {
			changed = append(changed, k)
		}
	}
	switch {
	case len(changed) > 0:
		return strings.Join(changed, ", ") + " changed"
	case old[labelRuntime] != runtimeID:
		return "runtime image changed"
	}
	var keys []string
	for k, v := range labels {
		if !volatileLabel(k) && old[k] != v {
			keys = append(keys, k)
		}
	}
	for k := range old {
		if _, ok := labels[k]; !ok && !volatileLabel(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		sort.Strings(keys)
		return "label " + strings.Join(keys, ", ") + " changed"
	}
	return "entrypoint changed"
}

// serviceImages makes (or keeps) each image of imgs from the binaries
// image binsRef, a few at a time. The results are in imgs' order.
//
// The binaries' sums come from the code step's log when that step ran
// (this build's output), else (a step BuildKit answered from its cache
// prints nothing) from the binaries image itself.
func (b *WorkspaceBuilder) serviceImages(ctx context.Context, r *recipe.Recipe, mode Mode, binsRef string,
	runtimeIDs map[string]string, logSums map[string]string, p Progress) ([]ImageResult, error) {
	sums := logSums
	if !hasAll(sums, allBins(b.cfg.Images)) {
		var err error
		if sums, err = b.e.readSums(ctx, binsRef); err != nil {
			return nil, err
		}
	}
	// what the images are made of without a build (imageload.go): the
	// binaries, and the runtime bases' configs and layers
	src, err := b.e.openBins(ctx, binsRef, b.stateDir, sums)
	if err != nil {
		return nil, err
	}
	defer src.close()
	bases := map[string]*image.InspectResponse{}
	for _, im := range b.cfg.Images {
		ref := im.RuntimeImage
		if ref == "scratch" {
			ref = binsRef // scratch: the platform of the binaries
		}
		if _, ok := bases[im.RuntimeImage]; !ok {
			if bases[im.RuntimeImage], err = b.e.inspectImage(ctx, ref); err != nil {
				return nil, err
			}
		}
	}
	imgs := b.cfg.Images
	out := make([]ImageResult, len(imgs))
	items := make([]*loadItem, len(imgs))
	labelsOf := make([]map[string]string, len(imgs))
	errs := make([]error, len(imgs))
	defer func() {
		for _, it := range items {
			if it != nil {
				os.Remove(it.layer)
			}
		}
	}()
	// each image: kept, or its layer and config written, a few at a time
	sem := make(chan struct{}, serviceBuilds)
	var wg sync.WaitGroup
	for i, spec := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			out[i], labelsOf[i], errs[i] = b.planImage(ctx, r, mode, spec, sums, runtimeIDs[spec.RuntimeImage])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	var need []ImageSpec
	for i, spec := range imgs {
		if out[i].Changed {
			need = append(need, spec)
		}
	}
	if len(need) == 0 {
		return out, nil
	}
	if err := src.fetch(ctx, allBins(need)); err != nil {
		return out, err
	}
	for i, spec := range imgs {
		if !out[i].Changed {
			continue
		}
		base, plat := bases[spec.RuntimeImage], bases[spec.RuntimeImage]
		if spec.RuntimeImage == "scratch" {
			base = nil // plat is the binaries image: its platform only
		}
		if items[i], err = b.prepareLoad(ctx, src, spec, base, plat, labelsOf[i]); err != nil {
			return out, err
		}
	}
	var load []*loadItem
	for _, it := range items {
		if it != nil {
			load = append(load, it)
		}
	}
	if len(load) == 0 {
		return out, nil
	}
	// the changed images in one load
	t0 := time.Now()
	err = b.loadAll(ctx, load)
	if err == nil {
		for i, it := range items {
			if it != nil {
				out[i].ImageID = it.id()
				b.log.Info("service image", zap.String("image", it.spec.Ref()), zap.String("id", out[i].ImageID), zap.String("reason", out[i].Reason))
			}
		}
		b.log.Info("service images loaded", zap.Int("images", len(load)), zap.Duration("took", time.Since(t0)))
		return out, nil
	}
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	// an engine that would not load them: the same images by builds
	b.log.Warn("could not load the images; building them", zap.Error(err))
	traces := make([]traced, len(imgs))
	for i, it := range items {
		if it == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i].ImageID, traces[i], errs[i] = b.buildService(ctx, it.spec, labelsOf[i], binsRef, p)
		}()
	}
	wg.Wait()
	var done []traced
	for _, t := range traces {
		if t.s != nil {
			done = append(done, t)
		}
	}
	b.cleanupAll(ctx, done) // one cleanup of their leftovers, with one listing
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// planImage says whether spec's image changes: its labels (with the
// content key) and why, or the image its tag names, kept.
func (b *WorkspaceBuilder) planImage(ctx context.Context, r *recipe.Recipe, mode Mode, spec ImageSpec,
	sums map[string]string, runtimeID string) (ImageResult, map[string]string, error) {
	res := ImageResult{Service: spec.Service, Image: spec.Ref()}
	labels := withLabel(b.labels("image", r), labelMode, string(mode))
	labels[labelImage] = spec.Name
	labels[labelRuntime] = runtimeID
	key, binSums, err := contentKey(spec, sums, runtimeID, labels)
	if err != nil {
		return res, nil, err
	}
	old, err := b.e.inspectImage(ctx, spec.Ref())
	if err != nil {
		return res, nil, err
	}
	var oldLabels map[string]string
	if old != nil {
		oldLabels = map[string]string{}
		if old.Config != nil {
			oldLabels = old.Config.Labels
		}
		if oldLabels[labelContent] == key {
			res.ImageID, res.Reason = old.ID, "binaries identical"
			return res, nil, nil
		}
	}
	res.Changed, res.Reason = true, changeReason(oldLabels, labels, binSums, runtimeID)
	labels[labelContent], labels[labelBinSums] = key, binSums
	labels[labelBuiltAt] = time.Now().UTC().Format(time.RFC3339Nano)
	return res, labels, nil
}

// buildService makes spec's image by a BuildKit build from the binaries
// image binsRef.
func (b *WorkspaceBuilder) buildService(ctx context.Context, spec ImageSpec, labels map[string]string, binsRef string,
	p Progress) (string, traced, error) {
	df := serviceDockerfile(spec.RuntimeImage, spec.Bins, spec.Entrypoint)
	write := func(cw *contextWriter) error {
		return cw.add("", ctxFile{rel: "Dockerfile", data: []byte(df), mode: 0o644})
	}
	t0 := time.Now()
	s, err := b.e.build(ctx, write, build.ImageBuildOptions{
		Dockerfile: "Dockerfile",
		Tags:       []string{spec.Ref()},
		Labels:     labels,
		BuildArgs:  map[string]*string{"BINS": &binsRef},
	}, servicePrefix(spec.Service, p))
	tr := traced{s: s, elapsed: time.Since(t0), sent: int64(len(df))}
	if err != nil {
		return "", tr, fmt.Errorf("image %s: %w", spec.Ref(), err)
	}
	return s.imageID, tr, nil
}

// servicePrefix names the service in its build's step events.
func servicePrefix(service string, p Progress) Progress {
	if p == nil {
		return nil
	}
	return func(ev Event) {
		if ev.Step != "" {
			ev.Step = "[" + service + "] " + ev.Step
		}
		p(ev)
	}
}

// removeBins removes the binaries image of a build (its tag is the
// build's own): the service images hold their copies.
func (e *Engine) removeBins(ctx context.Context, ref string) {
	if _, err := e.api.ImageRemove(context.WithoutCancel(ctx), ref, image.RemoveOptions{}); err != nil {
		e.log.Warn("could not remove the binaries image", zap.String("image", ref), zap.Error(err))
	}
}

// pruneSuperseded removes the final images this workspace built that no
// tag names any more (superseded by a later build), beyond the newest
// keep of each image; never one a container uses (the engine refuses,
// and it stays) nor one tagged by anyone (it is not dangling).
//
// With current (a build's own binaries image, under the workspace's build
// lock: no other build of it runs) it also removes the binaries images
// of this workspace's earlier builds (a build killed before it removed
// its own).
func (b *WorkspaceBuilder) pruneSuperseded(ctx context.Context, keep int, current string) []Removed {
	imgs, err := b.e.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", "chefd.kind=image"),
		filters.Arg("label", "chefd.workspace="+b.root),
		filters.Arg("dangling", "true"),
	)})
	if err != nil {
		b.log.Warn("list superseded images", zap.Error(err))
		return nil
	}
	sort.SliceStable(imgs, func(i, j int) bool { return builtAt(imgs[i]).After(builtAt(imgs[j])) })
	seen := map[string]int{}
	var removed []Removed
	if current != "" { // under the build lock: no build of this workspace runs
		removed = b.pruneBins(ctx, current)
	}
	for _, im := range imgs {
		name := im.Labels[labelImage]
		if name == "" {
			name = b.cfg.Image
		}
		if seen[name]++; seen[name] <= keep {
			continue
		}
		if _, err := b.e.api.ImageRemove(ctx, im.ID, image.RemoveOptions{PruneChildren: true}); err != nil {
			b.log.Debug("superseded image stays", zap.String("image", im.ID), zap.Error(err))
			continue
		}
		removed = append(removed, Removed{Name: name + "@" + shortImageID(im.ID), Recipe: ""})
	}
	return removed
}

// builtAt is when a final image was built: its label, else its creation.
func builtAt(im image.Summary) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, im.Labels[labelBuiltAt]); err == nil {
		return t
	}
	return time.Unix(im.Created, 0)
}

func shortImageID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// pruneBins removes the binaries images of this workspace but current.
func (b *WorkspaceBuilder) pruneBins(ctx context.Context, current string) []Removed {
	imgs, err := b.e.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", "chefd.kind=bins"),
		filters.Arg("label", "chefd.workspace="+b.root),
	)})
	if err != nil {
		b.log.Warn("list binaries images", zap.Error(err))
		return nil
	}
	var removed []Removed
	for _, im := range imgs {
		if slices.Contains(im.RepoTags, current) {
			// the same binaries as an earlier build's (BuildKit's cache
			// answered): that build's tags go, the image stays for this one
			for _, t := range im.RepoTags {
				if t != current {
					if _, err := b.e.api.ImageRemove(ctx, t, image.RemoveOptions{}); err == nil {
						removed = append(removed, Removed{Name: t})
					}
				}
			}
			continue
		}
		if _, err := b.e.api.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true}); err == nil {
			removed = append(removed, Removed{Name: "binaries@" + shortImageID(im.ID)})
		}
	}
	return removed
}

// keepImages is Settings.KeepImages with its default.
func (b *WorkspaceBuilder) keepImages() int {
	if b.cfg.KeepImages == 0 {
		return DefaultKeepImages
	}
	return max(b.cfg.KeepImages, 0)
}
