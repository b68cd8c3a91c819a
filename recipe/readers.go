package recipe

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/chefd/chefd/internal/safefile"
)

// The files of the recipe besides the manifests: the cargo config, the
// lockfile, the vendored crates' checksums and the toolchain file. Each is
// read through the tracker (regular files only, within a size limit).

// readCargoConfig reads the root's .cargo/config (legacy name wins, as in
// cargo) or .cargo/config.toml.
func readCargoConfig(t *tracker, rootDir string) (table, string, error) {
	for _, name := range []string{".cargo/config", ".cargo/config.toml"} {
		p := filepath.Join(rootDir, filepath.FromSlash(name))
		data, err := t.readFile(p, safefile.TextLimit)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			if st, serr := t.stat(p); serr == nil && st.isDir() {
				continue
			}
			return nil, "", fileError(name, err)
		}
		doc, err := ParseManifest(name, data)
		if err != nil {
			return nil, "", err
		}
		return doc, name, nil
	}
	return nil, "", nil
}

// lockResult is the parsed lockfile (nil when there is none) or the error
// reading or validating it.
type lockResult struct {
	lf  *lockfile
	err error
}

// readLock reads, validates and parses Cargo.lock. A missing lockfile is
// no lockfile; a symbolic link to a missing one is an error.
func readLock(t *tracker, p string) lockResult {
	data, err := t.readFile(p, safefile.LockLimit)
	if safefile.Absent(err) {
		return lockResult{}
	}
	if err != nil {
		return lockResult{err: fileError("Cargo.lock", err)}
	}
	text := string(data)
	if !lockCanonical(text) {
		if _, err := ParseManifest("Cargo.lock", data); err != nil {
			return lockResult{err: err}
		}
	}
	return lockResult{lf: parseLock(text)}
}

// readVendorSums returns, for every crate of the vendor directories
// (context-relative), the digest of its .cargo-checksum.json.
func readVendorSums(t *tracker, ctxRoot string, dirs []string) ([]File, error) {
	var out []File
	for _, v := range dirs {
		ents, err := t.readDir(filepath.Join(ctxRoot, filepath.FromSlash(v)))
		if errors.Is(err, fs.ErrNotExist) {
			continue // cargo says so when it builds
		}
		if err != nil {
			return nil, fileError(v, err)
		}
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			if e.isDir || e.isLnk {
				names = append(names, e.name)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			rel := path.Join(v, n, ".cargo-checksum.json")
			data, err := t.readFile(filepath.Join(ctxRoot, filepath.FromSlash(rel)), safefile.LockLimit)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				continue
			}
			if err != nil {
				return nil, fileError(rel, err)
			}
			sum := sha256.Sum256(data)
			out = append(out, File{Path: rel, Contents: hex.EncodeToString(sum[:])})
		}
	}
	return out, nil
}

// readToolchain reads rust-toolchain (wins, as in rustup) or
// rust-toolchain.toml. Path is relative to the root.
func readToolchain(t *tracker, rootDir string) (*File, error) {
	for _, name := range []string{"rust-toolchain", "rust-toolchain.toml"} {
		data, err := t.readFile(filepath.Join(rootDir, name), safefile.TextLimit)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fileError(name, err)
		}
		text := strings.TrimSpace(string(data)) + "\n"
		if doc, err := ParseManifest(name, data); err == nil && len(doc) > 0 {
			text = canonicalTOML(doc)
		} else if name == "rust-toolchain.toml" {
			return nil, err
		}
		return &File{Path: name, Contents: text}, nil
	}
	return nil, nil
}
