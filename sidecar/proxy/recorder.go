package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// sniff modes: what the recorder looks for in the response body.
const (
	sniffNone          = iota
	sniffConnectUnary  // a Connect unary error body: {"code": "..."}
	sniffConnectStream // the Connect end-stream message: {"error": {"code": "..."}}
)

// maxSniff bounds the bytes kept to find a Connect code.
const maxSniff = 4 << 10

// recorder is the ResponseWriter the proxy hands down: it notes the status,
// the time to the first byte, the bytes written, and finds Connect codes in
// the body as it streams past. It keeps Flush, Hijack and Unwrap working.
type recorder struct {
	w        http.ResponseWriter
	start    time.Time
	status   int
	ttfb     time.Duration
	bytes    int64
	mode     int
	sniffed  []byte
	rpcCode  string
	hijacked *countingConn
	// Connect stream envelope parser.
	hdr       [5]byte
	hdrN      int
	remaining uint32
	endStream bool
	flags     byte
}

func (rec *recorder) reset(w http.ResponseWriter, start time.Time, mode int) {
	sn := rec.sniffed[:0]
	*rec = recorder{w: w, start: start, mode: mode, sniffed: sn}
}

func (rec *recorder) Header() http.Header { return rec.w.Header() }

func (rec *recorder) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		rec.w.WriteHeader(code) // informational: not the final status
		return
	}
	if rec.status == 0 {
		rec.status = code
		rec.ttfb = time.Since(rec.start)
	}
	rec.w.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}
	n, err := rec.w.Write(b)
	rec.bytes += int64(n)
	switch rec.mode {
	case sniffConnectUnary:
		if rec.status != http.StatusOK && len(rec.sniffed) < maxSniff {
			rec.sniffed = append(rec.sniffed, b[:min(n, maxSniff-len(rec.sniffed))]...)
		}
	case sniffConnectStream:
		rec.parseEnvelopes(b[:n])
	}
	return n, err
}

// parseEnvelopes follows Connect streaming envelopes (flags byte, uint32
// length, payload) and keeps the end-stream message (flag 0x02).
func (rec *recorder) parseEnvelopes(b []byte) {
	for len(b) > 0 {
		if rec.remaining == 0 && rec.hdrN < 5 {
			c := copy(rec.hdr[rec.hdrN:], b)
			rec.hdrN += c
			b = b[c:]
			if rec.hdrN < 5 {
				return
			}
			rec.flags = rec.hdr[0]
			rec.remaining = binary.BigEndian.Uint32(rec.hdr[1:])
			if rec.flags&0x02 != 0 {
				rec.endStream = true
				rec.sniffed = rec.sniffed[:0]
			}
			if rec.remaining == 0 {
				rec.hdrN = 0
			}
			continue
		}
		take := min(uint32(len(b)), rec.remaining)
		if rec.flags&0x02 != 0 && len(rec.sniffed) < maxSniff {
			rec.sniffed = append(rec.sniffed, b[:min(int(take), maxSniff-len(rec.sniffed))]...)
		}
		rec.remaining -= take
		b = b[take:]
		if rec.remaining == 0 {
			rec.hdrN = 0
		}
	}
}

// connectCode returns the Connect code of the exchange, or "" when the
// body did not carry one.
func (rec *recorder) connectCode() string {
	switch rec.mode {
	case sniffConnectUnary:
		if rec.status == http.StatusOK {
			return "ok"
		}
		var e struct {
			Code string `json:"code"`
		}
		if json.Unmarshal(rec.sniffed, &e) == nil && validCode(e.Code) {
			return e.Code
		}
		return codeFromHTTP(rec.status)
	case sniffConnectStream:
		if !rec.endStream {
			return ""
		}
		body := rec.sniffed
		if rec.flags&0x01 != 0 {
			// Compressed end-stream message; connect-go compresses by default.
			if rec.w == nil || rec.w.Header().Get("Connect-Content-Encoding") != "gzip" {
				return ""
			}
			zr, err := gzip.NewReader(bytes.NewReader(rec.sniffed))
			if err != nil {
				return ""
			}
			if body, err = io.ReadAll(io.LimitReader(zr, maxSniff)); err != nil {
				return ""
			}
		}
		var e struct {
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil {
			return ""
		}
		if e.Error == nil {
			return "ok"
		}
		if validCode(e.Error.Code) {
			return e.Error.Code
		}
		return "unknown"
	}
	return ""
}

func (rec *recorder) Flush() { _ = rec.FlushError() }

func (rec *recorder) FlushError() error {
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(rec.w).Flush()
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.w }

// Hijack hands the connection over for a protocol switch (WebSocket) and
// keeps counting the bytes that cross it.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(rec.w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	stopWatching(c) // the bytes are the upgraded protocol's from now on
	rec.status = http.StatusSwitchingProtocols
	rec.ttfb = time.Since(rec.start)
	cc := &countingConn{Conn: c}
	rec.hijacked = cc
	brw.Writer.Reset(cc)
	return cc, brw, nil
}

// countingConn counts the bytes of a hijacked connection (read: from the
// client; written: to the client).
type countingConn struct {
	net.Conn
	read, written atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

// countingBody counts the request body bytes the upstream read, and notes
// an error reading them (a malformed chunked body). The transport may read
// it from another goroutine, hence the atomics.
type countingBody struct {
	rc  io.ReadCloser
	n   atomic.Int64
	bad atomic.Bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	if err != nil && err != io.EOF {
		b.bad.Store(true)
	}
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

var grpcCodes = [...]string{"ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded",
	"not_found", "already_exists", "permission_denied", "resource_exhausted", "failed_precondition",
	"aborted", "out_of_range", "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated"}

// grpcCode maps a grpc-status value to its snake-case name.
func grpcCode(s string) string {
	if s == "" {
		return ""
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' || i > 2 {
			return "unknown"
		}
		n = n*10 + int(s[i]-'0')
	}
	if n < len(grpcCodes) {
		return grpcCodes[n]
	}
	return "unknown"
}

func validCode(c string) bool {
	for _, k := range grpcCodes[1:] {
		if c == k {
			return true
		}
	}
	return false
}

// codeFromHTTP is the Connect protocol's mapping for error bodies that do
// not carry a code.
func codeFromHTTP(status int) string {
	switch status {
	case 400:
		return "internal"
	case 401:
		return "unauthenticated"
	case 403:
		return "permission_denied"
	case 404:
		return "unimplemented"
	case 429, 502, 503, 504:
		return "unavailable"
	}
	return "unknown"
}
