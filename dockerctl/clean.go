package dockerctl

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/chefd/chefd/recipe"
)

// The shell of the cook's cleanup and of the copy of the shipped binaries.
// Both are one compound command whose lists (packages, names, binaries)
// hold one item a line, the lines joined with backslash-newline: short
// lines however large the workspace, the same text in a script file (the
// cook and code steps) and in a RUN instruction of the standalone
// Dockerfile, and no comment or empty line a Dockerfile would drop.

// contIndent indents the continuation lines of a generated command.
const contIndent = "    "

// shLines joins lines into one command: backslash-newline between them.
func shLines(lines ...string) string { return strings.Join(lines, " \\\n") }

// shItems are items quoted for sh, one a line, under indent.
func shItems(indent string, items []string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = indent + shQuote(it)
	}
	return out
}

// profileDirs are the directories under targetDir holding the profile's
// artifacts: host, and any target triple (an explicit --target, or one set
// by build.target in the cargo config or CARGO_BUILD_TARGET in the builder
// image). Shell globs.
func profileDirs(r *recipe.Recipe, targetDir string) []string {
	p := r.Intent.ProfileDir()
	return []string{path.Join(targetDir, p), path.Join(targetDir, "*", p)}
}

// binDirs are where a binary may land, most specific first. Shell globs.
func binDirs(r *recipe.Recipe, targetDir string) []string {
	if t := r.Intent.Target; t != "" {
		return []string{path.Join(targetDir, strings.TrimSuffix(path.Base(t), ".json"), r.Intent.ProfileDir())}
	}
	return profileDirs(r, targetDir)
}

// copyBins is the shell that copies the shipped binaries into out, with a
// clear message when one was not built.
func copyBins(r *recipe.Recipe, targetDir, out string, bins []string) string {
	lines := []string{fmt.Sprintf("rm -rf %s && mkdir -p %s", out, out)}
	if len(bins) == 0 {
		return lines[0]
	}
	lines = append(lines, "&& for b in")
	lines = append(lines, shItems(contIndent, bins)...)
	lines = append(lines,
		"  ; do",
		fmt.Sprintf("    for f in %s; do", strings.Join(globArgs(binDirs(r, targetDir), `"$b"`), " ")),
		fmt.Sprintf(`      if [ -f "$f" ]; then cp "$f" %s/; break; fi;`, out),
		"    done;",
		fmt.Sprintf(`    [ -f %s/"$b" ] || { echo "chefd: binary $b was not built (check bins and required-features in chefd.toml)" >&2; exit 1; };`, out),
		"  done")
	return shLines(lines...)
}

// globArgs appends suffix (shell text) to each directory glob.
func globArgs(dirs []string, suffix string) []string {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = d + "/" + suffix
	}
	return out
}

// cleanLocal removes every artifact of the local crates' dummy sources
// from targetDir (the one CARGO_TARGET_DIR names) after cook: cargo's own `clean -p` (exact packages, host
// and target layouts) and then, for names no third-party package shares,
// any fingerprint, dep-info, library, binary or build-script output left.
// A dummy can then never be mistaken for a real build.
func cleanLocal(r *recipe.Recipe, targetDir string) string {
	args := cleanArgs(r)
	var pkgs []string
	names := map[string]bool{}
	for _, m := range r.Manifests {
		if m.Package == "" {
			continue
		}
		// cargo clean ignores version qualifiers: plain names.
		pkgs = append(pkgs, m.Package)
		names[strings.ReplaceAll(m.Package, "-", "_")] = true
		names[m.Package] = true
		for _, t := range m.Targets {
			if t.Kind != recipe.KindBuildScript {
				names[strings.ReplaceAll(t.Name, "-", "_")] = true
				names[t.Name] = true
			}
		}
	}
	if len(pkgs) == 0 {
		return "true"
	}
	sort.Strings(pkgs)
	// cargo clean -p refuses unknown specs (an unused [patch] crate):
	// never fail the cook for it; the removal by name below, and the code
	// build touching every file of a fresh target cache, still hold.
	lines := []string{"{ " + shJoin(args)}
	for _, p := range pkgs {
		lines = append(lines, contIndent+"-p "+shQuote(p))
	}
	lines = append(lines, "  || echo 'chefd: cargo clean -p failed; removing local artifacts by name' >&2; }")
	// Names also used by third-party packages stay to cargo clean -p alone.
	external := externalNames(r)
	var keys []string
	for n := range names {
		if !external[n] {
			keys = append(keys, n)
		}
	}
	if len(keys) == 0 {
		return shLines(lines...)
	}
	sort.Strings(keys)
	lines = append(lines, "&& for n in")
	lines = append(lines, shItems(contIndent, keys)...)
	lines = append(lines,
		"  ; do",
		"    for d in "+strings.Join(profileDirs(r, targetDir), " ")+"; do",
		`      rm -rf "$d/.fingerprint/$n-"* "$d/build/$n-"* "$d/deps/$n-"* "$d/deps/lib$n-"* "$d/deps/lib$n."*`,
		`        "$d/incremental/$n-"* "$d/$n" "$d/$n.d" "$d/lib$n."* "$d/examples/$n-"* "$d/examples/$n";`,
		"    done;",
		"  done")
	return shLines(lines...)
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
