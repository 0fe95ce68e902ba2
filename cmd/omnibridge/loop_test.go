package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/adminapi"
	"github.com/omninode/bridge/controlplane/analyze/analyzetest"
	"github.com/omninode/bridge/controlplane/directives"
	"github.com/omninode/bridge/controlplane/intelapi"
	"github.com/omninode/bridge/controlplane/optimize"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	sidecardirectives "github.com/omninode/bridge/sidecar/directives"
	"github.com/omninode/bridge/sidecar/policy"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type loopStats struct{ rs []optimize.RouteSnapshot }

func (s loopStats) Routes(string, time.Duration) []optimize.RouteSnapshot { return s.rs }

// TestLoopCommands drives the closed loop's commands against a real
// intelligence API and admin API in process.
func TestLoopCommands(t *testing.T) {
	dcfg := directives.DefaultConfig()
	dcfg.KV = directives.NewMemoryKV()
	dsrv, err := directives.New(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	ocfg := optimize.DefaultConfig()
	ocfg.Stats = loopStats{rs: []optimize.RouteSnapshot{{Service: "orders", Route: "/orders/{id}", Methods: []string{"GET"}, Window: time.Minute,
		Requests: 10000, Errors: 2000, StatusCounts: map[int]uint64{503: 2000}, P50: 5 * time.Millisecond, P99: 20 * time.Millisecond, P999: 30 * time.Millisecond}}}
	ocfg.Publisher = dsrv
	eng, err := optimize.New(ocfg)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := adminapi.New(adminapi.Config{Engine: eng, Status: dsrv})
	if err != nil {
		t.Fatal(err)
	}
	icfg := intelapi.DefaultConfig()
	icfg.Analyzer = analyzetest.New(t)
	icfg.Loop = admin
	isrv, err := intelapi.New(icfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	intelapi.Mount(mux, isrv)
	path, h := admin.Mount()
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(adminapi.WithActor(r.Context(), "cli-test")))
	}))
	mux.Handle(dsrv.Handler())
	hs := httptest.NewUnstartedServer(mux)
	hs.Config = directives.NewH2CServer(mux) // h2c for the directive stream, HTTP/1.1 for the CLI
	hs.Start()
	t.Cleanup(hs.Close)
	ctx := t.Context()
	if err := eng.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	server := "--server=" + hs.URL

	out, err := runCLI(ctx, "recommendations", server, "--state", "proposed")
	if err != nil {
		t.Fatal(err, out)
	}
	var retryID string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, " retry ") {
			retryID = strings.Fields(line)[0]
		}
	}
	if retryID == "" || !strings.Contains(out, "proposed") {
		t.Fatalf("list output lacks a proposed retry:\n%s", out)
	}
	out, err = runCLI(ctx, "recommendations", "explain", retryID, server)
	if err != nil || !strings.Contains(out, "transient_failure_rate:") || !strings.Contains(out, "Expected impact:") || !strings.Contains(out, "retry budget") {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	out, err = runCLI(ctx, "recommendations", "apply", retryID, "--mode", "dry_run", "--reason", "see first", server)
	if err != nil || !strings.Contains(out, "as dry_run") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if _, err := runCLI(ctx, "recommendations", "apply", retryID, "--mode", "sometimes", server); err == nil || !strings.Contains(err.Error(), "invalid mode") {
		t.Errorf("bad mode accepted: %v", err)
	}
	out, err = runCLI(ctx, "mode", "orders", "retry", "enforce", "--reason", "dry-run looked fine", server)
	if err != nil || !strings.Contains(out, "orders retry: enforce") {
		t.Fatalf("mode: %v\n%s", err, out)
	}
	out, err = runCLI(ctx, "rollback", retryID, "--reason", "testing rollback", server)
	if err != nil || !strings.Contains(out, "rolled back") {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	out, err = runCLI(ctx, "recommendations", "list", server, "--state", "rolled_back")
	if err != nil || !strings.Contains(out, retryID) || !strings.Contains(out, "testing rollback") {
		t.Fatalf("rolled back not listed with its reason: %v\n%s", err, out)
	}
	out, err = runCLI(ctx, "recommendations", "audit", retryID, server)
	if err != nil || !strings.Contains(out, "cli-test") || !strings.Contains(out, "rollback") || !strings.Contains(out, "testing rollback") {
		t.Fatalf("audit: %v\n%s", err, out)
	}
	// Status shows a rejection reported by a real sidecar client.
	pe, _ := policy.New(policy.Config{Service: "orders"})
	ccfg := sidecardirectives.DefaultConfig()
	ccfg.ControlPlane, ccfg.Service, ccfg.Instance = hs.URL, "orders", "pod-1"
	client, err := sidecardirectives.New(ccfg, pe)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { client.Run(cctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	bad := &bridgev1.Directive{Id: "0191e7a0-bad0-7000-8000-000000000000", Scope: &bridgev1.Scope{Service: "orders"}, Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE,
		ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
		Spec:      &bridgev1.Directive_Timeout{Timeout: &bridgev1.TimeoutPolicy{RequestTimeout: durationpb.New(time.Hour)}}}
	if _, err := dsrv.Publish(ctx, "orders", []*bridgev1.Directive{bad}, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err = runCLI(ctx, "status", server)
		if err == nil && strings.Contains(out, "timeout.request_timeout") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the rejection: %v\n%s", err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out, "pod-1") || !strings.Contains(out, "timeout.request_timeout") {
		t.Errorf("status lacks the instance or the reason:\n%s", out)
	}
}
