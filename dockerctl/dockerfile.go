package dockerctl

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/chefd/chefd/recipe"
)

// Container paths. The workspace sits at /src/<WorkspaceDir> for cook and
// code build alike, so cargo's absolute paths match.
const (
	srcRoot   = "/src"
	cargoHome = "/usr/local/cargo"
	outDir    = "/chefd-out"
	stepDir   = "/run/chefd" // the code step's files (bind mount of chefd/)
	// markers in RUN commands, to find the steps in the build trace
	cookMarker = "CHEFD_STEP=cook"
	codeMarker = "CHEFD_STEP=code"
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
func workdir(r *recipe.Recipe) string { return path.Join(srcRoot, r.WorkspaceDir) }

// cargoBuild is the cargo command of cook and code build: identical flags
// (profile, features, target, bins), so third-party fingerprints match.
func cargoBuild(r *recipe.Recipe, locked bool) string {
	args := append([]string{"cargo"}, r.Intent.CargoArgs()...)
	if locked {
		args = append(args, "--locked")
	}
	return shJoin(args)
}

// profileDirs are the target/ subdirectories holding the profile's
// artifacts: host, and any target triple (an explicit --target, or one set
// by build.target in the cargo config or CARGO_BUILD_TARGET in the builder
// image). Shell globs.
func profileDirs(r *recipe.Recipe) []string {
	p := r.Intent.ProfileDir()
	return []string{path.Join("target", p), path.Join("target", "*", p)}
}

// binCandidates are where a binary may land, most specific first.
func binCandidates(r *recipe.Recipe, targetDir, bin string) []string {
	p := r.Intent.ProfileDir()
	var c []string
	if t := r.Intent.Target; t != "" {
		c = append(c, path.Join(targetDir, strings.TrimSuffix(path.Base(t), ".json"), p, bin))
	} else {
		c = append(c, path.Join(targetDir, p, bin), path.Join(targetDir, "*", p, bin))
	}
	return c
}

// copyBins is the shell that copies the shipped binaries into out, with a
// clear message when one was not built.
func copyBins(r *recipe.Recipe, targetDir, out string, bins []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rm -rf %s && mkdir -p %s", out, out)
	for _, bin := range bins {
		cands := binCandidates(r, targetDir, bin)
		fmt.Fprintf(&b, " && { for f in %s; do if [ -f \"$f\" ]; then cp \"$f\" %s/; break; fi; done; "+
			"[ -f %s/%s ] || { echo \"chefd: binary %s was not built (check bins and required-features in chefd.toml)\" >&2; exit 1; }; }",
			strings.Join(cands, " "), out, out, shQuote(bin), bin)
	}
	return b.String()
}

// cleanLocal removes every artifact of the local crates' dummy sources
// after cook: cargo's own `clean -p` (exact packages, host and target
// layouts) and then, for names no third-party package shares, any
// fingerprint, dep-info, library, binary or build-script output left.
// A dummy can then never be mistaken for a real build.
func cleanLocal(r *recipe.Recipe) string {
	args := []string{"cargo", "clean"}
	switch r.Intent.Profile {
	case "release":
		args = append(args, "--release")
	case "dev", "debug", "":
	default:
		args = append(args, "--profile", r.Intent.Profile)
	}
	if r.Intent.Target != "" {
		args = append(args, "--target", r.Intent.Target)
	}
	names := map[string]bool{}
	for _, m := range r.Manifests {
		if m.Package == "" {
			continue
		}
		// cargo clean ignores version qualifiers: plain names.
		args = append(args, "-p", m.Package)
		names[strings.ReplaceAll(m.Package, "-", "_")] = true
		names[m.Package] = true
		for _, t := range m.Targets {
			if t.Kind != recipe.KindBuildScript {
				names[strings.ReplaceAll(t.Name, "-", "_")] = true
				names[t.Name] = true
			}
		}
	}
	if len(names) == 0 {
		return "true"
	}
	// Names also used by third-party packages stay to cargo clean -p alone.
	external := externalNames(r)
	var globs []string
	keys := make([]string, 0, len(names))
	for n := range names {
		keys = append(keys, n)
	}
	sort.Strings(keys)
	for _, d := range profileDirs(r) {
		for _, n := range keys {
			if external[n] {
				continue
			}
			for _, g := range []string{".fingerprint/" + n + "-*", "build/" + n + "-*", "deps/" + n + "-*", "deps/lib" + n + "-*",
				"deps/lib" + n + ".*", "incremental/" + n + "-*", n, n + ".d", "lib" + n + ".*", "examples/" + n + "-*", "examples/" + n} {
				globs = append(globs, d+"/"+g)
			}
		}
	}
	// cargo clean -p refuses unknown specs (an unused [patch] crate):
	// never fail the cook for it; the removal by name below, and the code
	// build touching every file of a fresh target cache, still hold.
	cmd := "{ " + shJoin(args) + " || echo 'chefd: cargo clean -p failed; removing local artifacts by name' >&2; }"
	if len(globs) > 0 {
		cmd += " && rm -rf " + strings.Join(globs, " ")
	}
	return cmd
}

// externalNames lists package names of third-party packages (with `-` and
// `_` spellings) from the lockfile.
func externalNames(r *recipe.Recipe) map[string]bool {
	out := map[string]bool{}
	if r.LockFile == nil {
		return out
	}
	var name string
	for _, line := range strings.Split(r.LockFile.Contents, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "[[package]]":
			name = ""
		case strings.HasPrefix(line, "name = "):
			name = strings.Trim(strings.TrimPrefix(line, "name = "), `"`)
		case strings.HasPrefix(line, "source = ") && name != "":
			out[name] = true
			out[strings.ReplaceAll(name, "-", "_")] = true
		}
	}
	return out
}

// cacheMounts are cargo's registry and git caches, shared by every build
// on the engine (cargo locks them itself).
func cacheMounts() string {
	return fmt.Sprintf("--mount=type=cache,id=chefd-cargo-registry,target=%s/registry "+
		"--mount=type=cache,id=chefd-cargo-git,target=%s/git", cargoHome, cargoHome)
}

// envLines sets the build environment shared by cook and code build.
func envLines(r *recipe.Recipe) string {
	var b strings.Builder
	b.WriteString("ENV CARGO_TERM_COLOR=never CARGO_TERM_PROGRESS_WHEN=never CARGO_INCREMENTAL=0")
	// The target dir is fixed (a build.target-dir in the cargo config
	// would move the artifacts away from chefd's cache and cleanup).
	fmt.Fprintf(&b, " CARGO_TARGET_DIR=%s/target", workdir(r))
	if r.Intent.RustFlags != "" {
		fmt.Fprintf(&b, " RUSTFLAGS=%s", dockerQuote(r.Intent.RustFlags))
	}
	b.WriteString("\n")
	return b.String()
}

// dockerQuote quotes a value for an ENV/LABEL instruction.
func dockerQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// lockedCook: --locked for the cook when the skeleton carries the full
// lockfile (with --bin filtering cargo may drop unreachable entries).
func lockedCook(r *recipe.Recipe) bool { return r.LockFile != nil && len(r.Intent.Bins) == 0 }

// cookDockerfile builds the cooked image from the skeleton (context:
// skeleton/ holds the skeleton tree rooted at the context root).
func cookDockerfile(r *recipe.Recipe) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ARG BUILDER\nFROM ${BUILDER}\n")
	b.WriteString(envLines(r))
	fmt.Fprintf(&b, "WORKDIR %s\n", workdir(r))
	fmt.Fprintf(&b, "COPY skeleton/ %s/\n", srcRoot)
	fmt.Fprintf(&b, "RUN %s %s sh -ec %s\n", cacheMounts(), cookMarker,
		shQuote(cargoBuild(r, lockedCook(r))+" && "+cleanLocal(r)))
	return b.String()
}

// codeScript is the code step: stamp the sources (stamp.sh), build, mark
// the cache as matching the sources, copy the shipped binaries out.
func codeScript(r *recipe.Recipe, bins []string, reset bool) string {
	wd := workdir(r)
	var b strings.Builder
	b.WriteString("# chefd code step (generated)\nset -e\n")
	fmt.Fprintf(&b, "export CHEFD_SRC=%s CHEFD_TARGET=%s CHEFD_LIST=%s CHEFD_ALWAYS=%s\n",
		srcRoot, shQuote(wd+"/target"), stepDir+"/sources", stepDir+"/always")
	if reset {
		b.WriteString("export CHEFD_RESET=1\n")
	}
	fmt.Fprintf(&b, "sh %s/stamp.sh begin\n", stepDir)
	fmt.Fprintf(&b, "cd %s\n", shQuote(wd))
	b.WriteString(cargoBuild(r, r.LockFile != nil) + "\n")
	fmt.Fprintf(&b, "sh %s/stamp.sh commit\n", stepDir)
	b.WriteString(copyBins(r, "target", outDir, bins) + "\n")
	return b.String()
}

// codeDockerfile builds the real code on the cooked image, with the
// target dir on a cache mount seeded from the cooked image (its sources
// stamped by stamp.sh, see sources.go), then the runtime image with only
// the shipped binaries. The step's files (script, source list) come in on
// a bind mount of the context's chefd/ directory.
func codeDockerfile(r *recipe.Recipe, targetCache, runtime string, entrypoint string) string {
	wd := workdir(r)
	var b strings.Builder
	b.WriteString("ARG COOKED\nFROM ${COOKED} AS cooked\nFROM ${COOKED} AS build\n")
	fmt.Fprintf(&b, "COPY src/ %s/\n", srcRoot)
	// The cache id is repeated in the command so that GC can find the cache
	// mount's record: BuildKit's record describes the command, not the id.
	fmt.Fprintf(&b, "RUN %s --mount=type=cache,id=%s,target=%s/target,from=cooked,source=%s/target,sharing=locked "+
		"--mount=type=bind,source=chefd,target=%s %s %s%s sh %s/code.sh\n",
		cacheMounts(), targetCache, wd, wd, stepDir, codeMarker, cacheMarker, targetCache, stepDir)
	fmt.Fprintf(&b, "FROM %s\n", runtime)
	fmt.Fprintf(&b, "COPY --from=build %s/ /usr/local/bin/\n", outDir)
	if entrypoint != "" {
		fmt.Fprintf(&b, "ENTRYPOINT [%q]\n", "/usr/local/bin/"+entrypoint)
	}
	return b.String()
}
