package policy

import (
	"sync"
	"testing"
)

// TestBurstWindowConcurrent: concurrent adds from many goroutines (the
// request path, lock-free) lose no count, and a new epoch resets a bucket.
func TestBurstWindowConcurrent(t *testing.T) {
	t.Parallel()
	var w burstWindow
	const goroutines, per = 8, 2000
	ep := uint64(1_000_000)
	var wantTotal, wantFail [3]uint64
	for g := range goroutines {
		for i := range per {
			wantTotal[i%3]++
			if (g+i)%4 == 0 {
				wantFail[i%3]++
			}
		}
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range per {
				w.add(ep+uint64(i%3), (g+i)%4 == 0)
			}
		})
	}
	wg.Wait()
	total, fail := w.sum(ep + 2)
	if total != goroutines*per || fail != wantFail[0]+wantFail[1]+wantFail[2] {
		t.Fatalf("sum = %d/%d, want %d/%d", fail, total, wantFail[0]+wantFail[1]+wantFail[2], goroutines*per)
	}
	// ep+10 reuses ep's bucket: the old counts go, and ep falls out of the window.
	w.add(ep+burstBuckets, true)
	total, fail = w.sum(ep + burstBuckets)
	if total != wantTotal[1]+wantTotal[2]+1 || fail != wantFail[1]+wantFail[2]+1 {
		t.Errorf("after the window moved: %d/%d, want %d/%d", fail, total, wantFail[1]+wantFail[2]+1, wantTotal[1]+wantTotal[2]+1)
	}
}
