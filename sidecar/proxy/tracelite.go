package proxy

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"

	"go.opentelemetry.io/otel/trace"
)

// Without a configured TracerProvider the proxy does not create SDK spans:
// spans that are never exported only need ids, for the event and for
// propagation. liteTrace does what the SDK with a ParentBased(NeverSample)
// sampler and the W3C TraceContext propagator would do, without the
// allocations: it parses the incoming traceparent (and tracestate) the same
// way, makes a server span id (and a trace id for a root), a client span id
// for the upstream hop, keeps the parent's flags (the sampled bit honoured,
// as ParentBased does), and writes the upstream's traceparent itself.

// liteTrace is the trace state of one request, kept in the pooled exchange.
type liteTrace struct {
	parentSpan [8]byte
	hasParent  bool
	traceID    [16]byte
	spanID     [8]byte // server span
	clientID   [8]byte // client (upstream) span
	flags      byte
	state      string // tracestate to propagate ("" when none or invalid)
	// text holds, in one allocation: "00-<trace>-<client span>-<flags>"
	// (the upstream traceparent, 55 bytes), then the server span id (16) and
	// the parent span id (16, when there is a parent).
	text string
}

const traceparentLen = 55

// start fills t for a request with headers h.
func (t *liteTrace) start(h http.Header) {
	*t = liteTrace{}
	if tp := h["Traceparent"]; len(tp) > 0 {
		if tid, sid, flags, ok := parseTraceparent(tp[0]); ok {
			t.traceID, t.parentSpan, t.flags, t.hasParent = tid, sid, flags, true
			if ts := h["Tracestate"]; len(ts) > 0 && ts[0] != "" {
				// The same parsing (and normalisation) the propagator does;
				// an invalid tracestate is dropped, the traceparent kept.
				if st, err := trace.ParseTraceState(h.Get("Tracestate")); err == nil {
					t.state = st.String()
				}
			}
		}
	}
	if !t.hasParent {
		for t.traceID == ([16]byte{}) {
			putUint64(t.traceID[:8], rand.Uint64())
			putUint64(t.traceID[8:], rand.Uint64())
		}
	}
	t.spanID = newSpanID()
	t.clientID = newSpanID()

	n := traceparentLen + 16
	if t.hasParent {
		n += 16
	}
	b := make([]byte, n)
	copy(b, "00-")
	hex.Encode(b[3:35], t.traceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], t.clientID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{t.flags})
	hex.Encode(b[55:71], t.spanID[:])
	if t.hasParent {
		hex.Encode(b[71:87], t.parentSpan[:])
	}
	t.text = string(b)
}

func (t *liteTrace) traceparent() string { return t.text[:traceparentLen] }
func (t *liteTrace) traceIDHex() string  { return t.text[3:35] }
func (t *liteTrace) spanIDHex() string   { return t.text[55:71] }
func (t *liteTrace) parentIDHex() string {
	if !t.hasParent {
		return ""
	}
	return t.text[71:87]
}

func newSpanID() (id [8]byte) {
	for id == ([8]byte{}) {
		putUint64(id[:], rand.Uint64())
	}
	return id
}

func putUint64(b []byte, v uint64) {
	_ = b[7]
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// parseTraceparent parses a W3C traceparent as the OpenTelemetry
// TraceContext propagator does: lower-case hex, version ff refused, version
// 00 exactly four fields with flags <= 3, later versions may carry more
// fields; an all-zero trace or span id is invalid. Only the sampled and
// random flags are kept.
func parseTraceparent(h string) (tid [16]byte, sid [8]byte, flags byte, ok bool) {
	var ver [1]byte
	if !hexPart(ver[:], &h, 2) || ver[0] > 254 {
		return tid, sid, 0, false
	}
	if !hexPart(tid[:], &h, 32) || !hexPart(sid[:], &h, 16) {
		return tid, sid, 0, false
	}
	var opts [1]byte
	if !hexPart(opts[:], &h, 2) {
		return tid, sid, 0, false
	}
	if ver[0] == 0 && (h != "" || opts[0] > 3) {
		return tid, sid, 0, false
	}
	if tid == ([16]byte{}) || sid == ([8]byte{}) {
		return tid, sid, 0, false
	}
	return tid, sid, opts[0] & byte(trace.FlagsSampled|trace.FlagsRandom), true
}

// hexPart cuts the next '-'-separated part of *h, which must be n lower-case
// hex digits, into dst.
func hexPart(dst []byte, h *string, n int) bool {
	s := *h
	part, rest := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			part, rest = s[:i], s[i+1:]
			break
		}
	}
	*h = rest
	if len(part) != n {
		return false
	}
	for i := 0; i < n; i += 2 {
		hi, ok1 := unhex(part[i])
		lo, ok2 := unhex(part[i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i/2] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
