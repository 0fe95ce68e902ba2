package rpcmetrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/omninode/bridge/internal/apiauth"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	viewerToken = "viewer-token-0123456789"
	adminToken  = "admin-token-0123456789"

	procListServices = "/omninode.bridge.v1.IntelligenceService/ListServices"
	procGetStatus    = "/omninode.bridge.v1.IntelligenceService/GetStatus"
	procGetTrace     = "/omninode.bridge.v1.IntelligenceService/GetTrace"
	procRollback     = "/omninode.bridge.v1.AdminService/Rollback"
	procSync         = "/omninode.bridge.v1.DirectiveService/Sync"
)

// rig is the three observed services the way the control plane composes
// them (Rejections' middleware in front of authentication, its interceptor
// innermost), on a real HTTP/2 server over TLS.
type rig struct {
	url  string
	srv  *httptest.Server
	reg  *prometheus.Registry
	rej  *Rejections
	logs *lockedBuffer

	started, done atomic.Int64
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{reg: prometheus.NewRegistry(), logs: &lockedBuffer{}}
	cfg := DefaultConfig()
	cfg.Registry, cfg.Logger = r.reg, slog.New(slog.NewTextHandler(r.logs, nil))
	cfg.Services = []Service{
		{Entry: "api", Desc: bridgev1.File_omninode_bridge_v1_intelligence_proto.Services().ByName("IntelligenceService")},
		{Entry: "admin", Desc: bridgev1.File_omninode_bridge_v1_intelligence_proto.Services().ByName("AdminService")},
		{Entry: "directive", Desc: bridgev1.File_omninode_bridge_v1_directives_proto.Services().ByName("DirectiveService")},
	}
	var err error
	if r.rej, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(bridgev1connect.NewIntelligenceServiceHandler(intelService{}, r.rej.HandlerOption()))
	mux.Handle(bridgev1connect.NewAdminServiceHandler(adminService{}, r.rej.HandlerOption()))
	mux.Handle(bridgev1connect.NewDirectiveServiceHandler(directiveService{}, connect.WithInterceptors(gate{}), r.rej.HandlerOption()))
	auth, err := apiauth.New([]string{"viewer bob " + viewerToken, "admin alice " + adminToken}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := r.rej.Middleware(auth.Middleware(apiauth.ConnectRoles, nil, mux))
	r.srv = newH2Server(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.started.Add(1)
		defer r.done.Add(1)
		h.ServeHTTP(w, req)
	}))
	r.url = r.srv.URL
	return r
}

// newH2Server serves h over TLS with HTTP/2 (what bidi streams need).
func newH2Server(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// client is an HTTP/2 client sending token as a bearer token ("" none).
func (r *rig) client(token string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: bearer{token: token, next: r.srv.Client().Transport}}
}

// http1 is an HTTP/1.1-only client.
func (r *rig) http1() *http.Client {
	tr := r.srv.Client().Transport.(*http.Transport).Clone()
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

// counts waits until every request the server started has been answered
// (the middleware counts after the handler returns) and returns the
// counter's series as "entry procedure code" -> value.
func (r *rig) counts(t *testing.T) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.done.Load() != r.started.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("server still serving %d requests", r.started.Load()-r.done.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != MetricName {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			out[l["entry"]+" "+l["procedure"]+" "+l["code"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

// wantCounts fails t unless the counter holds exactly want.
func (r *rig) wantCounts(t *testing.T, want map[string]float64) {
	t.Helper()
	got := r.counts(t)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s{%s} = %v, want %v", MetricName, k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s{%s} = %v", MetricName, k, v)
		}
	}
}

// post sends a raw body and returns the status, the response and its body.
func post(t *testing.T, cl *http.Client, url, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// protocols are the three Connect client protocols.
var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect", nil},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}},
}

// garbage is a client codec that sends bytes that do not decode, under the
// name of a real codec ("proto" or "json"), and reads real answers.
type garbage struct {
	name string
	body []byte
}

func (g garbage) Name() string                { return g.name }
func (g garbage) Marshal(any) ([]byte, error) { return g.body, nil }
func (g garbage) Unmarshal(b []byte, m any) error {
	if g.name == "json" {
		return protojson.Unmarshal(b, m.(proto.Message))
	}
	return proto.Unmarshal(b, m.(proto.Message))
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.next.RoundTrip(r)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// intelService answers ListServices, and GetTrace with NotFound (a
// handler's own error); the rest is the generated Unimplemented.
type intelService struct {
	bridgev1connect.UnimplementedIntelligenceServiceHandler
}

func (intelService) ListServices(context.Context, *connect.Request[bridgev1.ListServicesRequest]) (*connect.Response[bridgev1.ListServicesResponse], error) {
	return connect.NewResponse(&bridgev1.ListServicesResponse{}), nil
}

func (intelService) GetTrace(context.Context, *connect.Request[bridgev1.GetTraceRequest]) (*connect.Response[bridgev1.GetTraceResponse], error) {
	return nil, connect.NewError(connect.CodeNotFound, errors.New("no such trace"))
}

// adminService validates Rollback's id itself (a handler's own error).
type adminService struct {
	bridgev1connect.UnimplementedAdminServiceHandler
}

func (adminService) Rollback(_ context.Context, req *connect.Request[bridgev1.RollbackRequest]) (*connect.Response[bridgev1.RollbackResponse], error) {
	if req.Msg.GetId() == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("id is required"))
	}
	return connect.NewResponse(&bridgev1.RollbackResponse{}), nil
}

// directiveService answers every hello with a heartbeat and refuses
// anything else itself (a handler's own error).
type directiveService struct {
	bridgev1connect.UnimplementedDirectiveServiceHandler
}

func (directiveService) Sync(_ context.Context, stream *connect.BidiStream[bridgev1.SyncRequest, bridgev1.SyncResponse]) error {
	for {
		msg, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if msg.GetHello() == nil {
			return connect.NewError(connect.CodeInvalidArgument, errors.New("hello first"))
		}
		if err := stream.Send(&bridgev1.SyncResponse{Message: &bridgev1.SyncResponse_Heartbeat{Heartbeat: timestamppb.Now()}}); err != nil {
			return err
		}
	}
}

// gate is an authorization interceptor outside Rejections' own, like the
// control plane's per-service authorization of directive streams: header
// X-Deny "stream" refuses the stream before the handler runs, "message"
// refuses its first message after it decoded.
type gate struct{}

func (gate) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }
func (gate) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (gate) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		switch conn.RequestHeader().Get("X-Deny") {
		case "stream":
			return connect.NewError(connect.CodePermissionDenied, errors.New("no identity"))
		case "message":
			return next(ctx, denyConn{conn})
		}
		return next(ctx, conn)
	}
}

type denyConn struct{ connect.StreamingHandlerConn }

func (d denyConn) Receive(m any) error {
	if err := d.StreamingHandlerConn.Receive(m); err != nil {
		return err
	}
	return connect.NewError(connect.CodePermissionDenied, errors.New("wrong service"))
}

// hello is a valid first sync message.
func hello() *bridgev1.SyncRequest {
	return &bridgev1.SyncRequest{Message: &bridgev1.SyncRequest_Hello{Hello: &bridgev1.SidecarHello{Service: "orders", Instance: "orders-1"}}}
}

func key(entry, procedure string, code connect.Code) string {
	return entry + " " + procedure + " " + code.String()
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
