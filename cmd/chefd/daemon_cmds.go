package main

import "github.com/spf13/cobra"

// daemonCmds returns the commands that talk to the daemon (start, status,
// logs, events, stop, gc). Owned by the daemon work.
func (a *app) daemonCmds() []*cobra.Command { return nil }

// buildViaDaemon forwards `chefd build` to a running daemon of the
// workspace. handled is false when no daemon runs (the CLI then builds
// in-process).
func (a *app) buildViaDaemon(cmd *cobra.Command, root string, opts buildFlags) (handled bool, err error) {
	return false, nil
}
