package faults

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultyUpstream serves the good API on /orders/ and three bad routes:
// /hang never answers (until the client goes away), /reset resets the
// connection, /huge answers 200 with a 24 MiB body, slowly.
type faultyUpstream struct {
	hangs, resets, huges atomic.Int64
	release              chan struct{}
}

const hugeBody = 24 << 20

func (u *faultyUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	switch {
	case r.URL.Path == "/hang":
		u.hangs.Add(1)
		select {
		case <-r.Context().Done():
		case <-u.release:
		}
	case r.URL.Path == "/reset":
		u.resets.Add(1)
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
		}
	case r.URL.Path == "/huge":
		u.huges.Add(1)
		w.Header().Set("Content-Type", "application/octet-stream")
		chunk := []byte(strings.Repeat("x", 256<<10))
		rc := http.NewResponseController(w)
		for n := 0; n < hugeBody; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			_ = rc.Flush()
			time.Sleep(25 * time.Millisecond) // about 10 MiB/s: 2.4 s per body
		}
	default:
		_, _ = w.Write([]byte(`{"ok":true}`))
	}
}

// TestUpstreamHangsResetsAndHugeBodies: while one route of the service
// hangs, another resets its connections and a third streams huge bodies
// slowly, the sidecar stays ready, the good route is unaffected (no error,
// latency within bounds), huge bodies stream through without being held
// in memory, and every request, good or bad, yields exactly one event.
func TestUpstreamHangsResetsAndHugeBodies(t *testing.T) {
	noLeaks(t)
	up := &faultyUpstream{release: make(chan struct{})}
	r := newRig(t, "inventory", up, 200)
	t.Cleanup(func() { close(up.release) }) // runs before the upstream closes
	// The sidecar must not buffer the huge bodies: a tighter bound here.
	r.w.add("sidecar", r.sc.proc, 100<<20)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var hugeOK, hugeBytes, resetAnswered, readyFail, hangSent, resetSent, hugeSent atomic.Int64
	cl := &http.Client{Timeout: 1500 * time.Millisecond}
	bigCl := &http.Client{Timeout: 20 * time.Second}
	for range 12 { // hanging requests, each abandoned by its client after 1.5 s
		wg.Go(func() {
			for ctx.Err() == nil {
				hangSent.Add(1)
				if resp, err := cl.Get(r.sc.url() + "/hang"); err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	wg.Go(func() { // resets, 20 per second
		for ctx.Err() == nil {
			resetSent.Add(1)
			if resp, err := cl.Get(r.sc.url() + "/reset"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				resetAnswered.Add(1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	for range 3 { // huge slow bodies, two each
		wg.Go(func() {
			for range 2 {
				hugeSent.Add(1)
				resp, err := bigCl.Get(r.sc.url() + "/huge")
				if err != nil {
					continue
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				hugeBytes.Add(n)
				if n == hugeBody && resp.StatusCode == http.StatusOK {
					hugeOK.Add(1)
				}
			}
		})
	}
	wg.Go(func() { // readiness, every 100 ms
		for ctx.Err() == nil {
			resp, err := http.Get("http://" + r.sc.admin + "/readyz")
			if err != nil || resp.StatusCode != http.StatusOK {
				readyFail.Add(1)
			}
			if err == nil {
				resp.Body.Close()
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	time.Sleep(5500 * time.Millisecond)
	cancel()
	wg.Wait()
	cl.CloseIdleConnections()
	bigCl.CloseIdleConnections()

	good := r.load.stopped()
	// Every request sent to the sidecar is one communication event, whatever
	// the upstream did (the client gave up on the hanging ones).
	led := busAccount(t, "upstream hangs/resets/huge bodies", good+hangSent.Load()+resetSent.Load()+hugeSent.Load(), r.col, r.w, r.sc)
	t.Logf("events by path and status: %v", r.col.byPath())
	led.note = "good " + itoa(good) + ", hang " + itoa(hangSent.Load()) + ", reset " + itoa(resetSent.Load()) +
		" (answered " + itoa(resetAnswered.Load()) + ", upstream saw " + itoa(up.resets.Load()) + "), huge " + itoa(hugeOK.Load()) + "/6"
	led.check(t)
	if n := r.load.failed.Load() + r.load.non2xx.Load(); n != 0 {
		t.Errorf("%d requests on the good route failed", n)
	}
	if hugeOK.Load() != 6 {
		t.Errorf("%d of 6 huge bodies arrived whole (%d bytes)", hugeOK.Load(), hugeBytes.Load())
	}
	if readyFail.Load() != 0 {
		t.Errorf("the sidecar was not ready %d times during the upstream faults", readyFail.Load())
	}
	if up.hangs.Load() == 0 || up.resets.Load() == 0 {
		t.Errorf("faults not exercised: hangs %d, resets %d", up.hangs.Load(), up.resets.Load())
	}
}
