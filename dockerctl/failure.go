package dockerctl

import (
	"fmt"
	"regexp"
	"strings"
)

// BuildError is a failed build: its cause first (the compiler's errors, or
// the last words of the step that failed), then the step's short title,
// the engine's message (without the command, which BuildKit repeats whole)
// and the step's whole output (compiler errors verbatim).
type BuildError struct {
	// Cause is what went wrong, from the step's output: cargo's and rustc's
	// error lines, else a chefd message, else its last lines ("" when the
	// step said nothing).
	Cause string
	// Step is the short title of the step (or part of it) that failed.
	Step string
	// Message is the engine's message, the command dropped.
	Message string
	// Output is everything the failed step printed.
	Output string
}

// maxCause bounds the cause in the error's one line.
const maxCause = 400

func (e *BuildError) Error() string {
	var b strings.Builder
	what := e.Cause
	if what == "" {
		what = e.Message
	}
	b.WriteString(cut(what, maxCause))
	b.WriteString(" (")
	if e.Step != "" {
		b.WriteString("in " + e.Step)
		if code := exitCode(e.Message); code != "" {
			b.WriteString(", exit code " + code)
		}
	} else {
		b.WriteString("build failed")
	}
	b.WriteString(")")
	return b.String()
}

var (
	// BuildKit's messages of a failed RUN quote the whole command: 20.10
	// `executor failed running [/bin/sh -c CMD]: exit code: 1`, later
	// `process "/bin/sh -c CMD" did not complete successfully: exit code: 1`.
	executorRe = regexp.MustCompile(`(?s)executor failed running \[.*\]: `)
	processRe  = regexp.MustCompile(`(?s)process ".*" did not complete successfully: `)
	exitCodeRe = regexp.MustCompile(`exit code: (\d+)`)
	// cargo's and rustc's error lines
	errorLineRe = regexp.MustCompile(`^error(\[E\d+\])?: `)
)

// maxMessage bounds an engine message that still quotes a command.
const maxMessage = 300

// dropCommand removes the command BuildKit quotes in a failed step's
// message and bounds what is left.
func dropCommand(msg string) string {
	msg = executorRe.ReplaceAllString(msg, "")
	msg = processRe.ReplaceAllString(msg, "")
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] + "..."
	}
	return cut(msg, maxMessage)
}

func exitCode(msg string) string {
	if m := exitCodeRe.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return ""
}

// causeOf finds the cause of a failure in a step's output: the first and
// the last of cargo's and rustc's error lines (the first error and
// "could not compile ..."), else the last chefd message, else the last two
// lines.
func causeOf(output string) string {
	var lines []string
	for _, l := range strings.Split(output, "\n") {
		l = strings.TrimSpace(strings.TrimRight(l, "\r"))
		if l == "" {
			continue
		}
		if _, ok := subStep(l); ok {
			continue
		}
		lines = append(lines, l)
	}
	var errs []string
	for _, l := range lines {
		if errorLineRe.MatchString(l) {
			errs = append(errs, l)
		}
	}
	switch {
	case len(errs) == 1:
		return errs[0]
	case len(errs) == 2:
		return errs[0] + "; " + errs[1]
	case len(errs) > 2:
		return fmt.Sprintf("%s; %s (%d error lines)", errs[0], errs[len(errs)-1], len(errs))
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "chefd: ") {
			return lines[i]
		}
	}
	if n := len(lines); n > 2 {
		lines = lines[n-2:]
	}
	return strings.Join(lines, "; ")
}

// withoutSubSteps drops the lines naming a step's parts from its output.
func withoutSubSteps(output string) string {
	if !strings.Contains(output, subStepPrefix) {
		return output
	}
	lines := strings.SplitAfter(output, "\n")
	kept := lines[:0]
	for _, l := range lines {
		if _, ok := subStep(l); !ok {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "")
}
