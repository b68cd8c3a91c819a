//go:build !linux

package recipe

import "os"

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

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
