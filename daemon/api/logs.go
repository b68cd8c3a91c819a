package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"time"
)

// TailLog writes the last n lines of the log file at path to w (n <= 0:
// all of it) and, with follow, the lines appended later until ctx is done,
// following truncation and rotation. format, when set, rewrites each line
// (see FormatLogLine). Each line is written with its newline, and flush
// (when set) runs after each burst.
func TailLog(ctx context.Context, path string, n int, follow bool, w io.Writer, format func([]byte) []byte, flush func()) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	start, err := tailStart(f, n)
	if err != nil {
		return err
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return err
	}
	var partial []byte
	emit := func(data []byte) error {
		data = append(partial, data...)
		partial = nil
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				partial = append([]byte(nil), data...)
				break
			}
			line := data[:i]
			if format != nil {
				line = format(line)
			}
			if _, err := w.Write(append(line, '\n')); err != nil {
				return err
			}
			data = data[i+1:]
		}
		return nil
	}
	buf := make([]byte, 64<<10)
	readAll := func() error {
		for {
			k, err := f.Read(buf)
			if k > 0 {
				if err := emit(buf[:k]); err != nil {
					return err
				}
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	if err := readAll(); err != nil {
		return err
	}
	if flush != nil {
		flush()
	}
	if !follow {
		if len(partial) > 0 {
			return emit([]byte("\n"))
		}
		return nil
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		pos, _ := f.Seek(0, io.SeekCurrent)
		cur, err1 := f.Stat()
		onDisk, err2 := os.Stat(path)
		switch {
		case err2 == nil && err1 == nil && !os.SameFile(cur, onDisk):
			// rotated: finish the old file, then read the new one from its start
			if err := readAll(); err != nil {
				return err
			}
			nf, err := os.Open(path)
			if err != nil {
				continue
			}
			f.Close()
			f = nf
		case err1 == nil && cur.Size() < pos:
			// truncated
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
		}
		if err := readAll(); err != nil {
			return err
		}
		if flush != nil {
			flush()
		}
	}
}

// tailStart finds the offset of the last n lines of f.
func tailStart(f *os.File, n int) (int64, error) {
	if n <= 0 {
		return 0, nil
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	const chunk = 32 << 10
	buf := make([]byte, chunk)
	newlines := 0
	end := size
	for end > 0 {
		begin := max(end-chunk, 0)
		k, err := f.ReadAt(buf[:end-begin], begin)
		if err != nil && err != io.EOF {
			return 0, err
		}
		for i := k - 1; i >= 0; i-- {
			if buf[i] != '\n' || begin+int64(i) == size-1 {
				continue
			}
			newlines++
			if newlines == n {
				return begin + int64(i) + 1, nil
			}
		}
		end = begin
	}
	return 0, nil
}

// FormatLogLine renders a JSON line of the daemon log for people:
// "15:04:05.000 INFO  message  key=value ...". Other lines pass unchanged.
func FormatLogLine(line []byte) []byte {
	if len(line) == 0 || line[0] != '{' {
		return line
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		return line
	}
	ts := ""
	switch t := m["ts"].(type) {
	case float64:
		sec, frac := math.Modf(t)
		ts = time.Unix(int64(sec), int64(frac*1e9)).Format("15:04:05.000")
	case string:
		if pt, err := time.Parse(time.RFC3339Nano, t); err == nil {
			ts = pt.Local().Format("15:04:05.000")
		} else if pt, err := time.Parse("2006-01-02T15:04:05.000Z0700", t); err == nil {
			ts = pt.Local().Format("15:04:05.000")
		} else {
			ts = t
		}
	}
	level, _ := m["level"].(string)
	msg, _ := m["msg"].(string)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-5s %s", ts, strings.ToUpper(level), msg)
	keys := make([]string, 0, len(m))
	for k := range m {
		switch k {
		case "ts", "level", "msg", "caller", "logger":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		var s string
		switch x := v.(type) {
		case string:
			s = x
			if strings.ContainsAny(s, " \t\"=") || s == "" {
				s = fmt.Sprintf("%q", s)
			}
		default:
			data, _ := json.Marshal(x)
			s = string(data)
		}
		fmt.Fprintf(&b, " %s=%s", k, s)
	}
	return []byte(b.String())
}
