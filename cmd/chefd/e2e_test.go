package main

// End-to-end tests: the chefd binary against the real Docker engine and the
// bundled example workspace. They need an engine and the builder image
// (scripts/ensure-engine.sh, scripts/builder-image.sh); under CI they fail
// when either is missing, elsewhere they skip.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chefd/chefd/configs"
	"github.com/chefd/chefd/dockerctl"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// chefdBinary builds the CLI once per test run.
func chefdBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chefd-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "chefd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = &exitError{msg: string(out)}
		}
	})
	if binErr != nil {
		t.Fatalf("go build: %v", binErr)
	}
	return binPath
}

// needEngine checks the engine and the example's builder image.
func needEngine(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := dockerctl.Connect(ctx)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("a Docker engine is required under CI: %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	defer e.Close()
	cfg, err := configs.Load("../../examples/workspace")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client().ImageInspect(ctx, cfg.BuilderImage); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("builder image %s is required under CI (scripts/builder-image.sh): %v", cfg.BuilderImage, err)
		}
		t.Skipf("builder image %s missing (run scripts/builder-image.sh)", cfg.BuilderImage)
	}
}

type run struct {
	stdout, stderr string
	code           int
}

func chefd(t *testing.T, dir string, env []string, args ...string) run {
	t.Helper()
	cmd := exec.Command(chefdBinary(t), append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := run{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run chefd: %v", err)
	}
	return r
}

// exampleCopy copies examples/workspace into a temp dir.
func exampleCopy(t testing.TB) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "workspace")
	out, err := exec.Command("cp", "-a", "../../examples/workspace", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("copy example: %v %s", err, out)
	}
	os.RemoveAll(filepath.Join(dst, "target"))
	return dst
}

func edit(t testing.TB, file, old, new string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func buildJSON(t *testing.T, dir string, args ...string) dockerctl.BuildResult {
	t.Helper()
	return chefdJSON[dockerctl.BuildResult](t, dir, append([]string{"build", "--json"}, args...)...)
}

// chefdJSON runs chefd with args, which ask for --json, and decodes its
// output as a T.
func chefdJSON[T any](t *testing.T, dir string, args ...string) T {
	t.Helper()
	r := chefd(t, dir, nil, args...)
	if r.code != 0 {
		t.Fatalf("chefd %s: exit %d\n%s\n%s", args[0], r.code, r.stdout, r.stderr)
	}
	var res T
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("decode the output of chefd %s: %v\n%s", args[0], err, r.stdout)
	}
	return res
}

func dockerRun(t *testing.T, image string) string {
	t.Helper()
	out, err := exec.Command("docker", "run", "--rm", image).CombinedOutput()
	if err != nil {
		t.Fatalf("docker run %s: %v\n%s", image, err, out)
	}
	return string(out)
}

func prepareHash(t *testing.T, dir string) string {
	t.Helper()
	r := chefd(t, dir, nil, "prepare")
	if r.code != 0 {
		t.Fatalf("prepare: %s", r.stderr)
	}
	return strings.Fields(r.stdout)[0]
}

// TestE2EBuildCycle walks the scenarios on one copy of the example.
func TestE2EBuildCycle(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	needEngine(t)
	dir := exampleCopy(t)
	tag := "e2e-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	image := "chefd-example:" + tag

	// 1. First build: sources carry mtimes far in the past (older than any
	// cooked artifact): the image must still hold the real binaries.
	old := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			os.Chtimes(p, old, old)
		}
		return nil
	})
	res := buildJSON(t, dir, "--tag", tag)
	if res.Compiled.ThirdParty != 0 && (res.Cook == nil || res.Cook.Skipped) {
		t.Errorf("code build compiled %d third-party crates", res.Compiled.ThirdParty)
	}
	out := dockerRun(t, image)
	if !strings.Contains(out, "app: hello from chefd example") || !strings.Contains(out, "ledger v1") {
		t.Fatalf("first image prints %q", out)
	}
	t.Logf("first build: %s %+v", res.ImageID, res.Compiled)
	cookedTag := res.CookedTag

	// 2. A one-line edit in the binary crate: new text, 0 third-party crates.
	edit(t, filepath.Join(dir, "crates/app/src/main.rs"), `GREETING: &str = "hello from chefd example"`, `GREETING: &str = "hello after an edit"`)
	res = buildJSON(t, dir, "--tag", tag)
	if res.Compiled.ThirdParty != 0 {
		t.Errorf("edit build compiled %d third-party crates: %v", res.Compiled.ThirdParty, res.Compiled.Names)
	}
	if res.Compiled.Local != 1 {
		t.Errorf("edit in app compiled %d local crates (%v), want 1", res.Compiled.Local, res.Compiled.Names)
	}
	if res.Cook != nil && !res.Cook.Skipped {
		t.Errorf("a code edit cooked again")
	}
	t.Logf("edit build: %s %+v", res.ImageID, res.Compiled)
	if out := dockerRun(t, image); !strings.Contains(out, "app: hello after an edit") {
		t.Fatalf("after edit the image prints %q", out)
	}

	// 3. Leaf library edit: the library and its dependents recompile.
	edit(t, filepath.Join(dir, "crates/ledger/src/lib.rs"), `LEDGER_BANNER: &str = "ledger v1"`, `LEDGER_BANNER: &str = "ledger v2"`)
	res = buildJSON(t, dir, "--tag", tag)
	if res.Compiled.ThirdParty != 0 || res.Compiled.Local != 3 {
		t.Errorf("leaf edit compiled %+v, want 0 third-party and 3 local", res.Compiled)
	}
	if out := dockerRun(t, image); !strings.Contains(out, "ledger v2") {
		t.Fatalf("after leaf edit the image prints %q", out)
	}

	// 4. Content changed but mtime restored (as a checkout or cp -p can
	// do): the change must still be built.
	main := filepath.Join(dir, "crates/app/src/main.rs")
	st, _ := os.Stat(main)
	edit(t, main, `GREETING: &str = "hello after an edit"`, `GREETING: &str = "hello with an old mtime"`)
	os.Chtimes(main, st.ModTime(), st.ModTime())
	res = buildJSON(t, dir, "--tag", tag)
	if out := dockerRun(t, image); !strings.Contains(out, "hello with an old mtime") {
		t.Fatalf("an edit with a restored mtime was not built: %q", out)
	}

	// 5. Nothing changed: same image, nothing compiled.
	again := buildJSON(t, dir, "--tag", tag)
	if again.ImageID != res.ImageID || again.Compiled.Local+again.Compiled.ThirdParty != 0 {
		t.Errorf("no-op build: image %s (was %s), compiled %+v", again.ImageID, res.ImageID, again.Compiled)
	}

	// 5b. A comment at the end of a file (no line number moves): the crate
	// compiles, its binary is identical, and the tag keeps its image ID.
	if b, err := os.ReadFile(main); err == nil {
		os.WriteFile(main, append(b, []byte("\n// a comment only\n")...), 0o644)
	}
	commented := buildJSON(t, dir, "--tag", tag)
	if commented.Compiled.Local != 1 || commented.ImageID != res.ImageID || !commented.Unchanged {
		t.Errorf("comment-only edit: image %s (was %s), unchanged %v, compiled %+v", commented.ImageID, res.ImageID,
			commented.Unchanged, commented.Compiled)
	}

	// 6. Local version bump: same recipe, no new cook.
	before := prepareHash(t, dir)
	edit(t, filepath.Join(dir, "Cargo.toml"), `version = "0.1.0"`, `version = "0.2.0"`)
	lock := filepath.Join(dir, "Cargo.lock")
	for _, n := range []string{"app", "ledger", "report"} {
		edit(t, lock, "name = \""+n+"\"\nversion = \"0.1.0\"", "name = \""+n+"\"\nversion = \"0.2.0\"")
	}
	if after := prepareHash(t, dir); after != before {
		t.Fatalf("a local version bump changed the recipe: %s -> %s", before, after)
	}
	res = buildJSON(t, dir, "--tag", tag)
	if res.Cook != nil && !res.Cook.Skipped {
		t.Errorf("a local version bump cooked again")
	}
	if res.CookedTag != cookedTag || res.Compiled.ThirdParty != 0 {
		t.Errorf("version bump: cooked %s (was %s), compiled %+v", res.CookedTag, cookedTag, res.Compiled)
	}

	// 7. A compile error: non-zero exit, rustc's error shown.
	edit(t, main, "fn main()", "fn main() { let x: u32 = \"not a number\"; }\nfn unused()")
	r := chefd(t, dir, nil, "build", "--tag", tag)
	if r.code == 0 {
		t.Fatal("a compile error exited 0")
	}
	if !regexp.MustCompile(`error\[E\d+\]: mismatched types`).MatchString(r.stderr) {
		t.Errorf("rustc's error is not shown:\n%s", r.stderr)
	}
}

// targetCaches lists the ids of the target-cache mounts in the engine's
// build cache.
func targetCaches(t *testing.T) map[string]bool {
	t.Helper()
	ctx := context.Background()
	e, err := dockerctl.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	recs, err := e.BuildCache(ctx) // retried while another listing runs
	if err != nil {
		t.Fatalf("list the build cache: %v", err)
	}
	ids := map[string]bool{}
	for _, r := range recs {
		if i := strings.Index(r.Description, "CHEFD_CACHE="); i >= 0 && r.Type == "exec.cachemount" {
			ids[strings.Fields(r.Description[i+len("CHEFD_CACHE="):])[0]] = true
		}
	}
	return ids
}

// ownImage gives the example copy in dir an image name of its own (so its
// cooks really happen, whatever ran on this engine before) and removes its
// images when the test ends.
func ownImage(t testing.TB, dir, prefix string) string {
	t.Helper()
	image := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	edit(t, filepath.Join(dir, "chefd.toml"), `image = "chefd-example"`, `image = "`+image+`"`)
	t.Cleanup(func() { removeImages(image); removeImages(image + "-cooked") })
	return image
}

// removeImages removes every image of a repository.
func removeImages(repo string) {
	out, _ := exec.Command("docker", "images", "--format", "{{.Repository}}:{{.Tag}}").Output()
	for _, ref := range strings.Fields(string(out)) {
		if strings.HasPrefix(ref, repo+":") {
			exec.Command("docker", "rmi", "-f", ref).Run()
		}
	}
}

// TestE2EEngineDown: an unreachable engine is one clear line and exit 2.
func TestE2EEngineDown(t *testing.T) {
	dir := exampleCopy(t)
	r := chefd(t, dir, []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}, "build")
	if r.code != 2 {
		t.Fatalf("exit %d, want 2\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "unix:///nonexistent/docker.sock") || !strings.Contains(lines[0], "DOCKER_HOST") {
		t.Errorf("want one line naming the address and the fix, got:\n%s", r.stderr)
	}
}

// TestE2EDockerfileCheck: a committed Dockerfile goes out of date when the
// recipe changes, not when code changes.
func TestE2EDockerfileCheck(t *testing.T) {
	dir := exampleCopy(t)
	r := chefd(t, dir, nil, "dockerfile")
	if r.code != 0 {
		t.Fatalf("dockerfile: %s", r.stderr)
	}
	df := filepath.Join(dir, "Dockerfile")
	os.WriteFile(df, []byte(r.stdout), 0o644)
	if r := chefd(t, dir, nil, "dockerfile", "--check", df); r.code != 0 {
		t.Fatalf("fresh Dockerfile reported out of date: %s", r.stderr)
	}
	edit(t, filepath.Join(dir, "crates/app/src/main.rs"), `GREETING: &str = "hello`, `GREETING: &str = "bye`)
	if r := chefd(t, dir, nil, "dockerfile", "--check", df); r.code != 0 {
		t.Fatalf("a code edit made the Dockerfile out of date: %s", r.stderr)
	}
	edit(t, filepath.Join(dir, "crates/report/Cargo.toml"), "[dependencies]\n", "[dependencies]\nitoa = \"1\"\n")
	r = chefd(t, dir, nil, "dockerfile", "--check", df)
	if r.code == 0 || !strings.Contains(r.stderr, "out of date") {
		t.Fatalf("a new dependency did not make the Dockerfile out of date: %d %s", r.code, r.stderr)
	}
}

// TestInitWritesConfig: chefd init lists the workspace's binaries in a
// commented chefd.toml that chefd then reads back.
func TestInitWritesConfig(t *testing.T) {
	dir := exampleCopy(t)
	os.Remove(filepath.Join(dir, "chefd.toml"))
	r := chefd(t, dir, nil, "init")
	if r.code != 0 {
		t.Fatalf("init: exit %d %s", r.code, r.stderr)
	}
	cfg, err := configs.Load(dir)
	if err != nil {
		t.Fatalf("the written chefd.toml does not load: %v", err)
	}
	if strings.Join(cfg.Bins, ",") != "app,report" || cfg.Image != "workspace" {
		t.Errorf("init wrote bins %v, image %q", cfg.Bins, cfg.Image)
	}
	if r := chefd(t, dir, nil, "init"); r.code == 0 {
		t.Error("init overwrote an existing chefd.toml without --force")
	}
}

// TestE2ECtrlCCancels: Ctrl-C during a cook stops the build at once, exits
// 130 and leaves no container behind.
func TestE2ECtrlCCancels(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	needEngine(t)
	before := containerCount(t)
	dir := exampleCopy(t)
	ownImage(t, dir, "chefd-e2e-cancel")
	cmd := exec.Command(chefdBinary(t), "-C", dir, "build", "--no-cache")
	var stderr bytes.Buffer
	started := make(chan struct{})
	cmd.Stderr = &lineWatcher{w: &stderr, match: "Compiling", hit: started}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the cook never started compiling:\n%s", stderr.String())
	}
	t0 := time.Now()
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("after Ctrl-C: %v (want exit 130)\n%s", err, stderr.String())
	}
	if d := time.Since(t0); d > 30*time.Second {
		t.Errorf("Ctrl-C took %v to stop the build", d)
	}
	if n := containerCount(t); n > before {
		t.Errorf("%d containers left behind", n-before)
	}
}

// lineWatcher copies output and signals once a line contains match.
type lineWatcher struct {
	w     *bytes.Buffer
	match string
	hit   chan struct{}
	done  bool
}

func (l *lineWatcher) Write(p []byte) (int, error) {
	l.w.Write(p)
	if !l.done && bytes.Contains(l.w.Bytes(), []byte(l.match)) {
		l.done = true
		close(l.hit)
	}
	return len(p), nil
}
