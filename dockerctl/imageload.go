package dockerctl

// A service image made without a build: its one new layer (the binaries
// at /usr/local/bin, as the Dockerfile's COPY puts them) and its config
// are written here and given to the engine as a `docker load` archive.
// The runtime base's layers are named by their diff IDs only: the engine
// holds them (they are the base image's), and `docker load` takes a layer
// it holds by its chain ID without reading it from the archive. One
// BuildKit build per service cost about a second each (30 services: 37 s
// after a shared library edit); a load costs a fraction of that.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerTime is the time of the new layer's entries (its bytes depend on
// the binaries alone).
func layerTime() time.Time { return time.Unix(0, 0).UTC() }

// binSource hands out the binaries of a binaries image, each checked
// against its sum: fetched once (one copy out of a container of the
// image: the engine mounts and locks the container for every copy) into
// files in dir.
type binSource struct {
	e     *Engine
	ref   string
	dir   string
	sums  map[string]string
	files map[string]string // binary -> file
	sizes map[string]int64
}

func (e *Engine) openBins(ctx context.Context, ref, stateDir string, sums map[string]string) (*binSource, error) {
	dir, err := os.MkdirTemp(stateDir, "bins-")
	if err != nil {
		return nil, err
	}
	return &binSource{e: e, ref: ref, dir: dir, sums: sums, files: map[string]string{}, sizes: map[string]int64{}}, nil
}

func (s *binSource) close() { os.RemoveAll(s.dir) }

// fetch copies bins out of the image (at its root) into files.
func (s *binSource) fetch(ctx context.Context, bins []string) error {
	id, remove, err := s.e.binsContainer(ctx, s.ref)
	if err != nil {
		return err
	}
	defer remove()
	rc, _, err := s.e.api.CopyFromContainer(ctx, id, "/")
	if err != nil {
		return fmt.Errorf("read the binaries of %s: %w", s.ref, err)
	}
	defer rc.Close()
	want := map[string]bool{}
	for _, b := range bins {
		want[b] = true
	}
	tr := tar.NewReader(rc)
	for len(s.files) < len(want) {
		h, err := tr.Next()
		if err != nil {
			return fmt.Errorf("read the binaries of %s: %w", s.ref, err)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")
		if i := strings.IndexByte(name, '/'); i >= 0 {
			name = name[i+1:] // the archive's top directory
		}
		if !want[name] || h.Typeflag != tar.TypeReg || s.files[name] != "" {
			continue
		}
		if err := s.save(name, tr); err != nil {
			return err
		}
		s.sizes[name] = h.Size
	}
	return nil
}

func (s *binSource) save(bin string, r io.Reader) error {
	p := filepath.Join(s.dir, bin)
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, sum), r); err != nil {
		return fmt.Errorf("read binary %s: %w", bin, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != s.sums[bin] {
		return fmt.Errorf("binary %s: its bytes have sum %s, the build said %s", bin, got, s.sums[bin])
	}
	s.files[bin] = p
	return f.Close()
}

// layer writes the layer tar of bins to w: usr/, usr/local/,
// usr/local/bin/ and each binary, root-owned, at layerTime.
func (s *binSource) layer(w io.Writer, bins []string) error {
	tw := tar.NewWriter(w)
	for _, d := range []string{"usr/", "usr/local/", "usr/local/bin/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: layerTime(), Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	for _, bin := range bins {
		if s.files[bin] == "" {
			return fmt.Errorf("binary %s is not in the binaries image", bin)
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/local/bin/" + bin, Mode: 0o755, Size: s.sizes[bin],
			ModTime: layerTime(), Format: tar.FormatPAX}); err != nil {
			return err
		}
		f, err := os.Open(s.files[bin])
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, io.LimitReader(f, s.sizes[bin]))
		f.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// loadedConfig is an image's config as `docker load` reads it.
type loadedConfig struct {
	Architecture string                          `json:"architecture"`
	OS           string                          `json:"os"`
	Variant      string                          `json:"variant,omitempty"`
	Created      time.Time                       `json:"created"`
	Config       dockerspec.DockerOCIImageConfig `json:"config"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []ocispec.History `json:"history,omitempty"`
}

// serviceConfig is the config of spec's image on base (nil: scratch, on
// the platform of plat): the base's config as a Dockerfile inherits it
// (its CMD reset when the image sets an entrypoint), the labels merged,
// the new layer last.
func serviceConfig(spec ImageSpec, base, plat *image.InspectResponse, labels map[string]string, diffID string) loadedConfig {
	var c loadedConfig
	from := plat
	if base != nil {
		from = base
		if base.Config != nil {
			c.Config = *base.Config
		}
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, base.RootFS.Layers...)
		if t, err := time.Parse(time.RFC3339Nano, base.Created); err == nil {
			c.Created = t
		}
	}
	if from != nil {
		c.Architecture, c.OS, c.Variant = from.Architecture, from.Os, from.Variant
	}
	if c.Created.IsZero() {
		c.Created = layerTime()
	}
	c.RootFS.Type = "layers"
	c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, diffID)
	all := map[string]string{}
	for k, v := range c.Config.Labels {
		all[k] = v
	}
	for k, v := range labels {
		all[k] = v
	}
	c.Config.Labels = all
	if spec.Entrypoint != "" {
		c.Config.Entrypoint = []string{"/usr/local/bin/" + spec.Entrypoint}
		c.Config.Cmd = nil
	}
	c.History = []ocispec.History{{Created: &c.Created, CreatedBy: "chefd: COPY " + strings.Join(spec.Bins, " ") + " /usr/local/bin/"}}
	return c
}

// loadItem is one image ready to load: its layer in a temp file and its
// config.
type loadItem struct {
	spec   ImageSpec
	layer  string // temp file
	size   int64
	config []byte
	base   int // base layers (named, not sent)
}

// id is the image ID the engine gives the item: its config's digest.
func (it *loadItem) id() string { return "sha256:" + hex.EncodeToString(sha256Of(it.config)) }

// prepareLoad writes spec's layer and config.
func (b *WorkspaceBuilder) prepareLoad(ctx context.Context, src *binSource, spec ImageSpec, base, plat *image.InspectResponse,
	labels map[string]string) (*loadItem, error) {
	f, err := os.CreateTemp(b.stateDir, "layer-*.tar")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	it := &loadItem{spec: spec, layer: f.Name()}
	sum := sha256.New()
	if err := src.layer(io.MultiWriter(f, sum), spec.Bins); err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	if it.size, err = f.Seek(0, io.SeekCurrent); err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	if base != nil {
		it.base = len(base.RootFS.Layers)
	}
	it.config, err = json.Marshal(serviceConfig(spec, base, plat, labels, "sha256:"+hex.EncodeToString(sum.Sum(nil))))
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return it, nil
}

// loadAll gives the engine every item in one `docker load` archive and
// checks that each tag then names its image.
func (b *WorkspaceBuilder) loadAll(ctx context.Context, items []*loadItem) error {
	var manifest []map[string]any
	for i, it := range items {
		var layers []string
		for j := 0; j < it.base; j++ {
			layers = append(layers, fmt.Sprintf("base-%d/layer.tar", j)) // held by the engine: never read
		}
		layers = append(layers, fmt.Sprintf("%d/layer.tar", i))
		manifest = append(manifest, map[string]any{"Config": fmt.Sprintf("%d.json", i), "RepoTags": []string{it.spec.Ref()}, "Layers": layers})
	}
	mdata, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		add := func(name string, size int64, r io.Reader) error {
			if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: layerTime()}); err != nil {
				return err
			}
			_, err := io.Copy(tw, r)
			return err
		}
		err := func() error {
			for i, it := range items {
				if err := add(fmt.Sprintf("%d.json", i), int64(len(it.config)), bytes.NewReader(it.config)); err != nil {
					return err
				}
				f, err := os.Open(it.layer)
				if err != nil {
					return err
				}
				err = add(fmt.Sprintf("%d/layer.tar", i), it.size, io.LimitReader(f, it.size))
				f.Close()
				if err != nil {
					return err
				}
			}
			if err := add("manifest.json", int64(len(mdata)), bytes.NewReader(mdata)); err != nil {
				return err
			}
			return tw.Close()
		}()
		pw.CloseWithError(err)
	}()
	resp, err := b.e.api.ImageLoad(ctx, pr, client.ImageLoadWithQuiet(true))
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("load images: %w", err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(io.LimitReader(resp.Body, 1<<20))
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			break
		}
		if m.Error != nil {
			return fmt.Errorf("load images: %s", m.Error.Message)
		}
	}
	for _, it := range items {
		id, err := b.e.imageID(ctx, it.spec.Ref())
		if err != nil {
			return err
		}
		if id != it.id() {
			return fmt.Errorf("load images: the engine tags %s as %s, not the image loaded (%s)", it.spec.Ref(), id, it.id())
		}
	}
	return nil
}

func sha256Of(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
