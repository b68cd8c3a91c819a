package dockerctl

import (
	"time"

	"go.uber.org/zap"
)

// Functional options of this package's two constructors, Connect and
// NewWorkspaceBuilder (the shape of ko's pkg/build/options.go).

// Option configures Connect.
type Option func(*connectOpts)

type connectOpts struct {
	log      *zap.Logger
	timeout  time.Duration
	host     string
	compress string
}

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(o *connectOpts) { o.log = l } }

// WithCompression says when build contexts travel gzip-compressed
// (BestSpeed), as `docker build --compress` does: "auto" or "" (an engine
// reached over the network: tcp://, ssh://), "always" or "never".
func WithCompression(mode string) Option { return func(o *connectOpts) { o.compress = mode } }

// WithHost overrides DOCKER_HOST.
func WithHost(h string) Option { return func(o *connectOpts) { o.host = h } }

// WithPingTimeout bounds the initial ping (default 5 s).
func WithPingTimeout(d time.Duration) Option { return func(o *connectOpts) { o.timeout = d } }

// BuilderOption configures NewWorkspaceBuilder.
type BuilderOption func(*builderOpts)

type builderOpts struct {
	log      *zap.Logger
	version  string // the chefd.version label
	stateDir string // per-workspace client state (the build lock)
	noCache  bool
	// bgCleanup: every build's leftovers are removed in the background
	bgCleanup bool
	// cleanupPause: the first pause before a leftover in use is tried
	// again (retryPause; tests shorten it)
	cleanupPause time.Duration
	creds        Credentials // nil: DockerCredentials
}

// WithCredentials sets where registry credentials come from (default:
// DockerCredentials, the Docker CLI's).
func WithCredentials(c Credentials) BuilderOption { return func(o *builderOpts) { o.creds = c } }

// WithBuilderLogger sets the builder's logger (default: none).
func WithBuilderLogger(l *zap.Logger) BuilderOption {
	return func(o *builderOpts) {
		if l != nil {
			o.log = l
		}
	}
}

// WithVersion sets the chefd version written into the images' labels
// (default "dev").
func WithVersion(v string) BuilderOption { return func(o *builderOpts) { o.version = v } }

// WithStateDir sets the directory of per-workspace client state, the build
// lock (default: the user's cache directory, chefd/<workspace id>).
func WithStateDir(dir string) BuilderOption { return func(o *builderOpts) { o.stateDir = dir } }

// WithBackgroundCleanup removes every build's leftovers from the build
// cache in the background, after a large context too (a long-running
// process: the daemon, whose waiters should not wait for it); by default a
// large context's are removed before Build returns.
func WithBackgroundCleanup(on bool) BuilderOption { return func(o *builderOpts) { o.bgCleanup = on } }

// WithNoCache makes the engine ignore its layer cache (benchmarks, or a
// suspected bad cache); cache mounts stay.
func WithNoCache(on bool) BuilderOption { return func(o *builderOpts) { o.noCache = on } }
