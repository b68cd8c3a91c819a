package dockerctl

// Cooked images as layers. A delta cook (deltacook.go) compiles only what
// changed, but a cooked image that is a whole copy of its artifacts costs
// the same to make whatever changed: on a 115-package workspace the 238 MB
// were copied out of the cook cache, snapshotted, copied into the image
// and exported on every cook (2-3 s of a 3.6 s cook after a one-crate
// bump, where cargo took 0.5 s).
//
// So a cook of a key that already has a cooked image on the engine (the
// *base*: the newest image with the same cook key, labelCookKey) makes its
// image a layer on the base instead: the cook step compares what the image
// must hold (every entry of this cook's third-party units, with type, size
// and modification time) with the base's target directory, mounted
// read-only, and writes only the units that differ; the image is then
//
//	FROM <base>
//	RUN <layer tool> <target> <the base's entries this recipe lacks>
//	COPY <the units that differ> <target>
//
// The base carries no shell (a cooked image is the artifacts alone), so
// the entries are removed by a small static program compiled once per
// builder image by the builder's own rustc (layerToolSource, a stage of
// its own that BuildKit's cache keeps); BuildKit turns the removals into
// whiteouts. What the image holds is exactly what a whole copy would hold:
// a unit's files are named by its hash, an entry is kept from the base only
// when its type, mode, size and modification time (to the nanosecond, as
// cargo's fingerprints see it) are those in the cook cache, and anything else of
// the base is removed.
//
// Layers cost the bytes they hide: an entry removed or replaced stays in
// the base's layers. The image is made whole again (the chefd-flat stage:
// one COPY of the layered image's target directory onto scratch, on the
// same cached stages) when it grows past maxDeadPercent of what it holds,
// and a base of maxBaseLayers layers or more is not used (the cook copies
// the whole set), so a cooked image stays within a few percent of a
// from-scratch cook's size, however many cooks came before it.
//
// A base of the recipe itself (another checkout's cooked image, another
// image name, same cook key) is the whole answer: the cooked image is its
// layers under this cook's labels, nothing cooked (cookSame).
//
// A base that cannot be used (removed between the choice and the build,
// a builder whose rustc cannot link a static program) costs one more
// build: any failure of a layered cook that is not its cook step's own
// runs the cook again as a whole copy.

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/chefd/chefd/recipe"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"go.uber.org/zap"
)

const (
	// cookedDir is the cook step's output: cookedOut (the entries to add
	// to the image) and cookedDelete (the base's entries to remove).
	cookedDir    = "/chefd-cooked"
	cookedDelete = cookedDir + "/delete"
	// prevMount is where the cook step sees the base image.
	prevMount = "/chefd-prev"
	// layerToolDir is the layer tool's sources in the context and its
	// stage's output directory; layerMount holds the layer step's mounts.
	layerToolDir = "chefd-tool"
	layerMount   = "/.chefd"
	// stages of a layered cook: the layer on the base, and its flat copy.
	stageLayer = "chefd-layer"
	stageFlat  = "chefd-flat"
	// maxBaseLayers: a base with this many layers is not used.
	maxBaseLayers = 10
	// maxDeadPercent: a layered image whose size exceeds what it holds by
	// more than this is made whole (the flat stage).
	maxDeadPercent = 3
	// layerToolFailed is the tool stage's line when rustc could not build
	// the tool.
	layerToolFailed = "chefd: could not build the layer tool"
	// cookedStatsPrefix starts the cook step's line on the image it makes.
	cookedStatsPrefix = "chefd: cooked image: "
)

// layerToolSource is the layer tool (std only, old editions too): it
// removes the entries listed in LIST (relative paths, one a line) from
// TARGET, a file or a whole directory each; one already gone is skipped.
const layerToolSource = `// chefd's layer tool (generated): removes from TARGET the entries LIST
// names, one relative path a line. Usage: sync TARGET LIST [marker]
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::{Component, Path};
use std::process::exit;

fn fail(msg: String) -> ! {
    eprintln!("chefd layer tool: {}", msg);
    exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: sync TARGET LIST");
        exit(2);
    }
    let target = Path::new(&args[1]);
    // a target the layer step cannot see (another mount over it) is an
    // error, never a layer with nothing removed
    match fs::symlink_metadata(target) {
        Ok(ref m) if m.is_dir() => {}
        _ => fail(format!("{} is not a directory", target.display())),
    }
    let list = match fs::File::open(&args[2]) {
        Ok(f) => f,
        Err(e) => fail(format!("{}: {}", args[2], e)),
    };
    let mut removed = 0;
    for line in BufReader::new(list).lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => fail(format!("{}: {}", args[2], e)),
        };
        if line.is_empty() {
            continue;
        }
        let rel = Path::new(&line);
        if rel.components().any(|c| match c {
            Component::Normal(_) => false,
            _ => true,
        }) {
            fail(format!("not a relative path: {:?}", line));
        }
        let p = target.join(rel);
        let r = match fs::symlink_metadata(&p) {
            Ok(ref m) if m.is_dir() => fs::remove_dir_all(&p),
            Ok(_) => fs::remove_file(&p),
            Err(ref e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            fail(format!("remove {}: {}", p.display(), e));
        }
        removed += 1;
    }
    println!("chefd: {} entries of the base image removed", removed);
}
`

// layerToolBuild is the tool stage's script: a static executable (the
// layer step runs on the base image, which has no loader), or the
// layerToolFailed line.
func layerToolBuild() string {
	return fmt.Sprintf(`# chefd layer tool build (generated)
mkdir -p /%[1]s
if rustc --edition 2018 -C opt-level=1 -C debuginfo=0 -C target-feature=+crt-static \
    -o /%[1]s/sync %[2]s/sync.rs 2>/tmp/chefd-tool.err; then
  exit 0
fi
cat /tmp/chefd-tool.err
echo %[3]s
exit 1
`, layerToolDir, layerToolRun, shQuote(layerToolFailed))
}

// layerToolRun is where the tool stage sees its sources.
const layerToolRun = "/run/" + layerToolDir

// layerBase is the image a cooked image is a layer on.
type layerBase struct {
	Ref    string // a tag of it (FROM takes no ID)
	Recipe string // its recipe hash
	Size   int64  // its size (all its layers)
	Layers int
}

// sameRecipe reports whether the base is a cooked image of the recipe
// itself (another checkout's, another image name's): the cooked image is
// then the base's layers under this cook's labels (what BuildKit's layer
// cache gave an identical cook step before images were layers).
func (l *layerBase) sameRecipe(r *recipe.Recipe) bool { return l != nil && l.Recipe == r.Hash }

// pickLayerBase is the cooked image of cook key key on the engine that a
// cook of recipe r is a layer on: one of r itself if there is one, else
// the newest; with a tag, and fewer than maxBaseLayers layers. nil when
// there is none (the cook copies the whole set: a first cook, or a base
// grown deep, which the new whole copy replaces).
func (b *WorkspaceBuilder) pickLayerBase(ctx context.Context, r *recipe.Recipe, key string) *layerBase {
	imgs, err := b.e.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", "chefd.kind=cooked"),
		filters.Arg("label", labelCookKey+"="+key),
	)})
	if err != nil {
		b.log.Warn("could not list the cooked images of the cook key", zap.String("key", key), zap.Error(err))
		return nil
	}
	sort.SliceStable(imgs, func(i, j int) bool {
		if si, sj := imgs[i].Labels["chefd.recipe"] == r.Hash, imgs[j].Labels["chefd.recipe"] == r.Hash; si != sj {
			return si
		}
		return cookedAt(imgs[i]).After(cookedAt(imgs[j]))
	})
	for _, im := range imgs {
		ref := ""
		for _, t := range im.RepoTags {
			if t != "<none>:<none>" {
				ref = t
				break
			}
		}
		if ref == "" {
			continue
		}
		ins, err := b.e.inspectImage(ctx, im.ID)
		if ins == nil || err != nil {
			return nil
		}
		if len(ins.RootFS.Layers) >= maxBaseLayers && im.Labels["chefd.recipe"] != r.Hash {
			b.log.Debug("the newest cooked image of the key has many layers: cooking a whole copy",
				zap.String("image", ref), zap.Int("layers", len(ins.RootFS.Layers)))
			return nil
		}
		return &layerBase{Ref: ref, Recipe: im.Labels["chefd.recipe"], Size: ins.Size, Layers: len(ins.RootFS.Layers)}
	}
	return nil
}

// sameRecipeDockerfile is the cooked image of a recipe from a base of the
// same recipe and cook key: its layers, this cook's labels.
func sameRecipeDockerfile() string { return "ARG PREV\nFROM ${PREV}\n" }

// layerStages are the layered cook's last stages: the layer on the base
// (stageLayer) and its flat copy (stageFlat).
func layerStages(r *recipe.Recipe) string {
	wd := workdir(r)
	noLock := r.LockFile == nil
	var b strings.Builder
	fmt.Fprintf(&b, "FROM chefd-prev AS %s\n", stageLayer)
	fmt.Fprintf(&b, "RUN --mount=type=bind,from=chefd-tool,source=/%s,target=%s/tool \\\n"+
		"    --mount=type=bind,from=cook,source=%s,target=%s/cooked \\\n"+
		"    [%q, %q, %q, %q]\n",
		layerToolDir, layerMount, cookedDir, layerMount,
		layerMount+"/tool/sync", wd+"/target", layerMount+"/cooked/"+path.Base(cookedDelete), layerMarker)
	fmt.Fprintf(&b, "COPY --from=cook %s/ %s/target/\n", cookedOut, wd)
	if noLock {
		fmt.Fprintf(&b, "COPY --from=cook %s/Cargo.lock %s/Cargo.lock\n", wd, wd)
	}
	fmt.Fprintf(&b, "FROM scratch AS %s\n", stageFlat)
	if noLock {
		fmt.Fprintf(&b, "COPY --from=%s %s/Cargo.lock %s/Cargo.lock\n", stageLayer, wd, wd)
	}
	fmt.Fprintf(&b, "COPY --from=%s %s/target/ %s/target/\n", stageLayer, wd, wd)
	return b.String()
}

// cookedStatsRe matches the cook step's line on the image it makes.
var cookedStatsRe = regexp.MustCompile(`^` + regexp.QuoteMeta(cookedStatsPrefix) + `(\d+) third-party units, (\d+) bytes`)

// cookedBytes is what the cooked image holds, in bytes, as the cook
// step's output says (false: it does not say).
func cookedBytes(lines []string) (int64, bool) {
	for _, l := range lines {
		if m := cookedStatsRe.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			n, err := strconv.ParseInt(m[2], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// bloated reports whether an image of size bytes that holds live bytes
// hides more than maxDeadPercent of that in its layers (the image's size
// is the sum of its layers' files, as live is of what it holds).
func bloated(size, live int64) bool {
	return size*100 > live*(100+maxDeadPercent)
}

// noLayer reports whether builder image builderID could not build the
// layer tool in this process.
func (b *WorkspaceBuilder) noLayer(builderID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.noLayers[builderID]
}

func (b *WorkspaceBuilder) setNoLayer(builderID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.noLayers == nil {
		b.noLayers = map[string]bool{}
	}
	b.noLayers[builderID] = true
}

// layerFailed reports whether a layered cook failed elsewhere than in its
// cook step's script (whose failure is cargo's, or asks for a seed or the
// vendored crates): the base, the layer tool or the layer step.
func layerFailed(s *stream) bool {
	if s == nil {
		return true
	}
	v := s.step(cookMarker)
	return v == nil || exitCode(v.err) == ""
}

// flattenIfBloated makes the layered cooked image s made a whole copy
// (the flat stage, on the same cached stages) when its layers hide too
// much (bloated); it returns the flat build, nil when none was needed or
// it failed (a warning: the layered image stays, correct if large).
func (b *WorkspaceBuilder) flattenIfBloated(ctx context.Context, r *recipe.Recipe, key, builderID, tag string, dirs []*vendorDir, seed *cookSeed, base *layerBase, s *stream, p Progress) *stream {
	live, ok := cookedBytes(s.lines)
	if !ok {
		return nil
	}
	ins, err := b.e.inspectImage(ctx, tag)
	if ins == nil || err != nil || !bloated(ins.Size, live) {
		return nil
	}
	b.log.Info("the layered cooked image hides too much of its base: making it whole",
		zap.String("tag", tag), zap.Int64("size", ins.Size), zap.Int64("holds", live))
	flat, err := b.cookOnce(ctx, r, key, builderID, tag, dirs, seed, base, stageFlat, p)
	if err != nil {
		b.warn(p, fmt.Sprintf("could not make the cooked image %s a whole copy (%v); it stays a layer on %s", tag, err, base.Ref))
		return nil
	}
	if flat.imageID != ins.ID {
		if _, err := b.e.api.ImageRemove(context.WithoutCancel(ctx), ins.ID, image.RemoveOptions{}); err != nil {
			b.log.Debug("could not remove the layered cooked image", zap.String("id", ins.ID), zap.Error(err))
		}
	}
	return flat
}

// cookSame makes r's cooked image tag from base, a cooked image of r and
// cook key key (sameRecipe): the same layers, this cook's labels.
func (b *WorkspaceBuilder) cookSame(ctx context.Context, r *recipe.Recipe, key, builderID, tag string, base *layerBase, p Progress) (*stream, error) {
	write := func(cw *contextWriter) error {
		return cw.add("", ctxFile{rel: "chefd/Dockerfile", data: []byte(sameRecipeDockerfile()), mode: 0o644})
	}
	s, err := b.e.build(ctx, write, build.ImageBuildOptions{
		Dockerfile: "chefd/Dockerfile",
		Tags:       []string{tag},
		Labels:     b.cookedLabels(r, key, builderID),
		BuildArgs:  map[string]*string{"PREV": &base.Ref},
	}, p)
	if err == nil && (s == nil || s.imageID == "") {
		err = fmt.Errorf("the build of %s from %s gave no image", tag, base.Ref)
	}
	return s, err
}
