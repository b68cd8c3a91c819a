//go:build !darwin && !windows

package notify

import (
	"context"
	"fmt"
	"os"

	"github.com/godbus/dbus/v5"
)

// The freedesktop.org notification service on the session bus.
const (
	notifyService = "org.freedesktop.Notifications"
	notifyPath    = "/org/freedesktop/Notifications"
	notifyMethod  = notifyService + ".Notify"
)

// DBus is a Notifier that calls the notification service on the D-Bus
// bus at Address (a session bus address, as DBUS_SESSION_BUS_ADDRESS
// holds). A connection is made per notification: notifications are rare,
// and a bus that restarts in between is no matter.
type DBus struct {
	Address string
	// Timeout is how long a notification shows, in milliseconds (-1:
	// the server's default).
	Timeout int32
}

// New returns the notifier of this machine: the session bus's
// notification service (DBUS_SESSION_BUS_ADDRESS), or ErrUnavailable.
func New() (Notifier, error) {
	addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if addr == "" {
		return nil, fmt.Errorf("%w: DBUS_SESSION_BUS_ADDRESS is not set", ErrUnavailable)
	}
	return &DBus{Address: addr, Timeout: -1}, nil
}

// Notify sends one notification.
func (d *DBus) Notify(ctx context.Context, title, body string) error {
	conn, err := dbus.Connect(d.Address, dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%w: the session bus at %s: %v", ErrUnavailable, d.Address, err)
	}
	defer conn.Close()
	call := conn.Object(notifyService, notifyPath).CallWithContext(ctx, notifyMethod, 0,
		appName, uint32(0), "", title, body, []string{}, map[string]dbus.Variant{}, d.Timeout)
	if call.Err != nil {
		return fmt.Errorf("notification through %s: %w", notifyService, call.Err)
	}
	return nil
}
