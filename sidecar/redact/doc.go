// Package redact removes secrets from everything the sidecar puts into an
// event: request headers, URLs, free text (error messages) and JSON payloads
// (hook parameters and outputs, MCP tool arguments).
//
// It owns the rule "no secret leaves the pod": Authorization, cookies,
// API-key-like headers, credentials and signed query parameters, and JSON
// fields on a deny list are replaced by [Redacted]; every value it returns is
// length-capped, valid UTF-8 and free of control characters.
//
// The built-in deny lists always apply; Config only adds to them, so a
// configuration mistake can never switch redaction off. It must not log,
// keep state between calls or touch the network: a Redactor is immutable and
// safe for concurrent use.
package redact
