//go:build !linux && !darwin

package dockerctl

import "io/fs"

// statIdentity is unknown here: every file's content is compared.
func statIdentity(fs.FileInfo) (ctime int64, ino uint64) { return 0, 0 }
