package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/omninode/bridge/controlplane/store"
	"github.com/omninode/bridge/controlplane/store/storetest"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
)

// counterValue returns the value of an unlabelled counter in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func storedCount(t *testing.T, p *store.PG) int64 {
	t.Helper()
	return count(t, p.Pool(), `SELECT (SELECT count(*) FROM execution_intelligence)
		+ (SELECT count(*) FROM communication_intelligence) + (SELECT count(*) FROM service_lifecycle_events)
		+ (SELECT count(*) FROM tool_registration_events)`)
}

// Fresh batches are COPied straight into the tables; a batch that meets a
// stored id falls back to the staged path and reports only the new ids; a
// duplicate inside one batch is stored once; after a staged batch finds
// nothing stored, the direct path is used again.
func TestWriteEventsDirectAndFallback(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	cfg := store.DefaultConfig()
	cfg.DSN = testenv.PostgreSQL(t).DSN()
	cfg.Registry = reg
	p, err := store.OpenPG(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ctx := t.Context()
	gen := storetest.NewGen(8)
	const fallbacks = "omnibridge_store_staged_fallbacks_total"

	// A duplicate inside one batch: stored once, no direct attempt.
	evs := gen.Batch(100)
	ins, err := p.WriteEvents(ctx, append(evs, evs[7], evs[42]))
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 100 || storedCount(t, p) != 100 || counterValue(t, reg, fallbacks) != 0 {
		t.Fatalf("inserted %d, stored %d, fallbacks %v; want 100, 100, 0",
			len(ins), storedCount(t, p), counterValue(t, reg, fallbacks))
	}

	// Fresh: direct.
	fresh := gen.Batch(300)
	if ins, err = p.WriteEvents(ctx, fresh); err != nil || len(ins) != 300 {
		t.Fatalf("fresh batch: inserted %d, err %v", len(ins), err)
	}
	for _, ev := range fresh {
		if !ins[ev.GetEnvelope().GetEventId()] {
			t.Fatalf("fresh event %s not reported as inserted", ev.GetEnvelope().GetEventId())
		}
	}
	if v := counterValue(t, reg, fallbacks); v != 0 {
		t.Fatalf("fallbacks after a fresh batch = %v, want 0", v)
	}

	// Overlapping replay: the direct COPY fails, the staged path stores the new ones only.
	more := gen.Batch(50)
	replay := append(append([]bus.Event{}, fresh[100:]...), more...)
	if ins, err = p.WriteEvents(ctx, replay); err != nil {
		t.Fatal(err)
	}
	if len(ins) != 50 || storedCount(t, p) != 450 || counterValue(t, reg, fallbacks) != 1 {
		t.Fatalf("replay: inserted %d, stored %d, fallbacks %v; want 50, 450, 1",
			len(ins), storedCount(t, p), counterValue(t, reg, fallbacks))
	}
	for _, ev := range more {
		if !ins[ev.GetEnvelope().GetEventId()] {
			t.Fatalf("new event %s of the replay not reported as inserted", ev.GetEnvelope().GetEventId())
		}
	}

	// The next fresh batch goes staged (no duplicates found: the replay is
	// over), so the next replay tries the direct path again and falls back.
	if ins, err = p.WriteEvents(ctx, gen.Batch(20)); err != nil || len(ins) != 20 {
		t.Fatalf("fresh batch after replay: inserted %d, err %v", len(ins), err)
	}
	if ins, err = p.WriteEvents(ctx, fresh[:10]); err != nil || len(ins) != 0 {
		t.Fatalf("second replay: inserted %d, err %v", len(ins), err)
	}
	if v := counterValue(t, reg, fallbacks); v != 2 {
		t.Fatalf("fallbacks = %v, want 2", v)
	}
	if n := storedCount(t, p); n != 470 {
		t.Fatalf("stored %d, want 470", n)
	}
}

// Two writers storing the same batches at once (two replicas around a
// rebalance) store each event once and report it as inserted to one of them.
func TestWriteEventsConcurrentSameBatch(t *testing.T) {
	t.Parallel()
	p := openPG(t, nil)
	batches := make([][]bus.Event, 6)
	gen := storetest.NewGen(16)
	for i := range batches {
		batches[i] = gen.Batch(400)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range batches {
				b := batches[(i+w)%len(batches)] // overlapping, in different orders
				ins, err := p.WriteEvents(context.Background(), b)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for id := range ins {
					seen[id]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 2400 || storedCount(t, p) != 2400 {
		t.Fatalf("reported %d ids, stored %d; want 2400 each", len(seen), storedCount(t, p))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("event %s reported inserted %d times", id, n)
		}
	}
}
