package dockerctl

// The vendor cache. A workspace's vendored directory sources (a `cargo
// vendor` tree, often hundreds of megabytes) used to travel to the engine
// in every cook's context, though a recipe change rarely touches more than
// one of their crates: 67 MB took about 2.5 s of an 8.7 s delta cook.
// Now each vendor directory lives in a BuildKit cache mount of its own
// (one per workspace and vendor directory), mounted where cargo reads it,
// and a cook ships only the *items* (the vendor directory's entries, one a
// crate) the cache does not hold already.
//
// What the cache holds is known on both sides:
//   - in the cache, a record (.chefd-vendor, a dot file: cargo reads only
//     entries with a Cargo.toml) of the digest of every item, written
//     after the items were put in place and removed before any is changed,
//     so an interrupted sync leaves no record;
//   - on the client, a hint (the state directory) of the record the last
//     successful cook left.
//
// The cook ships every item whose digest differs from the hint and lists
// every item with its digest, shipped (S) or kept (K). The step checks each
// kept item against the record; when one differs or the record is missing
// (the cache was pruned, another client cooked, a sync was interrupted) it
// stops before cargo, and the cook runs again with every item shipped. The
// digests of shipped items are those of the bytes written to the context.
// A cook therefore reads exactly the vendored sources of the workspace,
// whatever the cache or the hint held.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/chefd/chefd/inputs"
	"github.com/chefd/chefd/recipe"
)

const (
	// vendorShipSub holds the shipped items below the step's directory:
	// chefd/<sub> in the context, stepDir/<sub> in the cook step.
	vendorShipSub = "vendor"
	// vendorRecord is the cache's record of the items it holds.
	vendorRecord = ".chefd-vendor"
	// vendorMissing is the line the cook step prints when the cache lacks
	// a kept item.
	vendorMissing = "chefd: the vendor cache lacks items; shipping them all"
)

// vendorCacheID is the id of the cache of vendor directory dir (context
// relative) of the workspace at root.
func vendorCacheID(root, dir string) string {
	return "chefd-vendor-" + WorkspaceID(root) + "-" + digestOf(dir)[:8]
}

// vendorItem is one entry of a vendor directory.
type vendorItem struct {
	name   string
	digest string
	files  []ctxFile
	ship   bool
}

// vendorDir is one vendor directory of a cook.
type vendorDir struct {
	rel   string // context relative
	cache string // cache id
	items []*vendorItem
}

// safeItemName: a name the step's line-based lists can carry.
func safeItemName(n string) bool {
	return n != "" && !strings.HasPrefix(n, ".") && !strings.ContainsAny(n, " \t\n\r\\'\"")
}

// vendorDirs lists r's vendor directories with their items (their
// digests come with planShipping), or ok false when they cannot use the
// cache (mountVendor, or an item name the lists cannot carry).
func vendorDirs(root string, r *recipe.Recipe) (dirs []*vendorDir, ok bool, err error) {
	if !mountVendor(r) {
		return nil, false, nil
	}
	for _, v := range r.VendorDirs {
		abs := filepath.Join(r.ContextRoot, filepath.FromSlash(v))
		files, err := collect(abs, r.ContextRoot, inputs.Builtin(abs))
		if err != nil {
			return nil, false, err
		}
		sortFiles(files)
		d := &vendorDir{rel: v, cache: vendorCacheID(root, v)}
		byName := map[string]*vendorItem{}
		for _, f := range files {
			sub := strings.TrimPrefix(f.rel, v+"/")
			name, _, _ := strings.Cut(sub, "/")
			if !safeItemName(name) {
				if strings.HasPrefix(name, ".") {
					continue // cargo reads no dot entry; nor does the cook
				}
				return nil, false, nil
			}
			it := byName[name]
			if it == nil {
				it = &vendorItem{name: name}
				byName[name] = it
				d.items = append(d.items, it)
			}
			it.files = append(it.files, f)
		}
		dirs = append(dirs, d)
	}
	return dirs, true, nil
}

// itemDigest is the digest of an item's files as the context writer
// hashes them: written to cw under prefix when cw is set (the digest of
// exactly what was shipped), else read.
func itemDigest(it *vendorItem, write func(ctxFile) (string, error)) (string, error) {
	if write == nil {
		cw := newContextWriter(io.Discard)
		write = func(f ctxFile) (string, error) { return cw.addHashed("", f) }
	}
	parts := make([]string, 0, 2*len(it.files))
	for _, f := range it.files {
		d, err := write(f)
		if err != nil {
			return "", err
		}
		parts = append(parts, f.rel, d)
	}
	return digestOf(parts...), nil
}

// hintFile is where the client keeps the record of a vendor cache.
func (b *WorkspaceBuilder) hintFile(cache string) string {
	return filepath.Join(b.stateDir, cache+".hint")
}

// readHint returns the hint of a cache: item name -> digest.
func (b *WorkspaceBuilder) readHint(cache string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(b.hintFile(cache))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<20))
	for sc.Scan() {
		if d, n, ok := strings.Cut(sc.Text(), " "); ok {
			out[n] = d
		}
	}
	return out
}

// writeHints records what the caches hold after a successful cook.
func (b *WorkspaceBuilder) writeHints(dirs []*vendorDir) {
	for _, d := range dirs {
		var sb strings.Builder
		for _, it := range d.items {
			fmt.Fprintf(&sb, "%s %s\n", it.digest, it.name)
		}
		writeStateFile(b.hintFile(d.cache), []byte(sb.String()))
	}
}

// dropHints forgets the hints (the caches did not hold what they said).
func (b *WorkspaceBuilder) dropHints(dirs []*vendorDir) {
	for _, d := range dirs {
		_ = os.Remove(b.hintFile(d.cache))
	}
}

// planShipping marks the items to ship: all of them, or those whose
// digest now differs from the hint. Only then are the items read here; a
// shipped item's digest is that of what writeVendor writes.
func (b *WorkspaceBuilder) planShipping(dirs []*vendorDir, all bool) error {
	for _, d := range dirs {
		var hint map[string]string
		if !all {
			hint = b.readHint(d.cache)
		}
		for _, it := range d.items {
			it.ship, it.digest = true, ""
			if h, ok := hint[it.name]; ok {
				dg, err := itemDigest(it, nil)
				if err != nil {
					return err
				}
				it.digest, it.ship = dg, dg != h
			}
		}
	}
	return nil
}

// writeVendor writes the shipped items under vendorShipDir and the list of
// every directory's items (chefd/vendor-<i>.want: "S|K digest name").
func writeVendor(cw *contextWriter, dirs []*vendorDir) error {
	for i, d := range dirs {
		// the directory itself, for the bind mount of the shipped items
		if err := cw.mkdirs(path.Join("chefd", vendorShipSub, d.rel, "x")); err != nil {
			return err
		}
		var want strings.Builder
		for _, it := range d.items {
			flag := "K"
			if it.ship {
				flag = "S"
				dg, err := itemDigest(it, func(f ctxFile) (string, error) { return cw.addHashed(path.Join("chefd", vendorShipSub), f) })
				if err != nil {
					return err
				}
				it.digest = dg
			}
			fmt.Fprintf(&want, "%s %s %s\n", flag, it.digest, it.name)
		}
		if err := cw.add("", ctxFile{rel: fmt.Sprintf("chefd/vendor-%d.want", i), data: []byte(want.String()), mode: 0o644}); err != nil {
			return err
		}
	}
	return nil
}

// vendorMounts are the cook step's mounts of the vendor caches, one a
// line (each ends with a backslash-newline).
func vendorMounts(r *recipe.Recipe, dirs []*vendorDir) string {
	var b strings.Builder
	for _, d := range dirs {
		fmt.Fprintf(&b, "    --mount=type=cache,id=%s,target=%s,sharing=locked \\\n", d.cache, path.Join(srcRootOf(r), d.rel))
	}
	return b.String()
}

// vendorSync is the cook step's shell that brings each vendor cache to
// the wanted items, or stops (exit 42, vendorMissing) when a kept item is
// not in it as listed.
func vendorSync(r *recipe.Recipe, dirs []*vendorDir) string {
	var b strings.Builder
	for i, d := range dirs {
		fmt.Fprintf(&b, "chefd_vendor_sync %s %s %s/vendor-%d.want\n",
			shQuote(path.Join(srcRootOf(r), d.rel)), shQuote(path.Join(stepDir, vendorShipSub, d.rel)), stepDir, i)
	}
	if b.Len() == 0 {
		return ""
	}
	return `chefd_vendor_sync() { # cache dir, shipped items dir, want list
  v=$1 s=$2 w=$3 rec=$1/` + vendorRecord + `
  if ! awk -v rec="$rec" 'BEGIN { while ((getline l < rec) > 0) { split(l, f, " "); have[f[2]] = f[1] } }
      $1 == "K" && have[$3] != $2 { bad = 1 } END { exit bad }' "$w"; then
    echo "` + vendorMissing + `"
    exit 42
  fi
  rm -f "$rec"
  find "$v" -mindepth 1 -maxdepth 1 -printf '%f\n' | awk 'FILENAME == ARGV[1] { want[$3] = ($1 == "K"); next } !want[$0]' "$w" - |
    while IFS= read -r e; do rm -rf "$v/$e"; done
  awk '$1 == "S" { print $3 }' "$w" | while IFS= read -r e; do cp -a "$s/$e" "$v/$e"; done
  awk '{ print $2, $3 }' "$w" >"$rec.tmp"
  mv "$rec.tmp" "$rec"
}
` + b.String()
}

// vendorItemsShipped counts the items a cook ships (for the log).
func vendorItemsShipped(dirs []*vendorDir) (shipped, all int) {
	for _, d := range dirs {
		for _, it := range d.items {
			all++
			if it.ship {
				shipped++
			}
		}
	}
	return shipped, all
}

// sawLine reports whether a step printed line.
func sawLine(lines []string, line string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
