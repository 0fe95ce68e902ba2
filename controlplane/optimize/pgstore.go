package optimize

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// PGStore is the PostgreSQL Store: recommendations in
// optimization_recommendations (0001, extended by 0200), the audit log in
// optimization_audit and modes in optimization_modes. The schema comes
// from controlplane/store's migrations.
type PGStore struct{ pool *pgxpool.Pool }

var _ Store = (*PGStore)(nil)

// NewPGStore returns a Store over pool.
func NewPGStore(pool *pgxpool.Pool) *PGStore { return &PGStore{pool: pool} }

// Put implements Store.
func (p *PGStore) Put(ctx context.Context, r *Record) error {
	data, err := protojson.Marshal(r.Rec)
	if err != nil {
		return fmt.Errorf("encode recommendation: %w", err)
	}
	impact := []byte("{}")
	if r.Rec.GetExpectedImpact() != nil {
		if impact, err = protojson.Marshal(r.Rec.GetExpectedImpact()); err != nil {
			return fmt.Errorf("encode expected impact: %w", err)
		}
	}
	base, _ := json.Marshal(r.Baseline)
	after, _ := json.Marshal(r.After)
	var eff *float64
	if r.Rec.EffectivenessScore != nil {
		v := r.Rec.GetEffectivenessScore()
		eff = &v
	}
	var appliedAt, enforcedAt *time.Time
	if r.Rec.GetAppliedAt() != nil {
		t := r.Rec.GetAppliedAt().AsTime()
		appliedAt = &t
	}
	if !r.EnforcedAt.IsZero() {
		enforcedAt = &r.EnforcedAt
	}
	_, err = p.pool.Exec(ctx, `
INSERT INTO optimization_recommendations (recommendation_id, recommendation_type, target_service, recommendation_data,
    expected_impact, confidence, applied, applied_at, effectiveness_score, created_at, state, state_reason, route, kind,
    baseline, after_outcome, snapshot_version, enforced_at, canary_fraction, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $19, $14, $15, $16, $17, $18, NOW())
ON CONFLICT (recommendation_id) DO UPDATE SET
    recommendation_data = EXCLUDED.recommendation_data, expected_impact = EXCLUDED.expected_impact,
    confidence = EXCLUDED.confidence, applied = EXCLUDED.applied, applied_at = EXCLUDED.applied_at,
    effectiveness_score = EXCLUDED.effectiveness_score, state = EXCLUDED.state, state_reason = EXCLUDED.state_reason,
    baseline = EXCLUDED.baseline, after_outcome = EXCLUDED.after_outcome, snapshot_version = EXCLUDED.snapshot_version,
    enforced_at = EXCLUDED.enforced_at, canary_fraction = EXCLUDED.canary_fraction, updated_at = NOW()`,
		r.Rec.GetId(), kindName(r.Rec.GetKind()), r.Service, data, impact, round2(r.Rec.GetConfidence()), appliedAt != nil, appliedAt, eff,
		r.Rec.GetCreatedAt().AsTime(), r.Rec.GetState().String(), r.Rec.GetStateReason(), r.Route, base, after, int64(r.Version), enforcedAt, r.Canary, kindName(r.Rec.GetKind()))
	if err != nil {
		return fmt.Errorf("write recommendation: %w", err)
	}
	return nil
}

func round2(v float64) float64 { return float64(int(v*100+0.5)) / 100 }

const selectRecs = `SELECT recommendation_data, target_service, route, baseline, after_outcome, snapshot_version, enforced_at, canary_fraction
FROM optimization_recommendations`

func scanRec(row pgx.Row) (*Record, error) {
	var data, base, after []byte
	var svc *string
	var ver int64
	var enforced *time.Time
	r := &Record{Rec: &bridgev1.Recommendation{}}
	if err := row.Scan(&data, &svc, &r.Route, &base, &after, &ver, &enforced, &r.Canary); err != nil {
		return nil, err
	}
	if err := protojson.Unmarshal(data, r.Rec); err != nil {
		return nil, fmt.Errorf("decode recommendation: %w", err)
	}
	if svc != nil {
		r.Service = *svc
	}
	r.Version = uint64(ver)
	if enforced != nil {
		r.EnforcedAt = *enforced
	}
	if len(base) > 0 && string(base) != "null" {
		r.Baseline = &Outcome{}
		_ = json.Unmarshal(base, r.Baseline)
	}
	if len(after) > 0 && string(after) != "null" {
		r.After = &Outcome{}
		_ = json.Unmarshal(after, r.After)
	}
	return r, nil
}

// Get implements Store.
func (p *PGStore) Get(ctx context.Context, id string) (*Record, error) {
	r, err := scanRec(p.pool.QueryRow(ctx, selectRecs+` WHERE recommendation_id::text = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read recommendation: %w", err)
	}
	return r, nil
}

// List implements Store.
func (p *PGStore) List(ctx context.Context, service string, states []bridgev1.RecommendationState) ([]*Record, error) {
	names := make([]string, 0, len(states))
	for _, s := range states {
		names = append(names, s.String())
	}
	rows, err := p.pool.Query(ctx, selectRecs+`
WHERE ($1 = '' OR target_service = $1) AND (cardinality($2::text[]) = 0 OR state = ANY($2))
ORDER BY created_at DESC, recommendation_id DESC`, service, names)
	if err != nil {
		return nil, fmt.Errorf("list recommendations: %w", err)
	}
	defer rows.Close()
	var out []*Record
	for rows.Next() {
		r, err := scanRec(rows)
		if err != nil {
			return nil, fmt.Errorf("list recommendations: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list recommendations: %w", err)
	}
	sortNewest(out)
	return out, nil
}

// Audit implements Store.
func (p *PGStore) Audit(ctx context.Context, e *bridgev1.AuditEntry) error {
	at := time.Now()
	if e.GetAt() != nil {
		at = e.GetAt().AsTime()
	}
	var rec *string
	if e.GetRecommendationId() != "" {
		id := e.GetRecommendationId()
		rec = &id
	}
	if _, err := p.pool.Exec(ctx, `INSERT INTO optimization_audit (at, actor, action, recommendation_id, service, reason) VALUES ($1, $2, $3, $4::uuid, $5, $6)`,
		at, e.GetActor(), e.GetAction(), rec, e.GetService(), e.GetReason()); err != nil {
		return fmt.Errorf("write audit entry: %w", err)
	}
	return nil
}

// ListAudit implements Store.
func (p *PGStore) ListAudit(ctx context.Context, id string, limit int) ([]*bridgev1.AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := p.pool.Query(ctx, `SELECT at, actor, action, COALESCE(recommendation_id::text, ''), service, reason FROM optimization_audit
WHERE ($1 = '' OR recommendation_id::text = $1) ORDER BY at DESC, id DESC LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []*bridgev1.AuditEntry
	for rows.Next() {
		var at time.Time
		e := &bridgev1.AuditEntry{}
		if err := rows.Scan(&at, &e.Actor, &e.Action, &e.RecommendationId, &e.Service, &e.Reason); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		e.At = timestamppb.New(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// SetMode implements Store.
func (p *PGStore) SetMode(ctx context.Context, service string, kind bridgev1.DirectiveKind, mode bridgev1.DirectiveMode) error {
	if _, err := p.pool.Exec(ctx, `INSERT INTO optimization_modes (service, kind, mode) VALUES ($1, $2, $3)
ON CONFLICT (service, kind) DO UPDATE SET mode = EXCLUDED.mode, updated_at = NOW()`, service, kind.String(), mode.String()); err != nil {
		return fmt.Errorf("write mode: %w", err)
	}
	return nil
}

// Modes implements Store.
func (p *PGStore) Modes(ctx context.Context) (map[string]map[bridgev1.DirectiveKind]bridgev1.DirectiveMode, error) {
	rows, err := p.pool.Query(ctx, `SELECT service, kind, mode FROM optimization_modes`)
	if err != nil {
		return nil, fmt.Errorf("read modes: %w", err)
	}
	defer rows.Close()
	out := map[string]map[bridgev1.DirectiveKind]bridgev1.DirectiveMode{}
	for rows.Next() {
		var s, k, m string
		if err := rows.Scan(&s, &k, &m); err != nil {
			return nil, fmt.Errorf("read modes: %w", err)
		}
		if out[s] == nil {
			out[s] = map[bridgev1.DirectiveKind]bridgev1.DirectiveMode{}
		}
		out[s][bridgev1.DirectiveKind(bridgev1.DirectiveKind_value[k])] = bridgev1.DirectiveMode(bridgev1.DirectiveMode_value[m])
	}
	return out, rows.Err()
}
