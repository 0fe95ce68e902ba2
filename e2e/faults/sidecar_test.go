package faults

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSidecarSIGKILLReplaysSpool: a sidecar killed with SIGKILL during a
// broker outage loses only the events it had not yet written to disk. The
// kill comes 7.5 s into the outage, past the delivery timeout (5 s): the
// emitter spools new events, while the records it handed to the producer
// before the bus stalled (up to DeliveryTimeout of events, ~1,500 at
// 300 req/s, which a kill used to lose) are still being retried in memory,
// and are in the emitter's write-ahead journal. The sidecar restarts with
// the same directories while the broker is still down, moves the journal
// into the spool (events_recovered_total > 0), and replays the spool when
// the broker is back.
//
// The crash loss is located by the sequence gaps and bounded soundly: just
// before the kill the test reads S, the last sequence number handed out,
// and then U, the emitter's unwritten events (emitted, not yet written to
// the journal or the spool); the restart reports R, the last number handed
// out before the kill (on the same boot it continues exactly after it). A
// missing number at or below S belongs to an event unwritten when U was
// read, or to one not yet emitted then, whose request was still in flight
// (at most the load's 4 workers, one request each, plus 2 of the sidecar's
// own lifecycle events); a missing number above S is one of the R-S handed
// out after. So the loss is at most (R-S) + U + 6, a handful of events
// where the retry window used to lose ~1,500. And every missing number
// lies in the tail just below R: above R minus that bound and 2 s of load
// (a timing margin for a request that took its number well before the
// kill), far above the outage's start, where the lost retry window began.
func TestSidecarSIGKILLReplaysSpool(t *testing.T) {
	noLeaks(t)
	const rate = 300
	const inFlight = 4 + 2 // startLoad's workers, one request each, and the sidecar's lifecycle events
	r := newBrokerRig(t, "cart")
	time.Sleep(time.Second)
	outageSeq := r.sc.sequence(t)
	r.kafka.Stop(t)
	time.Sleep(7500 * time.Millisecond) // past the delivery timeout: the emitter spools, the producer still retries
	seqBefore := r.sc.sequence(t)       // S, then U: in this order (see above)
	var before struct {
		Emitter struct {
			Spooled      int64 `json:"spooled"`
			Unwritten    int64 `json:"unwritten"`
			Unjournaled  int64 `json:"unjournaled"`
			JournalBytes int64 `json:"journal_bytes"`
		} `json:"emitter"`
	}
	getJSON(t, "http://"+r.sc.admin+"/debug/state", &before)
	if !r.sc.kill(syscall.SIGKILL) {
		t.Fatal("sidecar did not die on SIGKILL")
	}
	r.sc.restart(t)
	r.w.add("sidecar", r.sc.proc, maxSidecarRSS)
	var after struct {
		Emitter struct {
			Recovered int64 `json:"recovered"`
		} `json:"emitter"`
	}
	getJSON(t, "http://"+r.sc.admin+"/debug/state", &after)
	recovered := after.Emitter.Recovered
	r.kafka.Start(t)
	time.Sleep(2 * time.Second)

	led := busAccount(t, "sidecar SIGKILL + restart (spool)", r.load.stopped(), r.col, r.w, r.sc)
	// The dead process cannot count what it lost: its sequence gap is the
	// crash loss. The ledger check then proves every answered request is
	// stored or inside that gap.
	led.crashLost, led.cut = led.missing, r.load.failed.Load()
	restart := r.sc.runStarts[len(r.sc.runStarts)-1]
	bound := int64(restart-seqBefore) + before.Emitter.Unwritten + inFlight
	led.note = fmt.Sprintf("retry window kept: %d records the producer held at the kill recovered from the journal (%d B); "+
		"loss %d <= bound %d (%d unwritten + %d in flight + %d numbered after S=%d), only in the tail below %d; "+
		"outage at seq %d, %d spooled before the kill, %d requests cut",
		recovered, before.Emitter.JournalBytes, led.crashLost, bound, before.Emitter.Unwritten, inFlight, restart-seqBefore, seqBefore,
		restart+1, outageSeq, before.Emitter.Spooled, led.cut)
	led.check(t)
	if before.Emitter.Spooled == 0 {
		t.Error("nothing was spooled before the kill")
	}
	if before.Emitter.Unjournaled != 0 {
		t.Errorf("%d events were produced without a journal copy before the kill", before.Emitter.Unjournaled)
	}
	if recovered == 0 {
		t.Error("the restart recovered nothing from the journal: the producer held no records at the kill, so this run did not test the retry window")
	}
	if led.jumps != 0 {
		t.Errorf("%d sequence jumps after a restart on the same boot, want 0 (continue exactly)", led.jumps)
	}
	if led.crashLost > bound {
		t.Errorf("the kill lost %d events %v, more than it can have held unwritten (%d): the retry window was lost", led.crashLost, led.gaps, bound)
	}
	tail := uint64(bound + 2*rate)
	for inst, m := range led.firstMiss {
		if m+tail <= restart {
			t.Errorf("event %d of %s is missing, below the tail of the kill (%d-%d): gaps %v", m, short(inst), restart-tail+1, restart, led.gaps)
		}
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
