package dockerctl

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/chefd/chefd/configs"
	"github.com/chefd/chefd/recipe"
)

const testBuilder = "chefd/rust-builder:bookworm-1.96"

// engine connects to the real engine: under CI a missing engine fails.
func engine(t *testing.T) *Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := Connect(ctx)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("a Docker engine is required under CI: %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestConnectUnreachable(t *testing.T) {
	_, err := Connect(context.Background(), WithHost("unix:///nonexistent/chefd.sock"), WithPingTimeout(2*time.Second))
	var u *UnreachableError
	if !errors.As(err, &u) {
		t.Fatalf("want *UnreachableError, got %T %v", err, err)
	}
	msg := err.Error()
	for _, want := range []string{"unix:///nonexistent/chefd.sock", "DOCKER_HOST"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message spans lines: %q", msg)
	}
}

// traceMsg builds a moby.buildkit.trace JSON message from protobuf parts.
func traceMsg(vertexes [][]byte, logs [][]byte) []byte {
	var pb []byte
	for _, v := range vertexes {
		pb = protowire.AppendTag(pb, 1, protowire.BytesType)
		pb = protowire.AppendBytes(pb, v)
	}
	for _, l := range logs {
		pb = protowire.AppendTag(pb, 3, protowire.BytesType)
		pb = protowire.AppendBytes(pb, l)
	}
	aux, _ := json.Marshal(base64.StdEncoding.EncodeToString(pb))
	m, _ := json.Marshal(map[string]any{"id": "moby.buildkit.trace", "aux": json.RawMessage(aux)})
	return append(m, '\n')
}

func pbTime(t time.Time) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.Unix()))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.Nanosecond()))
	return b
}

func pbVertex(digest, name string, started, completed time.Time, cached bool, errMsg string) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, digest)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, name)
	if cached {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if !started.IsZero() {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, pbTime(started))
	}
	if !completed.IsZero() {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendBytes(b, pbTime(completed))
	}
	if errMsg != "" {
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendString(b, errMsg)
	}
	return b
}

func pbLog(digest, msg string) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, digest)
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte(msg))
	return b
}

func TestStreamDecoding(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	step := "[build 3/3] RUN CHEFD_STEP=code sh -ec 'cargo build'"
	var body bytes.Buffer
	body.Write(traceMsg([][]byte{pbVertex("d1", step, t0, time.Time{}, false, "")}, nil))
	// output split across messages, mid-line
	body.Write(traceMsg(nil, [][]byte{pbLog("d1", "   Compiling serde v1.0.152\n   Compiling led"), pbLog("d1", "ger v0.1.0 (/src/crates/ledger)\n")}))
	body.Write(traceMsg([][]byte{pbVertex("d1", step, t0, t0.Add(2500*time.Millisecond), false, "")}, nil))
	body.Write(traceMsg([][]byte{pbVertex("d2", "[build 2/3] COPY src/ /src/", t0, t0, true, "")}, nil))
	body.WriteString(`{"id":"moby.image.id","aux":{"ID":"sha256:abc"}}` + "\n")
	var events []Event
	s := newStream(func(e Event) { events = append(events, e) })
	if err := s.read(&body); err != nil {
		t.Fatal(err)
	}
	if s.imageID != "sha256:abc" {
		t.Errorf("image ID %q", s.imageID)
	}
	if s.crates.ThirdParty != 1 || s.crates.Local != 1 {
		t.Errorf("crates %+v", s.crates)
	}
	if !s.ran(codeMarker) {
		t.Error("code step not seen as run")
	}
	var done *Event
	for i := range events {
		if events[i].Kind == EventStep && events[i].Done && events[i].Step == StepTitle(step) {
			done = &events[i]
		}
	}
	if done == nil || done.Duration != 2500*time.Millisecond {
		t.Errorf("no done event with the step's duration: %+v", events)
	}
	if ph := s.steps(); len(ph) != 2 {
		t.Errorf("phases %+v", ph)
	}
}

// A failed build still answers HTTP 200: the error is in the stream.
func TestStreamErrorMessage(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	var body bytes.Buffer
	body.Write(traceMsg([][]byte{pbVertex("d1", "[build 3/3] RUN cargo build", t0, time.Time{}, false, "")}, nil))
	body.Write(traceMsg(nil, [][]byte{pbLog("d1", "error[E0308]: mismatched types\n")}))
	body.Write(traceMsg([][]byte{pbVertex("d1", "[build 3/3] RUN cargo build", t0, t0.Add(time.Second), false, "exit code: 101")}, nil))
	body.WriteString(`{"errorDetail":{"message":"executor failed running [/bin/sh -c cargo build]: exit code: 101"},"error":"executor failed running [/bin/sh -c cargo build]: exit code: 101"}` + "\n")
	s := newStream(nil)
	err := s.read(&body)
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("want *BuildError, got %v", err)
	}
	if !strings.Contains(be.Output, "error[E0308]") || be.Step != "[build 3/3] RUN cargo build" {
		t.Errorf("error lacks the step's output: %+v", be)
	}
}

func write(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestContextFilesIgnores(t *testing.T) {
	b, r := testWorkspace(t, map[string]string{
		"Cargo.toml":                  "[workspace]\nmembers = [\"a\"]\n",
		"a/Cargo.toml":                "[package]\nname = \"a\"\nversion = \"0.1.0\"\n",
		"a/src/main.rs":               "fn main() {}\n",
		"a/target/release/a":          "binary",
		"target/release/big":          "binary",
		".git/HEAD":                   "ref: refs/heads/main\n",
		"secrets/key.pem":             "secret",
		"docs/notes.md":               "notes",
		"docs/keep.md":                "keep",
		".dockerignore":               "secrets\ndocs/*.md\n!docs/keep.md\n",
		"chefd.toml":                  "ignore = [\"*.log\"]\n",
		"build.log":                   "log",
		"a/src/generated/target/x.rs": "not a cargo target dir",
		".chefd-sync-123-4":           "", // the watcher's Sync cookie
	})
	files, err := b.contextFiles(r)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.rel)
	}
	sort.Strings(got)
	want := []string{".dockerignore", "Cargo.toml", "a/Cargo.toml", "a/src/generated/target/x.rs", "a/src/main.rs", "chefd.toml", "docs/keep.md"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("context files\n got %v\nwant %v", got, want)
	}
}

// rawBuild runs a one-off BuildKit build with the given Dockerfile.
func rawBuild(ctx context.Context, e *Engine, df string, p Progress) (*stream, error) {
	return e.build(ctx, func(cw *contextWriter) error {
		return cw.add("", ctxFile{rel: "Dockerfile", data: []byte(df), mode: 0o644})
	}, build.ImageBuildOptions{Dockerfile: "Dockerfile", Labels: map[string]string{"chefd": "1", "chefd.kind": "test"}}, p)
}

func needBuilder(t *testing.T, e *Engine) {
	t.Helper()
	if id, _ := e.imageID(context.Background(), testBuilder); id == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("builder image %s is required under CI (scripts/builder-image.sh)", testBuilder)
		}
		t.Skipf("%s missing", testBuilder)
	}
}

func TestFailedBuildIsAnError(t *testing.T) {
	e := engine(t)
	needBuilder(t, e)
	_, err := rawBuild(context.Background(), e, "FROM "+testBuilder+"\nRUN echo boom-"+time.Now().Format("150405.000")+" >&2 && exit 3\n", nil)
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("want *BuildError, got %v", err)
	}
	if !strings.Contains(be.Output, "boom-") {
		t.Errorf("output of the failed step missing: %+v", be)
	}
}

func TestCancelStopsBuildAndLeavesNoContainers(t *testing.T) {
	e := engine(t)
	needBuilder(t, e)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 1)
	go func() {
		<-started
		cancel()
	}()
	t0 := time.Now()
	marker := "start-" + time.Now().Format("150405.000000")
	_, err := rawBuild(ctx, e, "FROM "+testBuilder+"\nRUN echo "+marker+" && sleep 120\n", func(ev Event) {
		if ev.Kind == EventLog && strings.Contains(ev.Text, "start-") {
			select {
			case started <- struct{}{}:
			default:
			}
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if d := time.Since(t0); d > 60*time.Second {
		t.Errorf("cancel took %v", d)
	}
	// Only this build's containers count: the other suites run their own
	// beside this one on the same engine.
	after, err := e.cli.ContainerList(context.Background(), container.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range after {
		if strings.Contains(c.Command, marker) {
			t.Errorf("container %s of the cancelled build left behind (%s)", c.ID[:12], c.Status)
		}
	}
}

func TestMissingBuilderImage(t *testing.T) {
	e := engine(t)
	root := t.TempDir()
	write(t, root, map[string]string{"Cargo.toml": "[package]\nname = \"x\"\nversion = \"0.1.0\"\n", "src/main.rs": "fn main() {}\n"})
	cfg := configs.Default(root)
	cfg.BuilderImage = "chefd/does-not-exist:1"
	r, err := recipe.Compute(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewWorkspaceBuilder(e, root, SettingsOf(cfg)).Cook(context.Background(), r, nil)
	var mi *MissingImageError
	if !errors.As(err, &mi) || mi.Image != "chefd/does-not-exist:1" {
		t.Fatalf("want *MissingImageError naming the image, got %v", err)
	}
	// pull = "missing": the engine cannot reach the registry (no network
	// here): one line naming the image and the policy
	if !strings.Contains(err.Error(), `the pull failed (pull = "missing")`) || !strings.Contains(err.Error(), "docker pull chefd/does-not-exist:1") {
		t.Errorf("message does not say what failed and how to provide it: %v", err)
	}
	cfg.Pull = "never"
	_, err = NewWorkspaceBuilder(e, root, SettingsOf(cfg)).Cook(context.Background(), r, nil)
	if !errors.As(err, &mi) || mi.Pull != nil || !strings.Contains(err.Error(), `is not on the engine and pull = "never"`) {
		t.Errorf("pull = never: want the image named without a pull, got %v", err)
	}
}

// TestCompressContext: contexts travel compressed to an engine over the
// network, not to a local socket, unless told otherwise.
func TestCompressContext(t *testing.T) {
	for _, c := range []struct {
		mode, host string
		want       bool
		err        bool
	}{
		{"", "unix:///var/run/docker.sock", false, false},
		{"auto", "npipe:////./pipe/docker_engine", false, false},
		{"", "tcp://10.0.0.5:2376", true, false},
		{"auto", "http://docker.example.com", true, false}, // ssh:// through the CLI's connection helper
		{"always", "unix:///var/run/docker.sock", true, false},
		{"never", "tcp://10.0.0.5:2376", false, false},
		{"yes", "tcp://10.0.0.5:2376", false, true},
	} {
		got, err := compressContext(c.mode, c.host)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("compressContext(%q, %q) = %v, %v; want %v, error %v", c.mode, c.host, got, err, c.want, c.err)
		}
	}
}
