package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/chefd/chefd/dockerctl"
)

// testRegistry is a real registry (Debian's docker-registry, distribution
// 2.8) serving on a loopback port, which dockerd reaches over plain HTTP.
type testRegistry struct {
	host string // 127.0.0.1:port
	cmd  *exec.Cmd
}

// startRegistry starts a registry with its own storage; with user set,
// it asks for that user's password (htpasswd). It stops with the test.
func startRegistry(t *testing.T, user, password string) *testRegistry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	needTool(t, "docker-registry (apt-get install docker-registry; scripts/test.sh installs it)", err)
	host := freeLoopbackAddr(t)
	dir := t.TempDir()
	auth := ""
	if user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: chefd-test\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n%s",
		filepath.Join(dir, "data"), host, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &testRegistry{host: host, cmd: exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))}
	r.cmd.Stdout, r.cmd.Stderr = os.Stderr, os.Stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry did not answer on %s: %v", host, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// needTool fails the test under CI when what is missing (err), and skips
// it elsewhere.
func needTool(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required under CI: %v", what, err)
	}
	t.Skipf("no %s: %v", what, err)
}

// freeLoopbackAddr is a loopback address with a port free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (r *testRegistry) stop() {
	if r.cmd.Process != nil && r.cmd.ProcessState == nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
}

// dockerConfig writes a Docker CLI config dir holding user:password for
// host and returns DOCKER_CONFIG=<dir>.
func dockerConfig(t *testing.T, host, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return "DOCKER_CONFIG=" + dir
}

// docker runs the docker CLI and fails the test on an error.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// tinyImage makes a small image that is not a cooked image (no pull: an
// imported one-file tarball) and returns its tag.
func tinyImage(t *testing.T, tag string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("not a cooked image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tar := filepath.Join(t.TempDir(), "tiny.tar")
	if out, err := exec.Command("tar", "-C", dir, "-cf", tar, "hello").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	docker(t, "import", tar, tag)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	return tag
}

// TestE2ERegistryShare: a cooked image pushed to a real registry serves
// another engine state that lacks it: the build pulls it (a manifest
// check, then a pull), compiles 0 third-party crates, and the image
// runs. A foreign image under the recipe's tag, a registry that is down
// and refused credentials each cost one warning and a local cook, never
// the build.
func TestE2ERegistryShare(t *testing.T) {
	t.Parallel()
	needEngine(t)
	reg := startRegistry(t, "", "")
	dir := exampleCopy(t)
	image := ownImage(t, dir, "chefd-reg")
	repo := reg.host + "/team/" + image + "-cooked"
	t.Cleanup(func() { removeImages(repo) }) // the registry's tags: a port of this run's
	hash := prepareHash(t, dir)
	ref := repo + ":" + hash[:16]
	cookedTag := image + "-cooked:" + hash[:16]

	// engine A cooks and pushes
	cr := chefdJSON[dockerctl.CookResult](t, dir, "--cooked-repo", repo, "cook", "--push", "--json")
	if cr.Pushed != ref {
		t.Fatalf("cook --push pushed %q, want %q", cr.Pushed, ref)
	}
	// the other machine: no cooked image, no tag of the repository
	docker(t, "rmi", "-f", cookedTag, ref)

	// the hotfix lane on a cold runner: --warm-only pulls
	r := chefd(t, dir, []string{"CHEFD_COOKED_REPO=" + repo}, "build", "--warm-only", "--json")
	if r.code != 0 {
		t.Fatalf("build with the shared image: exit %d\n%s", r.code, r.stderr)
	}
	res := decodeBuild(t, r.stdout)
	if res.Cook == nil || res.Cook.Pulled != ref || res.Cook.Compiled.ThirdParty != 0 {
		t.Fatalf("the build did not pull %s: %+v", ref, res.Cook)
	}
	if res.Compiled.ThirdParty != 0 {
		t.Errorf("the code build on the pulled image compiled %d third-party crates (%v)", res.Compiled.ThirdParty, res.Compiled.Names)
	}
	if out := dockerRun(t, image+":dev"); !strings.Contains(out, "app: hello from chefd example") {
		t.Errorf("the image printed %q", out)
	}
	t.Logf("pulled the cooked image in %s", res.Cook.Duration)

	// a foreign image under the next recipe's tag (a new bin target
	// changes the recipe, no third-party input)
	newBin := func(name string) {
		p := filepath.Join(dir, "crates/app/src/bin", name+".rs")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("fn main() {}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	newBin("extra1")
	hash2 := prepareHash(t, dir)
	if hash2 == hash {
		t.Fatal("a new bin target did not change the recipe")
	}
	ref2 := repo + ":" + hash2[:16]
	docker(t, "tag", tinyImage(t, image+"-tiny:1"), ref2)
	docker(t, "push", ref2)
	docker(t, "rmi", ref2)
	r = chefd(t, dir, []string{"CHEFD_COOKED_REPO=" + repo}, "build")
	if r.code != 0 {
		t.Fatalf("build with a foreign image under the tag: exit %d\n%s", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "warning: "); n != 1 || !strings.Contains(r.stderr, ref2+" is not a cooked image of this recipe") {
		t.Errorf("want one warning naming the foreign image, got:\n%s", r.stderr)
	}
	if out, _ := exec.Command("docker", "image", "inspect", ref2).CombinedOutput(); !strings.Contains(string(out), "No such image") {
		t.Errorf("the foreign image stays on the engine: %s", out)
	}
	if out := dockerRun(t, image+":dev"); !strings.Contains(out, "app: hello from chefd example") {
		t.Errorf("the image printed %q", out)
	}

	// the registry is down
	reg.stop()
	newBin("extra2")
	r = chefd(t, dir, []string{"CHEFD_COOKED_REPO=" + repo}, "build")
	if r.code != 0 {
		t.Fatalf("build with the registry down: exit %d\n%s", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "warning: "); n != 1 || !strings.Contains(r.stderr, "connection refused") || !strings.Contains(r.stderr, "cooking here") {
		t.Errorf("want one warning saying the registry is down, got:\n%s", r.stderr)
	}
	if r := chefd(t, dir, []string{"CHEFD_COOKED_REPO=" + repo}, "cook", "--push"); r.code != 1 || !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("cook --push with the registry down: exit %d, want 1 and the reason\n%s", r.code, r.stderr)
	}
	newBin("extra3")
	if r := chefd(t, dir, []string{"CHEFD_COOKED_REPO=" + repo}, "build", "--warm-only"); r.code != 3 || !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("build --warm-only with the registry down: exit %d, want 3 and the reason\n%s", r.code, r.stderr)
	}
}

// TestE2ERegistryCredentials: credentials come from the Docker CLI's
// config (DOCKER_CONFIG): right ones push and pull, wrong ones are one
// warning and a local cook for a build, an error for cook --push; the
// password never shows.
func TestE2ERegistryCredentials(t *testing.T) {
	t.Parallel()
	needEngine(t)
	const password = "s3cret-chefd-pw"
	reg := startRegistry(t, "chefd", password)
	dir := exampleCopy(t)
	image := ownImage(t, dir, "chefd-regauth")
	repo := reg.host + "/team/" + image + "-cooked"
	t.Cleanup(func() { removeImages(repo) }) // the registry's tags: a port of this run's
	hash := prepareHash(t, dir)
	ref := repo + ":" + hash[:16]
	good := dockerConfig(t, reg.host, "chefd", password)
	bad := dockerConfig(t, reg.host, "chefd", "wrong-"+password)

	var outs []string
	defer func() {
		for _, out := range outs {
			if strings.Contains(out, password) || strings.Contains(out, base64.StdEncoding.EncodeToString([]byte("chefd:"+password))) {
				t.Errorf("the output shows the password:\n%s", out)
			}
		}
	}()
	r := chefd(t, dir, []string{bad}, "--cooked-repo", repo, "cook", "--push")
	outs = append(outs, r.stdout, r.stderr)
	if r.code != 1 || !strings.Contains(r.stderr, "unauthorized") && !strings.Contains(r.stderr, "authentication required") {
		t.Errorf("cook --push with a wrong password: exit %d, want 1 naming the refusal\n%s", r.code, r.stderr)
	}
	r = chefd(t, dir, []string{good}, "--cooked-repo", repo, "cook", "--push")
	outs = append(outs, r.stdout, r.stderr)
	if r.code != 0 || !strings.Contains(r.stdout, "pushed "+ref) {
		t.Fatalf("cook --push with the right password: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	docker(t, "rmi", "-f", image+"-cooked:"+hash[:16], ref)
	r = chefd(t, dir, []string{bad}, "--cooked-repo", repo, "build")
	outs = append(outs, r.stdout, r.stderr)
	if r.code != 0 || strings.Count(r.stderr, "warning: ") != 1 {
		t.Errorf("build with a wrong password: exit %d, want 0 and one warning\n%s", r.code, r.stderr)
	}
	docker(t, "rmi", "-f", image+"-cooked:"+hash[:16])
	r = chefd(t, dir, []string{good}, "--cooked-repo", repo, "build", "--json")
	outs = append(outs, r.stdout, r.stderr)
	if r.code != 0 {
		t.Fatalf("build with the right password: exit %d\n%s", r.code, r.stderr)
	}
	if res := decodeBuild(t, r.stdout); res.Cook == nil || res.Cook.Pulled != ref {
		t.Errorf("the build did not pull %s: %+v", ref, res.Cook)
	}
}

// decodeBuild decodes the output of build --json.
func decodeBuild(t *testing.T, out string) dockerctl.BuildResult {
	t.Helper()
	var res dockerctl.BuildResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("decode the build's JSON: %v\n%s", err, out)
	}
	return res
}
