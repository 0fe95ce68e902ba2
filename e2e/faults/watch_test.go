package faults

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// Memory bounds checked in every scenario: a sidecar must stay small even
// while it spools (its queue and spool are bounded), a control plane within
// its batch and queue bounds, and the test process itself (load generator,
// collector) bounded too.
const (
	maxSidecarRSS      = 150 << 20
	maxControlPlaneRSS = 400 << 20
	maxTestHeap        = 512 << 20
)

// watcher samples the RSS of processes and the test's own heap every 250 ms
// until t ends, then checks the bounds.
type watcher struct {
	mu       sync.Mutex
	procs    map[string]*proc
	limits   map[string]int64
	heapPeak uint64
	stop     chan struct{}
	done     chan struct{}
}

func watch(t *testing.T) *watcher {
	w := &watcher{procs: map[string]*proc{}, limits: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			w.sample()
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		w.halt()
		for name, p := range w.procs {
			if peak := p.peakRSS(); peak > w.limits[name] {
				t.Errorf("%s peak RSS %d MiB, bound %d MiB", name, peak>>20, w.limits[name]>>20)
			}
		}
		if w.heapPeak > maxTestHeap {
			t.Errorf("test process heap peaked at %d MiB, bound %d MiB", w.heapPeak>>20, maxTestHeap>>20)
		}
	})
	return w
}

func (w *watcher) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// add watches p under name with an RSS bound.
func (w *watcher) add(name string, p *proc, limit int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.procs[name], w.limits[name] = p, limit
}

func (w *watcher) sample() {
	w.mu.Lock()
	procs := make([]*proc, 0, len(w.procs))
	for _, p := range w.procs {
		procs = append(procs, p)
	}
	w.mu.Unlock()
	for _, p := range procs {
		p.rss()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.mu.Lock()
	w.heapPeak = max(w.heapPeak, ms.HeapInuse)
	w.mu.Unlock()
}

// peaks returns each process's peak RSS and the test heap's.
func (w *watcher) peaks() map[string]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int64{"test-heap": int64(w.heapPeak)}
	for name, p := range w.procs {
		out[name] = p.peakRSS()
	}
	return out
}
