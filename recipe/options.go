package recipe

import "time"

// Option configures Compute.
type Option func(*options)

type options struct {
	intent   Intent
	cacheDir string
	binsFrom Source
	// racyWindow: observations younger than this are not cached (tests set
	// it negative to cache files they have just written).
	racyWindow time.Duration
}

// WithIntent sets the build intent (profile, target, features, bins...):
// what the recipe is cooked for.
func WithIntent(i Intent) Option { return func(o *options) { o.intent = i } }

// WithCacheDir keeps recipe caches in dir: a Compute whose inputs did not
// change since the last one (same stat identity for every file and
// directory read) returns the stored recipe. See DefaultCacheDir.
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }

// WithBinsFrom says where the intent's Bins were written (chefd.toml and
// the line of `bins`), so that errors about them name it; without it they
// name the command line (--bin).
func WithBinsFrom(s Source) Option { return func(o *options) { o.binsFrom = s } }

// withRacyWindow is for tests (see options.racyWindow).
func withRacyWindow(d time.Duration) Option { return func(o *options) { o.racyWindow = d } }
