package api

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/chefd/chefd/dockerctl"
)

// Paths are where a workspace's daemon keeps its state. The socket and
// the log follow the environment ($XDG_RUNTIME_DIR); the lock, the state
// and the running daemon's record (RunningFile) are anchored in the
// workspace, so that one daemon runs for a workspace whatever the
// environment of `chefd start`, and clients in another environment find it
// (Locate).
type Paths struct {
	Root   string `json:"root"`   // absolute workspace root
	ID     string `json:"id"`     // short hash of Root
	Dir    string `json:"dir"`    // $XDG_RUNTIME_DIR/chefd/<id>, else <root>/.chefd
	Socket string `json:"socket"` // the API's unix socket (mode 0600)
	Lock   string `json:"lock"`   // <root>/.chefd/chefd.lock: flock'ed by the running daemon; holds its pid
	Log    string `json:"log"`    // the daemon's JSON log
	State  string `json:"state"`  // <root>/.chefd/state.json: history kept across restarts
}

// maxSocketPath keeps socket paths under the sun_path limit (108 on
// Linux, 104 on the BSDs) with a margin.
const maxSocketPath = 100

// ResolvePaths returns the paths of root's daemon. runtimeDir is
// $XDG_RUNTIME_DIR ("" or a missing directory: <root>/.chefd is used). A
// socket path too long for a unix socket moves to
// $TMPDIR/chefd-<uid>/<id>.sock. The lock and the state are in
// <root>/.chefd whatever runtimeDir, unless the workspace is read-only to
// you (then they are in Dir: one daemon per workspace and environment).
func ResolvePaths(root, runtimeDir string) (Paths, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return Paths{}, fmt.Errorf("workspace %s: %w", root, err)
	}
	id := dockerctl.WorkspaceID(abs)
	anchor := filepath.Join(abs, ".chefd")
	dir := anchor
	if runtimeDir != "" && filepath.IsAbs(runtimeDir) {
		if st, err := os.Stat(runtimeDir); err == nil && st.IsDir() {
			dir = filepath.Join(runtimeDir, "chefd", id)
		}
	}
	if !canAnchor(abs, anchor) {
		anchor = dir
	}
	p := Paths{Root: abs, ID: id, Dir: dir,
		Socket: filepath.Join(dir, "chefd.sock"),
		Lock:   filepath.Join(anchor, "chefd.lock"),
		Log:    filepath.Join(dir, "daemon.log"),
		State:  filepath.Join(anchor, "state.json"),
	}
	if len(p.Socket) > maxSocketPath {
		p.Socket = filepath.Join(os.TempDir(), "chefd-"+strconv.Itoa(os.Getuid()), id+".sock")
	}
	return p, nil
}

// canAnchor reports whether the daemon's lock can live in the workspace:
// .chefd exists, or the workspace is writable to create it.
func canAnchor(root, anchor string) bool {
	if st, err := os.Stat(anchor); err == nil {
		return st.IsDir()
	}
	return unix.Access(root, unix.W_OK) == nil
}

// Ensure creates the state directory (mode 0700) and the socket's
// directory, and refuses them when they could be someone else's: not
// yours, or writable by group or others (*UntrustedError, naming the
// directory and the fix). Inside the workspace it also writes
// .chefd/.gitignore.
func (p Paths) Ensure() error {
	seen := map[string]bool{}
	for _, d := range []string{p.Dir, filepath.Dir(p.Socket), filepath.Dir(p.Lock), filepath.Dir(p.State)} {
		if seen[d] {
			continue // the lock and the state share a directory, often with the rest
		}
		seen[d] = true
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		if err := checkDir(d, os.Getuid()); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
	}
	ws := filepath.Join(p.Root, ".chefd")
	if p.Dir == ws || filepath.Dir(p.Lock) == ws {
		gi := filepath.Join(ws, ".gitignore")
		if _, err := os.Stat(gi); errors.Is(err, fs.ErrNotExist) {
			_ = os.WriteFile(gi, []byte("# chefd daemon state (socket, lock, log)\n*\n"), 0o600)
		}
	}
	return nil
}
