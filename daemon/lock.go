package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"syscall"
)

// Lock is the per-workspace daemon lock: an flock on Paths.Lock, which
// the kernel releases when its holder dies (kill -9 included), so a lock
// file left behind by a crash never blocks a new daemon. The file holds
// the pid of the daemon while it runs and is emptied on a clean stop.
type Lock struct {
	f    *os.File
	path string
}

// BusyError says another daemon holds the lock.
type BusyError struct {
	PID  int
	Lock string
}

func (e *BusyError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("a chefd daemon already runs for this workspace (pid %d, lock %s)", e.PID, e.Lock)
	}
	return fmt.Sprintf("a chefd daemon already runs for this workspace (lock %s)", e.Lock)
}

// AcquireLock takes the lock without waiting. stalePID is the pid a
// previous daemon left in the file without stopping cleanly (it no longer
// holds the lock, so it is dead); 0 when there was none.
func AcquireLock(path string) (l *Lock, stalePID int, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, 0, &BusyError{PID: readPID(path), Lock: path}
		}
		return nil, 0, fmt.Errorf("lock %s: %w", path, err)
	}
	if prev := readPID(path); prev > 0 && prev != os.Getpid() {
		stalePID = prev
	}
	// the pid is informative (status, takeover messages): the lock holds without it
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f, path: path}, stalePID, nil
}

// Release empties the pid and unlocks. The file stays: removing a lock
// file races with a daemon that has just opened it.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// LockHeld reports whether a daemon holds the lock at path, and its pid.
func LockHeld(path string) (bool, int) {
	f, err := os.Open(path)
	if err != nil {
		return false, 0
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK), readPID(path)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false, 0
}

// listenSocket listens on the unix socket at path (mode 0600). The caller
// holds the lock, so a file already there is a stale socket of a crashed
// daemon and is removed; anything that is not a socket is left alone.
func listenSocket(path string) (net.Listener, bool, error) {
	stale := false
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, false, fmt.Errorf("%s exists and is not a socket; remove it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, false, fmt.Errorf("remove stale socket: %w", err)
		}
		stale = true
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, stale, fmt.Errorf("listen: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, stale, fmt.Errorf("listen: %w", err)
	}
	return ln, stale, nil
}
