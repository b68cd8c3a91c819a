package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/chefd/chefd/internal/dashboard"
)

func (a *app) uiCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve the daemon's dashboard on 127.0.0.1 (prints its URL, with its token)",
		Long: `Serve a web page of the workspace's daemon: its state and recipe, running
and queued builds with live progress, the history as a timeline of phases,
plots of save-to-image and cook times, each build's why, recipe diff,
changed files and log (live), and two actions: build now, cancel.

It listens on a loopback address only (default 127.0.0.1 on a free port)
and prints the page's URL, which holds a random token: a request without it
reads nothing and changes nothing, and a page of another site cannot act
through your browser. It runs until interrupted; exit code 3 when no daemon
runs for the workspace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return fmt.Errorf("--addr %q: want host:port, e.g. 127.0.0.1:0", addr)
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("--addr %q: the dashboard listens on a loopback address only (127.0.0.1 or ::1); reach it from elsewhere through an SSH tunnel", addr)
			}
			c, _, err := a.runningDaemon(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("chefd ui: %w", err)
			}
			token, err := dashboard.NewToken()
			if err != nil {
				ln.Close()
				return err
			}
			d, err := dashboard.New(c, ln.Addr().String(), token, a.log)
			if err != nil {
				ln.Close()
				return err
			}
			srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10,
				BaseContext: func(net.Listener) context.Context { return ctx }}
			go d.Run(ctx)
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			// stdout: the URL alone (a script can read it); the rest on stderr
			fmt.Fprintln(a.stdout, d.URL())
			fmt.Fprintln(a.stderr, "chefd ui: serving the dashboard at the URL above (loopback only; Ctrl-C stops it)")
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "loopback address to listen on (port 0: a free port)")
	return cmd
}
