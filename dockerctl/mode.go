package dockerctl

// Mode is how a code build compiles the workspace's own crates. Both modes
// build on the same cooked image with the same flags: cargo never applies
// incremental compilation to a crate that is not a path package, so the
// third-party units keep their fingerprints and switching modes compiles
// no third-party crate.
type Mode string

const (
	// ModeExact builds exactly the configured profile: what ships (a build
	// without a daemon, CI, the hotfix lane, `chefd dockerfile`).
	ModeExact Mode = "exact"
	// ModeLoop builds the configured profile with incremental compilation
	// of the workspace's own crates (CARGO_INCREMENTAL=1), its state kept
	// in the target cache: the daemon's edit loop. Same opt-level, same
	// behaviour; the binaries differ in code layout (more codegen units).
	ModeLoop Mode = "loop"
)

// labelMode labels a code-built image with the Mode that built it.
const labelMode = "chefd.mode"

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m == ModeExact || m == ModeLoop }

// Describe is the mode as the build summary says it.
func (m Mode) Describe() string {
	if m == ModeLoop {
		return "loop (incremental; ship an exact build)"
	}
	return "exact (the configured profile, as shipped)"
}
