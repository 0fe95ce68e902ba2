package ingest_test

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/omninode/bridge/controlplane/ingest"
	"github.com/omninode/bridge/controlplane/store"
	"github.com/omninode/bridge/controlplane/store/storetest"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// recorder is a processor and observer that records what it is handed.
type recorder struct {
	mu       sync.Mutex
	seen     map[string]int // event id -> times processed
	observed map[string]time.Time
	critical map[string]bool
}

func newRecorder() *recorder {
	return &recorder{seen: map[string]int{}, observed: map[string]time.Time{}, critical: map[string]bool{}}
}

func (r *recorder) add(id string) {
	r.mu.Lock()
	r.seen[id]++
	r.mu.Unlock()
}

func (r *recorder) ProcessLifecycle(_ context.Context, evs []*bridgev1.ServiceLifecycleEvent) error {
	for _, e := range evs {
		r.add(e.GetEnvelope().GetEventId())
	}
	return nil
}

func (r *recorder) ProcessExecutions(_ context.Context, evs []*bridgev1.ExecutionIntelligenceEvent) error {
	for _, e := range evs {
		r.add(e.GetEnvelope().GetEventId())
	}
	return nil
}

func (r *recorder) ProcessCommunications(_ context.Context, evs []*bridgev1.CommunicationIntelligenceEvent) error {
	for _, e := range evs {
		r.add(e.GetEnvelope().GetEventId())
	}
	return nil
}

func (r *recorder) ProcessTools(_ context.Context, evs []*bridgev1.ToolRegistrationEvent) error {
	for _, e := range evs {
		r.add(e.GetEnvelope().GetEventId())
	}
	return nil
}

func (r *recorder) Observe(ev bus.Event, critical bool) {
	r.mu.Lock()
	r.observed[ev.GetEnvelope().GetEventId()] = time.Now()
	r.critical[ev.GetEnvelope().GetEventId()] = critical
	r.mu.Unlock()
}

func (r *recorder) processors() ingest.Processors {
	return ingest.Processors{Lifecycle: r, Execution: r, Communication: r, Tools: r}
}

// counts returns how many events were processed and whether any twice.
func (r *recorder) counts() (n int, dup bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.seen {
		n++
		dup = dup || c > 1
	}
	return n, dup
}

// env is one test's broker and store.
type env struct {
	kafka *testenv.KafkaCluster
	pg    *testenv.Postgres
	store *store.PG
	prod  *kgo.Client
	ids   map[string]bool // produced good event ids
	mu    sync.Mutex
	gen   *storetest.Gen
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{kafka: testenv.Kafka(t), pg: testenv.PostgreSQL(t), ids: map[string]bool{}, gen: storetest.NewGen(16)}
	cfg := store.DefaultConfig()
	cfg.DSN = e.pg.DSN()
	cfg.Logger = logger()
	s, err := store.OpenPG(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	e.store = s
	opts, err := bus.Config{Brokers: e.kafka.Brokers()}.ProducerOpts()
	if err != nil {
		t.Fatal(err)
	}
	e.prod, err = kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.prod.Close)
	return e
}

func (e *env) ingestConfig(rec *recorder) ingest.Config {
	cfg := ingest.DefaultConfig()
	cfg.Bus = bus.Config{Brokers: e.kafka.Brokers()}
	cfg.Store = e.store
	cfg.Processors = rec.processors()
	cfg.Observers = []ingest.Observer{rec}
	cfg.Registry = prometheus.NewRegistry()
	cfg.Logger = logger()
	cfg.BatchSize = 500
	cfg.BatchWait = 20 * time.Millisecond
	cfg.RetryMax = 500 * time.Millisecond
	cfg.ExtraOpts = []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.RebalanceTimeout(10 * time.Second)}
	return cfg
}

// produce sends n fresh events and records their ids.
func (e *env) produce(t testing.TB, n int) {
	t.Helper()
	e.mu.Lock()
	evs := e.gen.Batch(n)
	for _, ev := range evs {
		e.ids[ev.GetEnvelope().GetEventId()] = true
	}
	e.mu.Unlock()
	e.produceEvents(t, evs...)
}

func (e *env) produceEvents(t testing.TB, evs ...bus.Event) {
	t.Helper()
	recs := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		r, err := bus.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = r
	}
	if err := e.prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// storedIDs returns every stored event id.
func storedIDs(t testing.TB, pool *pgxpool.Pool) map[string]bool {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT execution_id::text FROM execution_intelligence UNION ALL
		SELECT communication_id::text FROM communication_intelligence UNION ALL
		SELECT event_id::text FROM service_lifecycle_events UNION ALL
		SELECT event_id::text FROM tool_registration_events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	n := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = true
		n++
	}
	if n != len(out) {
		t.Fatalf("%d rows but %d unique ids: duplicates stored", n, len(out))
	}
	return out
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkExactlyOnce asserts rows = unique ids produced and every stored event
// was processed exactly once.
func (e *env) checkExactlyOnce(t testing.TB, recs ...*recorder) {
	t.Helper()
	e.mu.Lock()
	want := len(e.ids)
	e.mu.Unlock()
	waitFor(t, 60*time.Second, "all events stored", func() bool {
		var n int
		_ = e.store.Pool().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM execution_intelligence)
			+ (SELECT count(*) FROM communication_intelligence) + (SELECT count(*) FROM service_lifecycle_events)
			+ (SELECT count(*) FROM tool_registration_events)`).Scan(&n)
		return n >= want
	})
	got := storedIDs(t, e.store.Pool())
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(got) != len(e.ids) {
		t.Fatalf("stored %d rows, produced %d unique ids", len(got), len(e.ids))
	}
	for id := range e.ids {
		if !got[id] {
			t.Fatalf("event %s produced but not stored", id)
		}
	}
	waitFor(t, 10*time.Second, "all events processed", func() bool {
		total := 0
		for _, r := range recs {
			n, _ := r.counts()
			total += n
		}
		return total >= want
	})
	union := map[string]int{}
	for _, r := range recs {
		r.mu.Lock()
		for id, c := range r.seen {
			union[id] += c
		}
		r.mu.Unlock()
	}
	for id, c := range union {
		if c != 1 {
			t.Fatalf("event %s processed %d times", id, c)
		}
	}
	if len(union) != want {
		t.Fatalf("processed %d events, want %d", len(union), want)
	}
}

// committed returns the group's committed offsets summed over partitions.
func committed(t testing.TB, brokers []string, group string) int64 {
	t.Helper()
	opts, _ := bus.Config{Brokers: brokers}.ClientOpts()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	var sum int64
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At > 0 {
			sum += o.At
		}
	})
	return sum
}

// run starts an Ingest and returns a stop function that waits for it.
func run(t testing.TB, cfg ingest.Config) (stop func()) {
	t.Helper()
	in, err := ingest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("ingest run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("ingest did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
