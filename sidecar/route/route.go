// Package route turns a request path into a route template of bounded
// cardinality ("/orders/{id}"), for metric labels and communication events.
//
// Configured patterns ("/orders/{id}/items/{item}") win; otherwise a
// heuristic replaces path segments that look like identifiers (numbers,
// UUIDs, long hex strings, long tokens mixing letters and digits) with
// "{id}". gRPC and Connect paths ("/pkg.Service/Method") are kept as they
// are. It must not allocate when the path needs no change.
package route

import (
	"strings"
)

// Limits on a template, so that a hostile path cannot make one label large.
const (
	// MaxSegments is the number of path segments kept; the rest become "{rest}".
	MaxSegments = 8
	// MaxSegmentLen is the longest segment kept verbatim; longer ones are "{id}".
	MaxSegmentLen = 48
)

// Templater maps paths to route templates. The zero value uses the
// heuristic only. It is safe for concurrent use (read-only after New).
type Templater struct {
	patterns [][]string
	raw      []string
}

// New returns a Templater with the given patterns, tried in order. A
// pattern segment in braces ("{id}") matches any one segment; "{rest...}"
// as the last segment matches the rest of the path.
func New(patterns []string) *Templater {
	t := &Templater{}
	for _, p := range patterns {
		p = "/" + strings.Trim(p, "/")
		t.patterns = append(t.patterns, strings.Split(strings.TrimPrefix(p, "/"), "/"))
		t.raw = append(t.raw, p)
	}
	return t
}

// Template returns the route template for path.
func (t *Templater) Template(path string) string {
	if path == "" || path[0] != '/' {
		return "/"
	}
	if t != nil {
		for i, p := range t.patterns {
			if match(p, path[1:]) {
				return t.raw[i]
			}
		}
	}
	if isRPC(path) {
		return path
	}
	return heuristic(path)
}

func match(pattern []string, rest string) bool {
	for i, ps := range pattern {
		if strings.HasPrefix(ps, "{") && strings.HasSuffix(ps, "...}") && i == len(pattern)-1 {
			return true
		}
		seg, tail, more := strings.Cut(rest, "/")
		if ps != seg && !(strings.HasPrefix(ps, "{") && strings.HasSuffix(ps, "}") && seg != "") {
			return false
		}
		if i == len(pattern)-1 {
			return !more || tail == ""
		}
		if !more {
			return false
		}
		rest = tail
	}
	return false
}

// isRPC reports a gRPC/Connect path: exactly two segments, the first a
// dotted service name.
func isRPC(path string) bool {
	svc, method, ok := strings.Cut(path[1:], "/")
	return ok && strings.Contains(svc, ".") && method != "" && !strings.Contains(method, "/") &&
		len(path) <= 256 && plain(svc) && plain(method)
}

func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func heuristic(path string) string {
	// Fast path: no segment needs replacing.
	if !needsChange(path) {
		return path
	}
	var b strings.Builder
	b.Grow(len(path))
	rest := path[1:]
	for n := 0; ; n++ {
		seg, tail, more := strings.Cut(rest, "/")
		b.WriteByte('/')
		if n == MaxSegments {
			b.WriteString("{rest}")
			break
		}
		if isID(seg) {
			b.WriteString("{id}")
		} else {
			b.WriteString(seg)
		}
		if !more {
			break
		}
		rest = tail
	}
	return b.String()
}

func needsChange(path string) bool {
	rest := path[1:]
	for n := 0; ; n++ {
		seg, tail, more := strings.Cut(rest, "/")
		if n == MaxSegments || isID(seg) {
			return true
		}
		if !more {
			return false
		}
		rest = tail
	}
}

// isID reports whether a segment looks like an identifier rather than a
// fixed name: all digits; a UUID; hex of 16+ characters; any segment longer
// than MaxSegmentLen; a token of 16+ characters with digits; or a segment
// with characters outside [A-Za-z0-9._~-].
func isID(seg string) bool {
	if seg == "" {
		return false
	}
	if len(seg) > MaxSegmentLen {
		return true
	}
	digits, hex, other := 0, 0, 0
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			hex++
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			hex++
		case c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z' || c == '.' || c == '_' || c == '~':
		case c == '-':
			if len(seg) == 36 {
				hex++ // UUID dashes
			}
		default:
			other++
		}
	}
	switch {
	case other > 0:
		return true
	case digits == len(seg):
		return true
	case hex == len(seg) && len(seg) >= 16 && digits > 0:
		return true // long hex, UUIDs
	case len(seg) >= 16 && digits > 0:
		return true
	}
	return false
}
