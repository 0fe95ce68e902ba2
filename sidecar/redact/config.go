package redact

import (
	"fmt"
	"strings"
)

// Redacted replaces every value the redactor removes.
const Redacted = "REDACTED"

// Config adds to the built-in deny lists and sets the caps. The zero value of a
// cap means its default.
type Config struct {
	// DenyHeaders are extra header names (case-insensitive) whose values are
	// always replaced by REDACTED. Built in: authorization,
	// proxy-authorization, cookie, set-cookie, x-api-key, and any name matching
	// /(api[-_]?key|token|secret|password|passwd|session|credential|auth)/i.
	DenyHeaders []string
	// DenyJSONFields are extra JSON field names whose values are replaced by
	// REDACTED at any depth. Matching ignores case, '-' and '_' (so "apiKey",
	// "api-key" and "API_KEY" are one name). Built in: see DefaultDenyJSONFields.
	DenyJSONFields []string
	// DenyQueryParams are extra URL query parameter names (case-insensitive)
	// whose values are replaced by REDACTED. Built in: see DefaultDenyQueryParams.
	DenyQueryParams []string
	// MaxValueBytes caps every string value (header values, JSON strings, error
	// texts) in bytes, after escaping, cut on a rune boundary. Default 1024;
	// allowed 16 to 1 MiB.
	MaxValueBytes int
	// MaxURLBytes caps the redacted path and query. Default 2048; allowed 64 to 64 KiB.
	MaxURLBytes int
	// MaxDepth is the deepest JSON nesting kept; deeper values are replaced by
	// "[depth limit]". Default 32; allowed 1 to 256.
	MaxDepth int
}

// Default caps.
const (
	DefaultMaxValueBytes = 1024
	DefaultMaxURLBytes   = 2048
	DefaultMaxDepth      = 32
)

// DefaultDenyJSONFields are the JSON field names always redacted (compared
// after lower-casing and removing '-' and '_'). Names ending in "token",
// "password", "secret" or "apikey" are redacted too (but not "max_tokens").
var DefaultDenyJSONFields = []string{
	"password", "passwd", "pwd", "secret", "token", "access_token", "refresh_token", "id_token",
	"api_key", "apikey", "authorization", "auth", "credentials", "credential", "private_key",
	"client_secret", "ssn", "credit_card", "card_number", "cvv", "cookie", "set_cookie",
	"session_token", "bearer",
}

// DefaultDenyQueryParams are the query parameter names always redacted
// (case-insensitive). Names matching token, secret, password, signature,
// credential or api key are redacted too.
var DefaultDenyQueryParams = []string{
	"access_token", "token", "id_token", "refresh_token", "api_key", "apikey", "key", "sig",
	"signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
	"x-goog-signature", "x-goog-credential", "password", "passwd", "pwd", "secret",
	"client_secret", "code", "auth", "session", "sessionid", "jwt", "assertion",
}

// DefaultDenyHeaders are the header names always redacted (case-insensitive),
// besides those matching the sensitive-name pattern.
var DefaultDenyHeaders = []string{
	"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
	"x-amz-security-token", "www-authenticate", "proxy-authenticate",
}

// DefaultConfig returns the default caps and no extra deny entries.
func DefaultConfig() Config {
	return Config{
		MaxValueBytes: DefaultMaxValueBytes,
		MaxURLBytes:   DefaultMaxURLBytes,
		MaxDepth:      DefaultMaxDepth,
	}
}

func (c Config) withDefaults() Config {
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = DefaultMaxValueBytes
	}
	if c.MaxURLBytes == 0 {
		c.MaxURLBytes = DefaultMaxURLBytes
	}
	if c.MaxDepth == 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	return c
}

// Validate checks the caps and the deny entries (zero caps mean defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.MaxValueBytes < 16 || c.MaxValueBytes > 1<<20 {
		return fmt.Errorf("redact: MaxValueBytes %d out of range [16, 1048576]", c.MaxValueBytes)
	}
	if c.MaxURLBytes < 64 || c.MaxURLBytes > 64<<10 {
		return fmt.Errorf("redact: MaxURLBytes %d out of range [64, 65536]", c.MaxURLBytes)
	}
	if c.MaxDepth < 1 || c.MaxDepth > 256 {
		return fmt.Errorf("redact: MaxDepth %d out of range [1, 256]", c.MaxDepth)
	}
	for _, l := range []struct {
		field string
		names []string
	}{{"DenyHeaders", c.DenyHeaders}, {"DenyJSONFields", c.DenyJSONFields}, {"DenyQueryParams", c.DenyQueryParams}} {
		for i, n := range l.names {
			if strings.TrimSpace(n) == "" {
				return fmt.Errorf("redact: %s[%d] is empty", l.field, i)
			}
		}
	}
	return nil
}
