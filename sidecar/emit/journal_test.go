package emit

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// journalRig is an emitter reduced to its journal, driven the way the
// writer drives it (journalBatch, releaseJournal, closeJournal), with the
// producer's outcomes played by the test.
type journalRig struct {
	e    *Emitter
	dir  string
	next int // value of the next record
}

func newJournalRig(t *testing.T, segBytes, maxBytes int64) *journalRig {
	t.Helper()
	dir := filepath.Join(t.TempDir(), journalDir)
	j, err := openJournal(dir, segBytes, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.close)
	return &journalRig{e: &Emitter{journal: j, log: slog.New(slog.DiscardHandler)}, dir: dir}
}

// batch journals n new records and returns them with their jbatch.
func (r *journalRig) batch(t *testing.T, n int) ([]*kgo.Record, *jbatch) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = rec(r.next)
		r.next++
	}
	jb, ok := r.e.journalBatch(recs)
	if !ok || jb == nil {
		t.Fatalf("journalBatch = %v, %v; want a tracked batch", jb, ok)
	}
	for _, rc := range recs {
		rc.Context = jb
	}
	return recs, jb
}

func (r *journalRig) segments(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(r.dir, segPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// recoverAll moves what the journal holds into a new spool and returns the
// values in spool order.
func recoverAll(t *testing.T, dir string) (recovery, []string) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	sp, err := openSpool(t.TempDir(), 1<<30, 1<<20, log)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	rc, err := recoverJournal(dir, sp, 7, log)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		recs, err := sp.Peek(100)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
		sp.Ack(len(recs))
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("journal dir after recovery: %v, want it removed", err)
	}
	return rc, got
}

func values(from, to int) []string {
	var v []string
	for i := from; i < to; i++ {
		v = append(v, fmt.Sprintf("v%06d", i))
	}
	return v
}

// TestJournalOutOfOrderAcks: records are done in any order (the broker's
// acknowledgements per partition, failures spooled later); the journal
// releases only the prefix of wholly done batches, deletes the segments
// before it, checkpoints its position, and a recovery after a kill returns
// exactly the records from the first batch not wholly done onwards, in
// order (the done ones among them are the bounded duplicates).
func TestJournalOutOfOrderAcks(t *testing.T) {
	t.Parallel()
	r := newJournalRig(t, 1<<10, 1<<20) // about 40 records per segment
	var batches [][]*kgo.Record
	for range 40 {
		recs, _ := r.batch(t, 5)
		batches = append(batches, recs)
	}
	if n := len(r.segments(t)); n < 4 {
		t.Fatalf("%d segments, want several", n)
	}
	before := r.e.journal.Bytes()
	// Every record of batches 0..29 done in a random order, except the
	// third record of batch 21; batches 30..39 still with the producer.
	var done []*kgo.Record
	for _, b := range batches[:30] {
		done = append(done, b...)
	}
	held := batches[21][2]
	done = slices.DeleteFunc(done, func(x *kgo.Record) bool { return x == held })
	rand.Shuffle(len(done), func(i, j int) { done[i], done[j] = done[j], done[i] })
	for i, x := range done {
		jbatchOf(x).done()
		if i%17 == 0 {
			r.e.releaseJournal(false) // releases interleaved with acks
		}
	}
	r.e.releaseJournal(true)
	if got := r.e.journalPending(); got != 1+10*5 {
		t.Fatalf("pending = %d, want 51", got)
	}
	if after := r.e.journal.Bytes(); after >= before {
		t.Fatalf("journal bytes %d after releasing 21 batches, was %d: no segment deleted", after, before)
	}
	// The kill: the files stay as they are.
	r.e.journal.close()
	rc, got := recoverAll(t, r.dir)
	if want := values(21*5, 200); !slices.Equal(got, want) {
		t.Fatalf("recovered %d records %v...; want %d from v%06d", len(got), got[:min(3, len(got))], len(want), 21*5)
	}
	if rc.found != len(got) || rc.spooled != len(got) || rc.full+rc.failed != 0 {
		t.Fatalf("recovery %+v, want %d found and spooled", rc, len(got))
	}
}

// TestJournalCleanCloseLeavesItEmpty: once every record is done, closing
// deletes every segment and the checkpoint; a recovery finds nothing.
func TestJournalCleanCloseLeavesItEmpty(t *testing.T) {
	t.Parallel()
	r := newJournalRig(t, 1<<10, 1<<20)
	var all []*kgo.Record
	for range 30 {
		recs, _ := r.batch(t, 3)
		all = append(all, recs...)
	}
	for i := len(all) - 1; i >= 0; i-- { // newest first: nothing releases until the end
		jbatchOf(all[i]).done()
	}
	r.e.closeJournal()
	if ents, err := os.ReadDir(r.dir); err != nil || len(ents) != 0 {
		t.Fatalf("journal dir after a clean close: %v, %v; want empty", ents, err)
	}
	if rc, got := recoverAll(t, r.dir); rc.found != 0 || len(got) != 0 {
		t.Fatalf("recovered %+v %v from an empty journal", rc, got)
	}
}

// TestJournalCloseKeepsUndone: a shutdown whose producer did not report
// every outcome in time keeps those records for the next start.
func TestJournalCloseKeepsUndone(t *testing.T) {
	t.Parallel()
	r := newJournalRig(t, 1<<10, 1<<20)
	first, _ := r.batch(t, 4)
	r.batch(t, 4)
	for _, x := range first {
		jbatchOf(x).done()
	}
	r.e.closeJournal()
	rc, got := recoverAll(t, r.dir)
	if want := values(4, 8); !slices.Equal(got, want) || rc.found != 4 {
		t.Fatalf("recovered %+v %v, want %v", rc, got, want)
	}
}

// TestJournalTornTail: a kill in the middle of a write leaves a torn last
// frame; recovery keeps every whole frame before it, drops the torn one,
// and reads the segments after a torn one too.
func TestJournalTornTail(t *testing.T) {
	t.Parallel()
	r := newJournalRig(t, 1<<20, 1<<20)
	r.batch(t, 3)
	r.batch(t, 3)
	r.e.journal.close()
	seg := filepath.Join(r.dir, segName(0))
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seg, b[:len(b)-5], 0o600); err != nil {
		t.Fatal(err)
	}
	rc, got := recoverAll(t, r.dir)
	if want := values(0, 5); !slices.Equal(got, want) || rc.found != 5 {
		t.Fatalf("recovered %+v %v, want %v", rc, got, want)
	}
}

// TestJournalRecoveryIntoFullSpool: what the spool cannot take is counted
// (and the journal emptied all the same, so it is not counted twice).
func TestJournalRecoveryIntoFullSpool(t *testing.T) {
	t.Parallel()
	r := newJournalRig(t, 1<<20, 1<<20)
	for range 20 {
		r.batch(t, 5)
	}
	r.e.journal.close()
	log := slog.New(slog.DiscardHandler)
	sp, err := openSpool(t.TempDir(), 1<<10, 1<<10, log)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	rc, err := recoverJournal(r.dir, sp, 10, log)
	if err != nil {
		t.Fatal(err)
	}
	if rc.found != 100 || rc.spooled == 0 || rc.full == 0 || rc.spooled+rc.full != 100 || int64(rc.spooled) != sp.Pending() {
		t.Fatalf("recovery into a 1 KiB spool: %+v, spool pending %d", rc, sp.Pending())
	}
	if _, err := os.Stat(r.dir); !os.IsNotExist(err) {
		t.Fatalf("journal left after recovery: %v", err)
	}
}

// TestJournalFull: a batch that would take the journal over its cap is
// refused (the writer spools it instead) and nothing is written.
func TestJournalFull(t *testing.T) {
	t.Parallel()
	r := newJournalRig(t, 1<<10, 2<<10)
	for r.e.journal.Bytes() < 1<<10 {
		r.batch(t, 5)
	}
	before := r.e.journal.Bytes()
	big := make([]*kgo.Record, 100)
	for i := range big {
		big[i] = rec(i)
	}
	if jb, ok := r.e.journalBatch(big); ok || jb != nil {
		t.Fatalf("journalBatch over the cap = %v, %v; want refused", jb, ok)
	}
	if r.e.journal.Bytes() != before || r.e.unjournaled.Load() != 0 {
		t.Fatalf("a refused batch changed the journal: %d bytes (was %d), unjournaled %d", r.e.journal.Bytes(), before, r.e.unjournaled.Load())
	}
}

// TestJournalWriteError: a journal that cannot be written (disk full) does
// not hold up the batch: it is produced without a journal copy and counted;
// the journal carries on with a later batch.
func TestJournalWriteError(t *testing.T) {
	t.Parallel()
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full to simulate a full disk: %v", err)
	}
	r := newJournalRig(t, 1<<20, 1<<20)
	r.batch(t, 2)
	r.e.journal.close()
	r.e.journal.active = full // the next write fails with ENOSPC
	recs := []*kgo.Record{rec(100), rec(101), rec(102)}
	jb, ok := r.e.journalBatch(recs)
	if !ok || jb != nil {
		t.Fatalf("journalBatch on a full disk = %v, %v; want produce without a journal copy", jb, ok)
	}
	if n := r.e.unjournaled.Load(); n != 3 {
		t.Fatalf("unjournaled = %d, want 3", n)
	}
	r.next = 200
	r.batch(t, 2) // the journal works again (a new segment)
	r.e.journal.close()
	_, got := recoverAll(t, r.dir)
	if want := []string{"v000000", "v000001", "v000200", "v000201"}; !slices.Equal(got, want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
}
