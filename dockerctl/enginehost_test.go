package dockerctl

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResolveEngine: the engine is the Docker CLI's: DOCKER_HOST, else
// DOCKER_CONTEXT, else the config's current context (a context store in
// DOCKER_CONFIG, written as `docker context create` writes it), else the
// default socket; a context that does not exist is an error naming it.
func TestResolveEngine(t *testing.T) {
	cfgDir := t.TempDir()
	writeContext := func(name, host string) {
		sum := sha256.Sum256([]byte(name))
		dir := filepath.Join(cfgDir, "contexts", "meta", hex.EncodeToString(sum[:]))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		meta := `{"Name":"` + name + `","Metadata":{"Description":"test"},"Endpoints":{"docker":{"Host":"` + host + `","SkipTLSVerify":false}}}`
		if err := os.WriteFile(filepath.Join(dir, "meta.json"), []byte(meta), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeContext("build-server", "tcp://10.1.2.3:2376")
	writeContext("other", "unix:///run/other.sock")
	t.Setenv("DOCKER_CONFIG", cfgDir)
	for _, tt := range []struct {
		name, host, context, current string
		want, err                    string
	}{
		{name: "default", want: "unix:///var/run/docker.sock"},
		{name: "DOCKER_HOST", host: "tcp://127.0.0.1:2376", context: "build-server", want: "tcp://127.0.0.1:2376"},
		{name: "DOCKER_CONTEXT", context: "build-server", current: "other", want: "context build-server (tcp://10.1.2.3:2376)"},
		{name: "current context", current: "other", want: "context other (unix:///run/other.sock)"},
		{name: "the default context", context: "default", current: "other", want: "unix:///var/run/docker.sock"},
		{name: "no such context", context: "gone", err: `docker context "gone"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tt.host)
			t.Setenv("DOCKER_CONTEXT", tt.context)
			if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"currentContext":"`+tt.current+`"}`), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := resolveEngine("")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("want an error naming %q, got %v (%s)", tt.err, err, got.name)
				}
				return
			}
			if err != nil || got.name != tt.want {
				t.Fatalf("resolved %q, %v; want %q", got.name, err, tt.want)
			}
		})
	}
}
