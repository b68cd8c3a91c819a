package api

import (
	"time"
)

// Info identifies a running daemon (GET /v1/ping).
type Info struct {
	PID      int       `json:"pid"`
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
	Paths    Paths     `json:"paths"`
	Watching bool      `json:"watching"`
	Manual   bool      `json:"manual,omitempty"`
	// Engine is the Docker engine the daemon builds on (DOCKER_HOST).
	Engine string `json:"engine,omitempty"`
}

// Warning is a recent problem of the watcher or the builder.
type Warning struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// FullStatus is the answer of GET /v1/status.
type FullStatus struct {
	Daemon   Info      `json:"daemon"`
	Warnings []Warning `json:"warnings,omitempty"`
	Status
}

// APIError is the body of an error answer (and of an "error" line of a
// build stream).
type APIError struct {
	// Code: "not_warm", "recipe", "engine_unreachable", "stopping",
	// "bad_request", "too_large", "internal".
	Code    string        `json:"code"`
	Message string        `json:"error"`
	NotWarm *NotWarmError `json:"not_warm,omitempty"`
	Status  int           `json:"-"`
}

func (e *APIError) Error() string { return e.Message }

// Stream line types of POST /v1/build with stream (besides events).
const (
	EventSubscribed = "subscribed" // first line of a stream: events from here on are delivered
	EventResult     = "result"     // the final answer of a build request (Record)
	EventError      = "error"      // the request failed (Error)
)
