// Package configs reads chefd.toml, the per-workspace configuration file.
//
// Every field has a documented default (see Default and the README's
// configuration reference). Unknown keys and values of the wrong type are
// errors that name the file, the line and the key.
package configs

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/distribution/reference"

	"github.com/chefd/chefd/internal/safefile"
)

// FileName is the configuration file chefd looks for at the workspace root.
const FileName = "chefd.toml"

// Config is the content of chefd.toml with defaults applied.
type Config struct {
	// Image is the repository of the final image (tagged Image:Tag); the
	// cooked dependency images are Image-cooked:<recipe hash>.
	// Default: the workspace directory name, lower-cased.
	// With [[image]] tables (Images) it names the cooked images only.
	Image string `toml:"-"`
	// ImageKey is the "image" key as written: a string (Image) or
	// [[image]] tables (Images); see decodeImage.
	ImageKey toml.Primitive `toml:"image"`
	// Images are the [[image]] tables: several service images from one
	// cook and one code build (images.go). Empty: one image, described by
	// image, tag, bins, entrypoint and runtime-image.
	Images []ImageConfig `toml:"-"`
	// KeepImages is how many superseded final images per image garbage
	// collection keeps for rollback. Default 2.
	KeepImages int `toml:"keep-images"`
	// Tag of the final image. Default "dev".
	Tag string `toml:"tag"`
	// BuilderImage holds cargo and rustc. Default "rust:1-bookworm".
	BuilderImage string `toml:"builder-image"`
	// RuntimeImage is the base of the final image. Default
	// "debian:bookworm-slim"; "scratch" is allowed for static binaries.
	RuntimeImage string `toml:"runtime-image"`
	// Profile is the cargo profile. Default "release".
	Profile string `toml:"profile"`
	// Features passed as --features.
	Features []string `toml:"features"`
	// NoDefaultFeatures passes --no-default-features.
	NoDefaultFeatures bool `toml:"no-default-features"`
	// Target is the target triple (--target). Default: the builder's host.
	Target string `toml:"target"`
	// RustFlags is set as RUSTFLAGS for cook and build alike.
	RustFlags string `toml:"rustflags"`
	// Bins are the binaries shipped in the final image. Default: every
	// binary of the workspace members.
	Bins []string `toml:"bins"`
	// Entrypoint is the binary the image runs. Default: the first of Bins.
	Entrypoint string `toml:"entrypoint"`
	// Debounce is the quiet period the watcher waits for. Default 100ms.
	Debounce Duration `toml:"debounce"`
	// MaxWait bounds how long a stream of events can delay a batch. Default 2s.
	MaxWait Duration `toml:"max-wait"`
	// Ignore holds extra ignore patterns (.dockerignore syntax).
	Ignore []string `toml:"ignore"`
	// KeepCooked is how many cooked images garbage collection keeps. Default 3.
	KeepCooked int `toml:"keep-cooked"`
	// Loop turns the daemon's loop mode on or off: its builds for saves
	// and build requests compile the workspace's own crates incrementally
	// (the configured profile otherwise). Unset: on, unless CI is set (see
	// LoopMode). What ships is built exactly either way.
	Loop *bool `toml:"loop"`
	// CookedRepo is a registry repository of shared cooked images
	// ("registry.example.com/team/shop-cooked"): a missing cooked image is
	// pulled from <cooked-repo>:<recipe hash 16> when it is there, and
	// cooked otherwise. CHEFD_COOKED_REPO and --cooked-repo override it.
	CookedRepo string `toml:"cooked-repo"`
	// PushCooked pushes every cooked image chefd cooks to CookedRepo (a
	// CI job on the main branch; developers and pull requests only pull).
	PushCooked bool `toml:"push-cooked"`
	// Notify: the daemon shows a desktop notification when a build or cook
	// it ran on its own (a save, a manifest change) ends (chefd start
	// --notify too).
	Notify bool `toml:"notify"`
	// Dashboard: the daemon serves its dashboard (chefd ui) on 127.0.0.1,
	// on a free port, for as long as it runs (chefd start --dashboard too);
	// chefd ui prints its URL.
	Dashboard bool `toml:"dashboard"`
	// StuckAfter is how long a daemon's build or cook may print nothing
	// before status, the event stream and a notification call it possibly
	// stuck. Default 10m.
	StuckAfter Duration `toml:"stuck-after"`
	// RegistryTimeout bounds the registry's answer to a manifest check,
	// and a pull or push that makes no progress. Default 15s.
	RegistryTimeout Duration `toml:"registry-timeout"`
	// Pull says when the builder and runtime images are pulled, as docker
	// build does: "missing" (default) when the engine lacks them, "never"
	// (an offline machine), "always" before every cook and build.
	Pull string `toml:"pull"`

	// Path is the file the configuration was read from ("" for defaults).
	Path string `toml:"-"`
	// raw is the file's text (for Line).
	raw []byte
}

// Duration is a time.Duration written as a Go duration string ("150ms").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%w (write a duration such as \"100ms\" or \"2s\")", err)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the configuration used when chefd.toml is absent, for the
// workspace in dir.
func Default(dir string) Config {
	return Config{
		Image:        DefaultImageName(dir),
		Tag:          "dev",
		BuilderImage: "rust:1-bookworm",
		RuntimeImage: "debian:bookworm-slim",
		Profile:      "release",
		Debounce:     Duration{100 * time.Millisecond},
		MaxWait:      Duration{2 * time.Second},
		KeepCooked:   3,
		KeepImages:   2,

		RegistryTimeout: Duration{15 * time.Second},
		Pull:            "missing",
	}
}

// ValidateRepo checks a cooked repository name: a registry repository,
// without tag or digest ("registry.example.com/team/shop-cooked").
func ValidateRepo(repo string) error {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return fmt.Errorf("%q is not a repository name (e.g. registry.example.com/team/shop-cooked): %v", repo, err)
	}
	if !reference.IsNameOnly(named) {
		return fmt.Errorf("%q names a tag or digest; give the repository only (chefd tags it with the recipe hash)", repo)
	}
	return nil
}

// LoopMode reports whether the daemon's builds use loop mode: the loop
// key when set, else on unless ci (a CI run builds what ships).
func (c Config) LoopMode(ci bool) bool {
	if c.Loop != nil {
		return *c.Loop
	}
	return !ci
}

// DefaultImageName derives an image repository name from a directory name:
// lower-cased, every run of characters outside [a-z0-9._-] replaced by "-".
func DefaultImageName(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	var b strings.Builder
	junk := false
	for _, r := range strings.ToLower(filepath.Base(abs)) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			b.WriteRune(r)
			junk = false
			continue
		}
		if !junk {
			b.WriteByte('-')
		}
		junk = true
	}
	name := b.String()
	name = strings.Trim(name, "-._")
	if name == "" {
		name = "app"
	}
	return name
}

// Error is a configuration error with its position.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	pos := e.File
	if e.Line > 0 {
		pos = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: key %q: %s", pos, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", pos, e.Msg)
}

// Load reads dir/chefd.toml. A missing file gives Default(dir); anything
// else that cannot be read is an error naming the file: a symbolic link
// to a missing file, a FIFO or a device (only regular files are read), a
// file over safefile.TextLimit.
func Load(dir string) (Config, error) {
	path := filepath.Join(dir, FileName)
	data, err := safefile.ReadRegular(path, safefile.TextLimit)
	if safefile.Absent(err) {
		return Default(dir), nil
	}
	if err != nil {
		if reason, ok := safefile.Reason(err); ok {
			return Config{}, &Error{File: path, Msg: reason + "; " + fixOf(err)}
		}
		return Config{}, fmt.Errorf("read %s: %w", path, err)
	}
	return Parse(dir, path, data)
}

// fixOf says what to do about a chefd.toml that cannot be read.
func fixOf(err error) string {
	var tooLarge *safefile.TooLargeError
	switch {
	case safefile.Dangling(err) != nil:
		return "point the link at a file, or remove it to use the defaults"
	case errors.As(err, &tooLarge):
		return "a chefd.toml holds a few lines; restore it, or remove it to use the defaults"
	}
	return "make it a regular file, or remove it to use the defaults"
}

// Parse decodes data (the content of path) over Default(dir) and validates it.
func Parse(dir, path string, data []byte) (Config, error) {
	cfg := Default(dir)
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		return Config{}, decodeError(path, err)
	}
	cfg.Path, cfg.raw = path, data
	if err := cfg.decodeImage(md, data); err != nil {
		return Config{}, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		key := und[0].String()
		known := KnownKeys()
		if len(und[0]) > 1 && und[0][0] == "image" {
			known = imageKeys() // a key of an [[image]] table
		}
		return Config{}, &Error{File: path, Line: lineOfKey(data, und[0]), Key: key,
			Msg: fmt.Sprintf("unknown key; known keys are %s", strings.Join(known, ", "))}
	}
	if err := cfg.validate(data); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func decodeError(path string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := pe.Message
		if pe.Usage != "" {
			msg += " (" + strings.TrimSpace(pe.Usage) + ")"
		}
		return &Error{File: path, Line: pe.Position.Line, Key: pe.LastKey, Msg: msg}
	}
	lineKey := regexp.MustCompile(`line (\d+) \(last key "([^"]*)"\): (.*)$`)
	if m := lineKey.FindStringSubmatch(err.Error()); m != nil {
		line := 0
		fmt.Sscanf(m[1], "%d", &line)
		return &Error{File: path, Line: line, Key: m[2], Msg: m[3]}
	}
	return &Error{File: path, Msg: err.Error()}
}

// lineOfKey finds the line where a (possibly dotted) key is first written.
func lineOfKey(data []byte, key toml.Key) int {
	if len(key) == 0 {
		return 0
	}
	last := key[len(key)-1]
	pat := regexp.MustCompile(`(?m)^[ \t]*(\[+[ \t]*)?("?)` + regexp.QuoteMeta(last) + `("?)[ \t]*(=|\])`)
	if loc := pat.FindIndex(data); loc != nil {
		return bytes.Count(data[:loc[0]], []byte("\n")) + 1
	}
	return 0
}

// KnownKeys lists the keys chefd.toml accepts, sorted.
func KnownKeys() []string {
	keys := []string{"image", "tag", "builder-image", "runtime-image", "profile", "features",
		"no-default-features", "target", "rustflags", "bins", "entrypoint", "debounce",
		"max-wait", "ignore", "keep-cooked", "keep-images", "loop", "cooked-repo", "push-cooked",
		"registry-timeout", "pull", "notify", "stuck-after", "dashboard"}
	sort.Strings(keys)
	return keys
}

// Name checks, written out rather than as package-level regular
// expressions (no package state, nothing compiled at start-up);
// TestValidators compares them with the regular expressions they replace.

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return isLower(c) || c >= 'A' && c <= 'Z' || isDigit(c) }

// validImage: [a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*
func validImage(s string) bool {
	i, port := 0, false
	run := func() bool {
		start := i
		for i < len(s) && (isLower(s[i]) || isDigit(s[i])) {
			i++
		}
		return i > start
	}
	if !run() {
		return false
	}
	for i < len(s) {
		switch c := s[i]; {
		case c == ':' && !port:
			i++
			start := i
			for i < len(s) && isDigit(s[i]) {
				i++
			}
			if i == start || i < len(s) && s[i] != '/' {
				return false
			}
			port = true
		case c == '.' || c == '_' || c == '/' || c == '-':
			i++
			if !run() {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// validProfile: [A-Za-z][A-Za-z0-9_-]*
func validProfile(s string) bool {
	if s == "" || isDigit(s[0]) || !isAlnum(s[0]) {
		return false
	}
	return restOf(s[1:], "_-")
}

// validName: [A-Za-z0-9_][A-Za-z0-9_-]*
func validName(s string) bool {
	return s != "" && (isAlnum(s[0]) || s[0] == '_') && restOf(s[1:], "_-")
}

// validTag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
func validTag(s string) bool {
	return s != "" && len(s) <= 128 && (isAlnum(s[0]) || s[0] == '_') && restOf(s[1:], "_.-")
}

// restOf: every byte alphanumeric or in extra.
func restOf(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && strings.IndexByte(extra, s[i]) < 0 {
			return false
		}
	}
	return true
}

func (c *Config) validate(data []byte) error {
	bad := func(key, msg string) error {
		return &Error{File: c.Path, Line: lineOfKey(data, toml.Key{key}), Key: key, Msg: msg}
	}
	if !validImage(c.Image) {
		return bad("image", fmt.Sprintf("%q is not a valid image repository name (lower-case letters, digits, '.', '-', '_', '/')", c.Image))
	}
	if !validTag(c.Tag) {
		return bad("tag", fmt.Sprintf("%q is not a valid image tag", c.Tag))
	}
	if c.BuilderImage == "" {
		return bad("builder-image", "must not be empty (e.g. \"rust:1-bookworm\")")
	}
	if c.RuntimeImage == "" {
		return bad("runtime-image", "must not be empty (e.g. \"debian:bookworm-slim\" or \"scratch\")")
	}
	if !validProfile(c.Profile) {
		return bad("profile", fmt.Sprintf("%q is not a cargo profile name", c.Profile))
	}
	for _, b := range c.Bins {
		if !validName(b) {
			return bad("bins", fmt.Sprintf("%q is not a binary target name", b))
		}
	}
	if c.Entrypoint != "" && len(c.Bins) > 0 && !slices.Contains(c.Bins, c.Entrypoint) {
		return bad("entrypoint", fmt.Sprintf("%q is not one of bins %v; add it to bins", c.Entrypoint, c.Bins))
	}
	for _, f := range c.Features {
		if strings.TrimSpace(f) == "" || strings.ContainsAny(f, " ,") {
			return bad("features", fmt.Sprintf("%q: list one feature per string", f))
		}
	}
	if c.Target != "" && strings.ContainsAny(c.Target, " \t") {
		return bad("target", fmt.Sprintf("%q is not a target triple", c.Target))
	}
	if c.Debounce.Duration <= 0 {
		return bad("debounce", "must be positive (e.g. \"100ms\")")
	}
	if c.MaxWait.Duration < c.Debounce.Duration {
		return bad("max-wait", fmt.Sprintf("%s is shorter than debounce %s", c.MaxWait, c.Debounce))
	}
	if c.StuckAfter.Duration < 0 {
		return bad("stuck-after", "must not be negative (e.g. \"10m\"; unset: 10m)")
	}
	if c.KeepCooked < 1 {
		return bad("keep-cooked", "must be at least 1")
	}
	if c.KeepImages < 0 {
		return bad("keep-images", "must not be negative (0: keep no superseded image)")
	}
	if len(c.Images) > 0 {
		if err := c.validateImages(); err != nil {
			return err
		}
	}
	if c.CookedRepo != "" {
		if err := ValidateRepo(c.CookedRepo); err != nil {
			return bad("cooked-repo", err.Error())
		}
	}
	if c.PushCooked && c.CookedRepo == "" {
		return bad("push-cooked", "needs cooked-repo (the repository to push to)")
	}
	if !slices.Contains([]string{"missing", "never", "always"}, c.Pull) {
		return bad("pull", fmt.Sprintf("%q: want \"missing\", \"never\" or \"always\"", c.Pull))
	}
	if c.RegistryTimeout.Duration <= 0 {
		return bad("registry-timeout", "must be positive (e.g. \"15s\")")
	}
	return nil
}

// Line is the line of chefd.toml where key is written (0 when it is not,
// or for the defaults).
func (c Config) Line(key string) int { return lineOfKey(c.raw, toml.Key{key}) }

// CheckEntrypoint checks `entrypoint` against the binaries the image
// ships when `bins` is not set (every binary of the workspace, bins): an
// entrypoint that is not one of them is an error at its line.
func (c Config) CheckEntrypoint(bins []string) error {
	if c.Entrypoint == "" || len(c.Bins) > 0 || slices.Contains(bins, c.Entrypoint) {
		return nil
	}
	list := strings.Join(bins, ", ")
	if list == "" {
		list = "(none)"
	}
	return &Error{File: c.Path, Line: c.Line("entrypoint"), Key: "entrypoint",
		Msg: fmt.Sprintf("%q is not a binary of the workspace (its binaries: %s); name one of them", c.Entrypoint, list)}
}

// EntrypointBin returns the binary the image runs: Entrypoint, else the first
// of Bins, else "".
func (c Config) EntrypointBin() string {
	if c.Entrypoint != "" {
		return c.Entrypoint
	}
	if len(c.Bins) > 0 {
		return c.Bins[0]
	}
	return ""
}
