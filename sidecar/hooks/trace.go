package hooks

import (
	"encoding/hex"
	"net/http"
	"strings"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// traceFrom parses the W3C traceparent header of a hook request; nil when
// absent or malformed (a bad traceparent is ignored, not rejected, as W3C
// Trace Context asks).
func traceFrom(h http.Header) *bridgev1.TraceContext {
	tp := strings.TrimSpace(h.Get("traceparent"))
	parts := strings.Split(tp, "-")
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return nil
	}
	if parts[0] == "00" && len(parts) != 4 {
		return nil
	}
	var flags [1]byte
	for _, p := range parts[:4] {
		if !isLowerHex(p) {
			return nil
		}
	}
	if _, err := hex.Decode(flags[:], []byte(parts[3])); err != nil {
		return nil
	}
	if parts[1] == strings.Repeat("0", 32) || parts[2] == strings.Repeat("0", 16) {
		return nil
	}
	return &bridgev1.TraceContext{TraceId: parts[1], SpanId: parts[2], TraceFlags: uint32(flags[0])}
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
