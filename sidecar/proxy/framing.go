package proxy

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
)

// Go's HTTP/1 server already refuses, with 400, requests with conflicting
// Content-Length headers, invalid Content-Length values, more than one
// Transfer-Encoding or one that is not "chunked" (501), invalid header
// names or values, and more than one Host. It accepts a request with both
// Content-Length and Transfer-Encoding: chunked by dropping Content-Length
// (RFC 9112 §6.3 allows that), which leaves no trace in the *http.Request.
// RFC 9112 also says such a message "ought to be handled as an error", so
// the proxy refuses it; to see it, a framingConn notes the header lines
// that pass through each HTTP/1 connection.
//
// The scan is a heuristic over raw bytes (header names at line starts): it
// is reset when a request's handler returns, so body bytes do not leak into
// the next request's check. A header line split across two reads, or a
// pipelined request read ahead, can escape it; such a request is then
// handled as Go handles it (chunked wins, Content-Length removed), which is
// unambiguous towards the upstream. HTTP/1 over TLS is scanned after the
// proxy's own TLS termination (TLSListener); HTTP/2 needs no scan, as it
// frames messages itself.

const (
	sawCL uint32 = 1 << iota
	sawTE
)

type framingListener struct{ net.Listener }

// FramingListener wraps a plain-TCP listener so that the proxy can refuse
// requests carrying both Content-Length and Transfer-Encoding. Use it with
// ConnContext on the http.Server.
func FramingListener(l net.Listener) net.Listener { return framingListener{l} }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, lineStart: true}, nil
}

type framingConn struct {
	net.Conn
	lineStart bool // the last byte read was '\n' (read goroutine only)
	flags     atomic.Uint32
}

func (c *framingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.scan(b[:n])
	}
	return n, err
}

// CloseWrite half-closes the TCP connection beneath, as http.Server does
// after a 431 answer (so the client sees the end at once).
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *framingConn) scan(p []byte) {
	var f uint32
	if c.lineStart {
		f |= lineFlag(p)
	}
	for i := 0; i < len(p); {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
		f |= lineFlag(p[i:])
	}
	c.lineStart = p[len(p)-1] == '\n'
	if f != 0 {
		c.flags.Or(f)
	}
}

func lineFlag(line []byte) uint32 {
	if len(line) == 0 {
		return 0
	}
	switch line[0] | 0x20 {
	case 'c':
		if hasPrefixFold(line, "content-length") {
			return sawCL
		}
	case 't':
		if hasPrefixFold(line, "transfer-encoding") {
			return sawTE
		}
	}
	return 0
}

func hasPrefixFold(b []byte, prefix string) bool {
	if len(b) <= len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if b[i]|0x20 != prefix[i] {
			return false
		}
	}
	c := b[len(prefix)]
	return c == ':' || c == ' ' || c == '\t'
}

type connKey struct{}

// ConnContext is the http.Server ConnContext hook that pairs with
// FramingListener (also beneath Proxy.Listener) and TLSListener.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := unwatched(c).(*framingConn); ok {
		return context.WithValue(ctx, connKey{}, fc)
	}
	return ctx
}

// framingError returns why a request must be refused (a metric label and
// a message), or "".
func framingError(r *http.Request) (string, string) {
	if r.ProtoMajor == 1 {
		if fc, ok := r.Context().Value(connKey{}).(*framingConn); ok {
			f := fc.flags.Load()
			if len(r.TransferEncoding) > 0 && f&sawCL != 0 {
				return "cl_and_te", "both Content-Length and Transfer-Encoding"
			}
		}
	}
	// Connection may name hop-by-hop headers; naming the headers that frame
	// or route the message would make the proxy strip them and reframe.
	for _, v := range r.Header["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			switch strings.ToLower(strings.TrimSpace(tok)) {
			case "content-length", "transfer-encoding", "host":
				return "connection_names_framing", "Connection header names " + strings.ToLower(strings.TrimSpace(tok))
			}
		}
	}
	return "", ""
}

// resetFraming clears the connection's scan after a request is handled.
func resetFraming(r *http.Request) {
	if fc, ok := r.Context().Value(connKey{}).(*framingConn); ok {
		fc.flags.Store(0)
	}
}
