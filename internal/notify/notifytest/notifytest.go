// Package notifytest runs a private D-Bus session bus (Debian's
// dbus-daemon) and a minimal notification server on it, for tests of
// desktop notifications.
package notifytest

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// Notification is what the server was sent.
type Notification struct {
	App, Summary, Body string
}

// Server owns org.freedesktop.Notifications on a bus and keeps what it
// is sent.
type Server struct {
	mu   sync.Mutex
	got  []Notification
	seen chan struct{}
}

// Notify implements org.freedesktop.Notifications.Notify.
func (s *Server) Notify(app string, replaces uint32, icon, summary, body string, actions []string,
	hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	s.mu.Lock()
	s.got = append(s.got, Notification{app, summary, body})
	n := len(s.got)
	s.mu.Unlock()
	select {
	case s.seen <- struct{}{}:
	default:
	}
	return uint32(n), nil
}

// Wait returns the notifications once there are at least n, or what there
// is after timeout.
func (s *Server) Wait(n int, timeout time.Duration) []Notification {
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		got := append([]Notification(nil), s.got...)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-s.seen:
		case <-deadline:
			return got
		}
	}
}

// Bus starts a private session bus and returns its address. Without
// dbus-daemon the test fails under CI and is skipped elsewhere.
func Bus(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("dbus-daemon is needed (apt-get install dbus-daemon; scripts/test.sh installs it): %v", err)
		}
		t.Skip("no dbus-daemon")
	}
	cmd := exec.Command(bin, "--session", "--nofork", "--nopidfile", "--print-address=1", "--address=unix:dir="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return strings.TrimSpace(line)
}

// Start starts a bus with a notification server on it and returns the
// bus's address and the server.
func Start(t testing.TB) (string, *Server) {
	t.Helper()
	addr := Bus(t)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	srv := &Server{seen: make(chan struct{}, 1)}
	if err := conn.Export(srv, "/org/freedesktop/Notifications", "org.freedesktop.Notifications"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName("org.freedesktop.Notifications", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.freedesktop.Notifications: %v %v", reply, err)
	}
	return addr, srv
}
