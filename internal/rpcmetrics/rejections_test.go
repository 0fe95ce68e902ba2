package rpcmetrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
)

// wantCode fails t unless err carries code.
func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != code {
		t.Fatalf("error %v (code %v), want code %v", err, got, code)
	}
}

// A unary body that is not JSON is refused by Connect before any
// interceptor; each protocol counts once, with the code the caller got.
func TestBadJSONUnary(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			opts := append([]connect.ClientOption{connect.WithCodec(garbage{name: "json", body: []byte(`{"limit":`)})}, p.opts...)
			cl := bridgev1connect.NewIntelligenceServiceClient(r.client(viewerToken), r.url, opts...)
			for range 3 {
				_, err := cl.ListServices(t.Context(), connect.NewRequest(&bridgev1.ListServicesRequest{}))
				wantCode(t, err, connect.CodeInvalidArgument)
			}
			r.wantCounts(t, map[string]float64{key("api", procListServices, connect.CodeInvalidArgument): 3})
		})
	}
}

// A unary body that is not protobuf, on the API and the admin API.
func TestBadProtoUnary(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			opts := append([]connect.ClientOption{connect.WithCodec(garbage{name: "proto", body: []byte("\xff\xff\xff")})}, p.opts...)
			_, err := bridgev1connect.NewIntelligenceServiceClient(r.client(viewerToken), r.url, opts...).
				GetStatus(t.Context(), connect.NewRequest(&bridgev1.GetStatusRequest{}))
			wantCode(t, err, connect.CodeInvalidArgument)
			_, err = bridgev1connect.NewAdminServiceClient(r.client(adminToken), r.url, opts...).
				Rollback(t.Context(), connect.NewRequest(&bridgev1.RollbackRequest{Id: "x"}))
			wantCode(t, err, connect.CodeInvalidArgument)
			r.wantCounts(t, map[string]float64{
				key("api", procGetStatus, connect.CodeInvalidArgument):  1,
				key("admin", procRollback, connect.CodeInvalidArgument): 1,
			})
		})
	}
}

// A procedure the service does not have is answered 404 by the generated
// handler (Unimplemented to Connect and gRPC clients) and counted under
// "unknown"; so is a raw call of each content type.
func TestUnknownProcedure(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			for _, path := range []string{"/omninode.bridge.v1.IntelligenceService/Nope", "/omninode.bridge.v1.AdminService/Nope", "/omninode.bridge.v1.DirectiveService/Nope"} {
				cl := connect.NewClient[bridgev1.ListServicesRequest, bridgev1.ListServicesResponse](r.client(adminToken), r.url+path, p.opts...)
				_, err := cl.CallUnary(t.Context(), connect.NewRequest(&bridgev1.ListServicesRequest{}))
				wantCode(t, err, connect.CodeUnimplemented)
			}
			r.wantCounts(t, map[string]float64{
				key("api", Unknown, connect.CodeUnimplemented):       1,
				key("admin", Unknown, connect.CodeUnimplemented):     1,
				key("directive", Unknown, connect.CodeUnimplemented): 1,
			})
		})
	}
}

// A stream frame that does not decode ends the stream with
// InvalidArgument; the message reached Receive, under the handler.
func TestGarbageStreamFrame(t *testing.T) {
	t.Parallel()
	for _, p := range protocols[:2] { // bidi: Connect and gRPC
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			opts := append([]connect.ClientOption{connect.WithCodec(garbage{name: "proto", body: []byte("\xff\xff\xff\xff garbage")})}, p.opts...)
			stream := bridgev1connect.NewDirectiveServiceClient(r.client(""), r.url, opts...).Sync(t.Context())
			if err := stream.Send(hello()); err != nil {
				t.Fatal(err)
			}
			_, err := stream.Receive()
			wantCode(t, err, connect.CodeInvalidArgument)
			_ = stream.CloseRequest()
			_ = stream.CloseResponse()
			r.wantCounts(t, map[string]float64{key("directive", procSync, connect.CodeInvalidArgument): 1})
		})
	}
}

// A body that ends inside a frame (5-byte prefix promising 256 bytes, then
// two): Connect calls it a protocol error (Internal).
func TestTruncatedStreamFrame(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"application/connect+proto", "application/grpc"} {
		t.Run(ct, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			resp, body := post(t, r.client(""), r.url+procSync, ct, []byte{0, 0, 0, 1, 0, 1, 2})
			if got := resp.Trailer.Get("Grpc-Status") + string(body); resp.StatusCode != 200 || !contains(got, "13") && !contains(got, `"code":"internal"`) {
				t.Fatalf("status %d, grpc-status %q, body %q: want an internal error", resp.StatusCode, resp.Trailer.Get("Grpc-Status"), body)
			}
			r.wantCounts(t, map[string]float64{key("directive", procSync, connect.CodeInternal): 1})
		})
	}
}

// Authentication refuses before Connect runs: no or a wrong token is
// Unauthenticated, a viewer on the admin API PermissionDenied. On the
// directive stream an authorization interceptor refuses the stream before
// the handler, or its first message after it decoded.
func TestUnauthenticated(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			for _, tok := range []string{"", "wrong-token-0123456789"} {
				_, err := bridgev1connect.NewIntelligenceServiceClient(r.client(tok), r.url, p.opts...).
					ListServices(t.Context(), connect.NewRequest(&bridgev1.ListServicesRequest{}))
				wantCode(t, err, connect.CodeUnauthenticated)
			}
			_, err := bridgev1connect.NewAdminServiceClient(r.client(viewerToken), r.url, p.opts...).
				Rollback(t.Context(), connect.NewRequest(&bridgev1.RollbackRequest{Id: "x"}))
			wantCode(t, err, connect.CodePermissionDenied)
			want := map[string]float64{
				key("api", procListServices, connect.CodeUnauthenticated): 2,
				key("admin", procRollback, connect.CodePermissionDenied):  1,
			}
			if p.name != "grpcweb" {
				for _, deny := range []string{"stream", "message"} {
					stream := bridgev1connect.NewDirectiveServiceClient(r.client(""), r.url, p.opts...).Sync(t.Context())
					stream.RequestHeader().Set("X-Deny", deny)
					_ = stream.Send(hello())
					_, err := stream.Receive()
					wantCode(t, err, connect.CodePermissionDenied)
					_ = stream.CloseRequest()
					_ = stream.CloseResponse()
				}
				want[key("directive", procSync, connect.CodePermissionDenied)] = 2
			}
			r.wantCounts(t, want)
		})
	}
}

// Refusals by plain HTTP status: an unsupported content type (415), a
// method the procedure does not take (405), a bidi stream over HTTP/1.1
// (505). Clients see Unknown for these statuses, and so does the counter.
func TestUnsupportedContentTypeAndMethod(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	resp, _ := post(t, r.client(viewerToken), r.url+procListServices, "text/plain", []byte("hi"))
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: status %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, r.url+procRollback, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := r.client("").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET Rollback: status %d", resp.StatusCode)
	}
	resp, _ = post(t, r.http1(), r.url+procSync, "application/connect+proto", nil)
	if resp.StatusCode != http.StatusHTTPVersionNotSupported {
		t.Fatalf("Sync over HTTP/1.1: status %d", resp.StatusCode)
	}
	r.wantCounts(t, map[string]float64{
		key("api", procListServices, connect.CodeUnknown): 1,
		key("admin", procRollback, connect.CodeUnknown):   1,
		key("directive", procSync, connect.CodeUnknown):   1,
	})
}

// Good calls, errors the handlers return themselves, streams that end
// cleanly or are cancelled by the client, and paths outside the observed
// services are not counted; a long stream flows through the middleware
// message by message.
func TestNotCounted(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			ctx := t.Context()
			intel := bridgev1connect.NewIntelligenceServiceClient(r.client(viewerToken), r.url, p.opts...)
			if _, err := intel.ListServices(ctx, connect.NewRequest(&bridgev1.ListServicesRequest{})); err != nil {
				t.Fatal(err)
			}
			_, err := intel.GetTrace(ctx, connect.NewRequest(&bridgev1.GetTraceRequest{Id: "x"}))
			wantCode(t, err, connect.CodeNotFound)
			_, err = intel.GetStatus(ctx, connect.NewRequest(&bridgev1.GetStatusRequest{}))
			wantCode(t, err, connect.CodeUnimplemented) // the generated handler's own answer
			_, err = bridgev1connect.NewAdminServiceClient(r.client(adminToken), r.url, p.opts...).
				Rollback(ctx, connect.NewRequest(&bridgev1.RollbackRequest{}))
			wantCode(t, err, connect.CodeInvalidArgument)

			if p.name != "grpcweb" {
				dir := bridgev1connect.NewDirectiveServiceClient(r.client(""), r.url, p.opts...)
				// Ten round trips on one stream, then a clean close.
				stream := dir.Sync(ctx)
				for range 10 {
					if err := stream.Send(hello()); err != nil {
						t.Fatal(err)
					}
					if _, err := stream.Receive(); err != nil {
						t.Fatal(err)
					}
				}
				_ = stream.CloseRequest()
				_ = stream.CloseResponse()
				// The handler refuses a non-hello itself.
				stream = dir.Sync(ctx)
				_ = stream.Send(&bridgev1.SyncRequest{})
				_, err := stream.Receive()
				wantCode(t, err, connect.CodeInvalidArgument)
				_ = stream.CloseResponse()
				// The client goes away mid-stream.
				cctx, cancel := context.WithCancel(ctx)
				stream = dir.Sync(cctx)
				_ = stream.Send(hello())
				_, _ = stream.Receive()
				cancel()
				_ = stream.CloseResponse()
			}
			resp, _ := post(t, r.client(""), r.url+"/omninode.bridge.v1.Nope/X", "application/json", []byte("{"))
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("unobserved path: status %d", resp.StatusCode)
			}
			r.wantCounts(t, map[string]float64{})
		})
	}
}

// One log line per entry point and code per interval, with the peer and
// how many were suppressed; never the body.
func TestLogOncePerInterval(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	now := time.Unix(1_000_000, 0)
	r.rej.throttle.now = func() time.Time { return now } // the requests below are sequential
	cl := r.client(viewerToken)
	secret := []byte(`{"password":"hunter2-s3cret",`)
	for range 5 {
		post(t, cl, r.url+procListServices, "application/json", secret)
	}
	post(t, cl, r.url+"/omninode.bridge.v1.IntelligenceService/Nope", "application/json", secret)
	r.counts(t) // every call finished
	lines := strings.Split(strings.TrimSpace(r.logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines (one per code), got %d:\n%s", len(lines), r.logs)
	}
	for _, want := range []string{"entry=api", "procedure=" + procListServices, "code=invalid_argument", "http_status=400", "peer=127.0.0.1:", "suppressed=0"} {
		if !contains(lines[0], want) {
			t.Errorf("first line lacks %q: %s", want, lines[0])
		}
	}
	if !contains(lines[1], "procedure=unknown") || !contains(lines[1], "code=unimplemented") {
		t.Errorf("second line: %s", lines[1])
	}
	now = now.Add(time.Second)
	post(t, cl, r.url+procListServices, "application/json", secret)
	r.counts(t)
	lines = strings.Split(strings.TrimSpace(r.logs.String()), "\n")
	if len(lines) != 3 || !contains(lines[2], "code=invalid_argument") || !contains(lines[2], "suppressed=4") {
		t.Fatalf("after the interval: want a third line with suppressed=4:\n%s", r.logs)
	}
	if contains(r.logs.String(), "hunter2") {
		t.Fatalf("the body leaked into the log:\n%s", r.logs)
	}
	r.wantCounts(t, map[string]float64{
		key("api", procListServices, connect.CodeInvalidArgument): 6,
		key("api", Unknown, connect.CodeUnimplemented):            1,
	})
}

// The experiment the design rests on: which refusals reach interceptors.
// A unary body that does not decode never reaches WrapUnary; a stream's
// bad frame reaches WrapStreamingHandler and shows as a Receive error; an
// unsupported content type reaches neither.
func TestWhatInterceptorsSee(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	mux := http.NewServeMux()
	mux.Handle(bridgev1connect.NewIntelligenceServiceHandler(intelService{}, connect.WithInterceptors(rec)))
	mux.Handle(bridgev1connect.NewDirectiveServiceHandler(directiveService{}, connect.WithInterceptors(rec)))
	srv := newH2Server(t, mux)
	cl := srv.Client()
	post(t, cl, srv.URL+procListServices, "application/json", []byte(`{"limit":`))
	post(t, cl, srv.URL+procListServices, "text/plain", []byte(`{}`))
	post(t, cl, srv.URL+procSync, "application/connect+proto", []byte("\x00\x00\x00\x00\x05\xff\xff\xff\xff\x20"))
	post(t, cl, srv.URL+procListServices, "application/json", []byte(`{}`))
	if got, want := rec.String(), "stream "+procSync+" receive invalid_argument; unary "+procListServices+"; "; got != want {
		t.Fatalf("interceptors saw %q, want %q", got, want)
	}
}

type recorder struct{ lockedBuffer }

func (rec *recorder) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		rec.Write([]byte("unary " + req.Spec().Procedure + "; "))
		return next(ctx, req)
	}
}

func (rec *recorder) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (rec *recorder) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		rec.Write([]byte("stream " + conn.Spec().Procedure))
		err := next(ctx, recvRecorder{conn, rec})
		rec.Write([]byte("; "))
		return err
	}
}

type recvRecorder struct {
	connect.StreamingHandlerConn
	rec *recorder
}

func (r recvRecorder) Receive(m any) error {
	err := r.StreamingHandlerConn.Receive(m)
	if err != nil && !errors.Is(err, io.EOF) {
		r.rec.Write([]byte(" receive " + connect.CodeOf(err).String()))
	}
	return err
}
