package dockerctl

import (
	"errors"
	"io"
	"net"
	"syscall"

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
