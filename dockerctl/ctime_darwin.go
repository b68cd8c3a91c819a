package dockerctl

import (
	"io/fs"
	"syscall"
)

// statIdentity is a file's change time and inode, for the daemon's
// "is the workspace what the build shipped" check (0, 0 when unknown).
func statIdentity(info fs.FileInfo) (ctime int64, ino uint64) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ctimespec.Nano(), st.Ino
	}
	return 0, 0
}
