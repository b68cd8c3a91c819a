package recipe

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Canonical TOML: the recipe's manifests are re-serialised from their
// decoded form so comments, formatting and key order never reach the hash.
// The writer is small and allocation-light (it runs for every manifest of
// every prepare); TestCanonicalRoundTrip and the fuzz target check that
// decoding its output gives back the same document.

// canonicalTOML serialises a decoded TOML document: keys sorted, plain
// values first, then sub-tables and arrays of tables with full headers.
func canonicalTOML(doc map[string]any) string {
	var b strings.Builder
	b.Grow(512)
	writeTable(&b, nil, doc, false)
	return b.String()
}

// tableArray returns v as an array of tables, if it is one.
func tableArray(v any) ([]map[string]any, bool) {
	switch a := v.(type) {
	case []map[string]any:
		return a, len(a) > 0
	case []any:
		if len(a) == 0 {
			return nil, false
		}
		for _, e := range a {
			if _, ok := e.(map[string]any); !ok {
				return nil, false
			}
		}
		out := make([]map[string]any, len(a))
		for i, e := range a {
			out[i] = e.(map[string]any)
		}
		return out, true
	}
	return nil, false
}

func writeTable(b *strings.Builder, path []string, t map[string]any, header bool) {
	var kb [24]string
	keys := kb[:0]
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if header {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteByte('[')
		writePath(b, path)
		b.WriteString("]\n")
	}
	// Plain values first; sub-tables and arrays of tables after them.
	nested := keys[:0:0]
	for _, k := range keys {
		v := t[k]
		if _, ok := v.(map[string]any); ok {
			nested = append(nested, k)
			continue
		}
		if _, ok := tableArray(v); ok {
			nested = append(nested, k)
			continue
		}
		writeKey(b, k)
		b.WriteString(" = ")
		writeValue(b, v)
		b.WriteByte('\n')
	}
	for _, k := range nested {
		v := t[k]
		sub := append(path[:len(path):len(path)], k)
		if m, ok := v.(map[string]any); ok {
			writeTable(b, sub, m, true)
			continue
		}
		arr, _ := tableArray(v)
		for _, m := range arr {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString("[[")
			writePath(b, sub)
			b.WriteString("]]\n")
			writeTable(b, sub, m, false)
		}
	}
}

func writePath(b *strings.Builder, path []string) {
	for i, p := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		writeKey(b, p)
	}
}

func bareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func writeKey(b *strings.Builder, k string) {
	if bareKey(k) {
		b.WriteString(k)
		return
	}
	writeString(b, k)
}

func writeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\uFFFD`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(b, `\u%04X`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}

func writeValue(b *strings.Builder, v any) {
	switch x := v.(type) {
	case string:
		writeString(b, x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case int:
		b.WriteString(strconv.Itoa(x))
	case float64:
		switch {
		case math.IsInf(x, 1):
			b.WriteString("inf")
		case math.IsInf(x, -1):
			b.WriteString("-inf")
		case math.IsNaN(x):
			b.WriteString("nan")
		default:
			s := strconv.FormatFloat(x, 'g', -1, 64)
			if !strings.ContainsAny(s, ".eEn") {
				s += ".0"
			}
			b.WriteString(s)
		}
	case time.Time:
		writeTime(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeValue(b, e)
		}
		b.WriteByte(']')
	case []map[string]any:
		writeValue(b, anySlice(x))
	case []string:
		writeValue(b, anySlice(x))
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte(' ')
			writeKey(b, k)
			b.WriteString(" = ")
			writeValue(b, x[k])
		}
		if len(keys) > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('}')
	default:
		writeString(b, fmt.Sprint(x))
	}
}

// writeTime writes TOML date-times, keeping the local forms BurntSushi
// decodes (local date, local time, local date-time) local.
func writeTime(b *strings.Builder, t time.Time) {
	switch t.Location().String() {
	case "date-local":
		b.WriteString(t.Format("2006-01-02"))
	case "time-local":
		b.WriteString(t.Format("15:04:05.999999999"))
	case "datetime-local":
		b.WriteString(t.Format("2006-01-02T15:04:05.999999999"))
	default:
		b.WriteString(t.Format(time.RFC3339Nano))
	}
}

func anySlice[T any](s []T) []any {
	out := make([]any, len(s))
	for i, e := range s {
		out[i] = e
	}
	return out
}
