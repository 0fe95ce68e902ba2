package optimize_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/omninode/bridge/controlplane/optimize"
	"github.com/omninode/bridge/controlplane/store"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/testenv"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func pgStore(t *testing.T) *optimize.PGStore {
	t.Helper()
	pg := testenv.PostgreSQL(t)
	pool, err := pgxpool.New(t.Context(), pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	return optimize.NewPGStore(pool)
}

// TestStoreContract runs the same checks on the in-memory and the
// PostgreSQL store.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	for name, mk := range map[string]func(*testing.T) optimize.Store{
		"mem": func(*testing.T) optimize.Store { return optimize.NewMemStore() },
		"pg":  func(t *testing.T) optimize.Store { return pgStore(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := mk(t)
			ctx := t.Context()
			checkStore(ctx, t, st)
		})
	}
}

func checkStore(ctx context.Context, t *testing.T, st optimize.Store) {
	if _, err := st.Get(ctx, bus.NewEventID()); !errors.Is(err, optimize.ErrNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
	mk := func(state bridgev1.RecommendationState, age time.Duration) *optimize.Record {
		id := bus.NewEventID()
		return &optimize.Record{
			Rec: &bridgev1.Recommendation{Id: id, Kind: bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY, State: state, Confidence: 0.734,
				CreatedAt: timestamppb.New(time.Now().Add(-age).Truncate(time.Microsecond)), Explanation: "why",
				Directive: &bridgev1.Directive{Id: id, Scope: &bridgev1.Scope{Service: svc, Route: "/r"}}},
			Service: svc, Route: "/r", Baseline: &optimize.Outcome{Requests: 10, ErrorRate: 0.2, P99: time.Second}, Version: 3,
			EnforcedAt: time.Now().Truncate(time.Microsecond), Canary: 0.25,
		}
	}
	a, b := mk(proposed, time.Minute), mk(enforced, 0)
	for _, r := range []*optimize.Record{a, b} {
		if err := st.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	score := -0.42
	b.Rec.EffectivenessScore = &score
	b.Rec.State, b.Rec.StateReason = rolled, "worse"
	if err := st.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, b.Rec.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if got.Rec.GetState() != rolled || got.Rec.GetEffectivenessScore() != score || got.Rec.GetStateReason() != "worse" ||
		got.Baseline.P99 != time.Second || got.Version != 3 || got.Canary != 0.25 || got.Route != "/r" || got.Service != svc {
		t.Errorf("round trip: %+v %v", got, got.Rec)
	}
	all, _ := st.List(ctx, svc, nil)
	if len(all) != 2 || all[0].Rec.GetId() != b.Rec.GetId() {
		t.Errorf("list: %d, want newest first", len(all))
	}
	if only, _ := st.List(ctx, "", []bridgev1.RecommendationState{proposed}); len(only) != 1 || only[0].Rec.GetId() != a.Rec.GetId() {
		t.Errorf("list by state: %v", only)
	}
	if other, _ := st.List(ctx, "payments", nil); len(other) != 0 {
		t.Errorf("list other service: %d", len(other))
	}
	for i, action := range []string{"apply", "auto_rollback"} {
		if err := st.Audit(ctx, &bridgev1.AuditEntry{At: timestamppb.New(time.Now().Add(time.Duration(i) * time.Millisecond)), Actor: "engine", Action: action,
			RecommendationId: b.Rec.GetId(), Service: svc, Reason: "r" + action}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Audit(ctx, &bridgev1.AuditEntry{Actor: "alice", Action: "set_mode", Service: svc, Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	entries, _ := st.ListAudit(ctx, b.Rec.GetId(), 0)
	if len(entries) != 2 || entries[0].GetAction() != "auto_rollback" || entries[0].GetReason() != "rauto_rollback" {
		t.Errorf("audit %v", entries)
	}
	if all, _ := st.ListAudit(ctx, "", 1); len(all) != 1 {
		t.Errorf("audit limit: %d", len(all))
	}
	if err := st.SetMode(ctx, svc, bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY, enforce); err != nil {
		t.Fatal(err)
	}
	if err := st.SetMode(ctx, svc, bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY, bridgev1.DirectiveMode_DIRECTIVE_MODE_DRY_RUN); err != nil {
		t.Fatal(err)
	}
	modes, _ := st.Modes(ctx)
	if modes[svc][bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY] != bridgev1.DirectiveMode_DIRECTIVE_MODE_DRY_RUN {
		t.Errorf("modes %v", modes)
	}
}
