package proxy

import (
	"net/http"
	"net/textproto"
	"strings"
)

// allowedHeader is one allow-listed request header, resolved once: its
// canonical and lower-case keys, the name the event uses, and whether the
// redactor always masks it (then its masked value).
type allowedHeader struct {
	canon, lower, key string
	masked            bool
	mask              string
}

// resolveAllow asks the redactor, once per allow-listed name, under which
// name it reports that header and whether it masks it, so that the request
// path copies only the allow-listed headers without canonicalising names or
// matching deny patterns per request. It returns nil when the redactor does
// not answer as one name in, one name out; then the request path calls
// Redactor.Headers.
func resolveAllow(red Redactor, allow []string) []allowedHeader {
	const probe = "v"
	out := make([]allowedHeader, 0, len(allow))
	for _, name := range allow {
		lower := strings.ToLower(strings.TrimSpace(name))
		canon := textproto.CanonicalMIMEHeaderKey(lower)
		got := red.Headers(http.Header{canon: {probe}}, []string{name})
		if len(got) != 1 {
			return nil
		}
		for k, v := range got {
			a := allowedHeader{canon: canon, lower: lower, key: k}
			if v != red.String(probe) {
				a.masked, a.mask = true, v
			}
			out = append(out, a)
		}
	}
	return out
}

// eventHeaders returns the allow-listed headers of h as Redactor.Headers
// would (several values joined by ", ", masked ones masked).
func (p *Proxy) eventHeaders(h http.Header) map[string]string {
	if p.allow == nil {
		return p.cfg.Redactor.Headers(h, p.cfg.HeaderAllow)
	}
	n := 0
	for i := range p.allow {
		if len(h[p.allow[i].canon]) > 0 || len(h[p.allow[i].lower]) > 0 {
			n++
		}
	}
	out := make(map[string]string, n)
	for i := range p.allow {
		a := &p.allow[i]
		vals := h[a.canon]
		if len(vals) == 0 {
			if vals = h[a.lower]; len(vals) == 0 {
				continue
			}
		}
		if a.masked {
			out[a.key] = a.mask
			continue
		}
		v := vals[0]
		if len(vals) > 1 {
			v = strings.Join(vals, ", ")
		}
		out[a.key] = p.cfg.Redactor.String(v)
	}
	return out
}
