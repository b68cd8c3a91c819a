package dockerctl

// Seed images (deltacook.go): what fills an empty cook cache.

import (
	"context"

	"github.com/docker/docker/api/types/image"
	"go.uber.org/zap"
)

// seedFor pulls the cooked repository's seed of cook key key (its moving
// tag, RemoteSeedRef) and checks its labels. nil: the repository holds
// none, or a registry fault (a warning: the cook goes on from nothing).
// drop removes the pulled seed; call it after the cook.
func (b *WorkspaceBuilder) seedFor(ctx context.Context, key string, p Progress) (seed *cookSeed, drop func()) {
	drop = func() {}
	ref := RemoteSeedRef(b.cfg.CookedRepo, key)
	ins, _, err := b.pullTrusted(ctx, ref, p, func(ins image.InspectResponse) string { return untrustedSeed(ins, key) })
	if err != nil {
		if ctx.Err() == nil {
			b.warn(p, err.Error()+"; cooking without a seed")
		}
		return nil, drop
	}
	if ins == nil {
		return nil, drop
	}
	b.log.Info("pulled a seed for the cook", zap.String("ref", ref), zap.String("recipe", ins.Config.Labels["chefd.recipe"]))
	return &cookSeed{Ref: ref, Hash: ins.Config.Labels["chefd.recipe"][:16]}, func() {
		if _, err := b.e.api.ImageRemove(context.WithoutCancel(ctx), ref, image.RemoveOptions{}); err != nil {
			b.log.Warn("could not remove the pulled seed image", zap.String("ref", ref), zap.Error(err))
		}
	}
}
