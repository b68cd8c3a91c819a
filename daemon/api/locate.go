package api

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/chefd/chefd/internal/flock"
	"github.com/chefd/chefd/internal/safefile"
)

// RunningFile is where the running daemon records its Info (its socket
// and log above all), next to the lock: a client whose environment
// resolves other paths (another $XDG_RUNTIME_DIR) finds the daemon there.
func (p Paths) RunningFile() string { return filepath.Join(filepath.Dir(p.Lock), "daemon.json") }

// maxRunningFile bounds what ReadRunning reads.
const maxRunningFile = 64 << 10

// WriteRunning records info in p.RunningFile (the daemon, once it listens).
func WriteRunning(p Paths, info Info) error {
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := p.RunningFile() + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("record the running daemon: %w", err)
	}
	if err := os.Rename(tmp, p.RunningFile()); err != nil {
		return fmt.Errorf("record the running daemon: %w", err)
	}
	return nil
}

// ReadRunning returns the Info recorded by the daemon that holds p.Lock
// now; false when none holds it, or it recorded nothing (yet), or the
// record is another daemon's (a crashed one's).
func ReadRunning(p Paths) (Info, bool) {
	held, pid := flock.Held(p.Lock)
	if !held || pid <= 0 {
		return Info{}, false
	}
	data, err := safefile.ReadRegular(p.RunningFile(), maxRunningFile) // never blocks on a FIFO
	if err != nil {
		return Info{}, false
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil {
		return Info{}, false
	}
	if info.PID != pid || info.Paths.Root != p.Root || info.Paths.Socket == "" {
		return Info{}, false
	}
	return info, true
}

// Locate returns the paths of root's daemon as a client should use them:
// those of the running daemon when one runs, wherever its environment put
// its socket and log; else ResolvePaths(root, runtimeDir). The client
// still checks that the socket is yours (Client).
func Locate(root, runtimeDir string) (Paths, error) {
	p, err := ResolvePaths(root, runtimeDir)
	if err != nil {
		return p, err
	}
	if info, ok := ReadRunning(p); ok {
		p.Dir, p.Socket, p.Log = info.Paths.Dir, info.Paths.Socket, info.Paths.Log
	}
	return p, nil
}
