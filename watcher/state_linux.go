package watcher

import (
	"errors"
	"os"
	"syscall"
)

// stateAt reads the state of the file at abs with as few system calls as
// possible (open, fstat, usually one read, close), which matters when Start
// hashes 50,000 files. Symlinks are not followed (O_NOFOLLOW fails, and the
// portable path reads the link); FIFOs and devices are opened non-blocking
// and rejected after fstat. ok is false when the path is gone or is not a
// file the watcher tracks.
func (hs *hasher) stateAt(abs string) (st fileState, ok bool) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(abs, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			return hs.stateAtPortable(abs) // a symlink, or unreadable: stat only
		}
		return st, false
	}
	defer syscall.Close(fd)
	var sys syscall.Stat_t
	if err := syscall.Fstat(fd, &sys); err != nil {
		return st, false
	}
	if sys.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return st, false
	}
	sec, nsec := sys.Mtim.Unix()
	st = fileState{size: sys.Size, mtime: sec*1e9 + nsec, mode: sys.Mode & 0o777}
	if st.size > hs.limit {
		st.mode |= stateNoHash
		return st, true
	}
	hs.h.Reset()
	want := st.size + 1 // one more byte than expected: a short read means EOF
	for {
		n := len(hs.buf)
		if want > 0 && want < int64(n) {
			n = int(want)
		}
		r, err := syscall.Read(fd, hs.buf[:n])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			st.mode |= stateNoHash
			return st, true
		}
		if r <= 0 {
			break
		}
		hs.h.Write(hs.buf[:r])
		if want > 0 {
			want -= int64(r)
			if r < n { // EOF (or the file shrank): done
				break
			}
		}
	}
	copy(st.sum[:], hs.h.Sum(hs.sum[:0]))
	return st, true
}

// stateAtPortable is the os-package path: Lstat, then hash.
func (hs *hasher) stateAtPortable(abs string) (fileState, bool) {
	fi, err := os.Lstat(abs)
	if err != nil || !trackable(fi.Mode()) {
		return fileState{}, false
	}
	return hs.state(abs, fi)
}
