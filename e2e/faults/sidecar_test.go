package faults

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSidecarSIGKILLReplaysSpool: a sidecar killed with SIGKILL during a
// broker outage replays its on-disk spool when it restarts with the same
// directory and the broker is back. A SIGKILL can lose only what was in the
// process's memory and not yet in the spool: the records the producer was
// still retrying when the outage began (at most DeliveryTimeout, 5 s, of
// events; the emitter spools everything after it sees the bus stall), and
// the requests in flight at the kill, whose numbers were taken when they
// arrived. That loss is a sequence gap starting at the outage, plus at most
// one at the tail, ending where the restarted sidecar continues: on the
// same boot it continues exactly after the last number it handed out.
// Every event the spool took is replayed.
func TestSidecarSIGKILLReplaysSpool(t *testing.T) {
	noLeaks(t)
	const rate, deliveryTimeout = 300, 5 * time.Second
	r := newBrokerRig(t, "cart")
	time.Sleep(time.Second)
	outageSeq := r.sc.sequence(t)
	r.kafka.Stop(t)
	time.Sleep(7500 * time.Millisecond) // past the delivery timeout: the emitter spools
	spooled := r.sc.emitter(t).Spooled
	if !r.sc.kill(syscall.SIGKILL) {
		t.Fatal("sidecar did not die on SIGKILL")
	}
	r.sc.restart(t)
	r.w.add("sidecar", r.sc.proc, maxSidecarRSS)
	r.kafka.Start(t)
	time.Sleep(2 * time.Second)

	led := busAccount(t, "sidecar SIGKILL + restart (spool)", r.load.stopped(), r.col, r.w, r.sc)
	// The dead process cannot count what it lost: its sequence gap is the
	// crash loss. The ledger check then proves every answered request is
	// stored or inside that gap.
	led.crashLost, led.cut = led.missing, r.load.failed.Load()
	led.note = "outage at seq " + itoa(int64(outageSeq)) + ", spooled before kill " + itoa(spooled) +
		", requests cut by the kill " + itoa(led.cut)
	led.check(t)
	if spooled == 0 {
		t.Error("nothing was spooled before the kill")
	}
	if led.jumps != 0 {
		t.Errorf("%d sequence jumps after a restart on the same boot, want 0 (continue exactly)", led.jumps)
	}
	restart := r.sc.runStarts[len(r.sc.runStarts)-1]
	switch {
	case len(led.gaps) > 2:
		t.Errorf("the crash loss is more than the retry window and the tail: %v", led.gaps)
	case len(led.gaps) == 2:
		// The tail: requests in flight at the kill, just below where the
		// restart continued.
		end, _ := strconv.ParseUint(led.gaps[1][strings.LastIndexByte(led.gaps[1], '-')+1:], 10, 64)
		if end > restart || restart-end > rate/2 {
			t.Errorf("the second gap %s is not the tail just below where the restart continued (after %d)", led.gaps[1], restart)
		}
	}
	if m, ok := led.firstMiss[r.sc.instance]; ok && m+rate < outageSeq {
		t.Errorf("event %d, acknowledgeable before the outage began at %d, is missing", m, outageSeq)
	}
	if bound := int64(rate * (deliveryTimeout + time.Second) / time.Second); led.crashLost > bound {
		t.Errorf("the kill lost %d events, more than the producer's retry window holds (%d)", led.crashLost, bound)
	}
}

// TestSidecarSIGTERMDrains: on SIGTERM the sidecar stops accepting, lets
// every in-flight request finish (within the drain timeout), flushes its
// events to the bus and exits 0; after a restart its sequence continues
// with no gap and no jump.
func TestSidecarSIGTERMDrains(t *testing.T) {
	noLeaks(t)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/slow" {
			time.Sleep(1500 * time.Millisecond)
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	r := &brokerRig{kafka: startKafka(t), w: watch(t)}
	r.sc = startSidecar(t, "checkout", startUpstream(t, slow), r.kafka.Brokers())
	r.w.add("sidecar", r.sc.proc, maxSidecarRSS)
	r.col = collect(t, r.kafka.Brokers())
	r.load = startLoad(t, 200, "/orders/", r.sc.url())
	time.Sleep(time.Second)

	// 20 slow requests in flight when SIGTERM arrives.
	const inflight = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	var drainErrs []error
	okDrained := 0
	cl := &http.Client{Timeout: 10 * time.Second}
	for range inflight {
		wg.Go(func() {
			resp, err := cl.Get(r.sc.url() + "/slow")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				drainErrs = append(drainErrs, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				okDrained++
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	begin := time.Now()
	if !r.sc.kill(syscall.SIGTERM) {
		t.Fatal("sidecar did not exit within 20s of SIGTERM")
	}
	stopTook := time.Since(begin)
	wg.Wait()
	cl.CloseIdleConnections()
	if err := r.sc.exitErr(); err != nil {
		t.Errorf("sidecar exit after SIGTERM: %v, want status 0", err)
	}
	if okDrained != inflight {
		t.Errorf("%d of %d in-flight requests completed during the drain (errors %v)", okDrained, inflight, drainErrs)
	}
	r.sc.restart(t)
	r.w.add("sidecar", r.sc.proc, maxSidecarRSS)
	time.Sleep(time.Second)

	led := busAccount(t, "sidecar SIGTERM drain + restart", r.load.stopped()+int64(okDrained), r.col, r.w, r.sc)
	led.note = "drained " + itoa(int64(okDrained)) + "/20 in " + stopTook.Round(time.Millisecond).String()
	led.check(t)
	if led.jumps != 0 {
		t.Errorf("sequence jumped %d times after a clean stop; it must continue exactly", led.jumps)
	}
}
