package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/internal/flock"
)

// TestDaemonHelperHoldLock is not a test: run as a child process by
// TestDaemonStaleLockAndSocket, it takes the lock, says so, and sleeps
// until it is killed.
func TestDaemonHelperHoldLock(t *testing.T) {
	path := os.Getenv("CHEFD_TEST_HOLD_LOCK")
	if path == "" {
		t.Skip("helper process")
	}
	if _, _, err := AcquireLock(path); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// holdLock starts a child process that holds the lock at path.
func holdLock(t *testing.T, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDaemonHelperHoldLock$")
	cmd.Env = append(os.Environ(), "CHEFD_TEST_HOLD_LOCK="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if strings.TrimSpace(s) != "locked" {
			t.Fatalf("helper: %q", s)
		}
	case <-time.After(guard):
		t.Fatal("the helper did not take the lock")
	}
	return cmd
}

// TestDaemonStaleLockAndSocket: a daemon killed with SIGKILL leaves its
// socket and its pid in the lock file; the next start takes both over. A
// live holder makes start fail with BusyError.
func TestDaemonStaleLockAndSocket(t *testing.T) {
	paths, err := api.ResolvePaths(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	must(t, paths.Ensure() == nil, "ensure")

	// a live holder: start fails, naming its pid
	holder := holdLock(t, paths.Lock)
	held, pid := flock.Held(paths.Lock)
	must(t, held && pid == holder.Process.Pid, "LockHeld = %v, %d; want true, %d", held, pid, holder.Process.Pid)
	_, _, err = AcquireLock(paths.Lock)
	var busy *BusyError
	must(t, errors.As(err, &busy) && busy.PID == holder.Process.Pid, "AcquireLock: %v", err)
	errc := make(chan error, 1)
	go func() {
		errc <- Run(t.Context(), Config{Paths: paths, Builder: newFakeBuilder(), Plan: (&fakePlan{r: fakeRecipe("a")}).plan})
	}()
	select {
	case err := <-errc:
		must(t, errors.As(err, &busy), "Run with a live daemon: %v", err)
	case <-time.After(guard):
		t.Fatal("Run did not refuse")
	}

	// kill -9: the pid stays in the lock file, the kernel drops the flock
	must(t, holder.Process.Signal(syscall.SIGKILL) == nil, "kill")
	holder.Wait()
	must(t, flock.ReadPID(paths.Lock) == holder.Process.Pid && !processAlive(holder.Process.Pid), "lock file pid %d", flock.ReadPID(paths.Lock))
	// and a stale socket: bound, nobody listening
	ln, err := net.Listen("unix", paths.Socket)
	must(t, err == nil, "listen: %v", err)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	_, err = os.Stat(paths.Socket)
	must(t, err == nil, "stale socket missing: %v", err)
	_, err = api.NewClient(paths.Socket).Ping(t.Context())
	must(t, errors.Is(err, api.ErrNotRunning), "ping on a stale socket: %v", err)

	a := fakeRecipe("a")
	d := startDaemon(t, newFakeBuilder(a), a, &paths)
	info, err := d.c.Ping(d.ctx())
	must(t, err == nil && info.PID == os.Getpid(), "ping after recovery: %+v %v", info, err)
	must(t, flock.ReadPID(paths.Lock) == os.Getpid(), "lock pid %d", flock.ReadPID(paths.Lock))

	// a plain file where the socket goes is not removed
	other, _ := api.ResolvePaths(t.TempDir(), "")
	must(t, other.Ensure() == nil, "ensure")
	must(t, os.WriteFile(other.Socket, []byte("mine"), 0o600) == nil, "write")
	err = Run(t.Context(), Config{Paths: other, Builder: newFakeBuilder(), Plan: (&fakePlan{r: a}).plan})
	must(t, err != nil && strings.Contains(err.Error(), "not a socket"), "Run over a regular file: %v", err)
}

// processAlive reports whether pid runs (EPERM: it runs as someone else).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
