package dockerctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"go.uber.org/zap"
)

// brokenEngine answers a build with a stream that breaks off: the engine
// went away mid-build.
type brokenEngine struct {
	fakeEngine
	startErr error // ImageBuild's own error
	bodyErr  error // the body's error after its first message
}

func (b *brokenEngine) ImageBuild(_ context.Context, body io.Reader, _ build.ImageBuildOptions) (build.ImageBuildResponse, error) {
	go func() { _, _ = io.Copy(io.Discard, body) }()
	if b.startErr != nil {
		return build.ImageBuildResponse{}, b.startErr
	}
	first := strings.NewReader(`{"stream":"Step 1/3"}` + "\n" + `{"stream":"Compil`)
	return build.ImageBuildResponse{Body: io.NopCloser(io.MultiReader(first, errReader{b.bodyErr}))}, nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestEngineLostMidBuild: a build whose engine goes away mid-stream says
// so (an *UnreachableError with Lost set: exit 2 in the CLI, the daemon's
// engine_unreachable), not a bare "unexpected EOF".
func TestEngineLostMidBuild(t *testing.T) {
	cases := []struct {
		name      string
		eng       *brokenEngine
		lost      bool
		wantInMsg string
	}{
		{"truncated body", &brokenEngine{bodyErr: io.ErrUnexpectedEOF}, true, "lost the connection to the Docker engine"},
		{"connection reset", &brokenEngine{bodyErr: &netErr{syscall.ECONNRESET}}, true, "lost the connection"},
		{"refused at start", &brokenEngine{startErr: fmt.Errorf("dial unix /run/docker.sock: %w", syscall.ECONNREFUSED)}, false, "no Docker engine answers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &Engine{api: c.eng, host: "unix:///fake.sock", log: zap.NewNop()}
			_, err := e.build(context.Background(), func(*contextWriter) error { return nil }, build.ImageBuildOptions{}, nil)
			var u *UnreachableError
			if !errors.As(err, &u) {
				t.Fatalf("want *UnreachableError, got %T: %v", err, err)
			}
			if u.Lost != c.lost || !strings.Contains(err.Error(), c.wantInMsg) || !strings.Contains(err.Error(), "unix:///fake.sock") {
				t.Fatalf("lost=%v, message %q; want lost=%v and %q naming the host", u.Lost, err, c.lost, c.wantInMsg)
			}
		})
	}
}

type netErr struct{ errno syscall.Errno }

func (n *netErr) Error() string { return "read unix @->/run/docker.sock: " + n.errno.Error() }
func (n *netErr) Unwrap() error { return n.errno }

// busyEngine refuses the first n build-cache listings as dockerd does
// while another runs.
type busyEngine struct {
	fakeEngine
	busy int
}

func (b *busyEngine) DiskUsage(ctx context.Context, opts types.DiskUsageOptions) (types.DiskUsage, error) {
	if b.busy > 0 {
		b.busy--
		return types.DiskUsage{}, errors.New("Error response from daemon: a disk usage operation is already running")
	}
	return b.fakeEngine.DiskUsage(ctx, opts)
}

// TestBuildCacheListingRetried: a listing refused because another one
// runs (GC, a cleanup, `docker system df`) is retried, so that a build's
// cleanup or GC is not skipped.
func TestBuildCacheListingRetried(t *testing.T) {
	f := &busyEngine{busy: 2}
	f.caches = append(f.caches, &build.CacheRecord{ID: "x"})
	e := &Engine{api: f, host: "fake", log: zap.NewNop()}
	recs, err := e.BuildCache(context.Background())
	if err != nil || len(recs) != 1 || f.busy != 0 {
		t.Fatalf("buildCache: %v %v (refusals left %d)", recs, err, f.busy)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.busy = 1
	if _, err := e.BuildCache(ctx); err == nil {
		t.Fatal("a refused listing with ctx done: no error")
	}
}
