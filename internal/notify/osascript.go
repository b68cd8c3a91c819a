//go:build darwin

package notify

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
)

// OSAScript is a Notifier that asks macOS's notification center through
// osascript (display notification).
type OSAScript struct{}

// New returns the notifier of this machine: macOS's notification center.
func New() (Notifier, error) {
	if _, err := exec.LookPath("osascript"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return OSAScript{}, nil
}

// Notify sends one notification.
func (OSAScript) Notify(ctx context.Context, title, body string) error {
	script := "display notification " + strconv.Quote(body) + " with title " + strconv.Quote(title)
	if out, err := exec.CommandContext(ctx, "osascript", "-e", script).CombinedOutput(); err != nil {
		return fmt.Errorf("osascript: %v: %s", err, out)
	}
	return nil
}
