package ingest

import (
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// tp names a topic partition.
type tp struct {
	topic string
	part  int32
}

// entry is one polled record's offset and whether its effects are durable.
type entry struct {
	off  int64
	done bool
}

// partState tracks the polled, not yet committed records of one assigned partition.
type partState struct {
	gen     uint64
	pending []entry // in offset order; pending[head:] are live
	head    int
	epoch   int32
	commit  int64 // next offset to commit (last done + 1); -1 when none
	commitd int64 // next offset already committed
}

// tracker knows which records of each assigned partition are done, so that
// commits never pass a record whose effects are not durable. Records of a
// partition not (or no longer) assigned are not tracked: they are still
// written (harmless, the write is idempotent) but never committed by us.
type tracker struct {
	mu    sync.Mutex
	cond  *sync.Cond // signaled when records become done
	gen   uint64
	parts map[tp]*partState
}

// token identifies a tracked record; zero gen means untracked.
type token struct {
	tp  tp
	gen uint64
	off int64
}

func newTracker() *tracker {
	t := &tracker{parts: map[tp]*partState{}}
	t.cond = sync.NewCond(&t.mu)
	return t
}

// assign starts tracking newly assigned partitions.
func (t *tracker) assign(m map[string][]int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, ps := range m {
		for _, p := range ps {
			k := tp{topic, p}
			if t.parts[k] == nil {
				t.gen++
				t.parts[k] = &partState{gen: t.gen, commit: -1, commitd: -1}
			}
		}
	}
}

// add tracks a polled record, in offset order per partition.
func (t *tracker) add(r *kgo.Record) token {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := tp{r.Topic, r.Partition}
	ps := t.parts[k]
	if ps == nil {
		return token{}
	}
	ps.pending = append(ps.pending, entry{off: r.Offset})
	ps.epoch = r.LeaderEpoch
	return token{tp: k, gen: ps.gen, off: r.Offset}
}

// done marks records durable and advances their partitions' commit points.
func (t *tracker) done(toks []token) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tok := range toks {
		ps := t.parts[tok.tp]
		if tok.gen == 0 || ps == nil || ps.gen != tok.gen {
			continue
		}
		live := ps.pending[ps.head:]
		i := sort.Search(len(live), func(i int) bool { return live[i].off >= tok.off })
		if i < len(live) && live[i].off == tok.off {
			live[i].done = true
		}
	}
	for _, ps := range t.parts {
		for ps.head < len(ps.pending) && ps.pending[ps.head].done {
			ps.commit = ps.pending[ps.head].off + 1
			ps.head++
		}
		if ps.head > 1024 && ps.head > len(ps.pending)/2 {
			ps.pending = append(ps.pending[:0], ps.pending[ps.head:]...)
			ps.head = 0
		}
	}
	t.cond.Broadcast()
}

// committable returns the offsets to commit for the given partitions (all
// when nil) that advanced since the last commit, and records them as
// committed (the caller commits them; a failed commit is retried later
// because the committed mark is reset by failed).
func (t *tracker) committable(only map[tp]bool) map[string]map[int32]kgo.EpochOffset {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out map[string]map[int32]kgo.EpochOffset
	for k, ps := range t.parts {
		if only != nil && !only[k] {
			continue
		}
		if ps.commit < 0 || ps.commit == ps.commitd {
			continue
		}
		if out == nil {
			out = map[string]map[int32]kgo.EpochOffset{}
		}
		if out[k.topic] == nil {
			out[k.topic] = map[int32]kgo.EpochOffset{}
		}
		out[k.topic][k.part] = kgo.EpochOffset{Epoch: ps.epoch, Offset: ps.commit}
		ps.commitd = ps.commit
	}
	return out
}

// failed forgets that offsets were committed, so they are committed again.
func (t *tracker) failed(offs map[string]map[int32]kgo.EpochOffset) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, m := range offs {
		for p, eo := range m {
			if ps := t.parts[tp{topic, p}]; ps != nil && ps.commitd == eo.Offset {
				ps.commitd = -1
			}
		}
	}
}

// waitDone waits until the partitions have no pending record or stop is
// closed, and reports whether they drained.
func (t *tracker) waitDone(parts map[tp]bool, stop <-chan struct{}) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		busy := false
		for k := range parts {
			if ps := t.parts[k]; ps != nil && ps.head < len(ps.pending) {
				busy = true
				break
			}
		}
		if !busy {
			return true
		}
		select {
		case <-stop:
			return false
		default:
		}
		t.cond.Wait()
	}
}

// wake wakes waitDone callers (to notice their stop channel).
func (t *tracker) wake() {
	t.mu.Lock()
	t.cond.Broadcast()
	t.mu.Unlock()
}

// revoke stops tracking partitions.
func (t *tracker) revoke(parts map[tp]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range parts {
		delete(t.parts, k)
	}
	t.cond.Broadcast()
}
