package api

// CodeEngineUnreachable is the error code (APIError.Code, Record.ErrorCode)
// of a failure because no Docker engine answered or the connection to it
// broke mid-build: the CLI exits 2 on it, as for an in-process build.
const CodeEngineUnreachable = "engine_unreachable"

// CodeNotFound: the build a request names is not running or queued
// (POST /v1/cancel).
const CodeNotFound = "not_found"
