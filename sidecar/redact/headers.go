package redact

import (
	"net/http"
	"regexp"
	"strings"
)

// DefaultHeaderAllowList is the set of request/response headers an event may
// carry when the caller passes a nil allow list. Mcp-Session-Id is left out on
// purpose: a session id is a bearer credential for its session (the MCP
// capture reports it in its own field).
var DefaultHeaderAllowList = []string{
	"content-type", "content-length", "content-encoding", "user-agent", "accept",
	"accept-encoding", "x-request-id", "x-correlation-id", "traceparent", "tracestate",
	"grpc-status", "grpc-message", "grpc-encoding", "grpc-timeout", "connect-protocol-version",
	"connect-timeout-ms", "x-omninode-source-service", "mcp-protocol-version",
}

// sensitiveHeaderRE matches header names that look like they carry a credential.
var sensitiveHeaderRE = regexp.MustCompile(`(?i)(api[-_]?key|token|secret|passw(or)?d|session|credential|auth|cookie|signature)`)

// Headers returns the allow-listed headers of h with lower-case names (several
// values joined by ", "). A nil allow list means DefaultHeaderAllowList.
// Sensitive headers (the built-in and configured deny lists, and names that
// look like credentials) are REDACTED even when allow-listed; every value is
// capped and escaped. Names are matched case-insensitively.
func (r *Redactor) Headers(h http.Header, allow []string) map[string]string {
	if allow == nil {
		allow = DefaultHeaderAllowList
	}
	out := make(map[string]string, len(allow))
	for _, name := range allow {
		lname := strings.ToLower(strings.TrimSpace(name))
		vals := h.Values(lname)
		if len(vals) == 0 {
			// Values canonicalizes; try the raw key too, for headers set
			// without canonicalization (h2 trailers, hand-built maps).
			vals = h[lname]
			if len(vals) == 0 {
				continue
			}
		}
		if r.SensitiveHeader(lname) {
			out[capEscape(lname, 256)] = Redacted
			continue
		}
		out[capEscape(lname, 256)] = r.String(strings.Join(vals, ", "))
	}
	return out
}

// SensitiveHeader reports whether a header of this name is always redacted.
func (r *Redactor) SensitiveHeader(name string) bool {
	name = strings.ToLower(name)
	return r.headers[name] || sensitiveHeaderRE.MatchString(name)
}
