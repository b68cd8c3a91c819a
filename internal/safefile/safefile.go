// Package safefile reads the small text files chefd takes from a workspace
// (Cargo.toml, Cargo.lock, chefd.toml, the cargo config, the toolchain
// file) the one safe way: only regular files, and never more than a size
// limit.
//
// Anything else is refused before it is read: opening a FIFO for reading
// blocks until a writer appears (forever, for a stray one), and a device
// such as /dev/zero never ends. The path is stat'ed first (following
// symbolic links, as cargo does) and refused unless it is a regular file;
// it is then opened non-blocking (so a FIFO swapped in after the stat
// cannot block the open) and the open file is stat'ed again, so the check
// holds for what is read. The read stops one byte past the limit.
package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Size limits. Real files are far below them (a 2,000-package Cargo.lock
// is about 300 KB, the largest manifests a few tens of KB); they only stop
// a hostile or broken file from taking the memory.
const (
	// TextLimit bounds Cargo.toml, chefd.toml, .cargo/config(.toml) and
	// rust-toolchain(.toml): 16 MiB.
	TextLimit int64 = 16 << 20
	// LockLimit bounds Cargo.lock and a vendored crate's
	// .cargo-checksum.json (one line per file of the crate): 64 MiB.
	LockLimit int64 = 64 << 20
)

// NotRegularError says a path is not a regular file (a FIFO, a device, a
// socket). A directory is reported as syscall.EISDIR instead.
type NotRegularError struct {
	Path string
	Kind string // "a FIFO", "a character device", ...
}

// Reason is the error without the path.
func (e *NotRegularError) Reason() string {
	return fmt.Sprintf("not a regular file (%s); chefd reads only regular files", e.Kind)
}

func (e *NotRegularError) Error() string { return e.Path + ": " + e.Reason() }

// DanglingError says a path is a symbolic link whose target does not
// exist. It matches fs.ErrNotExist, so a caller that treats a missing
// file as absent must look for it first when a dangling link should be
// an error.
type DanglingError struct {
	Path   string
	Target string
}

// Reason is the error without the path.
func (e *DanglingError) Reason() string {
	return fmt.Sprintf("a symbolic link to %s, which does not exist", e.Target)
}

func (e *DanglingError) Error() string { return e.Path + ": " + e.Reason() }

// Unwrap makes errors.Is(err, fs.ErrNotExist) hold.
func (e *DanglingError) Unwrap() error { return fs.ErrNotExist }

// Absent reports whether err means the file is not there at all: not
// found, and not a symbolic link to nowhere (a dangling link is an error
// to report, never "no such file").
func Absent(err error) bool { return errors.Is(err, fs.ErrNotExist) && Dangling(err) == nil }

// Dangling returns the DanglingError in err's chain, or nil.
func Dangling(err error) *DanglingError {
	var d *DanglingError
	if errors.As(err, &d) {
		return d
	}
	return nil
}

// TooLargeError says a file is larger than the limit chefd reads.
type TooLargeError struct {
	Path  string
	Limit int64
}

// Reason is the error without the path.
func (e *TooLargeError) Reason() string {
	return fmt.Sprintf("larger than %s, the most chefd reads of this file", FormatSize(e.Limit))
}

func (e *TooLargeError) Error() string { return e.Path + ": " + e.Reason() }

// Reason returns the message of a NotRegularError, a TooLargeError or a
// DanglingError without the path, and ok false for any other error.
func Reason(err error) (string, bool) {
	var nr *NotRegularError
	if errors.As(err, &nr) {
		return nr.Reason(), true
	}
	var tl *TooLargeError
	if errors.As(err, &tl) {
		return tl.Reason(), true
	}
	if d := Dangling(err); d != nil {
		return d.Reason(), true
	}
	return "", false
}

// FormatSize writes a byte count in MiB (or bytes below one MiB).
func FormatSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Kind names a file type for messages.
func Kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "an irregular file"
}

// check refuses anything but a regular file: a directory as EISDIR (what
// reading one gives), others as a NotRegularError (naming the target of a
// symbolic link).
func check(path string, m fs.FileMode) error {
	switch {
	case m.IsRegular():
		return nil
	case m.IsDir():
		return &os.PathError{Op: "read", Path: path, Err: syscall.EISDIR}
	}
	kind := Kind(m)
	if target, err := os.Readlink(path); err == nil {
		kind = "a symbolic link to " + target + ", " + kind
	}
	return &NotRegularError{Path: path, Kind: kind}
}

// missing explains a path that does not exist: a DanglingError when it
// is a symbolic link, else err itself.
func missing(path string, err error) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if target, lerr := os.Readlink(path); lerr == nil {
		return &DanglingError{Path: path, Target: target}
	}
	return err
}
