package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/chefd/chefd/daemon/api"
)

// StartTimeout bounds how long Spawn and WaitReady wait for a new daemon
// to answer.
const StartTimeout = 10 * time.Second

// LogMax is the size above which the daemon log is rotated (to .1) when a
// daemon starts.
const LogMax = 10 << 20

// ErrExited says the daemon exited before it answered.
var ErrExited = errors.New("the daemon exited before answering")

// OpenLog opens the daemon log at path for appending, first moving a log
// larger than LogMax to path.1.
func OpenLog(path string) (*os.File, error) {
	if st, err := os.Stat(path); err == nil && st.Size() > LogMax {
		_ = os.Rename(path, path+".1")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon log: %w", err)
	}
	return f, nil
}

// Spawn starts a daemon in the background: exe with args, in dir, in a new
// session, its output appended to the daemon log; then waits until it
// answers on the socket. When it does not (it exited, or StartTimeout
// passed), the error ends with the last lines of the log.
func Spawn(ctx context.Context, paths api.Paths, dir, exe string, args []string) (api.Info, error) {
	if err := paths.Ensure(); err != nil {
		return api.Info{}, err
	}
	logf, err := OpenLog(paths.Log)
	if err != nil {
		return api.Info{}, err
	}
	child := exec.Command(exe, args...)
	child.Dir = dir
	child.Stdout, child.Stderr = logf, logf
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = child.Start()
	logf.Close()
	if err != nil {
		return api.Info{}, fmt.Errorf("start: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	c := api.NewClient(paths.Socket)
	defer c.Close()
	info, err := WaitReady(ctx, c, exited)
	if err != nil {
		msg := fmt.Sprintf("the daemon did not answer within %s: %v", StartTimeout, err)
		if errors.Is(err, ErrExited) {
			msg = err.Error()
		}
		var tail bytes.Buffer
		_ = api.TailLog(context.Background(), paths.Log, 15, false, &tail, api.FormatLogLine, nil)
		if tail.Len() > 0 {
			msg += fmt.Sprintf("\nlast lines of %s:\n%s", paths.Log, strings.TrimRight(tail.String(), "\n"))
		} else {
			msg += fmt.Sprintf(" (log: %s)", paths.Log)
		}
		return api.Info{}, errors.New(msg)
	}
	_ = child.Process.Release()
	return info, nil
}

// WaitReady polls the socket until the daemon answers, exited reports its
// end (nil: not watched), or StartTimeout passes.
func WaitReady(ctx context.Context, c *api.Client, exited <-chan error) (api.Info, error) {
	deadline := time.NewTimer(StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		info, err := c.Ping(pctx)
		cancel()
		if err == nil {
			return info, nil
		}
		last = err
		select {
		case err := <-exited:
			if err == nil {
				return api.Info{}, ErrExited
			}
			return api.Info{}, fmt.Errorf("%w (%v)", ErrExited, err)
		case <-deadline.C:
			return api.Info{}, last
		case <-ctx.Done():
			return api.Info{}, ctx.Err()
		case <-tick.C:
		}
	}
}
