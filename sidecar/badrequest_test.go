package sidecar

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBadRequests(t *testing.T) {
	t.Parallel()
	var seen atomic.Int64
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
	}))
	sc := startSidecar(t, up, nil, func(c *Config) { c.MaxHeaderBytes = 8 << 10 })
	big := strings.Repeat("a", 16<<10)
	cases := []struct {
		name, raw string
		status    int
		forwarded int64 // requests the upstream may see
	}{
		{"well-formed control", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 200, 1},
		{"CL and TE", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, 0},
		{"TE and CL, other order", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\ncontent-length: 30\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n", 400, 0},
		{"conflicting CLs", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nhello", 400, 0},
		{"invalid CL", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, 0},
		{"two transfer codings", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, 0},
		{"TE identity", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello", 501, 0},
		{"bad chunk size", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, 1},
		{"oversized headers", "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + big + "\r\n\r\n", 431, 0},
		{"NUL in header value", "GET /x HTTP/1.1\r\nHost: a\r\nX-Bad: a\x00b\r\n\r\n", 400, 0},
		{"space in header name", "GET /x HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400, 0},
		// Go's server replaces obs-fold by a space (RFC 9112 §5.2 allows that
		// instead of 400); the upstream gets one unfolded, unambiguous request.
		{"obsolete line folding", "GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n", 200, 1},
		{"two Host headers", "GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, 0},
		{"Connection names Content-Length", "POST /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Content-Length\r\nContent-Length: 5\r\n\r\nhello", 400, 0},
		{"Connection names Host", "GET /x HTTP/1.1\r\nHost: a\r\nConnection: Host\r\n\r\n", 400, 0},
		{"Connection names X-Forwarded-For", "GET /x HTTP/1.1\r\nHost: a\r\nConnection: X-Forwarded-For\r\nX-Forwarded-For: 10.9.9.9\r\n\r\n", 200, 1},
	}
	for _, c := range cases {
		before := seen.Load()
		status, resp := rawRequest(t, sc.ProxyAddr(), c.raw)
		if status != c.status {
			t.Errorf("%s: status %d, want %d (%q)", c.name, status, c.status, firstLine(resp))
		}
		// Let a forwarded request land before counting.
		time.Sleep(20 * time.Millisecond)
		if got := seen.Load() - before; got > c.forwarded {
			t.Errorf("%s: upstream saw %d requests, want at most %d", c.name, got, c.forwarded)
		}
		if c.name == "Connection names X-Forwarded-For" && !strings.Contains(resp, "X-Seen-Forwarded-For: 127.0.0.1\r\n") {
			t.Errorf("%s: X-Forwarded-For not rebuilt: %q", c.name, resp)
		}
	}
}

func rawRequest(t *testing.T, addr, raw string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err.Error()
	}
	var b strings.Builder
	_ = resp.Header.Write(&b)
	resp.Body.Close()
	return resp.StatusCode, resp.Status + "\r\n" + b.String()
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\r\n"); return l }
