package faults

import (
	"testing"
	"time"
)

// busAccount settles the sidecars, waits until the broker holds every
// communication event they did not count as dropped, and returns the
// ledger (stored = unique communication event ids consumed from the bus).
//
// generated is how many communication events the load made (read it after
// the load stopped).
func busAccount(t *testing.T, scenario string, generated int64, col *collector, w *watcher, scs ...*sidecarProc) *ledger {
	t.Helper()
	led := &ledger{scenario: scenario, generated: generated, dropped: map[string]int64{}}
	insts := map[string]bool{}
	issued := map[string]uint64{}
	for _, sc := range scs {
		sc.settled(t, 30*time.Second)
		issued[sc.instance] = sc.sequence(t)
		for r, n := range droppedByReason(metrics(t, "http://"+sc.admin+"/metrics")) {
			led.dropped[r] += n
		}
		insts[sc.instance] = true
	}
	// Wait until everything expected arrived, or nothing new arrived for
	// 8 s (a crash loss never arrives; the collector may itself be
	// reconnecting to a restarted broker for a few seconds), or 30 s.
	deadline := time.Now().Add(30 * time.Second)
	last, lastChange := int64(-1), time.Now()
	for {
		led.stored, led.missing, led.gaps, led.jumps, led.firstMiss = 0, 0, nil, 0, nil
		seqs := map[string][]uint64{}
		for _, k := range col.events() {
			if !insts[k.instance] {
				continue
			}
			seqs[k.instance] = append(seqs[k.instance], k.seq)
			if k.kind == kindComm {
				led.stored++
			}
		}
		led.addSequences(seqs, issued)
		if led.stored != last {
			last, lastChange = led.stored, time.Now()
		}
		if led.stored+led.droppedTotal() >= led.generated || time.Since(lastChange) > 8*time.Second || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	col.mu.Lock()
	led.dups = col.dups
	if col.bad > 0 {
		t.Errorf("%s: %d records on the bus could not be decoded", scenario, col.bad)
	}
	var others int
	for _, k := range col.seen {
		if !insts[k.instance] {
			others++
		}
	}
	if others > 0 {
		t.Logf("%s: %d events from other instances on the bus", scenario, others)
	}
	col.mu.Unlock()
	led.peakRSS = w.peaks()
	return led
}
