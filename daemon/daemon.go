package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/recipe"
	"github.com/chefd/chefd/watcher"
)

// Config configures Run: the scheduler's Builder, Plan and Options (Run
// adds WithBatches, WithSettle, WithHold, WithStateFile and WithOnRecipe
// itself, from the watcher and Paths) and what only the daemon needs.
type Config struct {
	Builder Builder
	Plan    PlanFunc
	Options []Option
	Paths   api.Paths
	// Watch creates the watcher; nil runs without one (builds on request
	// only; tests).
	Watch   func() (watcher.Notify, error)
	Version string
	// Engine is the Docker engine address the builder uses (for status).
	Engine string
	// Ready is called once the socket accepts requests.
	Ready func(api.Info)
	// Notify, when set, shows a desktop notification when a build or cook
	// no client asked for ends (notify = true).
	Notify NotifyFunc
}

// syncer is what a watcher offers so that a build request sees every
// change saved before it: Sync returns once they have all been delivered
// as batches (watcher.Watcher implements it, with its own fallback wait
// where its cookie cannot work).
type syncer interface {
	Sync(ctx context.Context) error
}

// outsider is what a watcher offers to watch the path crates outside the
// workspace too (watcher.Roots implements it).
type outsider interface {
	SetOutside(dirs []string)
}

// holder is what a watcher offers to say that git holds its batches
// (watcher.Watcher implements it).
type holder interface {
	Hold() (reason string, since time.Time)
}

// Run is the daemon: it takes the workspace lock (taking over the lock and
// socket of a crashed daemon), listens on the socket, starts the watcher
// and the scheduler, and serves the API until ctx is done (SIGTERM,
// SIGINT) or POST /v1/stop. Stopping cancels builds and cooks, closes the
// watcher, removes the socket and releases the lock.
func Run(ctx context.Context, cfg Config) error {
	var given options
	for _, f := range cfg.Options {
		f(&given)
	}
	log := given.Log
	if log == nil {
		log = zap.NewNop()
	}
	p := cfg.Paths
	if err := p.Ensure(); err != nil {
		return err
	}
	lock, stalePID, err := AcquireLock(p.Lock)
	if err != nil {
		var busy *BusyError
		if errors.As(err, &busy) {
			if running, ok := api.ReadRunning(p); ok {
				busy.Socket = running.Paths.Socket
			}
		}
		return err
	}
	defer lock.Release()
	if stalePID > 0 {
		log.Warn("the previous daemon did not stop cleanly; taking over its lock and socket", zap.Int("pid", stalePID))
	}
	ln, staleSocket, err := listenSocket(p.Socket)
	if err != nil {
		return err
	}
	if staleSocket {
		log.Info("removed a stale socket", zap.String("socket", p.Socket))
	}
	defer os.Remove(p.Socket)
	defer ln.Close()

	warns := &warnings{}
	var notify watcher.Notify
	var batches <-chan watcher.Batch
	var settle func(context.Context) error
	var hold func() (string, time.Time)
	if cfg.Watch != nil {
		notify, err = cfg.Watch()
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		defer notify.Close()
		batches = notify.Batches()
		if sy, ok := notify.(syncer); ok {
			settle = sy.Sync
		}
		if h, ok := notify.(holder); ok {
			hold = h.Hold
		}
	}
	opts := append(cfg.Options[:len(cfg.Options):len(cfg.Options)],
		WithBatches(batches), WithLog(log), WithSettle(settle), WithStateFile(p.State), WithHold(hold))
	if o, ok := notify.(outsider); ok {
		// The newest recipe's outside directories, handed to one goroutine
		// so that the loop never waits for a walk and sets apply in order.
		want := make(chan *recipe.Recipe, 1)
		opts = append(opts, WithOnRecipe(func(r *recipe.Recipe) {
			select {
			case <-want: // replaced by the newer recipe
			default:
			}
			want <- r
		}))
		outsideDone := make(chan struct{})
		defer close(outsideDone)
		go func() {
			for {
				select {
				case r := <-want:
					o.SetOutside(watchedOutside(r))
				case <-outsideDone:
					return
				}
			}
		}()
	}
	sched, err := New(cfg.Builder, cfg.Plan, opts...)
	if err != nil {
		return err
	}
	schedCtx, stopSched := context.WithCancel(context.Background())
	defer stopSched()
	go sched.Run(schedCtx)
	if cfg.Notify != nil {
		go notifyLoop(schedCtx, sched, cfg.Notify, log)
	}
	if notify != nil {
		go func() {
			for err := range notify.Errors() {
				log.Warn("watcher", zap.Error(err))
				warns.add("watcher: " + err.Error())
				sched.Warn("watcher: " + err.Error())
			}
		}()
	}

	info := api.Info{PID: os.Getpid(), Version: cfg.Version, Started: time.Now(), Paths: p,
		Watching: notify != nil, Manual: given.Manual, Engine: cfg.Engine}
	// where clients of other environments find the socket (api.Locate)
	if err := api.WriteRunning(p, info); err != nil {
		return err
	}
	defer os.Remove(p.RunningFile())
	stopReq := make(chan struct{})
	var stopOnce sync.Once
	requestStop := func() { stopOnce.Do(func() { close(stopReq) }) }
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	api := newServer(sched, info, requestStop, log, warns)
	srv := &http.Server{
		Handler:           api.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		MaxHeaderBytes:    MaxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          zap.NewStdLog(log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("daemon ready", zap.String("root", p.Root), zap.String("socket", p.Socket),
		zap.Int("pid", info.PID), zap.Bool("watching", info.Watching), zap.Bool("manual", given.Manual))
	if cfg.Ready != nil {
		cfg.Ready(info)
	}

	// The watcher's first walk hashes the tree: the API answers meanwhile.
	watchErr := make(chan error, 1)
	if notify != nil {
		go func() {
			if err := notify.Start(); err != nil {
				watchErr <- err
			}
		}()
	}
	var runErr error
	select {
	case err := <-watchErr:
		runErr = fmt.Errorf("watch: %w", err)
		log.Error("cannot watch the workspace; stopping", zap.Error(err))
	case <-ctx.Done():
		log.Info("stopping (signal)")
	case <-stopReq:
		log.Info("stopping (chefd stop)")
	case err := <-serveErr:
		runErr = fmt.Errorf("serve: %w", err)
		log.Error("the API server failed; stopping", zap.Error(err))
	case <-sched.Done():
		runErr = errors.New("the scheduler stopped unexpectedly")
	}
	sched.Stop()
	<-sched.Done() // waiting build requests have their (cancelled) answers
	api.close()    // ends event and log streams
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil { // build handlers write their answers
		cancelBase()
		srv.Close()
	}
	if c, ok := cfg.Builder.(io.Closer); ok {
		_ = c.Close()
	}
	log.Info("daemon stopped")
	return runErr
}

// LazyBuilder connects to the engine on first use, and again after a
// failed attempt, so that the daemon starts (watches, computes recipes,
// answers) while Docker is down; cooks and builds then fail with the
// connection error until it is up.
type LazyBuilder struct {
	// Connect returns the real builder. When it implements io.Closer,
	// Close closes it.
	Connect func(ctx context.Context) (Builder, error)
	// Tag names cooked images in the status (optional).
	Tag func(r *recipe.Recipe) string

	mu sync.Mutex
	b  Builder
}

var _ Builder = (*LazyBuilder)(nil)

func (l *LazyBuilder) get(ctx context.Context) (Builder, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b != nil {
		return l.b, nil
	}
	b, err := l.Connect(ctx)
	if err != nil {
		return nil, err
	}
	l.b = b
	return b, nil
}

// HasCooked implements Builder.
func (l *LazyBuilder) HasCooked(ctx context.Context, r *recipe.Recipe) (bool, error) {
	b, err := l.get(ctx)
	if err != nil {
		return false, err
	}
	return b.HasCooked(ctx, r)
}

// Cook implements Builder.
func (l *LazyBuilder) Cook(ctx context.Context, r *recipe.Recipe, p dockerctl.Progress) (dockerctl.CookResult, error) {
	b, err := l.get(ctx)
	if err != nil {
		return dockerctl.CookResult{}, err
	}
	return b.Cook(ctx, r, p)
}

// Build implements Builder.
func (l *LazyBuilder) Build(ctx context.Context, r *recipe.Recipe, mode dockerctl.Mode, p dockerctl.Progress) (dockerctl.BuildResult, error) {
	b, err := l.get(ctx)
	if err != nil {
		return dockerctl.BuildResult{}, err
	}
	return b.Build(ctx, r, mode, p)
}

// GC implements Builder.
func (l *LazyBuilder) GC(ctx context.Context, keep int) ([]dockerctl.Removed, error) {
	b, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return b.GC(ctx, keep)
}

// Unchanged implements Builder.
func (l *LazyBuilder) Unchanged(ctx context.Context, r *recipe.Recipe, in *dockerctl.Inputs) (bool, error) {
	b, err := l.get(ctx)
	if err != nil {
		return false, err
	}
	return b.Unchanged(ctx, r, in)
}

// CookedTag implements Tagger when Tag is set.
func (l *LazyBuilder) CookedTag(r *recipe.Recipe) string {
	if l.Tag == nil {
		return ""
	}
	return l.Tag(r)
}

// Close closes the connected builder if it is an io.Closer.
func (l *LazyBuilder) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.b.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
