// Command chefd makes Docker builds of Rust workspaces fast: it computes a
// recipe of the workspace's dependencies, cooks them into a cached image,
// and builds only the workspace's own code on top.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// signalGrace is how long a command may take to stop after SIGINT or
// SIGTERM cancelled its context (a build cancels its BuildKit session in
// well under a second) before chefd exits anyway.
const signalGrace = 3 * time.Second

func main() {
	// chefd is a short-lived CLI (or a daemon with a small heap): trade a
	// little memory for less GC work on recipe computation.
	debug.SetGCPercent(400)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	app := newApp(os.Stdout, os.Stderr)
	root := app.root()
	in := &interrupts{cancel: cancel, grace: signalGrace, after: time.After, exit: os.Exit, stderr: os.Stderr,
		escalate: !runsDaemon(root, os.Args[1:])}
	go in.watch(sigs)
	err := root.ExecuteContext(ctx)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "chefd:", ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "chefd:", err)
		if n := in.signal(); n != 0 {
			os.Exit(128 + n) // stopped by the signal
		}
		os.Exit(1)
	}
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// interrupts makes SIGINT and SIGTERM always end chefd: the first signal
// cancels the command's context; a second one, or the command still
// running signalGrace later (blocked somewhere the context does not
// reach), exits at once with 128 + the signal's number (130, 143).
//
// The daemon (escalate false) stops on its own terms, and handles a
// second signal itself (runDaemon).
type interrupts struct {
	cancel   context.CancelFunc
	grace    time.Duration
	after    func(time.Duration) <-chan time.Time
	exit     func(code int)
	stderr   io.Writer
	escalate bool
	first    atomic.Int32 // the first signal's number, 0 before it
}

// watch waits for the signals (it returns after the exit, which only a
// test's exit function lets it do).
func (in *interrupts) watch(sigs <-chan os.Signal) {
	s, ok := <-sigs
	if !ok {
		return
	}
	n := signum(s)
	in.first.Store(int32(n))
	in.cancel()
	if !in.escalate {
		return
	}
	select {
	case s2, ok := <-sigs:
		if ok {
			n = signum(s2)
		}
		fmt.Fprintf(in.stderr, "chefd: %v again: exiting now\n", s2)
	case <-in.after(in.grace):
		fmt.Fprintf(in.stderr, "chefd: %v: the command did not stop within %v; exiting\n", s, in.grace)
	}
	in.exit(128 + n)
}

// signal is the number of the first signal received, 0 when none was.
func (in *interrupts) signal() int { return int(in.first.Load()) }

func signum(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return int(n)
	}
	return int(syscall.SIGINT) // os.Interrupt
}

// runsDaemon reports whether args run the daemon in this process (`start
// --foreground`, or the detached child `start --detached`).
func runsDaemon(root *cobra.Command, args []string) bool {
	cmd, rest, err := root.Find(args)
	if err != nil || cmd.Name() != "start" {
		return false
	}
	fs := pflag.NewFlagSet("start", pflag.ContinueOnError)
	fs.ParseErrorsAllowlist.UnknownFlags = true
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	foreground := fs.Bool("foreground", false, "")
	detached := fs.Bool("detached", false, "")
	_ = fs.Parse(rest)
	return *foreground || *detached
}
