package mesh

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/omninode/bridge/internal/mtls"
	"github.com/omninode/bridge/internal/rpcmetrics"
	"github.com/prometheus/client_golang/prometheus"
)

// rejected returns the control plane's refused-call counter as
// "entry procedure code" -> value.
func rejected(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != rpcmetrics.MetricName {
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

// TestControlPlaneCountsRejections: the assembled control plane (mutual
// TLS, bearer tokens) counts each refused call on each entry point once:
// a bad token and a body that does not decode on the API, a viewer on the
// admin API, a sidecar certificate syncing another service's directives;
// good calls are not counted.
func TestControlPlaneCountsRejections(t *testing.T) {
	t.Parallel()
	_, m, ordersCert, ordersKey, caFile := startMTLSControlPlane(t)
	src, err := mtls.NewSource(mtls.Config{CertFile: ordersCert, KeyFile: ordersKey, CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	orders := mtlsClient(src.ClientConfig(""))
	as := func(token string) *http.Client { return &http.Client{Transport: bearer{token, orders.Transport}} }
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	for _, opts := range [][]connect.ClientOption{nil, {connect.WithGRPC()}} {
		intel := bridgev1connect.NewIntelligenceServiceClient(as("s3cret-viewer-token-0001"), m.URL(), opts...)
		if _, err := intel.ListServices(ctx, connect.NewRequest(&bridgev1.ListServicesRequest{})); err != nil {
			t.Fatalf("good call: %v", err)
		}
		_, err := bridgev1connect.NewIntelligenceServiceClient(as("wrong-token-000000000"), m.URL(), opts...).
			ListServices(ctx, connect.NewRequest(&bridgev1.ListServicesRequest{}))
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("bad token: %v", err)
		}
		_, err = bridgev1connect.NewAdminServiceClient(as("s3cret-viewer-token-0001"), m.URL(), opts...).
			SetMode(ctx, connect.NewRequest(&bridgev1.SetModeRequest{Service: "orders"}))
		if connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Fatalf("viewer on the admin API: %v", err)
		}
		stream := bridgev1connect.NewDirectiveServiceClient(orders, m.URL(), opts...).Sync(ctx)
		_ = stream.Send(&bridgev1.SyncRequest{Message: &bridgev1.SyncRequest_Hello{Hello: &bridgev1.SidecarHello{Service: "payments", Instance: "intruder"}}})
		if _, err := stream.Receive(); connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Fatalf("payments hello with the orders certificate: %v", err)
		}
		_ = stream.CloseRequest()
		_ = stream.CloseResponse()
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m.URL()+"/omninode.bridge.v1.AdminService/Rollback", bytes.NewReader([]byte(`{"id":`)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := as("s3cret-admin-token-0001").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad JSON: status %d", resp.StatusCode)
	}

	want := map[string]float64{
		"api /omninode.bridge.v1.IntelligenceService/ListServices unauthenticated": 2,
		"admin /omninode.bridge.v1.AdminService/SetMode permission_denied":         2,
		"admin /omninode.bridge.v1.AdminService/Rollback invalid_argument":         1,
		"directive /omninode.bridge.v1.DirectiveService/Sync permission_denied":    2,
	}
	var got map[string]float64
	deadline := time.Now().Add(5 * time.Second) // counted as each call's handler returns
	for got = rejected(t, m.Registry); !maps.Equal(got, want) && time.Now().Before(deadline); got = rejected(t, m.Registry) {
		time.Sleep(20 * time.Millisecond)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("%s = %v, want %v", rpcmetrics.MetricName, fmt.Sprint(got), fmt.Sprint(want))
	}
}
