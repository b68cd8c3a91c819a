package dockerctl

import (
	"fmt"
	"path"
	"strings"

	"github.com/chefd/chefd/recipe"
)

// Container paths. The workspace sits at /src/<WorkspaceDir> for cook and
// code build alike, so cargo's absolute paths match.
const (
	srcRoot   = "/src"
	cargoHome = "/usr/local/cargo"
	outDir    = "/chefd-out"
	stepDir   = "/run/chefd" // the cook and code steps' files (bind mount of chefd/)
	// cacheMarker precedes the target cache's id in the code step's command.
	cacheMarker = "CHEFD_CACHE="
)

// shQuote quotes s for /bin/sh.
func shQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shQuote(a)
	}
	return strings.Join(q, " ")
}

// workdir is the workspace directory in the container.
func workdir(r *recipe.Recipe) string { return path.Join(srcRootOf(r), r.WorkspaceDir) }

// cargoBuild is the cargo command of cook and code build: identical flags
// (profile, features, target, bins), so third-party fingerprints match.
// A long command is wrapped (backslash-newline), a flag with its value.
func cargoBuild(r *recipe.Recipe, locked bool) string {
	args := r.Intent.CargoArgs()
	if locked {
		args = append(args, "--locked")
	}
	line := "cargo"
	var lines []string
	for i := 0; i < len(args); i++ {
		w := shQuote(args[i])
		if strings.HasPrefix(args[i], "--") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++
			w += " " + shQuote(args[i])
		}
		if len(line)+1+len(w) > 100 && line != contIndent {
			lines = append(lines, line)
			line = contIndent
		}
		if line != contIndent {
			line += " "
		}
		line += w
	}
	return shLines(append(lines, line)...)
}

// cacheMounts are cargo's registry and git caches, shared by every build
// on the engine (cargo locks them itself), one a line.
func cacheMounts() string {
	return fmt.Sprintf("--mount=type=cache,id=chefd-cargo-registry,target=%s/registry \\\n"+
		"    --mount=type=cache,id=chefd-cargo-git,target=%s/git", cargoHome, cargoHome)
}

// envLines sets the build environment shared by cook and code build, one
// variable a line.
func envLines(r *recipe.Recipe) string {
	vars := []string{"CARGO_TERM_COLOR=never", "CARGO_TERM_PROGRESS_WHEN=never", "CARGO_INCREMENTAL=0",
		// The target dir is fixed (a build.target-dir in the cargo config
		// would move the artifacts away from chefd's cache and cleanup).
		fmt.Sprintf("CARGO_TARGET_DIR=%s/target", workdir(r))}
	if r.Intent.RustFlags != "" {
		vars = append(vars, "RUSTFLAGS="+dockerQuote(r.Intent.RustFlags))
	}
	return "ENV " + strings.Join(vars, " \\\n    ") + "\n"
}

// dockerQuote quotes a value for an ENV/LABEL instruction.
func dockerQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// lockedCook: --locked for the cook when the skeleton carries the full
// lockfile (with --bin filtering cargo may drop unreachable entries).
func lockedCook(r *recipe.Recipe) bool { return r.LockFile != nil && len(r.Intent.Bins) == 0 }

// cookVendorDir holds the vendored directory sources in the cook's
// context (mountVendor): they are bind-mounted into the cook step, not
// copied into the image.
const cookVendorDir = "vendor"

// mountVendor: the cook reads the vendored crates from mounts at their own
// paths (the vendor caches of vendorcache.go, or else bind mounts of the
// context) instead of a COPY into the image: the copy
// took 1.4 s for a 67 MB vendor tree on every cook, and each cooked image
// carried a layer of it (the code build ships the vendored sources with
// the rest of the workspace). Third-party fingerprints do not depend on
// where the sources came from, only on their path, version and features.
// The mounts are used only when every vendor directory lies inside the
// context root, neither is inside another nor inside the target directory;
// otherwise the vendored sources are copied with the skeleton, as before.
func mountVendor(r *recipe.Recipe) bool {
	target := path.Join(r.WorkspaceDir, "target")
	for i, v := range r.VendorDirs {
		if v == "." || v == "" || v == ".." || strings.HasPrefix(v, "../") || path.IsAbs(v) || under(v, target) {
			return false
		}
		for j, o := range r.VendorDirs {
			if i != j && under(v, o) {
				return false
			}
		}
	}
	return true
}

// under: slash path p is dir or inside it.
func under(p, dir string) bool {
	p, dir = path.Clean(p), path.Clean(dir)
	return p == dir || dir == "." || strings.HasPrefix(p, dir+"/")
}

// cookDockerfile builds the cooked image from the skeleton (context:
// skeleton/ holds the skeleton tree rooted at the context root, chefd/ the
// step's files, cookScript and vendor.sums, vendor/ the vendored crates
// when mountVendor). The script comes in on a bind
// mount: however many crates the cleanup names, the Dockerfile stays a few
// short lines. The cook runs in the build stage with its target directory
// on the cook cache (deltacook.go); the cooked image is the copy of this
// cook's third-party artifacts alone.
//
// With vendor caches (dirs, vendorcache.go) the vendored sources are their
// cache mounts; without, bind mounts of the context (mountVendor) or part
// of the skeleton.
//
// With a seed (deltacook.go), its image's target directory is mounted at
// seedMount for the step (build argument SEED).
//
// With a base (layered, deltalayer.go: build argument PREV), the image is
// a layer on it, and the tool stage builds the layer tool.
func cookDockerfile(r *recipe.Recipe, cookCache string, dirs []*vendorDir, seed *cookSeed, layered bool) string {
	wd := workdir(r)
	var b strings.Builder
	seedLine := ""
	// the ARGs of FROM lines come before the first FROM
	b.WriteString("ARG BUILDER\n")
	if layered {
		b.WriteString("ARG PREV\n")
	}
	if seed != nil && seed.Ref != "" {
		fmt.Fprintf(&b, "ARG SEED\nFROM ${SEED} AS seed\n")
		seedLine = fmt.Sprintf("    --mount=type=bind,from=seed,source=%s/target,target=%s \\\n", wd, seedMount)
	}
	if layered {
		fmt.Fprintf(&b, "FROM ${PREV} AS chefd-prev\nFROM ${BUILDER} AS chefd-tool\n")
		fmt.Fprintf(&b, "RUN --mount=type=bind,source=%s,target=%s %s sh %s/build.sh\n", layerToolDir, layerToolRun, toolMarker, layerToolRun)
		seedLine += fmt.Sprintf("    --mount=type=bind,from=chefd-prev,target=%s \\\n", prevMount)
	}
	fmt.Fprintf(&b, "FROM ${BUILDER} AS cook\n")
	b.WriteString(envLines(r))
	fmt.Fprintf(&b, "WORKDIR %s\n", wd)
	fmt.Fprintf(&b, "COPY skeleton/ %s/\n", srcRootOf(r))
	vendor := vendorMounts(r, dirs)
	if dirs == nil && mountVendor(r) {
		for _, v := range r.VendorDirs {
			vendor += fmt.Sprintf("    --mount=type=bind,source=%s,target=%s \\\n",
				path.Join(cookVendorDir, v), path.Join(srcRootOf(r), v))
		}
	}
	fmt.Fprintf(&b, "RUN %s \\\n    --mount=type=cache,id=%s,target=%s/target,sharing=locked \\\n"+
		"    --mount=type=bind,source=chefd,target=%s \\\n%s%s    %s %s%s sh %s/cook.sh\n",
		cacheMounts(), cookCache, wd, stepDir, seedLine, vendor, cookMarker, cookCacheMarker, cookCache, stepDir)
	// The cooked image is the artifacts alone (and the lockfile cargo
	// wrote when the workspace has none), not a layer on the builder: the
	// code build runs in the builder image with them (codeDockerfile), and
	// a cooked image shared through a registry moves only them (pulling
	// one that carried the builder downloaded the builder's layers again:
	// an engine cannot tell they are the ones it holds).
	if layered {
		b.WriteString(layerStages(r))
		return b.String()
	}
	fmt.Fprintf(&b, "FROM scratch\n")
	if r.LockFile == nil {
		fmt.Fprintf(&b, "COPY --from=cook %s/Cargo.lock %s/Cargo.lock\n", wd, wd)
	}
	fmt.Fprintf(&b, "COPY --from=cook %s/ %s/target/\n", cookedOut, wd)
	return b.String()
}

// codeScript is the code step: stamp the sources (stamp.sh), build, mark
// the cache as matching the sources, copy the shipped binaries out.
//
// In ModeLoop cargo compiles the workspace's own crates incrementally
// (CARGO_INCREMENTAL=1 overrides the profile; cargo never applies it to a
// crate that is not a path package), with rustc's incremental state in the
// target cache next to the artifacts.
//
// With sums the step also writes the binaries' SHA-256 sums (sumsFile).
func codeScript(r *recipe.Recipe, bins []string, reset bool, mode Mode, sums bool) string {
	wd := workdir(r)
	var b strings.Builder
	b.WriteString("# chefd code step (generated)\nset -e\n")
	if mode == ModeLoop {
		b.WriteString("export CARGO_INCREMENTAL=1\n")
	}
	fmt.Fprintf(&b, "export CHEFD_SRC=%s CHEFD_TARGET=%s CHEFD_LIST=%s CHEFD_ALWAYS=%s\n",
		shQuote(srcRootOf(r)), shQuote(wd+"/target"), stepDir+"/sources", stepDir+"/always")
	if reset {
		b.WriteString("export CHEFD_RESET=1\n")
	}
	b.WriteString(echoSubStep(titleCodeStamp) + "\n")
	fmt.Fprintf(&b, "sh %s/stamp.sh begin\n", stepDir)
	fmt.Fprintf(&b, "cd %s\n", shQuote(wd))
	b.WriteString(echoSubStep(titleCodeBuild) + "\n")
	if mode == ModeLoop {
		b.WriteString(incrementalRetry(cargoBuild(r, r.LockFile != nil)))
	} else {
		b.WriteString(cargoBuild(r, r.LockFile != nil) + "\n")
	}
	fmt.Fprintf(&b, "sh %s/stamp.sh commit\n", stepDir)
	b.WriteString(echoSubStep(titleCodeCopy) + "\n")
	b.WriteString(copyBins(r, "target", outDir, bins) + "\n")
	if sums {
		fmt.Fprintf(&b, "(cd %s && sha256sum -- *) > %s/%s\n", outDir, outDir, sumsFile)
		// the sums in the log too: no container to read them when this step ran
		fmt.Fprintf(&b, "sed 's/^/%s/' %s/%s\n", sumLinePrefix, outDir, sumsFile)
	}
	return b.String()
}

// incrementalRetry runs the loop mode's cargo build (cargo) with its
// stderr also kept in a file; when it fails at the link because rustc's
// incremental state of a workspace crate is inconsistent (promoted
// "anon.*.llvm.*" symbols missing: rust-lang/rust#81280, open; the link
// of a crate whose sources did not change can hit it), the incremental
// state goes and cargo runs once more. Any other failure is cargo's, as
// it is.
func incrementalRetry(cargo string) string {
	return `{ { rc=0; ` + cargo + ` || rc=$?; echo "$rc" >/tmp/chefd-cargo.rc; } 2>&1 1>&3 | tee /tmp/chefd-cargo.err >&2; } 3>&1
rc=$(cat /tmp/chefd-cargo.rc)
if [ "$rc" != 0 ] && grep -q -e 'undefined reference to .anon\.' -e 'hidden symbol .anon\.[^ ]*\.llvm\.' /tmp/chefd-cargo.err; then
  echo "chefd: the link failed on rustc's incremental state (rust-lang/rust#81280); building again without it" >&2
  rm -rf target/*/incremental target/*/*/incremental
  ` + cargo + `
  rc=0
fi
rm -f /tmp/chefd-cargo.rc /tmp/chefd-cargo.err
[ "$rc" = 0 ] || exit "$rc"
`
}

// codeDockerfile builds the real code in the builder image (the one the
// cooked image was cooked with: the cook key says so), with the target
// dir on a cache mount seeded from the cooked image (its sources stamped
// by stamp.sh, see sources.go), then the runtime image with only the
// shipped binaries. The step's files (script, source list) come in on a
// bind mount of the context's chefd/ directory.
func codeDockerfile(r *recipe.Recipe, targetCache, runtime string, entrypoint string) string {
	var b strings.Builder
	b.WriteString(codeStages(r, targetCache))
	fmt.Fprintf(&b, "FROM %s\n", runtime)
	fmt.Fprintf(&b, "COPY --from=build %s/ /usr/local/bin/\n", outDir)
	if entrypoint != "" {
		fmt.Fprintf(&b, "ENTRYPOINT [%q]\n", "/usr/local/bin/"+entrypoint)
	}
	return b.String()
}

// binsDockerfile is the code build of several images (images.go): the
// same stages, and a final stage of the shipped binaries alone (and their
// checksums, sumsFile), from which each service image is made.
func binsDockerfile(r *recipe.Recipe, targetCache string) string {
	return codeStages(r, targetCache) + fmt.Sprintf("FROM scratch\nCOPY --from=build %s/ /\n", outDir)
}

// serviceDockerfile makes one service image from the binaries image
// (build arg BINS): its runtime base, its binaries, its entrypoint.
func serviceDockerfile(runtime string, bins []string, entrypoint string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ARG BINS\nFROM ${BINS} AS bins\nFROM %s\n", runtime)
	for _, bin := range bins {
		fmt.Fprintf(&b, "COPY --from=bins /%s /usr/local/bin/%s\n", bin, bin)
	}
	if entrypoint != "" {
		fmt.Fprintf(&b, "ENTRYPOINT [%q]\n", "/usr/local/bin/"+entrypoint)
	}
	return b.String()
}

// codeStages are the cooked and build stages of the code build.
func codeStages(r *recipe.Recipe, targetCache string) string {
	wd := workdir(r)
	var b strings.Builder
	b.WriteString("ARG COOKED\nARG BUILDER\nFROM ${COOKED} AS cooked\nFROM ${BUILDER} AS build\n")
	b.WriteString(envLines(r))
	fmt.Fprintf(&b, "WORKDIR %s\n", wd)
	if r.LockFile == nil {
		fmt.Fprintf(&b, "COPY --from=cooked %s/Cargo.lock %s/Cargo.lock\n", wd, wd)
	}
	fmt.Fprintf(&b, "COPY src/ %s/\n", srcRootOf(r))
	// The cache id is repeated in the command so that GC can find the cache
	// mount's record: BuildKit's record describes the command, not the id.
	fmt.Fprintf(&b, "RUN %s \\\n    --mount=type=cache,id=%s,target=%s/target,from=cooked,source=%s/target,sharing=locked \\\n"+
		"    --mount=type=bind,source=chefd,target=%s \\\n    %s %s%s sh %s/code.sh\n",
		cacheMounts(), targetCache, wd, wd, stepDir, codeMarker, cacheMarker, targetCache, stepDir)
	return b.String()
}
