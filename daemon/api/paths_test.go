package api

import (
	"os"
	"strings"
	"testing"
)

// TestPathsFallback: $XDG_RUNTIME_DIR when it exists, else .chefd in
// the workspace; too long socket paths move to the temp dir.
func TestPathsFallback(t *testing.T) {
	ws, rt := t.TempDir(), t.TempDir()
	p, err := ResolvePaths(ws, rt)
	must(t, err == nil && strings.HasPrefix(p.Dir, rt+"/chefd/") && len(p.ID) == 12, "runtime dir: %+v %v", p, err)
	p2, _ := ResolvePaths(ws, rt+"/missing")
	must(t, p2.Dir == ws+"/.chefd" && p2.ID == p.ID, "fallback: %+v", p2)
	must(t, p2.Ensure() == nil, "ensure")
	_, err = os.Stat(ws + "/.chefd/.gitignore")
	must(t, err == nil, ".gitignore: %v", err)
	deep := ws + "/" + strings.Repeat("d", 120)
	p3, _ := ResolvePaths(deep, "")
	must(t, len(p3.Socket) <= maxSocketPath && strings.HasPrefix(p3.Socket, os.TempDir()), "long socket %s", p3.Socket)
}

func must(t *testing.T, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}
