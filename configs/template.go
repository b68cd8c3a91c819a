package configs

import (
	"fmt"
	"strconv"
	"strings"
)

// Template returns a commented chefd.toml for a workspace: every key with
// its default, and the binaries found in the workspace. With perImage (and
// more than one binary) the workspace ships one image per binary
// ([[image]] tables); otherwise one image ships them all, and a workspace
// with several binaries is offered the [[image]] tables in comments.
func Template(image string, bins []string, perImage bool) string {
	perImage = perImage && len(bins) > 1
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

%s
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

%s
# Watcher (chefd start): quiet period and maximum wait of the debounce.
# ignore: extra patterns (.dockerignore syntax) on top of .dockerignore, for
# the build context and the watcher alike (.gitignore does not count).
debounce = "100ms"
max-wait = "2s"
ignore = []

# How many cooked images garbage collection keeps, and how many superseded
# final images per image (for rollback; never one a container uses or one
# you tagged yourself).
keep-cooked = 3
keep-images = 2

# Cooked dependency images shared through a registry: a missing one is
# pulled from <cooked-repo>:<recipe hash 16> when the registry has it.
# push-cooked pushes every image a cook makes (a CI job on the main branch).
# cooked-repo = "registry.example.com/team/app-cooked"
# push-cooked = false
registry-timeout = "15s"
# When the builder and runtime images are pulled: "missing", "never" or
# "always" (as docker build --pull).
pull = "missing"

# The daemon's builds (saves, chefd build --wait) compile the workspace's own
# crates incrementally, at the same profile: seconds instead of a full crate
# compile. Images say which mode built them (label chefd.mode); chefd build
# without a daemon, --exact, --urgent and CI build exactly. Default: on,
# unless CI is set.
# loop = true
# A desktop notification when a build or cook the daemon ran on its own ends
# (D-Bus on Linux, the notification center on macOS).
# notify = false
# The daemon serves its dashboard (builds, timings, logs) on 127.0.0.1 while
# it runs; chefd ui prints its address. Without it, chefd ui serves one.
# dashboard = false
# A build or cook that prints nothing for this long is reported as possibly
# stuck (status, events, a notification).
stuck-after = "10m"
`, imageLines(image, perImage), binsLines(image, bins, quoted, entry, perImage))
	if perImage {
		// tables come after every top-level key
		b.WriteString("\n" + imageTables(image, bins, ""))
	}
	return b.String()
}

func imageLines(image string, perImage bool) string {
	if perImage {
		return `# Cooked dependency images are <workspace dir>-cooked:<first 16 hex digits
# of the recipe hash>; the service images are the [[image]] tables below.
# tag is the default tag of every image.
tag = "dev"
`
	}
	return fmt.Sprintf(`# Final image repository; the image is <image>:<tag>, and cooked dependency
# images are <image>-cooked:<first 16 hex digits of the recipe hash>.
image = %q
tag = "dev"
`, image)
}

// binsLines: one image shipping every binary, or an [[image]] table per
// binary (active with perImage, offered in comments otherwise).
func binsLines(image string, bins, quoted []string, entry string, perImage bool) string {
	var b strings.Builder
	if !perImage {
		fmt.Fprintf(&b, `# Binaries shipped in the image (found in this workspace). The recipe then
# holds only the crates they need. Empty: the whole workspace.
bins = [%s]
# entrypoint = %q                        # default: the first of bins
`, strings.Join(quoted, ", "), entry)
	}
	if len(bins) < 2 {
		return b.String()
	}
	if perImage {
		b.WriteString("# Binaries: one image per service, in the [[image]] tables at the end.\n")
		return b.String()
	}
	b.WriteString("\n# Or one image per binary (chefd init --images writes these; [[image]] tables\n" +
		"# go at the end of the file): one cook and one code build make them all, and\n" +
		"# an image whose binaries did not change keeps its ID. Remove bins and\n" +
		"# entrypoint above when you use them.\n")
	b.WriteString(imageTables(image, bins, "# "))
	return b.String()
}

// imageTables are an [[image]] table per binary, each line prefixed.
func imageTables(image string, bins []string, prefix string) string {
	var b strings.Builder
	if prefix == "" {
		b.WriteString("# One image per service: one cook and one code build make them all, and an\n" +
			"# image whose binaries did not change keeps its ID. Keys of each: name\n" +
			"# (repository), bins, entrypoint, tag and runtime-image (default: the\n" +
			"# top-level ones).\n")
	}
	for _, bin := range bins {
		fmt.Fprintf(&b, "%s[[image]]\n%sname = %q\n%sbins = [%q]\n", prefix, prefix, DefaultImageName(image+"-"+bin), prefix, bin)
	}
	return b.String()
}
