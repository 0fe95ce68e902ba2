package mcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/sidecar/redact"
)

// queueSize is how many complete payloads an exchange's decoder may lag
// behind the traffic before captures are dropped.
const queueSize = 64

// Capture watches MCP traffic through Wrap. It is safe for concurrent use.
type Capture struct {
	cfg  Config
	src  *bus.Source
	sink Sink
	red  *redact.Redactor
	m    *metrics
	reg  *registry
	// wg tracks the per-exchange decoder goroutines, which Capture owns.
	wg sync.WaitGroup
}

// NewCapture validates cfg and builds a Capture that emits to sink, stamping
// envelopes with src and redacting arguments and errors with red.
func NewCapture(cfg Config, src *bus.Source, sink Sink, red *redact.Redactor) (*Capture, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("create mcp capture: %w", err)
	}
	if src == nil || sink == nil || red == nil {
		return nil, errors.New("create mcp capture: source, sink and redactor are required")
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("register mcp metrics: %w", err)
	}
	c := &Capture{cfg: cfg, src: src, sink: sink, red: red, m: m}
	c.reg = newRegistry(c)
	return c, nil
}

// Drain waits until every exchange's decoder has finished (their exchanges
// must have ended) or ctx ends. Use it on shutdown, after the server stopped.
func (c *Capture) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain mcp capture: %w", ctx.Err())
	}
}

// Wrap returns next with MCP capture in front. Only POSTs with a JSON body
// and GETs that accept an event stream are watched; everything else goes
// straight to next. Watched exchanges pass through byte for byte.
func (c *Capture) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		post := r.Method == http.MethodPost && mediaType(r.Header.Get("Content-Type")) == "application/json" && r.Body != nil && r.Body != http.NoBody
		get := r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/event-stream")
		if !post && !get {
			next.ServeHTTP(w, r)
			return
		}
		ex := c.newExchange(r)
		if post {
			// A shallow copy, so the caller's request keeps its own body.
			r = r.WithContext(r.Context())
			r.Body = &teeBody{rc: r.Body, ex: ex, max: c.cfg.MaxCaptureBytes, expect: r.ContentLength}
		}
		cw := &captureWriter{ResponseWriter: w, ex: ex, max: c.cfg.MaxCaptureBytes, watchJSON: post}
		defer func() {
			cw.end()
			ex.close()
		}()
		next.ServeHTTP(cw, r)
	})
}

// teeBody copies a request body into a bounded buffer as the proxy reads it,
// and hands it to the exchange when complete.
type teeBody struct {
	rc     io.ReadCloser
	ex     *exchange
	max    int64
	expect int64 // Content-Length, or -1

	mu      sync.Mutex
	buf     []byte
	skip    bool // over max, or not JSON
	flushed bool
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	t.mu.Lock()
	if n > 0 && !t.skip && !t.flushed {
		if len(t.buf) == 0 {
			if s := strings.TrimLeft(string(p[:min(n, 64)]), " \t\r\n"); s != "" && s[0] != '{' && s[0] != '[' {
				t.skip = true // not a JSON-RPC payload; stop copying
			}
		}
		if int64(len(t.buf)+n) > t.max {
			t.skip = true
			t.buf = nil
			t.ex.c.m.dropped.WithLabelValues(dropTooLarge).Inc()
		} else if !t.skip {
			t.buf = append(t.buf, p[:n]...)
		}
	}
	complete := err == io.EOF || (t.expect > 0 && int64(len(t.buf)) == t.expect)
	t.mu.Unlock()
	if complete {
		t.flush()
	}
	return n, err
}

func (t *teeBody) Close() error {
	t.flush()
	return t.rc.Close()
}

func (t *teeBody) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.flushed {
		return
	}
	t.flushed = true
	if !t.skip && isJSONRPC(t.buf) {
		t.ex.rpc.Store(true)
		t.ex.send(payload{dir: dirRequest, data: t.buf, at: t.ex.c.cfg.Now()})
	}
	t.buf = nil
}

// captureWriter forwards every write unchanged, then copies it for capture.
type captureWriter struct {
	http.ResponseWriter
	ex        *exchange
	max       int64
	watchJSON bool // capture a JSON answer (POST exchanges only)

	decided bool
	mode    int // modeNone, modeJSON or modeSSE
	buf     []byte
	over    bool
	sse     *sseSplitter
}

const (
	modeNone = iota
	modeJSON
	modeSSE
)

func (w *captureWriter) decide(code int) {
	w.decided = true
	switch mediaType(w.Header().Get("Content-Type")) {
	case "application/json":
		// Only answers to JSON-RPC requests; a REST answer is not copied.
		if w.watchJSON && w.ex.rpc.Load() {
			w.mode = modeJSON
		}
	case "text/event-stream":
		w.mode = modeSSE
		w.sse = newSSESplitter(w.max, func(data []byte) {
			if isJSONRPC(data) {
				w.ex.send(payload{dir: dirResponse, data: data, at: w.ex.c.cfg.Now()})
			}
		})
		w.sse.dropped = func() { w.ex.c.m.dropped.WithLabelValues(dropTooLarge).Inc() }
	}
	w.ex.setStatus(code)
}

func (w *captureWriter) WriteHeader(code int) {
	if !w.decided && code >= 200 {
		w.decide(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *captureWriter) Write(p []byte) (int, error) {
	if !w.decided {
		w.decide(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	switch w.mode {
	case modeJSON:
		if !w.over {
			if int64(len(w.buf)+n) > w.max {
				w.over, w.buf = true, nil
				w.ex.c.m.dropped.WithLabelValues(dropTooLarge).Inc()
			} else {
				w.buf = append(w.buf, p[:n]...)
			}
		}
	case modeSSE:
		w.sse.write(p[:n])
	}
	return n, err
}

// Flush flushes the underlying writer (event streams must not be buffered).
func (w *captureWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer (flush,
// hijack, deadlines).
func (w *captureWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// end hands a complete JSON answer to the exchange.
func (w *captureWriter) end() {
	if w.mode == modeJSON && !w.over && isJSONRPC(w.buf) {
		w.ex.send(payload{dir: dirResponse, data: w.buf, at: w.ex.c.cfg.Now()})
		w.buf = nil
	}
}

// isJSONRPC is a cheap filter run before a payload is queued: JSON-RPC
// payloads carry a "jsonrpc" member. Anything else (REST bodies, other
// event streams) never reaches the decoder.
func isJSONRPC(b []byte) bool {
	return len(b) > 0 && bytes.Contains(b, []byte(`"jsonrpc"`))
}
