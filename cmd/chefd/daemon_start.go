package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/chefd/chefd/internal/notify"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/chefd/chefd/configs"
	"github.com/chefd/chefd/daemon"
	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/internal/flock"
	"github.com/chefd/chefd/recipe"
	"github.com/chefd/chefd/watcher"
)

// daemonPaths resolves the workspace, its config and its daemon's paths.
func (a *app) daemonPaths() (string, configs.Config, api.Paths, error) {
	w, err := openWorkspace(a.dir, a.over)
	if err != nil {
		return "", configs.Config{}, api.Paths{}, err
	}
	p, err := w.paths()
	return w.root, w.cfg, p, err
}

type startFlags struct {
	foreground bool
	detached   bool // set by the detaching parent: stderr is the log file
	manual     bool
	notify     bool
	dashboard  bool
}

func (a *app) startCmd() *cobra.Command {
	var f startFlags
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start the daemon: watch the workspace, keep the cooked image warm, rebuild the code on changes",
		Long: `Start chefd's daemon for the workspace. It watches the files, cooks the
dependency image in the background as soon as the recipe changes, and
rebuilds only the workspace's code when sources change (a newer change
cancels a running code build; changes during a build coalesce into one
follow-up build). 'chefd build' then asks the daemon.

The command detaches and returns once the daemon answers; --foreground runs
it in the terminal (for systemd, or to watch its log). One daemon runs per
workspace, whatever the environment: its lock and state live in .chefd/ in
the workspace, its socket and log in $XDG_RUNTIME_DIR/chefd/<workspace-id>/
(else .chefd/ too); the other commands find it from any environment.
SIGTERM or SIGINT stop it gracefully, as does 'chefd stop'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			root, cfg, paths, err := a.daemonPaths()
			if err != nil {
				return err
			}
			if f.foreground || f.detached {
				// this daemon's own paths (paths are those of a daemon that
				// may run in another environment)
				own, err := api.ResolvePaths(root, os.Getenv("XDG_RUNTIME_DIR"))
				if err != nil {
					return err
				}
				return a.runDaemon(cmd.Context(), root, cfg, own, f)
			}
			return a.startDetached(cmd.Context(), root, paths, f)
		},
	}
	cmd.Flags().BoolVar(&f.foreground, "foreground", false, "run in the foreground (systemd, tests)")
	cmd.Flags().BoolVar(&f.manual, "manual", false, "no automatic code builds: build on 'chefd build' only (cooks still prewarm)")
	cmd.Flags().BoolVar(&f.notify, "notify", false, "a desktop notification when a build or cook the daemon ran on its own ends (notify = true in chefd.toml)")
	cmd.Flags().BoolVar(&f.dashboard, "dashboard", false, "serve the dashboard on 127.0.0.1 while the daemon runs (dashboard = true in chefd.toml); chefd ui prints its URL")
	cmd.Flags().BoolVar(&f.detached, "detached", false, "internal: started by 'chefd start'")
	_ = cmd.Flags().MarkHidden("detached")
	return cmd
}

// startDetached re-executes chefd as `start --foreground` in a new session
// with its output in the daemon log, and waits until it answers.
func (a *app) startDetached(ctx context.Context, root string, paths api.Paths, f startFlags) error {
	c := api.NewClient(paths.Socket)
	defer c.Close()
	if info, err := pingDaemon(ctx, c); err == nil {
		fmt.Fprintf(a.stdout, "chefd daemon already runs for %s (pid %d, socket %s)\n", root, info.PID, info.Paths.Socket)
		return nil
	}
	if held, pid := flock.Held(paths.Lock); held {
		// starting right now, or hung: give it the same time as a new one
		if info, err := daemon.WaitReady(ctx, c, nil); err == nil {
			fmt.Fprintf(a.stdout, "chefd daemon already runs for %s (pid %d, socket %s)\n", root, info.PID, info.Paths.Socket)
			return nil
		}
		return &exitError{code: 1, msg: fmt.Sprintf("a chefd daemon (pid %d) holds %s but does not answer on %s; see %s",
			pid, paths.Lock, paths.Socket, paths.Log)}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start: cannot find the chefd binary: %w", err)
	}
	args := []string{"start", "--foreground", "--detached", "-C", root}
	if f.manual {
		args = append(args, "--manual")
	}
	if f.notify {
		args = append(args, "--notify")
	}
	if f.dashboard {
		args = append(args, "--dashboard")
	}
	if a.verbose {
		args = append(args, "-v")
	}
	if a.over.cookedRepo != "" {
		args = append(args, "--cooked-repo", a.over.cookedRepo)
	}
	if a.over.pull != "" {
		args = append(args, "--pull", a.over.pull)
	}
	info, err := daemon.Spawn(ctx, paths, root, exe, args)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	fmt.Fprintf(a.stdout, "chefd daemon started for %s (pid %d)\n  socket %s\n  log    %s\n", root, info.PID, paths.Socket, paths.Log)
	return nil
}

func pingDaemon(ctx context.Context, c *api.Client) (api.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.Ping(ctx)
}

// daemonLogger logs JSON to the daemon log file and, in a terminal, human
// lines to stderr. Detached, stderr is the log file.
func (a *app) daemonLogger(paths api.Paths, detached bool) (*zap.Logger, func(), error) {
	level := zapcore.InfoLevel
	if a.verbose {
		level = zapcore.DebugLevel
	}
	jsonCfg := zap.NewProductionEncoderConfig()
	jsonCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	jsonEnc := zapcore.NewJSONEncoder(jsonCfg)
	if detached {
		return zap.New(zapcore.NewCore(jsonEnc, zapcore.AddSync(a.stderr), level)), func() {}, nil
	}
	f, err := daemon.OpenLog(paths.Log)
	if err != nil {
		return nil, nil, err
	}
	consoleCfg := zap.NewDevelopmentEncoderConfig()
	consoleCfg.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	if sf, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(sf.Fd())) {
		consoleCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
	}
	core := zapcore.NewTee(
		zapcore.NewCore(jsonEnc, zapcore.AddSync(f), level),
		zapcore.NewCore(zapcore.NewConsoleEncoder(consoleCfg), zapcore.AddSync(a.stderr), level),
	)
	return zap.New(core), func() { f.Close() }, nil
}

// daemonEngineBuilder is the real builder with the engine it closes.
type daemonEngineBuilder struct {
	*dockerctl.WorkspaceBuilder
	e *dockerctl.Engine
}

// Close waits (up to 10 s) for the background removal of the last builds'
// leftovers, but not for the retries of those the engine still held (the
// next daemon's first cleanup takes them), then closes the engine.
func (b *daemonEngineBuilder) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b.StopRetries()
	_ = b.WaitCleanup(ctx)
	return b.e.Close()
}

// daemonBuilder connects to the engine lazily: the daemon starts while
// Docker is down, and cooks and builds connect when they run.
func daemonBuilder(root string, cfg configs.Config, log *zap.Logger) *daemon.LazyBuilder {
	return &daemon.LazyBuilder{
		Connect: func(ctx context.Context) (daemon.Builder, error) {
			e, err := dockerctl.Connect(ctx, dockerctl.WithLogger(log), dockerctl.WithCompression(os.Getenv("CHEFD_COMPRESS")))
			if err != nil {
				return nil, err
			}
			b := dockerctl.NewWorkspaceBuilder(e, root, dockerctl.SettingsOf(cfg),
				dockerctl.WithBuilderLogger(log.Named("docker")), dockerctl.WithVersion(chefdVersion()),
				dockerctl.WithBackgroundCleanup(true))
			return &daemonEngineBuilder{WorkspaceBuilder: b, e: e}, nil
		},
		Tag: func(r *recipe.Recipe) string { return dockerctl.CookedTag(cfg.Image, r) },
	}
}

// changedStartKeys lists the settings that differ among those the daemon
// reads once, at start (the builder's and the watcher's).
func changedStartKeys(a, b configs.Config) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for _, k := range []string{"Image", "Tag", "BuilderImage", "RuntimeImage", "Bins", "Entrypoint",
		"Debounce", "MaxWait", "Ignore", "KeepCooked", "Loop", "CookedRepo", "PushCooked", "RegistryTimeout", "Pull", "Notify", "StuckAfter", "Dashboard"} {
		if !reflect.DeepEqual(va.FieldByName(k).Interface(), vb.FieldByName(k).Interface()) {
			out = append(out, k)
		}
	}
	return out
}

// daemonPlan computes the recipe with the intent of the current
// chefd.toml (re-read each time: it is recipe-affecting for the watcher).
// It runs on the scheduler's loop only, so its warning state needs no lock.
func daemonPlan(root string, started configs.Config, o overrides, log *zap.Logger) daemon.PlanFunc {
	warned := ""
	return func(ctx context.Context) (*recipe.Recipe, error) {
		w, err := openWorkspace(root, o)
		if err != nil {
			return nil, err
		}
		if changed := strings.Join(changedStartKeys(started, w.cfg), ", "); changed != warned {
			warned = changed
			if changed != "" {
				log.Warn("chefd.toml changed settings the daemon reads at start only; restart it (chefd stop && chefd start) to apply them",
					zap.String("changed", changed))
			}
		}
		return w.recipe(ctx, nil)
	}
}

// runDaemon runs the daemon in this process until a signal or `chefd stop`.
func (a *app) runDaemon(ctx context.Context, root string, cfg configs.Config, paths api.Paths, f startFlags) error {
	if err := paths.Ensure(); err != nil {
		return err
	}
	log, closeLog, err := a.daemonLogger(paths, f.detached)
	if err != nil {
		return err
	}
	defer closeLog()
	defer log.Sync()

	// A second SIGINT/SIGTERM while stopping exits at once.
	go func() {
		<-ctx.Done()
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		log.Warn("second signal: exiting without waiting for builds to stop")
		os.Remove(paths.Socket)
		os.Exit(130)
	}()

	absRoot, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	mode := dockerctl.ModeExact
	if cfg.LoopMode(os.Getenv("CI") != "") {
		mode = dockerctl.ModeLoop
	}
	log.Info("build mode", zap.String("mode", string(mode)))
	var notifyFn daemon.NotifyFunc
	if cfg.Notify || f.notify {
		if n, err := notify.New(); err != nil {
			log.Warn("notify = true, but no desktop notifications here", zap.Error(err))
		} else {
			notifyFn = n.Notify
		}
	}
	var ready func(api.Info)
	if cfg.Dashboard || f.dashboard {
		ready = func(info api.Info) { go serveDashboard(ctx, info.Paths, log) }
		defer os.Remove(dashboardFile(paths)) // the process may end before serveDashboard removes it
	}
	err = daemon.Run(ctx, daemon.Config{
		Ready:   ready,
		Notify:  notifyFn,
		Builder: daemonBuilder(absRoot, cfg, log),
		Engine:  dockerctl.EngineHost(),
		Plan:    daemonPlan(absRoot, cfg, a.over, log),
		Options: []daemon.Option{daemon.WithKeepCooked(cfg.KeepCooked), daemon.WithManual(f.manual), daemon.WithLog(log),
			daemon.WithMode(mode), daemon.WithStuckAfter(cfg.StuckAfter.Duration)},
		Paths: paths,
		Watch: func() (watcher.Notify, error) {
			return watcher.NewRoots(absRoot,
				watcher.WithDebounce(cfg.Debounce.Duration),
				watcher.WithMaxWait(cfg.MaxWait.Duration),
				watcher.WithIgnore(cfg.Ignore...),
				watcher.WithLogger(log.Named("watch")))
		},
		Version: chefdVersion(),
	})
	var busy *daemon.BusyError
	if errors.As(err, &busy) {
		return &exitError{code: 1, msg: busy.Error()}
	}
	return err
}
