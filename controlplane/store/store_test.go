package store_test

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/omninode/bridge/controlplane/store"
	"github.com/omninode/bridge/controlplane/store/storetest"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func openPG(t testing.TB, now func() time.Time) *store.PG {
	t.Helper()
	cfg := store.DefaultConfig()
	cfg.DSN = testenv.PostgreSQL(t).DSN()
	cfg.Registry = prometheus.NewRegistry()
	if now != nil {
		cfg.Now = now
	}
	p, err := store.OpenPG(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func count(t testing.TB, pool *pgxpool.Pool, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// Both stores: a replayed batch inserts nothing twice and reports only new ids.
func TestWriteEventsIdempotent(t *testing.T) {
	t.Parallel()
	mem, err := store.NewMem(store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]store.Store{"pg": openPG(t, nil), "mem": mem} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			evs := storetest.NewGen(8).Batch(500)
			ins, err := s.WriteEvents(ctx, evs[:300])
			if err != nil {
				t.Fatal(err)
			}
			if len(ins) != 300 {
				t.Fatalf("first write inserted %d, want 300", len(ins))
			}
			// Overlapping replay: only the 200 new ones are inserted.
			ins, err = s.WriteEvents(ctx, evs)
			if err != nil {
				t.Fatal(err)
			}
			if len(ins) != 200 {
				t.Fatalf("replay inserted %d, want 200", len(ins))
			}
			for _, ev := range evs[:300] {
				if ins[ev.GetEnvelope().GetEventId()] {
					t.Fatalf("replayed event %s reported as inserted", ev.GetEnvelope().GetEventId())
				}
			}
			var replayed []bus.Event
			if err := s.Replay(ctx, time.Now().Add(-time.Hour), func(ev bus.Event) error {
				replayed = append(replayed, ev)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(replayed) != 500 {
				t.Fatalf("replay returned %d events, want 500", len(replayed))
			}
			seen := map[string]bool{}
			for i, ev := range replayed {
				seen[ev.GetEnvelope().GetEventId()] = true
				if i > 0 && ev.GetEnvelope().GetOccurredAt().AsTime().Before(replayed[i-1].GetEnvelope().GetOccurredAt().AsTime()) {
					t.Fatal("replay not in time order")
				}
			}
			if len(seen) != 500 {
				t.Fatalf("replay returned %d unique events, want 500", len(seen))
			}
			// The executions' summary matches what was written.
			var want store.OpStats
			var sum int64
			for _, ev := range evs {
				if e, ok := ev.(*bridgev1.ExecutionIntelligenceEvent); ok && e.GetPreContext().GetServiceName() == "svc-1" && e.GetPreContext().GetOperation() == "op-2" {
					want.Count++
					ms := e.GetResults().GetExecutionTime().AsDuration().Milliseconds()
					sum += ms
					want.MaxMs = max(want.MaxMs, ms)
				}
			}
			got, err := s.OperationStats(ctx, "svc-1", "op-2")
			if err != nil {
				t.Fatal(err)
			}
			if want.Count == 0 || got.Count != want.Count || got.MaxMs != want.MaxMs || got.Failures != 0 ||
				int64(got.AvgMs*float64(got.Count)+0.5) != sum {
				t.Fatalf("stats %+v, want count %d max %d sum %d", got, want.Count, want.MaxMs, sum)
			}
		})
	}
}

// Rows are stored field by field, and sequences and tools are tracked.
func TestPGFieldsSequencesTools(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cfg := store.DefaultConfig()
	cfg.DSN = testenv.PostgreSQL(t).DSN()
	reg := prometheus.NewRegistry()
	cfg.Registry = reg
	p, err := store.OpenPG(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	src := bus.NewSource(&bridgev1.Source{Service: "pay", Instance: "pay-1"}, 0)
	at := time.Now().UTC().Truncate(time.Microsecond)
	ex := storetest.Execution(src.Envelope(at, nil), "charge", 1234*time.Millisecond, false)
	ex.Results.Error = "card declined \x00 bad"
	src.Envelope(at, nil) // sequence 2 is lost: a gap
	co := storetest.Communication(src.Envelope(at, nil), "/v1/pay", 503, 20*time.Millisecond)
	tool := storetest.Tool(src.Envelope(at, nil), "refund")
	if _, err := p.WriteEvents(ctx, []bus.Event{ex, co, tool}); err != nil {
		t.Fatal(err)
	}
	var (
		svc, op, data string
		ms            int32
		ok            bool
		created       time.Time
	)
	if err := p.Pool().QueryRow(ctx, `SELECT service_name, operation, execution_time_ms, success, intelligence_data::text, created_at
		FROM execution_intelligence WHERE execution_id = $1`, ex.GetEnvelope().GetEventId()).Scan(&svc, &op, &ms, &ok, &data, &created); err != nil {
		t.Fatal(err)
	}
	if svc != "pay" || op != "charge" || ms != 1234 || ok || !created.Equal(at) || !strings.Contains(data, `"error": "card declined`) {
		t.Fatalf("execution row: %s %s %d %v %s %s", svc, op, ms, ok, data, created)
	}
	var status int32
	var route, target string
	if err := p.Pool().QueryRow(ctx, `SELECT status_code, success, route, target_service FROM communication_intelligence
		WHERE communication_id = $1`, co.GetEnvelope().GetEventId()).Scan(&status, &ok, &route, &target); err != nil {
		t.Fatal(err)
	}
	if status != 503 || ok || route != "/v1/pay" || target != "pay" {
		t.Fatalf("communication row: %d %v %s %s", status, ok, route, target)
	}
	if n := count(t, p.Pool(), `SELECT gaps FROM source_sequences WHERE instance = 'pay-1'`); n != 1 {
		t.Fatalf("gaps = %d, want 1", n)
	}
	mfs, _ := reg.Gather()
	gauge := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "omnibridge_store_source_sequence_gaps" {
			gauge = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if gauge != 1 {
		t.Fatalf("sequence gaps gauge = %v, want 1", gauge)
	}
	if n := count(t, p.Pool(), `SELECT count(*) FROM mcp_tools WHERE service_source = 'pay' AND tool_name = 'refund'`); n != 1 {
		t.Fatalf("mcp_tools rows = %d, want 1", n)
	}
}

// Retention drops day partitions older than the retention and keeps the rest.
func TestRetentionDropsPartitions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	p := openPG(t, clock)
	ctx := t.Context()
	g := storetest.NewGen(2)
	var evs []bus.Event
	for _, age := range []int{100, 91, 89, 10, 0} { // days old
		g.Now = func() time.Time { return now.AddDate(0, 0, -age) }
		evs = append(evs, g.Batch(10)...)
	}
	ins, err := p.WriteEvents(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 30 { // 100 and 91 days old are past the 90-day retention
		t.Fatalf("inserted %d, want 30", len(ins))
	}
	now = now.AddDate(0, 0, 20) // 20 days later: the 89-day-old events expire
	if err := p.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	old := "execution_intelligence_p" + time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -89).Format("20060102")
	if n := count(t, p.Pool(), `SELECT count(*) FROM pg_class WHERE relname = $1`, old); n != 0 {
		t.Fatalf("partition %s still exists", old)
	}
	kept := "execution_intelligence_p" + time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -10).Format("20060102")
	if n := count(t, p.Pool(), `SELECT count(*) FROM pg_class WHERE relname = $1`, kept); n != 1 {
		t.Fatalf("partition %s was dropped", kept)
	}
	total := count(t, p.Pool(), `SELECT (SELECT count(*) FROM execution_intelligence) + (SELECT count(*) FROM communication_intelligence)
		+ (SELECT count(*) FROM service_lifecycle_events) + (SELECT count(*) FROM tool_registration_events)`)
	if total != 20 {
		t.Fatalf("rows after retention = %d, want 20", total)
	}
	ahead := "execution_intelligence_p" + now.AddDate(0, 0, 3).Format("20060102")
	if n := count(t, p.Pool(), `SELECT count(*) FROM pg_class WHERE relname = $1`, ahead); n != 1 {
		t.Fatalf("partition %s not created ahead", ahead)
	}
}

// A failing migration is reported by file name.
func TestMigrationErrorNamesFile(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(t.Context(), testenv.PostgreSQL(t).DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	fsys := fstest.MapFS{
		"m/0001_ok.sql":     {Data: []byte(`CREATE TABLE a (x int);`)},
		"m/0002_broken.sql": {Data: []byte(`CREATE TABLE b (x nosuchtype);`)},
	}
	applied, err := store.MigrateFS(t.Context(), pool, fsys, "m")
	if err == nil || !strings.Contains(err.Error(), "0002_broken.sql") {
		t.Fatalf("err = %v, want one naming 0002_broken.sql", err)
	}
	if len(applied) != 1 || applied[0] != "0001_ok.sql" {
		t.Fatalf("applied = %v", applied)
	}
	// Running again applies nothing twice and still fails on the broken file.
	applied, err = store.MigrateFS(t.Context(), pool, fsys, "m")
	if err == nil || len(applied) != 0 {
		t.Fatalf("second run: applied %v, err %v", applied, err)
	}
}

// BenchmarkWriteEvents reports rows/s stored with COPY by two writers.
func BenchmarkWriteEvents(b *testing.B) {
	p := openPG(b, nil)
	for b.Loop() {
		rate, err := storetest.WriteThroughput(b.Context(), p, 100_000, 5000, 2)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rate, "rows/s")
	}
}
