package api

import (
	"fmt"
	"strings"
	"time"
)

// NotWarmError is returned for a warm-only build request when the current
// recipe has no cooked image.
type NotWarmError struct {
	Recipe string `json:"recipe"`
	// LastCook is how long the last cook took (0: no cook finished yet).
	LastCook time.Duration `json:"last_cook_ns"`
	// CookingFor is how long the cook of Recipe has been running (0: none runs).
	CookingFor time.Duration `json:"cooking_for_ns"`
	// CookError is the error of the last cook of Recipe, if it failed.
	CookError string `json:"cook_error,omitempty"`
}

func (e *NotWarmError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--warm-only: recipe %s has no cooked image", Short(e.Recipe))
	switch {
	case e.CookingFor > 0:
		fmt.Fprintf(&b, "; its cook has been running for %s", Round(e.CookingFor))
	case e.CookError != "":
		fmt.Fprintf(&b, "; its cook failed: %s", e.CookError)
	}
	if e.LastCook > 0 {
		fmt.Fprintf(&b, "; the last cook took %s", Round(e.LastCook))
	} else {
		b.WriteString("; no cook has finished yet, so how long one takes is unknown")
	}
	return b.String()
}

// BuildRequest asks for a code build.
type BuildRequest struct {
	// Wait: the answer is the finished build (else the queued one).
	Wait bool `json:"wait"`
	// Urgent: do not wait for cooks of other recipes to wind down.
	Urgent bool `json:"urgent"`
	// WarmOnly: fail fast (NotWarmError) when the current recipe has no
	// cooked image.
	WarmOnly bool `json:"warm_only"`
	// Force: build even when nothing changed since the last successful build.
	Force bool `json:"force"`
	// Exact: build exactly the configured profile (dockerctl.ModeExact),
	// whatever the daemon's mode; a loop-mode build never answers it.
	// Urgent requests (the hotfix lane) are exact too.
	Exact bool `json:"exact,omitempty"`
}
