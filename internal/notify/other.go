//go:build windows

package notify

// New: no notification service on this system yet.
func New() (Notifier, error) { return nil, ErrUnavailable }
