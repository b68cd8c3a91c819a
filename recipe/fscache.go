package recipe

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The recipe cache: every file and directory Compute reads or stats is
// recorded with its identity (inode, size, mode, mtime and ctime; a write
// always moves ctime). A later Compute with the same root and options
// re-stats those paths only and, when none moved, returns the stored
// recipe. Entries whose paths were touched in the last two seconds are not
// stored (a same-tick edit could otherwise go unseen on a coarse clock).

// statKey identifies a file's state; the zero value means "missing".
type statKey struct {
	Exists bool   `json:"e,omitempty"`
	Mode   uint32 `json:"m,omitempty"`
	Size   int64  `json:"s,omitempty"`
	Mtime  int64  `json:"t,omitempty"`
	Ctime  int64  `json:"c,omitempty"`
	Ino    uint64 `json:"i,omitempty"`
	Dev    uint64 `json:"d,omitempty"`
	// TypeOnly keys record that a path exists and its type, nothing more:
	// what a stat for existence depends on.
	TypeOnly bool `json:"y,omitempty"`
	// Linked marks a path that is a symbolic link (Exists false: a
	// dangling one). Its directory cannot vouch for it: the target can
	// appear or go without the link's directory changing.
	Linked bool `json:"l,omitempty"`
}

// typeOnly reduces a key to existence and file type.
func (k statKey) typeOnly() statKey {
	if !k.Exists {
		return statKey{}
	}
	return statKey{Exists: true, Mode: k.Mode & modeTypeMask, TypeOnly: true}
}

// tracker records the filesystem observations of one Compute. A nil
// tracker records nothing.
//
// Besides each path read, listed or stat'ed (obs), it records the identity
// of the directory holding each of them (parents), taken before the path
// itself is looked at. A directory's mtime and ctime move whenever an entry
// is created, removed or renamed in it, so while a parent is unchanged, the
// existence and type of every path observed in it are too: a warm check
// re-stats the parents, and the type-only or missing paths in a parent
// that moved (an editor's swap file, say) one by one.
type tracker struct {
	mu      sync.Mutex
	obs     map[string]statKey
	parents map[string]*dirCover
	ls      lister
}

// dirCover is one parent directory's identity, stat'ed once.
type dirCover struct {
	once sync.Once
	key  statKey
}

func newTracker() *tracker {
	return &tracker{obs: make(map[string]statKey, 1024), parents: make(map[string]*dirCover, 512)}
}

func (t *tracker) note(p string, k statKey) {
	if t == nil {
		return
	}
	t.mu.Lock()
	// The first observation wins, except that a full identity replaces a
	// type-only one (a directory stat'ed, then listed).
	if old, seen := t.obs[p]; !seen || old.TypeOnly && !k.TypeOnly {
		t.obs[p] = k
	}
	t.mu.Unlock()
}

// cover records the identity of p's directory unless it already has been.
// It returns only once that identity is recorded, so the identity always
// predates every observation it covers; different directories are stat'ed
// concurrently.
func (t *tracker) cover(p string) {
	if t == nil {
		return
	}
	dir := filepath.Dir(p)
	t.mu.Lock()
	c := t.parents[dir]
	if c == nil {
		c = &dirCover{}
		t.parents[dir] = c
	}
	t.mu.Unlock()
	c.once.Do(func() {
		k, err := statPath(dir)
		if err != nil {
			k = errKey(err)
		}
		c.key = k
	})
}

// errKey is the key of a path that could not be stat'ed or read: missing
// is cacheable, anything else never matches.
func errKey(err error) statKey {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return statKey{}
	}
	return statKey{Exists: true, Ino: ^uint64(0)}
}

// noteErr records a path that could not be read. A missing one is checked
// for a dangling symbolic link (one lstat, only on this path).
func (t *tracker) noteErr(p string, err error) {
	k := errKey(err)
	if k == (statKey{}) {
		if lk, lerr := lstatPath(p); lerr == nil && lk.isSymlink() {
			k.Linked = true
		}
	}
	t.note(p, k)
}

// coverable reports whether a parent's identity vouches for k: a
// type-only or a missing observation (not an unreadable one, and not a
// symbolic link).
func (k statKey) coverable() bool { return (k.TypeOnly || k == statKey{}) && !k.Linked }

// readFile reads the regular file p, at most limit bytes.
func (t *tracker) readFile(p string, limit int64) ([]byte, error) {
	t.cover(p)
	data, k, err := readFileKey(p, limit)
	if err != nil {
		if k.Exists {
			t.note(p, k)
		} else {
			t.noteErr(p, err)
		}
		return nil, err
	}
	t.note(p, k)
	return data, nil
}

func (t *tracker) readDir(p string) ([]dirEntry, error) {
	var l *lister
	if t != nil {
		l = &t.ls
	}
	t.cover(p)
	ents, k, err := l.readDirKey(p)
	if err != nil {
		t.noteErr(p, err)
		return nil, err
	}
	t.note(p, k)
	return ents, nil
}

// stat follows symlinks, like os.Stat, in one system call. It records
// only the path's type: nothing depends on a stat'ed path's contents or
// times, so edits to a file whose existence is all that matters (say
// src/bin/x/main.rs) leave the cache valid. A directory that is also
// listed gets its full identity from the listing.
//
// It lstats first (one call for anything but a symbolic link, whose target
// is then stat'ed and which is noted as Linked).
func (t *tracker) stat(p string) (statKey, error) {
	t.cover(p)
	k, err := lstatPath(p)
	if err != nil {
		t.note(p, errKey(err))
		return statKey{}, err
	}
	if !k.isSymlink() {
		t.note(p, k.typeOnly())
		return k, nil
	}
	if k, err = statPath(p); err != nil {
		nk := errKey(err)
		nk.Linked = nk == (statKey{})
		t.note(p, nk)
		return statKey{}, err
	}
	nk := k.typeOnly()
	nk.Linked = true
	t.note(p, nk)
	return k, nil
}

// globMatch is one glob result. dir is true when the listing's d_type
// already says it is a directory (symlinks are never known: stat them).
type globMatch struct {
	path string
	dir  bool
}

// glob expands a pattern whose components may hold *, ? and [...] (no
// **), listing directories through the tracker.
func (t *tracker) glob(pattern string) ([]globMatch, error) {
	if !hasMeta(pattern) {
		k, err := t.stat(pattern)
		if err != nil {
			return nil, nil
		}
		return []globMatch{{pattern, k.isDir()}}, nil
	}
	dir, file := filepath.Split(pattern)
	dir = filepath.Clean(dir)
	var dirs []globMatch
	if hasMeta(dir) {
		var err error
		if dirs, err = t.glob(dir); err != nil {
			return nil, err
		}
	} else {
		dirs = []globMatch{{dir, false}}
	}
	if _, err := path.Match(file, ""); err != nil {
		return nil, err
	}
	var out []globMatch
	for _, d := range dirs {
		ents, err := t.readDir(d.path)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if ok, _ := path.Match(file, e.name); ok {
				out = append(out, globMatch{filepath.Join(d.path, e.name), e.isDir})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}

// cacheEntry is what the cache stores for one root and option set. The
// observations are flat slices, not maps: gob decodes them faster, and
// decoding is most of a warm prepare's user time.
//
// A cache file holds two gob values: the entry, then the recipe, so that
// the re-stat can start while the recipe is still being decoded. Paths
// are relative to Root when they are below it (shorter to decode, and
// stat'ed relative to Root's directory fd).
type cacheEntry struct {
	Version string
	Root    string
	Options string
	Paths   []string  // observed paths
	Keys    []statKey // their keys
	Parent  []int32   // index of each path's directory in Dirs, or -1
	Dirs    []string  // the directories holding observed paths
	DirKeys []statKey
	Context string
	Extern  int
}

// writeCacheFile encodes an entry and its recipe into path, atomically.
func writeCacheFile(path string, e *cacheEntry, r *Recipe) error {
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	if err := enc.Encode(e); err != nil {
		return err
	}
	// the recipe as JSON: gob would decode its empty lists as nil, and
	// what is derived from a recipe's JSON (a cook key) would differ
	// between a fresh recipe and a cached one
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := enc.Encode(data); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp" + fmt.Sprint(os.Getpid())
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// cacheVersion changes whenever what Compute reads or produces changes.
const cacheVersion = "8"

func cachePath(dir, root, opts string) string {
	sum := sha256.Sum256([]byte(root + "\x00" + opts))
	return filepath.Join(dir, fmt.Sprintf("recipe-%x.gob", sum[:8]))
}

// optionsKey names what a cached recipe depends on besides the files: the
// options, the recipe format, and the program that computed it (a new
// chefd binary never trusts an older one's cache).
func optionsKey(o options) string {
	b, _ := json.Marshal(o.intent.normalize())
	return fmt.Sprintf("f%d:%s:%s", Format, programID(), b)
}

// programID identifies the running executable by path, size and mtime.
func programID() string {
	exe, err := os.Executable()
	if err != nil {
		return "unknown"
	}
	st, err := os.Stat(exe)
	if err != nil {
		return exe
	}
	return fmt.Sprintf("%s:%d:%d", exe, st.Size(), st.ModTime().UnixNano())
}

// loadCached returns the cached recipe when every observed path is
// unchanged, nil otherwise.
// key is optionsKey of the Compute's options, computed once by the caller.
func loadCached(dir, root, key string) *Recipe {
	f, err := os.Open(cachePath(dir, root, key))
	if err != nil {
		return nil
	}
	defer f.Close()
	dec := gob.NewDecoder(bufio.NewReader(f))
	var e cacheEntry
	if dec.Decode(&e) != nil || e.Version != cacheVersion || e.Root != root ||
		e.Options != key || len(e.Paths) == 0 || len(e.Keys) != len(e.Paths) || len(e.Parent) != len(e.Paths) ||
		len(e.DirKeys) != len(e.Dirs) {
		return nil
	}
	same := make(chan bool, 1)
	go func() { same <- e.unchanged() }()
	var r Recipe
	var data []byte
	if err = dec.Decode(&data); err == nil {
		err = json.Unmarshal(data, &r)
	}
	if !<-same || err != nil || r.Hash == "" {
		return nil
	}
	r.Root, r.ContextRoot, r.External = root, e.Context, e.Extern
	return &r
}

// unchanged re-stats the directories, then every observation their
// identity does not vouch for (in parallel: it is all system calls).
func (e *cacheEntry) unchanged() bool {
	st := openRootStatter(e.Root)
	defer st.close()
	moved := make([]bool, len(e.Dirs))
	for _, i := range restat(st, e.Dirs, e.DirKeys, false) {
		moved[i] = true
	}
	var paths []string
	var keys []statKey
	for i, k := range e.Keys {
		if d := e.Parent[i]; k.coverable() && d >= 0 && int(d) < len(moved) && !moved[d] {
			continue
		}
		paths = append(paths, e.Paths[i])
		keys = append(keys, k)
	}
	return len(restat(st, paths, keys, true)) == 0
}

// restat stats paths and returns the indexes of those whose key differs
// from want (only the first one found when first is set).
func restat(st *rootStatter, paths []string, want []statKey, first bool) []int {
	const workers = 4
	var wg sync.WaitGroup
	var mu sync.Mutex
	var diff []int
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(paths); i += workers {
				k, err := st.stat(paths[i])
				switch {
				case err != nil:
					k = errKey(err)
				case want[i].TypeOnly:
					k = k.typeOnly()
				}
				// a link's key carries the flag; a missing path compares
				// equal to a dangling link (neither gives cargo a file)
				if want[i].Linked && (k.TypeOnly || k == statKey{}) {
					k.Linked = true
				}
				if k == want[i] {
					continue
				}
				mu.Lock()
				diff = append(diff, i)
				mu.Unlock()
				if first {
					return
				}
			}
		}(w)
	}
	wg.Wait()
	return diff
}

// entry flattens the tracker's observations for the cache, with paths
// below root made relative to it.
func (t *tracker) entry(root string) cacheEntry {
	var e cacheEntry
	rel := func(p string) string {
		switch {
		case p == root:
			return "."
		case strings.HasPrefix(p, root) && len(p) > len(root) && p[len(root)] == filepath.Separator:
			return p[len(root)+1:]
		}
		return p
	}
	dirIndex := make(map[string]int32, len(t.parents))
	for d, c := range t.parents {
		dirIndex[d] = int32(len(e.Dirs))
		e.Dirs = append(e.Dirs, rel(d))
		e.DirKeys = append(e.DirKeys, c.key)
	}
	for p, k := range t.obs {
		d, ok := dirIndex[filepath.Dir(p)]
		if !ok {
			d = -1
		}
		e.Paths = append(e.Paths, rel(p))
		e.Keys = append(e.Keys, k)
		e.Parent = append(e.Parent, d)
	}
	return e
}

// storeCached writes the entry unless some observed path changed too
// recently to trust its timestamps.
func storeCached(dir, root, key string, o options, t *tracker, r *Recipe) error {
	window := o.racyWindow
	if window == 0 {
		window = 2 * time.Second
	}
	recent := time.Now().Add(-window).UnixNano()
	for _, k := range t.obs {
		if k.Exists && (k.Mtime > recent || k.Ctime > recent) {
			return nil
		}
		if k.Ino == ^uint64(0) {
			return nil // an unreadable path: do not cache
		}
	}
	for _, c := range t.parents {
		if k := c.key; k.Exists && (k.Mtime > recent || k.Ctime > recent) {
			return nil
		}
	}
	e := t.entry(root)
	e.Version, e.Root, e.Options = cacheVersion, root, key
	e.Context, e.Extern = r.ContextRoot, r.External
	return writeCacheFile(cachePath(dir, root, key), &e, r)
}

// DefaultCacheDir is where the CLI and the daemon keep recipe caches.
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil || strings.TrimSpace(d) == "" {
		return ""
	}
	return filepath.Join(d, "chefd", "recipes")
}
