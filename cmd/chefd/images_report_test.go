package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
	"github.com/chefd/chefd/recipe"
)

// What a build of several images prints: one ID a line on stdout (only
// the images asked for with --image), and per image changed or unchanged
// and why on stderr; the same through the daemon.
func TestReportImages(t *testing.T) {
	imgs := []dockerctl.ImageResult{
		{Service: "shop-api", Image: "shop-api:dev", ImageID: "sha256:aaaaaaaaaaaaaaaa", Changed: true, Reason: "api changed"},
		{Service: "shop-worker", Image: "reg/shop-worker:dev", ImageID: "sha256:bbbbbbbbbbbbbbbb", Reason: "binaries identical"},
	}
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	rec := api.Record{ID: 7, Result: api.ResultOK, Finished: time.Now(), Images: imgs, Image: "shop-api:dev", ImageID: "sha256:aaaaaaaaaaaaaaaa"}
	if err := a.reportDaemonBuild(rec, false, "reg/shop-worker:dev"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "sha256:bbbbbbbbbbbbbbbb\n" {
		t.Errorf("--image shop-worker through the daemon: stdout %q", out.String())
	}
	for _, want := range []string{"1 changed, 1 unchanged", "shop-api:dev", "aaaaaaaaaaaa  changed   (api changed)", "unchanged (binaries identical)"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	out.Reset()
	printIDs(&out, dockerctl.BuildResult{Images: imgs})
	if out.String() != "sha256:aaaaaaaaaaaaaaaa\nsha256:bbbbbbbbbbbbbbbb\n" {
		t.Errorf("in-process build: stdout %q", out.String())
	}
}

// TestStatusImages: status shows each service image, the daemon's last
// build of it and the build that made it.
func TestStatusImages(t *testing.T) {
	now := time.Now()
	st := api.FullStatus{Status: api.Status{
		LastOK: &api.Record{ID: 9, Result: api.ResultOK, Mode: dockerctl.ModeLoop, Finished: now.Add(-time.Minute)},
		Images: []api.ServiceImage{
			{ImageResult: dockerctl.ImageResult{Service: "api", Image: "shop-api:dev", ImageID: "sha256:aaaaaaaaaaaaaaaa", Changed: true, Reason: "api changed"},
				Build: 9, ChangedIn: 9, ChangedAt: now.Add(-time.Minute)},
			{ImageResult: dockerctl.ImageResult{Service: "worker", Image: "shop-worker:dev", ImageID: "sha256:bbbbbbbbbbbbbbbb", Reason: "binaries identical"},
				Build: 9, ChangedIn: 4, ChangedAt: now.Add(-time.Hour)},
		}}}
	var b bytes.Buffer
	printStatus(&b, st, now)
	for _, want := range []string{"images:   last build #9",
		"shop-api:dev aaaaaaaaaaaa: build #9 changed (api changed); image made by build #9, 1m",
		"shop-worker:dev bbbbbbbbbbbb: build #9 unchanged (binaries identical); image made by build #4, 1h"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
}

// TestContextLine: the summary's context line.
func TestContextLine(t *testing.T) {
	for _, c := range []struct {
		s    dockerctl.ContextStats
		want string
	}{
		{dockerctl.ContextStats{Files: 1204, Bytes: 4_100_000, Sent: 4_700_000, Upload: 300 * time.Millisecond}, "1204 files, 4.1 MB; sent 4.7 MB in 0.3s"},
		{dockerctl.ContextStats{Files: 20000, Bytes: 41_000_000, Sent: 9_000_000, Gzip: true, Upload: 2 * time.Second}, "20000 files, 41.0 MB; sent 9.0 MB gzip in 2.0s"},
	} {
		if got := contextLine(c.s); got != c.want {
			t.Errorf("contextLine(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
}

// TestCrateTotals: a cook compiles at most the locked third-party
// packages, a code build the local ones.
func TestCrateTotals(t *testing.T) {
	r := &recipe.Recipe{
		LockFile: &recipe.File{Contents: "version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n" +
			"[[package]]\nname = \"itoa\"\nversion = \"1.0.5\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n" +
			"[[package]]\nname = \"ryu\"\nversion = \"1.0.12\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n"},
		Manifests: []recipe.Manifest{{Path: "Cargo.toml", Package: "app"}},
	}
	got := crateTotals(r)
	if got[dockerctl.StepCookBuild] != 2 || got[dockerctl.StepCodeBuild] != len(r.LocalPackages()) {
		t.Errorf("crateTotals = %v, want cook 2, code %d", got, len(r.LocalPackages()))
	}
}
