package faults

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// ledger is one scenario's accounting: what the load generator made the
// sidecars emit, what arrived (stored in PostgreSQL, or consumed from the
// broker in sidecar-only scenarios), what the sidecars counted as dropped,
// and the sequence gaps that locate any loss.
type ledger struct {
	scenario  string
	generated int64             // communication events: requests answered through the sidecars
	stored    int64             // unique communication event ids that arrived
	dropped   map[string]int64  // the sidecars' events_dropped_total, by reason
	dups      int64             // records seen more than once (at-least-once delivery; deduplicated by id)
	gaps      []string          // missing sequence ranges, per instance
	missing   int64             // sequence numbers missing in total
	crashLost int64             // sequence numbers lost in a SIGKILLed process's memory (located by gaps, not counted by it)
	cut       int64             // requests cut by a kill: each may hold a number whose event was never built
	jumps     int               // sequence jumps past a crash reservation
	firstMiss map[string]uint64 // lowest missing sequence number, per instance
	peakRSS   map[string]int64  // bytes, per process
	note      string
}

func (l *ledger) droppedTotal() int64 {
	var n int64
	for _, v := range l.dropped {
		n += v
	}
	return n
}

// addSequences finds the gaps in each instance's sequence numbers (all
// event types share one sequence per sidecar), up to last, the number the
// sidecar says it issued last (so a loss at the tail shows too). A jump
// past the persisted reservation after a crash (at least jumpOver numbers)
// starts a new run and is not a gap: the sidecar skips ahead on purpose so
// it never reuses a number.
func (l *ledger) addSequences(seqs map[string][]uint64, last map[string]uint64) {
	const jumpOver = 50_000
	for _, inst := range slices.Sorted(maps.Keys(seqs)) {
		s := slices.Clone(seqs[inst])
		slices.Sort(s)
		s = slices.Compact(s)
		if n := last[inst]; len(s) > 0 && n > s[len(s)-1] && n-s[len(s)-1] < jumpOver {
			s = append(s, n+1) // a sentinel one past the last issued number
		}
		for i := 1; i < len(s); i++ {
			d := s[i] - s[i-1]
			if d >= jumpOver {
				l.jumps++
			}
			if d <= 1 || d >= jumpOver {
				continue
			}
			if l.firstMiss == nil {
				l.firstMiss = map[string]uint64{}
			}
			if _, ok := l.firstMiss[inst]; !ok {
				l.firstMiss[inst] = s[i-1] + 1
			}
			l.missing += int64(d - 1)
			if len(l.gaps) < 8 {
				l.gaps = append(l.gaps, fmt.Sprintf("%s:%d-%d", short(inst), s[i-1]+1, s[i]-1))
			}
		}
	}
}

func short(s string) string {
	if len(s) > 8 {
		return s[len(s)-8:]
	}
	return s
}

// check asserts generated = stored unique + counted drops (+ what a
// SIGKILL provably lost, located by the sequence gap), and that the gaps
// add up to the same number. The sidecar takes an event's number when the
// request arrives, so a request cut by a kill (its client saw an error, so
// it is not in generated) may also have left a gap: the gaps may exceed the
// answered requests' losses by at most the requests cut.
func (l *ledger) check(t *testing.T) {
	t.Helper()
	l.log(t)
	if l.generated == 0 {
		t.Fatalf("%s: no load was generated", l.scenario)
	}
	got := l.stored + l.droppedTotal() + l.crashLost
	if over := got - l.generated; over < 0 || over > l.cut {
		t.Errorf("%s: generated %d != stored %d + dropped %d + crash-lost %d (unexplained %d, requests cut by a kill %d); gaps %v",
			l.scenario, l.generated, l.stored, l.droppedTotal(), l.crashLost, l.generated-got, l.cut, l.gaps)
	}
	if l.missing != l.droppedTotal()+l.crashLost {
		t.Errorf("%s: %d sequence numbers missing %v, but %d dropped and %d crash-lost",
			l.scenario, l.missing, l.gaps, l.droppedTotal(), l.crashLost)
	}
}

// log prints the scenario's row of the accounting table.
func (l *ledger) log(t *testing.T) {
	t.Helper()
	var rss []string
	for _, k := range slices.Sorted(maps.Keys(l.peakRSS)) {
		rss = append(rss, fmt.Sprintf("%s=%dMiB", k, l.peakRSS[k]>>20))
	}
	var drops []string
	for _, k := range slices.Sorted(maps.Keys(l.dropped)) {
		drops = append(drops, fmt.Sprintf("%s=%d", k, l.dropped[k]))
	}
	t.Logf("ACCOUNTING | %-34s | generated %6d | stored %6d | dropped %4d [%s] | crash-lost %d (cut %d) | dup-records %d | gaps %d %v | peak RSS %s | %s",
		l.scenario, l.generated, l.stored, l.droppedTotal(), strings.Join(drops, ","), l.crashLost, l.cut, l.dups,
		l.missing, l.gaps, strings.Join(rss, " "), l.note)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
