package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
)

// Header names the demo services forward on every call.
const (
	HeaderTraceparent   = "traceparent"
	HeaderCorrelationID = "X-Correlation-Id"
	HeaderSessionID     = "X-Session-Id"
	HeaderVersion       = "X-Service-Version"
)

// callMeta is the propagated context of one request.
type callMeta struct {
	traceID       string // 32 hex
	spanID        string // 16 hex: this service's span
	correlationID string
	sessionID     string
}

type metaKey struct{}

func withMeta(ctx context.Context, m callMeta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

func metaFrom(ctx context.Context) (callMeta, bool) {
	m, ok := ctx.Value(metaKey{}).(callMeta)
	return m, ok
}

// incomingMeta reads the propagation headers of r, starting a new trace when
// there is none, and gives this hop its own span id.
func incomingMeta(r *http.Request) callMeta {
	m := callMeta{
		correlationID: r.Header.Get(HeaderCorrelationID),
		sessionID:     r.Header.Get(HeaderSessionID),
	}
	if tid, ok := parseTraceparent(r.Header.Get(HeaderTraceparent)); ok {
		m.traceID = tid
	} else {
		m.traceID = randHex(16)
	}
	m.spanID = randHex(8)
	if m.correlationID == "" {
		m.correlationID = m.traceID
	}
	return m
}

// apply sets the propagation headers for an outgoing call: same trace, a new
// span id per call, same correlation and session ids.
func (m callMeta) apply(h http.Header) {
	if m.traceID == "" {
		return
	}
	h.Set(HeaderTraceparent, "00-"+m.traceID+"-"+randHex(8)+"-01")
	if m.correlationID != "" {
		h.Set(HeaderCorrelationID, m.correlationID)
	}
	if m.sessionID != "" {
		h.Set(HeaderSessionID, m.sessionID)
	}
}

// parseTraceparent returns the trace id of a W3C traceparent header.
func parseTraceparent(v string) (string, bool) {
	parts := strings.Split(strings.TrimSpace(v), "-")
	if len(parts) != 4 || len(parts[1]) != 32 || len(parts[2]) != 16 {
		return "", false
	}
	if _, err := hex.DecodeString(parts[1]); err != nil || parts[1] == strings.Repeat("0", 32) {
		return "", false
	}
	return strings.ToLower(parts[1]), true
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// propagatingTransport copies the propagation headers of the request's
// context onto every outgoing request (used for the MCP client, whose
// requests the SDK builds).
type propagatingTransport struct{ base http.RoundTripper }

func (t propagatingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if m, ok := metaFrom(r.Context()); ok {
		r = r.Clone(r.Context())
		m.apply(r.Header)
	}
	return t.base.RoundTrip(r)
}
