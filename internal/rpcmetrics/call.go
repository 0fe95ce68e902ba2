package rpcmetrics

import (
	"net/http"
	"sync/atomic"

	"connectrpc.com/connect"
)

// headBytes is how much of a response body is kept while the call has not
// reached its handler: enough for the code of a Connect error or end-stream
// message (the code comes first), also gzipped.
const headBytes = 256

// call is one observed call: the response writer handed to the service,
// and what the interceptor saw. It is allocated once per call and never
// reused (a stream's receiving goroutine may outlive the handler).
type call struct {
	rw      http.ResponseWriter
	flusher http.Flusher // rw's, when it has one

	// Written by the interceptor, possibly from another goroutine.
	reached  atomic.Bool   // the service's handler (or stream) was called
	recvCode atomic.Uint32 // the first refused stream message's code

	// Written by the serving goroutine only.
	status int
	n      int
	head   [headBytes]byte // the body's first bytes, kept until reached
}

func newCall(w http.ResponseWriter) *call {
	c := &call{rw: w}
	c.flusher, _ = w.(http.Flusher)
	return c
}

// Header implements http.ResponseWriter.
func (c *call) Header() http.Header { return c.rw.Header() }

// WriteHeader implements http.ResponseWriter.
func (c *call) WriteHeader(status int) {
	if c.status == 0 && status >= 200 {
		c.status = status
	}
	c.rw.WriteHeader(status)
}

// Write implements http.ResponseWriter. It keeps the first bytes of a call
// that never reached its handler (a refusal is short); after that it only
// passes the bytes on.
func (c *call) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.n < len(c.head) && !c.reached.Load() {
		c.n += copy(c.head[c.n:], p)
	}
	return c.rw.Write(p)
}

// Flush implements http.Flusher: streaming responses are never held back.
func (c *call) Flush() {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.flusher != nil {
		c.flusher.Flush()
		return
	}
	_ = http.NewResponseController(c.rw).Flush()
}

// Unwrap gives http.ResponseController the underlying writer (full duplex,
// deadlines, hijacking).
func (c *call) Unwrap() http.ResponseWriter { return c.rw }

// refusal returns the code of a refused call after its handler returned, or
// 0 (connect has no code for OK) when the call was not refused: either a
// stream message failed to arrive, or the call ended in an error without
// reaching its handler.
func (c *call) refusal() connect.Code {
	if c.reached.Load() {
		return connect.Code(c.recvCode.Load())
	}
	return responseCode(c.rw.Header(), c.status, c.head[:c.n])
}

var _ http.Flusher = (*call)(nil)
