package dockerctl

import (
	"context"
	"io"

	"github.com/docker/docker/api/types/image"
)

// PullPolicy says when chefd pulls the builder and runtime images, as
// `docker build` does: PullMissing (the default) when the engine lacks
// them, PullNever (an offline machine), PullAlways before every cook and
// build (docker build --pull).
type PullPolicy string

// The pull policies.
const (
	PullMissing PullPolicy = "missing"
	PullNever   PullPolicy = "never"
	PullAlways  PullPolicy = "always"
)

// Valid reports whether p is a pull policy ("" is PullMissing).
func (p PullPolicy) Valid() bool {
	switch p {
	case "", PullMissing, PullNever, PullAlways:
		return true
	}
	return false
}

func (b *WorkspaceBuilder) pullPolicy() PullPolicy {
	if b.cfg.Pull == "" {
		return PullMissing
	}
	return b.cfg.Pull
}

// baseImage returns the ID of a base image (role "builder" or "runtime"),
// pulled under the pull policy with the Docker CLI's credentials and
// reported as progress. "scratch" is no image: "". A missing image the
// policy does not pull, or a failed pull, is a *MissingImageError.
func (b *WorkspaceBuilder) baseImage(ctx context.Context, ref, role string, p Progress) (string, error) {
	if ref == "scratch" {
		return "", nil
	}
	policy := b.pullPolicy()
	id, err := b.e.imageID(ctx, ref)
	if err != nil {
		return "", err
	}
	if policy == PullNever || policy == PullMissing && id != "" {
		if id == "" {
			return "", &MissingImageError{Image: ref, Role: role, Policy: policy}
		}
		return id, nil
	}
	auth, err := b.auth(ref)
	if err == nil {
		err = b.transfer(ctx, stepPull, ref, p, func(ctx context.Context) (io.ReadCloser, error) {
			return b.e.api.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
		})
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", &MissingImageError{Image: ref, Role: role, Policy: policy, Pull: err}
	}
	return b.e.imageID(ctx, ref)
}
