package dockerctl

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/chefd/chefd/recipe"
)

// TestCookFromRegistry: with a cooked repository, a cook whose image the
// engine lacks takes it from the registry when the registry holds this
// recipe's cooked image with this cook key, and otherwise (absent, down,
// slow, refusing, a foreign image under the tag, a failed pull, no
// credentials) cooks here: with one warning for a fault, none for an
// absent tag, never a failed cook because of the registry.
func TestCookFromRegistry(t *testing.T) {
	r := &recipe.Recipe{Hash: hashOf('r'), WorkspaceDir: ".", Intent: recipe.Intent{Profile: "release"}}
	const builderID = "sha256:builder"
	key := cookKey(r, builderID)
	good := func() image.Summary {
		return image.Summary{ID: "sha256:shared", Labels: map[string]string{
			"chefd": "1", "chefd.kind": "cooked", "chefd.recipe": r.Hash, labelCookKey: key, labelBuilder: builderID}}
	}
	with := func(change func(map[string]string)) image.Summary {
		im := good()
		change(im.Labels)
		return im
	}
	const repo = "127.0.0.1:5000/team/shop-cooked"
	ref := RemoteCookedRef(repo, r)
	for _, tt := range []struct {
		name     string
		setup    func(f *fakeEngine)
		creds    Credentials
		pulled   bool
		warning  string // "" none
		removed  bool   // the pulled image was removed again
		timeout  time.Duration
		noPulled bool
	}{
		{name: "shared", setup: func(f *fakeEngine) { f.registry = map[string]image.Summary{ref: good()} }, pulled: true},
		{name: "absent", setup: func(f *fakeEngine) {}},
		{name: "down", setup: func(f *fakeEngine) { f.regErr = errors.New("dial tcp 127.0.0.1:5000: connect: connection refused") },
			warning: "check " + ref + ": dial tcp"},
		{name: "slow", setup: func(f *fakeEngine) { f.regBlocks = make(chan struct{}) }, timeout: 20 * time.Millisecond,
			warning: "no answer in 20ms"},
		{name: "refused", setup: func(f *fakeEngine) { f.regErr = errors.New("unauthorized: authentication required") },
			warning: "unauthorized"},
		{name: "another recipe", setup: func(f *fakeEngine) {
			f.registry = map[string]image.Summary{ref: with(func(l map[string]string) { l["chefd.recipe"] = hashOf('x') })}
		}, warning: "label chefd.recipe", removed: true},
		{name: "another builder", setup: func(f *fakeEngine) {
			f.registry = map[string]image.Summary{ref: with(func(l map[string]string) { l[labelCookKey] = "0123456789abcdef" })}
		}, warning: "(this builder image, build intent", removed: true},
		{name: "not chefd's", setup: func(f *fakeEngine) {
			f.registry = map[string]image.Summary{ref: {ID: "sha256:alpine", Labels: nil}}
		}, warning: "it has no label chefd", removed: true},
		{name: "pull fails", setup: func(f *fakeEngine) {
			f.registry = map[string]image.Summary{ref: good()}
			f.pullErr = "unexpected EOF"
		}, warning: "pull " + ref + ": unexpected EOF"},
		{name: "no credentials", setup: func(f *fakeEngine) {}, creds: func(string) (string, error) {
			return "", errors.New("error getting credentials - err: exec: \"docker-credential-pass\": executable file not found")
		}, warning: "registry credentials for 127.0.0.1:5000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeEngine{images: []image.Summary{{ID: builderID, RepoTags: []string{"builder:1"}}}}
			tt.setup(f)
			b := fakeBuilder(t, f)
			b.cfg.BuilderImage = "builder:1"
			b.cfg.CookedRepo = repo
			b.cfg.RegistryTimeout = tt.timeout
			var seen []string
			b.creds = func(host string) (string, error) {
				seen = append(seen, host)
				if tt.creds != nil {
					return tt.creds(host)
				}
				return "c2VjcmV0", nil
			}
			var events []Event
			res, err := b.Cook(context.Background(), r, func(ev Event) { events = append(events, ev) })
			if tt.pulled {
				if err != nil || res.Pulled != ref || res.ImageID != "sha256:shared" {
					t.Fatalf("want the shared image: %+v, %v", res, err)
				}
				if id, _ := b.e.imageID(context.Background(), b.CookedTag(r)); id != "sha256:shared" {
					t.Errorf("the cooked tag names %q, want the pulled image", id)
				}
				if !slices.Contains(f.gotAuth, "c2VjcmV0") || !slices.Equal(seen, []string{"127.0.0.1:5000"}) {
					t.Errorf("credentials asked for %q, sent %q", seen, f.gotAuth)
				}
			} else {
				// the fake engine does not build: the error is the local cook's
				if err == nil || !strings.Contains(err.Error(), "does not build") {
					t.Fatalf("want a local cook, got %+v, %v", res, err)
				}
			}
			var warned []string
			for _, ev := range events {
				if ev.Kind == EventWarning {
					warned = append(warned, ev.Text)
				}
			}
			switch {
			case tt.warning == "" && (len(warned) > 0 || len(res.Warnings) > 0):
				t.Errorf("warned: %q", warned)
			case tt.warning != "" && (len(warned) != 1 || !strings.Contains(warned[0], tt.warning) || !slices.Equal(warned, res.Warnings)):
				t.Errorf("want one warning with %q, got events %q, result %q", tt.warning, warned, res.Warnings)
			}
			for _, w := range warned {
				if strings.Contains(w, "c2VjcmV0") {
					t.Errorf("a warning shows the credentials: %q", w)
				}
			}
			if tt.removed != slices.Contains(f.removed, ref) {
				t.Errorf("pulled image removed: %v, want %v (%q)", !tt.removed, tt.removed, f.removed)
			}
		})
	}
}

// TestPushCooked: a push tags the cooked image <repo>:<hash16> and pushes
// it, and the seed tag of its cook key; a failed push is an error of PushCooked, a warning of a cook.
func TestPushCooked(t *testing.T) {
	r := &recipe.Recipe{Hash: hashOf('p')}
	f := &fakeEngine{}
	b := fakeBuilder(t, f)
	b.creds = func(string) (string, error) { return "e30=", nil }
	if _, err := b.PushCooked(context.Background(), r, nil); err == nil || !strings.Contains(err.Error(), "cooked-repo") {
		t.Fatalf("a push without a repository: %v", err)
	}
	b.cfg.CookedRepo = "registry.example.com/team/x-cooked"
	f.images = []image.Summary{{ID: "sha256:c", RepoTags: []string{b.CookedTag(r)}}}
	ref, err := b.PushCooked(context.Background(), r, nil)
	if err != nil || ref != "registry.example.com/team/x-cooked:"+r.ShortHash() || !slices.Equal(f.pushes, []string{ref}) {
		t.Fatalf("push: %q %v (pushed %q)", ref, err, f.pushes)
	}
	// a cooked image with its cook key also moves the key's seed tag,
	// which stays the registry's only
	f.images = []image.Summary{{ID: "sha256:c", RepoTags: []string{b.CookedTag(r)},
		Labels: map[string]string{labelCookKey: "0123456789abcdef"}}}
	f.pushes = nil
	seedRef := RemoteSeedRef(b.cfg.CookedRepo, "0123456789abcdef")
	if _, err := b.PushCooked(context.Background(), r, nil); err != nil || !slices.Equal(f.pushes, []string{ref, seedRef}) {
		t.Fatalf("push with a cook key: %v (pushed %q, want %q)", err, f.pushes, []string{ref, seedRef})
	}
	if id, _ := b.e.imageID(context.Background(), seedRef); id != "" {
		t.Errorf("the seed tag stays on the engine")
	}
	f.pushErr = "denied: requested access to the resource is denied"
	if _, err := b.PushCooked(context.Background(), r, nil); err == nil || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("a refused push: %v", err)
	}
}

// TestGCPulledCooked: cooked images pulled from the cooked repository
// (another machine's workspace label) are this workspace's for GC; a
// cooked image of another checkout that never came from the repository
// is not.
func TestGCPulledCooked(t *testing.T) {
	f := &fakeEngine{}
	b := fakeBuilder(t, f)
	b.cfg.CookedRepo = "registry.example.com/team/app-cooked"
	elsewhere, other := "/home/ci/checkout", t.TempDir()
	a, c, d := hashOf('a'), hashOf('c'), hashOf('d')
	f.cooked(b.root, "app", a, 300) // current
	f.cooked(elsewhere, "app", c, 100)
	f.images[1].RepoTags = append(f.images[1].RepoTags, b.cfg.CookedRepo+":"+c[:16]) // pulled
	f.cooked(elsewhere, "app", d, 200)
	f.images[2].RepoTags = append(f.images[2].RepoTags, b.cfg.CookedRepo+":"+d[:16]) // pulled, newer
	f.cooked(other, "app", hashOf('f'), 50)                                          // another checkout's
	b.KeepCurrent(&recipe.Recipe{Hash: a})
	removed, err := b.GC(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	var recipes []string
	for _, r := range removed {
		if r.Recipe != "" {
			recipes = append(recipes, r.Recipe)
		}
	}
	if !slices.Equal(recipes, []string{c}) {
		t.Fatalf("removed recipes %q, want the oldest pulled one only", recipes)
	}
}

// TestCookedStaleBuilder: a cooked image whose builder label is not the
// builder image's ID now (the tag moved) is not the cooked image: the
// build cooks again instead of mixing toolchains; one without the label
// (an older chefd's) still serves.
func TestCookedStaleBuilder(t *testing.T) {
	r := &recipe.Recipe{Hash: hashOf('s')}
	f := &fakeEngine{}
	b := fakeBuilder(t, f)
	b.cfg.BuilderImage = "builder:1"
	f.images = []image.Summary{
		{ID: "sha256:new", RepoTags: []string{"builder:1"}},
		{ID: "sha256:cooked", RepoTags: []string{b.CookedTag(r)}, Labels: map[string]string{labelBuilder: "sha256:old"}},
	}
	if has, err := b.HasCooked(context.Background(), r); err != nil || has {
		t.Fatalf("a cooked image of another builder serves: %v %v", has, err)
	}
	f.images[1].Labels = map[string]string{labelBuilder: "sha256:new"}
	if has, _ := b.HasCooked(context.Background(), r); !has {
		t.Fatal("the cooked image of this builder does not serve")
	}
	f.images[1].Labels = nil
	if has, _ := b.HasCooked(context.Background(), r); !has {
		t.Fatal("a cooked image without the builder label does not serve")
	}
}

// TestSeedFor: the seed of a cook is the repository's seed tag of its
// cook key, trusted only with the key's labels and a recipe, and removed
// after the cook.
func TestSeedFor(t *testing.T) {
	const key, repo = "0123456789abcdef", "127.0.0.1:5000/team/shop-cooked"
	cooked := func(recipeHash, k string) image.Summary {
		return image.Summary{ID: "sha256:reg", Labels: map[string]string{
			"chefd": "1", "chefd.kind": "cooked", "chefd.recipe": recipeHash, labelCookKey: k}}
	}
	seedRef := RemoteSeedRef(repo, key)
	for _, tt := range []struct {
		name     string
		registry map[string]image.Summary
		want     *cookSeed
		warning  string
	}{
		{name: "from the registry", registry: map[string]image.Summary{seedRef: cooked(hashOf('e'), key)},
			want: &cookSeed{Ref: seedRef, Hash: hashOf('e')[:16]}},
		{name: "registry holds none"},
		{name: "another key", registry: map[string]image.Summary{seedRef: cooked(hashOf('e'), "fedcba9876543210")},
			warning: "label chefd.cook-key"},
		{name: "no recipe", registry: map[string]image.Summary{seedRef: cooked("", key)},
			warning: "no label chefd.recipe"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeEngine{registry: tt.registry}
			b := fakeBuilder(t, f)
			b.cfg.CookedRepo = repo
			b.creds = func(string) (string, error) { return "", nil }
			var warned []string
			seed, drop := b.seedFor(context.Background(), key, func(ev Event) {
				if ev.Kind == EventWarning {
					warned = append(warned, ev.Text)
				}
			})
			if (seed == nil) != (tt.want == nil) || (seed != nil && *seed != *tt.want) {
				t.Errorf("seed %+v, want %+v", seed, tt.want)
			}
			if (tt.warning == "") != (len(warned) == 0) || (tt.warning != "" && !strings.Contains(warned[0], tt.warning)) {
				t.Errorf("warnings %q, want one with %q", warned, tt.warning)
			}
			drop()
			if got := slices.Contains(f.removed, seedRef); got != (tt.want != nil || tt.warning != "") {
				t.Errorf("the pulled seed removed: %v (%q)", got, f.removed)
			}
		})
	}
}
