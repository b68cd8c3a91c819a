package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/chefd/chefd/configs"
	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/internal/flock"
	"github.com/chefd/chefd/recipe"
)

// workspace is an opened workspace: the one place where the CLI and the
// daemon (which runs in this binary) find the root, read chefd.toml, locate
// the daemon and compute the recipe.
type workspace struct {
	root string
	cfg  configs.Config
}

// overrides are the settings the environment and the command line set
// over chefd.toml: the flag wins, then the environment.
type overrides struct {
	cookedRepo string // --cooked-repo
	pull       string // --pull
}

// cookedRepoEnv overrides cooked-repo of chefd.toml.
const cookedRepoEnv = "CHEFD_COOKED_REPO"

func (o overrides) apply(cfg *configs.Config) error {
	if o.pull != "" {
		if !dockerctl.PullPolicy(o.pull).Valid() {
			return fmt.Errorf("--pull %q: want missing, never or always", o.pull)
		}
		cfg.Pull = o.pull
	}
	repo, from := o.cookedRepo, "--cooked-repo"
	if repo == "" {
		repo, from = os.Getenv(cookedRepoEnv), cookedRepoEnv
	}
	if repo == "" {
		return nil
	}
	if err := configs.ValidateRepo(repo); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	cfg.CookedRepo = repo
	return nil
}

// openWorkspace resolves dir to its workspace root, as cargo does from a
// member directory, and loads the root's chefd.toml with o applied.
func openWorkspace(dir string, o overrides) (workspace, error) {
	root, err := recipe.FindRoot(dir)
	if err != nil {
		return workspace{}, err
	}
	cfg, err := configs.Load(root)
	if err != nil {
		return workspace{}, err
	}
	if err := o.apply(&cfg); err != nil {
		return workspace{}, err
	}
	return workspace{root: root, cfg: cfg}, nil
}

// paths is where the workspace's daemon lives (daemonPathsOf).
func (w workspace) paths() (api.Paths, error) {
	return daemonPathsOf(w.root)
}

// daemonPathsOf is where the daemon of the workspace at root lives: the
// running daemon's socket and log wherever its environment put them
// (api.Locate), else $XDG_RUNTIME_DIR/chefd/<id>, or .chefd in the
// workspace.
func daemonPathsOf(root string) (api.Paths, error) {
	return api.Locate(root, os.Getenv("XDG_RUNTIME_DIR"))
}

// daemonRoot finds the workspace root of dir for the commands that only
// talk to the daemon (status, logs, events, stop). They must work while
// chefd.toml or a Cargo.toml is broken (if only to stop the daemon), so it
// reads no chefd.toml and a manifest that does not parse does not stop it:
// the root is the one recipe.FindRoot finds when a daemon runs there, else
// the nearest directory from dir up with a Cargo.toml or a chefd.toml
// (not read) for which a daemon runs, else FindRoot's answer, else the
// nearest such directory.
func daemonRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	root, findErr := recipe.FindRoot(abs)
	if findErr == nil && daemonRuns(root) {
		return root, nil
	}
	nearest := ""
	for d := abs; ; d = filepath.Dir(d) {
		if hasManifest(d) {
			if daemonRuns(d) {
				return d, nil
			}
			if nearest == "" {
				nearest = d
			}
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	switch {
	case findErr == nil:
		return root, nil
	case nearest != "":
		return nearest, nil
	}
	return "", findErr
}

// hasManifest reports whether dir has a Cargo.toml or a chefd.toml (of
// any kind: nothing is opened).
func hasManifest(dir string) bool {
	for _, name := range []string{"Cargo.toml", configs.FileName} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// daemonRuns reports whether a daemon holds the lock of the workspace at
// root.
func daemonRuns(root string) bool {
	p, err := api.ResolvePaths(root, os.Getenv("XDG_RUNTIME_DIR"))
	if err != nil {
		return false
	}
	held, _ := flock.Held(p.Lock)
	return held
}

// recipe computes the recipe with the build intent of chefd.toml (bins,
// when set, overrides its bins), through the recipe cache.
// Errors about bins and entrypoint from chefd.toml name its lines.
func (w workspace) recipe(ctx context.Context, bins []string) (*recipe.Recipe, error) {
	opts := []recipe.Option{recipe.WithIntent(intentOf(w.cfg, bins)), recipe.WithCacheDir(recipe.DefaultCacheDir())}
	if len(bins) == 0 && len(w.cfg.Bins) > 0 {
		opts = append(opts, recipe.WithBinsFrom(recipe.Source{File: w.cfg.Path, Line: w.cfg.Line("bins")}))
	}
	r, err := recipe.Compute(ctx, w.root, opts...)
	if err != nil {
		return nil, err
	}
	if len(bins) == 0 {
		if err := w.cfg.CheckEntrypoint(r.Bins()); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func intentOf(cfg configs.Config, bins []string) recipe.Intent {
	if len(bins) == 0 {
		bins = cfg.AllBins()
	}
	return recipe.Intent{
		Profile:           cfg.Profile,
		Features:          cfg.Features,
		NoDefaultFeatures: cfg.NoDefaultFeatures,
		Target:            cfg.Target,
		RustFlags:         cfg.RustFlags,
		Bins:              bins,
	}
}
