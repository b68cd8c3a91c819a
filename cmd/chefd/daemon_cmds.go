package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chefd/chefd/internal/progress"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon"
	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
)

// Exit codes of the daemon commands, as the in-process build uses them: 1
// a failed build, 2 no Docker engine answers, 3 no daemon runs (status,
// events) or the current recipe is not cooked (build --warm-only), 130 an
// interrupted wait.
const exitNotRunning = 3

// daemonCmds returns the commands that talk to the daemon (start, status,
// logs, events, stop, gc). `chefd build` asks buildViaDaemon first.
func (a *app) daemonCmds() []*cobra.Command {
	return []*cobra.Command{a.startCmd(), a.statusCmd(), a.logsCmd(), a.eventsCmd(), a.stopCmd(), a.gcCmd(), a.cancelCmd(), a.uiCmd()}
}

// daemonOnlyPaths resolves the workspace root and its daemon's paths
// without reading chefd.toml or parsing a manifest it can do without
// (daemonRoot): status, logs, events and stop work while they are broken.
func (a *app) daemonOnlyPaths() (string, api.Paths, error) {
	root, err := daemonRoot(a.dir)
	if err != nil {
		return "", api.Paths{}, err
	}
	p, err := daemonPathsOf(root)
	return root, p, err
}

// runningDaemon returns a client of the workspace's daemon, or an exit
// error (code 3) when none answers.
func (a *app) runningDaemon(ctx context.Context) (*api.Client, api.Paths, error) {
	root, paths, err := a.daemonOnlyPaths()
	if err != nil {
		return nil, paths, err
	}
	c := api.NewClient(paths.Socket)
	if _, err := pingDaemon(ctx, c); err != nil {
		c.Close()
		if errors.Is(err, api.ErrNotRunning) {
			return nil, paths, &exitError{code: exitNotRunning, msg: fmt.Sprintf("no chefd daemon runs for %s (start one with: chefd start)", root)}
		}
		return nil, paths, err
	}
	return c, paths, nil
}

func (a *app) statusCmd() *cobra.Command {
	var asJSON bool
	var recent int
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the daemon's state, recipe, cooked images and builds",
		Long: `Show what the daemon does: its state (idle, queued, cooking, building,
recipe-error), the current recipe and whether it is cooked, the cooked
images, the running and queued builds with why they run, and the last
builds. Exit code 3 when no daemon runs for the workspace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, paths, err := a.runningDaemon(ctx)
			if err != nil {
				var ee *exitError
				if asJSON && errors.As(err, &ee) && ee.code == exitNotRunning {
					enc := json.NewEncoder(a.stdout)
					enc.SetIndent("", "  ")
					_ = enc.Encode(map[string]any{"running": false, "root": paths.Root})
				}
				return err
			}
			defer c.Close()
			st, err := c.Status(ctx, recent)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(a.stdout, st, time.Now())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	cmd.Flags().IntVar(&recent, "recent", 5, "how many finished builds and cooks to list")
	return cmd
}

func (a *app) logsCmd() *cobra.Command {
	var follow, raw bool
	var lines int
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Print the daemon's log (-f to follow)",
		Long: `Print the last lines of the daemon's log, rendered for reading (--json:
the JSON lines as written). -f keeps printing new lines. Works when the
daemon is gone too (it reads the log file then), e.g. after a crash.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			_, paths, err := a.daemonOnlyPaths()
			if err != nil {
				return err
			}
			c := api.NewClient(paths.Socket)
			defer c.Close()
			if _, err := pingDaemon(ctx, c); err == nil {
				return c.Logs(ctx, lines, follow, raw, a.stdout)
			}
			var format func([]byte) []byte
			if !raw {
				format = api.FormatLogLine
			}
			err = api.TailLog(ctx, paths.Log, lines, follow, a.stdout, format, nil)
			if errors.Is(err, os.ErrNotExist) {
				return &exitError{code: exitNotRunning, msg: fmt.Sprintf("no daemon log at %s (chefd start writes it)", paths.Log)}
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVarP(&lines, "lines", "n", 100, "number of lines to print first (0: all)")
	cmd.Flags().BoolVar(&raw, "json", false, "print the JSON lines as written")
	return cmd
}

func (a *app) eventsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "events",
		Short: "Stream the daemon's build events as NDJSON",
		Long: `Print the daemon's events, one JSON object per line, until interrupted or
the daemon stops: batch (changed files), recipe (new recipe with its diff),
cook.start/cook.progress/cook.done, build.queued/build.start/build.progress/
build.done (ok, failed, superseded or cancelled, with the build record),
gc, warning, stopping. The first line has type "subscribed".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, _, err := a.runningDaemon(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Events(ctx, func(raw []byte, _ api.Event) error {
				_, err := fmt.Fprintf(a.stdout, "%s\n", raw)
				return err
			})
		},
	}
}

func (a *app) stopCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the daemon gracefully (running builds are cancelled)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			root, paths, err := a.daemonOnlyPaths()
			if err != nil {
				return err
			}
			c := api.NewClient(paths.Socket)
			defer c.Close()
			info, err := pingDaemon(ctx, c)
			if err != nil {
				if !errors.Is(err, api.ErrNotRunning) {
					return err
				}
				if msg := cleanStale(paths); msg != "" {
					fmt.Fprintln(a.stderr, msg)
				}
				fmt.Fprintf(a.stderr, "no chefd daemon runs for %s\n", root)
				return nil
			}
			if err := c.Stop(ctx); err != nil {
				return err
			}
			wctx, cancel := context.WithTimeout(ctx, 45*time.Second)
			defer cancel()
			if err := api.WaitStopped(wctx, paths); err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("the daemon (pid %d) did not stop within 45s; see %s", info.PID, paths.Log)}
			}
			fmt.Fprintf(a.stdout, "chefd daemon stopped (pid %d)\n", info.PID)
			return nil
		},
	}
}

// cleanStale removes the socket of a crashed daemon (the lock is free).
func cleanStale(paths api.Paths) string {
	if _, err := os.Lstat(paths.Socket); err != nil {
		return ""
	}
	lock, stale, err := daemon.AcquireLock(paths.Lock)
	if err != nil {
		return "" // a daemon is starting: leave its socket alone
	}
	defer lock.Release()
	if err := os.Remove(paths.Socket); err != nil {
		return ""
	}
	if stale > 0 {
		return fmt.Sprintf("removed the stale socket of a crashed daemon (pid %d)", stale)
	}
	return "removed a stale socket"
}

func (a *app) gcCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove old cooked images of the workspace and their target caches (keeps keep-cooked, default 3)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			root, cfg, paths, err := a.daemonPaths()
			if err != nil {
				return err
			}
			var removed []string
			c := api.NewClient(paths.Socket)
			defer c.Close()
			if _, perr := pingDaemon(ctx, c); perr == nil {
				removed, err = c.GC(ctx)
			} else {
				e, cerr := dockerctl.Connect(ctx, dockerctl.WithLogger(a.log), dockerctl.WithCompression(os.Getenv("CHEFD_COMPRESS")))
				if cerr != nil {
					return engineError(cerr)
				}
				defer e.Close()
				b := dockerctl.NewWorkspaceBuilder(e, root, dockerctl.SettingsOf(cfg),
					dockerctl.WithBuilderLogger(a.log), dockerctl.WithVersion(chefdVersion()))
				// The current recipe's cooked image always stays (however
				// old it is); a recipe that cannot be read protects none.
				if r, rerr := computeRecipe(ctx, root, cfg, nil); rerr == nil {
					b.KeepCurrent(r)
				} else {
					fmt.Fprintf(a.stderr, "chefd gc: the current recipe is unreadable (%v): keeping the newest %d cooked images only\n", rerr, cfg.KeepCooked)
				}
				var rs []dockerctl.Removed
				rs, err = b.GC(ctx, cfg.KeepCooked)
				removed = dockerctl.RemovedNames(rs)
				err = engineError(err)
			}
			if err != nil {
				return err
			}
			if asJSON {
				if removed == nil {
					removed = []string{}
				}
				return json.NewEncoder(a.stdout).Encode(map[string]any{"removed": removed})
			}
			if len(removed) == 0 {
				fmt.Fprintf(a.stdout, "nothing to remove (keeping the newest %d cooked images)\n", cfg.KeepCooked)
				return nil
			}
			for _, r := range removed {
				fmt.Fprintf(a.stdout, "removed %s\n", r)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the removed images as JSON")
	return cmd
}

// buildViaDaemon forwards `chefd build` to a running daemon of the
// workspace. handled is false when no daemon runs (the CLI then builds
// in-process). With --wait it prints the image ID on stdout (details on
// stderr) and exits non-zero when the build fails; without, it returns
// once the build is queued. When nothing changed since the last successful
// build, that build answers at once.
func (a *app) buildViaDaemon(cmd *cobra.Command, root string, opts buildFlags) (handled bool, err error) {
	ctx := cmd.Context()
	paths, err := daemonPathsOf(root)
	if err != nil {
		return false, nil
	}
	c := api.NewClient(paths.Socket)
	defer c.Close()
	if _, err := pingDaemon(ctx, c); err != nil {
		var ue *api.UntrustedError
		if errors.As(err, &ue) { // a planted socket: the user must hear of it, not get an in-process build instead
			return true, &exitError{code: 1, msg: ue.Error()}
		}
		if !errors.Is(err, api.ErrNotRunning) && a.log != nil {
			a.log.Warn("the daemon does not answer; building in-process", zap.Error(err))
		}
		return false, nil
	}
	if opts.Tag != "" {
		if a.log != nil {
			a.log.Warn("--tag: the daemon builds the tag of chefd.toml; building in-process")
		}
		return false, nil
	}
	if opts.NoCache {
		if a.log != nil {
			a.log.Warn("--no-cache: building in-process (the daemon's builds use the cache)")
		}
		return false, nil
	}
	var only []string // --image: the refs whose IDs to print (the daemon builds them all)
	if len(opts.Images) > 0 {
		_, cfg, err := a.workspace()
		if err != nil {
			return true, err
		}
		sel, err := cfg.SelectImages(opts.Images)
		if err != nil {
			return true, &exitError{code: 2, msg: err.Error()}
		}
		for _, im := range sel {
			only = append(only, im.Ref())
		}
	}
	req := api.BuildRequest{Wait: opts.Wait, Urgent: opts.Urgent, WarmOnly: opts.WarmOnly, Exact: opts.Exact}
	var onEvent func(api.Event)
	if opts.Wait && !opts.JSON {
		view, err := a.newProgress(a.stderr, "", nil)
		if err != nil {
			return true, err
		}
		defer view.close()
		onEvent = daemonEventPrinter(view.r)
	}
	rec, err := c.Build(ctx, req, onEvent)
	if err != nil {
		var ae *api.APIError
		switch {
		case errors.As(err, &ae) && ae.Code == "not_warm":
			return true, &exitError{code: exitNotRunning, msg: ae.Message}
		case errors.As(err, &ae) && ae.Code == api.CodeEngineUnreachable:
			return true, &exitError{code: 2, msg: ae.Message}
		case errors.As(err, &ae):
			return true, &exitError{code: 1, msg: ae.Message}
		case ctx.Err() != nil:
			return true, &exitError{code: 130, msg: "interrupted (the daemon goes on building; chefd status shows it)"}
		}
		return true, err
	}
	if opts.JSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rec); err != nil {
			return true, err
		}
	}
	return true, a.reportDaemonBuild(rec, opts.JSON, only...)
}

// reportDaemonBuild prints the answer of the daemon: the image ID on
// stdout, the rest on stderr; a failed build is an exit error.
// With several images, each image's ID is a line (only: those images).
func (a *app) reportDaemonBuild(rec api.Record, quiet bool, only ...string) error {
	say := func(format string, args ...any) {
		if !quiet {
			fmt.Fprintf(a.stderr, format, args...)
		}
	}
	if rec.GitHeld != "" {
		say("note: git is in the middle of an operation (%s): this is a build of what is on disk now\n", rec.GitHeld)
	}
	switch {
	case rec.Reused:
		say("the workspace holds what build #%d shipped (%s ago, mode %s): no new build\n", rec.ID, fmtDur(time.Since(rec.Finished)), rec.Mode)
	case !rec.Result.Done():
		say("build #%d %s by the daemon (follow it with: chefd events, or chefd status)\n", rec.ID, rec.Result)
		return nil
	case rec.Result == api.ResultOK:
		say("build #%d ok in %s, mode %s: %s\n", rec.ID, fmtDur(rec.Duration), rec.Mode.Describe(), crateLine(rec.Compiled))
		for _, w := range rec.Why() {
			say("  why: %s\n", w)
		}
		if len(rec.Phases) > 0 {
			say("  phases: %s\n", phaseLine(rec.Phases))
		}
	default:
		for _, l := range rec.Output {
			say("   %s\n", l)
		}
		code := 1
		if rec.ErrorCode == api.CodeEngineUnreachable {
			code = 2 // as an in-process build: the engine, not the code
		}
		return &exitError{code: code, msg: fmt.Sprintf("build #%d %s: %s", rec.ID, rec.Result, rec.Error)}
	}
	if quiet {
		return nil
	}
	if len(rec.Images) > 0 {
		printImages(a.stderr, rec.Images)
		for _, im := range rec.Images {
			if len(only) == 0 || slices.Contains(only, im.Image) {
				fmt.Fprintln(a.stdout, im.ImageID)
			}
		}
		return nil
	}
	if rec.Image != "" {
		say("%s\n", rec.Image)
	}
	if rec.Unchanged {
		say("image %s\n", unchangedImage)
	}
	fmt.Fprintln(a.stdout, rec.ImageID)
	return nil
}

// daemonEventPrinter shows what the daemon does for a waiting build:
// recipe changes, cooks, supersessions, and the builder's progress, on the
// progress view (--progress).
func daemonEventPrinter(v *progress.Renderer) func(api.Event) {
	say := func(format string, args ...any) { v.Line(fmt.Sprintf(format, args...)) }
	return func(ev api.Event) {
		switch ev.Type {
		case api.EventRecipe:
			say("recipe %s", shortHash(ev.Recipe))
			for _, d := range ev.Diff {
				say("  %s", d)
			}
		case api.EventRecipeError:
			say("recipe error: %s", ev.Message)
		case api.EventCookStart:
			say("cooking the dependencies of recipe %s (#%d)", shortHash(ev.Recipe), ev.ID)
		case api.EventCookDone:
			if r := ev.Record; r != nil {
				say("cook #%d %s in %s", r.ID, r.Result, fmtDur(r.Duration))
			}
		case api.EventBuildStart:
			if r := ev.Record; r != nil {
				say("build #%d started", r.ID)
				for _, why := range r.Why() {
					say("  why: %s", why)
				}
			}
		case api.EventBuildDone:
			if r := ev.Record; r != nil && r.Result == api.ResultSuperseded {
				say("build #%d superseded by #%d (newer changes)", r.ID, r.SupersededBy)
			}
		case api.EventCookProgress, api.EventBuildProgress:
			if ev.Progress != nil {
				v.Event(*ev.Progress)
			}
		case api.EventStuck:
			say("#%d: %s; possibly stuck", ev.ID, ev.Message)
		case api.EventStopping:
			say("the daemon is stopping")
		}
	}
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// fmtDur renders a duration for people: 120ms, 6.2s, 3m12s.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

func phaseLine(ph []dockerctl.Phase) string {
	parts := make([]string, 0, len(ph))
	for _, p := range ph {
		parts = append(parts, p.Name+" "+fmtDur(p.Duration))
	}
	return strings.Join(parts, ", ")
}

// recordLine is one line of a build or cook for the status.
func recordLine(r api.Record, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%-4d %-5s %-10s", r.ID, r.Kind, r.Result)
	switch {
	case r.Result.Done():
		fmt.Fprintf(&b, " %7s", fmtDur(r.Duration))
	case !r.Started.IsZero():
		fmt.Fprintf(&b, " %7s", fmtDur(now.Sub(r.Started)))
	default:
		fmt.Fprintf(&b, " %7s", "")
	}
	if r.Urgent {
		b.WriteString("  urgent")
	}
	if r.Kind == api.KindBuild && r.Mode != "" {
		b.WriteString("  " + string(r.Mode))
	}
	switch {
	case r.Kind == api.KindCook && r.Pulled != "":
		b.WriteString("  pulled " + r.Pulled)
	case r.Kind == api.KindCook && r.Result == api.ResultOK && len(r.Phases) > 0:
		b.WriteString("  " + cookLine(r.Seed, r.SeedImage, r.Compiled))
	}
	if r.Pushed != "" {
		b.WriteString("  pushed " + r.Pushed)
	}
	if why := r.Why(); len(why) > 0 {
		b.WriteString("  " + why[0])
		if len(why) > 1 {
			fmt.Fprintf(&b, " (+%d)", len(why)-1)
		}
	}
	return b.String()
}

func printStatus(w io.Writer, st api.FullStatus, now time.Time) {
	d := st.Daemon
	mode := "watching"
	if !d.Watching {
		mode = "not watching"
	}
	if st.Manual {
		mode += ", manual builds"
	}
	if st.Mode != "" {
		mode += ", " + string(st.Mode) + " mode"
	}
	fmt.Fprintf(w, "chefd daemon for %s (pid %d, up %s, %s)\n", d.Paths.Root, d.PID, fmtDur(now.Sub(d.Started)), mode)
	if d.Engine != "" {
		fmt.Fprintf(w, "engine:   %s\n", d.Engine)
	}
	fmt.Fprintf(w, "state:    %s\n", st.State)
	if st.Held != "" {
		fmt.Fprintf(w, "held:     git is in the middle of an operation (%s, %s): automatic builds wait for it; build --wait builds what is on disk\n",
			st.Held, fmtDur(now.Sub(st.HeldSince)))
	}
	switch {
	case st.RecipeError != "":
		fmt.Fprintf(w, "recipe:   error: %s\n", st.RecipeError)
		if st.Recipe != "" {
			fmt.Fprintf(w, "          (last good recipe %s)\n", shortHash(st.Recipe))
		}
	case st.Recipe != "":
		cooked := "not cooked"
		if st.Cooked {
			cooked = "cooked"
		}
		fmt.Fprintf(w, "recipe:   %s (%s)\n", shortHash(st.Recipe), cooked)
	}
	if len(st.CookedImages) > 0 {
		fmt.Fprintf(w, "cooked:   ")
		for i, c := range st.CookedImages {
			if i > 0 {
				fmt.Fprintf(w, "          ")
			}
			name := c.Tag
			if name == "" {
				name = shortHash(c.Recipe)
			}
			fmt.Fprintf(w, "%s\n", name)
		}
	}
	if st.LastCook > 0 {
		fmt.Fprintf(w, "last cook took %s\n", fmtDur(st.LastCook))
	}
	stuck := func(r api.Record) {
		if !r.StuckSince.IsZero() {
			fmt.Fprintf(w, "          possibly stuck: no output for %s\n", fmtDur(now.Sub(r.StuckSince)))
		}
	}
	for _, c := range st.Cooks {
		fmt.Fprintf(w, "cooking:  %s\n", recordLine(c, now))
		if c.Waiting != "" {
			fmt.Fprintf(w, "          waiting for %s\n", c.Waiting)
		}
		stuck(c)
	}
	if r := st.Current; r != nil {
		fmt.Fprintf(w, "building: %s\n", recordLine(*r, now))
		stuck(*r)
	}
	if r := st.Pending; r != nil {
		fmt.Fprintf(w, "queued:   %s\n", recordLine(*r, now))
		if r.Waiting != "" {
			fmt.Fprintf(w, "          waiting for %s\n", r.Waiting)
		}
	}
	if r := st.LastOK; r != nil && len(st.Images) > 0 {
		fmt.Fprintf(w, "images:   last build #%d, %s, %s ago\n", r.ID, r.Mode, fmtDur(now.Sub(r.Finished)))
		for _, im := range st.Images {
			state := "unchanged"
			if im.Changed {
				state = "changed"
			}
			since := "before the daemon's builds"
			if im.ChangedIn != 0 {
				since = fmt.Sprintf("by build #%d, %s ago", im.ChangedIn, fmtDur(now.Sub(im.ChangedAt)))
			}
			fmt.Fprintf(w, "          %s %s: build #%d %s (%s); image made %s\n", im.Image, shortID(im.ImageID), im.Build, state, im.Reason, since)
		}
	} else if r != nil {
		fmt.Fprintf(w, "image:    %s %s (build #%d, %s, %s ago)\n", r.Image, shortID(r.ImageID), r.ID, r.Mode, fmtDur(now.Sub(r.Finished)))
	}
	if len(st.Recent) > 0 {
		fmt.Fprintln(w, "recent:")
		for _, r := range st.Recent {
			fmt.Fprintf(w, "  %s\n", recordLine(r, now))
			if (r.Result == api.ResultFailed || r.Result == api.ResultInterrupted) && r.Error != "" {
				fmt.Fprintf(w, "        %s\n", firstLine(r.Error))
			}
		}
	}
	for _, wn := range st.Warnings {
		fmt.Fprintf(w, "warning:  %s %s\n", wn.Time.Local().Format("15:04:05"), wn.Message)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

func (a *app) cancelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cancel [BUILD-ID]",
		Short: "Cancel the daemon's running build (or the queued one, or the build with this ID)",
		Long: `Cancel a build of the daemon: with no argument the running build, else the
queued one; with an ID that build. The build ends as cancelled; its requests
are answered so. Cooks are not cancelled (every later build waits for the
current recipe's cook). Exit code 3 when no daemon runs, 1 when no such
build is running or queued.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var id int64
			if len(args) == 1 {
				n, err := strconv.ParseInt(strings.TrimPrefix(args[0], "#"), 10, 64)
				if err != nil || n <= 0 {
					return fmt.Errorf("build ID %q: want a number such as 12 (chefd status lists them)", args[0])
				}
				id = n
			}
			ctx := cmd.Context()
			c, _, err := a.runningDaemon(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			rec, err := c.Cancel(ctx, id)
			if err != nil {
				return err
			}
			if rec.Result.Done() {
				fmt.Fprintf(a.stdout, "build #%d cancelled\n", rec.ID)
			} else {
				fmt.Fprintf(a.stdout, "build #%d cancelling (the engine stops its build step)\n", rec.ID)
			}
			return nil
		},
	}
	return cmd
}
