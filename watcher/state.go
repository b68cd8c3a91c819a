package watcher

import (
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"io/fs"
	"os"
)

// fileState is what the watcher remembers per file: 40 bytes, no pointers,
// so a 50,000-file tree costs a few MB (plus the path keys).
type fileState struct {
	sum   [16]byte // first 16 bytes of the SHA-256 of the content (of the target for a symlink)
	size  int64
	mtime int64  // UnixNano
	mode  uint32 // permission bits | state flags
}

const (
	stateSymlink uint32 = 1 << 20 // the path is a symlink; sum covers its target
	stateNoHash  uint32 = 1 << 21 // too big or unreadable: compared by size+mtime
	stateSeen    uint32 = 1 << 22 // scratch mark used during rescans
	statePerm    uint32 = 0o7777
)

// defaultHashLimit: files bigger than this are compared by size+mtime.
const defaultHashLimit = 16 << 20

// same reports whether two states describe the same content.
func (a fileState) same(b fileState) bool {
	am, bm := a.mode&^stateSeen, b.mode&^stateSeen
	if am != bm {
		return false
	}
	if am&stateNoHash != 0 {
		return a.size == b.size && a.mtime == b.mtime
	}
	return a.size == b.size && a.sum == b.sum
}

// sameStat reports whether fi matches the recorded size, mtime and mode;
// used by rescans and polling to avoid hashing untouched files.
func (a fileState) sameStat(fi fs.FileInfo) bool {
	b := statOf(fi)
	return a.size == b.size && a.mtime == b.mtime && a.mode&(statePerm|stateSymlink) == b.mode
}

// statOf records fi's size, mtime and mode (no hash), for sameStat.
func statOf(fi fs.FileInfo) fileState {
	st := fileState{size: fi.Size(), mtime: fi.ModTime().UnixNano(), mode: uint32(fi.Mode().Perm())}
	if fi.Mode()&fs.ModeSymlink != 0 {
		st.mode |= stateSymlink
	}
	return st
}

// trackable reports whether the watcher records this kind of file: regular
// files and symlinks (never followed). FIFOs, sockets and devices are skipped
// (opening a FIFO would block).
func trackable(m fs.FileMode) bool {
	return m.IsRegular() || m&fs.ModeSymlink != 0
}

// hasher computes fileStates, reusing its buffer and digest. One per
// goroutine.
type hasher struct {
	buf   []byte
	h     hash.Hash
	sum   [sha256.Size]byte
	limit int64
}

func newHasher(limit int64) *hasher {
	return &hasher{buf: make([]byte, 64<<10), h: sha256.New(), limit: limit}
}

// state computes the state of the file at abs described by fi (from Lstat).
// ok is false when the path is not trackable or vanished.
func (hs *hasher) state(abs string, fi fs.FileInfo) (st fileState, ok bool) {
	m := fi.Mode()
	st = fileState{size: fi.Size(), mtime: fi.ModTime().UnixNano(), mode: uint32(m.Perm())}
	switch {
	case m&fs.ModeSymlink != 0:
		target, err := os.Readlink(abs)
		if err != nil {
			return st, false
		}
		st.mode |= stateSymlink
		hs.h.Reset()
		io.WriteString(hs.h, target)
		copy(st.sum[:], hs.h.Sum(hs.sum[:0]))
		return st, true
	case m.IsRegular():
		if st.size > hs.limit {
			st.mode |= stateNoHash
			return st, true
		}
		if err := hs.file(abs, &st.sum); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return st, false
			}
			st.mode |= stateNoHash // unreadable: fall back to size+mtime
		}
		return st, true
	}
	return st, false
}

func (hs *hasher) file(abs string, out *[16]byte) error {
	f, err := os.Open(abs)
	if err != nil {
		return err
	}
	defer f.Close()
	hs.h.Reset()
	for {
		n, err := f.Read(hs.buf)
		hs.h.Write(hs.buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	copy(out[:], hs.h.Sum(hs.sum[:0]))
	return nil
}
