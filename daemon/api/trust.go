package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// UntrustedError says that a daemon socket, or the directory it is in,
// could belong to someone else: the client does not talk to it, and the
// daemon does not listen there. Another local user can plant the directory
// of a socket that moved to $TMPDIR/chefd-<uid>/ (see ResolvePaths) and
// answer in the daemon's place.
type UntrustedError struct {
	Path   string // the directory or socket
	Reason string // what is wrong with it
	Fix    string // what to do
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("%s %s: chefd does not trust a daemon socket there; %s", e.Path, e.Reason, e.Fix)
}

// dirFix is the way out of an untrusted socket directory.
func dirFix(dir string) string {
	return fmt.Sprintf("remove %s if it is yours (if it is not, another user planted it: ask an administrator), "+
		"or set TMPDIR (or a short XDG_RUNTIME_DIR) to a directory only you can write", dir)
}

// fileOwner is the uid that owns fi (-1 when the platform does not say).
func fileOwner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// checkDir verifies that dir, where a daemon socket lives, can be trusted
// by uid: a directory (a symlink to one is followed: the link and the
// directory must be uid's) owned by uid and writable by nobody else, so
// that no one else can put a socket there. A missing directory is
// returned as the fs error (fs.ErrNotExist: no daemon).
func checkDir(dir string, uid int) error {
	li, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if o := fileOwner(li); o >= 0 && o != uid {
		return &UntrustedError{Path: dir, Reason: fmt.Sprintf("belongs to uid %d, not to you (uid %d)", o, uid), Fix: dirFix(dir)}
	}
	fi := li
	if li.Mode()&fs.ModeSymlink != 0 {
		if fi, err = os.Stat(dir); err != nil {
			return err
		}
	}
	if !fi.IsDir() {
		return &UntrustedError{Path: dir, Reason: "is not a directory", Fix: dirFix(dir)}
	}
	if o := fileOwner(fi); o >= 0 && o != uid {
		return &UntrustedError{Path: dir, Reason: fmt.Sprintf("belongs to uid %d, not to you (uid %d)", o, uid), Fix: dirFix(dir)}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return &UntrustedError{Path: dir, Reason: fmt.Sprintf("is writable by group or others (mode %04o), so anyone could replace the socket in it", perm),
			Fix: fmt.Sprintf("run chmod 700 %s (or remove it), or set TMPDIR (or a short XDG_RUNTIME_DIR) to a directory only you can write", dir)}
	}
	return nil
}

// checkSocket verifies a socket before the client connects: its directory
// (checkDir), then the socket itself, which must be uid's. Anything else
// than a socket in a trusted directory is no daemon (the daemon refuses to
// listen over it): its fs error, or ECONNREFUSED.
func checkSocket(socket string, uid int) error {
	if err := checkDir(filepath.Dir(socket), uid); err != nil {
		return err
	}
	fi, err := os.Lstat(socket)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return &net.OpError{Op: "dial", Net: "unix", Err: syscall.ECONNREFUSED}
	}
	if o := fileOwner(fi); o >= 0 && o != uid {
		return &UntrustedError{Path: socket, Reason: fmt.Sprintf("belongs to uid %d, not to you (uid %d)", o, uid),
			Fix: "stop that daemon or remove the socket"}
	}
	return nil
}

// dialTrusted connects to socket after checkSocket, and keeps the
// connection only when the process at the other end runs as peerUID
// (SO_PEERCRED, LOCAL_PEERCRED on macOS).
func dialTrusted(ctx context.Context, socket string, uid, peerUID int) (net.Conn, error) {
	if err := checkSocket(socket, uid); err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, err
	}
	if err := checkPeer(conn, socket, peerUID); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// checkPeer verifies that the process that listens on conn runs as uid.
func checkPeer(conn net.Conn, socket string, uid int) error {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("daemon socket %s: not a unix connection", socket)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("daemon socket %s: %w", socket, err)
	}
	peer := -1
	var credErr error
	if err := rc.Control(func(fd uintptr) { peer, credErr = peerUID(int(fd)) }); err != nil {
		return fmt.Errorf("daemon socket %s: %w", socket, err)
	}
	if errors.Is(credErr, errNoPeerCred) {
		return nil // the platform cannot tell: the file checks stand
	}
	if credErr != nil {
		return fmt.Errorf("daemon socket %s: cannot read the credentials of the process listening on it: %w", socket, credErr)
	}
	if peer != uid {
		return &UntrustedError{Path: socket, Reason: fmt.Sprintf("is served by a process of uid %d, not by you (uid %d)", peer, uid),
			Fix: "stop the process that listens on it, or set TMPDIR (or a short XDG_RUNTIME_DIR) to a directory only you can write"}
	}
	return nil
}

// errNoPeerCred: the platform has no way to read a peer's credentials.
var errNoPeerCred = errors.New("peer credentials not supported")
