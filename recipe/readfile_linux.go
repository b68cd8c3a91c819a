package recipe

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/chefd/chefd/internal/safefile"
)

// readFileKey reads a regular file of at most limit bytes (see
// safefile.ReadStat: a FIFO or a device is refused, never opened for a
// blocking read) and returns the file's identity as of before the read: a
// change during the read makes the key stale, never the reverse.
func readFileKey(path string, limit int64) ([]byte, statKey, error) {
	data, st, err := safefile.ReadStat(path, limit)
	var key statKey
	if st != nil {
		key = keyOf(st)
	}
	return data, key, err
}

// dirEntry is a name and its type bits from the directory listing.
type dirEntry struct {
	name  string
	isDir bool
	isLnk bool
}

// dirBufSize is the getdents64 buffer. A listing is read until a call
// returns 0: the kernel may stop early on any filesystem (filldir64 ends a
// call when a signal is pending, and Go's preemption uses signals), so a
// short result never means the end.
const dirBufSize = 8 << 10

// lister lists directories for one Compute, reusing getdents buffers.
type lister struct {
	bufs sync.Pool
}

func (l *lister) buf() *[]byte {
	if l != nil {
		if b, ok := l.bufs.Get().(*[]byte); ok {
			return b
		}
	}
	b := make([]byte, dirBufSize)
	return &b
}

func (l *lister) put(b *[]byte) {
	if l != nil {
		l.bufs.Put(b)
	}
}

// readDirKey lists a directory with getdents64 directly (types from
// d_type, no per-entry stat; unknown types are stat'ed) and returns the
// directory's identity as of before the listing.
func (l *lister) readDirKey(dir string) ([]dirEntry, statKey, error) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, statKey{}, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, statKey{}, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	key := keyOf(&st)
	bp := l.buf()
	defer l.put(bp)
	buf := *bp
	var out []dirEntry
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, key, &os.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			return out, key, nil
		}
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(b[16]) | int(b[17])<<8
			if reclen < 19 || reclen > len(b) {
				break
			}
			typ := b[18]
			name := b[19:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			b = b[reclen:]
			if len(name) == 1 && name[0] == '.' || len(name) == 2 && name[0] == '.' && name[1] == '.' {
				continue
			}
			s := string(name)
			e := dirEntry{name: s, isDir: typ == syscall.DT_DIR, isLnk: typ == syscall.DT_LNK}
			if typ == syscall.DT_UNKNOWN {
				if st, err := os.Lstat(dir + "/" + s); err == nil {
					e.isDir = st.IsDir()
					e.isLnk = st.Mode()&os.ModeSymlink != 0
				}
			}
			out = append(out, e)
		}
	}
}

// cacheSupported: the recipe cache trusts ctime and inode numbers.
const cacheSupported = true

func keyOf(st *syscall.Stat_t) statKey {
	return statKey{Exists: true, Mode: st.Mode, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
		Ino: st.Ino, Dev: st.Dev}
}

// modeTypeMask keeps the file-type bits of statKey.Mode.
const modeTypeMask = syscall.S_IFMT

func (k statKey) isDir() bool     { return k.Mode&syscall.S_IFMT == syscall.S_IFDIR }
func (k statKey) isRegular() bool { return k.Mode&syscall.S_IFMT == syscall.S_IFREG }

func (k statKey) isSymlink() bool { return k.Mode&syscall.S_IFMT == syscall.S_IFLNK }

// lstatPath stats path itself (a symbolic link is not followed).
func lstatPath(path string) (statKey, error) { return statWith(syscall.Lstat, "lstat", path) }

// statPath stats path (following symlinks) for the cache.
func statPath(path string) (statKey, error) { return statWith(syscall.Stat, "stat", path) }

func statWith(stat func(string, *syscall.Stat_t) error, op, path string) (statKey, error) {
	var st syscall.Stat_t
	for {
		err := stat(path, &st)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return statKey{}, &os.PathError{Op: op, Path: path, Err: err}
		}
		return keyOf(&st), nil
	}
}

// rootStatter stats cache paths relative to an open root directory: the
// kernel then walks only the components below the root (about 15% cheaper
// per call on deep workspace paths). Absolute paths (outside the root) are
// stat'ed whole.
type rootStatter struct {
	root string
	fd   int
}

func openRootStatter(root string) *rootStatter {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		fd = -1
	}
	return &rootStatter{root: root, fd: fd}
}

func (s *rootStatter) close() {
	if s.fd >= 0 {
		unix.Close(s.fd)
	}
}

// stat stats a cache path: relative ones through the root's fd (or
// joined to the root when it could not be opened), absolute ones whole.
func (s *rootStatter) stat(p string) (statKey, error) {
	if filepath.IsAbs(p) {
		return statPath(p)
	}
	if s.fd < 0 {
		return statPath(filepath.Join(s.root, p))
	}
	var st unix.Stat_t
	for {
		err := unix.Fstatat(s.fd, p, &st, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return statKey{}, &os.PathError{Op: "stat", Path: p, Err: err}
		}
		return statKey{Exists: true, Mode: st.Mode, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
			Ino: st.Ino, Dev: st.Dev}, nil
	}
}
