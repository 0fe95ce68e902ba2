// Package rpcmetrics counts and logs the control plane's refused RPCs: calls
// to its Connect services (the intelligence API, the admin API and the
// directive stream) that were turned away before the service's own handler
// accepted them. Connect refuses most of these itself (a body that does not
// decode, a truncated or oversized frame, an unknown procedure, an
// unsupported content type or method), and authentication refuses the rest,
// so no handler's metric ever sees them.
//
// Two hooks work together: Middleware wraps the HTTP handler in front of
// every observed service and reads the answer off the wire when the call
// never reached the service; HandlerOption's interceptor, the innermost one,
// marks the calls that did reach it and records stream messages that failed
// to arrive (decode and framing errors). Errors the handlers return
// themselves are not counted here; those belong to the handlers' metrics.
//
// It must not buffer, delay or alter a response, log request bodies or error
// messages (a decode error can quote the input), or allocate per stream
// message.
package rpcmetrics
