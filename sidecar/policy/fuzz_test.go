package policy_test

import (
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/sidecar/policy"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// FuzzApply feeds arbitrary bytes, decoded as a directive snapshot, to the
// engine: it must never panic; a rejected snapshot must leave the version in
// force unchanged; an accepted one must pass Validate. Seeds:
// testdata/fuzz/FuzzApply and the snapshots built below.
func FuzzApply(f *testing.F) {
	exp := timestamppb.New(time.Now().Add(time.Hour))
	good := &bridgev1.DirectiveSnapshot{Service: svc, Version: 2, IssuedAt: timestamppb.Now(), Directives: []*bridgev1.Directive{
		{Id: "0193a1b2-0000-7000-8000-000000000001", Scope: &bridgev1.Scope{Service: svc, Route: "/orders/{id}"},
			Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE, ExpiresAt: exp,
			Spec: &bridgev1.Directive_Timeout{Timeout: &bridgev1.TimeoutPolicy{RequestTimeout: durationpb.New(time.Second)}}},
		{Id: "0193a1b2-0000-7000-8000-000000000002", Scope: &bridgev1.Scope{Service: svc},
			Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_DRY_RUN, ExpiresAt: exp,
			Spec: &bridgev1.Directive_RateLimit{RateLimit: &bridgev1.RateLimitPolicy{RequestsPerSecond: 100, Burst: 10}}},
		{Id: "0193a1b2-0000-7000-8000-000000000003", Scope: &bridgev1.Scope{Service: svc},
			Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE, ExpiresAt: exp,
			Spec: &bridgev1.Directive_Retry{Retry: &bridgev1.RetryPolicy{MaxAttempts: 3, BackoffBase: durationpb.New(time.Millisecond),
				RetryOnStatus: []int32{503}, IdempotentOnly: true, BudgetRatio: 0.2, MinRetriesPerSecond: 1}}},
	}}
	b, err := proto.Marshal(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	bad := proto.Clone(good).(*bridgev1.DirectiveSnapshot)
	bad.Directives[2].GetRetry().BudgetRatio = 0.9
	if b, err = proto.Marshal(bad); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{0x0a, 0x03, 'x', 'y', 'z', 0x10, 0x05})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var snap bridgev1.DirectiveSnapshot
		if proto.Unmarshal(raw, &snap) != nil {
			return
		}
		e, err := policy.New(policy.Config{Service: svc})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Apply(&snap); err != nil {
			if e.Version() != 0 {
				t.Fatalf("rejected snapshot (%v) changed the version to %d", err, e.Version())
			}
			return
		}
		if err := policy.Validate(&snap, svc, nil); err != nil {
			t.Fatalf("Apply accepted a snapshot Validate refuses: %v", err)
		}
	})
}
