package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"github.com/chefd/chefd/internal/flock"
)

// Lock is the per-workspace daemon lock on Paths.Lock (package flock: the
// kernel releases it when its holder dies, kill -9 included, so a lock
// file left behind by a crash never blocks a new daemon). The file holds
// the pid of the daemon while it runs and is emptied on a clean stop.
type Lock struct{ l *flock.Lock }

// BusyError says another daemon holds the lock.
type BusyError struct {
	PID    int
	Lock   string
	Socket string // where it listens, when it has said so (api.ReadRunning)
}

func (e *BusyError) Error() string {
	var where []string
	if e.PID > 0 {
		where = append(where, fmt.Sprintf("pid %d", e.PID))
	}
	if e.Socket != "" {
		where = append(where, "socket "+e.Socket)
	}
	where = append(where, "lock "+e.Lock)
	return fmt.Sprintf("a chefd daemon already runs for this workspace (%s); one daemon runs per workspace, "+
		"whatever XDG_RUNTIME_DIR: stop it with chefd stop", strings.Join(where, ", "))
}

// AcquireLock takes the lock without waiting. stalePID is the pid a
// previous daemon left in the file without stopping cleanly (it no longer
// holds the lock, so it is dead); 0 when there was none.
func AcquireLock(path string) (l *Lock, stalePID int, err error) {
	fl, stalePID, err := flock.TryLock(path)
	var busy *flock.BusyError
	if errors.As(err, &busy) {
		return nil, 0, &BusyError{PID: busy.PID, Lock: path}
	}
	if err != nil {
		return nil, 0, err
	}
	return &Lock{l: fl}, stalePID, nil
}

// Release empties the pid and unlocks.
func (l *Lock) Release() error {
	if l == nil {
		return nil
	}
	return l.l.Unlock()
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
