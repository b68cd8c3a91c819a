package watcher

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Roots is a Notify over a workspace root and the path crates outside it
// (which the build context ships too): one Watcher each, their batches
// merged into one stream in which a file outside the root is named
// relative to it ("../shared/src/lib.rs"). The outside crates follow the
// build context's rules: the built-in ones only. SetOutside says which
// directories are outside (the daemon calls it when the recipe changes).
// Sync answers for every root; Hold is the workspace's git.
type Roots struct {
	opts []Option
	main *forward
	out  chan Batch
	errs chan error
	done chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	extra  map[string]*forward // absolute directory -> its watcher
	closed bool
}

// forward moves one watcher's batches to the merged stream.
type forward struct {
	w      *Watcher
	prefix string // the watcher's root relative to the workspace root ("" for it)
	flush  chan chan struct{}
	stop   chan struct{}
}

// NewRoots makes the watcher of root; opts apply to every root.
func NewRoots(root string, opts ...Option) (*Roots, error) {
	w, err := New(root, opts...)
	if err != nil {
		return nil, err
	}
	return &Roots{opts: opts, main: newForward(w, ""), out: make(chan Batch), errs: make(chan error, 64),
		done: make(chan struct{}), extra: map[string]*forward{}}, nil
}

func newForward(w *Watcher, prefix string) *forward {
	return &forward{w: w, prefix: prefix, flush: make(chan chan struct{}), stop: make(chan struct{})}
}

// Root is the workspace root.
func (r *Roots) Root() string { return r.main.w.Root() }

// Batches implements Notify.
func (r *Roots) Batches() <-chan Batch { return r.out }

// Errors implements Notify.
func (r *Roots) Errors() <-chan error { return r.errs }

// Hold is the workspace's git hold (Watcher.Hold).
func (r *Roots) Hold() (string, time.Time) { return r.main.w.Hold() }

// Start implements Notify: it starts the workspace root's watcher.
func (r *Roots) Start() error {
	if err := r.main.w.Start(); err != nil {
		return err
	}
	r.run(r.main)
	return nil
}

// SetOutside makes the watched outside directories exactly dirs
// (absolute): new ones are walked and watched, gone ones closed. A
// directory that cannot be watched is reported on Errors.
func (r *Roots) SetOutside(dirs []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for dir, f := range r.extra {
		if !slices.Contains(dirs, dir) {
			close(f.stop)
			f.w.Close()
			delete(r.extra, dir)
		}
	}
	for _, dir := range dirs {
		if r.extra[dir] != nil {
			continue
		}
		rel, err := filepath.Rel(r.Root(), dir)
		if err != nil {
			r.report(fmt.Errorf("watch %s: %w", dir, err))
			continue
		}
		w, err := New(dir, append(slices.Clone(r.opts), WithGitHold(false), func(c *config) { c.builtinOnly = true })...)
		if err == nil {
			err = w.Start()
		}
		if err != nil {
			r.report(fmt.Errorf("watch the path crate %s outside the workspace: %w (its changes start no automatic build; chefd build --wait still sees them)", dir, err))
			continue
		}
		f := newForward(w, filepath.ToSlash(rel))
		r.extra[dir] = f
		r.run(f)
	}
}

// Sync returns once every change made under any root before the call is
// in a batch the reader of Batches has received (Watcher.Sync, then each
// root's forwarder has handed on what it got).
func (r *Roots) Sync(ctx context.Context) error {
	r.mu.Lock()
	fs := []*forward{r.main}
	for _, f := range r.extra {
		fs = append(fs, f)
	}
	r.mu.Unlock()
	for _, f := range fs {
		if err := f.w.Sync(ctx); err != nil {
			return err
		}
		ack := make(chan struct{})
		select {
		case f.flush <- ack:
		case <-f.stop:
			continue // closed meanwhile
		case <-r.done:
			return errors.New("watch: closed")
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-ack:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close implements Notify.
func (r *Roots) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.done)
	err := r.main.w.Close()
	for _, f := range r.extra {
		f.w.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	close(r.out)
	close(r.errs)
	return err
}

// run forwards f's batches and errors until it or Roots closes.
func (r *Roots) run(f *forward) {
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		for {
			select {
			case b, ok := <-f.w.Batches():
				if !ok {
					return
				}
				select {
				case r.out <- b.under(f.prefix):
				case <-r.done:
					return
				case <-f.stop:
					return
				}
			case ack := <-f.flush:
				close(ack)
			case <-f.stop:
				return
			case <-r.done:
				return
			}
		}
	}()
	go func() {
		defer r.wg.Done()
		for err := range f.w.Errors() {
			r.report(err)
		}
	}()
}

// report delivers err on Errors without blocking (the watchers log it).
func (r *Roots) report(err error) {
	select {
	case <-r.done:
	case r.errs <- err:
	default:
	}
}

// under names b's paths from the workspace root, b coming from a watcher
// of the directory prefix (relative to it; "" for the root itself).
func (b Batch) under(prefix string) Batch {
	if prefix == "" {
		return b
	}
	join := func(ps []string) []string {
		if ps == nil {
			return nil
		}
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = path.Join(prefix, p)
		}
		return out
	}
	b.Paths, b.Created, b.Removed, b.Recipe = join(b.Paths), join(b.Created), join(b.Removed), join(b.Recipe)
	return b
}
