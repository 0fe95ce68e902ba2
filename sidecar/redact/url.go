package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// sensitiveParamRE matches query parameter names that look like credentials
// (besides the exact deny list).
var sensitiveParamRE = regexp.MustCompile(`(?i)(token|secret|passw(or)?d|signature|credential|api[-_]?key|private[-_]?key)`)

// URL renders the path and query of u for an event: userinfo, scheme, host
// and fragment are dropped; the values of credential-like and signed query
// parameters are replaced by REDACTED (the rest of the query is kept as sent,
// in order); the result is escaped and capped at MaxURLBytes.
func (r *Redactor) URL(u *url.URL) string {
	if u == nil {
		return ""
	}
	path := u.EscapedPath()
	if u.Opaque != "" {
		// An opaque URL ("mailto:x", or a request line with an odd form)
		// may carry anything; keep only what a path can hold.
		path = u.Opaque
		if i := strings.IndexByte(path, '@'); i >= 0 {
			path = Redacted + path[i:]
		}
	}
	s := path
	if q := r.Query(u.RawQuery); q != "" || u.ForceQuery {
		s += "?" + q
	}
	return capEscape(s, r.cfg.MaxURLBytes)
}

// Query redacts a raw query string (without the leading '?'), keeping the
// order and encoding of the parameters that are not sensitive.
func (r *Redactor) Query(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		k, _, hasEq := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if r.SensitiveParam(name) {
			parts[i] = k + "=" + Redacted
			continue
		}
		// A bare value with no name might be a credential pasted into the
		// query ("?sk-123..."); values under a harmless name stay.
		if !hasEq && looksLikeSecret(name) {
			parts[i] = Redacted
			continue
		}
	}
	return strings.Join(parts, "&")
}

// SensitiveParam reports whether a query parameter of this name is redacted.
func (r *Redactor) SensitiveParam(name string) bool {
	name = strings.ToLower(strings.TrimSpace(name))
	return r.params[name] || sensitiveParamRE.MatchString(name)
}

// looksLikeSecret reports long opaque tokens: at least 24 characters of
// base64/hex-like text with both letters and digits.
func looksLikeSecret(s string) bool {
	if len(s) < 24 {
		return false
	}
	var letters, digits bool
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			letters = true
		case c == '-', c == '_', c == '.', c == '+', c == '/', c == '=':
		default:
			return false
		}
	}
	return letters && digits
}
