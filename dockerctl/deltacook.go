package dockerctl

// Delta cooks. A cook runs cargo in a target directory that outlives it:
// a BuildKit cache mount, one per *cook key* (builder image ID, build
// intent, workspace path in the container, cargo config and toolchain
// file), shared by every workspace on the engine with that key. The cache
// holds the third-party artifacts of the last cooks of that key (the units
// of the last cookCacheKeep recipes), so a new recipe's cook starts from
// them and cargo's own fingerprints decide what to compile: a new, bumped
// or re-featured crate and its dependents, nothing else. Third-party
// artifacts are named by a hash of everything that makes them (package ID,
// version, source, features, profile, rustc, dependencies), so an artifact
// of another recipe is never taken for one of this recipe; it is only ever
// left unused.
//
// The cooked image holds exactly this cook's third-party artifacts: cargo
// lists every unit of the build, fresh or compiled (--message-format=json,
// one compiler-artifact message a unit, one build-script-executed a build
// script run), each unit's files carry its hash (deps/libfoo-<hash>.rlib,
// build/foo-<hash>/, .fingerprint/foo-<hash>/), and the step copies the
// entries whose hash is one of a third-party unit's into the image, then
// removes from the cache every entry no unit of the last cookCacheKeep
// recipes has (what older recipes left, the local crates' dummies). The
// image's size is that of a from-scratch cook, whatever came before: it is
// one copy of the artifacts alone (FROM scratch), never a layer on an
// earlier cooked image.
//
// What cargo does not see, the step handles:
//   - a vendored crate changed in place (same name and version, new
//     content; cargo does not look at a registry crate's files once built):
//     the cache keeps the digest of every vendored crate's checksum file it
//     built from, written before cargo runs, and a crate whose digest
//     differs is removed (cargo clean -p) first; its dependents follow by
//     cargo's rules. When that fails the cache is emptied;
//   - an interrupted cook: its local dummies' artifacts are removed before
//     the next one (a dummy is never shipped anyway);
//   - --no-cache: the cache is emptied first.
//
// With a cooked repository (registry.go), an empty cook cache (a new
// machine or CI runner, a pruned cache, an engine that only pulled cooked
// images) is filled from a *seed image* before cargo runs: the
// repository's moving tag of the cook key (seed-<key>, pushed with every
// cooked image). The cook step says when it finds its cache empty and
// stops before anything else (seedWanted); chefd then pulls the seed and
// runs the step again with it, so a warm cache costs no pull. A seed holds
// one recipe's third-party artifacts and the digests of the vendored
// crates it built them from (.chefd-cook-vendor), so the steps above apply
// to it as to any cache; one without that record has every vendored
// crate's artifacts removed. Without a repository, or when it holds no
// seed of the key, an empty cache cooks from nothing.
// A cache that holds anything is never touched by a seed.
// Everything else that decides a third-party artifact (rustc, the builder
// image's crate sources and libraries, RUSTFLAGS, profile, target, cargo
// config) is in the key, so a cache never serves another of those.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/chefd/chefd/recipe"
)

const (
	// cookedOut is where the cook step copies the cooked target directory
	// (the cook's target directory is the cache mount).
	cookedOut = "/chefd-cooked/target"
	// cookCacheMarker precedes the cook cache's id in the cook step's
	// command, for GC (as cacheMarker does for code builds).
	cookCacheMarker = "CHEFD_COOKCACHE="
	// cookSeedLine starts the cook step's line naming its seed.
	cookSeedLine = "chefd: cook seeded from "
	// cookColdLine starts the cook step's line saying it has no seed.
	cookColdLine = "chefd: cook from nothing"
	// labelCookKey labels a cooked image with its cook key.
	labelCookKey = "chefd.cook-key"
	// seedMount is where the cook step sees the seed image's target
	// directory.
	seedMount = "/chefd-seed"
	// cookVendorRecord is the cache's (and a cooked image's) record of
	// the vendored crates' digests its artifacts were built from.
	cookVendorRecord = ".chefd-cook-vendor"
	// seedFilled is the cook step's line saying the seed image filled the
	// cook cache.
	seedFilled = "chefd: the cook cache was empty: filled from the seed image"
	// seedWanted is the cook step's line when it finds its cache empty
	// and stops to have a seed pulled.
	seedWanted = "chefd: the cook cache is empty; asking for a seed image"
)

// cookSeed is an image whose target directory fills an empty cook cache:
// a registry reference, and the short hash of its recipe. Ask (no Ref):
// the step stops with seedWanted when its cache is empty.
type cookSeed struct {
	Ref, Hash string
	Ask       bool
}

// cookKey identifies what third-party artifacts a cook can share with
// another: the same builder image (by ID: compiler, crate sources,
// libraries), intent, workspace path in the container, cargo config and
// toolchain file. Recipes with one key differ only in their dependency
// graph (and local crates), which cargo's unit hashes tell apart.
func cookKey(r *recipe.Recipe, builderID string) string {
	k := struct {
		Format    int           `json:"format"`
		Builder   string        `json:"builder"`
		Intent    recipe.Intent `json:"intent"`
		Workdir   string        `json:"workdir"`
		Config    *recipe.File  `json:"config"`
		Toolchain *recipe.File  `json:"toolchain"`
	}{1, builderID, r.Intent, workdir(r), r.ConfigFile, r.ToolchainFile}
	b, _ := json.Marshal(k)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// cookCacheID is the id of the cook cache of a key. It is the engine's,
// not a workspace's: two checkouts of one project (or two test copies of
// a workspace) share it, and an identical recipe's cook step is then
// identical too, which BuildKit's layer cache answers at once. Its units
// of the last cookCacheKeep recipes stay (cookKeep), so cooks that
// alternate between a few recipes each find theirs.
func cookCacheID(key string) string { return "chefd-cook-" + key }

// cookCacheKeep is how many recipes' units a cook cache keeps.
const cookCacheKeep = 4

// vendorSums is the cook step's list of vendored crates: "digest dir" a
// line, dir the crate's directory in the container.
func vendorSums(r *recipe.Recipe) string {
	var b strings.Builder
	for _, f := range r.VendorSums {
		fmt.Fprintf(&b, "%s %s\n", f.Contents, path.Join(srcRootOf(r), path.Dir(f.Path)))
	}
	return b.String()
}

// hex16 is 16 lower-case hex digits in a POSIX awk regular expression
// (mawk has no interval expressions).
var hex16 = strings.Repeat("[0-9a-f]", 16)

// cookScript is the cook step: prepare the cache (cookPrepare), build the
// dependencies on the skeleton, keep this build's third-party artifacts
// (cookKeep).
//
// layered: the image is a layer on a base image (deltalayer.go), mounted
// at prevMount.
func cookScript(r *recipe.Recipe, shortHash string, reset bool, dirs []*vendorDir, seed *cookSeed, layered bool) string {
	var b strings.Builder
	b.WriteString("# chefd cook step (generated)\nset -e\n")
	b.WriteString(vendorSync(r, dirs))
	fmt.Fprintf(&b, "cd %s\n", shQuote(workdir(r)))
	b.WriteString(echoSubStep(titleCookSeed) + "\n")
	b.WriteString(cookPrepare(r, reset, seed))
	b.WriteString(echoSubStep(titleCookBuild) + "\n")
	b.WriteString(cargoBuild(r, lockedCook(r)) + " \\\n" + contIndent + "--message-format=json-render-diagnostics >/tmp/chefd-units.json\n")
	b.WriteString(echoSubStep(titleCookClean) + "\n")
	b.WriteString(cookKeep(r, shortHash, layered))
	return b.String()
}

// cookPrepare is the shell that makes the cache (target, the cwd's) fit
// to seed this cook: emptied on --no-cache, vendored crates changed in
// place removed, an interrupted cook's dummies removed; filled from the
// seed image when it is empty; and says what seeds the cook.
func cookPrepare(r *recipe.Recipe, reset bool, seed *cookSeed) string {
	var b strings.Builder
	b.WriteString(`wipe() { find target -mindepth 1 -maxdepth 1 -exec rm -rf {} +; }
mkdir -p target
`)
	if reset {
		b.WriteString("wipe\n")
	}
	if seed != nil && seed.Ask && !reset {
		fmt.Fprintf(&b, `if [ -z "$(find target -mindepth 1 -maxdepth 1 | head -n 1)" ]; then echo %s; exit 43; fi
`, shQuote(seedWanted))
	}
	if seed != nil && seed.Ref != "" && !reset {
		fmt.Fprintf(&b, `# an empty cache takes the seed image's artifacts (its mtimes kept)
if [ -d %[1]s ] && [ -z "$(find target -mindepth 1 -maxdepth 1 | head -n 1)" ]; then
  echo %[6]s
  echo "chefd: seed image %[2]s"
  cp -a %[1]s/. target/
  # a seed without its vendored crates' digests: none of them is trusted
  [ -f target/%[3]s ] || awk '{ print "unknown", $2 }' %[4]s/vendor.sums >target/%[3]s
  echo %[5]s >target/.chefd-cook-recipe
fi
`, seedMount, seed.Ref, cookVendorRecord, stepDir, shQuote(seed.Hash), shQuote(seedFilled))
	}
	fmt.Fprintf(&b, `# vendored crates changed in place since the cache built them
touch target/.chefd-cook-vendor
awk 'FILENAME == ARGV[1] { old[$2] = $1; next } ($2 in old) && old[$2] != $1 { print $2 }' \
    target/.chefd-cook-vendor %[1]s/vendor.sums >/tmp/chefd-vendor-changed
if [ -s /tmp/chefd-vendor-changed ]; then
  pkgs=$(while read -r d; do
      awk '/^\[/ { p = ($0 == "[package]") } p && /^name *=/ { sub(/^name *= *"/, ""); sub(/".*/, ""); print "-p " $0; exit }' "$d/Cargo.toml"
    done </tmp/chefd-vendor-changed)
  echo "chefd: vendored crates changed in place, removing their artifacts: $pkgs"
  %[2]s $pkgs || { echo "chefd: cargo clean failed; emptying the cook cache"; wipe; touch target/.chefd-cook-vendor; }
fi
# the record covers every vendored crate the cache may hold, before cargo runs
awk 'FILENAME == ARGV[1] { s[$2] = $1; next } { s[$2] = $1 } END { for (d in s) print s[d], d }' \
    target/.chefd-cook-vendor %[1]s/vendor.sums >target/.chefd-cook-vendor.new
mv target/.chefd-cook-vendor.new target/.chefd-cook-vendor
if [ -f target/.chefd-cook-running ]; then
  echo "chefd: the previous cook in this cache was interrupted; removing its local artifacts"
  %[3]s
fi
touch target/.chefd-cook-running
if [ -s target/.chefd-cook-recipe ]; then
  echo "%[4]s$(cat target/.chefd-cook-recipe)"
elif [ -n "$(find target -mindepth 1 -maxdepth 1 ! -name '.chefd-cook-*' | head -n 1)" ]; then
  echo "%[4]sinterrupted"
else
  echo "%[5]s"
fi
`, stepDir, shJoin(cleanArgs(r)), cleanLocal(r, "target"), cookSeedLine, cookColdLine)
	return b.String()
}

// cleanArgs is cargo clean for the intent's profile and target.
func cleanArgs(r *recipe.Recipe) []string {
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
	return args
}

// cookKeep is the shell that, after cargo, copies this build's
// third-party artifacts from the cache (target) to cookedOut (layered:
// only the units the base image lacks or holds otherwise, and the list of
// the base's entries to remove, cookedDelete; deltalayer.go) and removes
// everything else from the cache: the hashes of the third-party units
// cargo listed; the entries of deps/, build/ and .fingerprint/ of the
// profile directories named with one of them; the profile directories'
// lock files (.cargo-lock, .cargo-build-lock...) and the target
// directory's own files. Nothing of a local
// crate (path+file package IDs, uplifted binaries, examples/,
// incremental/).
func cookKeep(r *recipe.Recipe, shortHash string, layered bool) string {
	baseList, layerLine, lockLine := "", "", ""
	if r.LockFile == nil {
		// the image holds the lockfile cargo wrote too
		lockLine = `if [ -f ../Cargo.lock ]; then live=$((live + $(wc -c <../Cargo.lock))); fi`
	}
	if layered {
		base := path.Join(prevMount, workdir(r), "target")
		baseList = fmt.Sprintf("if [ -d %[1]s ]; then (cd %[1]s && find . -mindepth 1 -printf '%%y\\t%%m %%s\\t%%T@\\t%%i\\t%%P\\n') >/tmp/chefd-base.list; fi", shQuote(base))
		layerLine = `echo "chefd: a layer on the base image: $added units added, $removed entries removed, $hidden bytes of the base hidden"`
	}
	return fmt.Sprintf(`H='%[1]s'
awk -v h="$H" '
  /"reason":"(compiler-artifact|build-script-executed)"/ && !/"package_id":"[^"]*path\+file:/ {
    files = ""
    if (match($0, /"filenames":\[[^]]*\]/)) files = substr($0, RSTART, RLENGTH)
    if (match($0, /"out_dir":"[^"]*"/)) files = files substr($0, RSTART, RLENGTH)
    while (match(files, "-" h "[./\"]")) {
      print substr(files, RSTART + 1, 16)
      files = substr(files, RSTART + RLENGTH)
    }
  }' /tmp/chefd-units.json | sort -u >/tmp/chefd-units
cd target
# the cache keeps the units of the last %[5]d recipes cooked in it
mkdir -p .chefd-cook-units
cp /tmp/chefd-units .chefd-cook-units/%[4]s.new && mv .chefd-cook-units/%[4]s.new .chefd-cook-units/%[4]s
ls -t .chefd-cook-units | tail -n +%[6]d | (cd .chefd-cook-units && xargs -r rm -f)
cat .chefd-cook-units/* | sort -u >/tmp/chefd-units-kept
# one listing: D a directory of the image, C an entry of this cook (copied
# into the image), X an entry no kept recipe has (removed from the cache)
find . -mindepth 1 -maxdepth 5 -name '.chefd-cook-*' -prune -o -printf '%%y %%P\n' | awk -v h="$H" -v pd=%[2]s '
  FILENAME == ARGV[1] { unit[$0] = 1; next }
  FILENAME == ARGV[2] { kept[$0] = 1; next }
  {
    kind = $1; p = substr($0, 3); n = split(p, c, "/")
    pl = 0
    if (c[1] == pd) pl = 1
    else if (n >= 2 && c[2] == pd) pl = 2
    if (pl == 0) {
      if (n <= 2) print (kind == "d" ? "D " : "C ") p
      next
    }
    if (n == pl) { print "D " p; next }
    if (n == pl + 1) {
      if (kind == "d") print "D " p
      else if (c[n] ~ /^[.]cargo-.*lock$/) print "C " p
      else print "X " p
      next
    }
    if (n > pl + 2) next
    u = ""
    if (c[pl + 1] == "deps" || c[pl + 1] == "build" || c[pl + 1] == ".fingerprint")
      if (match(c[n], "-" h "([.]|$)")) u = substr(c[n], RSTART + 1, 16)
    if (u in unit) print "C " p
    else if (!(u in kept)) print "X " p
  }' /tmp/chefd-units /tmp/chefd-units-kept - >/tmp/chefd-keep
# what the image must hold: every entry of this cook's units (the C
# entries), with its unit, type, mode, size, mtime and inode; and the base
# image's target directory, if the image is a layer on one
sed -n 's|^C |./|p' /tmp/chefd-keep | xargs -r -d '\n' sh -c 'exec find "$@" -printf "%%H\t%%y\t%%m %%s\t%%T@\t%%i\t%%p\n"' find >/tmp/chefd-image.list
sed -n 's/^D //p' /tmp/chefd-keep >/tmp/chefd-image.dirs
: >/tmp/chefd-base.list
%[9]s
rm -rf %[10]s && mkdir -p %[3]s && : >%[11]s
rec=0
# the digests of the vendored crates this cook built from, for a cook
# this image seeds
if [ -s %[7]s/vendor.sums ]; then cp %[7]s/vendor.sums %[3]s/%[8]s; rec=$(wc -c <%[7]s/vendor.sums); fi
# a stamp of this cook: BuildKit's cache never answers the image's COPY
# with an earlier copy of the same files, whose times are not the cache's
echo %[4]s "$(date +%%s%%N)" >%[3]s/.chefd-cook-stamp
stamp=$(wc -c <%[3]s/.chefd-cook-stamp)
# A: a unit any entry of which the base lacks or holds otherwise (copied
# whole); M: a directory to make; R: an entry of the base to remove (the
# topmost of what this recipe lacks, and any of another type)
awk -F '\t' -v rec="$rec" -v stamp="$stamp" -v stats=/tmp/chefd-layer.stats '
  function parent(p) { if (sub(/\/[^\/]*$/, "", p)) return p; return "" }
  FILENAME == ARGV[1] { bt[$5] = $1; bv[$5] = $1 " " $2 " " $3; if ($1 != "d") { split($2, ms, " "); bs[$5] = ms[2]; bi[$5] = $4 }; next }
  FILENAME == ARGV[2] {
    nd[$0] = 1
    if (!($0 in bt)) print "M " $0
    else if (bt[$0] != "d") { print "M " $0; conflict[$0] = 1 }
    next
  }
  {
    u = substr($1, 3); p = substr($6, 3)
    nf[p] = 1; unit[p] = u
    if ($2 != "d" && !(("i" $5) in seen)) { seen["i" $5] = 1; split($3, ms, " "); live += ms[2]; files++ }
    if (!(p in bt)) changed[u] = 1
    else if ($2 == "d") { if (bt[p] != "d") { changed[u] = 1; conflict[p] = 1 } }
    else if (bv[p] != $2 " " $3 " " $4) { changed[u] = 1; if (bt[p] != $2) conflict[p] = 1 }
  }
  END {
    if (rec > 0) { nf[".chefd-cook-vendor"] = 1; live += rec }
    nf[".chefd-cook-stamp"] = 1; live += stamp
    for (u in changed) { print "A " u; added++ }
    for (p in conflict) print "R " p
    for (p in bt) {
      if ((p in nf) || (p in nd)) {
        if ((p in bs) && (unit[p] in changed) && !(("i" bi[p]) in dead)) { dead["i" bi[p]] = 1; hidden += bs[p] }
        continue
      }
      if ((p in bs) && !(("i" bi[p]) in dead)) { dead["i" bi[p]] = 1; hidden += bs[p] }
      q = parent(p)
      if (q == "" || (q in nf) || (q in nd)) { print "R " p; removed++ }
    }
    printf "%%d %%d %%d %%d\n", live, added, removed, hidden >stats
  }' /tmp/chefd-base.list /tmp/chefd-image.dirs /tmp/chefd-image.list >/tmp/chefd-layer
sed -n 's/^M //p' /tmp/chefd-layer | (cd %[3]s && xargs -r -d '\n' mkdir -p)
sed -n 's/^A //p' /tmp/chefd-layer | xargs -r -d '\n' cp -a --parents -t %[3]s
sed -n 's/^R //p' /tmp/chefd-layer >%[11]s
read -r live added removed hidden </tmp/chefd-layer.stats
%[14]s
echo "%[12]s$(wc -l </tmp/chefd-units) third-party units, $live bytes"
%[13]s
sed -n 's/^X //p' /tmp/chefd-keep | xargs -r -d '\n' rm -rf
echo %[4]s >.chefd-cook-recipe
rm -f .chefd-cook-running
`, hex16, shQuote(r.Intent.ProfileDir()), cookedOut, shQuote(shortHash), cookCacheKeep, cookCacheKeep+1, stepDir, cookVendorRecord,
		baseList, cookedDir, cookedDelete, cookedStatsPrefix, layerLine, lockLine)
}

// cookSeedRe matches the cook step's line naming its seed.
var cookSeedRe = regexp.MustCompile(`^` + regexp.QuoteMeta(cookSeedLine) + `([0-9a-z]+)\s*$`)

// seedOf is the seed the cook's output names: a short recipe hash, or
// "interrupted" (a cook of this key that did not finish), or "" (none).
func seedOf(lines []string) string {
	for _, l := range lines {
		if m := cookSeedRe.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			return m[1]
		}
	}
	return ""
}
