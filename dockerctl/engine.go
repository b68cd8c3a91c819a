package dockerctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.uber.org/zap"
)

// Engine is a connection to a Docker engine that answered a ping.
type Engine struct {
	api  engineAPI      // every call chefd makes goes through it
	cli  *client.Client // the same client, for tests that look around (nil on a fake)
	host string
	log  *zap.Logger
	// compress: build contexts travel gzip-compressed (WithCompression)
	compress bool
}

// engineAPI is the part of the Docker engine API chefd calls: a
// *client.Client in production, a fake in unit tests (GC, cache pruning,
// the cooked image check).
type engineAPI interface {
	ImageBuild(ctx context.Context, body io.Reader, opts build.ImageBuildOptions) (build.ImageBuildResponse, error)
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	ImageList(ctx context.Context, opts image.ListOptions) ([]image.Summary, error)
	ImageRemove(ctx context.Context, id string, opts image.RemoveOptions) ([]image.DeleteResponse, error)
	DiskUsage(ctx context.Context, opts types.DiskUsageOptions) (types.DiskUsage, error)
	BuildCachePrune(ctx context.Context, opts build.CachePruneOptions) (*build.CachePruneReport, error)
	DistributionInspect(ctx context.Context, ref, encodedAuth string) (registry.DistributionInspect, error)
	ImagePull(ctx context.Context, ref string, opts image.PullOptions) (io.ReadCloser, error)
	ImagePush(ctx context.Context, ref string, opts image.PushOptions) (io.ReadCloser, error)
	ImageTag(ctx context.Context, source, target string) error
	ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (image.LoadResponse, error)
	// containers are made only to read a file out of an image (readSums)
	ContainerCreate(ctx context.Context, config *container.Config, host *container.HostConfig,
		net *network.NetworkingConfig, platform *ocispec.Platform, name string) (container.CreateResponse, error)
	CopyFromContainer(ctx context.Context, id, src string) (io.ReadCloser, container.PathStat, error)
	ContainerRemove(ctx context.Context, id string, opts container.RemoveOptions) error
	Close() error
}

// UnreachableError means no engine answered at Host.
type UnreachableError struct {
	Host string
	Err  error
	// Lost: the engine answered, then the connection broke mid-build (the
	// engine stopped, crashed or restarted).
	Lost bool
}

func (e *UnreachableError) Error() string {
	if e.Lost {
		return fmt.Sprintf("lost the connection to the Docker engine at %s mid-build (%v): it stopped or restarted; "+
			"the build did not finish, run it again once the engine is back (`docker info` answers)", e.Host, shortErr(e.Err))
	}
	return fmt.Sprintf("no Docker engine answers at %s (%v): start one (as root on Debian: scripts/ensure-engine.sh, "+
		"or `systemctl start docker`), or point DOCKER_HOST at a running engine", e.Host, shortErr(e.Err))
}

func (e *UnreachableError) Unwrap() error { return e.Err }

func shortErr(err error) string {
	s := err.Error()
	if i := strings.Index(s, ". Is the docker daemon running?"); i > 0 {
		s = s[:i]
	}
	return s
}

// Connect makes a client from the environment (DOCKER_HOST and friends),
// pings the engine and negotiates the API version. An engine that does not
// answer gives an *UnreachableError.
func Connect(ctx context.Context, opts ...Option) (*Engine, error) {
	o := connectOpts{log: zap.NewNop(), timeout: 5 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	target, err := resolveEngine(o.host)
	if err != nil {
		return nil, err
	}
	copts := append(target.opts, client.WithAPIVersionNegotiation())
	if os.Getenv("DOCKER_API_VERSION") != "" {
		o.log.Warn("DOCKER_API_VERSION is set: API version negotiation is disabled")
	}
	cli, err := client.NewClientWithOpts(copts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	host := target.name
	pctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if _, err := cli.Ping(pctx); err != nil {
		cli.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &UnreachableError{Host: host, Err: err}
	}
	cli.NegotiateAPIVersion(ctx)
	compress, err := compressContext(o.compress, cli.DaemonHost())
	if err != nil {
		cli.Close()
		return nil, err
	}
	o.log.Debug("docker engine answers", zap.String("host", host), zap.String("api", cli.ClientVersion()), zap.Bool("compress", compress))
	return &Engine{api: cli, cli: cli, host: host, log: o.log, compress: compress}, nil
}

// compressContext decides WithCompression's mode for an engine at the
// client's daemon address: auto compresses unless the engine is local (a
// unix socket or a named pipe: compressing costs more than it saves).
func compressContext(mode, daemonHost string) (bool, error) {
	switch mode {
	case "", "auto":
		return !strings.HasPrefix(daemonHost, "unix://") && !strings.HasPrefix(daemonHost, "npipe://"), nil
	case "always":
		return true, nil
	case "never":
		return false, nil
	}
	return false, fmt.Errorf("context compression %q: want auto, always or never (CHEFD_COMPRESS)", mode)
}

// EngineHost names the engine Connect uses, resolved as the Docker CLI
// does (enginehost.go), without connecting.
func EngineHost() string {
	t, err := resolveEngine("")
	if err != nil {
		return os.Getenv("DOCKER_HOST")
	}
	return t.name
}

// Close releases the client.
func (e *Engine) Close() error { return e.api.Close() }

// Host is the engine address.
func (e *Engine) Host() string { return e.host }

// Client exposes the underlying client, for tests that look around the
// engine.
func (e *Engine) Client() *client.Client { return e.cli }

// imageID returns the ID of a local image, "" when it does not exist.
func (e *Engine) imageID(ctx context.Context, ref string) (string, error) {
	ins, err := e.inspectImage(ctx, ref)
	if ins == nil {
		return "", err
	}
	return ins.ID, nil
}

// inspectImage inspects a local image: nil and no error when it does not
// exist.
func (e *Engine) inspectImage(ctx context.Context, ref string) (*image.InspectResponse, error) {
	ins, err := e.api.ImageInspect(ctx, ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, nil
		}
		if client.IsErrConnectionFailed(err) {
			return nil, &UnreachableError{Host: e.host, Err: err}
		}
		return nil, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return &ins, nil
}

// MissingImageError: a base image is not on the engine, and the pull policy
// did not pull it or the pull failed.
type MissingImageError struct {
	Image  string
	Role   string     // "builder" or "runtime"
	Policy PullPolicy // the pull policy in force
	Pull   error      // the pull's failure (nil: the policy did not pull)
}

func (e *MissingImageError) Error() string {
	fix := fmt.Sprintf("pull or build it yourself (`docker pull %s`), or set %s-image in chefd.toml", e.Image, e.Role)
	if e.Role == "builder" && strings.HasPrefix(e.Image, "chefd/rust-builder") {
		fix = "build it offline with scripts/builder-image.sh (about 2-3 minutes), or set builder-image in chefd.toml"
	}
	if e.Pull != nil {
		return fmt.Sprintf("%s image %q: the pull failed (pull = %q): %v; %s, or set pull = \"never\" on an offline machine",
			e.Role, e.Image, e.Policy, shortErr(e.Pull), fix)
	}
	return fmt.Sprintf("%s image %q is not on the engine and pull = %q: %s, or set pull = \"missing\"", e.Role, e.Image, e.Policy, fix)
}

func (e *MissingImageError) Unwrap() error { return e.Pull }

// IsUnreachable reports whether err means the engine did not answer.
func IsUnreachable(err error) bool {
	var u *UnreachableError
	return errors.As(err, &u)
}
