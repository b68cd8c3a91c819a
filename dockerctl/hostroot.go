package dockerctl

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/chefd/chefd/recipe"
)

// srcRootOf is where the context lives in the builder: srcRoot, or, when
// a manifest names a local crate by an absolute path (recipe.HostRoot;
// cargo takes the path as it is), the context root's own host path, so
// that every path a manifest names, relative or absolute, is the same
// string inside the builder as on the host. (A link from the host path to
// srcRoot is not enough: cargo does not resolve links, and a member also
// named absolutely would be two packages to it.)
func srcRootOf(r *recipe.Recipe) string {
	if r.HostRoot == "" {
		return srcRoot
	}
	return path.Clean(r.HostRoot)
}

// systemDirs are the builder image's own directories: a context root
// equal to one (or "/") would overwrite it; below the virtual file systems,
// chefd's step directory or the toolchain, it could not be written.
var (
	systemDirs = []string{"/", "/bin", "/boot", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
		"/root", "/sbin", "/srv", "/tmp", "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/local/bin", "/var"}
	reservedTrees = []string{"/dev", "/proc", "/sys", "/run", "/usr/local/cargo", "/usr/local/rustup"}
)

// checkSrcRoot refuses a context root the builder cannot hold.
func checkSrcRoot(r *recipe.Recipe) error {
	if r.HostRoot == "" {
		return nil
	}
	root := srcRootOf(r)
	bad := slices.Contains(systemDirs, root)
	for _, d := range reservedTrees {
		bad = bad || root == d || strings.HasPrefix(root, d+"/")
	}
	if bad {
		return fmt.Errorf("a manifest names a local crate by an absolute path, so the build runs at the context root %s "+
			"(where the paths are the same as on this host), which the builder image keeps for itself: "+
			"use relative paths in the manifests, or move the workspace", root)
	}
	return nil
}
