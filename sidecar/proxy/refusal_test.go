package proxy

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// goRefusal is the exact answer Go's HTTP/1 server writes for a request it
// cannot parse, in the form refusalStatus recognises.
func goRefusal(statusLine, body string) string {
	return "HTTP/1.1 " + statusLine + refusalHeaders + body
}

// The malformed requests Go's parser refuses, the exact bytes it answers
// (pinned: a Go release that changes them fails here, and refusalStatus
// must follow) and the reason they are counted under.
var parserRefusals = []struct {
	name, raw, want, reason string
}{
	{"garbage request line", "\x16\x03\x01 garbage\r\n\r\n",
		goRefusal("400 Bad Request", "400 Bad Request"), ReasonBadRequest},
	{"bad header line", "GET / HTTP/1.1\r\nHost: a\r\nBad Header: 1\r\n\r\n",
		goRefusal("400 Bad Request: invalid header name", "400 Bad Request: invalid header name"), ReasonBadRequest},
	{"NUL in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n",
		goRefusal("400 Bad Request", "400 Bad Request"), ReasonBadRequest},
	{"two different Content-Lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		goRefusal("400 Bad Request", "400 Bad Request"), ReasonBadRequest},
	{"missing Host", "GET / HTTP/1.1\r\n\r\n",
		goRefusal("400 Bad Request: missing required Host header", "400 Bad Request: missing required Host header"), ReasonBadRequest},
	{"malformed version", "GET / HTTP/x.y\r\nHost: a\r\n\r\n",
		goRefusal("400 Bad Request", "400 Bad Request"), ReasonBadRequest},
	{"oversized headers", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n",
		goRefusal("431 Request Header Fields Too Large", "431 Request Header Fields Too Large"), ReasonHeadersTooLarge},
	{"unsupported Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		goRefusal("501 Not Implemented", "Unsupported transfer encoding"), ReasonNotImplemented},
	{"Transfer-Encoding identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 1\r\n\r\na",
		goRefusal("501 Not Implemented", "Unsupported transfer encoding"), ReasonNotImplemented},
	{"unsupported version", "GET / HTTP/3.0\r\nHost: a\r\n\r\n",
		goRefusal("505 HTTP Version Not Supported: unsupported protocol version", "505 HTTP Version Not Supported: unsupported protocol version"), ReasonUnsupportedVersion},
}

// TestParserRefusalsCounted sends each malformed request over a raw TCP
// connection to a running proxy, checks Go's exact answer, and that
// requests_rejected_total went up by exactly one under the expected reason
// (and nothing else moved: no proxied request, no other reason).
func TestParserRefusalsCounted(t *testing.T) {
	t.Parallel()
	for _, c := range parserRefusals {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ps := startProxy(t, nil)
			before := ps.rejected(t)
			if got := rawExchange(t, ps.addr, c.raw); got != c.want {
				t.Fatalf("answer\n%q\nwant\n%q", got, c.want)
			}
			ps.wantRejected(t, before, map[string]float64{c.reason: 1})
			if n := ps.upstream.Load(); n != 0 {
				t.Errorf("upstream saw %d requests", n)
			}
		})
	}
}

// TestParserRefusalAfterGoodRequest: a malformed request pipelined behind
// a good one on a kept-alive connection is counted once; the good one is
// proxied and not counted.
func TestParserRefusalAfterGoodRequest(t *testing.T) {
	t.Parallel()
	ps := startProxy(t, nil)
	before := ps.rejected(t)
	c := dialRaw(t, ps.addr)
	if _, err := io.WriteString(c, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /ok HTTP/1.1\r\nHost: a\r\nBad Header: 1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Date") == "" {
		t.Fatalf("first: %d, Date %q", resp.StatusCode, resp.Header.Get("Date"))
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if want := goRefusal("400 Bad Request: invalid header name", "400 Bad Request: invalid header name"); string(rest) != want {
		t.Fatalf("second: %q", rest)
	}
	ps.wantRejected(t, before, map[string]float64{ReasonBadRequest: 1})
	if n := ps.upstream.Load(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}

// TestNotParserRefusals: answers that are not Go's refusals are not counted
// as such: a normal response, an upstream's own 400 that looks like Go's
// (Go adds Date to it), an upstream body that is a Go refusal byte for
// byte, the proxy's own rejection (counted once, under its reason), and
// the same bytes sent over an upgraded (hijacked) connection.
func TestNotParserRefusals(t *testing.T) {
	t.Parallel()
	refusal := goRefusal("400 Bad Request", "400 Bad Request")
	ps := startProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/mimic":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, "400 Bad Request")
		case "/body":
			w.Header().Set("Content-Length", "5000")
			_, _ = io.WriteString(w, strings.Repeat("x", 5000-len(refusal)))
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, refusal)
		case "/upgrade":
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "mimic")
			w.WriteHeader(http.StatusSwitchingProtocols)
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			_ = brw.Flush()
			_, _ = io.WriteString(c, refusal)
			_, _ = io.Copy(io.Discard, c) // until the client hangs up
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	before := ps.rejected(t)
	for _, path := range []string{"/ok", "/mimic", "/body"} {
		got := rawExchange(t, ps.addr, "GET "+path+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if !strings.Contains(got, "\r\nDate: ") {
			t.Errorf("%s: no Date in %q", path, got)
		}
	}
	own := rawExchange(t, ps.addr, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if !strings.HasPrefix(own, "HTTP/1.1 400 Bad Request\r\n") {
		t.Errorf("own rejection: %q", own)
	}

	c := dialRaw(t, ps.addr)
	if _, err := io.WriteString(c, "GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: mimic\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	buf := make([]byte, len(refusal))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != refusal {
		t.Fatalf("upgraded bytes %q, %v", buf, err)
	}
	_ = c.Close()

	ps.wantRejected(t, before, map[string]float64{"cl_and_te": 1})
}

func TestRefusalStatus(t *testing.T) {
	t.Parallel()
	for _, c := range parserRefusals {
		if got, want := refusalStatus([]byte(c.want)), statusOf(c.want); got != want {
			t.Errorf("%s: %d, want %d", c.name, got, want)
		}
	}
	for _, s := range []string{
		"",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: Sun, 06 Dec 2026 15:00:00 GMT\r\n\r\nok",
		"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Sun, 06 Dec 2026 15:00:00 GMT\r\n\r\n400 Bad Request",
		"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nDate: Sun, 06 Dec 2026 15:00:00 GMT\r\n\r\n400 Bad Request",
		goRefusal("400 Bad Request", "400 Bad Request") + "x", // more than the refusal
		goRefusal("400 Bad Request", "400 Bad"),
		goRefusal("200 OK", "200 OK"),
		goRefusal("501 Not Implemented", "501 Not Implemented x"),
		"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
		"\x00\x00\x08\x06\x00\x00\x00\x00\x00HTTP/1.1 400", // an HTTP/2 frame
	} {
		if got := refusalStatus([]byte(s)); got != 0 {
			t.Errorf("%q: %d, want 0", s, got)
		}
	}
}

// TestRefusalCheckAllocs: the check on every Write allocates nothing.
func TestRefusalCheckAllocs(t *testing.T) {
	normal := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: Sun, 06 Dec 2026 15:00:00 GMT\r\n\r\nok")
	bad := []byte("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Sun, 06 Dec 2026 15:00:00 GMT\r\n\r\nno")
	refusal := []byte(goRefusal("400 Bad Request", "400 Bad Request"))
	c := &watchConn{Conn: discardConn{}}
	if n := testing.AllocsPerRun(100, func() {
		_, _ = c.Write(normal)
		_, _ = c.Write(bad)
		_ = refusalStatus(refusal)
	}); n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
}

func statusOf(s string) int {
	code := 0
	for _, d := range s[len("HTTP/1.1 "):][:3] {
		code = code*10 + int(d-'0')
	}
	return code
}

// discardConn is a net.Conn that takes writes (unit seam for the
// allocation test).
type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error) { return len(b), nil }

// proxyServer is a Proxy served like the sidecar serves it, in front of a
// real upstream.
type proxyServer struct {
	addr     string
	reg      *prometheus.Registry
	p        *Proxy
	upstream atomic.Int64 // requests the upstream saw
}

// startProxy serves a Proxy on loopback over plain TCP (as the sidecar
// does, FramingListener beneath Listener) with MaxHeaderBytes 4 KiB.
func startProxy(t testing.TB, h http.Handler) *proxyServer {
	t.Helper()
	ps := newProxy(t, h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps.addr = ln.Addr().String()
	srv := ps.server()
	srv.Protocols.SetUnencryptedHTTP2(true)
	serveProxy(t, srv, ps.p.Listener(FramingListener(ln)))
	return ps
}

func newProxy(t testing.TB, h http.Handler) *proxyServer {
	t.Helper()
	ps := &proxyServer{reg: prometheus.NewRegistry()}
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, "ok")
		})
	}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps.upstream.Add(1)
		h.ServeHTTP(w, r)
	}))
	up.Config.Protocols = new(http.Protocols)
	up.Config.Protocols.SetHTTP1(true)
	up.Config.Protocols.SetUnencryptedHTTP2(true) // the proxy forwards HTTP/2 as h2c
	up.Start()
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	cfg := DefaultConfig()
	cfg.Service, cfg.Upstream, cfg.Registry = "orders", u, ps.reg
	cfg.Logger = slog.New(slog.DiscardHandler)
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ps.p = p
	return ps
}

func (ps *proxyServer) server() *http.Server {
	srv := &http.Server{
		Handler:           ps.p,
		MaxHeaderBytes:    4 << 10,
		ReadHeaderTimeout: 5 * time.Second,
		ConnContext:       ConnContext,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug),
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	return srv
}

func serveProxy(t testing.TB, srv *http.Server, ln net.Listener) {
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
}

// rejected returns requests_rejected_total by reason.
func (ps *proxyServer) rejected(t testing.TB) map[string]float64 {
	t.Helper()
	mfs, err := ps.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "omnibridge_sidecar_requests_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// wantRejected checks that requests_rejected_total moved by exactly delta
// since before, for every reason.
func (ps *proxyServer) wantRejected(t testing.TB, before, delta map[string]float64) {
	t.Helper()
	after := ps.rejected(t)
	for r := range reasonSet(before, after, delta) {
		if got := after[r] - before[r]; got != delta[r] {
			t.Errorf("requests_rejected_total{reason=%q} went up by %v, want %v", r, got, delta[r])
		}
	}
}

func reasonSet(ms ...map[string]float64) map[string]struct{} {
	out := map[string]struct{}{}
	for _, m := range ms {
		for k := range m {
			out[k] = struct{}{}
		}
	}
	return out
}

func dialRaw(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// rawExchange writes raw on a fresh connection and returns everything the
// server sends until it closes the connection.
func rawExchange(t testing.TB, addr, raw string) string {
	t.Helper()
	return exchangeOn(t, dialRaw(t, addr), raw)
}

func exchangeOn(t testing.TB, c net.Conn, raw string) string {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("read: %v (after %q)", err, b)
	}
	return string(b)
}

// isReset: a server that closes with unread request bytes (the 431 case)
// may reset the connection after its answer was read.
func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && strings.Contains(oe.Err.Error(), "connection reset")
}
