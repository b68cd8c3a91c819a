package api

import "time"

// BuildBody is the body of POST /v1/build.
type BuildBody struct {
	BuildRequest
	Stream bool `json:"stream"`
}

// Short is a recipe hash as people see it: its first 16 hex digits.
func Short(hash string) string {
	if len(hash) > 16 {
		return hash[:16]
	}
	return hash
}

// Round rounds a duration for people: to the second above a minute, to a
// tenth above a second, else to the millisecond.
func Round(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
