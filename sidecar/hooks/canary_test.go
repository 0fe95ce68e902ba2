package hooks

import (
	"strings"
	"testing"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestCanarySecret puts one unique secret in every sensitive place a hook
// can carry it and checks it appears in no event, metric or log line.
func TestCanarySecret(t *testing.T) {
	t.Parallel()
	const canary = "cnry-5e1f0b7a9d3c4e28"
	e := newEnv(t, nil)
	hdr := map[string]string{"Authorization": "Bearer " + canary, "Cookie": "sid=" + canary, "X-Api-Key": canary}
	posts := []struct{ path, body string }{
		{PathLifecycle + "?token=" + canary, `{"event_type": "LIFECYCLE_EVENT_TYPE_SERVICE_HEALTH_CHANGE", "health": "HEALTH_STATUS_UNHEALTHY",
			"health_reason": "auth failed: password=` + canary + `",
			"service_info": {"endpoints": [{"url": "https://svc:` + canary + `@10.0.0.1/x?api_key=` + canary + `", "protocol": "http"}]}}`},
		{PathExecution, `{"correlation_id": "c1", "pre_context": {"operation": "login",
			"parameters": {"user": "bob", "password": "` + canary + `", "nested": {"accessToken": "` + canary + `"}, "list": [{"client_secret": "` + canary + `"}]}}}`},
		{PathExecution, `{"correlation_id": "c1", "results": {"success": false, "output": {"session_token": "` + canary + `"},
			"error": "upstream 401: Authorization: Bearer ` + canary + `", "execution_time": "1s"}}`},
		// Rejected hooks carrying the secret must not leak it into logs or metrics.
		{PathExecution, `{"correlation_id": "c2", "` + canary + `": 1}`},
		{PathLifecycle, `{"event_type": "` + canary + `"}`},
		{PathLifecycle, `{"event_type": 1, "service_info": {"name": "` + canary + `"}}`},
	}
	for _, p := range posts {
		e.post(t, p.path, p.body, hdr)
	}
	client := bridgev1connect.NewHookServiceClient(h2cClient(), e.http.URL, connect.WithGRPC())
	params, _ := structpb.NewStruct(map[string]any{"api_key": canary, "apiKey": canary, "card_number": canary})
	req := connect.NewRequest(&bridgev1.ReportExecutionRequest{CorrelationId: "c3",
		PreContext: &bridgev1.ExecutionPreContext{Operation: "pay", Parameters: params},
		Results:    &bridgev1.ExecutionOutcome{Error: "token=" + canary, ExecutionTime: durationpb.New(1)}})
	req.Header().Set("Authorization", "Bearer "+canary)
	if _, err := client.ReportExecution(t.Context(), req); err != nil {
		t.Fatal(err)
	}

	evs := e.sink.all()
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for _, ev := range evs {
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), canary) {
			t.Errorf("canary in %T: %v", ev, ev)
		}
	}
	if m := e.metricsText(t); strings.Contains(m, canary) {
		t.Error("canary in metrics")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "hook rejected") {
		t.Error("rejections were not logged at all")
	}
	if strings.Contains(logs, canary) {
		t.Errorf("canary in logs: %s", logs)
	}
}
