package dockerctl

// Shared cooked images. A cooked image is named by its recipe, so one
// cooked once can serve every machine: with Settings.CookedRepo set, a
// cook whose image the engine lacks first asks that repository for
// <repo>:<hash16> (a manifest check through the engine, never a blind
// pull), pulls it, and trusts it only when its labels say it is a cooked
// image of this recipe with this cook key (builder image ID, intent,
// container paths, cargo config: cookKey); then tags it as the cooked
// image. A registry that is down, slow, refuses the credentials or holds
// something else under the tag costs one warning and a local cook, never
// the build. Pushing is explicit (Settings.PushCooked, PushCooked).
//
// The engine talks to the registry; chefd hands it the credentials the
// Docker CLI keeps (its config file and credential helpers, read with the
// CLI's own package), never logged.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/cli/cli/config"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/pkg/jsonmessage"
	"go.uber.org/zap"

	"github.com/chefd/chefd/recipe"
)

const (
	// DefaultRegistryTimeout bounds the manifest check, and a pull or push
	// that makes no progress for that long.
	DefaultRegistryTimeout = 15 * time.Second
	// labelBuilder labels a cooked image with its builder image's ID.
	labelBuilder = "chefd.builder"
	// labelCookedAt labels a cooked image with the time of its cook.
	labelCookedAt = "chefd.cooked-at"
	// stepPull and stepPush are the progress steps of a pull and a push.
	stepPull = "pull"
	stepPush = "push"
	// dockerHubAuthKey is where the Docker CLI keeps Docker Hub's
	// credentials in its config file.
	dockerHubAuthKey = "https://index.docker.io/v1/"
)

// Credentials returns the encoded registry credentials (X-Registry-Auth)
// for a registry host ("docker.io" for Docker Hub).
type Credentials func(host string) (string, error)

// DockerCredentials reads the credentials the Docker CLI keeps for host:
// $DOCKER_CONFIG/config.json (default ~/.docker), its credsStore and
// credHelpers. None stored: anonymous.
func DockerCredentials(host string) (string, error) {
	cf, err := config.Load(cliConfigDir())
	if err != nil {
		return "", fmt.Errorf("read the Docker CLI's configuration in %s: %w", cliConfigDir(), err)
	}
	key := host
	if host == "docker.io" {
		key = dockerHubAuthKey
	}
	ac, err := cf.GetAuthConfig(key)
	if err != nil {
		return "", fmt.Errorf("the Docker CLI's credentials for %s: %w", host, err)
	}
	return registry.EncodeAuthConfig(registry.AuthConfig{
		Username: ac.Username, Password: ac.Password, Auth: ac.Auth, ServerAddress: ac.ServerAddress,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
	})
}

// RemoteCookedRef is the registry reference of r's cooked image in repo.
func RemoteCookedRef(repo string, r *recipe.Recipe) string { return repo + ":" + r.ShortHash() }

// RemoteSeedRef is the cooked repository's moving tag of a cook key: the
// cooked image pushed last with that key, the seed of a cook of a recipe
// the repository lacks (seed.go).
func RemoteSeedRef(repo, key string) string { return repo + ":seed-" + key }

// registryHost is the registry of a reference ("docker.io" for Hub).
func registryHost(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	return reference.Domain(named)
}

// RegistryError is a registry that did not serve a cooked image (down,
// slow, refused the credentials, held something else under the tag).
type RegistryError struct {
	Ref  string
	What string // what chefd did: "check", "pull", "push", "credentials", "trust"
	Err  error
}

func (e *RegistryError) Error() string {
	switch e.What {
	case "trust":
		return fmt.Sprintf("%s is not a cooked image of this recipe: %v", e.Ref, e.Err)
	case "credentials":
		return fmt.Sprintf("registry credentials for %s: %v", e.Ref, e.Err)
	}
	return fmt.Sprintf("%s %s: %v", e.What, e.Ref, e.Err)
}

func (e *RegistryError) Unwrap() error { return e.Err }

func (b *WorkspaceBuilder) registryTimeout() time.Duration {
	if b.cfg.RegistryTimeout > 0 {
		return b.cfg.RegistryTimeout
	}
	return DefaultRegistryTimeout
}

// auth is the encoded credentials for ref's registry.
func (b *WorkspaceBuilder) auth(ref string) (string, error) {
	creds := b.creds
	if creds == nil {
		creds = DockerCredentials
	}
	a, err := creds(registryHost(ref))
	if err != nil {
		return "", &RegistryError{Ref: registryHost(ref), What: "credentials", Err: err}
	}
	return a, nil
}

// fetchCooked gets r's cooked image (cook key key, builder image ID
// builderID) from the cooked repository and tags it as the cooked image.
// found false and a nil error: the registry does not hold it. An error
// is a *RegistryError: the caller warns and cooks.
func (b *WorkspaceBuilder) fetchCooked(ctx context.Context, r *recipe.Recipe, key string, p Progress) (id string, found bool, err error) {
	ref := RemoteCookedRef(b.cfg.CookedRepo, r)
	ins, found, err := b.pullTrusted(ctx, ref, p, func(ins image.InspectResponse) string { return untrusted(ins, r, key) })
	if ins == nil {
		return "", found, err
	}
	if err := b.e.api.ImageTag(ctx, ref, b.CookedTag(r)); err != nil {
		return "", true, &RegistryError{Ref: ref, What: "pull", Err: fmt.Errorf("tag it %s: %w", b.CookedTag(r), err)}
	}
	return ins.ID, true, nil
}

// pullTrusted pulls ref after a manifest check, and keeps it only when
// distrust finds nothing wrong with it. found false and a nil error: the
// registry does not hold it. An error is a *RegistryError, or the
// context's.
func (b *WorkspaceBuilder) pullTrusted(ctx context.Context, ref string, p Progress, distrust func(image.InspectResponse) string) (ins *image.InspectResponse, found bool, err error) {
	auth, err := b.auth(ref)
	if err != nil {
		return nil, false, err
	}
	cctx, cancel := context.WithTimeout(ctx, b.registryTimeout())
	_, err = b.e.api.DistributionInspect(cctx, ref, auth)
	timedOut := errors.Is(cctx.Err(), context.DeadlineExceeded)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		if timedOut {
			err = fmt.Errorf("no answer in %s", b.registryTimeout())
		} else if manifestUnknown(err) {
			b.log.Info("the cooked repository does not hold it", zap.String("ref", ref))
			return nil, false, nil
		}
		return nil, false, &RegistryError{Ref: ref, What: "check", Err: err}
	}
	if err := b.transfer(ctx, stepPull, ref, p, func(ctx context.Context) (io.ReadCloser, error) {
		return b.e.api.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
	}); err != nil {
		return nil, true, err
	}
	got, err := b.e.api.ImageInspect(ctx, ref)
	if err != nil {
		return nil, true, &RegistryError{Ref: ref, What: "pull", Err: err}
	}
	if why := distrust(got); why != "" {
		// the tag is the registry's; the pulled image goes
		if _, err := b.e.api.ImageRemove(context.WithoutCancel(ctx), ref, image.RemoveOptions{}); err != nil {
			b.log.Warn("could not remove a foreign image pulled from the cooked repository", zap.String("ref", ref), zap.Error(err))
		}
		return nil, true, &RegistryError{Ref: ref, What: "trust", Err: errors.New(why)}
	}
	return &got, true, nil
}

// PullCooked takes r's cooked image from the cooked repository, never
// cooking (the hotfix lane's --warm-only): found false when the registry
// does not hold it. A registry fault is a *RegistryError.
func (b *WorkspaceBuilder) PullCooked(ctx context.Context, r *recipe.Recipe, p Progress) (res CookResult, found bool, err error) {
	start := time.Now()
	res.Tag = b.CookedTag(r)
	if b.cfg.CookedRepo == "" {
		return res, false, nil
	}
	builderID, err := b.baseImage(ctx, b.cfg.BuilderImage, "builder", p)
	if err != nil {
		return res, false, err
	}
	b.use(r)
	id, found, err := b.fetchCooked(ctx, r, cookKey(r, builderID), p)
	if id != "" {
		res.ImageID, res.Pulled = id, RemoteCookedRef(b.cfg.CookedRepo, r)
	}
	res.Duration = time.Since(start)
	return res, found, err
}

// untrusted says why a pulled image is not r's cooked image with cook
// key key ("" when it is).
func untrusted(ins image.InspectResponse, r *recipe.Recipe, key string) string {
	return wrongLabels(ins, map[string]string{"chefd.recipe": r.Hash, labelCookKey: key})
}

// untrustedSeed says why a pulled image is not a cooked image with cook
// key key, of any recipe ("" when it is).
func untrustedSeed(ins image.InspectResponse, key string) string {
	if why := wrongLabels(ins, map[string]string{labelCookKey: key}); why != "" {
		return why
	}
	if len(ins.Config.Labels["chefd.recipe"]) < 16 {
		return "it has no label chefd.recipe (the recipe it was cooked from)"
	}
	return ""
}

// wrongLabels says which of chefd's labels of a cooked image, and of
// want (label: value), ins lacks or has with another value.
func wrongLabels(ins image.InspectResponse, want map[string]string) string {
	var labels map[string]string
	if ins.Config != nil {
		labels = ins.Config.Labels
	}
	checks := []struct{ name, want, what string }{
		{"chefd", "1", "chefd's image format"},
		{"chefd.kind", "cooked", "a cooked image"},
	}
	if v, ok := want["chefd.recipe"]; ok {
		checks = append(checks, struct{ name, want, what string }{"chefd.recipe", v, "this recipe"})
	}
	if v, ok := want[labelCookKey]; ok {
		checks = append(checks, struct{ name, want, what string }{labelCookKey, v, "this builder image, build intent and container paths"})
	}
	for _, l := range checks {
		if got := labels[l.name]; got != l.want {
			if got == "" {
				return fmt.Sprintf("it has no label %s (want %s)", l.name, l.what)
			}
			return fmt.Sprintf("its label %s is %q, not %q (%s)", l.name, got, l.want, l.what)
		}
	}
	return ""
}

// manifestUnknown: the registry answered that it does not hold the tag.
func manifestUnknown(err error) bool {
	if cerrdefs.IsNotFound(err) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "manifest unknown") || strings.Contains(s, "name unknown")
}

// PushCooked pushes r's cooked image to the cooked repository as
// <repo>:<hash16> and returns that reference.
func (b *WorkspaceBuilder) PushCooked(ctx context.Context, r *recipe.Recipe, p Progress) (string, error) {
	if b.cfg.CookedRepo == "" {
		return "", errors.New("no cooked repository: set cooked-repo in chefd.toml, CHEFD_COOKED_REPO or --cooked-repo")
	}
	ref := RemoteCookedRef(b.cfg.CookedRepo, r)
	auth, err := b.auth(ref)
	if err != nil {
		return "", err
	}
	if err := b.e.api.ImageTag(ctx, b.CookedTag(r), ref); err != nil {
		return "", &RegistryError{Ref: ref, What: "push", Err: fmt.Errorf("tag %s: %w", b.CookedTag(r), err)}
	}
	if err := b.transfer(ctx, stepPush, ref, p, func(ctx context.Context) (io.ReadCloser, error) {
		return b.e.api.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: auth})
	}); err != nil {
		return "", err
	}
	b.log.Info("pushed the cooked image", zap.String("ref", ref))
	// the key's moving seed tag: a cook of another recipe of this key on
	// an engine with an empty cook cache starts from it (seed.go)
	if ins, err := b.e.api.ImageInspect(ctx, b.CookedTag(r)); err == nil && ins.Config != nil && ins.Config.Labels[labelCookKey] != "" {
		seedRef := RemoteSeedRef(b.cfg.CookedRepo, ins.Config.Labels[labelCookKey])
		if err := b.e.api.ImageTag(ctx, b.CookedTag(r), seedRef); err != nil {
			return ref, &RegistryError{Ref: seedRef, What: "push", Err: fmt.Errorf("tag %s: %w", b.CookedTag(r), err)}
		}
		err := b.transfer(ctx, stepPush, seedRef, p, func(ctx context.Context) (io.ReadCloser, error) {
			return b.e.api.ImagePush(ctx, seedRef, image.PushOptions{RegistryAuth: auth})
		})
		if _, rerr := b.e.api.ImageRemove(context.WithoutCancel(ctx), seedRef, image.RemoveOptions{}); rerr != nil {
			b.log.Warn("could not untag the seed tag", zap.String("ref", seedRef), zap.Error(rerr))
		}
		if err != nil {
			return ref, err
		}
	}
	return ref, nil
}

// transfer runs a pull or push (what: stepPull, stepPush) of ref and
// reads its messages to the end, reporting each layer's status changes
// as progress. It fails on an error message, and when no message comes
// for the registry timeout (a stalled registry).
func (b *WorkspaceBuilder) transfer(ctx context.Context, what, ref string, p Progress, start func(context.Context) (io.ReadCloser, error)) error {
	t0 := time.Now()
	emit := func(ev Event) {
		if p != nil {
			ev.Time = time.Now()
			p(ev)
		}
	}
	emit(Event{Kind: EventStep, Step: what + " " + ref})
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := b.registryTimeout()
	timer := time.AfterFunc(stall, func() { cancel(fmt.Errorf("no progress for %s", stall)) })
	defer timer.Stop()
	fail := func(err error) error {
		if c := context.Cause(tctx); c != nil && ctx.Err() == nil {
			err = c
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		emit(Event{Kind: EventError, Step: what + " " + ref, Text: err.Error()})
		return &RegistryError{Ref: ref, What: what, Err: err}
	}
	rc, err := start(tctx)
	if err != nil {
		return fail(err)
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	last := map[string]string{}
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return fail(err)
		}
		timer.Reset(stall)
		if m.Error != nil {
			return fail(errors.New(m.Error.Message))
		}
		if m.Status == "" || last[m.ID] == m.Status {
			continue
		}
		last[m.ID] = m.Status
		text := m.Status
		if m.ID != "" {
			text = m.ID + ": " + m.Status
		}
		emit(Event{Kind: EventLog, Step: what + " " + ref, Text: text})
	}
	if c := context.Cause(tctx); c != nil {
		return fail(c)
	}
	emit(Event{Kind: EventStep, Step: what + " " + ref, Done: true, Duration: time.Since(t0)})
	return nil
}
