package api

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/chefd/chefd/dockerctl"
)

// Paths are where a workspace's daemon keeps its state.
type Paths struct {
	Root   string `json:"root"`   // absolute workspace root
	ID     string `json:"id"`     // short hash of Root
	Dir    string `json:"dir"`    // $XDG_RUNTIME_DIR/chefd/<id>, else <root>/.chefd
	Socket string `json:"socket"` // the API's unix socket (mode 0600)
	Lock   string `json:"lock"`   // flock'ed by the running daemon; holds its pid
	Log    string `json:"log"`    // the daemon's JSON log
	State  string `json:"state"`  // history kept across restarts
}

// maxSocketPath keeps socket paths under the sun_path limit (108 on
// Linux, 104 on the BSDs) with a margin.
const maxSocketPath = 100

// ResolvePaths returns the paths of root's daemon. runtimeDir is
// $XDG_RUNTIME_DIR ("" or a missing directory: <root>/.chefd is used). A
// socket path too long for a unix socket moves to
// $TMPDIR/chefd-<uid>/<id>.sock.
func ResolvePaths(root, runtimeDir string) (Paths, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return Paths{}, fmt.Errorf("workspace %s: %w", root, err)
	}
	id := dockerctl.WorkspaceID(abs)
	dir := filepath.Join(abs, ".chefd")
	if runtimeDir != "" && filepath.IsAbs(runtimeDir) {
		if st, err := os.Stat(runtimeDir); err == nil && st.IsDir() {
			dir = filepath.Join(runtimeDir, "chefd", id)
		}
	}
	p := Paths{Root: abs, ID: id, Dir: dir,
		Socket: filepath.Join(dir, "chefd.sock"),
		Lock:   filepath.Join(dir, "chefd.lock"),
		Log:    filepath.Join(dir, "daemon.log"),
		State:  filepath.Join(dir, "state.json"),
	}
	if len(p.Socket) > maxSocketPath {
		p.Socket = filepath.Join(os.TempDir(), "chefd-"+strconv.Itoa(os.Getuid()), id+".sock")
	}
	return p, nil
}

// Ensure creates the state directory (mode 0700) and the socket's
// directory. Inside the workspace it also writes .chefd/.gitignore.
func (p Paths) Ensure() error {
	for _, d := range []string{p.Dir, filepath.Dir(p.Socket)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
			return fmt.Errorf("state directory %s belongs to uid %d, not to you", d, sys.Uid)
		}
	}
	if p.Dir == filepath.Join(p.Root, ".chefd") {
		gi := filepath.Join(p.Dir, ".gitignore")
		if _, err := os.Stat(gi); errors.Is(err, fs.ErrNotExist) {
			_ = os.WriteFile(gi, []byte("# chefd daemon state (socket, lock, log)\n*\n"), 0o600)
		}
	}
	return nil
}
