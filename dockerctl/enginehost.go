package dockerctl

// Which engine: resolved exactly as the Docker CLI does, with its own
// packages (context store, TLS data, the ssh connection helper):
//  1. an explicit host (WithHost);
//  2. DOCKER_HOST, with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (tcp://),
//     or through `ssh` (ssh://user@host);
//  3. the context named by DOCKER_CONTEXT, else the CLI config's current
//     context (`docker context use`);
//  4. the default socket.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/connhelper"
	dcontext "github.com/docker/cli/cli/context/docker"
	"github.com/docker/cli/cli/context/store"
	"github.com/docker/docker/client"
)

// cliConfigDir is the Docker CLI's configuration directory:
// $DOCKER_CONFIG, else ~/.docker. (The CLI's config.Dir reads the
// environment once per process; the tests change it.)
func cliConfigDir() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".docker"
	}
	return filepath.Join(home, ".docker")
}

// engineTarget is a resolved engine: the client options and a name for
// people ("tcp://10.0.0.5:2376", "context build-server (ssh://ci@builder)").
type engineTarget struct {
	opts []client.Opt
	name string
}

// resolveEngine resolves the engine for host ("" : from the environment
// and the Docker CLI's configuration).
func resolveEngine(host string) (engineTarget, error) {
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
		if host == "" {
			return resolveContext()
		}
		if !strings.HasPrefix(host, "ssh://") {
			return engineTarget{opts: []client.Opt{client.FromEnv}, name: host}, nil
		}
	}
	helper, err := connhelper.GetConnectionHelper(host)
	if err != nil {
		return engineTarget{}, fmt.Errorf("engine %s: %w", host, err)
	}
	if helper == nil {
		return engineTarget{opts: []client.Opt{client.FromEnv, client.WithHost(host)}, name: host}, nil
	}
	return engineTarget{name: host, opts: []client.Opt{
		client.WithHost(helper.Host), client.WithDialContext(helper.Dialer)}}, nil
}

// resolveContext resolves DOCKER_CONTEXT, else the current context of the
// Docker CLI's config; "default" and none are the default socket.
func resolveContext() (engineTarget, error) {
	name := os.Getenv("DOCKER_CONTEXT")
	if name == "" {
		if cf, err := config.Load(cliConfigDir()); err == nil {
			name = cf.CurrentContext
		}
	}
	if name == "" || name == "default" {
		return engineTarget{opts: []client.Opt{client.FromEnv}, name: client.DefaultDockerHost}, nil
	}
	dir := filepath.Join(cliConfigDir(), "contexts")
	s := store.New(dir, store.NewConfig(
		func() any { return &map[string]any{} },
		store.EndpointTypeGetter(dcontext.DockerEndpoint, func() any { return &dcontext.EndpointMeta{} })))
	bad := func(err error) (engineTarget, error) {
		return engineTarget{}, fmt.Errorf("docker context %q (DOCKER_CONTEXT or `docker context use`, in %s): %w; see `docker context ls`",
			name, dir, err)
	}
	meta, err := s.GetMetadata(name)
	if err != nil {
		return bad(err)
	}
	epMeta, err := dcontext.EndpointFromContext(meta)
	if err != nil {
		return bad(err)
	}
	ep, err := dcontext.WithTLSData(s, name, epMeta)
	if err != nil {
		return bad(err)
	}
	opts, err := ep.ClientOpts()
	if err != nil {
		return bad(err)
	}
	return engineTarget{opts: opts, name: fmt.Sprintf("context %s (%s)", name, ep.Host)}, nil
}
