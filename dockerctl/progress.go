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
	// title is the short name of the step, or of the part of it now
	// running; marked steps (chefd's) announce their start with their
	// first line of output, which names their first part.
	title  string
	marked bool
	parts  []part
}

// part is a part of a step, named by a line of its output.
type part struct {
	title string
	start time.Time
}

// stream decodes an ImageBuild response body.
type stream struct {
	progress Progress
	vertices map[string]*vertex
	order    []string
	imageID  string
	crates   Crates
	lines    []string // every log line, for callers that inspect output
	sent     sendStats
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

// fail builds the BuildError, attaching the output of the failed step
// and the cause found in it.
func (s *stream) fail(msg string) error {
	e := &BuildError{Message: dropCommand(msg)}
	for _, d := range s.order {
		v := s.vertices[d]
		if v.err != "" {
			e.Step = v.title
			e.Output = withoutSubSteps(v.log.String() + string(v.partial))
			e.Cause = causeOf(e.Output)
			break
		}
	}
	s.progress(Event{Time: time.Now(), Kind: EventError, Step: e.Step, Text: e.Error()})
	return e
}

func (s *stream) logLine(step, line string) {
	s.lines = append(s.lines, line)
	if strings.HasPrefix(line, sumLinePrefix) {
		return // the binaries' sums (images.go): not for people
	}
	if m := compilingRe.FindStringSubmatch(line); m != nil {
		s.crates.Names = append(s.crates.Names, m[1]+" v"+m[2])
		if strings.HasPrefix(m[3], "/") {
			s.crates.Local++
		} else {
			s.crates.ThirdParty++
			s.crates.ThirdPartyNames = append(s.crates.ThirdPartyNames, m[1]+" v"+m[2])
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
	if name != "" && name != vx.name {
		vx.name = name
		vx.marked = markedTitle(name) != ""
		if len(vx.parts) == 0 {
			vx.title = StepTitle(name)
		}
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
	// A marked step announces itself with its first line (its first part).
	if !vx.started.IsZero() && !vx.cached && !vx.marked {
		s.start(vx)
	}
	if !vx.completed.IsZero() && !vx.reported {
		if len(vx.partial) > 0 {
			s.stepLine(vx, string(vx.partial), time.Time{})
			vx.partial = nil
		}
		vx.reported = true
		if !vx.cached {
			s.start(vx)
		}
		from := vx.started
		if n := len(vx.parts); n > 0 {
			from = vx.parts[n-1].start
		}
		d := time.Duration(0)
		if !from.IsZero() {
			d = vx.completed.Sub(from)
		}
		if !internalStep(vx.name) {
			s.progress(Event{Time: time.Now(), Kind: EventStep, Step: vx.title, Done: true, Cached: vx.cached, Duration: d, Text: dropCommand(vx.err)})
		}
	}
	return nil
}

// start sends a step's start event, once.
func (s *stream) start(vx *vertex) {
	if vx.startSent || vx.started.IsZero() || internalStep(vx.name) {
		return
	}
	vx.startSent = true
	s.progress(Event{Time: time.Now(), Kind: EventStep, Step: vx.title})
}

// stepLine handles one line of a step's output: a line naming a part of
// the step ends the part before it and starts that one; any other line is
// output. at is the engine's time of the line (zero: unknown).
func (s *stream) stepLine(vx *vertex, line string, at time.Time) {
	t, ok := subStep(line)
	if !ok || vx.reported {
		if strings.TrimSpace(line) == "" || ok {
			return
		}
		s.start(vx)
		s.logLine(vx.title, line)
		return
	}
	if at.IsZero() {
		at = vx.started
	}
	switch n := len(vx.parts); {
	case n == 0 && !vx.startSent:
		vx.title = t
		vx.parts = []part{{title: t, start: at}}
		s.start(vx)
	case n > 0 && vx.parts[n-1].title == t:
	default:
		prev := vx.parts
		if n == 0 {
			prev = []part{{title: vx.title, start: vx.started}}
		}
		last := prev[len(prev)-1]
		d := time.Duration(0)
		if !last.start.IsZero() && at.After(last.start) {
			d = at.Sub(last.start)
		}
		s.progress(Event{Time: time.Now(), Kind: EventStep, Step: last.title, Done: true, Duration: d})
		vx.parts = append(prev, part{title: t, start: at})
		vx.title = t
		s.progress(Event{Time: time.Now(), Kind: EventStep, Step: t})
	}
}

func internalStep(name string) bool {
	return strings.HasPrefix(name, "[internal]") || strings.HasPrefix(name, "exporting") ||
		strings.HasPrefix(name, "naming to") || strings.HasPrefix(name, "writing image")
}

func (s *stream) vertexLog(b []byte) error {
	var digest string
	var msg []byte
	var at time.Time
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case 1:
			digest = string(v)
		case 2:
			at = timestamp(v)
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
		s.stepLine(vx, line, at)
	}
	vx.partial = append([]byte(nil), data...)
	return nil
}

// steps returns the completed, non-internal steps as phases, in order,
// by their short titles: a step whose output named its parts gives one
// phase a part.
func (s *stream) steps() []Phase {
	var out []Phase
	for _, d := range s.order {
		v := s.vertices[d]
		if internalStep(v.name) || v.name == "" || v.started.IsZero() || v.completed.IsZero() {
			continue
		}
		if len(v.parts) == 0 {
			out = append(out, Phase{Name: v.title, Duration: v.completed.Sub(v.started)})
			continue
		}
		for i, p := range v.parts {
			end := v.completed
			if i+1 < len(v.parts) {
				end = v.parts[i+1].start
			}
			d := time.Duration(0)
			if !p.start.IsZero() && end.After(p.start) {
				d = end.Sub(p.start)
			}
			out = append(out, Phase{Name: p.title, Duration: d})
		}
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
