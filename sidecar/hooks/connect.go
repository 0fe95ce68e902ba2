package hooks

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// connectService adapts Server to the generated HookService handler.
type connectService struct{ s *Server }

var _ bridgev1connect.HookServiceHandler = (*connectService)(nil)

func (c *connectService) ReportLifecycle(ctx context.Context, req *connect.Request[bridgev1.ReportLifecycleRequest]) (*connect.Response[bridgev1.ReportLifecycleResponse], error) {
	markCounted(ctx)
	resp, err := c.s.reportLifecycle(req.Msg, req.Header())
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(resp), nil
}

func (c *connectService) ReportExecution(ctx context.Context, req *connect.Request[bridgev1.ReportExecutionRequest]) (*connect.Response[bridgev1.ReportExecutionResponse], error) {
	markCounted(ctx)
	resp, err := c.s.reportExecution(req.Msg, req.Header())
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(resp), nil
}

func (s *Server) connectOptions() []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithReadMaxBytes(int(s.cfg.MaxBodyBytes)),
		connect.WithCodec(protoCodec{}),
		connect.WithCodec(jsonCodec{}),
	}
}

// protoCodec is connect's binary codec.
type protoCodec struct{}

func (protoCodec) Name() string { return "proto" }
func (protoCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, errors.New("marshal: not a proto message")
	}
	return proto.Marshal(m)
}
func (protoCodec) Unmarshal(b []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return errors.New("unmarshal: not a proto message")
	}
	return proto.Unmarshal(b, m)
}

// jsonCodec is connect's JSON codec with unknown fields rejected, like the
// plain JSON endpoints (connect's default discards them).
type jsonCodec struct{}

func (jsonCodec) Name() string { return "json" }
func (jsonCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, errors.New("marshal: not a proto message")
	}
	return protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
}
func (jsonCodec) Unmarshal(b []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return errors.New("unmarshal: not a proto message")
	}
	return DecodeJSON(b, m)
}

type countedKey struct{}

// markCounted tells countConnectRejections that the handler ran (and counted
// whatever it rejected itself).
func markCounted(ctx context.Context) {
	if p, ok := ctx.Value(countedKey{}).(*bool); ok {
		*p = true
	}
}

// countConnectRejections counts requests that connect refused before our
// handler ran (undecodable message, over the size limit, unsupported codec),
// from the status it answered with: the HTTP status for the Connect
// protocol, grpc-status for gRPC (headers or trailers). gRPC-Web errors
// travel in the body and are not counted here.
func (s *Server) countConnectRejections(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled := false
		rec := &statusRecorder{ResponseWriter: w}
		if r.ContentLength > s.cfg.MaxBodyBytes+5 { // 5: gRPC message prefix
			s.m.received.WithLabelValues(kindOf(r.URL.Path)).Inc()
			s.rejected(kindOf(r.URL.Path), reject(ReasonTooLarge, "body of %d bytes over the limit", r.ContentLength))
		} else {
			defer func() {
				if handled {
					return
				}
				if reason := rec.reason(); reason != "" {
					s.m.received.WithLabelValues(kindOf(r.URL.Path)).Inc()
					s.rejected(kindOf(r.URL.Path), reject(reason, "refused by the connect handler"))
				}
			}()
		}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), countedKey{}, &handled)))
	})
}

func kindOf(path string) string {
	if strings.HasSuffix(path, "/ReportLifecycle") {
		return kindLifecycle
	}
	return kindExecution
}

// statusRecorder remembers the status written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// reason maps the answer to a rejection reason, "" when it was no rejection.
func (r *statusRecorder) reason() string {
	code := ""
	for k, v := range r.Header() {
		k = strings.ToLower(strings.TrimPrefix(k, http.TrailerPrefix))
		if k == "grpc-status" && len(v) > 0 {
			code = v[0]
		}
	}
	switch {
	case code == "8" || r.status == http.StatusTooManyRequests || r.status == http.StatusRequestEntityTooLarge:
		return ReasonTooLarge
	case code == "3" || r.status == http.StatusBadRequest:
		return ReasonMalformed
	case r.status == http.StatusUnsupportedMediaType:
		return ReasonContentType
	case r.status == http.StatusMethodNotAllowed:
		return ReasonMethod
	}
	return ""
}
