package recipe

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// Error is a problem with the user's workspace. It names the file (and the
// line, when known) and says how to fix it.
type Error struct {
	File string // path as the user knows it (relative to the workspace when possible)
	Line int    // 1-based; 0 when unknown
	Msg  string
	Fix  string
	Err  error // underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Fix != "" {
		b.WriteString("\n  fix: ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// tomlError turns a BurntSushi decode error into an *Error with the line.
func tomlError(file string, err error) *Error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := "invalid TOML: " + pe.Message
		if pe.LastKey != "" {
			msg += fmt.Sprintf(" (after key %q)", pe.LastKey)
		}
		return &Error{File: file, Line: pe.Position.Line, Msg: msg,
			Fix: "correct the TOML syntax at that line (cargo would reject this file too)", Err: err}
	}
	return &Error{File: file, Msg: "invalid TOML: " + err.Error(), Fix: "correct the TOML syntax", Err: err}
}

// lineOf returns the 1-based line of the first occurrence of a key written
// as `key =`, `"key" =`, `[...key]` or `key.` in data, or 0.
func lineOf(data []byte, key string) int {
	if key == "" {
		return 0
	}
	q := regexp.QuoteMeta(key)
	re, err := regexp.Compile(`(?m)(^[ \t]*["']?` + q + `["']?[ \t]*(=|\.))|(\[[^\]\n]*["'.]?` + q + `["']?[ \t]*\])`)
	if err != nil {
		return 0
	}
	loc := re.FindIndex(data)
	if loc == nil {
		// fall back to a plain quoted occurrence (array entries such as members)
		i := bytes.Index(data, []byte(`"`+key+`"`))
		if i < 0 {
			return 0
		}
		return bytes.Count(data[:i], []byte("\n")) + 1
	}
	return bytes.Count(data[:loc[0]], []byte("\n")) + 1
}
