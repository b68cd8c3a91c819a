package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// impostor listens on socket and answers every request as a daemon would,
// with an image ID of its choice.
func impostor(t *testing.T, socket string) {
	t.Helper()
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/build" {
			_ = json.NewEncoder(w).Encode(map[string]any{"record": Record{ID: 1, Result: ResultOK, ImageID: "sha256:evil"}})
			return
		}
		_ = json.NewEncoder(w).Encode(Info{PID: 4242, Version: "impostor"})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// TestClientTrustsOnlyItsUser: the client talks to a daemon socket only
// when the socket and its directory are the user's, the directory is
// writable by no one else, and the process listening runs as the user
// (SO_PEERCRED); a planted directory or socket is refused with an error
// naming it and the way out. No socket is no daemon.
func TestClientTrustsOnlyItsUser(t *testing.T) {
	other := os.Getuid() + 1
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir, socket string) // dir exists (0700), socket not yet
		client  func(c *Client)
		listen  bool
		wantErr string // "" : the ping succeeds; "not running": ErrNotRunning; else *UntrustedError containing it
		named   string // "dir" or "socket": what the error names
	}{
		{name: "the user's own daemon", listen: true},
		{name: "directory writable by others", listen: true, wantErr: "writable by group or others", named: "dir",
			setup: func(t *testing.T, dir, _ string) { chmod(t, dir, 0o777) }},
		{name: "directory writable by the group", listen: true, wantErr: "writable by group or others", named: "dir",
			setup: func(t *testing.T, dir, _ string) { chmod(t, dir, 0o770) }},
		{name: "directory of another user", listen: true, wantErr: "belongs to uid", named: "dir",
			client: func(c *Client) { c.uid = other }},
		{name: "directory is a symlink to a planted one", listen: true, wantErr: "writable by group or others", named: "dir",
			setup: func(t *testing.T, dir, _ string) {
				planted := t.TempDir()
				chmod(t, planted, 0o777)
				must(t, os.Remove(dir) == nil && os.Symlink(planted, dir) == nil, "symlink")
			}},
		{name: "daemon run by another user", listen: true, wantErr: "served by a process of uid", named: "socket",
			client: func(c *Client) { c.peerUID = other }},
		{name: "no directory", wantErr: "not running",
			setup: func(t *testing.T, dir, _ string) { must(t, os.Remove(dir) == nil, "remove") }},
		{name: "no socket", wantErr: "not running"},
		{name: "a regular file as the socket", wantErr: "not running",
			setup: func(t *testing.T, _, socket string) { must(t, os.WriteFile(socket, nil, 0o600) == nil, "write") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "chefd-uid")
			must(t, os.Mkdir(dir, 0o700) == nil, "mkdir")
			socket := filepath.Join(dir, "abc.sock")
			if tt.setup != nil {
				tt.setup(t, dir, socket)
			}
			if tt.listen {
				impostor(t, socket)
			}
			c := NewClient(socket)
			defer c.Close()
			if tt.client != nil {
				tt.client(c)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			info, err := c.Ping(ctx)
			rec, berr := c.Build(ctx, BuildRequest{Wait: true}, nil)
			switch tt.wantErr {
			case "":
				must(t, err == nil && info.PID == 4242 && berr == nil && rec.ImageID == "sha256:evil", "ping %+v %v; build %v %v", info, err, rec, berr)
			case "not running":
				must(t, errors.Is(err, ErrNotRunning) && errors.Is(berr, ErrNotRunning), "ping: %v; build: %v; want ErrNotRunning", err, berr)
			default:
				var ue *UntrustedError
				must(t, errors.As(err, &ue) && strings.Contains(err.Error(), tt.wantErr), "ping: %+v %v; want an UntrustedError %q", info, err, tt.wantErr)
				must(t, errors.As(berr, &ue) && rec.ImageID == "", "build answered: %+v %v", rec, berr)
				want := dir
				if tt.named == "socket" {
					want = socket
				}
				must(t, ue.Path == want && strings.HasPrefix(err.Error(), want+" "), "the error names %q, want %q: %v", ue.Path, want, err)
				must(t, strings.Contains(err.Error(), "TMPDIR"), "no fix in %v", err)
			}
		})
	}
}

// TestEnsureRefusesAnUntrustedDir: the daemon does not put its socket in
// a directory writable by others (a planted $TMPDIR/chefd-<uid>); the
// error names it.
func TestEnsureRefusesAnUntrustedDir(t *testing.T) {
	ws, sockDir := t.TempDir(), filepath.Join(t.TempDir(), "chefd-uid")
	p, err := ResolvePaths(ws, "")
	must(t, err == nil, "resolve: %v", err)
	p.Socket = filepath.Join(sockDir, p.ID+".sock")
	must(t, os.Mkdir(sockDir, 0o777) == nil, "mkdir")
	chmod(t, sockDir, 0o777)
	err = p.Ensure()
	var ue *UntrustedError
	must(t, errors.As(err, &ue) && ue.Path == sockDir && strings.Contains(err.Error(), sockDir+" is writable by group or others"),
		"Ensure with a socket directory of mode 0777: %v", err)
	chmod(t, sockDir, 0o700)
	must(t, p.Ensure() == nil, "Ensure with a private socket directory")
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestHelperForeignListener is not a test: run as a child process by
// TestClientRefusesAForeignListener (as root), it binds the socket as
// root, becomes nobody, listens and answers as a daemon would.
func TestHelperForeignListener(t *testing.T) {
	path := os.Getenv("CHEFD_TEST_FOREIGN_SOCKET")
	if path == "" {
		t.Skip("helper process")
	}
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		fail(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		fail(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		fail(err)
	}
	// the socket file and its directory are root's; the listener is not
	if err := syscall.Setgid(nobody); err != nil {
		fail(err)
	}
	if err := syscall.Setuid(nobody); err != nil {
		fail(err)
	}
	if err := syscall.Listen(fd, 8); err != nil {
		fail(err)
	}
	ln, err := net.FileListener(os.NewFile(uintptr(fd), path))
	if err != nil {
		fail(err)
	}
	fmt.Println("listening")
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(Info{PID: 4242, Version: "impostor"})
	}))
	os.Exit(0)
}

const nobody = 65534

// TestClientRefusesAForeignListener: a process of another user listening
// on a socket that is yours, in a directory of yours (it was handed the
// bound socket), is refused through SO_PEERCRED. Needs root (to run a
// process as another user).
func TestClientRefusesAForeignListener(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a listener as another user (the injected-uid case of TestClientTrustsOnlyItsUser runs everywhere)")
	}
	dir := t.TempDir()
	socket := filepath.Join(dir, "abc.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperForeignListener$")
	cmd.Env = append(os.Environ(), "CHEFD_TEST_FOREIGN_SOCKET="+socket)
	out, err := cmd.StdoutPipe()
	must(t, err == nil, "pipe: %v", err)
	must(t, cmd.Start() == nil, "start the helper")
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		must(t, strings.TrimSpace(s) == "listening", "helper: %q", s)
	case <-time.After(10 * time.Second):
		t.Fatal("the helper does not listen")
	}
	c := NewClient(socket)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := c.Ping(ctx)
	var ue *UntrustedError
	must(t, errors.As(err, &ue) && ue.Path == socket && strings.Contains(err.Error(), fmt.Sprintf("served by a process of uid %d", nobody)),
		"ping of a listener of uid %d: %+v %v; want an UntrustedError naming %s", nobody, info, err, socket)
}
