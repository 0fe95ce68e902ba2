package sidecar

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/testenv"
)

// load sends requests at a steady pace until stop is closed, recording
// errors and per-phase latencies.
type load struct {
	sent, errs atomic.Int64
	mu         sync.Mutex
	lat        map[string][]time.Duration
	phase      atomic.Value
}

func runLoad(t *testing.T, url string, stop chan struct{}) *load {
	l := &load{lat: map[string][]time.Duration{}}
	l.phase.Store("before")
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			tick := time.NewTicker(4 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				start := time.Now()
				resp, err := cl.Post(url+"/orders/"+itoa(1000+w*1_000_000+i), "application/json", strings.NewReader(`{"n":1}`))
				l.sent.Add(1)
				if err != nil {
					if l.errs.Add(1) == 1 {
						t.Logf("first error: %v", err)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					if l.errs.Add(1) == 1 {
						t.Logf("first error: status %d", resp.StatusCode)
					}
				}
				d := time.Since(start)
				l.mu.Lock()
				p := l.phase.Load().(string)
				l.lat[p] = append(l.lat[p], d)
				l.mu.Unlock()
			}
		})
	}
	t.Cleanup(wg.Wait)
	go func() { <-stop; wg.Wait() }()
	return l
}

func (l *load) p50(phase string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := slices.Clone(l.lat[phase])
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}

func TestBrokerOutageSpoolsAndReplaysExactlyOnce(t *testing.T) {
	kafka := testenv.Kafka(t)
	events := collect(t, kafka.Brokers())
	up := startUpstream(t, upstreamMux(make(chan struct{})))
	sc := startSidecar(t, up, kafka.Brokers(), nil)
	events.lifecycle(t, bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED)

	stop := make(chan struct{})
	l := runLoad(t, "http://"+sc.ProxyAddr(), stop)
	var stopOnce sync.Once
	t.Cleanup(func() { stopOnce.Do(func() { close(stop) }) })
	time.Sleep(700 * time.Millisecond)

	kafka.Stop(t)
	l.phase.Store("outage")
	deadline := time.Now().Add(10 * time.Second)
	for sc.EmitStats().Spooled == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(700 * time.Millisecond)
	st := sc.EmitStats()
	if st.Spooled == 0 || st.SpoolBytes == 0 || st.BusLive {
		t.Fatalf("during the outage: %+v, want events spooled", st)
	}
	kafka.Start(t)
	l.phase.Store("after")
	time.Sleep(700 * time.Millisecond)
	stopOnce.Do(func() { close(stop) })
	time.Sleep(100 * time.Millisecond)

	if l.errs.Load() != 0 {
		t.Fatalf("%d of %d proxied requests failed during the outage", l.errs.Load(), l.sent.Load())
	}
	before, outage := l.p50("before"), l.p50("outage")
	t.Logf("requests %d; p50 before %v, during outage %v, after %v", l.sent.Load(), before, outage, l.p50("after"))
	if outage > 10*before+20*time.Millisecond {
		t.Errorf("latency during the outage p50 %v vs %v before", outage, before)
	}

	// Everything offered is delivered or counted as dropped, and the spool drains.
	deadline = time.Now().Add(30 * time.Second)
	for {
		st = sc.EmitStats()
		if st.SpoolPending == 0 && st.QueueDepth == 0 && st.Delivered+st.DroppedTotal() == st.Emitted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("emitter did not settle: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.DroppedTotal() != 0 {
		t.Errorf("dropped %v with a large spool, want none", st.Dropped)
	}
	if st.Replayed == 0 {
		t.Errorf("nothing replayed: %+v", st)
	}
	// On the broker: every event exactly once by id.
	deadline = time.Now().Add(15 * time.Second)
	for {
		n, dups, _ := events.snapshot()
		if int64(n) >= st.Delivered {
			if dups != 0 || int64(n) != st.Delivered {
				t.Fatalf("broker holds %d records for %d delivered events, %d ids duplicated", n, st.Delivered, dups)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker holds %d records, want %d", n, st.Delivered)
		}
		time.Sleep(50 * time.Millisecond)
	}
	comm := 0
	events.mu.Lock()
	for _, ev := range events.events {
		if _, ok := ev.(*bridgev1.CommunicationIntelligenceEvent); ok {
			comm++
		}
	}
	events.mu.Unlock()
	if int64(comm) != l.sent.Load() {
		t.Errorf("communication events %d, requests %d", comm, l.sent.Load())
	}
	t.Logf("emitter: %+v", st)
}
