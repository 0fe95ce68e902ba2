package adminapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/omninode/bridge/controlplane/adminapi"
	"github.com/omninode/bridge/controlplane/directives"
	"github.com/omninode/bridge/controlplane/optimize"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
)

type stats struct {
	mu sync.Mutex
	rs []optimize.RouteSnapshot
}

func (s *stats) Routes(service string, _ time.Duration) []optimize.RouteSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rs
}

func setup(t *testing.T) (*optimize.Engine, *adminapi.Handler, string, *http.Client) {
	t.Helper()
	dcfg := directives.DefaultConfig()
	dcfg.KV = directives.NewMemoryKV()
	dsrv, err := directives.New(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	st := &stats{rs: []optimize.RouteSnapshot{{Service: "orders", Route: "/o", Methods: []string{"GET"}, Window: time.Minute,
		Requests: 10000, Errors: 2000, StatusCounts: map[int]uint64{503: 2000}, P50: 5 * time.Millisecond, P99: 20 * time.Millisecond, P999: 30 * time.Millisecond}}}
	cfg := optimize.DefaultConfig()
	cfg.Stats, cfg.Publisher = st, dsrv
	eng, err := optimize.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := adminapi.New(adminapi.Config{Engine: eng, Status: dsrv})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	path, handler := h.Mount()
	// Stand-in for the lead's auth middleware: the caller's name from a header.
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.ServeHTTP(w, r.WithContext(adminapi.WithActor(r.Context(), r.Header.Get("X-Test-User"))))
	}))
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return eng, h, srv.URL, srv.Client()
}

func TestAdminServiceOverConnectAndGRPC(t *testing.T) {
	for _, p := range []struct {
		name string
		opts []connect.ClientOption
	}{{"connect", nil}, {"grpc", []connect.ClientOption{connect.WithGRPC()}}} {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			eng, h, url, hc := setup(t)
			ctx := t.Context()
			if err := eng.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			client := bridgev1connect.NewAdminServiceClient(hc, url, p.opts...)
			recs, err := h.ListRecommendations(ctx, &bridgev1.ListRecommendationsRequest{Service: "orders", States: []bridgev1.RecommendationState{bridgev1.RecommendationState_RECOMMENDATION_STATE_PROPOSED}})
			if err != nil || len(recs.GetRecommendations()) == 0 {
				t.Fatalf("list: %v %v", recs, err)
			}
			var retryID, timeoutID string
			for _, r := range recs.GetRecommendations() {
				switch r.GetKind() {
				case bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY:
					retryID = r.GetId()
				case bridgev1.DirectiveKind_DIRECTIVE_KIND_TIMEOUT:
					timeoutID = r.GetId()
				}
			}
			apply := connect.NewRequest(&bridgev1.ApplyRecommendationRequest{Id: retryID, Reason: "fix the 503s"})
			apply.Header().Set("X-Test-User", "alice")
			resp, err := client.ApplyRecommendation(ctx, apply)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Msg.GetRecommendation().GetState() != bridgev1.RecommendationState_RECOMMENDATION_STATE_ENFORCED || resp.Msg.GetVersion() == 0 {
				t.Errorf("apply: %v", resp.Msg)
			}
			rej := connect.NewRequest(&bridgev1.RejectRecommendationRequest{Id: timeoutID, Reason: "not now"})
			rej.Header().Set("X-Test-User", "bob")
			if _, err := client.RejectRecommendation(ctx, rej); err != nil {
				t.Fatal(err)
			}
			if _, err := client.RejectRecommendation(ctx, connect.NewRequest(&bridgev1.RejectRecommendationRequest{Id: timeoutID})); connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Errorf("second reject: %v", err)
			}
			if _, err := client.Rollback(ctx, connect.NewRequest(&bridgev1.RollbackRequest{Id: "0191e7a0-0000-7000-8000-000000000000"})); connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("rollback unknown: %v", err)
			}
			if _, err := client.Rollback(ctx, connect.NewRequest(&bridgev1.RollbackRequest{})); connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("rollback without id: %v", err)
			}
			rb, err := client.Rollback(ctx, connect.NewRequest(&bridgev1.RollbackRequest{Id: retryID, Reason: "changed my mind"}))
			if err != nil || rb.Msg.GetRecommendation().GetState() != bridgev1.RecommendationState_RECOMMENDATION_STATE_ROLLED_BACK {
				t.Fatalf("rollback: %v %v", rb, err)
			}
			sm := connect.NewRequest(&bridgev1.SetModeRequest{Service: "orders", Kind: bridgev1.DirectiveKind_DIRECTIVE_KIND_RATE_LIMIT, Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE, Reason: "ok"})
			sm.Header().Set("X-Test-User", "carol")
			if m, err := client.SetMode(ctx, sm); err != nil || m.Msg.GetMode() != bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE {
				t.Fatalf("set mode: %v %v", m, err)
			}
			if _, err := client.SetMode(ctx, connect.NewRequest(&bridgev1.SetModeRequest{Service: "orders"})); connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("set mode without kind: %v", err)
			}
			audit, err := client.ListAudit(ctx, connect.NewRequest(&bridgev1.ListAuditRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range audit.Msg.GetEntries() {
				got = append(got, e.GetActor()+":"+e.GetAction())
			}
			want := "carol:set_mode,anonymous:rollback,bob:reject,alice:apply"
			if strings.Join(got, ",") != want {
				t.Errorf("audit %v, want %s", got, want)
			}
			one, err := h.GetRecommendation(ctx, retryID)
			if err != nil || !strings.Contains(one.GetStateReason(), "changed my mind") {
				t.Errorf("get: %v %v", one, err)
			}
			if _, err := h.GetStatus(context.Background(), "orders"); err != nil {
				t.Errorf("status: %v", err)
			}
		})
	}
}
