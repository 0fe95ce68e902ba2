package proxy

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Go's HTTP/1 server answers a request it cannot parse (a garbage request
// line, a bad header line, conflicting Content-Lengths, headers over
// MaxHeaderBytes, a transfer coding it does not implement, an HTTP version
// it does not serve) itself, before any handler runs: net/http's
// (*conn).serve writes the answer straight to the connection with one
// fmt.Fprintf and closes it. The proxy never sees those requests, so a
// watchConn between http.Server and the client's bytes recognises the
// answer as it is written and counts it in requests_rejected_total.
//
// The answer's form (checked against Go's bytes by TestGoRefusalBytes):
//
//	HTTP/1.1 <status line>\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n<body>
//
// in a single Write, where the body repeats the status line after
// "HTTP/1.1 ", except for 501, whose body is "Unsupported transfer
// encoding". A response written through a ResponseWriter never has this
// form: it always carries a Date header, and its headers are sorted
// (Connection before Content-Type). Only a Write that is exactly such an
// answer counts, so a response body that merely contains one does not.
// Once a connection is hijacked (a WebSocket upgrade) its bytes are the
// upgraded protocol's and are not looked at.
const (
	refusalStart   = "HTTP/1.1 "
	refusalHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	refusal501Body = "Unsupported transfer encoding"
)

// Reasons (requests_rejected_total labels) of the refusals the proxy sees
// only at the connection.
const (
	ReasonBadRequest         = "bad_request"         // 400 from the parser: request line, header line, Content-Length, Host...
	ReasonHeadersTooLarge    = "headers_too_large"   // 431: headers over MaxHeaderBytes
	ReasonNotImplemented     = "not_implemented"     // 501: a Transfer-Encoding other than chunked
	ReasonUnsupportedVersion = "unsupported_version" // 505: an HTTP version other than 1.x
	ReasonHTTPParse          = "http_parse"          // another status in the same form (a newer Go)
	ReasonTLSHandshake       = "tls_handshake"       // a failed TLS handshake (plain HTTP on the TLS port included)
)

var refusalHeadersBytes = []byte(refusalHeaders)

// refusalStatus returns the status code if b is exactly Go's own answer to
// an unparsable request, else 0. It does not allocate; a 1xx to 3xx
// response is told apart within its first 13 bytes, any other by its first
// line and the headers after it.
func refusalStatus(b []byte) int {
	const minLen = len(refusalStart) + 4 + len(refusalHeaders)
	if len(b) < minLen || string(b[:len(refusalStart)]) != refusalStart {
		return 0
	}
	d := b[len(refusalStart):]
	if d[0] < '4' || d[0] > '5' || d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9' || d[3] != ' ' {
		return 0
	}
	code := int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0')
	eol := bytes.IndexByte(d, '\r')
	if eol < 0 || !bytes.HasPrefix(d[eol:], refusalHeadersBytes) {
		return 0
	}
	line, body := d[:eol], d[eol+len(refusalHeaders):]
	if bytes.Equal(body, line) || code == 501 && string(body) == refusal501Body {
		return code
	}
	return 0
}

// refusals counts and logs what the listeners refuse.
type refusals struct {
	badRequest, tooLarge, notImpl, version, other, handshake prometheus.Counter
	log                                                      *rateLog
}

func newRefusals(m *metrics, log *slog.Logger) *refusals {
	r := m.rejected
	return &refusals{
		badRequest: r.WithLabelValues(ReasonBadRequest),
		tooLarge:   r.WithLabelValues(ReasonHeadersTooLarge),
		notImpl:    r.WithLabelValues(ReasonNotImplemented),
		version:    r.WithLabelValues(ReasonUnsupportedVersion),
		other:      r.WithLabelValues(ReasonHTTPParse),
		handshake:  r.WithLabelValues(ReasonTLSHandshake),
		log:        newRateLog(log),
	}
}

// refused counts one parser refusal with the given status.
func (r *refusals) refused(status int, remote net.Addr) {
	c, reason := r.other, ReasonHTTPParse
	switch status {
	case 400:
		c, reason = r.badRequest, ReasonBadRequest
	case 431:
		c, reason = r.tooLarge, ReasonHeadersTooLarge
	case 501:
		c, reason = r.notImpl, ReasonNotImplemented
	case 505:
		c, reason = r.version, ReasonUnsupportedVersion
	}
	c.Inc()
	r.log.Log(slog.LevelInfo, "proxy: malformed request refused by the HTTP parser",
		"reason", reason, "status", status, "remote", addrString(remote))
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// watchListener wraps every accepted connection in a watchConn.
type watchListener struct {
	net.Listener
	r *refusals
}

// Listener wraps l, the listener the proxy's http.Server serves (plain TCP,
// after FramingListener if used), so that the requests Go's HTTP parser
// refuses before the proxy sees them are counted in
// omnibridge_sidecar_requests_rejected_total (reasons bad_request,
// headers_too_large, not_implemented, unsupported_version). For a TLS
// listener use TLSListener instead.
func (p *Proxy) Listener(l net.Listener) net.Listener {
	return watchListener{Listener: l, r: p.refusals()}
}

func (p *Proxy) refusals() *refusals {
	p.refusalsOnce.Do(func() { p.refused = newRefusals(p.metrics, p.log) })
	return p.refused
}

func (l watchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchConn{Conn: c, r: l.r}, nil
}

// watchConn is the plaintext view of a connection as http.Server writes
// it; it counts Go's own refusals (see refusalStatus).
type watchConn struct {
	net.Conn
	r        *refusals
	hijacked atomic.Bool
}

func (c *watchConn) Write(b []byte) (int, error) {
	// Counted before the bytes leave, so that a client that has read the
	// answer finds it counted.
	if len(b) > 0 && b[0] == 'H' && !c.hijacked.Load() {
		if status := refusalStatus(b); status != 0 {
			c.r.refused(status, c.RemoteAddr())
		}
	}
	return c.Conn.Write(b)
}

// CloseWrite half-closes the connection when the one beneath can (a TCP or
// TLS connection), as http.Server does after a 431 answer.
func (c *watchConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *watchConn) watched() *watchConn { return c }

// tlsWatchConn is a watchConn over an HTTP/1 TLS connection. http.Server
// sets Request.TLS from its ConnectionState.
type tlsWatchConn struct {
	watchConn
	tc *tls.Conn
}

func (c *tlsWatchConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// watcher is implemented by the connections a proxy listener hands out.
type watcher interface{ watched() *watchConn }

// stopWatching stops looking at a connection's writes (it was hijacked).
func stopWatching(c net.Conn) {
	if w, ok := c.(watcher); ok {
		w.watched().hijacked.Store(true)
	}
}

// unwatched returns the connection beneath a watchConn, or c.
func unwatched(c net.Conn) net.Conn {
	if w, ok := c.(watcher); ok {
		return w.watched().Conn
	}
	return c
}
