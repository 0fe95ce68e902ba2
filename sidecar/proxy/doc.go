// Package proxy owns the sidecar's request path: a transparent reverse proxy
// to the one upstream service (HTTP/1.1, h2c and TLS, gRPC with trailers,
// Connect unary and streaming, server-sent events flushed as they come,
// WebSocket upgrades), the refusal of ambiguously framed requests, the
// server and client spans with W3C propagation, the request metrics, and one
// proxy.communication_intelligence event per request, handed to the
// emitter without waiting.
//
// Bodies are streamed, never buffered, except that an HTTP/1 request body of
// at most 4 KiB with a Content-Length (and no Expect: 100-continue) is read
// before forwarding, so that headers and body reach the upstream in one
// write. Hop-by-hop headers are removed as RFC 9110 §7.6.1 says
// (httputil.ReverseProxy does this, including the headers the Connection
// header names), X-Forwarded-For/-Host/-Proto and traceparent are set, and
// any x-omninode-* header from the client is removed and replaced by the
// sidecar's own.
//
// Without a configured TracerProvider no SDK spans are made: trace and span
// ids and the upstream traceparent are produced directly (tracelite.go),
// as the SDK with a ParentBased(NeverSample) sampler would. A complete
// HTTP/1 response is flushed to the client before its event is built.
//
// Requests that Go's HTTP/1 parser refuses before any handler runs, and
// failed TLS handshakes, are counted at the connection (Listener and
// TLSListener, refusal.go): the proxy terminates TLS itself so that it sees
// the plaintext http.Server writes.
//
// It must not block on emission, must not buffer bodies, and must not put a
// credential into an event, a metric label or a log line.
package proxy
