package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/chefd/chefd/dockerctl"
)

func (a *app) dockerfileCmd() *cobra.Command {
	var check string
	cmd := &cobra.Command{
		Use:   "dockerfile",
		Short: "Print a standalone multi-stage Dockerfile (cook, build, runtime) for CI",
		Long: `Print a Dockerfile that reproduces chefd's split with plain 'docker build' and
no chefd or other tool in the image: a cook stage that writes the skeleton
(masked manifests, lockfile, dummy sources) and compiles the dependencies,
a build stage that compiles the real code, and a runtime stage with only the
configured binaries. With --check FILE, exit 1 when FILE is out of date.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			root, cfg, err := a.workspace()
			if err != nil {
				return err
			}
			r, err := computeRecipe(cmd.Context(), root, cfg, nil)
			if err != nil {
				return err
			}
			set := dockerctl.SettingsOf(cfg)
			bins, entry := dockerctl.ShippedBins(set, r)
			text := dockerctl.Standalone(r, set, bins, entry)
			if check == "" {
				fmt.Fprint(a.stdout, text)
				return nil
			}
			committed, err := os.ReadFile(check)
			if err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("read %s: %v (write it with: chefd dockerfile > %s)", check, err, check)}
			}
			ok, old := dockerctl.StandaloneUpToDate(string(committed), text)
			if !ok {
				why := "its content differs"
				if old != "" && old != r.Hash {
					why = fmt.Sprintf("it was generated from recipe %.16s, the workspace's recipe is now %.16s", old, r.Hash)
				}
				return &exitError{code: 1, msg: fmt.Sprintf("%s is out of date: %s; regenerate it with: chefd dockerfile > %s", check, why, check)}
			}
			fmt.Fprintf(a.stdout, "%s is up to date (recipe %.16s)\n", check, r.Hash)
			return nil
		},
	}
	cmd.Flags().StringVar(&check, "check", "", "exit non-zero when this committed Dockerfile is out of date with the recipe")
	return cmd
}
