package safefile

import (
	"io/fs"
	"os"
	"syscall"
)

// ReadRegular reads the regular file at path (symbolic links followed),
// at most limit bytes: see the package comment.
func ReadRegular(path string, limit int64) ([]byte, error) {
	data, _, err := ReadStat(path, limit)
	return data, err
}

// ReadStat is ReadRegular with plain system calls (no poller registration
// and no final zero-length read when the file holds exactly the size fstat
// gave), returning the open file's identity as of before the read: a
// change during the read makes it stale, never the reverse. st is set
// whenever the path could be stat'ed, errors included.
func ReadStat(path string, limit int64) (data []byte, st *syscall.Stat_t, err error) {
	var pre syscall.Stat_t
	if err := retry(func() error { return syscall.Stat(path, &pre) }); err != nil {
		return nil, nil, missing(path, &os.PathError{Op: "stat", Path: path, Err: err})
	}
	if err := check(path, modeOf(pre.Mode)); err != nil {
		return nil, &pre, err
	}
	data, st, err = readOpen(path, limit)
	if st == nil {
		st = &pre
	}
	return data, st, err
}

// readOpen opens path non-blocking and reads it when fstat says it is a
// regular file within the limit: ReadStat's second check, for a file
// replaced after its stat (a FIFO then neither blocks the open nor is
// read).
func readOpen(path string, limit int64) (data []byte, st *syscall.Stat_t, err error) {
	var fd int
	if err := retry(func() (err error) {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		return err
	}); err != nil {
		return nil, nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	st = new(syscall.Stat_t)
	if err := syscall.Fstat(fd, st); err != nil {
		return nil, nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if err := check(path, modeOf(st.Mode)); err != nil {
		return nil, st, err // replaced since the stat
	}
	if st.Size > limit {
		return nil, st, &TooLargeError{Path: path, Limit: limit}
	}
	buf := make([]byte, 0, st.Size+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		// never more than one byte past the limit
		window := buf[len(buf):cap(buf)]
		if max := limit + 1 - int64(len(buf)); int64(len(window)) > max {
			window = window[:max]
		}
		n, err := syscall.Read(fd, window)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, st, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, st, nil
		}
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, st, &TooLargeError{Path: path, Limit: limit}
		}
		if st.Size > 0 && int64(len(buf)) == st.Size {
			// All of it. Should the file have grown since fstat, its
			// identity (taken before the read) is already stale.
			return buf, st, nil
		}
	}
}

func retry(f func() error) error {
	for {
		if err := f(); err != syscall.EINTR {
			return err
		}
	}
}

// modeOf converts the file type bits of st_mode.
func modeOf(m uint32) fs.FileMode {
	switch m & syscall.S_IFMT {
	case syscall.S_IFREG:
		return 0
	case syscall.S_IFDIR:
		return fs.ModeDir
	case syscall.S_IFIFO:
		return fs.ModeNamedPipe
	case syscall.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFBLK:
		return fs.ModeDevice
	case syscall.S_IFSOCK:
		return fs.ModeSocket
	case syscall.S_IFLNK:
		return fs.ModeSymlink
	}
	return fs.ModeIrregular
}
