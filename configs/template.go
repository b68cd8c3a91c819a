package configs

import (
	"fmt"
	"strconv"
	"strings"
)

// Template returns a commented chefd.toml for a workspace: every key with
// its default, and the binaries found in the workspace.
func Template(image string, bins []string) string {
	quoted := make([]string, len(bins))
	for i, b := range bins {
		quoted[i] = strconv.Quote(b)
	}
	entry := ""
	if len(bins) > 0 {
		entry = bins[0]
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# chefd.toml: how chefd builds this workspace into a Docker image.
# Every key is optional; the value shown is the default unless noted.

# Final image repository; the image is <image>:<tag>, and cooked dependency
# images are <image>-cooked:<first 16 hex digits of the recipe hash>.
image = %q
tag = "dev"

# Image with cargo and rustc (cook and code build run in it), and the base of
# the final image ("scratch" works for static binaries).
builder-image = "rust:1-bookworm"
runtime-image = "debian:bookworm-slim"

# Build intent: identical for cook and code build, and part of the recipe hash.
profile = "release"
features = []
no-default-features = false
# target = "x86_64-unknown-linux-gnu"     # default: the builder's host
# rustflags = "-C target-feature=+crt-static"

# Binaries shipped in the image (found in this workspace). The recipe then
# holds only the crates they need. Empty: the whole workspace.
bins = [%s]
# entrypoint = %q                        # default: the first of bins

# Watcher (chefd start): quiet period and maximum wait of the debounce.
# ignore: extra patterns (.dockerignore syntax) on top of .dockerignore, for
# the build context and the watcher alike (.gitignore does not count).
debounce = "100ms"
max-wait = "2s"
ignore = []

# How many cooked images garbage collection keeps.
keep-cooked = 3

# The daemon's builds (saves, chefd build --wait) compile the workspace's own
# crates incrementally, at the same profile: seconds instead of a full crate
# compile. Images say which mode built them (label chefd.mode); chefd build
# without a daemon, --exact, --urgent and CI build exactly. Default: on,
# unless CI is set.
# loop = true
`, image, strings.Join(quoted, ", "), entry)
	return b.String()
}
