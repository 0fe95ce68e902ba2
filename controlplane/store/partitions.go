package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// partitionLockID serializes partition creation and dropping across
// replicas (CREATE TABLE IF NOT EXISTS alone races on the catalog).
const partitionLockID = 0x6f6d6e69_70617274 // "omnipart"

// partitionName is the day partition of table for day: table_pYYYYMMDD.
func partitionName(table string, day time.Time) string {
	return table + "_p" + day.Format("20060102")
}

// ensureDays creates the day partitions that writes need and that this
// process has not seen yet.
func (p *PG) ensureDays(ctx context.Context, days map[time.Time]bool) error {
	var missing []time.Time
	p.mu.Lock()
	for d := range days {
		if !p.days[d] {
			missing = append(missing, d)
		}
	}
	p.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	return p.createPartitions(ctx, missing)
}

func (p *PG) createPartitions(ctx context.Context, days []time.Time) error {
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(partitionLockID)); err != nil {
			return err
		}
		for _, d := range days {
			for _, t := range eventTables {
				q := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')`,
					partitionName(t.name, d), t.name, d.Format(time.RFC3339), d.AddDate(0, 0, 1).Format(time.RFC3339))
				if _, err := tx.Exec(ctx, q); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create day partitions: %w", err)
	}
	p.mu.Lock()
	for _, d := range days {
		p.days[d] = true
	}
	p.mu.Unlock()
	return nil
}

// Maintain implements [Store]: it creates partitions from yesterday to
// PartitionsAhead days ahead, drops the day partitions that ended before
// now-Retention, and deletes intelligence patterns not seen for
// PatternRetention.
func (p *PG) Maintain(ctx context.Context) error {
	now := p.cfg.Now()
	today := dayStart(now)
	var days []time.Time
	for i := -1; i <= p.cfg.PartitionsAhead; i++ {
		days = append(days, today.AddDate(0, 0, i))
	}
	if err := p.createPartitions(ctx, days); err != nil {
		return err
	}
	cutoff := dayStart(now.Add(-p.cfg.Retention))
	dropped, err := p.dropBefore(ctx, cutoff)
	if err != nil {
		return err
	}
	if len(dropped) > 0 {
		p.cfg.Logger.Info("retention dropped partitions", "partitions", dropped, "before", cutoff)
	}
	if _, err := p.pool.Exec(ctx, `DELETE FROM intelligence_patterns WHERE last_seen < $1`,
		now.Add(-p.cfg.PatternRetention)); err != nil {
		return fmt.Errorf("apply pattern retention: %w", err)
	}
	return nil
}

// dropBefore drops every day partition of the event tables whose day ends at
// or before cutoff.
func (p *PG) dropBefore(ctx context.Context, cutoff time.Time) ([]string, error) {
	var dropped []string
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(partitionLockID)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT c.relname, parent.relname FROM pg_inherits i
			JOIN pg_class c ON c.oid = i.inhrelid
			JOIN pg_class parent ON parent.oid = i.inhparent
			WHERE parent.relname = ANY($1)`, tableNames())
		if err != nil {
			return err
		}
		type part struct{ name, parent string }
		parts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (part, error) {
			var x part
			return x, r.Scan(&x.name, &x.parent)
		})
		if err != nil {
			return err
		}
		for _, x := range parts {
			day, err := time.Parse("20060102", strings.TrimPrefix(x.name, x.parent+"_p"))
			if err != nil || day.AddDate(0, 0, 1).After(cutoff) {
				continue
			}
			if _, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{x.name}.Sanitize()); err != nil {
				return err
			}
			dropped = append(dropped, x.name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("drop expired partitions: %w", err)
	}
	p.m.dropped.Add(float64(len(dropped)))
	p.mu.Lock()
	for d := range p.days {
		if !d.AddDate(0, 0, 1).After(cutoff) {
			delete(p.days, d)
		}
	}
	p.mu.Unlock()
	return dropped, nil
}

func tableNames() []string {
	out := make([]string, len(eventTables))
	for i, t := range eventTables {
		out[i] = t.name
	}
	return out
}
