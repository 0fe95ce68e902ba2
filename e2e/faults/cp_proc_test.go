package faults

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// cpProc is a control-plane process on a fixed address.
type cpProc struct {
	*proc
	listen string
}

// cpDeps are the servers a control plane uses; empty ones are embedded.
type cpDeps struct {
	brokers               []string
	postgres, redis, cons string
}

// startControlPlane runs `omnibridge controlplane` and waits until it is
// ready (store reachable, ingest running).
func startControlPlane(t *testing.T, name string, d cpDeps, extra ...string) *cpProc {
	t.Helper()
	c := &cpProc{listen: freePort(t)}
	args := []string{"controlplane", "--brokers", strings.Join(d.brokers, ","), "--listen", c.listen,
		"--batch-wait", "20ms", "--log-level", "warn"}
	if d.postgres != "" {
		args = append(args, "--postgres", d.postgres)
	}
	if d.redis != "" {
		args = append(args, "--redis", d.redis)
	}
	if d.cons != "" {
		args = append(args, "--consul", d.cons)
	}
	c.proc = startProc(t, name, append(args, extra...)...)
	waitHTTP(t, "http://"+c.listen+"/readyz", 30*time.Second)
	return c
}

func (c *cpProc) restart(t *testing.T) {
	t.Helper()
	c.start(t)
	waitHTTP(t, "http://"+c.listen+"/readyz", 30*time.Second)
}

func (c *cpProc) url() string { return "http://" + c.listen }

// pgEvents reads, for the given sidecar instances, the unique communication
// event ids stored and every stored event's sequence number.
func pgEvents(t *testing.T, dsn string, instances []string) (comm int64, seqs map[string][]uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatalf("connect postgres: %v", err)
	}
	defer pool.Close()
	if err := pool.QueryRow(ctx,
		`SELECT count(DISTINCT communication_id) FROM communication_intelligence WHERE source_instance = ANY($1)`,
		instances).Scan(&comm); err != nil {
		t.Fatalf("count stored events: %v", err)
	}
	rows, err := pool.Query(ctx, `
		SELECT source_instance, sequence FROM communication_intelligence WHERE source_instance = ANY($1)
		UNION ALL SELECT source_instance, sequence FROM service_lifecycle_events WHERE source_instance = ANY($1)
		UNION ALL SELECT source_instance, sequence FROM execution_intelligence WHERE source_instance = ANY($1)
		UNION ALL SELECT source_instance, sequence FROM tool_registration_events WHERE source_instance = ANY($1)`, instances)
	if err != nil {
		t.Fatalf("read sequences: %v", err)
	}
	defer rows.Close()
	seqs = map[string][]uint64{}
	for rows.Next() {
		var inst string
		var seq int64
		if err := rows.Scan(&inst, &seq); err != nil {
			t.Fatal(err)
		}
		seqs[inst] = append(seqs[inst], uint64(seq))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return comm, seqs
}

// pgAccount settles the sidecars, waits until PostgreSQL holds every
// communication event they did not count as dropped (or nothing new is
// stored for 12 s, longer than the consumer group's 10 s session timeout,
// or 45 s pass), and returns the ledger.
func pgAccount(t *testing.T, scenario string, generated int64, dsn string, w *watcher, scs ...*sidecarProc) *ledger {
	t.Helper()
	led := &ledger{scenario: scenario, generated: generated, dropped: map[string]int64{}}
	var insts []string
	issued := map[string]uint64{}
	for _, sc := range scs {
		sc.settled(t, 30*time.Second)
		issued[sc.instance] = sc.sequence(t)
		for r, n := range droppedByReason(metrics(t, "http://"+sc.admin+"/metrics")) {
			led.dropped[r] += n
		}
		insts = append(insts, sc.instance)
	}
	deadline := time.Now().Add(45 * time.Second)
	last, lastChange := int64(-1), time.Now()
	for {
		comm, seqs := pgEvents(t, dsn, insts)
		led.stored, led.missing, led.gaps, led.jumps, led.firstMiss = comm, 0, nil, 0, nil
		led.addSequences(seqs, issued)
		if comm != last {
			last, lastChange = comm, time.Now()
		}
		if comm+led.droppedTotal() >= generated || time.Since(lastChange) > 12*time.Second || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	led.peakRSS = w.peaks()
	return led
}
