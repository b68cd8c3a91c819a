package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chefd/chefd/dockerctl"
)

// servicesWorkspace writes a workspace of six services and three shared
// libraries, with images named <prefix>-sN:
//
//	s1 -> base        s4 -> text          s6 (no library)
//	s2 -> base        s5 -> extra -> itoa (third-party)
//	s3 -> base, text
//
// Each service prints "sN" and what its libraries return.
func servicesWorkspace(t *testing.T, prefix string, keepImages int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "services")
	deps := map[string][]string{"s1": {"base"}, "s2": {"base"}, "s3": {"base", "text"}, "s4": {"text"}, "s5": {"extra"}, "s6": nil}
	write := func(rel, text string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var members []string
	for _, lib := range []string{"base", "text", "extra"} {
		members = append(members, "libs/"+lib)
		extra := ""
		body := fmt.Sprintf("pub fn hello() -> String {\n    String::from(%q)\n}\n", lib+"-v1")
		if lib == "extra" {
			extra = "itoa = \"1\"\n"
			body = "pub fn hello() -> String {\n    let mut b = itoa::Buffer::new();\n    format!(\"extra-{}\", b.format(1u8))\n}\n"
		}
		write("libs/"+lib+"/Cargo.toml", fmt.Sprintf("[package]\nname = %q\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n%s", lib, extra))
		write("libs/"+lib+"/src/lib.rs", body)
	}
	var tables strings.Builder
	for i := 1; i <= 6; i++ {
		s := fmt.Sprintf("s%d", i)
		members = append(members, "services/"+s)
		var dl, calls strings.Builder
		for _, lib := range deps[s] {
			fmt.Fprintf(&dl, "%s = { path = \"../../libs/%s\" }\n", lib, lib)
			fmt.Fprintf(&calls, "    print!(\" {}\", %s::hello());\n", lib)
		}
		write("services/"+s+"/Cargo.toml", fmt.Sprintf("[package]\nname = %q\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n%s", s, dl.String()))
		write("services/"+s+"/src/main.rs", fmt.Sprintf("fn main() {\n    print!(%q);\n%s    println!();\n}\n", s, calls.String()))
		fmt.Fprintf(&tables, "[[image]]\nname = \"%s-%s\"\nbins = [%q]\n\n", prefix, s, s)
	}
	quoted := make([]string, len(members))
	for i, m := range members {
		quoted[i] = fmt.Sprintf("%q", m)
	}
	write("Cargo.toml", "[workspace]\nmembers = ["+strings.Join(quoted, ", ")+"]\nresolver = \"2\"\n")
	write("chefd.toml", fmt.Sprintf(`builder-image = "chefd/rust-builder:bookworm-1.96"
runtime-image = "scratch"
target = "x86_64-unknown-linux-gnu"
rustflags = "-C target-feature=+crt-static"
keep-images = %d

%s`, keepImages, tables.String()))
	return dir
}

// imagesByService maps a build's images by service name.
func imagesByService(t *testing.T, res dockerctl.BuildResult) map[string]dockerctl.ImageResult {
	t.Helper()
	m := map[string]dockerctl.ImageResult{}
	for _, im := range res.Images {
		m[im.Service[strings.LastIndex(im.Service, "-")+1:]] = im
	}
	return m
}

// changedServices lists the services whose image ID differs from before,
// checking that the result's changed flags say the same.
func changedServices(t *testing.T, before, after map[string]dockerctl.ImageResult) []string {
	t.Helper()
	var out []string
	for s, im := range after {
		moved := before[s].ImageID != im.ImageID
		if moved != im.Changed {
			t.Errorf("%s: image ID moved %v, but changed is %v (%s)", s, moved, im.Changed, im.Reason)
		}
		if moved {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// TestE2EServiceImages: six services and three shared libraries from one
// cook and one code build; an edit moves exactly the images whose
// binaries it changes; --image builds a subset; superseded images do not
// pile up.
func TestE2EServiceImages(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel() // with the delta-cook tests, after the package's serial ones
	needEngine(t)
	prefix := fmt.Sprintf("chefd-svc-%d", time.Now().UnixNano())
	dir := servicesWorkspace(t, prefix, 2)
	t.Cleanup(func() {
		for i := 1; i <= 6; i++ {
			removeImages(fmt.Sprintf("%s-s%d", prefix, i))
		}
		removeImages("services-cooked")
		removeDangling(t, dir)
	})
	run := func(s string) string {
		return strings.TrimSpace(dockerRun(t, fmt.Sprintf("%s-%s:dev", prefix, s)))
	}

	// first build: every image new, one code build for all six
	first := buildJSON(t, dir)
	if len(first.Images) != 6 {
		t.Fatalf("want 6 images, got %+v", first.Images)
	}
	cur := imagesByService(t, first)
	for s, im := range cur {
		if !im.Changed || im.Reason != "new image" {
			t.Errorf("%s: first build: %+v", s, im)
		}
	}
	if first.Compiled.Local != 9 {
		t.Errorf("first build compiled %d local crates, want 9 (each library once, each service once)", first.Compiled.Local)
	}
	want := map[string]string{"s1": "s1 base-v1", "s2": "s2 base-v1", "s3": "s3 base-v1 text-v1", "s4": "s4 text-v1",
		"s5": "s5 extra-1", "s6": "s6"}
	for s, w := range want {
		if got := run(s); got != w {
			t.Errorf("%s prints %q, want %q", s, got, w)
		}
	}

	step := func(name string, change func(), wantChanged []string) {
		t.Helper()
		change()
		res := buildJSON(t, dir)
		next := imagesByService(t, res)
		if got := changedServices(t, cur, next); !slices.Equal(got, wantChanged) {
			t.Errorf("%s: changed images %v, want %v", name, got, wantChanged)
			for s, im := range next {
				t.Logf("  %s: %v %s", s, im.Changed, im.Reason)
			}
		}
		cur = next
	}
	// an edit in one service's crate moves that image alone
	step("edit s5", func() {
		edit(t, filepath.Join(dir, "services/s5/src/main.rs"), `print!("s5")`, `print!("s5!")`)
		want["s5"] = "s5! extra-1"
	}, []string{"s5"})
	if cur["s5"].Reason != "s5 changed" {
		t.Errorf("s5's reason: %q", cur["s5"].Reason)
	}
	// an edit of a shared library moves exactly the images that link it
	step("edit text", func() {
		edit(t, filepath.Join(dir, "libs/text/src/lib.rs"), "text-v1", "text-v2")
		want["s3"], want["s4"] = "s3 base-v1 text-v2", "s4 text-v2"
	}, []string{"s3", "s4"})
	step("edit base", func() {
		edit(t, filepath.Join(dir, "libs/base/src/lib.rs"), "base-v1", "base-v2")
		want["s1"], want["s2"], want["s3"] = "s1 base-v2", "s2 base-v2", "s3 base-v2 text-v2"
	}, []string{"s1", "s2", "s3"})
	// a comment that leaves every binary identical moves nothing (at the
	// end of the file: no line number in the binary moves)
	step("comment", func() {
		f := filepath.Join(dir, "libs/base/src/lib.rs")
		b, _ := os.ReadFile(f)
		os.WriteFile(f, append(b, []byte("// a comment\n")...), 0o644)
	}, nil)
	for s, im := range cur {
		if im.Reason != "binaries identical" {
			t.Errorf("%s after a comment: %q", s, im.Reason)
		}
	}
	for s, w := range want {
		if got := run(s); got != w {
			t.Errorf("%s prints %q, want %q", s, got, w)
		}
	}

	// a failed build moves no image; reverting the broken edit gives the
	// images the tags name (nothing moves), each still what its files say
	f := filepath.Join(dir, "libs/text/src/lib.rs")
	good, _ := os.ReadFile(f)
	os.WriteFile(f, append(append([]byte{}, good...), []byte("pub fn broken() -> u8 { \"no\" }\n")...), 0o644)
	if r := chefd(t, dir, nil, "build"); r.code == 0 {
		t.Fatalf("a compile error built images: %s", r.stdout)
	}
	os.WriteFile(f, good, 0o644)
	step("revert after a failed build", func() {}, nil)
	for s, w := range want {
		if got := run(s); got != w {
			t.Errorf("after the failed build and revert, %s prints %q, want %q", s, got, w)
		}
	}

	// --image: only the named images; stdout their IDs
	edit(t, filepath.Join(dir, "services/s2/src/main.rs"), `print!("s2")`, `print!("s2?")`)
	edit(t, filepath.Join(dir, "services/s6/src/main.rs"), `print!("s6")`, `print!("s6?")`)
	r := chefd(t, dir, nil, "build", "--image", prefix+"-s2")
	if r.code != 0 {
		t.Fatalf("build --image: %d %s", r.code, r.stderr)
	}
	ids := strings.Fields(r.stdout)
	if len(ids) != 1 || !strings.Contains(r.stderr, "1 changed, 0 unchanged") {
		t.Fatalf("build --image s2: stdout %q\n%s", r.stdout, r.stderr)
	}
	if got := run("s2"); got != "s2? base-v2" {
		t.Errorf("s2 prints %q after build --image", got)
	}
	if got := run("s6"); got != "s6" {
		t.Errorf("s6 moved with build --image s2: %q", got)
	}
	if r := chefd(t, dir, nil, "build", "--image", "nope"); r.code != 2 || !strings.Contains(r.stderr, "no such image") {
		t.Errorf("build --image nope: %d %s", r.code, r.stderr)
	}

	// a build killed (SIGKILL) between its code build and its images: no
	// tag moved; the next build makes the images from its own binaries
	// and removes the killed build's binaries image
	edit(t, filepath.Join(dir, "services/s3/src/main.rs"), `print!("s3")`, `print!("s3 killed")`)
	killed, killedErr, hit, exited := watchedBuild(t, dir, "Successfully tagged services-bins:")
	select {
	case <-hit:
		killed.Process.Kill()
		<-exited
	case err := <-exited:
		t.Fatalf("the build ended before it could be killed: %v\n%s", err, killedErr.String())
	case <-time.After(3 * time.Minute):
		killed.Process.Kill()
		t.Fatalf("no binaries image in 3 minutes:\n%s", killedErr.String())
	}
	if got := run("s3"); got != "s3 base-v2 text-v2" {
		t.Errorf("a killed build moved s3's tag: it prints %q", got)
	}
	t.Logf("killed after its code build; binaries images left: %d", binsImages(t, dir))
	after := buildJSON(t, dir)
	if got := run("s3"); got != "s3 killed base-v2 text-v2" {
		t.Errorf("after a killed build, the next build's s3 prints %q", got)
	}
	if n := binsImages(t, dir); n != 0 {
		t.Errorf("%d binaries images left after the build that followed a killed one", n)
	}
	for _, im := range after.Images {
		if im.ImageID != imageID(t, im.Image) {
			t.Errorf("%s names %s, the build says %s", im.Image, imageID(t, im.Image), im.ImageID)
		}
	}

	// through the daemon: `build --wait --image` prints that image's ID
	// alone, the daemon's build made every image (one code build), and
	// status shows each image, the build that made it
	env := daemonEnv(t, dir)
	if r := chefd(t, dir, env, "start", "--manual"); r.code != 0 {
		t.Fatalf("start: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	edit(t, filepath.Join(dir, "services/s2/src/main.rs"), `print!("s2?")`, `print!("s2!")`)
	r = chefd(t, dir, env, "build", "--wait", "--image", prefix+"-s2")
	if r.code != 0 {
		t.Fatalf("build --wait --image through the daemon: %d %s", r.code, r.stderr)
	}
	if ids := strings.Fields(r.stdout); len(ids) != 1 || ids[0] != imageID(t, prefix+"-s2:dev") {
		t.Errorf("build --wait --image s2: stdout %q, want the ID of %s-s2:dev", r.stdout, prefix)
	}
	if got := run("s2"); got != "s2! base-v2" {
		t.Errorf("s2 prints %q after build --wait --image", got)
	}
	if got := run("s6"); got != "s6?" {
		t.Errorf("s6 prints %q after the daemon's build", got)
	}
	st := daemonStatus(t, dir, env)
	if len(st.Images) != 6 {
		t.Fatalf("status shows %d images, want 6: %+v", len(st.Images), st.Images)
	}
	for _, im := range st.Images {
		changed := im.Service == prefix+"-s2"
		if im.Build != st.LastOK.ID || im.Changed != changed || (im.ChangedIn == st.LastOK.ID) != changed || im.ImageID != imageID(t, im.Image) {
			t.Errorf("status of %s: %+v (last build #%d), want changed %v", im.Service, im, st.LastOK.ID, changed)
		}
	}
	if r := chefd(t, dir, env, "status"); !strings.Contains(r.stdout, prefix+"-s2:dev") || !strings.Contains(r.stdout, "image made by build #") {
		t.Errorf("status does not show the images:\n%s", r.stdout)
	}
	if r := chefd(t, dir, env, "stop"); r.code != 0 {
		t.Fatalf("stop: %d %s", r.code, r.stderr)
	}

	// superseded images: s6 changes on every build; keep-images = 2
	builds := envInt("CHEFD_E2E_IMAGE_BUILDS", 20)
	for i := 0; i < builds; i++ {
		f := filepath.Join(dir, "services/s6/src/main.rs")
		b, _ := os.ReadFile(f)
		os.WriteFile(f, []byte(strings.Replace(string(b), `print!("s6`, fmt.Sprintf(`print!("s6-%d`, i), 1)), 0o644)
		res := buildJSON(t, dir, "--image", prefix+"-s6")
		if len(res.Images) != 1 || !res.Images[0].Changed {
			t.Fatalf("build %d of s6: %+v", i, res.Images)
		}
		if i == builds-1 {
			t.Logf("build %d of s6: %.1fs, phases %v", i+1, res.Duration.Seconds(), res.Phases)
		}
	}
	if n := supersededImages(t, dir, prefix+"-s6"); n != 2 {
		t.Errorf("after %d builds of s6: %d superseded images of it, want 2 (keep-images)", builds+1, n)
	}
	for _, s := range []string{"s1", "s3", "s5"} {
		if n := supersededImages(t, dir, prefix+"-"+s); n > 2 {
			t.Errorf("%s: %d superseded images", s, n)
		}
	}

	// a second checkout (a worktree for a hotfix) writes the same image
	// names: each build's tags name its own images, with what its own
	// files say, and neither checkout's cleanup removes the other's images
	other := filepath.Join(t.TempDir(), "services")
	if out, err := exec.Command("cp", "-a", dir, other).CombinedOutput(); err != nil {
		t.Fatalf("second checkout: %v %s", err, out)
	}
	os.RemoveAll(filepath.Join(other, ".chefd"))
	t.Cleanup(func() { removeDangling(t, other) })
	edit(t, filepath.Join(other, "services/s4/src/main.rs"), `print!("s4")`, `print!("s4 hotfix")`)
	mine := map[string]string{}
	for _, im := range buildJSON(t, dir).Images { // every image as the first checkout's files say
		mine[im.Image] = im.ImageID
	}
	rollbacks := supersededImages(t, dir, prefix+"-s6")
	theirs := buildJSON(t, other)
	for _, im := range theirs.Images {
		if im.ImageID != imageID(t, im.Image) {
			t.Errorf("second checkout: %s names %s, its build says %s", im.Image, imageID(t, im.Image), im.ImageID)
		}
	}
	if got := run("s4"); got != "s4 hotfix text-v2" {
		t.Errorf("after the second checkout's build, s4 prints %q", got)
	}
	if n := supersededImages(t, dir, prefix+"-s6"); n < rollbacks {
		t.Errorf("the second checkout's build removed the first's images of s6: %d left of %d", n, rollbacks)
	}
	back := buildJSON(t, dir)
	for _, im := range back.Images {
		if id := imageID(t, im.Image); id != im.ImageID {
			t.Errorf("back in the first checkout: %s names %s, its build says %s", im.Image, id, im.ImageID)
		}
		t.Logf("first checkout again: %s %s (%s); its image before the second checkout's build: same ID %v",
			im.Service, im.Reason, shortID(im.ImageID), mine[im.Image] == im.ImageID)
	}
	if got := run("s4"); got != "s4 text-v2" {
		t.Errorf("back in the first checkout, s4 prints %q", got)
	}
}

// binsImages counts the binaries images of builds of the workspace dir.
func binsImages(t *testing.T, dir string) int {
	t.Helper()
	out, err := exec.Command("docker", "image", "ls", "-q", "--filter", "label=chefd.kind=bins",
		"--filter", "label=chefd.workspace="+dir).Output()
	if err != nil {
		t.Fatalf("list binaries images: %v", err)
	}
	return len(strings.Fields(string(out)))
}

// imageID is the ID of an image on the engine.
func imageID(t *testing.T, ref string) string {
	t.Helper()
	out, err := exec.Command("docker", "image", "inspect", "-f", "{{.Id}}", ref).Output()
	if err != nil {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	return strings.TrimSpace(string(out))
}

// supersededImages counts the untagged final images of one image
// repository chefd built in the workspace dir.
func supersededImages(t *testing.T, dir, name string) int {
	t.Helper()
	out, err := exec.Command("docker", "images", "-q", "--no-trunc", "--filter", "dangling=true",
		"--filter", "label=chefd.workspace="+dir, "--filter", "label=chefd.image="+name).Output()
	if err != nil {
		t.Fatalf("docker images: %v", err)
	}
	return len(strings.Fields(string(out)))
}

// removeDangling removes the superseded images a test left.
func removeDangling(t *testing.T, dir string) {
	out, _ := exec.Command("docker", "images", "-q", "--no-trunc", "--filter", "dangling=true",
		"--filter", "label=chefd.workspace="+dir).Output()
	for _, id := range strings.Fields(string(out)) {
		exec.Command("docker", "rmi", "-f", id).Run()
	}
}
