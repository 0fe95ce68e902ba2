package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/omninode/bridge/internal/mtls/mtlstest"
)

// tlsProxy is a proxyServer behind TLSListener, as the sidecar serves it
// with a certificate.
type tlsProxy struct {
	*proxyServer
	ln   net.Listener
	pool *x509.CertPool
	logs *countingHandler
}

func startTLSProxy(t *testing.T, handshakeTimeout time.Duration) *tlsProxy {
	t.Helper()
	cert, pool := testCert(t)
	ps := newProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto+" "+r.Header.Get("X-Forwarded-Proto"))
	}))
	logs := &countingHandler{}
	ps.p.log = slog.New(logs)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps.addr = raw.Addr().String()
	srv := ps.server()
	srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	ln := ps.p.TLSListener(raw, srv.TLSConfig, handshakeTimeout)
	serveProxy(t, srv, ln)
	return &tlsProxy{proxyServer: ps, ln: ln, pool: pool, logs: logs}
}

// TestTLSListenerServes: HTTP/2 and HTTP/1.1 over TLS still work (the
// upstream sees X-Forwarded-Proto https, so Request.TLS is set on HTTP/1
// connections too) and count nothing.
func TestTLSListenerServes(t *testing.T) {
	t.Parallel()
	ps := startTLSProxy(t, 5*time.Second)
	before := ps.rejected(t)
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ps.pool}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + ps.addr + "/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		want := "HTTP/1.1 https"
		if h2 {
			want = "HTTP/2.0 https"
		}
		if resp.StatusCode != 200 || resp.ProtoMajor != map[bool]int{true: 2, false: 1}[h2] || string(b) != want {
			t.Errorf("h2 %v: %s %d %q, want %q", h2, resp.Proto, resp.StatusCode, b, want)
		}
	}
	ps.wantRejected(t, before, nil)
}

// TestTLSParserRefusalsCounted: the malformed requests Go's parser refuses
// are counted on HTTP/1 connections over TLS as over plain TCP.
func TestTLSParserRefusalsCounted(t *testing.T) {
	t.Parallel()
	ps := startTLSProxy(t, 5*time.Second)
	for _, c := range parserRefusals {
		before := ps.rejected(t)
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ps.addr,
			&tls.Config{RootCAs: ps.pool, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		got := exchangeOn(t, conn, c.raw)
		_ = conn.Close()
		if got != c.want {
			t.Errorf("%s: answer %q, want %q", c.name, got, c.want)
		}
		ps.wantRejected(t, before, map[string]float64{c.reason: 1})
	}
	if n := ps.upstream.Load(); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}

// TestTLSRefusesCLAndTE: a request with both Content-Length and
// Transfer-Encoding over HTTP/1 on TLS is refused with 400 and counted
// (cl_and_te), as on plain TCP, and never reaches the upstream; a
// well-formed request on the same kind of connection goes through.
func TestTLSRefusesCLAndTE(t *testing.T) {
	t.Parallel()
	ps := startTLSProxy(t, 5*time.Second)
	for _, c := range []struct {
		name, raw, want string
		reason          string
	}{
		{"CL and TE", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400", "cl_and_te"},
		{"TE and CL", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\ncontent-length: 30\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n", "400", "cl_and_te"},
		{"well-formed", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "200", ""},
	} {
		before, seen := ps.rejected(t), ps.upstream.Load()
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ps.addr,
			&tls.Config{RootCAs: ps.pool, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, c.raw); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		resp.Body.Close()
		_ = conn.Close()
		if got := strconv.Itoa(resp.StatusCode); got != c.want {
			t.Errorf("%s: status %s, want %s", c.name, got, c.want)
		}
		var delta map[string]float64
		if c.reason != "" {
			delta = map[string]float64{c.reason: 1}
			if n := ps.upstream.Load() - seen; n != 0 {
				t.Errorf("%s: the upstream saw %d requests", c.name, n)
			}
		}
		ps.wantRejected(t, before, delta)
	}
}

// TestTLSHandshakeFailuresCounted: each failed handshake is counted once
// under tls_handshake, and logged at most once per second.
func TestTLSHandshakeFailuresCounted(t *testing.T) {
	t.Parallel()
	ps := startTLSProxy(t, 300*time.Millisecond)
	start := time.Now()
	before := ps.rejected(t)

	// Plain HTTP on the TLS port gets net/http's answer.
	got := rawExchange(t, ps.addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if got != "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n" {
		t.Errorf("plain HTTP: %q", got)
	}
	ps.wantRejected(t, before, map[string]float64{ReasonTLSHandshake: 1})

	// Not TLS at all: the connection is closed.
	if got := rawExchange(t, ps.addr, "\x00\x01garbage\r\n\r\n"); got != "" {
		t.Errorf("garbage: %q", got)
	}
	ps.wantRejected(t, before, map[string]float64{ReasonTLSHandshake: 2})

	// Silent until the handshake timeout: closed, counted.
	if got := exchangeOn(t, dialRaw(t, ps.addr), ""); got != "" {
		t.Errorf("silent client: %q", got)
	}
	ps.wantRejected(t, before, map[string]float64{ReasonTLSHandshake: 3})

	// A client that refuses the certificate: it hangs up with an alert, the
	// server's handshake fails a moment later.
	if _, err := tls.Dial("tcp", ps.addr, &tls.Config{ServerName: "elsewhere.example"}); err == nil {
		t.Fatal("handshake with an untrusted certificate succeeded")
	}
	waitFor(t, func() bool { return ps.rejected(t)[ReasonTLSHandshake]-before[ReasonTLSHandshake] == 4 })
	ps.wantRejected(t, before, map[string]float64{ReasonTLSHandshake: 4})

	if n, max := ps.logs.count(), 1+int(time.Since(start)/logEvery); n < 1 || n > max {
		t.Errorf("%d log records in %v, want 1 to %d", n, time.Since(start), max)
	}
}

// TestTLSListenerClose: Close aborts a handshake in progress (without
// counting it) and returns after its goroutine ended; Accept then fails.
func TestTLSListenerClose(t *testing.T) {
	t.Parallel()
	ps := newProxy(t, nil)
	cert, _ := testCert(t)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := ps.p.TLSListener(raw, &tls.Config{Certificates: []tls.Certificate{cert}}, 0)
	accepted := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		accepted <- err
	}()
	c := dialRaw(t, raw.Addr().String())
	before := ps.rejected(t)
	time.Sleep(50 * time.Millisecond) // let the handshake start
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; err == nil {
		t.Fatal("Accept succeeded after Close")
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("the half-open client's connection is still open (read %d)", n)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("Accept succeeded after Close")
	}
	ps.wantRejected(t, before, nil)
}

func TestRateLog(t *testing.T) {
	t.Parallel()
	h := &countingHandler{}
	l := newRateLog(slog.New(h))
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for _, ms := range []int{0, 500, 900, 1000, 1500, 2100} {
		now = time.Unix(1000, 0).Add(time.Duration(ms) * time.Millisecond)
		l.Log(slog.LevelInfo, "x")
	}
	if got, want := h.suppressedSeen(), []int64{0, 2, 1}; !slices.Equal(got, want) {
		t.Fatalf("records with suppressed %v, want %v", got, want)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countingHandler is a slog.Handler that keeps each record's "suppressed".
type countingHandler struct {
	mu         sync.Mutex
	suppressed []int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := int64(-1)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "suppressed" {
			n = a.Value.Int64()
		}
		return true
	})
	h.suppressed = append(h.suppressed, n)
	return nil
}

func (h *countingHandler) count() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.suppressed) }
func (h *countingHandler) suppressedSeen() []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int64(nil), h.suppressed...)
}

// testCert issues a server certificate for 127.0.0.1 from a test CA and
// returns it with a pool trusting the CA.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	ca := mtlstest.NewCA(t, "proxy-test-ca")
	certPEM, keyPEM := ca.Issue(t, mtlstest.Leaf{})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return cert, pool
}
