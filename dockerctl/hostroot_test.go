package dockerctl

import (
	"strings"
	"testing"

	"github.com/chefd/chefd/recipe"
)

// TestSrcRootOf: the build runs at the context's host path only when a
// manifest names a crate absolutely, and never over the builder's own
// directories.
func TestSrcRootOf(t *testing.T) {
	cases := []struct {
		host, want string
		ok         bool
	}{
		{"", "/src", true},
		{"/home/me/shop", "/home/me/shop", true},
		{"/tmp/x/ws/", "/tmp/x/ws", true},
		{"/", "/", false},
		{"/usr", "/usr", false},
		{"/home", "/home", false},
		{"/proc/1", "/proc/1", false},
		{"/run/chefd", "/run/chefd", false},
		{"/usr/local/cargo/registry", "/usr/local/cargo/registry", false},
		{"/usr/src/shop", "/usr/src/shop", true},
	}
	for _, c := range cases {
		r := &recipe.Recipe{HostRoot: c.host}
		if got := srcRootOf(r); got != c.want {
			t.Errorf("srcRootOf(%q) = %q, want %q", c.host, got, c.want)
		}
		err := checkSrcRoot(r)
		if (err == nil) != c.ok || err != nil && !strings.Contains(err.Error(), "relative paths") {
			t.Errorf("checkSrcRoot(%q) = %v, want ok=%v", c.host, err, c.ok)
		}
		if c.host != "" && c.ok && !strings.Contains(cookDockerfile(r, "chefd-cook-test", nil, nil, false), "COPY skeleton/ "+c.want+"/") {
			t.Errorf("cook Dockerfile of %q:\n%s", c.host, cookDockerfile(r, "chefd-cook-test", nil, nil, false))
		}
	}
}
