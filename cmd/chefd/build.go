package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chefd/chefd/configs"
	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/recipe"
)

// engineError maps engine problems to exit codes: 2 when no engine
// answers (one clear line), 1 otherwise.
func engineError(err error) error {
	if err == nil {
		return nil
	}
	if dockerctl.IsUnreachable(err) {
		return &exitError{code: 2, msg: err.Error()}
	}
	if errors.Is(err, context.Canceled) {
		return &exitError{code: 130, msg: "cancelled"}
	}
	var be *dockerctl.BuildError
	if errors.As(err, &be) {
		return &exitError{code: 1, msg: be.Error()}
	}
	return err
}

// session is what cook and build need: the workspace, its config and
// recipe, and a builder bound to an engine.
type session struct {
	root    string
	cfg     configs.Config
	recipe  *recipe.Recipe
	builder *dockerctl.WorkspaceBuilder
	engine  *dockerctl.Engine
	prepare time.Duration
}

// close releases the engine. It does not wait for the background cleanup
// of a build with a small context (dockerctl: its leftover cache records;
// a large context's are removed before Build returns): listing the
// engine's build cache takes a second on a busy engine, and the caller
// waits for chefd to exit.
func (s *session) close() { s.engine.Close() }

// openSession opens the workspace and connects to the engine; tag
// overrides the configured tag, pushCooked turns push-cooked on.
func (a *app) openSession(ctx context.Context, tag string, noCache, pushCooked bool, images ...string) (*session, error) {
	root, cfg, err := a.workspace()
	if err != nil {
		return nil, err
	}
	if tag != "" {
		cfg.Tag = tag
		for i := range cfg.Images {
			cfg.Images[i].Tag = tag
		}
	}
	if pushCooked {
		if cfg.CookedRepo == "" {
			return nil, &exitError{code: 2, msg: "nowhere to push the cooked image: set cooked-repo in " + configs.FileName +
				", " + cookedRepoEnv + " or --cooked-repo"}
		}
		cfg.PushCooked = true
	}
	t0 := time.Now()
	r, err := computeRecipe(ctx, root, cfg, nil)
	if err != nil {
		return nil, err
	}
	prep := time.Since(t0)
	// --image: fewer images, the same recipe and code build (the union of
	// every image's binaries), so the cook and target cache are shared
	if cfg.Images, err = cfg.SelectImages(images); err != nil {
		return nil, &exitError{code: 2, msg: err.Error()}
	}
	e, err := dockerctl.Connect(ctx, dockerctl.WithLogger(a.log), dockerctl.WithCompression(os.Getenv("CHEFD_COMPRESS")))
	if err != nil {
		return nil, engineError(err)
	}
	b := dockerctl.NewWorkspaceBuilder(e, root, dockerctl.SettingsOf(cfg),
		dockerctl.WithBuilderLogger(a.log), dockerctl.WithVersion(chefdVersion()), dockerctl.WithNoCache(noCache))
	return &session{root: root, cfg: cfg, recipe: r, builder: b, engine: e, prepare: prep}, nil
}

func crateLine(c dockerctl.Crates) string {
	return fmt.Sprintf("%d crates compiled (%d third-party, %d local)", c.ThirdParty+c.Local, c.ThirdParty, c.Local)
}

// cookLine says what a cook started from and what it compiled: "delta
// from 7dad3c0b: 1 third-party crate (itoa v1.0.1), 3 local" or "from
// nothing: 32 third-party crates, 3 local"; with a seed image "delta
// from 7dad3c0b (seed image reg/x-cooked:seed-...): ...".
func cookLine(seed, seedImage string, c dockerctl.Crates) string {
	from := "from nothing"
	switch {
	case seed == "interrupted":
		from = "delta from an interrupted cook"
	case len(seed) > 8:
		from = "delta from " + seed[:8]
	case seed != "":
		from = "delta from " + seed
	}
	if seedImage != "" {
		from += " (seed image " + seedImage + ")"
	}
	line := fmt.Sprintf("%s: %d third-party crate%s", from, c.ThirdParty, plural(c.ThirdParty))
	if n := len(c.ThirdPartyNames); n > 0 && n <= 5 {
		line += " (" + strings.Join(c.ThirdPartyNames, ", ") + ")"
	}
	return line + fmt.Sprintf(", %d local", c.Local)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (a *app) cookCmd() *cobra.Command {
	var asJSON, noCache, push bool
	cmd := &cobra.Command{
		Use:   "cook",
		Short: "Build the cooked dependency image of the current recipe (skipped when it exists)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// the push is this command's own, after the cook: its failure is
			// the command's (a build's push is a warning)
			s, err := a.openSession(ctx, "", noCache, false)
			if err != nil {
				return err
			}
			defer s.close()
			if push && s.cfg.CookedRepo == "" {
				return &exitError{code: 2, msg: "cook --push: nowhere to push: set cooked-repo in " + configs.FileName +
					", " + cookedRepoEnv + " or --cooked-repo"}
			}
			view, err := a.viewFor(asJSON, s)
			if err != nil {
				return err
			}
			defer view.close()
			p := view.sink()
			res, err := s.builder.Cook(ctx, s.recipe, p)
			if err != nil {
				return engineError(err)
			}
			var pushErr error
			if push && res.Pulled == "" && res.Pushed == "" {
				res.Pushed, pushErr = s.builder.PushCooked(ctx, s.recipe, p)
			}
			view.close()
			if asJSON {
				if err := json.NewEncoder(a.stdout).Encode(res); err != nil {
					return err
				}
			} else {
				switch {
				case res.Pulled != "":
					fmt.Fprintf(a.stdout, "%s %s\npulled from %s in %.1fs: nothing to cook\n", res.Tag, res.ImageID, res.Pulled, res.Duration.Seconds())
				case res.Skipped:
					fmt.Fprintf(a.stdout, "%s exists (%s): nothing to cook\n", res.Tag, shortID(res.ImageID))
				default:
					fmt.Fprintf(a.stdout, "%s %s\ncooked in %.1fs, %s\n", res.Tag, res.ImageID, res.Duration.Seconds(), cookLine(res.Seed, res.SeedImage, res.Compiled))
				}
				if res.Pushed != "" {
					fmt.Fprintf(a.stdout, "pushed %s\n", res.Pushed)
				}
			}
			if pushErr != nil {
				return &exitError{code: 1, msg: "cook --push: " + pushErr.Error()}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "ignore the engine's layer cache (and the cooked repository)")
	cmd.Flags().BoolVar(&push, "push", false, "push the cooked image to the cooked repository (as <cooked-repo>:<recipe hash 16>)")
	return cmd
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (a *app) buildCmd() *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build the image: recipe, cook if missing, then only the workspace's code",
		Long: `Build <image>:<tag>: compute the recipe, cook the dependency image when it is
missing, compile the workspace's own crates on top of it, and put only the
configured binaries on the runtime base. When 'chefd start' runs for this
workspace, the build is asked of the daemon.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			root, _, err := a.workspace()
			if err != nil {
				return err
			}
			if handled, err := a.buildViaDaemon(cmd, root, f); handled {
				return err
			}
			s, err := a.openSession(ctx, f.Tag, f.NoCache, f.PushCooked, f.Images...)
			if err != nil {
				return err
			}
			defer s.close()
			view, err := a.viewFor(f.JSON, s)
			if err != nil {
				return err
			}
			defer view.close()
			p := view.sink()
			var pulled *dockerctl.CookResult // --warm-only took it from the registry
			if f.WarmOnly {
				ok, err := s.builder.HasCooked(ctx, s.recipe)
				if err != nil {
					return engineError(err)
				}
				if !ok && s.cfg.CookedRepo != "" {
					// the hotfix runner: the shared image, or fail fast
					ref := dockerctl.RemoteCookedRef(s.cfg.CookedRepo, s.recipe)
					cr, found, err := s.builder.PullCooked(ctx, s.recipe, p)
					pulled = &cr
					switch {
					case err != nil:
						return &exitError{code: 3, msg: fmt.Sprintf("--warm-only: %s does not exist on this engine, and %v", s.builder.CookedTag(s.recipe), err)}
					case !found:
						return &exitError{code: 3, msg: fmt.Sprintf("--warm-only: %s does not exist on this engine, nor %s in the registry (the recipe changed); "+
							"run chefd cook --push where it can cook", s.builder.CookedTag(s.recipe), ref)}
					}
					ok = true
				}
				if !ok {
					return &exitError{code: 3, msg: fmt.Sprintf("--warm-only: %s does not exist (the recipe changed); run chefd cook first",
						s.builder.CookedTag(s.recipe))}
				}
			}
			res, err := s.builder.Build(ctx, s.recipe, dockerctl.ModeExact, p)
			view.close()
			if pulled != nil && res.Cook == nil {
				res.Cook = pulled
				res.Phases = append([]dockerctl.Phase{{Name: "cook", Duration: pulled.Duration}}, res.Phases...)
				res.Duration += pulled.Duration
			}
			res.Phases = append([]dockerctl.Phase{{Name: "prepare", Duration: s.prepare}}, res.Phases...)
			if err != nil {
				return engineError(err)
			}
			if f.JSON {
				return json.NewEncoder(a.stdout).Encode(res)
			}
			// stdout: the image ID alone (docker run $(chefd build) works);
			// the summary goes to stderr, as through the daemon.
			printResult(a.stderr, res)
			printIDs(a.stdout, res)
			return nil
		},
	}
	cmd.Flags().BoolVar(&f.Wait, "wait", false, "with a daemon: wait for the build and print its result")
	cmd.Flags().BoolVar(&f.Urgent, "urgent", false, "with a daemon: go ahead of background cooks of other recipes (an exact build)")
	cmd.Flags().BoolVar(&f.Exact, "exact", false, "with a daemon: build exactly the configured profile, not the daemon's incremental loop mode (a build without a daemon is always exact)")
	cmd.Flags().BoolVar(&f.WarmOnly, "warm-only", false, "fail fast when the current recipe has no cooked image")
	cmd.Flags().BoolVar(&f.JSON, "json", false, "print the result as JSON")
	cmd.Flags().StringVar(&f.Tag, "tag", "", "image tag (default: tag in chefd.toml, \"dev\")")
	cmd.Flags().BoolVar(&f.PushCooked, "push-cooked", false, "push the image a cook makes to the cooked repository (without a daemon)")
	cmd.Flags().BoolVar(&f.NoCache, "no-cache", false, "ignore the engine's layer cache and compile every local crate again (the target cache keeps the third-party artifacts)")
	cmd.Flags().StringArrayVar(&f.Images, "image", nil, "build only this image of the [[image]] tables (its name or service name; repeatable)")
	return cmd
}

// printIDs prints the image ID alone (docker run $(chefd build) works), or
// with several images one line each, in the configuration's order.
func printIDs(w io.Writer, res dockerctl.BuildResult) {
	if len(res.Images) == 0 {
		fmt.Fprintln(w, res.ImageID)
		return
	}
	for _, im := range res.Images {
		fmt.Fprintln(w, im.ImageID)
	}
}

// unchangedImage says that a one-image build kept its image ID.
const unchangedImage = "unchanged (binaries identical: the tag keeps its image ID)"

func printResult(w io.Writer, res dockerctl.BuildResult) {
	fmt.Fprintf(w, "%s %s\n", res.Image, res.ImageID)
	fmt.Fprintf(w, "  mode     %s\n", res.Mode.Describe())
	if res.Engine != "" {
		fmt.Fprintf(w, "  engine   %s\n", res.Engine)
	}
	if res.Cook != nil && res.Cook.Pulled != "" {
		fmt.Fprintf(w, "  cook     %6.1fs  pulled %s\n", res.Cook.Duration.Seconds(), res.Cook.Pulled)
	} else if res.Cook != nil && !res.Cook.Skipped {
		fmt.Fprintf(w, "  cook     %6.1fs  %s (%s)\n", res.Cook.Duration.Seconds(), cookLine(res.Cook.Seed, res.Cook.SeedImage, res.Cook.Compiled), res.Cook.Tag)
	}
	for _, ph := range res.Phases {
		if ph.Name == "cook" {
			continue
		}
		line := ""
		switch {
		case ph.Name == "build":
			line = crateLine(res.Compiled)
		case ph.Name == "context" && res.Context != nil:
			line = contextLine(*res.Context)
		}
		fmt.Fprintf(w, "  %-8s %6.1fs  %s\n", ph.Name, ph.Duration.Seconds(), line)
	}
	fmt.Fprintf(w, "  total    %6.1fs\n", res.Duration.Seconds())
	if res.Unchanged {
		fmt.Fprintf(w, "  image    %s\n", unchangedImage)
	}
	printImages(w, res.Images)
}

// contextLine says what the code build's context held and sent: "1204
// files, 4.1 MB; sent 1.2 MB gzip in 0.3s".
func contextLine(c dockerctl.ContextStats) string {
	line := fmt.Sprintf("%d files, %s; sent %s", c.Files, megabytes(c.Bytes), megabytes(c.Sent))
	if c.Gzip {
		line += " gzip"
	}
	return line + fmt.Sprintf(" in %.1fs", c.Upload.Seconds())
}

func megabytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// printImages lists several images: each one's ID, changed or unchanged,
// and why.
func printImages(w io.Writer, imgs []dockerctl.ImageResult) {
	if len(imgs) == 0 {
		return
	}
	changed, width := 0, 0
	for _, im := range imgs {
		if im.Changed {
			changed++
		}
		width = max(width, len(im.Image))
	}
	fmt.Fprintf(w, "  images   %d changed, %d unchanged\n", changed, len(imgs)-changed)
	for _, im := range imgs {
		state := "unchanged"
		if im.Changed {
			state = "changed"
		}
		fmt.Fprintf(w, "    %-*s %s  %-9s (%s)\n", width, im.Image, shortID(im.ImageID), state, im.Reason)
	}
}
