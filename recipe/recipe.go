// Package recipe computes the recipe of a cargo workspace in pure Go: the
// skeleton (manifests, lockfile, cargo config, toolchain file and the list
// of every target) that cargo needs to compile the third-party
// dependencies, plus the build intent, and a sha256 hash over its canonical
// JSON. The hash keys the cooked dependency image.
package recipe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Format is bumped whenever the recipe's meaning changes, so that images
// cooked by an older chefd are never reused by mistake.
const Format = 1

// Intent is how the workspace is built. It is part of the recipe (and its
// hash) so that cook and build can never disagree.
type Intent struct {
	Profile           string   `json:"profile"`
	Features          []string `json:"features"`
	NoDefaultFeatures bool     `json:"no_default_features"`
	Target            string   `json:"target"`
	RustFlags         string   `json:"rustflags"`
	// Bins selects binaries: the recipe then holds only the local crates
	// they need, and cargo builds only them. Empty means the whole workspace.
	Bins []string `json:"bins"`
}

// normalize sorts and dedupes the lists and applies defaults.
func (i Intent) normalize() Intent {
	if i.Profile == "" {
		i.Profile = "release"
	}
	i.Features = sortedSet(i.Features)
	i.Bins = sortedSet(i.Bins)
	i.RustFlags = strings.Join(strings.Fields(i.RustFlags), " ")
	return i
}

func sortedSet(in []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, s := range in {
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	return out
}

// CargoArgs returns the arguments after `cargo` for the build: the same for
// cook and code build.
func (i Intent) CargoArgs() []string {
	args := []string{"build"}
	switch i.Profile {
	case "release":
		args = append(args, "--release")
	case "dev", "debug":
	default:
		args = append(args, "--profile", i.Profile)
	}
	if len(i.Bins) == 0 {
		args = append(args, "--workspace")
	}
	for _, b := range i.Bins {
		args = append(args, "--bin", b)
	}
	if len(i.Features) > 0 {
		args = append(args, "--features", strings.Join(i.Features, ","))
	}
	if i.NoDefaultFeatures {
		args = append(args, "--no-default-features")
	}
	if i.Target != "" {
		args = append(args, "--target", i.Target)
	}
	return args
}

// ProfileDir is the directory under target/ (or target/<triple>/) where the
// profile's artifacts go.
func (i Intent) ProfileDir() string {
	switch i.Profile {
	case "", "release", "bench":
		return "release"
	case "dev", "debug", "test":
		return "debug"
	}
	return i.Profile
}

// File is a recorded file: its path relative to the context root and its
// (canonical) contents.
type File struct {
	Path     string `json:"path"`
	Contents string `json:"contents"`
}

// Manifest is one Cargo.toml of the skeleton.
type Manifest struct {
	// Path is relative to the context root, slash-separated.
	Path string `json:"path"`
	// Package is the package name; empty for a virtual root.
	Package string `json:"package,omitempty"`
	// Member is true for workspace members, false for other path crates.
	Member bool `json:"member"`
	// Local is true when the package's version is masked (false for
	// [patch]/[replace] crates, whose real version matters).
	Masked bool `json:"masked"`
	// Version is the package version cargo sees in the skeleton (the
	// placeholder for masked packages).
	Version  string   `json:"version,omitempty"`
	Contents string   `json:"contents"`
	Targets  []Target `json:"targets"`
}

// Dir is the package directory relative to the context root.
func (m Manifest) Dir() string { return path.Dir(m.Path) }

// OutsideDirs are the directories of the local crates outside the
// workspace root (path dependencies), relative to ContextRoot, sorted, a
// crate nested in another one's directory left out. The build context
// ships them and the daemon watches them.
func (r *Recipe) OutsideDirs() []string {
	var out []string
	for _, m := range r.Manifests {
		d := m.Dir()
		if r.WorkspaceDir == "." || d == r.WorkspaceDir || strings.HasPrefix(d, r.WorkspaceDir+"/") {
			continue
		}
		out = append(out, d)
	}
	sort.Strings(out)
	kept := out[:0]
	for _, d := range out {
		if n := len(kept); n > 0 && (d == kept[n-1] || strings.HasPrefix(d, kept[n-1]+"/")) {
			continue
		}
		kept = append(kept, d)
	}
	return kept
}

// Recipe is the skeleton of a workspace and its build intent.
type Recipe struct {
	Hash   string `json:"hash,omitempty"`
	Format int    `json:"format"`
	Intent Intent `json:"intent"`
	// WorkspaceDir is the workspace root relative to the context root: "."
	// unless path dependencies live outside the workspace directory.
	WorkspaceDir  string     `json:"workspace_dir"`
	Manifests     []Manifest `json:"manifests"`
	LockFile      *File      `json:"lock_file"`
	ConfigFile    *File      `json:"config_file"`
	ToolchainFile *File      `json:"toolchain_file"`
	// VendorDirs are directory sources named in the cargo config, relative
	// to the context root: not part of the skeleton, but cook needs them.
	VendorDirs []string `json:"vendor_dirs"`
	// VendorSums identify the vendored crates: for each one the sha256 of
	// its .cargo-checksum.json (Contents), which cargo checks every file of
	// the crate against before it builds from a directory source. An
	// in-place change of a vendored crate is then a new recipe, cooked
	// again, never a stale cooked image.
	VendorSums []File `json:"vendor_sums,omitempty"`

	// HostRoot is ContextRoot, set only when a manifest names a local crate
	// by an absolute path (cargo takes it as it is, and so does the
	// skeleton): cook and code build must then find the context at this
	// path too, not only at its place in the container (a symbolic link
	// from HostRoot to it does). It is part of the hash, as the absolute
	// paths in the manifests are.
	HostRoot string `json:"host_root,omitempty"`

	// Root is the absolute workspace directory on this host.
	Root string `json:"-"`
	// ContextRoot is the absolute directory the build context is made from.
	ContextRoot string `json:"-"`
	// External is the number of third-party packages in the lockfile.
	External int `json:"-"`
}

// Source is a place in a file the user wrote.
type Source struct {
	File string
	Line int
}

// Compute reads the workspace at dir (its root is found as cargo would) and
// returns its recipe.
func Compute(ctx context.Context, dir string, opt ...Option) (*Recipe, error) {
	var opts options
	for _, f := range opt {
		f(&opts)
	}
	rootDir, err := FindRoot(dir)
	if err != nil {
		return nil, err
	}
	useCache := opts.cacheDir != "" && cacheSupported
	var cacheKey string
	if useCache {
		cacheKey = optionsKey(opts)
		if r := loadCached(opts.cacheDir, rootDir, cacheKey); r != nil {
			return r, nil
		}
	}
	t := newTracker()
	// The lockfile is read and parsed while the workspace loads (a few
	// hundred packages take milliseconds to validate).
	lockPath := filepath.Join(rootDir, "Cargo.lock")
	lockc := make(chan lockResult, 1)
	go func() { lockc <- readLock(t, lockPath) }()
	w, err := loadWorkspace(ctx, t, rootDir)
	lock := <-lockc
	if err != nil {
		return nil, err
	}
	intent := opts.intent.normalize()
	keep, bins, err := w.closure(intent.Bins, opts.binsFrom)
	if err != nil {
		return nil, err
	}
	intent.Bins = bins

	// Context root: the deepest directory holding the workspace and every
	// kept local crate.
	ctxRoot := rootDir
	for d := range keep {
		ctxRoot = sharedParent(d, ctxRoot)
	}
	if ctxRoot == string(filepath.Separator) && rootDir != ctxRoot {
		return nil, &Error{File: "Cargo.toml", Msg: "path dependencies escape to /",
			Fix: "keep path dependencies under a directory shared with the workspace"}
	}
	r := &Recipe{Format: Format, Intent: intent, Root: rootDir, ContextRoot: ctxRoot,
		WorkspaceDir: relSlash(ctxRoot, rootDir), VendorDirs: []string{}}
	if w.absolute {
		r.HostRoot = ctxRoot
	}

	masked := map[string]bool{}
	for d := range keep {
		if c := w.crates[d]; c.m.pkg != nil && !c.patch {
			masked[c.m.name] = true
		}
	}
	filtered := len(intent.Bins) > 0
	var rootRewrite func(table)
	if filtered {
		rootRewrite = w.rootRewrite(keep)
	}
	// manifests
	rootKept := keep[rootDir]
	order := w.order
	if _, ok := w.crates[rootDir]; !ok { // virtual root
		w.crates[rootDir] = &crate{m: w.root}
		order = append([]string{rootDir}, order...)
	}
	var kept []string
	for _, d := range order {
		if keep[d] || d == rootDir {
			kept = append(kept, d)
		}
	}
	texts, err := parallel(kept, func(d string) (string, error) {
		var rw func(table)
		if d == rootDir {
			rw = rootRewrite
		}
		return skeletonManifest(w.crates[d], masked, rw)
	})
	if err != nil {
		return nil, err
	}
	for i, d := range kept {
		c := w.crates[d]
		isRoot := d == rootDir
		text := texts[i]
		mf := Manifest{Path: relSlash(ctxRoot, c.m.abs), Member: c.member, Contents: text, Targets: []Target{}}
		if c.m.pkg != nil && (!isRoot || rootKept || !filtered) {
			mf.Package = c.m.name
			mf.Masked = masked[c.m.name]
			mf.Version = w.versionOf(c.m)
			if mf.Masked {
				mf.Version = MaskedVersion
			}
			mf.Targets = append(mf.Targets, c.targets.list...)
			sortTargets(mf.Targets)
			for _, t := range mf.Targets {
				full := path.Join(path.Dir(mf.Path), t.Path)
				if strings.HasPrefix(full, "../") || path.IsAbs(t.Path) {
					return nil, errorf(c.m.rel, lineOf(c.m.raw, t.Name), "keep target sources inside the crate's directory tree",
						"target %s %q has path %q outside the build context", t.Kind, t.Name, t.Path)
				}
			}
		}
		r.Manifests = append(r.Manifests, mf)
	}
	sort.Slice(r.Manifests, func(i, j int) bool { return r.Manifests[i].Path < r.Manifests[j].Path })

	// lockfile
	if lock.err != nil {
		return nil, lock.err
	}
	if lf := lock.lf; lf != nil {
		if filtered {
			roots := map[string]bool{}
			for d := range keep {
				if c := w.crates[d]; c.m.pkg != nil {
					roots[c.m.name] = true
				}
			}
			lf.keepReachable(roots)
		}
		lf.mask(masked)
		r.LockFile = &File{Path: relSlash(ctxRoot, lockPath), Contents: lf.String()}
		r.External = lf.externalCount()
	}

	// cargo config
	cfg, cfgName, err := readCargoConfig(t, rootDir)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		r.ConfigFile = &File{Path: relSlash(ctxRoot, filepath.Join(rootDir, cfgName)), Contents: canonicalTOML(cfg)}
		for _, v := range w.vendor {
			if within(v, ctxRoot) {
				r.VendorDirs = append(r.VendorDirs, relSlash(ctxRoot, v))
			}
		}
		sort.Strings(r.VendorDirs)
		if r.VendorSums, err = readVendorSums(t, ctxRoot, r.VendorDirs); err != nil {
			return nil, err
		}
	}

	// toolchain file
	if tf, err := readToolchain(t, rootDir); err != nil {
		return nil, err
	} else if tf != nil {
		tf.Path = relSlash(ctxRoot, filepath.Join(rootDir, tf.Path))
		r.ToolchainFile = tf
	}

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.Hash, err = r.computeHash()
	if err != nil {
		return nil, err
	}
	if useCache {
		_ = storeCached(opts.cacheDir, rootDir, cacheKey, opts, t, r) // a cache that cannot be written only costs time
	}
	return r, nil
}

// computeHash is the sha256 of the recipe's JSON (as json.Marshal writes
// it, plus a newline) with the hash field empty. The manifests, which are
// most of it, are encoded one by one straight into the hash instead of
// into one large buffer.
func (r *Recipe) computeHash() (string, error) {
	c := *r
	c.Hash = ""
	h := sha256.New()
	if len(c.Manifests) == 0 {
		if err := json.NewEncoder(h).Encode(&c); err != nil {
			return "", fmt.Errorf("encode recipe: %w", err)
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	ms := c.Manifests
	c.Manifests = nil
	outer, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("encode recipe: %w", err)
	}
	// Keys are never escaped inside string values' quotes, so this is the
	// field itself.
	const slot = `"manifests":null`
	i := bytes.Index(outer, []byte(slot))
	if i < 0 {
		return "", fmt.Errorf("encode recipe: no manifests field")
	}
	i += len(slot) - len("null")
	h.Write(outer[:i])
	h.Write([]byte{'['})
	for n := range ms {
		if n > 0 {
			h.Write([]byte{','})
		}
		b, err := json.Marshal(&ms[n])
		if err != nil {
			return "", fmt.Errorf("encode manifest %s: %w", ms[n].Path, err)
		}
		h.Write(b)
	}
	h.Write([]byte{']'})
	h.Write(outer[i+len("null"):])
	h.Write([]byte{'\n'})
	return hex.EncodeToString(h.Sum(nil)), nil
}

// JSON returns the canonical JSON of the recipe, hash included.
func (r *Recipe) JSON() ([]byte, error) {
	return json.MarshalIndent(r, "", "  ")
}

// ShortHash is the first 16 hex digits of the hash (image tags use it).
func (r *Recipe) ShortHash() string {
	if len(r.Hash) < 16 {
		return r.Hash
	}
	return r.Hash[:16]
}

// Summary counts members, targets and external packages.
func (r *Recipe) Summary() (members, targets, external int) {
	for _, m := range r.Manifests {
		if m.Package != "" {
			members++
			targets += len(m.Targets)
		}
	}
	return members, targets, r.External
}

// LocalPackages lists the names of every package of the skeleton.
func (r *Recipe) LocalPackages() []string {
	var out []string
	for _, m := range r.Manifests {
		if m.Package != "" {
			out = append(out, m.Package)
		}
	}
	sort.Strings(out)
	return out
}

// Bins lists the binary targets of the skeleton's packages.
func (r *Recipe) Bins() []string {
	var out []string
	for _, m := range r.Manifests {
		for _, t := range m.Targets {
			if t.Kind == KindBin {
				out = append(out, t.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// parallel maps fn over items on a few goroutines, keeping order; the first
// error (in item order) wins.
func parallel[T, R any](items []T, fn func(T) (R, error)) ([]R, error) {
	out := make([]R, len(items))
	errs := make([]error, len(items))
	workers := runtime.GOMAXPROCS(0)
	if workers > 8 {
		workers = 8
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i], errs[i] = fn(items[i])
			}
		}()
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return nil, e
		}
	}
	return out, nil
}
