package hooks

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/omninode/bridge/sidecar/redact"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// protocols are the client protocols every RPC is tested over.
var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect", nil},
	{"connect-json", []connect.ClientOption{connect.WithProtoJSON()}},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	{"grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}},
}

func TestConnectProtocols(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 2048 })
			client := bridgev1connect.NewHookServiceClient(h2cClient(), e.http.URL, p.opts...)
			ctx := t.Context()

			lreq := connect.NewRequest(&bridgev1.ReportLifecycleRequest{
				EventType:   bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED,
				ServiceInfo: &bridgev1.ServiceInfo{Version: "2.0.0", Capabilities: []string{"mcp.tools"}},
			})
			lreq.Header().Set("traceparent", traceparent)
			lresp, err := client.ReportLifecycle(ctx, lreq)
			if err != nil {
				t.Fatalf("ReportLifecycle: %v", err)
			}

			params, _ := structpb.NewStruct(map[string]any{"q": "shoes", "api_key": "k-123"})
			pre, err := client.ReportExecution(ctx, connect.NewRequest(&bridgev1.ReportExecutionRequest{
				CorrelationId: "corr-" + p.name,
				PreContext:    &bridgev1.ExecutionPreContext{Operation: "search", Parameters: params},
			}))
			if err != nil || pre.Msg.GetEventId() != "" {
				t.Fatalf("pre-context: %v %v", pre, err)
			}
			res, err := client.ReportExecution(ctx, connect.NewRequest(&bridgev1.ReportExecutionRequest{
				CorrelationId: "corr-" + p.name,
				Results:       &bridgev1.ExecutionOutcome{Success: true, ExecutionTime: durationpb.New(42e6)},
			}))
			if err != nil {
				t.Fatalf("results: %v", err)
			}
			evs := e.sink.all()
			if len(evs) != 2 {
				t.Fatalf("%d events, want 2", len(evs))
			}
			lc := evs[0].(*bridgev1.ServiceLifecycleEvent)
			if lc.GetEnvelope().GetEventId() != lresp.Msg.GetEventId() || lc.GetServiceInfo().GetName() != service ||
				lc.GetServiceInfo().GetVersion() != "2.0.0" || lc.GetEnvelope().GetTrace().GetSpanId() != "00f067aa0ba902b7" {
				t.Errorf("lifecycle event %v", lc)
			}
			ex := evs[1].(*bridgev1.ExecutionIntelligenceEvent)
			if ex.GetEnvelope().GetEventId() != res.Msg.GetEventId() || ex.GetPreContext().GetOperation() != "search" ||
				ex.GetPreContext().GetParameters().AsMap()["api_key"] != redact.Redacted ||
				ex.GetResults().GetExecutionTime().AsDuration().Milliseconds() != 42 {
				t.Errorf("execution event %v", ex)
			}

			// Invalid input: InvalidArgument with a reason, counted, nothing emitted.
			_, err = client.ReportLifecycle(ctx, connect.NewRequest(&bridgev1.ReportLifecycleRequest{
				EventType: bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED, ServiceInfo: &bridgev1.ServiceInfo{Name: "payments"},
			}))
			if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "service_info.name") {
				t.Errorf("wrong service: %v", err)
			}
			if e.rejected(t, ReasonServiceMismatch) != 1 {
				t.Error("service mismatch not counted")
			}
			// Oversized: ResourceExhausted, counted (gRPC-Web reports errors in
			// its body, which the counter does not parse).
			_, err = client.ReportExecution(ctx, connect.NewRequest(&bridgev1.ReportExecutionRequest{
				CorrelationId: "big", PreContext: &bridgev1.ExecutionPreContext{Operation: strings.Repeat("x", 4000)},
			}))
			if connect.CodeOf(err) != connect.CodeResourceExhausted {
				t.Errorf("oversized: %v", err)
			}
			if p.name != "grpc-web" && e.rejected(t, ReasonTooLarge) != 1 {
				t.Errorf("oversized not counted: %v", e.rejected(t, ReasonTooLarge))
			}
			if n := len(e.sink.all()); n != 2 {
				t.Errorf("rejected calls emitted: %d events", n)
			}
		})
	}
}

// TestConnectMalformed sends bytes that are not the message over Connect
// and gRPC framing and checks they are refused and counted.
func TestConnectMalformed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name, ctype string
		body        []byte
		h2          bool
	}{
		{"connect proto", "application/proto", []byte{0xff, 0xff, 0xff}, false},
		{"connect json unknown field", "application/json", []byte(`{"correlation_id":"c","nope":1}`), false},
		{"grpc proto", "application/grpc", append([]byte{0, 0, 0, 0, 3}, 0xff, 0xff, 0xff), true},
	} {
		before := e.rejected(t, ReasonMalformed)
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+bridgev1connect.HookServiceReportExecutionProcedure, bytes.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ctype)
		client := e.http.Client()
		if tc.h2 {
			req.Header.Set("TE", "trailers")
			client = h2cClient()
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, _ = io.ReadAll(resp.Body) // trailers arrive after the body
		resp.Body.Close()
		if !tc.h2 && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d", tc.name, resp.StatusCode)
		}
		if tc.h2 && resp.Trailer.Get("Grpc-Status") != "3" && resp.Header.Get("Grpc-Status") != "3" {
			t.Errorf("%s: grpc-status %q/%q", tc.name, resp.Header.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Status"))
		}
		if got := e.rejected(t, ReasonMalformed); got != before+1 {
			t.Errorf("%s: malformed count %v -> %v", tc.name, before, got)
		}
	}
	if len(e.sink.all()) != 0 {
		t.Error("malformed calls emitted events")
	}
}
