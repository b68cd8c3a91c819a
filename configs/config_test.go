package configs

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestDefaults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My_Project")
	os.MkdirAll(dir, 0o755)
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Image != "my_project" || cfg.Tag != "dev" || cfg.Profile != "release" || cfg.KeepCooked != 3 ||
		cfg.Debounce.Duration != 100*time.Millisecond || cfg.MaxWait.Duration != 2*time.Second ||
		cfg.BuilderImage != "rust:1-bookworm" || cfg.RuntimeImage != "debian:bookworm-slim" {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		name, text string
		line       int
		key, msg   string
	}{
		{"ok", "image = \"app\"\nbins = [\"a\", \"b\"]\nentrypoint = \"b\"\ndebounce = \"50ms\"\nmax-wait = \"1s\"\nfeatures = [\"x\"]\n", 0, "", ""},
		{"unknown key", "image = \"app\"\n\nimgae = \"typo\"\n", 3, "imgae", "unknown key"},
		{"unknown table", "[watch]\ndebounce = \"1s\"\n", 1, "watch", "unknown key"},
		{"wrong type string", "\nimage = 3\n", 2, "image", "incompatible types"},
		{"wrong type int", "keep-cooked = \"three\"\n", 1, "keep-cooked", "incompatible types"},
		{"wrong type list", "bins = \"app\"\n", 1, "bins", "incompatible types"},
		{"bad duration", "debounce = \"soon\"\n", 1, "debounce", "invalid duration"},
		{"malformed", "image = \n", 1, "image", "expected value"},
		{"bad image name", "image = \"My App\"\n", 1, "image", "not a valid image"},
		{"entrypoint not shipped", "bins = [\"a\"]\nentrypoint = \"z\"\n", 2, "entrypoint", "not one of bins"},
		{"max-wait below debounce", "debounce = \"1s\"\nmax-wait = \"10ms\"\n", 2, "max-wait", "shorter than debounce"},
		{"keep-cooked zero", "keep-cooked = 0\n", 1, "keep-cooked", "at least 1"},
		{"feature with comma", "features = [\"a,b\"]\n", 1, "features", "one feature per string"},
		{"loop not a bool", "loop = \"yes\"\n", 1, "loop", "incompatible types"},
		{"cooked repo", "cooked-repo = \"127.0.0.1:5000/team/shop-cooked\"\npush-cooked = true\nregistry-timeout = \"5s\"\n", 0, "", ""},
		{"cooked repo with a tag", "\ncooked-repo = \"registry.example.com/x:latest\"\n", 2, "cooked-repo", "names a tag or digest"},
		{"cooked repo not a name", "cooked-repo = \"Registry/X Y\"\n", 1, "cooked-repo", "not a repository name"},
		{"push without a repo", "push-cooked = true\n", 1, "push-cooked", "needs cooked-repo"},
		{"pull policy", "pull = \"sometimes\"\n", 1, "pull", "want \"missing\", \"never\" or \"always\""},
		{"registry timeout zero", "registry-timeout = \"0s\"\n", 1, "registry-timeout", "must be positive"},
		{"images", "tag = \"t\"\n[[image]]\nname = \"shop-api\"\nbins = [\"api\"]\n[[image]]\nname = \"reg.example.com/shop/worker\"\nbins = [\"worker\", \"cli\"]\nentrypoint = \"cli\"\ntag = \"v1\"\n", 0, "", ""},
		{"image table unknown key", "[[image]]\nname = \"a\"\nbins = [\"a\"]\nbinz = [\"b\"]\n", 4, "image.binz", "known keys are bins, entrypoint, name, runtime-image, tag"},
		{"image without name", "[[image]]\nname = \"a\"\nbins = [\"a\"]\n\n[[image]]\nbins = [\"b\"]\n", 5, "image.name", "needs a name"},
		{"image without bins", "[[image]]\nname = \"a\"\n", 1, "image.bins", "list the binaries"},
		{"image names twice", "[[image]]\nname = \"a\"\nbins = [\"a\"]\n[[image]]\nname = \"x/a\"\nbins = [\"b\"]\n", 4, "image.name", "could not tell them apart"},
		{"image entrypoint", "[[image]]\nname = \"a\"\nbins = [\"a\"]\nentrypoint = \"b\"\n", 1, "image.entrypoint", "not one of bins"},
		{"image bad name", "[[image]]\nname = \"A B\"\nbins = [\"a\"]\n", 1, "image.name", "not a valid image repository"},
		{"bins beside images", "bins = [\"a\"]\n[[image]]\nname = \"a\"\nbins = [\"a\"]\n", 1, "bins", "move it into them"},
		{"image an integer", "image = 3\n", 1, "image", "incompatible types"},
		{"keep-images negative", "keep-images = -1\n", 1, "keep-images", "must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("/w", "/w/chefd.toml", []byte(tc.text))
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *Error, got %T %v", err, err)
			}
			if ce.File != "/w/chefd.toml" || ce.Line != tc.line || ce.Key != tc.key || !strings.Contains(ce.Msg, tc.msg) {
				t.Errorf("got %q (line %d key %q), want line %d key %q msg ~%q", err, ce.Line, ce.Key, tc.line, tc.key, tc.msg)
			}
		})
	}
}

// The template chefd init writes is valid and lists the binaries.
func TestTemplateParses(t *testing.T) {
	text := Template("app", []string{"server", "cli"}, false)
	cfg, err := Parse("/w", "/w/chefd.toml", []byte(text))
	if err != nil {
		t.Fatalf("template does not parse: %v\n%s", err, text)
	}
	if strings.Join(cfg.Bins, ",") != "server,cli" || cfg.Image != "app" {
		t.Errorf("template config %+v", cfg)
	}
	// every known key is documented in the template
	for _, k := range KnownKeys() {
		if !strings.Contains(text, k+" =") {
			t.Errorf("template lacks %s", k)
		}
	}
	var m map[string]any
	if _, err := toml.Decode(text, &m); err != nil {
		t.Fatal(err)
	}
	// chefd init --images: one image per binary
	text = Template("app", []string{"server", "cli"}, true)
	cfg, err = Parse("/w", "/w/chefd.toml", []byte(text))
	if err != nil {
		t.Fatalf("the per-image template does not parse: %v\n%s", err, text)
	}
	if len(cfg.Images) != 2 || cfg.Images[0].Ref() != "app-server:dev" || cfg.Images[1].EntrypointBin() != "cli" ||
		strings.Join(cfg.AllBins(), ",") != "cli,server" || cfg.Image != "w" {
		t.Errorf("per-image template config %+v", cfg)
	}
}

func TestSelectImages(t *testing.T) {
	cfg, err := Parse("/w", "/w/chefd.toml", []byte("[[image]]\nname = \"reg/shop-api\"\nbins = [\"api\"]\n"+
		"[[image]]\nname = \"shop-worker\"\nbins = [\"worker\"]\nruntime-image = \"scratch\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Images[0].RuntimeImage != "debian:bookworm-slim" || cfg.Images[1].RuntimeImage != "scratch" || cfg.Images[1].Tag != "dev" {
		t.Errorf("defaults of the tables: %+v", cfg.Images)
	}
	for _, tc := range []struct {
		names []string
		want  string
		err   string
	}{
		{nil, "shop-api,shop-worker", ""},
		{[]string{"shop-worker"}, "shop-worker", ""},
		{[]string{"reg/shop-api", "shop-worker:dev"}, "shop-api,shop-worker", ""},
		{[]string{"nope"}, "", "no such image in /w/chefd.toml (its images: shop-api, shop-worker)"},
	} {
		got, err := cfg.SelectImages(tc.names)
		var names []string
		for _, im := range got {
			names = append(names, im.Service())
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err %v, want %q", tc.names, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(names, ",") != tc.want {
			t.Errorf("%v: %v %v, want %s", tc.names, names, err, tc.want)
		}
	}
}

// TestValidators compares the name checks with the regular expressions
// they replace, on fixed cases and on every string of up to 4 characters
// over an alphabet of the interesting bytes (plus random longer ones).
func TestValidators(t *testing.T) {
	res := map[string]*regexp.Regexp{
		"profile": regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`),
		"name":    regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]*$`),
		"image":   regexp.MustCompile(`^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?([/][a-z0-9]+([._-][a-z0-9]+)*)*$`),
		"tag":     regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`),
	}
	fns := map[string]func(string) bool{"profile": validProfile, "name": validName, "image": validImage, "tag": validTag}
	check := func(s string) {
		for k, re := range res {
			if got, want := fns[k](s), re.MatchString(s); got != want {
				t.Fatalf("%s(%q) = %v, the regular expression says %v", k, s, got, want)
			}
		}
	}
	for _, s := range []string{"", "a", "A", "0", "_", "-", "my-app", "registry.local:5000/team/app", "a:1", "a:",
		"a:1b", "a:1/b", "a/b:1/c.d_e-f", "a::1", "a:1:2", "a//b", "a..b", "a.-b", "Release", "release-lto",
		"9lives", strings.Repeat("t", 128), strings.Repeat("t", 129), "v1.2.3", ".x", "x.", "é"} {
		check(s)
	}
	alphabet := []byte("aZ0_-./:é ")
	var rec func(prefix []byte, n int)
	rec = func(prefix []byte, n int) {
		check(string(prefix))
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			rec(append(prefix, c), n-1)
		}
	}
	rec(nil, 4)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		b := make([]byte, r.IntN(20))
		for j := range b {
			b[j] = alphabet[r.IntN(len(alphabet))]
		}
		check(string(b))
	}
}

// TestDefaultImageName compares the name derivation with the regular
// expression it replaces.
func TestDefaultImageName(t *testing.T) {
	junk := regexp.MustCompile(`[^a-z0-9._-]+`)
	for _, base := range []string{"My App", "rust--ws", "Ünïcode Tools", "a b\tc", "...", "x.y_z-1", "!!!"} {
		want := strings.Trim(junk.ReplaceAllString(strings.ToLower(base), "-"), "-._")
		if want == "" {
			want = "app"
		}
		if got := DefaultImageName(filepath.Join(t.TempDir(), base)); got != want {
			t.Errorf("DefaultImageName(%q) = %q, want %q", base, got, want)
		}
	}
}

// TestLoopMode: the loop key decides when set; unset, loop mode is on
// unless CI is set.
func TestLoopMode(t *testing.T) {
	for _, c := range []struct {
		text     string
		ci, want bool
	}{
		{"", false, true},
		{"", true, false},
		{"loop = false\n", false, false},
		{"loop = true\n", true, true},
		{"loop = false\n", true, false},
	} {
		cfg, err := Parse(t.TempDir(), FileName, []byte(c.text))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.LoopMode(c.ci); got != c.want {
			t.Errorf("%q with CI %v: loop mode %v, want %v", c.text, c.ci, got, c.want)
		}
	}
}
