package daemon

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/chefd/chefd/daemon/api"
)

// padBody is a valid build request padded with a JSON string of n bytes;
// it counts what is read of it.
type padBody struct {
	r    io.Reader
	read int64
}

func newPadBody(n int) *padBody {
	return &padBody{r: io.MultiReader(strings.NewReader(`{"wait":false,"pad":"`),
		io.LimitReader(repeatReader('a'), int64(n)), strings.NewReader(`"}`))}
}

func (b *padBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// TestServerLimitsRequestBodies: a body larger than MaxRequestBody is
// answered 413 with a JSON error ("too_large") without being decoded (the
// daemon never holds it): at once when its length is declared, at the
// limit when it is not (chunked). No build is requested.
func TestServerLimitsRequestBodies(t *testing.T) {
	a := fakeRecipe("a")
	h := newHarness(t, newFakeBuilder(a), a, nil)
	handler := NewHandler(h.s, api.Info{}, nil, zaptest.NewLogger(t))
	const big = 8 << 20
	for _, declared := range []bool{true, false} {
		body := newPadBody(big)
		req := httptest.NewRequest(http.MethodPost, "/v1/build", body)
		req.ContentLength = -1
		if declared {
			req.ContentLength = big + 24
		}
		rw := httptest.NewRecorder()
		handler.ServeHTTP(rw, req)
		var ae api.APIError
		err := json.Unmarshal(rw.Body.Bytes(), &ae)
		must(t, rw.Code == http.StatusRequestEntityTooLarge && err == nil && ae.Code == "too_large",
			"declared length %v: status %d, body %.200q", declared, rw.Code, rw.Body.String())
		limit := int64(0)
		if !declared {
			limit = 1<<20 + 64<<10 // the limit, and what a read buffer holds beyond it
		}
		must(t, body.read <= limit, "declared length %v: the server read %d bytes of the body", declared, body.read)
	}
	st := h.status()
	must(t, st.Pending == nil && st.Current == nil && h.f.count("build") == 0 && len(st.Recent) == 0, "a build was requested: %+v", st)

	// a small body still works
	rw := httptest.NewRecorder()
	handler.ServeHTTP(rw, httptest.NewRequest(http.MethodPost, "/v1/build", strings.NewReader(`{"wait":false}`)))
	must(t, rw.Code == http.StatusOK, "small request: %d %s", rw.Code, rw.Body.String())
	h.next("build", a).finish(nil)
}

// TestDaemonLimitsHeaders: the daemon refuses request headers larger than
// MaxHeaderBytes (431) instead of reading them into memory.
func TestDaemonLimitsHeaders(t *testing.T) {
	a := fakeRecipe("a")
	d := startDaemon(t, newFakeBuilder(a), a, nil)
	conn, err := net.Dial("unix", d.paths.Socket)
	must(t, err == nil, "dial: %v", err)
	defer conn.Close()
	go func() {
		_, _ = io.WriteString(conn, "GET /v1/ping HTTP/1.1\r\nHost: chefd\r\nX-Pad: ")
		_, _ = io.Copy(conn, io.LimitReader(repeatReader('a'), 4*MaxHeaderBytes))
		_, _ = io.WriteString(conn, "\r\n\r\n")
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	must(t, err == nil, "read the answer: %v", err)
	resp.Body.Close()
	must(t, resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge, "status %d for %d bytes of headers", resp.StatusCode, 4*MaxHeaderBytes)
}
