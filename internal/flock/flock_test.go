package flock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestProtocol(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "x.lock")
	// a holder that died without unlocking left its pid
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("999999\n"), 0o600)
	l, stale, err := TryLock(path)
	if err != nil || stale != 999999 {
		t.Fatalf("TryLock = %v, stale %d; want the lock and stale pid 999999", err, stale)
	}
	if held, pid := Held(path); !held || pid != os.Getpid() {
		t.Fatalf("Held = %v, %d", held, pid)
	}
	var busy *BusyError
	if _, _, err := TryLock(path); !errors.As(err, &busy) || busy.PID != os.Getpid() {
		t.Fatalf("second TryLock: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Wait(ctx, path, time.Millisecond); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a held lock with a cancelled context: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		l2, err := Wait(context.Background(), path, time.Millisecond)
		if err == nil {
			err = l2.Unlock()
		}
		got <- err
	}()
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Wait after the holder let go: %v", err)
	}
	if held, pid := Held(path); held || ReadPID(path) != 0 {
		t.Fatalf("after Unlock: held %v, pid %d", held, pid)
	}
	if _, stale, err := TryLock(path); err != nil || stale != 0 {
		t.Fatalf("TryLock after a clean unlock: %v, stale %d", err, stale)
	}
}
