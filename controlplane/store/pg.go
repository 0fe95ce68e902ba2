package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"google.golang.org/protobuf/proto"
)

// PG is the PostgreSQL store.
type PG struct {
	cfg  Config
	pool *pgxpool.Pool
	m    *metrics

	mu   sync.Mutex
	days map[time.Time]bool // day partitions known to exist in every event table

	// staged counts the batches still to take the staged path after a
	// direct COPY met an id stored already; 0 means COPY directly.
	staged atomic.Int32

	gapsMu sync.Mutex
	gaps   map[string]sourceGaps // by instance, as last returned by the database
}

var _ Store = (*PG)(nil)

// OpenPG connects to PostgreSQL, applies the embedded migrations and creates
// the current day partitions. A failed migration is reported by file name.
func OpenPG(ctx context.Context, cfg Config) (*PG, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DSN == "" {
		return nil, errors.New("store: dsn is required for PostgreSQL")
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("parse postgres dsn: %w", err)
	}
	pc.MaxConns = cfg.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	applied, err := Migrate(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if len(applied) > 0 {
		cfg.Logger.Info("applied migrations", "files", applied)
	}
	p := &PG{cfg: cfg, pool: pool, m: newMetrics(cfg.Registry), days: map[time.Time]bool{}, gaps: map[string]sourceGaps{}}
	if err := p.Maintain(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return p, nil
}

// Pool returns the connection pool, for other control-plane packages that
// keep their own tables in the same database.
func (p *PG) Pool() *pgxpool.Pool { return p.pool }

// Close closes the pool.
func (p *PG) Close() { p.pool.Close() }

// Run calls Maintain every MaintainInterval until ctx ends.
func (p *PG) Run(ctx context.Context) error { return runMaintenance(ctx, p.cfg, p.Maintain) }

// WriteEvents implements [Store]. A batch whose ids are all new (nearly
// every batch) is COPYed straight into the event tables in one transaction;
// the tables' unique key on the event id makes that transaction fail if any
// id is stored already. Such a batch (a replay), one with a duplicate inside
// it, and the next few after a replay take the staged path instead: for each
// event table COPY into a session-local staging table, then INSERT ...
// SELECT ... ON CONFLICT DO NOTHING RETURNING the ids. Either way a replayed
// batch inserts nothing twice and only the newly inserted ids are returned.
// Sequence tracking and the tool registry are updated in the same
// transaction from the newly inserted events only.
func (p *PG) WriteEvents(ctx context.Context, evs []bus.Event) (map[string]bool, error) {
	start := time.Now()
	inserted, err := p.writeEvents(ctx, evs)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	p.m.writeSeconds.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	return inserted, err
}

func (p *PG) writeEvents(ctx context.Context, evs []bus.Event) (map[string]bool, error) {
	if len(evs) == 0 {
		return map[string]bool{}, nil
	}
	cutoff := dayStart(p.cfg.Now().Add(-p.cfg.Retention))
	var rows [4][][]any
	days := map[time.Time]bool{}
	ids := make(map[string]bool, len(evs)) // every id in the batch, to spot duplicates inside it
	unique := true
	for _, ev := range evs {
		at := occurredAt(ev)
		if at.Before(cutoff) {
			p.m.expired.Inc()
			continue
		}
		t, err := tableFor(ev)
		if err != nil {
			return nil, err
		}
		r, err := row(ev)
		if err != nil {
			return nil, err
		}
		rows[t] = append(rows[t], r)
		days[dayStart(at)] = true
		id := uuid.UUID(r[0].([16]byte)).String() // as PostgreSQL prints it, like the staged path's ids
		if ids[id] {
			unique = false
		}
		ids[id] = true
	}
	if err := p.ensureDays(ctx, days); err != nil {
		return nil, err
	}
	if unique && p.staged.Load() <= 0 {
		inserted := make(map[string]bool, len(ids))
		err := p.writeTx(ctx, evs, rows, inserted, copyDirect)
		if err == nil {
			return inserted, nil
		}
		if !isUniqueViolation(err) {
			return nil, fmt.Errorf("write events: %w", err)
		}
		// Some of the batch is stored already (a replay): take the staged
		// path for this batch and the next few, as more replays usually follow.
		p.m.fallbacks.Inc()
		p.staged.Store(stagedAfterConflict)
	}
	inserted := make(map[string]bool, len(ids))
	if err := p.writeTx(ctx, evs, rows, inserted, copyInsert); err != nil {
		return nil, fmt.Errorf("write events: %w", err)
	}
	if len(inserted) == len(ids) {
		p.staged.Store(0) // nothing was there already: the replay is over
	} else {
		p.staged.Add(-1)
	}
	return inserted, nil
}

// stagedAfterConflict is how many batches after a conflicting one take the
// staged path before the direct COPY is tried again (unless a staged batch
// finds nothing stored already, which ends the replay at once).
const stagedAfterConflict = 16

// copyFunc stores one table's rows and returns the ids it newly inserted.
type copyFunc func(ctx context.Context, tx pgx.Tx, t eventTable, rows [][]any) ([]string, error)

// writeTx stores the rows of every table with copy in one transaction, adds
// the newly inserted ids to inserted, and updates sequence tracking and the
// tool registry from them, all committed together.
func (p *PG) writeTx(ctx context.Context, evs []bus.Event, rows [4][][]any, inserted map[string]bool, copy copyFunc) error {
	var counts [4]int
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		for i, t := range eventTables {
			if len(rows[i]) == 0 {
				continue
			}
			ids, err := copy(ctx, tx, t, rows[i])
			if err != nil {
				return err
			}
			for _, id := range ids {
				inserted[id] = true
			}
			counts[i] = len(ids)
		}
		if err := p.upsertSequences(ctx, tx, evs, inserted); err != nil {
			return err
		}
		return upsertTools(ctx, tx, evs, inserted)
	})
	if err != nil {
		return err
	}
	for i, t := range eventTables {
		if len(rows[i]) == 0 {
			continue
		}
		p.m.rows.WithLabelValues(t.name, "inserted").Add(float64(counts[i]))
		p.m.rows.WithLabelValues(t.name, "duplicate").Add(float64(len(rows[i]) - counts[i]))
	}
	return nil
}

// copyDirect COPYs rows straight into the partitioned table. It is the path
// for batches whose ids are all new, which is nearly every batch: if any id
// is stored already, the unique key makes the COPY, and so the transaction,
// fail with a unique violation and the batch is written again staged.
func copyDirect(ctx context.Context, tx pgx.Tx, t eventTable, rows [][]any) ([]string, error) {
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, pgx.CopyFromRows(rows)); err != nil {
		return nil, fmt.Errorf("copy into %s: %w", t.name, err)
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = uuid.UUID(r[0].([16]byte)).String()
	}
	return ids, nil
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// copyInsert stages rows with COPY and moves the new ones into the table.
func copyInsert(ctx context.Context, tx pgx.Tx, t eventTable, rows [][]any) ([]string, error) {
	stage := "stage_" + t.name
	if _, err := tx.Exec(ctx, fmt.Sprintf(
		`CREATE TEMP TABLE IF NOT EXISTS %s (LIKE %s INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`, stage, t.name)); err != nil {
		return nil, fmt.Errorf("create staging table %s: %w", stage, err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{stage}, t.columns, pgx.CopyFromRows(rows)); err != nil {
		return nil, fmt.Errorf("copy into %s: %w", stage, err)
	}
	cols := strings.Join(t.columns, ", ")
	q := fmt.Sprintf(`INSERT INTO %s (%s) SELECT %s FROM %s ON CONFLICT DO NOTHING RETURNING %s::text`,
		t.name, cols, cols, stage, t.idCol)
	res, err := tx.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("insert into %s: %w", t.name, err)
	}
	ids, err := pgx.CollectRows(res, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("insert into %s: %w", t.name, err)
	}
	return ids, nil
}

// upsertSequences adds the newly inserted events to their sources' sequence
// tracking, in instance order so that concurrent writers cannot deadlock.
func (p *PG) upsertSequences(ctx context.Context, tx pgx.Tx, evs []bus.Event, inserted map[string]bool) error {
	type agg struct {
		service       string
		lo, hi, count int64
	}
	by := map[string]*agg{}
	for _, ev := range evs {
		env := ev.GetEnvelope()
		if !inserted[env.GetEventId()] {
			continue
		}
		inst, seq := text(env.GetSource().GetInstance()), int64(env.GetSequence())
		a := by[inst]
		if a == nil {
			a = &agg{service: text(env.GetSource().GetService()), lo: seq, hi: seq}
			by[inst] = a
		}
		a.lo, a.hi = min(a.lo, seq), max(a.hi, seq)
		a.count++
	}
	if len(by) == 0 {
		return nil
	}
	insts := make([]string, 0, len(by))
	for k := range by {
		insts = append(insts, k)
	}
	sort.Strings(insts)
	svcs := make([]string, len(insts))
	lo, hi, n := make([]int64, len(insts)), make([]int64, len(insts)), make([]int64, len(insts))
	for i, k := range insts {
		a := by[k]
		svcs[i], lo[i], hi[i], n[i] = a.service, a.lo, a.hi, a.count
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO source_sequences (instance, service, min_seq, max_seq, events_seen)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
		ON CONFLICT (instance) DO UPDATE SET
			service = EXCLUDED.service,
			min_seq = LEAST(source_sequences.min_seq, EXCLUDED.min_seq),
			max_seq = GREATEST(source_sequences.max_seq, EXCLUDED.max_seq),
			events_seen = source_sequences.events_seen + EXCLUDED.events_seen,
			updated_at = NOW()
		RETURNING instance, service, gaps`, insts, svcs, lo, hi, n)
	if err != nil {
		return fmt.Errorf("update source sequences: %w", err)
	}
	type gap struct {
		inst, svc string
		gaps      int64
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gap, error) {
		var g gap
		return g, r.Scan(&g.inst, &g.svc, &g.gaps)
	})
	if err != nil {
		return fmt.Errorf("update source sequences: %w", err)
	}
	p.gapsMu.Lock()
	defer p.gapsMu.Unlock()
	touched := map[string]bool{}
	for _, g := range gs {
		p.gaps[g.inst] = sourceGaps{service: g.svc, gaps: g.gaps}
		touched[g.svc] = true
	}
	for svc := range touched {
		var sum int64
		for _, sg := range p.gaps {
			if sg.service == svc {
				sum += sg.gaps
			}
		}
		p.m.gaps.WithLabelValues(svc).Set(float64(sum))
	}
	return nil
}

// sourceGaps is the last known gap count of one source instance.
type sourceGaps struct {
	service string
	gaps    int64
}

// upsertTools records the latest state of each tool named by a newly
// inserted tool event; a later event wins over an earlier one.
func upsertTools(ctx context.Context, tx pgx.Tx, evs []bus.Event, inserted map[string]bool) error {
	latest := map[[2]string]*bridgev1.ToolRegistrationEvent{}
	for _, ev := range evs {
		te, ok := ev.(*bridgev1.ToolRegistrationEvent)
		if !ok || !inserted[te.GetEnvelope().GetEventId()] {
			continue
		}
		k := [2]string{text(te.GetToolInfo().GetServiceSource()), text(te.GetToolInfo().GetName())}
		if cur := latest[k]; cur == nil || occurredAt(cur).Before(occurredAt(te)) {
			latest[k] = te
		}
	}
	if len(latest) == 0 {
		return nil
	}
	keys := make([][2]string, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	b := &pgx.Batch{}
	for _, k := range keys {
		te := latest[k]
		ti := te.GetToolInfo()
		b.Queue(`
			INSERT INTO mcp_tools (service_source, tool_name, description, capabilities, schema_hash, removed,
				first_seen, last_seen, last_event_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)
			ON CONFLICT (service_source, tool_name) DO UPDATE SET
				description = EXCLUDED.description, capabilities = EXCLUDED.capabilities,
				schema_hash = EXCLUDED.schema_hash, removed = EXCLUDED.removed,
				last_seen = EXCLUDED.last_seen, last_event_id = EXCLUDED.last_event_id,
				first_seen = LEAST(mcp_tools.first_seen, EXCLUDED.first_seen)
			WHERE mcp_tools.last_seen <= EXCLUDED.last_seen`,
			k[0], k[1], text(ti.GetDescription()), cleanAll(ti.GetCapabilities()), text(ti.GetSchemaHash()),
			te.GetEventType() == bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_REMOVED, occurredAt(te),
			te.GetEnvelope().GetEventId())
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("update mcp tools: %w", err)
	}
	return nil
}

// Replay implements [Store]. Events are decoded from the stored protobuf payloads.
func (p *PG) Replay(ctx context.Context, since time.Time, fn func(bus.Event) error) error {
	parts := make([]string, len(eventTables))
	for i, t := range eventTables {
		parts[i] = fmt.Sprintf(`SELECT %d AS kind, payload, created_at, %s AS id FROM %s WHERE created_at >= $1`,
			i, t.idCol, t.name)
	}
	// created_at keeps microseconds only: events of the same microsecond come
	// in event id order (UUIDv7, time-ordered), not in whatever order the sort leaves them.
	rows, err := p.pool.Query(ctx, strings.Join(parts, " UNION ALL ")+` ORDER BY created_at, id`, since)
	if err != nil {
		return fmt.Errorf("replay events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			kind    int
			payload []byte
			at      time.Time
			id      [16]byte
		)
		if err := rows.Scan(&kind, &payload, &at, &id); err != nil {
			return fmt.Errorf("replay events: %w", err)
		}
		ev := newEvent(kind)
		if err := proto.Unmarshal(payload, ev); err != nil {
			return fmt.Errorf("replay events: decode stored payload: %w", err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("replay events: %w", err)
	}
	return nil
}

// newEvent returns an empty event of the kind stored in eventTables[kind].
func newEvent(kind int) bus.Event {
	switch kind {
	case 0:
		return &bridgev1.ExecutionIntelligenceEvent{}
	case 1:
		return &bridgev1.CommunicationIntelligenceEvent{}
	case 2:
		return &bridgev1.ServiceLifecycleEvent{}
	default:
		return &bridgev1.ToolRegistrationEvent{}
	}
}

// OperationStats implements [Store].
func (p *PG) OperationStats(ctx context.Context, service, operation string) (OpStats, error) {
	s := OpStats{Service: service, Operation: operation}
	err := p.pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE NOT success),
			COALESCE(avg(execution_time_ms), 0)::float8, COALESCE(max(execution_time_ms), 0)::bigint
		FROM execution_intelligence WHERE service_name = $1 AND operation = $2`,
		text(service), text(operation)).Scan(&s.Count, &s.Failures, &s.AvgMs, &s.MaxMs)
	if err != nil {
		return OpStats{}, fmt.Errorf("query operation stats: %w", err)
	}
	return s, nil
}
