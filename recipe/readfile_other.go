//go:build !linux

package recipe

import "os"

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

const cacheSupported = false

func readFileKey(path string) ([]byte, statKey, error) {
	data, err := os.ReadFile(path)
	return data, statKey{Exists: err == nil}, err
}

func readDirKey(dir string) ([]dirEntry, statKey, error) {
	ents, err := readDir(dir)
	return ents, statKey{Exists: err == nil}, err
}

func statPath(path string) (statKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return statKey{}, err
	}
	return statKey{Exists: true, Size: st.Size(), Mtime: st.ModTime().UnixNano()}, nil
}

type dirEntry struct {
	name  string
	isDir bool
	isLnk bool
}

func readDir(dir string) ([]dirEntry, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]dirEntry, len(ents))
	for i, e := range ents {
		out[i] = dirEntry{name: e.Name(), isDir: e.IsDir(), isLnk: e.Type()&os.ModeSymlink != 0}
	}
	return out, nil
}
