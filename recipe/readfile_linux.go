package recipe

import (
	"os"
	"syscall"
)

// readFile reads a whole file with plain system calls: no poller
// registration and no extra fcntl, which matters when prepare reads a
// thousand manifests.
func readFile(path string) ([]byte, error) {
	data, _, err := readFileKey(path)
	return data, err
}

// readFileKey is readFile that also returns the file's identity as of
// before the read (a change during the read makes the key stale, never
// the reverse).
func readFileKey(path string) ([]byte, statKey, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, statKey{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, statKey{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	key := keyOf(&st)
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return nil, key, &os.PathError{Op: "read", Path: path, Err: syscall.EISDIR}
	}
	buf := make([]byte, 0, st.Size+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, key, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, key, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// dirEntry is a name and its type bits from the directory listing.
type dirEntry struct {
	name  string
	isDir bool
	isLnk bool
}

// readDir lists a directory with getdents64 directly (types from d_type,
// no per-entry stat). Unknown types are stat'ed.
func readDir(dir string) ([]dirEntry, error) {
	ents, _, err := readDirKey(dir)
	return ents, err
}

// readDirKey is readDir that also returns the directory's identity as of
// before the listing.
func readDirKey(dir string) ([]dirEntry, statKey, error) {
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
	var out []dirEntry
	buf := make([]byte, 16<<10)
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
			s := string(name)
			if s == "." || s == ".." {
				continue
			}
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

// statPath stats path (following symlinks) for the cache.
func statPath(path string) (statKey, error) {
	var st syscall.Stat_t
	for {
		err := syscall.Stat(path, &st)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return statKey{}, &os.PathError{Op: "stat", Path: path, Err: err}
		}
		return keyOf(&st), nil
	}
}
