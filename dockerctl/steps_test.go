package dockerctl

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/chefd/chefd/recipe"
)

func TestStepTitle(t *testing.T) {
	long := "sh -ec 'cargo build --release && { cargo clean --release " + strings.Repeat("-p crate-x ", 300) + "}'"
	for _, tt := range []struct{ in, want string }{
		{"[build 3/3] RUN --mount=type=cache " + codeMarker + " " + cacheMarker + "x sh /run/chefd/code.sh", titleCodeBuild},
		{"[cook 2/2] RUN " + cookMarker + " " + long, titleCookBuild},
		{"[skeleton 2/9] RUN " + skeletonMarker + "  && mkdir -p a", titleSkeleton},
		{"[build 2/3] COPY src/ /src/", "[build 2/3] COPY src/ /src/"},
		{"[2/2] RUN " + stepMarker + "unknown x", "[2/2] RUN " + stepMarker + "unknown x"},
		{strings.Repeat("x", 120), strings.Repeat("x", 97) + "..."},
		{"[1/2] RUN echo a\necho b", "[1/2] RUN echo a..."},
		{titleCookClean, titleCookClean}, // a title is its own title
	} {
		if got := StepTitle(tt.in); got != tt.want {
			t.Errorf("StepTitle(%.60q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCauseOf(t *testing.T) {
	for _, tt := range []struct{ name, output, want string }{
		{"one rustc error", "   Compiling app v0.1.0 (/src/app)\nerror[E0425]: cannot find value `y` in this scope\n --> src/main.rs:1:13\n",
			"error[E0425]: cannot find value `y` in this scope"},
		{"first and last error", "error[E0425]: cannot find value `y`\n\nerror[E0308]: mismatched types\nerror: could not compile `app` (bin \"app\") due to 2 previous errors\n",
			"error[E0425]: cannot find value `y`; error: could not compile `app` (bin \"app\") due to 2 previous errors (3 error lines)"},
		{"a chefd message", "chefd: binary app was not built (check bins and required-features in chefd.toml)\n",
			"chefd: binary app was not built (check bins and required-features in chefd.toml)"},
		{"the last lines", chefdStepLine(titleCodeStamp) + "one\ntwo\ntouch: cannot touch 'src/x': Too many levels of symbolic links\n",
			"two; touch: cannot touch 'src/x': Too many levels of symbolic links"},
		{"nothing", chefdStepLine(titleCodeStamp), ""},
	} {
		if got := causeOf(tt.output); got != tt.want {
			t.Errorf("%s: causeOf = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func chefdStepLine(title string) string { return subStepPrefix + title + "\n" }

func pbLogAt(digest, msg string, at time.Time) []byte {
	b := pbLog(digest, msg)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, pbTime(at))
}

// runName is the name BuildKit gives the step of the first RUN of df.
func runName(t *testing.T, stage, df string) string {
	t.Helper()
	for _, in := range instructions(df) {
		if strings.HasPrefix(in.text, "RUN ") {
			return stage + " " + strings.Join(strings.Fields(in.text), " ")
		}
	}
	t.Fatal("no RUN")
	return ""
}

// TestFailureCauseFirst: a code step that fails on a compile error, its
// BuildKit message quoting 3 KB of command, gives an error that starts
// with the compiler's error, names the step by its short title (the part
// of the step that was running) and drops the command; events, phases and
// the error all use short titles.
func TestFailureCauseFirst(t *testing.T) {
	r := &recipe.Recipe{Hash: hashOf('c'), WorkspaceDir: ".", Intent: recipe.Intent{Profile: "release"}}
	name := runName(t, "[build 3/3]", codeDockerfile(r, "chefd-target-x", "rt", "app"))
	cmd := strings.Repeat("rm -rf target/release/deps/libcrate_x-* ", 80) // 3 KB
	engineMsg := "executor failed running [/bin/sh -c " + cmd + "]: exit code: 101"
	t0 := time.Unix(1700000000, 0)
	var body bytes.Buffer
	body.Write(traceMsg([][]byte{pbVertex("d1", name, t0, time.Time{}, false, "")}, nil))
	body.Write(traceMsg(nil, [][]byte{
		pbLogAt("d1", chefdStepLine(titleCodeStamp), t0.Add(100*time.Millisecond)),
		pbLogAt("d1", chefdStepLine(titleCodeBuild)+"   Compiling app v0.1.0 (/src/app)\n", t0.Add(500*time.Millisecond)),
		pbLogAt("d1", "error[E0425]: cannot find value `y` in this scope\n --> app/src/main.rs:1:13\n  |\n"+
			"For more information about this error, try `rustc --explain E0425`.\n"+
			"error: could not compile `app` (bin \"app\") due to 1 previous error\n", t0.Add(2*time.Second)),
	}))
	body.Write(traceMsg([][]byte{pbVertex("d1", name, t0, t0.Add(3*time.Second), false, engineMsg)}, nil))
	body.WriteString(`{"errorDetail":{"message":"` + engineMsg + `"},"error":"` + engineMsg + `"}` + "\n")

	var events []Event
	s := newStream(func(e Event) { events = append(events, e) })
	err := s.read(&body)
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("want *BuildError, got %v", err)
	}
	msg := err.Error()
	wantStart := "error[E0425]: cannot find value `y` in this scope; error: could not compile `app`"
	if !strings.HasPrefix(msg, wantStart) {
		t.Errorf("the error does not start with the cause:\n%s", msg)
	}
	if !strings.HasSuffix(msg, "(in "+titleCodeBuild+", exit code 101)") {
		t.Errorf("the error does not end with the step's short title and exit code:\n%s", msg)
	}
	if strings.Contains(msg, "rm -rf") || strings.Contains(msg, "--mount") || len(msg) > 600 {
		t.Errorf("the error holds the command (%d bytes):\n%.300s", len(msg), msg)
	}
	if !strings.Contains(be.Output, "--> app/src/main.rs:1:13") || strings.Contains(be.Output, subStepPrefix) {
		t.Errorf("output: %q", be.Output)
	}
	var steps []string
	for _, ev := range events {
		if len(ev.Step) > maxTitle || strings.Contains(ev.Step, stepMarker) {
			t.Errorf("event %s with a long step name: %.100q", ev.Kind, ev.Step)
		}
		if len(ev.Text) > 1000 {
			t.Errorf("event %s with %d bytes of text: %.100q", ev.Kind, len(ev.Text), ev.Text)
		}
		if ev.Kind == EventStep {
			s := ev.Step
			if ev.Done {
				s += " done " + ev.Duration.String()
			}
			steps = append(steps, s)
		}
		if ev.Kind == EventError && ev.Text != msg {
			t.Errorf("error event %q, want the error", ev.Text)
		}
	}
	want := []string{titleCodeStamp, titleCodeStamp + " done 400ms", titleCodeBuild, titleCodeBuild + " done 2.5s"}
	if strings.Join(steps, "|") != strings.Join(want, "|") {
		t.Errorf("step events\n got %q\nwant %q", steps, want)
	}
	ph := s.steps()
	if len(ph) != 2 || ph[0] != (Phase{Name: titleCodeStamp, Duration: 400 * time.Millisecond}) ||
		ph[1] != (Phase{Name: titleCodeBuild, Duration: 2500 * time.Millisecond}) {
		t.Errorf("phases %+v", ph)
	}
}

// TestCookPhasesAreTitles: the phases of a cook (what `status --json`
// shows) are the short titles of its parts, never the command.
func TestCookPhasesAreTitles(t *testing.T) {
	r := &recipe.Recipe{Hash: hashOf('c'), WorkspaceDir: ".", Intent: recipe.Intent{Profile: "release"},
		Manifests: []recipe.Manifest{{Path: "Cargo.toml", Package: "app"}}}
	name := runName(t, "[3/3]", cookDockerfile(r, "chefd-cook-test", nil, nil, false))
	t0 := time.Unix(1700000000, 0)
	var body bytes.Buffer
	body.Write(traceMsg([][]byte{
		pbVertex("d0", "[internal] load build definition from Dockerfile", t0, t0, false, ""),
		pbVertex("d2", "[2/3] COPY skeleton/ /src/", t0, t0.Add(time.Second), false, ""),
		pbVertex("d3", name, t0.Add(time.Second), time.Time{}, false, ""),
	}, nil))
	body.Write(traceMsg(nil, [][]byte{
		pbLogAt("d3", chefdStepLine(titleCookBuild)+"   Compiling serde v1.0.188\n", t0.Add(time.Second)),
		pbLogAt("d3", "    Finished `release` profile\n"+chefdStepLine(titleCookClean), t0.Add(9*time.Second)),
	}))
	body.Write(traceMsg([][]byte{pbVertex("d3", name, t0.Add(time.Second), t0.Add(10*time.Second), false, "")}, nil))
	body.WriteString(`{"id":"moby.image.id","aux":{"ID":"sha256:abc"}}` + "\n")
	s := newStream(nil)
	if err := s.read(&body); err != nil {
		t.Fatal(err)
	}
	want := []Phase{{"[2/3] COPY skeleton/ /src/", time.Second}, {titleCookBuild, 8 * time.Second}, {titleCookClean, time.Second}}
	got := s.steps()
	if len(got) != len(want) {
		t.Fatalf("phases %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("phase %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestScriptsNameTheirParts: the cook and code scripts name each part of
// their step before running it, in order.
func TestScriptsNameTheirParts(t *testing.T) {
	r := &recipe.Recipe{Hash: hashOf('c'), WorkspaceDir: ".", Intent: recipe.Intent{Profile: "release"},
		Manifests: []recipe.Manifest{{Path: "Cargo.toml", Package: "app"}}}
	for _, tt := range []struct {
		script string
		parts  []string
	}{
		{cookScript(r, r.ShortHash(), false, nil, nil, false), []string{titleCookSeed, titleCookBuild, titleCookClean}},
		{codeScript(r, []string{"app"}, false, ModeLoop, false), []string{titleCodeStamp, titleCodeBuild, titleCodeCopy}},
	} {
		at := -1
		for _, p := range tt.parts {
			i := strings.Index(tt.script, echoSubStep(p))
			if i <= at {
				t.Errorf("part %q not named in order in\n%s", p, tt.script)
			}
			at = i
		}
	}
}
