package dockerctl

import (
	"time"

	"github.com/chefd/chefd/configs"
)

// Settings are what dockerctl needs of a workspace's chefd.toml; nothing
// else of its schema reaches this package.
type Settings struct {
	// Image and Tag name the image a code build tags (<image>:<tag>);
	// cooked images are <image>-cooked:<short recipe hash>.
	Image, Tag string
	// BuilderImage has cargo and rustc; RuntimeImage is the final image's
	// base. They are pulled under Pull.
	BuilderImage, RuntimeImage string
	// Bins are the binaries shipped (empty: every binary of the workspace)
	// and Entrypoint the image's entrypoint ("": the first of them).
	Bins       []string
	Entrypoint string
	// Ignore adds .dockerignore patterns (package inputs).
	Ignore []string
	// LargeContext and LargeFile are the sizes in bytes from which a code
	// build warns that its context is large (in total, or for one file),
	// naming the largest files and the .dockerignore lines that would leave
	// them out: the whole context is sent on every build. 0 means the
	// default (DefaultLargeContext, DefaultLargeFile), a negative size never
	// warns.
	LargeContext, LargeFile int64
	// CookedRepo is the registry repository of shared cooked images
	// (registry.go): a cook whose image the engine lacks pulls
	// <CookedRepo>:<hash16> when the registry holds it. "": none.
	CookedRepo string
	// PushCooked pushes every image a cook makes to CookedRepo.
	PushCooked bool
	// RegistryTimeout bounds a manifest check, and a pull or push that
	// makes no progress (0: DefaultRegistryTimeout).
	RegistryTimeout time.Duration
	// Pull is when the builder and runtime images are pulled ("":
	// PullMissing).
	Pull PullPolicy
	// Images are several service images made from one cook and one code
	// build (images.go); empty: the one image of Image, Tag, Bins,
	// Entrypoint and RuntimeImage.
	Images []ImageSpec
	// KeepImages is how many superseded final images of each image a
	// build leaves (for rollback); older ones are removed. 0 means
	// DefaultKeepImages, a negative number none.
	KeepImages int
}

// ImageSpec is one service image of a workspace.
type ImageSpec struct {
	Name, Tag    string // repository and tag
	Service      string // short name (the repository's last element)
	Bins         []string
	Entrypoint   string // "": none
	RuntimeImage string
}

// Ref is Name:Tag.
func (s ImageSpec) Ref() string { return s.Name + ":" + s.Tag }

// The defaults of Settings.LargeContext and Settings.LargeFile.
const (
	DefaultLargeContext = 100 << 20
	DefaultLargeFile    = 50 << 20
)

// SettingsOf takes the settings dockerctl needs out of cfg.
func SettingsOf(cfg configs.Config) Settings {
	return Settings{Image: cfg.Image, Tag: cfg.Tag, BuilderImage: cfg.BuilderImage, RuntimeImage: cfg.RuntimeImage,
		Bins: cfg.Bins, Entrypoint: cfg.EntrypointBin(), Ignore: cfg.Ignore,
		CookedRepo: cfg.CookedRepo, PushCooked: cfg.PushCooked, RegistryTimeout: cfg.RegistryTimeout.Duration,
		Pull: PullPolicy(cfg.Pull), Images: ImageSpecs(cfg.Images), KeepImages: keepImages(cfg.KeepImages)}
}

// DefaultKeepImages is the default of Settings.KeepImages.
const DefaultKeepImages = 2

func keepImages(n int) int {
	if n == 0 {
		return -1 // keep-images = 0: none
	}
	return n
}

// ImageSpecs converts [[image]] tables.
func ImageSpecs(imgs []configs.ImageConfig) []ImageSpec {
	var out []ImageSpec
	for _, im := range imgs {
		out = append(out, ImageSpec{Name: im.Name, Tag: im.Tag, Service: im.Service(), Bins: im.Bins,
			Entrypoint: im.EntrypointBin(), RuntimeImage: im.RuntimeImage})
	}
	return out
}
