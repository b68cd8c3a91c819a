//go:build !linux

package recipe

import (
	"io/fs"
	"os"
	"path/filepath"

	"github.com/chefd/chefd/internal/safefile"
)

// modeTypeMask keeps the file-type bits of statKey.Mode.
const modeTypeMask = uint32(fs.ModeType)

func (k statKey) isDir() bool     { return fs.FileMode(k.Mode).IsDir() }
func (k statKey) isRegular() bool { return fs.FileMode(k.Mode).IsRegular() }

const cacheSupported = false

// readFileKey reads a regular file of at most limit bytes (see
// safefile.ReadRegular).
func readFileKey(path string, limit int64) ([]byte, statKey, error) {
	data, err := safefile.ReadRegular(path, limit)
	return data, statKey{Exists: err == nil}, err
}

// lister is the Linux directory lister's stand-in: os.ReadDir.
type lister struct{}

func (l *lister) readDirKey(dir string) ([]dirEntry, statKey, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, statKey{}, err
	}
	out := make([]dirEntry, len(ents))
	for i, e := range ents {
		out[i] = dirEntry{name: e.Name(), isDir: e.IsDir(), isLnk: e.Type()&os.ModeSymlink != 0}
	}
	return out, statKey{Exists: true}, nil
}

func statPath(path string) (statKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return statKey{}, err
	}
	return statKey{Exists: true, Mode: uint32(st.Mode().Type()), Size: st.Size(), Mtime: st.ModTime().UnixNano()}, nil
}

type dirEntry struct {
	name  string
	isDir bool
	isLnk bool
}

// rootStatter is the Linux relative statter's stand-in: plain stats.
type rootStatter struct{ root string }

func openRootStatter(root string) *rootStatter { return &rootStatter{root} }
func (s *rootStatter) close()                  {}
func (s *rootStatter) stat(p string) (statKey, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(s.root, p)
	}
	return statPath(p)
}

func (k statKey) isSymlink() bool { return fs.FileMode(k.Mode)&fs.ModeSymlink != 0 }

func lstatPath(path string) (statKey, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return statKey{}, err
	}
	return statKey{Exists: true, Mode: uint32(st.Mode().Type()), Size: st.Size(), Mtime: st.ModTime().UnixNano()}, nil
}
