package configs

import (
	"errors"
	"os"
	"path/filepath"
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
	text := Template("app", []string{"server", "cli"})
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
}
