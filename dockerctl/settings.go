package dockerctl

import "github.com/chefd/chefd/configs"

// Settings are what dockerctl needs of a workspace's chefd.toml; nothing
// else of its schema reaches this package.
type Settings struct {
	// Image and Tag name the image a code build tags (<image>:<tag>);
	// cooked images are <image>-cooked:<short recipe hash>.
	Image, Tag string
	// BuilderImage has cargo and rustc; RuntimeImage is the final image's
	// base. Neither is ever pulled.
	BuilderImage, RuntimeImage string
	// Bins are the binaries shipped (empty: every binary of the workspace)
	// and Entrypoint the image's entrypoint ("": the first of them).
	Bins       []string
	Entrypoint string
	// Ignore adds .dockerignore patterns (package inputs).
	Ignore []string
}

// SettingsOf takes the settings dockerctl needs out of cfg.
func SettingsOf(cfg configs.Config) Settings {
	return Settings{Image: cfg.Image, Tag: cfg.Tag, BuilderImage: cfg.BuilderImage, RuntimeImage: cfg.RuntimeImage,
		Bins: cfg.Bins, Entrypoint: cfg.EntrypointBin(), Ignore: cfg.Ignore}
}
