package main

import (
	"context"
	"os"

	"github.com/chefd/chefd/configs"
	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/recipe"
)

// workspace is an opened workspace: the one place where the CLI and the
// daemon (which runs in this binary) find the root, read chefd.toml, locate
// the daemon and compute the recipe.
type workspace struct {
	root string
	cfg  configs.Config
}

// openWorkspace resolves dir to its workspace root, as cargo does from a
// member directory, and loads the root's chefd.toml.
func openWorkspace(dir string) (workspace, error) {
	root, err := recipe.FindRoot(dir)
	if err != nil {
		return workspace{}, err
	}
	cfg, err := configs.Load(root)
	if err != nil {
		return workspace{}, err
	}
	return workspace{root: root, cfg: cfg}, nil
}

// paths is where the workspace's daemon lives ($XDG_RUNTIME_DIR, or
// .chefd in the workspace).
func (w workspace) paths() (api.Paths, error) {
	return api.ResolvePaths(w.root, os.Getenv("XDG_RUNTIME_DIR"))
}

// recipe computes the recipe with the build intent of chefd.toml (bins,
// when set, overrides its bins), through the recipe cache.
func (w workspace) recipe(ctx context.Context, bins []string) (*recipe.Recipe, error) {
	return recipe.Compute(ctx, w.root, recipe.Options{Intent: intentOf(w.cfg, bins), CacheDir: recipe.DefaultCacheDir()})
}

func intentOf(cfg configs.Config, bins []string) recipe.Intent {
	if len(bins) == 0 {
		bins = cfg.Bins
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
