package dockerctl

import (
	"regexp"
	"strings"
)

// Step names. Every RUN instruction chefd generates carries a marker,
// CHEFD_STEP=<id>, so that its BuildKit step (named after the whole
// command) gets a short title for people, records and errors. The scripts
// of a step print "chefd-step: <title>" lines when they move on to a part
// of it (the cook's cleanup after cargo build, say): the step is then
// reported as those parts.
const (
	stepMarker = "CHEFD_STEP="
	// markers in RUN commands, to find the steps in the build trace
	cookMarker     = stepMarker + "cook"
	codeMarker     = stepMarker + "code"
	skeletonMarker = stepMarker + "skeleton"
	toolMarker     = stepMarker + "tool"
	layerMarker    = stepMarker + "layer"
	// subStepPrefix starts a line of a step's output that names the part
	// of the step now running.
	subStepPrefix = "chefd-step: "
)

// Short titles of chefd's steps and of their parts.
const (
	titleSkeleton  = "cook: write the skeleton"
	titleCookSeed  = "cook: prepare the cook cache"
	titleCookBuild = "cook: cargo build"
	titleCookClean = "cook: keep third-party artifacts"
	titleCookTool  = "cook: build the layer tool"
	titleCookLayer = "cook: remove what the base image has in excess"
	titleCodeStamp = "code: stamp sources"
	titleCodeBuild = "code: cargo build"
	titleCodeCopy  = "code: copy binaries"
)

// The titles of the steps that run cargo, as StepTitle gives them (the
// progress view draws their crate bars).
const (
	StepCookBuild = titleCookBuild
	StepCodeBuild = titleCodeBuild
)

// stepTitles maps a marker's id to the title of its step as a whole (a
// step whose script names its parts is reported as those parts once it
// runs: this title is for a cached step).
var stepTitles = map[string]string{
	"skeleton": titleSkeleton,
	"cook":     titleCookBuild,
	"code":     titleCodeBuild,
	"tool":     titleCookTool,
	"layer":    titleCookLayer,
}

var stepMarkerRe = regexp.MustCompile(`(?:^|\s)` + stepMarker + `([a-z]+)(?:\s|;|$)`)

// markedTitle is the title of a chefd step named by its marker ("" when
// the step carries none).
func markedTitle(name string) string {
	if m := stepMarkerRe.FindStringSubmatch(name); m != nil {
		return stepTitles[m[1]]
	}
	return ""
}

// maxTitle bounds a step title that is not one of chefd's.
const maxTitle = 100

// StepTitle is a BuildKit step's name for people: chefd's own steps are
// named for what they do (`cook: cargo build`), other names are cut to
// their first line and 100 characters. A title is its own title.
func StepTitle(s string) string {
	if t := markedTitle(s); t != "" {
		return t
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + "..."
	}
	return cut(s, maxTitle)
}

// cut shortens s to at most n bytes (on a rune boundary), marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - 3
	for i > 0 && !runeStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

func runeStart(b byte) bool { return b&0xC0 != 0x80 }

// subStep reports whether line names a part of a step, and which.
func subStep(line string) (string, bool) {
	t, ok := strings.CutPrefix(strings.TrimSpace(line), subStepPrefix)
	if !ok || t == "" {
		return "", false
	}
	return cut(t, maxTitle), true
}

// echoSubStep is the shell that names a part of a step in its output.
func echoSubStep(title string) string {
	return "echo " + shQuote(subStepPrefix+title) + " >&2"
}
