package mcp

import (
	"encoding/hex"
	"net/http"
	"strings"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// traceFrom parses a W3C traceparent header; nil when absent or malformed.
func traceFrom(h http.Header) *bridgev1.TraceContext {
	parts := strings.Split(strings.TrimSpace(h.Get("traceparent")), "-")
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return nil
	}
	if parts[0] == "00" && len(parts) != 4 {
		return nil
	}
	var b [16]byte
	for _, p := range parts[:4] {
		if strings.ToLower(p) != p {
			return nil
		}
		if _, err := hex.Decode(b[:len(p)/2], []byte(p)); err != nil {
			return nil
		}
	}
	if parts[1] == strings.Repeat("0", 32) || parts[2] == strings.Repeat("0", 16) {
		return nil
	}
	flags, _ := hex.DecodeString(parts[3])
	return &bridgev1.TraceContext{TraceId: parts[1], SpanId: parts[2], TraceFlags: uint32(flags[0])}
}
