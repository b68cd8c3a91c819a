// Package api is the daemon's contract with its clients: the types its
// HTTP+JSON API speaks on the unix socket (records, events, status, errors),
// where a workspace's daemon lives (Paths), the Client, and the reading of
// the daemon's log. It is what `chefd status`, `chefd build` and `chefd
// logs` need, without the scheduler (package daemon).
package api
