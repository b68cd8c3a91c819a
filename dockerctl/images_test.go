package dockerctl

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParseSums(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("0", 63)+"f"
	got, err := parseSums(strings.NewReader(a + "  api\n" + b + " *worker\n"))
	if err != nil || got["api"] != a || got["worker"] != b || len(got) != 2 {
		t.Fatalf("parseSums: %v %v", got, err)
	}
	for _, bad := range []string{"xyz  api\n", strings.Repeat("g", 64) + "  api\n", a + "api\n"} {
		if _, err := parseSums(strings.NewReader(bad)); err == nil {
			t.Errorf("parseSums(%q): no error", bad)
		}
	}
}

// The content key moves with what an image ships and how it starts, never
// with the commit or the build time; the reason names what moved.
func TestContentKey(t *testing.T) {
	spec := ImageSpec{Name: "shop-api", Tag: "dev", Service: "shop-api", Bins: []string{"api", "cli"}, Entrypoint: "api", RuntimeImage: "debian"}
	sums := map[string]string{"api": "1", "cli": "2", "worker": "3"}
	labels := map[string]string{"chefd": "1", "chefd.mode": "exact", "chefd.commit": "abc", labelBuiltAt: "t1"}
	base, binSums, err := contentKey(spec, sums, "sha256:r", labels)
	if err != nil || binSums != "api=1,cli=2" {
		t.Fatalf("contentKey: %q %v", binSums, err)
	}
	same := func(f func(ImageSpec, map[string]string, string, map[string]string) (ImageSpec, map[string]string, string, map[string]string)) string {
		s2, sums2, rt2, l2 := f(spec, clone(sums), "sha256:r", clone(labels))
		k, _, err := contentKey(s2, sums2, rt2, l2)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	for _, tc := range []struct {
		name    string
		f       func(ImageSpec, map[string]string, string, map[string]string) (ImageSpec, map[string]string, string, map[string]string)
		changes bool
	}{
		{"another commit and time", func(s ImageSpec, m map[string]string, r string, l map[string]string) (ImageSpec, map[string]string, string, map[string]string) {
			l["chefd.commit"], l[labelBuiltAt], l["org.opencontainers.image.revision"] = "def", "t2", "def"
			return s, m, r, l
		}, false},
		{"a binary it does not ship", func(s ImageSpec, m map[string]string, r string, l map[string]string) (ImageSpec, map[string]string, string, map[string]string) {
			m["worker"] = "4"
			return s, m, r, l
		}, false},
		{"a binary it ships", func(s ImageSpec, m map[string]string, r string, l map[string]string) (ImageSpec, map[string]string, string, map[string]string) {
			m["cli"] = "5"
			return s, m, r, l
		}, true},
		{"runtime", func(s ImageSpec, m map[string]string, r string, l map[string]string) (ImageSpec, map[string]string, string, map[string]string) {
			return s, m, "sha256:r2", l
		}, true},
		{"entrypoint", func(s ImageSpec, m map[string]string, r string, l map[string]string) (ImageSpec, map[string]string, string, map[string]string) {
			s.Entrypoint = "cli"
			return s, m, r, l
		}, true},
		{"mode", func(s ImageSpec, m map[string]string, r string, l map[string]string) (ImageSpec, map[string]string, string, map[string]string) {
			l["chefd.mode"] = "loop"
			return s, m, r, l
		}, true},
	} {
		if got := same(tc.f) != base; got != tc.changes {
			t.Errorf("%s: key changed %v, want %v", tc.name, got, tc.changes)
		}
	}
	if _, _, err := contentKey(spec, map[string]string{"api": "1"}, "r", labels); err == nil || !strings.Contains(err.Error(), "cli") {
		t.Errorf("a missing binary: %v", err)
	}
	for _, tc := range []struct {
		old  map[string]string
		sums string
		rt   string
		want string
	}{
		{nil, "api=1", "r", "new image"},
		{map[string]string{}, "api=1", "r", "not built by chefd"},
		{map[string]string{labelContent: "k", labelBinSums: "api=1,cli=2", labelRuntime: "r"}, "api=1,cli=3", "r", "cli changed"},
		{map[string]string{labelContent: "k", labelBinSums: "api=1,cli=2", labelRuntime: "r"}, "api=1,cli=2", "r2", "runtime image changed"},
		{map[string]string{labelContent: "k", labelBinSums: "api=1,cli=2", labelRuntime: "r", "chefd.mode": "loop"}, "api=1,cli=2", "r", "label chefd.mode changed"},
		{map[string]string{labelContent: "k", labelBinSums: "api=1,cli=2", labelRuntime: "r", "chefd.mode": "exact"}, "api=1,cli=2", "r", "entrypoint changed"},
	} {
		if got := changeReason(tc.old, map[string]string{"chefd.mode": "exact", labelRuntime: tc.rt, "chefd.commit": "x"}, tc.sums, tc.rt); !strings.Contains(got, tc.want) {
			t.Errorf("changeReason(%v, %s, %s) = %q, want ~%q", tc.old, tc.sums, tc.rt, got, tc.want)
		}
	}
}

func clone(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestServiceDockerfile(t *testing.T) {
	got := serviceDockerfile("debian:bookworm-slim", []string{"api", "cli"}, "api")
	want := "ARG BINS\nFROM ${BINS} AS bins\nFROM debian:bookworm-slim\nCOPY --from=bins /api /usr/local/bin/api\n" +
		"COPY --from=bins /cli /usr/local/bin/cli\nENTRYPOINT [\"/usr/local/bin/api\"]\n"
	if got != want {
		t.Errorf("serviceDockerfile:\n%s\nwant\n%s", got, want)
	}
}

// A build leaves keep superseded images per image, the newest; never one a
// container uses, one with a tag, or another workspace's; and removes the
// binaries images of earlier builds but its own.
func TestPruneSuperseded(t *testing.T) {
	f := &fakeEngine{inUse: map[string]bool{}}
	b := fakeBuilder(t, f)
	add := func(id, kind, ws, name string, at int64, tags ...string) {
		f.images = append(f.images, image.Summary{ID: id, Created: at, RepoTags: tags,
			Labels: map[string]string{"chefd.kind": kind, "chefd.workspace": ws, labelImage: name}})
	}
	for i := int64(1); i <= 5; i++ {
		add(fmt.Sprintf("api-%d", i), "image", b.root, "shop-api", i)
	}
	add("api-6", "image", b.root, "shop-api", 6, "shop-api:dev")  // the current one
	add("api-0", "image", b.root, "shop-api", 0, "mine:rollback") // tagged by the user
	f.inUse["api-1"] = true                                       // a stopped container's
	add("worker-1", "image", b.root, "shop-worker", 1)
	add("other-1", "image", "/elsewhere", "shop-api", 1)
	add("other-2", "image", "/elsewhere", "shop-api", 2)
	add("other-3", "image", "/elsewhere", "shop-api", 3)
	add("bins-old", "bins", b.root, "", 1, "app-bins:aaaa")
	// a killed build's binaries, identical to this build's: its tag goes
	add("bins-now", "bins", b.root, "", 2, "app-bins:kill", "app-bins:bbbb")
	add("bins-other", "bins", "/elsewhere", "", 2, "app-bins:cccc")
	removed := b.pruneSuperseded(context.Background(), 2, "app-bins:bbbb")
	var names []string
	for _, r := range removed {
		names = append(names, r.Name)
	}
	slices.Sort(f.removed)
	if want := []string{"api-2", "api-3", "app-bins:kill", "bins-old"}; !slices.Equal(f.removed, want) {
		t.Errorf("removed %v (%v), want %v", f.removed, names, want)
	}
	// without a build's lock (chefd gc): superseded images only, never a
	// binaries image (a build of another process may be using it)
	f.removed = nil
	add("worker-2", "image", b.root, "shop-worker", 2)
	add("worker-3", "image", b.root, "shop-worker", 3)
	b.pruneSuperseded(context.Background(), 2, "")
	if want := []string{"worker-1"}; !slices.Equal(f.removed, want) {
		t.Errorf("without a current build: removed %v, want %v", f.removed, want)
	}
}

// The sums come from the code step's log only when that step ran; a
// cached step (no log) leaves them to the image.
func TestSumsFromLog(t *testing.T) {
	a, c := strings.Repeat("a", 64), strings.Repeat("c", 64)
	mk := func(cached bool, lines ...string) *stream {
		s := newStream(nil)
		now := time.Now()
		s.vertices["d"] = &vertex{name: "RUN " + codeMarker + " sh code.sh", cached: cached, started: now, completed: now}
		s.order = []string{"d"}
		for _, l := range lines {
			s.logLine("code", l)
		}
		return s
	}
	got := sumsFromLog(mk(false, "   Compiling app", sumLinePrefix+a+"  api", sumLinePrefix+c+"  worker"))
	if got["api"] != a || got["worker"] != c || !hasAll(got, []string{"api", "worker"}) || hasAll(got, []string{"api", "cli"}) {
		t.Errorf("sums from the log: %v", got)
	}
	if got := sumsFromLog(mk(true)); got != nil {
		t.Errorf("a cached step: %v", got)
	}
	if got := sumsFromLog(mk(false, sumLinePrefix+"garbage")); got != nil {
		t.Errorf("a garbled line: %v", got)
	}
	var seen []string
	s := newStream(func(ev Event) { seen = append(seen, ev.Text) })
	s.logLine("code", sumLinePrefix+a+"  api")
	if len(seen) != 0 {
		t.Errorf("a sum line reached the progress: %v", seen)
	}
}

// A loaded service image inherits its base as a Dockerfile's FROM does:
// config, labels merged, CMD reset by an entrypoint, the base's layers
// then the new one.
func TestServiceConfig(t *testing.T) {
	base := &image.InspectResponse{Architecture: "amd64", Os: "linux", Created: "2026-01-02T03:04:05Z",
		RootFS: image.RootFS{Layers: []string{"sha256:b1", "sha256:b2"}},
		Config: &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Env: []string{"PATH=/x"}, Cmd: []string{"bash"},
			WorkingDir: "/w", User: "app", Labels: map[string]string{"vendor": "debian", "chefd.mode": "old"}}}}
	spec := ImageSpec{Name: "shop-api", Tag: "dev", Bins: []string{"api", "cli"}, Entrypoint: "api"}
	c := serviceConfig(spec, base, base, map[string]string{"chefd.mode": "exact"}, "sha256:new")
	if !slices.Equal(c.RootFS.DiffIDs, []string{"sha256:b1", "sha256:b2", "sha256:new"}) || c.RootFS.Type != "layers" {
		t.Errorf("rootfs %+v", c.RootFS)
	}
	if c.Config.Cmd != nil || !slices.Equal(c.Config.Entrypoint, []string{"/usr/local/bin/api"}) || c.Config.WorkingDir != "/w" ||
		c.Config.User != "app" || !slices.Equal(c.Config.Env, []string{"PATH=/x"}) {
		t.Errorf("config %+v", c.Config)
	}
	if c.Config.Labels["vendor"] != "debian" || c.Config.Labels["chefd.mode"] != "exact" || base.Config.Labels["chefd.mode"] != "old" {
		t.Errorf("labels %v (base %v)", c.Config.Labels, base.Config.Labels)
	}
	if c.Architecture != "amd64" || c.OS != "linux" || c.Created.Year() != 2026 {
		t.Errorf("platform and time %+v", c)
	}
	// scratch: the binaries image's platform, no base layer, CMD none
	s := serviceConfig(ImageSpec{Bins: []string{"api"}}, nil, base, nil, "sha256:new")
	if !slices.Equal(s.RootFS.DiffIDs, []string{"sha256:new"}) || s.Config.Cmd != nil || s.Config.Entrypoint != nil || s.OS != "linux" || s.Created.Unix() != 0 {
		t.Errorf("on scratch %+v", s)
	}
}
