package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/internal/dashboard"
	"github.com/chefd/chefd/internal/safefile"
)

// dashboardFile holds the URL of the dashboard a daemon serves (dashboard =
// true), in its runtime directory (mode 0600: it holds the token).
func dashboardFile(p api.Paths) string { return filepath.Join(p.Dir, "dashboard.url") }

// listenDashboard serves the dashboard of the daemon on socket at addr (a
// loopback address) until ctx is done. It returns the page's URL once it
// listens, and a channel that gets Serve's end.
func listenDashboard(ctx context.Context, socket, addr string, log *zap.Logger) (string, <-chan error, error) {
	if err := dashboard.CheckAddr(addr); err != nil {
		return "", nil, fmt.Errorf("--addr: %w", err) // before anything listens there
	}
	token, err := dashboard.NewToken()
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("dashboard: %w", err)
	}
	c := api.NewClient(socket)
	d, err := dashboard.New(c, ln.Addr().String(), token, log)
	if err != nil {
		ln.Close()
		c.Close()
		return "", nil, err
	}
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go d.Run(ctx)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		c.Close()
	}()
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	return d.URL(), done, nil
}

// serveDashboard is the daemon's dashboard (dashboard = true): it serves
// until ctx is done and keeps its URL in dashboardFile meanwhile.
func serveDashboard(ctx context.Context, p api.Paths, log *zap.Logger) {
	u, done, err := listenDashboard(ctx, p.Socket, "127.0.0.1:0", log.Named("dashboard"))
	if err != nil {
		log.Warn("dashboard = true, but it cannot be served", zap.Error(err))
		return
	}
	file := dashboardFile(p)
	tmp := file + ".tmp"
	err = os.WriteFile(tmp, []byte(u+"\n"), 0o600)
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		log.Warn("write the dashboard's URL", zap.String("file", file), zap.Error(err))
	}
	// the URL holds the token: it goes to the 0600 file, not to the log
	log.Info("dashboard served on loopback; chefd ui prints its URL", zap.String("file", file))
	if err := <-done; err != nil {
		log.Warn("the dashboard stopped", zap.Error(err))
	}
	os.Remove(file)
}

// daemonDashboard returns the URL of the dashboard the daemon serves, if
// it answers.
func daemonDashboard(ctx context.Context, p api.Paths) string {
	data, err := safefile.ReadRegular(dashboardFile(p), 4096)
	if err != nil {
		return ""
	}
	u := strings.TrimSpace(string(data))
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "" // a crashed daemon's file
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return u
}

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
through your browser. It runs until interrupted.

When the daemon serves its own dashboard (dashboard = true in chefd.toml,
or chefd start --dashboard), chefd ui prints that one's URL and exits.
Exit code 3 when no daemon runs for the workspace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			c, paths, err := a.runningDaemon(ctx)
			if err != nil {
				return err
			}
			c.Close()
			if u := daemonDashboard(ctx, paths); u != "" && !cmd.Flags().Changed("addr") {
				fmt.Fprintln(a.stdout, u)
				fmt.Fprintln(a.stderr, "chefd ui: the daemon serves its dashboard at the URL above")
				return nil
			}
			u, done, err := listenDashboard(ctx, paths.Socket, addr, a.log)
			if err != nil {
				return err
			}
			// stdout: the URL alone (a script can read it); the rest on stderr
			fmt.Fprintln(a.stdout, u)
			fmt.Fprintln(a.stderr, "chefd ui: serving the dashboard at the URL above (loopback only; Ctrl-C stops it)")
			return <-done
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "loopback address to listen on (port 0: a free port)")
	return cmd
}
