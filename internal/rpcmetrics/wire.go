package rpcmetrics

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"

	"connectrpc.com/connect"
)

// responseCode reads the Connect code a refused call was answered with,
// from what was written: gRPC's grpc-status (a trailers-only answer puts it
// in the headers, otherwise it is a trailer), a Connect unary error (HTTP
// status and JSON body), a Connect stream's end-of-stream message, or a
// plain HTTP error (an unknown procedure's 404, an unsupported content
// type's 415), mapped as Connect and gRPC clients map it. It returns 0 for
// an answer that is not an error.
func responseCode(h http.Header, status int, head []byte) connect.Code {
	if v := grpcStatus(h); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		switch {
		case err != nil || n > 16:
			return connect.CodeUnknown
		default:
			return connect.Code(n)
		}
	}
	ct := h.Get("Content-Type")
	switch {
	case status == 0: // nothing written: net/http answers 200, empty
		return 0
	case status >= 400:
		if strings.HasPrefix(ct, "application/json") {
			if code, ok := jsonCode(head); ok {
				return code
			}
		}
		return httpToCode(status)
	case strings.HasPrefix(ct, "application/connect+"):
		return endStreamCode(h, head)
	}
	return 0
}

// grpcStatus returns grpc-status from the headers (trailers-only) or the
// trailers net/http will send (keys "Trailer:Grpc-Status", not canonicalized).
func grpcStatus(h http.Header) string {
	if v := h["Grpc-Status"]; len(v) > 0 {
		return v[0]
	}
	if v := h[http.TrailerPrefix+"Grpc-Status"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// endStreamCode reads the error code of a Connect end-of-stream message at
// the start of a body (a call refused before its handler sends nothing
// else): flags byte (0x02 end of stream, 0x01 compressed), 4-byte length,
// then JSON {"error":{"code":...}}. An end of stream without an error is
// success; one that cannot be read is Unknown.
func endStreamCode(h http.Header, head []byte) connect.Code {
	if len(head) < 5 || head[0]&0x02 == 0 {
		return 0
	}
	msg := head[5:]
	if head[0]&0x01 != 0 {
		if h.Get("Connect-Content-Encoding") != "gzip" {
			return connect.CodeUnknown
		}
		zr, err := gzip.NewReader(bytes.NewReader(msg))
		if err != nil {
			return connect.CodeUnknown
		}
		var buf [headBytes]byte
		n, _ := io.ReadFull(zr, buf[:])
		msg = buf[:n]
	}
	if !bytes.Contains(msg, []byte(`"error"`)) {
		return 0
	}
	if code, ok := jsonCode(msg); ok {
		return code
	}
	return connect.CodeUnknown
}

// jsonCode finds the first "code":"..." in a Connect error's JSON.
func jsonCode(b []byte) (connect.Code, bool) {
	const key = `"code":"`
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return 0, false
	}
	var code connect.Code
	if err := code.UnmarshalText(b[:j]); err != nil {
		return 0, false
	}
	return code, true
}

// httpToCode is the HTTP-to-code mapping Connect and gRPC clients apply to
// an HTTP error without a code
// (https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md).
func httpToCode(status int) connect.Code {
	switch status {
	case 400:
		return connect.CodeInternal
	case 401:
		return connect.CodeUnauthenticated
	case 403:
		return connect.CodePermissionDenied
	case 404:
		return connect.CodeUnimplemented
	case 429, 502, 503, 504:
		return connect.CodeUnavailable
	}
	return connect.CodeUnknown
}
