//go:build !linux && !darwin && !freebsd

package api

// peerUID cannot tell on this platform: the checks of the socket file and
// its directory stand alone.
func peerUID(int) (int, error) { return -1, errNoPeerCred }
