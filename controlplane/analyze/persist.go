package analyze

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/omninode/bridge/controlplane/analyze/patterns"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// patternData is intelligence_patterns.pattern_data.
type patternData struct {
	Template   string            `json:"template"`
	Tokens     []string          `json:"tokens"`
	Codes      []string          `json:"codes"`
	Services   []string          `json:"services"`
	Routes     []string          `json:"routes"`
	Examples   []string          `json:"examples"`
	RootCauses map[string]uint64 `json:"root_causes,omitempty"`
}

type patternRow struct {
	id, template, rootCause string
	data                    []byte
	confidence              float64
	delta                   uint64
	first, last             time.Time
}

// savePatterns upserts the patterns that changed; frequency grows by the
// occurrences counted since the last save, so replicas' counts add up.
func (a *Analyzer) savePatterns(ctx context.Context) error {
	b := a.pats
	b.mu.Lock()
	var rows []patternRow
	for _, pi := range b.info {
		if !pi.dirty || pi.group.Size == 0 {
			continue
		}
		d := patternData{Template: pi.group.Template(), Tokens: pi.group.Tokens, Codes: keys(pi.codes), Services: keys(pi.services),
			Routes: keys(pi.routes), Examples: pi.examples, RootCauses: pi.rootCauses}
		raw, err := json.Marshal(d)
		if err != nil {
			b.mu.Unlock()
			return fmt.Errorf("encode pattern: %w", err)
		}
		rows = append(rows, patternRow{id: pi.group.ID, template: d.Template, rootCause: pi.rootCause(), data: raw,
			confidence: math.Round(pi.group.Confidence()*100) / 100, delta: pi.group.Size - pi.savedSize, first: pi.first, last: pi.last})
	}
	b.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	for _, r := range rows {
		batch.Queue(`
			INSERT INTO intelligence_patterns (pattern_id, pattern_type, pattern_data, confidence, frequency,
				first_seen, last_seen, template, root_cause_service, updated_at)
			VALUES ($1, 'failure_template', $2, $3, $4, $5, $6, $7, $8, NOW())
			ON CONFLICT (pattern_id) DO UPDATE SET
				pattern_data = EXCLUDED.pattern_data, confidence = EXCLUDED.confidence,
				frequency = intelligence_patterns.frequency + EXCLUDED.frequency,
				first_seen = LEAST(intelligence_patterns.first_seen, EXCLUDED.first_seen),
				last_seen = GREATEST(intelligence_patterns.last_seen, EXCLUDED.last_seen),
				template = EXCLUDED.template, root_cause_service = EXCLUDED.root_cause_service, updated_at = NOW()`,
			r.id, r.data, r.confidence, int64(r.delta), r.first.UTC(), r.last.UTC(), r.template, r.rootCause)
	}
	if err := a.cfg.Pool.SendBatch(ctx, batch).Close(); err != nil {
		a.mPersist.WithLabelValues("intelligence_patterns").Inc()
		return fmt.Errorf("save patterns: %w", err)
	}
	b.mu.Lock()
	for _, r := range rows {
		if pi := b.info[r.id]; pi != nil {
			pi.savedSize += r.delta
			pi.dirty = pi.group.Size != pi.savedSize
		}
	}
	b.mu.Unlock()
	return nil
}

type historyRow struct {
	service, name string
	v             *bridgev1.ToolVersion
	caps          []string
}

// saveTools writes schema versions not yet persisted.
func (a *Analyzer) saveTools(ctx context.Context) error {
	r := a.tools
	r.mu.Lock()
	var rows []historyRow
	type mark struct {
		k toolKey
		n int
	}
	var marks []mark
	for k, t := range r.tools {
		if !t.dirty {
			continue
		}
		for _, v := range t.history[t.saved:] {
			rows = append(rows, historyRow{k.service, k.name, v, t.caps})
		}
		marks = append(marks, mark{k, len(t.history)})
		t.dirty = false
	}
	r.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	for _, h := range rows {
		sig, err := protojson.Marshal(h.v.GetSignature())
		if err != nil {
			return fmt.Errorf("encode tool schema: %w", err)
		}
		if h.v.GetSignature() == nil {
			sig = nil
		}
		caps := h.caps
		if caps == nil {
			caps = []string{}
		}
		batch.Queue(`
			INSERT INTO tool_schema_history (service_source, tool_name, schema_hash, signature, description, capabilities, seen_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (service_source, tool_name, schema_hash) DO UPDATE SET seen_at = LEAST(tool_schema_history.seen_at, EXCLUDED.seen_at)`,
			h.service, h.name, h.v.GetSchemaHash(), sig, h.v.GetDescription(), caps, h.v.GetSeenAt().AsTime().UTC())
	}
	if err := a.cfg.Pool.SendBatch(ctx, batch).Close(); err != nil {
		a.mPersist.WithLabelValues("tool_schema_history").Inc()
		r.mu.Lock()
		for _, m := range marks {
			if t := r.tools[m.k]; t != nil {
				t.dirty = true
			}
		}
		r.mu.Unlock()
		return fmt.Errorf("save tool history: %w", err)
	}
	r.mu.Lock()
	for _, m := range marks {
		if t := r.tools[m.k]; t != nil && m.n <= len(t.history) {
			t.saved = m.n
		}
	}
	r.mu.Unlock()
	return nil
}

// Snapshot writes the ecosystem into service_ecosystem (with a pool).
func (a *Analyzer) Snapshot(ctx context.Context) error {
	if a.cfg.Pool == nil {
		return nil
	}
	now := a.cfg.Now()
	g := a.Graph(bridgev1.Window_WINDOW_1H)
	svcs, err := protojson.Marshal(&bridgev1.ListServicesResponse{Services: g.GetServices()})
	if err != nil {
		return fmt.Errorf("encode services: %w", err)
	}
	capm := map[string][]string{}
	for _, s := range g.GetServices() {
		for _, c := range s.GetCapabilities() {
			capm[c] = append(capm[c], s.GetName())
		}
	}
	capJSON, _ := json.Marshal(capm)
	graph, err := protojson.Marshal(&bridgev1.GetServiceGraphResponse{Edges: g.GetEdges(), CausalHints: g.GetCausalHints(), Impact: g.GetImpact()})
	if err != nil {
		return fmt.Errorf("encode graph: %w", err)
	}
	var total, errs float64
	for _, e := range g.GetEdges() {
		total += float64(e.GetRequests())
		errs += float64(e.GetRequests()) * e.GetErrorRate()
	}
	perf, _ := json.Marshal(map[string]any{"window": "1h", "requests": total, "errors": errs, "services": len(g.GetServices()), "edges": len(g.GetEdges())})
	if _, err := a.cfg.Pool.Exec(ctx, `INSERT INTO service_ecosystem (services_active, capability_matrix, dependency_graph, performance_metrics, snapshot_timestamp)
		VALUES ($1, $2, $3, $4, $5)`, svcs, capJSON, graph, perf, now.UTC()); err != nil {
		a.mPersist.WithLabelValues("service_ecosystem").Inc()
		return fmt.Errorf("insert ecosystem snapshot: %w", err)
	}
	return nil
}

// load reads patterns, tool history and the latest ecosystem snapshot back;
// it returns how many patterns it restored.
func (a *Analyzer) load(ctx context.Context) (int, error) {
	n, err := a.loadPatterns(ctx)
	if err != nil {
		return 0, err
	}
	if err := a.loadTools(ctx); err != nil {
		return 0, err
	}
	var raw, graph []byte
	err = a.cfg.Pool.QueryRow(ctx, `SELECT services_active, dependency_graph FROM service_ecosystem ORDER BY snapshot_timestamp DESC LIMIT 1`).Scan(&raw, &graph)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		a.mPersist.WithLabelValues("service_ecosystem").Inc()
		return 0, fmt.Errorf("read ecosystem snapshot: %w", err)
	default:
		var l bridgev1.ListServicesResponse
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, &l); err != nil {
			return 0, fmt.Errorf("decode ecosystem snapshot: %w", err)
		}
		var g bridgev1.GetServiceGraphResponse
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(graph, &g); err != nil {
			return 0, fmt.Errorf("decode ecosystem snapshot: %w", err)
		}
		a.eco.restore(l.GetServices(), g.GetImpact())
	}
	return n, nil
}

func (a *Analyzer) loadPatterns(ctx context.Context) (int, error) {
	rows, err := a.cfg.Pool.Query(ctx, `SELECT pattern_id::text, pattern_data, frequency, first_seen, last_seen
		FROM intelligence_patterns WHERE pattern_type = 'failure_template'`)
	if err != nil {
		a.mPersist.WithLabelValues("intelligence_patterns").Inc()
		return 0, fmt.Errorf("read patterns: %w", err)
	}
	defer rows.Close()
	b := a.pats
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for rows.Next() {
		var (
			id          string
			raw         []byte
			freq        int64
			first, last time.Time
		)
		if err := rows.Scan(&id, &raw, &freq, &first, &last); err != nil {
			return 0, fmt.Errorf("read patterns: %w", err)
		}
		var d patternData
		if err := json.Unmarshal(raw, &d); err != nil || len(d.Tokens) == 0 {
			a.mPersist.WithLabelValues("intelligence_patterns").Inc()
			continue // not ours or damaged: leave it alone
		}
		g := &patterns.Group{ID: id, Tokens: d.Tokens, Size: uint64(freq)}
		b.miner.Restore(g)
		pi := newPatternInfo(g)
		for _, c := range d.Codes {
			pi.codes[c] = struct{}{}
		}
		for _, s := range d.Services {
			pi.services[s] = struct{}{}
		}
		for _, r := range d.Routes {
			pi.routes[r] = struct{}{}
		}
		pi.examples = d.Examples
		for k, v := range d.RootCauses {
			pi.rootCauses[k] = v
		}
		pi.first, pi.last, pi.savedSize = first.UTC(), last.UTC(), uint64(freq)
		b.info[id] = pi
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read patterns: %w", err)
	}
	return n, nil
}

func (a *Analyzer) loadTools(ctx context.Context) error {
	rows, err := a.cfg.Pool.Query(ctx, `SELECT service_source, tool_name, schema_hash, signature, description, capabilities, seen_at
		FROM tool_schema_history ORDER BY seen_at`)
	if err != nil {
		a.mPersist.WithLabelValues("tool_schema_history").Inc()
		return fmt.Errorf("read tool history: %w", err)
	}
	defer rows.Close()
	r := a.tools
	r.mu.Lock()
	defer r.mu.Unlock()
	for rows.Next() {
		var (
			svc, name, hash, desc string
			sig                   []byte
			caps                  []string
			at                    time.Time
		)
		if err := rows.Scan(&svc, &name, &hash, &sig, &desc, &caps, &at); err != nil {
			return fmt.Errorf("read tool history: %w", err)
		}
		var st *structpb.Struct
		if len(sig) > 0 {
			st = &structpb.Struct{}
			if err := protojson.Unmarshal(sig, st); err != nil {
				st = nil
			}
		}
		t := r.get(toolKey{svc, name})
		t.history = append(t.history, &bridgev1.ToolVersion{SchemaHash: hash, Signature: st, Description: desc, SeenAt: timestamppb.New(at.UTC())})
		t.hash, t.sig, t.desc, t.caps = hash, st, desc, caps
		t.saved = len(t.history)
		if at.After(t.last) {
			t.last = at.UTC()
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read tool history: %w", err)
	}
	// Removal and last sighting come from the pipeline's registry base.
	rows2, err := a.cfg.Pool.Query(ctx, `SELECT service_source, tool_name, removed, last_seen FROM mcp_tools`)
	if err != nil {
		return nil // the table is the pipeline's; without it, history alone is kept
	}
	defer rows2.Close()
	for rows2.Next() {
		var (
			svc, name string
			removed   bool
			last      time.Time
		)
		if rows2.Scan(&svc, &name, &removed, &last) != nil {
			continue
		}
		if t := r.tools[toolKey{svc, name}]; t != nil {
			t.removed = removed
			if last.After(t.last) {
				t.last = last.UTC()
			}
		}
	}
	return nil
}
