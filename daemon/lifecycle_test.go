package daemon

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/chefd/chefd/daemon/api"
)

// TestSpawnReportsAnEarlyExit: a daemon that exits before it answers is
// reported at once (not after the start timeout), with its log's last lines.
func TestSpawnReportsAnEarlyExit(t *testing.T) {
	paths, err := api.ResolvePaths(t.TempDir(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Spawn(context.Background(), paths, t.TempDir(), "/bin/sh", []string{"-c", "echo 'cannot watch: boom' >&2; exit 3"})
	if err == nil || !strings.Contains(err.Error(), ErrExited.Error()) || !strings.Contains(err.Error(), "cannot watch: boom") {
		t.Fatalf("Spawn of a daemon that exits: %v", err)
	}
}

func TestOpenLogRotates(t *testing.T) {
	path := t.TempDir() + "/daemon.log"
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, LogMax+1); err != nil {
		t.Fatal(err)
	}
	f, err := OpenLog(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if st, err := os.Stat(path); err != nil || st.Size() != 0 {
		t.Fatalf("the log was not rotated: %v %v", st, err)
	}
	if _, err := os.Stat(path + ".1"); errors.Is(err, os.ErrNotExist) {
		t.Fatal("no .1 after rotation")
	}
}
