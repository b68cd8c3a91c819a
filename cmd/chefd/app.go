package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/chefd/chefd/configs"
	"github.com/chefd/chefd/recipe"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = ""

func chefdVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "0.1.0-dev"
}

// app holds what every command shares: output streams, flags and the logger.
type app struct {
	stdout, stderr io.Writer
	dir            string
	verbose        bool
	log            *zap.Logger
	over           overrides
	progress       string // --progress
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{stdout: stdout, stderr: stderr}
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "chefd",
		Short: "Fast Docker builds of Rust workspaces: cooked dependencies, code-only rebuilds",
		Long: `chefd computes a recipe of a Rust workspace (manifests, lockfile and a dummy
source for every target), cooks the third-party dependencies into a cached
Docker image keyed by the recipe hash, and builds only the workspace's own
crates on top of it. 'chefd start' keeps that image warm while you edit.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			a.log = newLogger(a.stderr, a.verbose)
			return nil
		},
	}
	root.PersistentFlags().StringVarP(&a.dir, "dir", "C", ".", "workspace directory")
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "debug logging")
	root.PersistentFlags().StringVar(&a.progress, "progress", "auto",
		"how to show a build's progress: auto (tty on a terminal, else plain), tty (live lines with crate bars and estimates), plain (a line per event) or json (an event per line)")
	root.PersistentFlags().StringVar(&a.over.cookedRepo, "cooked-repo", "",
		"registry repository of shared cooked images (overrides "+cookedRepoEnv+" and cooked-repo in chefd.toml)")
	root.PersistentFlags().StringVar(&a.over.pull, "pull", "",
		"when to pull the builder and runtime images: missing, never or always (overrides pull in chefd.toml)")
	root.AddCommand(a.versionCmd(), a.prepareCmd(), a.initCmd(), a.cookCmd(), a.buildCmd(), a.dockerfileCmd())
	root.AddCommand(a.daemonCmds()...)
	return root
}

// newLogger builds the CLI's logger: human console output on a TTY, JSON
// lines otherwise.
func newLogger(w io.Writer, verbose bool) *zap.Logger {
	// The CLI prints its own results; its log shows warnings and errors
	// (everything with -v). The daemon logs to its own file at info.
	level := zapcore.WarnLevel
	if verbose {
		level = zapcore.DebugLevel
	}
	var enc zapcore.Encoder
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		cfg.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(cfg)
	} else {
		enc = zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level))
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print chefd's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(a.stdout, "chefd %s\n", chefdVersion())
			return nil
		},
	}
}

// workspace opens the workspace of -C (see openWorkspace).
func (a *app) workspace() (string, configs.Config, error) {
	w, err := openWorkspace(a.dir, a.over)
	return w.root, w.cfg, err
}

// computeRecipe is the recipe of the workspace at root with config cfg.
func computeRecipe(ctx context.Context, root string, cfg configs.Config, bins []string) (*recipe.Recipe, error) {
	return workspace{root: root, cfg: cfg}.recipe(ctx, bins)
}

func (a *app) prepareCmd() *cobra.Command {
	var (
		asJSON   bool
		skeleton string
		bins     []string
	)
	cmd := &cobra.Command{
		Use:   "prepare",
		Short: "Compute the workspace's recipe and print its hash",
		Long: `Compute the recipe (the skeleton cargo needs to build the third-party
dependencies, plus the build intent from chefd.toml) without running cargo,
and print its hash with a one-line summary.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			root, cfg, err := a.workspace()
			if err != nil {
				return err
			}
			r, err := computeRecipe(cmd.Context(), root, cfg, bins)
			if err != nil {
				return err
			}
			if skeleton != "" {
				if err := r.WriteSkeleton(skeleton); err != nil {
					return err
				}
			}
			if asJSON {
				data, err := r.JSON()
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, string(data))
				return nil
			}
			members, targets, external := r.Summary()
			fmt.Fprintln(a.stdout, r.Hash)
			fmt.Fprintf(a.stdout, "%d crates, %d targets, %d external packages", members, targets, external)
			if len(r.Intent.Bins) > 0 {
				fmt.Fprintf(a.stdout, ", bins %v", r.Intent.Bins)
			}
			if skeleton != "" {
				fmt.Fprintf(a.stdout, "; skeleton in %s", filepath.Join(skeleton, r.WorkspaceDir))
			}
			fmt.Fprintln(a.stdout)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the recipe as JSON (with a top-level hash)")
	cmd.Flags().StringVar(&skeleton, "skeleton", "", "write the skeleton tree into this directory")
	cmd.Flags().StringArrayVar(&bins, "bin", nil, "keep only what this binary needs (repeatable; default: bins in chefd.toml)")
	return cmd
}

func (a *app) initCmd() *cobra.Command {
	var force, perImage bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented chefd.toml listing the workspace's binaries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := recipe.FindRoot(a.dir)
			if err != nil {
				return err
			}
			path := filepath.Join(root, configs.FileName)
			if _, err := os.Stat(path); err == nil && !force {
				return fmt.Errorf("%s already exists (use --force to overwrite)", path)
			}
			r, err := recipe.Compute(cmd.Context(), root)
			if err != nil {
				return err
			}
			text := configs.Template(configs.DefaultImageName(root), r.Bins(), perImage)
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			fmt.Fprintf(a.stdout, "wrote %s (bins: %v)\n", path, r.Bins())
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing chefd.toml")
	cmd.Flags().BoolVar(&perImage, "images", false, "one image per binary ([[image]] tables), all from one cook and one code build")
	return cmd
}
