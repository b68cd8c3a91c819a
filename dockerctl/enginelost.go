package dockerctl

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// transportError classifies an error of the engine connection itself (not
// a message of the build): an engine that does not answer gives an
// *UnreachableError, one that broke off mid-stream (dockerd stopped,
// crashed or restarted: the body ends without its final message) one with
// Lost set. Anything else is returned as it is.
func (e *Engine) transportError(err error) error {
	if err == nil || IsUnreachable(err) {
		return err
	}
	if client.IsErrConnectionFailed(err) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
		return &UnreachableError{Host: e.host, Err: err}
	}
	var op *net.OpError
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.As(err, &op) {
		return &UnreachableError{Host: e.host, Err: err, Lost: true}
	}
	return err
}

// BuildCache lists the engine's build-cache records. dockerd runs one
// disk-usage listing at a time and refuses another meanwhile ("a disk
// usage operation is already running": GC, another build's cleanup,
// `docker system df`), so a refusal is retried, waiting a little longer
// each time, until ctx ends.
func (e *Engine) BuildCache(ctx context.Context) ([]*build.CacheRecord, error) {
	wait := 100 * time.Millisecond
	for {
		du, err := e.api.DiskUsage(ctx, types.DiskUsageOptions{Types: []types.DiskUsageObject{types.BuildCacheObject}})
		if err == nil || !strings.Contains(err.Error(), "disk usage operation is already running") {
			return du.BuildCache, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}
