package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/chefd/chefd/internal/flock"
)

// ErrNotRunning means no daemon answers on the socket.
var ErrNotRunning = errors.New("no chefd daemon runs for this workspace")

// Client talks to a daemon over its unix socket. It trusts only a
// daemon of its own user: before every connection it checks that the
// socket and its directory are the user's (and the directory writable by
// no one else), and after connecting that the process listening runs as
// the user (SO_PEERCRED); else requests fail with *UntrustedError.
type Client struct {
	Socket string
	hc     *http.Client
	// uid must own the socket and its directory; peerUID must run the
	// daemon. Both are os.Getuid(); tests change them.
	uid, peerUID int
}

// NewClient returns a client of the daemon listening on socket.
func NewClient(socket string) *Client {
	c := &Client{Socket: socket, uid: os.Getuid(), peerUID: os.Getuid()}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialTrusted(ctx, socket, c.uid, c.peerUID)
		},
		DisableCompression: true,
		MaxIdleConns:       2,
		IdleConnTimeout:    30 * time.Second,
	}
	c.hc = &http.Client{Transport: tr}
	return c
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://chefd"+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *UntrustedError
		if errors.As(err, &ue) {
			return nil, ue
		}
		if notRunning(err) {
			return nil, fmt.Errorf("%w (socket %s)", ErrNotRunning, c.Socket)
		}
		return nil, fmt.Errorf("daemon: %w", err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		ae := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, ae) != nil || ae.Message == "" {
			ae.Code, ae.Message = "internal", fmt.Sprintf("daemon: %s: %s", resp.Status, bytes.TrimSpace(data))
		}
		return nil, ae
	}
	return resp, nil
}

// notRunning recognises "nobody listens": no socket file, or a stale one.
func notRunning(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOTSOCK)
}

func (c *Client) getJSON(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("daemon: bad answer to %s: %w", path, err)
	}
	return nil
}

// Ping returns the daemon's identity; ErrNotRunning when none answers.
func (c *Client) Ping(ctx context.Context) (Info, error) {
	var info Info
	err := c.getJSON(ctx, http.MethodGet, "/v1/ping", nil, &info)
	return info, err
}

// Status returns the daemon's status with the recent builds.
func (c *Client) Status(ctx context.Context, recent int) (FullStatus, error) {
	var st FullStatus
	err := c.getJSON(ctx, http.MethodGet, "/v1/status?recent="+strconv.Itoa(recent), nil, &st)
	return st, err
}

// History returns up to n finished builds and cooks, newest first.
func (c *Client) History(ctx context.Context, n int) ([]Record, error) {
	var h []Record
	err := c.getJSON(ctx, http.MethodGet, "/v1/history?n="+strconv.Itoa(n), nil, &h)
	return h, err
}

// Build asks for a build. With onEvent, the answer streams: onEvent sees
// every cook and build event until the answer. Errors of the request
// (warm-only, recipe) are *APIError.
func (c *Client) Build(ctx context.Context, req BuildRequest, onEvent func(Event)) (Record, error) {
	if onEvent == nil {
		var out struct {
			Record Record `json:"record"`
		}
		err := c.getJSON(ctx, http.MethodPost, "/v1/build", BuildBody{BuildRequest: req}, &out)
		return out.Record, err
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/build", BuildBody{BuildRequest: req, Stream: true})
	if err != nil {
		return Record{}, err
	}
	defer resp.Body.Close()
	var final *Record
	err = readStream(resp.Body, func(_ []byte, ev Event) error {
		switch ev.Type {
		case EventResult:
			final = ev.Record
			return io.EOF
		case EventError:
			if ev.Error == nil {
				return errors.New("daemon: build failed without a reason")
			}
			return ev.Error
		case EventSubscribed:
		default:
			onEvent(ev)
		}
		return nil
	})
	if err != nil && err != io.EOF {
		return Record{}, err
	}
	if final == nil {
		if ctx.Err() != nil {
			return Record{}, ctx.Err()
		}
		return Record{}, errors.New("daemon: the build stream ended without an answer (did the daemon stop?)")
	}
	return *final, nil
}

// readStream calls fn for each NDJSON line until EOF or fn's error.
func readStream(r io.Reader, fn func(raw []byte, ev Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("daemon: bad event line: %w", err)
		}
		if err := fn(line, ev); err != nil {
			return err
		}
	}
	return sc.Err()
}

// Events streams the daemon's events to fn (raw is the NDJSON line) until
// ctx is done, the daemon stops, or fn returns an error (io.EOF ends
// quietly). The first event is "subscribed".
func (c *Client) Events(ctx context.Context, fn func(raw []byte, ev Event) error) error {
	resp, err := c.do(ctx, http.MethodGet, "/v1/events", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = readStream(resp.Body, fn)
	if err == io.EOF || ctx.Err() != nil {
		return nil
	}
	return err
}

// Logs copies the daemon log to w: the last n lines (n <= 0: all), then,
// with follow, new lines until ctx is done. raw keeps the JSON lines.
func (c *Client) Logs(ctx context.Context, n int, follow, raw bool, w io.Writer) error {
	q := url.Values{}
	q.Set("n", strconv.Itoa(n))
	q.Set("follow", strconv.FormatBool(follow))
	q.Set("raw", strconv.FormatBool(raw))
	resp, err := c.do(ctx, http.MethodGet, "/v1/logs?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// GC removes old cooked images and returns their names.
func (c *Client) GC(ctx context.Context) ([]string, error) {
	var out struct {
		Removed []string `json:"removed"`
	}
	err := c.getJSON(ctx, http.MethodPost, "/v1/gc", nil, &out)
	return out.Removed, err
}

// Cancel cancels the build with this ID (0: the running build, else the
// queued one) and returns its record as the cancel left it: a running
// build ends as cancelled once the engine has stopped it. A build that is
// not running or queued is an *APIError with Code CodeNotFound.
func (c *Client) Cancel(ctx context.Context, id int64) (Record, error) {
	var out struct {
		Record Record `json:"record"`
	}
	err := c.getJSON(ctx, http.MethodPost, "/v1/cancel", map[string]int64{"id": id}, &out)
	return out.Record, err
}

// Stop asks the daemon to stop; it returns once the request is taken (see
// WaitStopped).
func (c *Client) Stop(ctx context.Context) error {
	var out map[string]any
	return c.getJSON(ctx, http.MethodPost, "/v1/stop", nil, &out)
}

// WaitStopped waits until the daemon of p has released its lock.
func WaitStopped(ctx context.Context, p Paths) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if held, _ := flock.Held(p.Lock); !held {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
