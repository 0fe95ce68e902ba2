package ingest_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/store/storetest"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/proto"
)

// Poison records go to the dead-letter topic with reasons; the good records
// around them are all stored and processed once.
func TestPoisonRecordsDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := newRecorder()
	cfg := e.ingestConfig(rec)
	spans := tracetest.NewSpanRecorder()
	cfg.Tracer = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	run(t, cfg)

	e.produce(t, 500)
	src := bus.NewSource(&bridgev1.Source{Service: "pay", Instance: "pay-1"}, 0)
	good, _ := bus.Encode(storetest.Execution(src.Envelope(time.Now(), nil), "op", time.Millisecond, true))
	garbage := &kgo.Record{Topic: bus.TopicExecution, Value: []byte("\xff\xfe garbage"), Headers: good.Headers}
	wrongType := &kgo.Record{Topic: bus.TopicLifecycle, Value: good.Value, Headers: good.Headers} // an execution on the lifecycle topic
	missing := storetest.Execution(src.Envelope(time.Now(), nil), "op", time.Millisecond, true)
	missing.CorrelationId = ""
	raw, _ := proto.Marshal(missing)
	missingRec := &kgo.Record{Topic: bus.TopicExecution, Value: raw, Headers: good.Headers}
	noHeader := &kgo.Record{Topic: bus.TopicTools, Value: []byte("x")}
	if err := e.prod.ProduceSync(t.Context(), garbage, wrongType, missingRec, noHeader).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e.produce(t, 500)
	e.checkExactlyOnce(t, rec)

	// Read the dead-letter topic.
	opts, _ := bus.Config{Brokers: e.kafka.Brokers()}.ClientOpts(kgo.ConsumeTopics(bus.TopicDeadLetter),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	reasons := map[string]string{}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for len(reasons) < 4 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			reasons[string(r.Value)] = bus.Header(r, bus.HeaderDLQReason) + " @" + bus.Header(r, bus.HeaderDLQTopic)
		})
	}
	want := map[string]string{
		string(garbage.Value): "malformed: ",
		string(good.Value):    "topic_mismatch: ",
		string(raw):           "invalid: ",
		"x":                   "unknown_type: ",
	}
	for v, prefix := range want {
		if !strings.HasPrefix(reasons[v], prefix) {
			t.Errorf("dead letter reason for %q = %q, want prefix %q", v[:min(len(v), 10)], reasons[v], prefix)
		}
	}
	if !strings.HasSuffix(reasons["x"], "@"+bus.TopicTools) {
		t.Errorf("dead letter topic header = %q", reasons["x"])
	}
	if got := counter(t, cfg.Registry, "omnibridge_ingest_dead_letters_total", "reason", "malformed"); got != 1 {
		t.Errorf("malformed dead letters = %v, want 1", got)
	}

	// Each batch has a span linked to the traces its events carry.
	traces := map[string]bool{}
	events := 0
	for _, s := range spans.Ended() {
		if s.Name() != "ingest.batch" {
			continue
		}
		n := 0
		for _, a := range s.Attributes() {
			if a.Key == "omnibridge.events" {
				n = int(a.Value.AsInt64())
			}
		}
		events += n
		// Every event carries a trace (the first of the poison test's own
		// events do not); links are capped at 128 per batch.
		if len(s.Links()) < min(n, 128)-3 || len(s.Links()) > 128 {
			t.Errorf("batch of %d events has %d links", n, len(s.Links()))
		}
		for _, l := range s.Links() {
			traces[l.SpanContext.TraceID().String()] = true
		}
	}
	if events != 1000 || len(traces) == 0 {
		t.Errorf("batch spans cover %d events and link %d traces, want 1000 events", events, len(traces))
	}
}

// A critical event is processed at once while the routine lane holds a large backlog.
func TestFastLaneBypassesBacklog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := newRecorder()
	cfg := e.ingestConfig(rec)
	cfg.BatchSize = 100
	cfg.Writers = 1
	var routineWrites atomic.Int64
	cfg.Store = slowWriter{w: e.store, delay: 40 * time.Millisecond, writes: &routineWrites}
	e.produce(t, 4000) // routine: at 100 events per 40ms+ it takes over 1.6s to drain
	run(t, cfg)
	// Wait until the whole backlog is polled and queued in the routine lane,
	// so that what follows measures the lanes, not the fetch of the backlog.
	waitFor(t, 30*time.Second, "the backlog to be queued", func() bool {
		rec.mu.Lock()
		n := len(rec.observed)
		rec.mu.Unlock()
		return int(laneDepth(t, cfg.Registry, "routine"))+n >= 4000-2*cfg.BatchSize && routineWrites.Load() > 2
	})

	src := bus.NewSource(&bridgev1.Source{Service: "pay", Instance: "pay-1"}, 0)
	bad := storetest.Communication(src.Envelope(time.Now(), nil), "/pay", 503, 5*time.Millisecond)
	id := bad.GetEnvelope().GetEventId()
	e.mu.Lock()
	e.ids[id] = true
	e.mu.Unlock()
	sent := time.Now()
	e.produceEvents(t, bad)
	var delay time.Duration
	var backlogLeft int
	waitFor(t, 10*time.Second, "the critical event", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		at, ok := rec.observed[id]
		if ok {
			delay = at.Sub(sent)
			backlogLeft = 4001 - len(rec.observed)
		}
		return ok
	})
	t.Logf("fast lane poll-to-stored sum %v", histSum(t, cfg.Registry, "omnibridge_ingest_processing_delay_seconds", "fast"))
	t.Logf("critical event processed %s after produce, with %d routine events still queued", delay, backlogLeft)
	crit := 0
	rec.mu.Lock()
	for _, c := range rec.critical {
		if c {
			crit++
		}
	}
	rec.mu.Unlock()
	if crit != 1 {
		t.Errorf("%d events took the fast lane, want only the 503", crit)
	}
	if !rec.critical[id] {
		t.Error("the 503 took the routine lane")
	}
	if backlogLeft < 1000 {
		t.Errorf("only %d routine events were left when the critical one was processed; the backlog was not large", backlogLeft)
	}
	e.checkExactlyOnce(t, rec)
	drain := time.Since(sent)
	t.Logf("the routine backlog took %s more to drain", drain)
	if delay > drain/3 {
		t.Errorf("critical event delay %s is not small against the backlog's drain time %s", delay, drain)
	}
}

// slowWriter delays routine-sized writes to build a backlog.
type slowWriter struct {
	w interface {
		WriteEvents(context.Context, []bus.Event) (map[string]bool, error)
	}
	delay  time.Duration
	writes *atomic.Int64
}

func (s slowWriter) WriteEvents(ctx context.Context, evs []bus.Event) (map[string]bool, error) {
	if len(evs) > 1 {
		s.writes.Add(1)
		time.Sleep(s.delay)
	}
	return s.w.WriteEvents(ctx, evs)
}

func histSum(t testing.TB, reg *prometheus.Registry, name, lane string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == lane {
					return m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return -1
}

func laneDepth(t testing.TB, reg *prometheus.Registry, lane string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "omnibridge_ingest_lane_queue_depth" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == lane {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
