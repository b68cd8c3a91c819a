package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/chefd/chefd/daemon/api"
	"github.com/chefd/chefd/dockerctl"
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
