package rpcmetrics

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"net/http"
	"testing"

	"connectrpc.com/connect"
)

// endStream is a Connect end-of-stream envelope around msg.
func endStream(flags byte, msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	b[0] = flags
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestResponseCode(t *testing.T) {
	t.Parallel()
	errJSON := []byte(`{"error":{"code":"permission_denied","message":"no"},"metadata":{}}`)
	for _, tc := range []struct {
		name   string
		header http.Header
		status int
		body   []byte
		want   connect.Code
	}{
		{"nothing written", http.Header{}, 0, nil, 0},
		{"grpc trailers-only in headers", http.Header{"Grpc-Status": {"7"}}, 200, nil, connect.CodePermissionDenied},
		{"grpc trailer", http.Header{"Trailer:Grpc-Status": {"3"}}, 200, nil, connect.CodeInvalidArgument},
		{"grpc ok", http.Header{"Trailer:Grpc-Status": {"0"}}, 200, nil, 0},
		{"grpc garbage status", http.Header{"Grpc-Status": {"x"}}, 200, nil, connect.CodeUnknown},
		{"grpc status out of range", http.Header{"Grpc-Status": {"99"}}, 200, nil, connect.CodeUnknown},
		{"connect unary error", http.Header{"Content-Type": {"application/json"}}, 400, []byte(`{"code":"invalid_argument","message":"x"}`), connect.CodeInvalidArgument},
		{"connect unary error, unknown code", http.Header{"Content-Type": {"application/json"}}, 400, []byte(`{"code":"bogus"}`), connect.CodeInternal},
		{"plain 404", http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, 404, []byte("404 page not found\n"), connect.CodeUnimplemented},
		{"415", http.Header{}, 415, nil, connect.CodeUnknown},
		{"401 from authentication", http.Header{"Content-Type": {"application/json"}}, 401, []byte(`{"code":"unauthenticated","message":"x"}`), connect.CodeUnauthenticated},
		{"503", http.Header{}, 503, nil, connect.CodeUnavailable},
		{"connect stream end with error", http.Header{"Content-Type": {"application/connect+proto"}}, 200, endStream(2, errJSON), connect.CodePermissionDenied},
		{"connect stream end without error", http.Header{"Content-Type": {"application/connect+proto"}}, 200, endStream(2, []byte(`{}`)), 0},
		{"connect stream, a message first", http.Header{"Content-Type": {"application/connect+proto"}}, 200, endStream(0, []byte("x")), 0},
		{"connect stream gzipped end", http.Header{"Content-Type": {"application/connect+json"}, "Connect-Content-Encoding": {"gzip"}}, 200, endStream(3, gzipped(t, errJSON)), connect.CodePermissionDenied},
		{"connect stream compressed, unknown encoding", http.Header{"Content-Type": {"application/connect+json"}, "Connect-Content-Encoding": {"br"}}, 200, endStream(3, []byte("zz")), connect.CodeUnknown},
		{"connect stream end, unreadable", http.Header{"Content-Type": {"application/connect+proto"}}, 200, endStream(2, []byte(`{"error":{`)), connect.CodeUnknown},
		{"plain 200", http.Header{"Content-Type": {"application/proto"}}, 200, []byte("x"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := responseCode(tc.header, tc.status, tc.body); got != tc.want {
				t.Errorf("responseCode = %v, want %v", got, tc.want)
			}
		})
	}
}
