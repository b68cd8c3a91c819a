//go:build !linux

package safefile

import (
	"io"
	"os"
)

// ReadRegular reads the regular file at path (symbolic links followed),
// at most limit bytes: see the package comment.
func ReadRegular(path string, limit int64) ([]byte, error) {
	pre, err := os.Stat(path)
	if err != nil {
		return nil, missing(path, err)
	}
	if err := check(path, pre.Mode()); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := check(path, st.Mode()); err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	return data, nil
}
