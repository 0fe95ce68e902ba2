package rpcmetrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
)

// The wrapped writer flushes, unwraps for http.ResponseController, and
// keeps only the start of a body that has not reached its handler.
func TestCallWriter(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	c := newCall(rec)
	if c.Unwrap() != rec {
		t.Fatal("Unwrap does not return the underlying writer")
	}
	if err := http.NewResponseController(c).Flush(); err != nil || !rec.Flushed {
		t.Fatalf("flush through http.ResponseController: %v, flushed %v", err, rec.Flushed)
	}
	if c.status != http.StatusOK {
		t.Fatalf("status after flush %d", c.status)
	}
	big := make([]byte, 2*headBytes)
	_, _ = c.Write(big)
	if c.n != headBytes || rec.Body.Len() != len(big) {
		t.Fatalf("kept %d bytes, passed %d; want %d and %d", c.n, rec.Body.Len(), headBytes, len(big))
	}
	// Without a Flusher, Flush goes through http.ResponseController
	// (which reports ErrNotSupported: nothing to do).
	var plain struct{ http.ResponseWriter }
	plain.ResponseWriter = httptest.NewRecorder()
	newCall(plain).Flush()
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Flush()                      {}

type nopConn struct{ connect.StreamingHandlerConn }

func (nopConn) Receive(any) error { return nil }

// Nothing is allocated per stream message: not by Write and Flush once the
// call reached its handler, not by Receive.
func TestNoAllocationsPerMessage(t *testing.T) {
	c := newCall(&discard{h: http.Header{}})
	c.reached.Store(true)
	frame := make([]byte, 64)
	if n := testing.AllocsPerRun(1000, func() {
		_, _ = c.Write(frame)
		c.Flush()
	}); n != 0 {
		t.Errorf("Write+Flush allocate %v times", n)
	}
	rc := &receiveConn{StreamingHandlerConn: nopConn{}, c: c}
	var msg struct{}
	if n := testing.AllocsPerRun(1000, func() { _ = rc.Receive(&msg) }); n != 0 {
		t.Errorf("Receive allocates %v times", n)
	}
}

// Receive errors that mean the peer went away are not refusals.
func TestRefused(t *testing.T) {
	t.Parallel()
	for code, want := range map[connect.Code]bool{
		connect.CodeCanceled: false, connect.CodeDeadlineExceeded: false, connect.CodeUnknown: false,
		connect.CodeInvalidArgument: true, connect.CodeInternal: true, connect.CodeResourceExhausted: true, connect.CodePermissionDenied: true,
	} {
		if refused(code) != want {
			t.Errorf("refused(%v) = %v, want %v", code, !want, want)
		}
	}
	// And the interceptor passes calls without the middleware through.
	var called bool
	h := interceptor{}.WrapStreamingHandler(func(context.Context, connect.StreamingHandlerConn) error { called = true; return errors.New("x") })
	if err := h(context.Background(), nopConn{}); err == nil || !called {
		t.Fatal("stream without middleware not passed through")
	}
}
