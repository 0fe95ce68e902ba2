package faults

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startUpstream serves a small JSON API on loopback until t ends.
func startUpstream(t *testing.T, h http.Handler) string {
	t.Helper()
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"ok":true}`))
		})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return "http://" + l.Addr().String()
}

// load is a steady open-ish load: workers send at a fixed total rate to
// targets in turn and count what was answered (any HTTP status: each one is
// a communication event at the sidecar) and what failed in transport.
type load struct {
	answered, failed, non2xx atomic.Int64
	perTarget                map[string]*atomic.Int64 // answered, by target
	stop                     chan struct{}
	once                     sync.Once
	wg                       sync.WaitGroup
	cl                       *http.Client
}

// startLoad sends about rate requests per second, spread over targets
// (base URLs) and over path, until stopped (stop is idempotent and runs at
// t's end).
func startLoad(t *testing.T, rate int, path string, targets ...string) *load {
	t.Helper()
	const workers = 4
	l := &load{perTarget: map[string]*atomic.Int64{}, stop: make(chan struct{}), cl: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true},
	}}
	for _, tg := range targets {
		l.perTarget[tg] = new(atomic.Int64)
	}
	interval := time.Duration(workers) * time.Second / time.Duration(rate)
	for w := range workers {
		l.wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				target := targets[(w+i)%len(targets)]
				url := target + path + strconv.Itoa(w*10_000_000+i)
				resp, err := l.cl.Post(url, "application/json", strings.NewReader(`{"item":"book","qty":1}`))
				if err != nil {
					l.failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				l.answered.Add(1)
				l.perTarget[target].Add(1)
				if resp.StatusCode/100 != 2 {
					l.non2xx.Add(1)
				}
			}
		})
	}
	t.Cleanup(l.halt)
	return l
}

// halt stops the load and waits for in-flight requests.
func (l *load) halt() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	l.cl.CloseIdleConnections()
}

// stopped halts the load and returns how many requests were answered.
func (l *load) stopped() int64 {
	l.halt()
	return l.answered.Load()
}
