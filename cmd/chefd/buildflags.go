package main

// buildFlags are the flags of `chefd build`.
type buildFlags struct {
	Wait     bool   // wait for the build to finish (daemon mode)
	Urgent   bool   // hotfix lane: go ahead of background cooks of other recipes
	WarmOnly bool   // fail fast when the current recipe has no cooked image
	JSON     bool   // print the result as JSON
	Tag      string // image tag (default from chefd.toml)
	NoCache  bool   // ignore the engine's layer cache
	Exact    bool   // with a daemon: an exact build even when its mode is loop
	// PushCooked pushes the image a cook makes to the cooked repository
	PushCooked bool
	// Images limits the build to these images of the [[image]] tables
	// (names or service names; none: all)
	Images []string
}
