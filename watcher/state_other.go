//go:build !linux

package watcher

import "os"

// stateAt reads the state of the file at abs (Lstat, then hash). ok is false
// when the path is gone or is not a file the watcher tracks.
func (hs *hasher) stateAt(abs string) (fileState, bool) {
	fi, err := os.Lstat(abs)
	if err != nil || !trackable(fi.Mode()) {
		return fileState{}, false
	}
	return hs.state(abs, fi)
}
