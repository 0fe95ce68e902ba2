package analyze

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/ingest"
	"github.com/omninode/bridge/controlplane/store"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// scenarioEvents is a small mesh: traffic with an A→B→C failure chain, a
// lifecycle, tools with drift and calls.
func scenarioEvents() []bus.Event {
	s := sources{}
	var evs []bus.Event
	evs = append(evs, s.lifecycle("a", bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED, t0, []string{"checkout"}, []string{"b"}))
	for i := 0; i < 60; i++ {
		evs = append(evs, abc(s, i, i%4 == 0, true)...)
	}
	evs = append(evs, s.tool("docs", "search_docs", "search", t0, "query"), s.tool("docs", "search_docs", "search", t0.Add(time.Second), "query", "limit"))
	for i := 0; i < 20; i++ {
		evs = append(evs, s.toolCall("docs", "search_docs", t0.Add(time.Duration(i)*time.Second), 15*time.Millisecond, i%5 != 0))
	}
	return evs
}

// snapshotOf is what must survive a restart.
func snapshotOf(a *Analyzer) []proto.Message {
	routes := a.RouteStats("", bridgev1.Window_WINDOW_1H, 0)
	for _, r := range routes {
		// Sample trace ids are kept newest first; events stored with the
		// same timestamp replay in id order, not arrival order, so only the
		// set of samples survives a restart, not their order among equals.
		slices.Sort(r.SampleTraceIds)
	}
	out := []proto.Message{a.Graph(bridgev1.Window_WINDOW_1H), &bridgev1.ListRouteStatsResponse{Routes: routes},
		&bridgev1.ListPatternsResponse{Patterns: a.Patterns("", 0)}, &bridgev1.ListToolsResponse{Tools: a.Tools("")}}
	return out
}

// The graph, statistics, patterns and tool registry are rebuilt from
// PostgreSQL after a restart. Events travel through the real broker, the
// real ingest pipeline and the real store.
func TestRestartRebuildsFromPostgreSQL(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	kafka := testenv.Kafka(t)
	pgEnv := testenv.PostgreSQL(t)
	c := &clock{t: t0.Add(2 * time.Minute)}
	scfg := store.DefaultConfig()
	scfg.DSN, scfg.Now = pgEnv.DSN(), c.Now
	pg, err := store.OpenPG(ctx, scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()

	a1 := newTestAnalyzer(t, c, func(cfg *Config) { cfg.Pool = pg.Pool(); cfg.Source = pg })
	run1, stop1 := context.WithCancel(ctx)
	done1 := make(chan error, 1)
	go func() { done1 <- a1.Run(run1) }()
	<-a1.Ready()

	icfg := ingest.DefaultConfig()
	icfg.Bus = bus.Config{Brokers: kafka.Brokers()}
	icfg.Store = pg
	icfg.Registry = prometheus.NewRegistry()
	icfg.Group = "analyze-restart"
	icfg.Processors = ingest.Processors{Lifecycle: a1, Execution: a1, Communication: a1, Tools: a1}
	in, err := ingest.New(icfg)
	if err != nil {
		t.Fatal(err)
	}
	ictx, stopIngest := context.WithCancel(ctx)
	idone := make(chan error, 1)
	go func() { idone <- in.Run(ictx) }()

	popts, err := bus.Config{Brokers: kafka.Brokers()}.ProducerOpts()
	if err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(popts...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	evs := scenarioEvents()
	for _, ev := range evs {
		r, err := bus.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		prod.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := float64(len(evs))
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := 0.0
		mfs, _ := a1.cfg.Registry.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "omnibridge_analyze_events_total" {
				for _, m := range mf.GetMetric() {
					n += m.GetCounter().GetValue()
				}
			}
		}
		if n >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("analyzed %v of %v events", n, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopIngest()
	if err := <-idone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	c.Set(t0.Add(3 * time.Minute))
	before := snapshotOf(a1)
	if err := a1.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	stop1() // Run flushes patterns and tools on the way out
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	if len(before[2].(*bridgev1.ListPatternsResponse).Patterns) == 0 || len(before[3].(*bridgev1.ListToolsResponse).Tools[0].History) != 2 {
		t.Fatalf("scenario produced no patterns or no drift: %v", before)
	}

	// A new control plane on the same database.
	a2 := newTestAnalyzer(t, c, func(cfg *Config) { cfg.Pool = pg.Pool(); cfg.Source = pg })
	run2, stop2 := context.WithCancel(ctx)
	done2 := make(chan error, 1)
	go func() { done2 <- a2.Run(run2) }()
	<-a2.Ready()
	after := snapshotOf(a2)
	for i := range before {
		if !proto.Equal(before[i], after[i]) {
			t.Errorf("part %d differs after restart:\nbefore %v\nafter  %v", i, before[i], after[i])
		}
	}
	// Patterns were updated in place: one row per template, counts not doubled.
	var rows, freq int64
	if err := pg.Pool().QueryRow(ctx, `SELECT count(*), coalesce(sum(frequency),0) FROM intelligence_patterns`).Scan(&rows, &freq); err != nil {
		t.Fatal(err)
	}
	var wantFreq int64
	for _, p := range before[2].(*bridgev1.ListPatternsResponse).Patterns {
		wantFreq += int64(p.Frequency)
	}
	if rows != int64(len(before[2].(*bridgev1.ListPatternsResponse).Patterns)) || freq != wantFreq {
		t.Fatalf("intelligence_patterns has %d rows with frequency %d, want %d rows with %d", rows, freq, len(before[2].(*bridgev1.ListPatternsResponse).Patterns), wantFreq)
	}
	stop2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	// A second flush after the restart must not double the counts.
	if err := pg.Pool().QueryRow(ctx, `SELECT coalesce(sum(frequency),0) FROM intelligence_patterns`).Scan(&freq); err != nil || freq != wantFreq {
		t.Fatalf("after second shutdown frequency %d (err %v), want %d", freq, err, wantFreq)
	}
}

// The embedded mode (no pool) rebuilds from the in-process store, and an
// event delivered live while the replay runs is analyzed once.
func TestEmbeddedReplayAnalyzesEachEventOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := &clock{t: t0.Add(2 * time.Minute)}
	scfg := store.DefaultConfig()
	scfg.Now = c.Now
	mem, err := store.NewMem(scfg)
	if err != nil {
		t.Fatal(err)
	}
	evs := scenarioEvents()
	if _, err := mem.WriteEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	ref := newTestAnalyzer(t, c, nil)
	feed(t, ref, evs...)

	// The live path delivers the last event again while the replay runs.
	last := evs[len(evs)-1]
	src := replayHook{EventSource: mem, during: func(a *Analyzer) { feed(t, a, last) }}
	a := newTestAnalyzer(t, c, func(cfg *Config) { cfg.Source = &src })
	src.a = a
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	<-a.Ready()
	want, got := snapshotOf(ref), snapshotOf(a)
	for i := range want {
		if !proto.Equal(want[i], got[i]) {
			t.Errorf("part %d differs:\nwant %v\ngot  %v", i, want[i], got[i])
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// replayHook runs a function (a live delivery) in the middle of a replay.
type replayHook struct {
	EventSource
	a      *Analyzer
	during func(*Analyzer)
}

func (r *replayHook) Replay(ctx context.Context, since time.Time, fn func(bus.Event) error) error {
	n := 0
	return r.EventSource.Replay(ctx, since, func(ev bus.Event) error {
		n++
		if n == 5 {
			r.during(r.a)
		}
		return fn(ev)
	})
}

// The analyzer plugs into the pipeline's seams.
var (
	_ ingest.LifecycleProcessor     = (*Analyzer)(nil)
	_ ingest.ExecutionProcessor     = (*Analyzer)(nil)
	_ ingest.CommunicationProcessor = (*Analyzer)(nil)
	_ ingest.ToolProcessor          = (*Analyzer)(nil)
	_ EventSource                   = (*store.PG)(nil)
	_ EventSource                   = (*store.Mem)(nil)
)
