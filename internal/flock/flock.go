// Package flock is chefd's one file-lock protocol, for the daemon's lock
// and the lock that serialises builds of one workspace: an flock(2) on a
// file, which the kernel releases when its holder dies (kill -9 included),
// so a lock left behind by a crash never blocks anyone. The file holds the
// holder's pid while it holds the lock (informative: status and takeover
// messages); the lock holds without it.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Lock is a held lock.
type Lock struct {
	f    *os.File
	path string
}

// BusyError says another process holds the lock.
type BusyError struct {
	Path string
	PID  int // 0 when the holder wrote none
}

func (e *BusyError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is locked by pid %d", e.Path, e.PID)
	}
	return e.Path + " is locked"
}

// TryLock takes the lock at path without waiting (a *BusyError when it is
// held). stalePID is a pid a previous holder left in the file without
// releasing the lock: it no longer holds it, so it died; 0 when none.
func TryLock(path string) (l *Lock, stalePID int, err error) {
	f, err := open(path)
	if err != nil {
		return nil, 0, err
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, 0, &BusyError{Path: path, PID: ReadPID(path)}
		}
		return nil, 0, fmt.Errorf("lock %s: %w", path, err)
	}
	if prev := ReadPID(path); prev > 0 && prev != os.Getpid() {
		stalePID = prev
	}
	return hold(f, path), stalePID, nil
}

// Wait takes the lock at path, waiting for its holder until ctx ends
// (flock cannot be interrupted: it is tried every poll).
func Wait(ctx context.Context, path string, poll time.Duration) (*Lock, error) {
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	for {
		err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return hold(f, path), nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// Held reports whether some process holds the lock at path, and the pid
// it wrote.
func Held(path string) (bool, int) {
	f, err := os.Open(path)
	if err != nil {
		return false, 0
	}
	defer f.Close()
	if err := flock(f, syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK), ReadPID(path)
	}
	_ = flock(f, syscall.LOCK_UN)
	return false, 0
}

// ReadPID is the pid written in the lock file at path, 0 when none.
func ReadPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Unlock empties the pid and releases the lock. The file stays: removing a
// lock file races with a process that has just opened it.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := flock(l.f, syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

func open(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

func hold(f *os.File, path string) *Lock {
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f, path: path}
}

// flock retries on EINTR.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
