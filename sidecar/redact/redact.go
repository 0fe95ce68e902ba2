package redact

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Redactor applies one Config. It is immutable and safe for concurrent use.
type Redactor struct {
	cfg     Config
	headers map[string]bool // lower-case names
	fields  map[string]bool // normalized names (see normField)
	params  map[string]bool // lower-case names
	// freeText finds key=value / key: value secrets inside free text.
	freeText *regexp.Regexp
}

// New validates cfg and builds a Redactor with the built-in deny lists plus
// the configured ones.
func New(cfg Config) (*Redactor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("create redactor: %w", err)
	}
	cfg = cfg.withDefaults()
	r := &Redactor{
		cfg:     cfg,
		headers: map[string]bool{},
		fields:  map[string]bool{},
		params:  map[string]bool{},
	}
	for _, h := range append(append([]string(nil), DefaultDenyHeaders...), cfg.DenyHeaders...) {
		r.headers[strings.ToLower(strings.TrimSpace(h))] = true
	}
	var keys []string
	for _, f := range append(append([]string(nil), DefaultDenyJSONFields...), cfg.DenyJSONFields...) {
		r.fields[normField(f)] = true
		keys = append(keys, regexp.QuoteMeta(strings.TrimSpace(f)))
	}
	for _, p := range append(append([]string(nil), DefaultDenyQueryParams...), cfg.DenyQueryParams...) {
		r.params[strings.ToLower(strings.TrimSpace(p))] = true
	}
	// A sensitive key, optionally quoted, then ':' or '=', then the value
	// (quoted or up to a delimiter).
	r.freeText = regexp.MustCompile(`(?i)((?:[a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[-_]?key|credential|private[-_]?key)|` +
		strings.Join(keys, "|") + `)["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s"'&,;}\]]+)`)
	return r, nil
}

// MaxValueBytes returns the cap on string values in effect.
func (r *Redactor) MaxValueBytes() int { return r.cfg.MaxValueBytes }

// maskScheme masks the credential after an auth scheme word. After
// "Bearer" anything is a credential; after "basic", "token" and the like only
// what looks like one (a digit or a symbol in it, or 16+ characters), so that
// "basic authentication failed" stays readable.
func maskScheme(m string) string {
	i := strings.IndexAny(m, " \t\r\n")
	scheme, value := m[:i], strings.TrimLeft(m[i:], " \t\r\n")
	if strings.EqualFold(scheme, "bearer") || len(value) >= 16 || strings.ContainsAny(value, "0123456789._~+/=:-") {
		return scheme + " " + Redacted
	}
	if strings.EqualFold(scheme, "basic") {
		if dec, err := base64.StdEncoding.DecodeString(value); err == nil && bytes.IndexByte(dec, ':') >= 0 {
			return scheme + " " + Redacted // user:password
		}
	}
	return m
}

// maskKeyValue masks the value of a sensitive key=value pair, except an auth
// scheme word (whose credential maskScheme already handled).
func (r *Redactor) maskKeyValue(m string) string {
	sub := r.freeText.FindStringSubmatch(m)
	switch strings.ToLower(sub[2]) {
	case "bearer", "basic", "digest", strings.ToLower(Redacted):
		return m
	}
	return sub[1] + Redacted
}

var (
	bearerRE   = regexp.MustCompile(`(?i)\b(bearer|basic|digest|token|apikey|api-key)\s+[A-Za-z0-9._~+/=:-]{6,}`)
	userinfoRE = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://)[^/\s@]+@`)
	jwtRE      = regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
)

// Error redacts a free-text message such as an error: bearer/basic
// credentials, URL userinfo, JSON web tokens and key=value (or "key": value)
// pairs with sensitive keys are masked, then the result goes through String.
func (r *Redactor) Error(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = bearerRE.ReplaceAllStringFunc(s, maskScheme)
	s = userinfoRE.ReplaceAllString(s, "${1}"+Redacted+"@")
	s = jwtRE.ReplaceAllString(s, Redacted)
	s = r.freeText.ReplaceAllStringFunc(s, r.maskKeyValue)
	return r.String(s)
}

// String makes s safe to put in an event: invalid UTF-8 becomes U+FFFD,
// control characters are escaped (\n, \r, \t, \uXXXX), and the result is cut
// to MaxValueBytes on a rune boundary.
func (r *Redactor) String(s string) string { return capEscape(s, r.cfg.MaxValueBytes) }

// capEscape escapes s and cuts the result to at most max bytes.
func capEscape(s string, max int) string {
	if len(s) <= max && clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), max))
	for i := 0; i < len(s); {
		c, size := utf8.DecodeRuneInString(s[i:])
		i += size
		var piece string
		switch {
		case c == utf8.RuneError && size <= 1:
			piece = "\uFFFD"
		case c == '\n':
			piece = `\n`
		case c == '\r':
			piece = `\r`
		case c == '\t':
			piece = `\t`
		case isControl(c):
			piece = fmt.Sprintf(`\u%04x`, c)
		default:
			piece = s[i-size : i]
		}
		if b.Len()+len(piece) > max {
			break
		}
		b.WriteString(piece)
	}
	return b.String()
}

// clean reports whether s is valid UTF-8 without control characters.
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			goto slow
		}
	}
	return true
slow:
	for _, c := range s {
		if c == utf8.RuneError || isControl(c) {
			return false
		}
	}
	return utf8.ValidString(s)
}

// isControl reports C0 and C1 controls, DEL, line/paragraph separators and
// bidirectional overrides (which can disguise log lines).
func isControl(c rune) bool {
	switch {
	case c < 0x20, c == 0x7f, c >= 0x80 && c < 0xa0:
		return true
	case c == 0x2028, c == 0x2029, c >= 0x202a && c <= 0x202e, c >= 0x2066 && c <= 0x2069:
		return true
	}
	return false
}
