package dockerctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/docker/docker/pkg/jsonmessage"
	"google.golang.org/protobuf/encoding/protowire"
)

// BuildError is a failed build: the engine's message and the output of the
// step that failed (compiler errors verbatim).
type BuildError struct {
	Message string
	Step    string
	Output  string
}

func (e *BuildError) Error() string {
	var b strings.Builder
	b.WriteString("build failed")
	if e.Step != "" {
		b.WriteString(" in ")
		b.WriteString(e.Step)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

// vertex is a BuildKit step as traced.
type vertex struct {
	digest    string
	name      string
	cached    bool
	started   time.Time
	completed time.Time
	err       string
	reported  bool
	startSent bool
	log       bytes.Buffer
	partial   []byte // incomplete last line
}

// stream decodes an ImageBuild response body.
type stream struct {
	progress Progress
	vertices map[string]*vertex
	order    []string
	imageID  string
	crates   Crates
	lines    []string // every log line, for callers that inspect output
}

func newStream(p Progress) *stream {
	if p == nil {
		p = func(Event) {}
	}
	return &stream{progress: p, vertices: map[string]*vertex{}}
}

// compilingRe matches cargo's "Compiling name vX (path)" lines.
var compilingRe = regexp.MustCompile(`^\s*Compiling ([A-Za-z0-9_.+-]+) v(\S+)(?: \((.*)\))?\s*$`)

// read consumes the body until EOF. A message carrying an error fails the
// build even though the HTTP status was 200.
func (s *stream) read(body io.Reader) error {
	dec := json.NewDecoder(body)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		if m.Error != nil {
			return s.fail(m.Error.Message)
		}
		switch {
		case m.ID == "moby.buildkit.trace" && m.Aux != nil:
			var pb []byte
			if json.Unmarshal(*m.Aux, &pb) == nil {
				if err := s.trace(pb); err != nil {
					return fmt.Errorf("decode build trace: %w", err)
				}
			}
		case m.Aux != nil:
			var aux struct{ ID string }
			if json.Unmarshal(*m.Aux, &aux) == nil && strings.HasPrefix(aux.ID, "sha256:") {
				s.imageID = aux.ID
			}
		case m.Stream != "":
			for _, l := range strings.Split(strings.TrimRight(m.Stream, "\n"), "\n") {
				if strings.TrimSpace(l) != "" {
					s.logLine("", l)
				}
			}
		}
	}
	for _, d := range s.order {
		if v := s.vertices[d]; v.err != "" {
			return s.fail(v.err)
		}
	}
	if s.imageID == "" {
		return errors.New("build finished without an image ID")
	}
	return nil
}

// fail builds the BuildError, attaching the output of the failed step.
func (s *stream) fail(msg string) error {
	e := &BuildError{Message: msg}
	for _, d := range s.order {
		v := s.vertices[d]
		if v.err != "" {
			e.Step = v.name
			e.Output = v.log.String() + string(v.partial)
			break
		}
	}
	s.progress(Event{Time: time.Now(), Kind: EventError, Step: e.Step, Text: msg})
	return e
}

func (s *stream) logLine(step, line string) {
	s.lines = append(s.lines, line)
	if m := compilingRe.FindStringSubmatch(line); m != nil {
		s.crates.Names = append(s.crates.Names, m[1]+" v"+m[2])
		if strings.HasPrefix(m[3], "/") {
			s.crates.Local++
		} else {
			s.crates.ThirdParty++
		}
	}
	s.progress(Event{Time: time.Now(), Kind: EventLog, Step: step, Text: line})
}

// trace applies one BuildKit StatusResponse (protobuf) to the state.
func (s *stream) trace(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case 1: // vertexes
			return s.vertex(v)
		case 3: // logs
			return s.vertexLog(v)
		}
		return nil
	})
}

func (s *stream) get(digest string) *vertex {
	v, ok := s.vertices[digest]
	if !ok {
		v = &vertex{digest: digest}
		s.vertices[digest] = v
		s.order = append(s.order, digest)
	}
	return v
}

func (s *stream) vertex(b []byte) error {
	var (
		digest, name, errMsg string
		cached               bool
		started, completed   time.Time
	)
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case 1:
			digest = string(v)
		case 3:
			name = string(v)
		case 4:
			cached = len(v) > 0 && v[0] != 0
		case 5:
			started = timestamp(v)
		case 6:
			completed = timestamp(v)
		case 7:
			errMsg = string(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	vx := s.get(digest)
	if name != "" {
		vx.name = name
	}
	vx.cached = vx.cached || cached
	if !started.IsZero() {
		vx.started = started
	}
	if !completed.IsZero() {
		vx.completed = completed
	}
	if errMsg != "" {
		vx.err = errMsg
	}
	if !vx.started.IsZero() && !vx.startSent && !vx.cached && !internalStep(vx.name) {
		vx.startSent = true
		s.progress(Event{Time: time.Now(), Kind: EventStep, Step: vx.name})
	}
	if !vx.completed.IsZero() && !vx.reported {
		vx.reported = true
		if len(vx.partial) > 0 {
			s.logLine(vx.name, string(vx.partial))
			vx.partial = nil
		}
		d := time.Duration(0)
		if !vx.started.IsZero() {
			d = vx.completed.Sub(vx.started)
		}
		if !internalStep(vx.name) {
			s.progress(Event{Time: time.Now(), Kind: EventStep, Step: vx.name, Done: true, Cached: vx.cached, Duration: d, Text: vx.err})
		}
	}
	return nil
}

func internalStep(name string) bool {
	return strings.HasPrefix(name, "[internal]") || strings.HasPrefix(name, "exporting") ||
		strings.HasPrefix(name, "naming to") || strings.HasPrefix(name, "writing image")
}

func (s *stream) vertexLog(b []byte) error {
	var digest string
	var msg []byte
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case 1:
			digest = string(v)
		case 4:
			msg = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	vx := s.get(digest)
	vx.log.Write(msg)
	data := append(vx.partial, msg...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(data[:i]), "\r")
		data = data[i+1:]
		if strings.TrimSpace(line) != "" {
			s.logLine(vx.name, line)
		}
	}
	vx.partial = append([]byte(nil), data...)
	return nil
}

// steps returns the completed, non-internal steps as phases, in order.
func (s *stream) steps() []Phase {
	var out []Phase
	for _, d := range s.order {
		v := s.vertices[d]
		if internalStep(v.name) || v.name == "" || v.started.IsZero() || v.completed.IsZero() {
			continue
		}
		out = append(out, Phase{Name: v.name, Duration: v.completed.Sub(v.started)})
	}
	return out
}

// eachField walks the top-level fields of a protobuf message; fn gets the
// raw bytes of length-delimited fields and the varint as bytes otherwise.
func eachField(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var val []byte
		switch typ {
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			val, n = v, m
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			n = m
			if v != 0 {
				val = []byte{1}
			} else {
				val = []byte{0}
			}
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			n = m
		}
		if err := fn(num, typ, val); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// timestamp decodes a google.protobuf.Timestamp.
func timestamp(b []byte) time.Time {
	var sec, nsec uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.VarintType {
			return time.Time{}
		}
		b = b[n:]
		v, m := protowire.ConsumeVarint(b)
		if m < 0 {
			return time.Time{}
		}
		b = b[m:]
		switch num {
		case 1:
			sec = v
		case 2:
			nsec = v
		}
	}
	return time.Unix(int64(sec), int64(nsec))
}

// StepTitle is a BuildKit step's name for people: chefd's own cargo steps
// are named for what they build, other long names are cut.
func StepTitle(s string) string {
	if i := strings.Index(s, " sh -ec "); i > 0 {
		s = s[:i]
	}
	for m, kind := range map[string]string{cookMarker: "cargo build (dependencies)", codeMarker: "cargo build (workspace code)"} {
		if strings.Contains(s, m) {
			if i := strings.Index(s, "RUN"); i >= 0 {
				return s[:i] + "RUN " + kind
			}
		}
	}
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}
