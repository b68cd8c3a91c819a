// Package notify shows desktop notifications through the desktop's own
// notification service: the freedesktop.org Notifications interface on
// the D-Bus session bus (Linux and other Unix desktops), the system's
// notifier through osascript on macOS.
package notify

import (
	"context"
	"errors"
)

// Notifier shows one notification.
type Notifier interface {
	Notify(ctx context.Context, title, body string) error
}

// ErrUnavailable: this machine has no notification service chefd can
// reach (no session bus, a headless server).
var ErrUnavailable = errors.New("no desktop notification service")

// appName is the application name notifications carry.
const appName = "chefd"
