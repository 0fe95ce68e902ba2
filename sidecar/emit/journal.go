package emit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// journal is the emitter's write-ahead log of the records it hands to the
// producer, so that a process kill does not lose the records the producer
// holds in memory (buffered, in flight or being retried) until the broker
// acknowledges them or they fail and go to the spool.
//
// It is a sibling of the spool, in <SpoolDir>/journal, with the same frame
// format, segment names and checkpoint file (so that openSpool reads it back
// at the next start), but:
//
//   - it is written with one write syscall per batch and never fsynced: it
//     has to survive a process kill, and what a killed process wrote is in
//     the kernel's page cache, which outlives it. A machine crash (power,
//     kernel panic) can lose it, and with it the producer's unacknowledged
//     records, as before the journal existed;
//   - it is never read while the emitter runs: the producer's outcome for
//     each batch is tracked in memory (see jbatch), and the journal only
//     learns, through release, the prefix of batches whose every record is
//     done (acknowledged by the broker, or appended to the spool, or
//     counted as dropped);
//   - small segments (journalSegBytes) are deleted as soon as they are
//     wholly released, and the released position within the oldest one is
//     checkpointed at most once per watch tick, so that the next start
//     skips it.
//
// At the next start, recoverJournal moves what is left into the spool. A
// record released but not yet covered by a checkpoint or a deleted segment
// when the process dies is moved too, and so delivered twice (the control
// plane stores events idempotently by event id); see doc.go for the bound.
//
// It is owned by the emitter's writer goroutine and is not safe for
// concurrent use, except Bytes.
type journal struct {
	dir      string
	segBytes int64
	maxBytes int64

	segs    []*segment // oldest first; the last is the one appended to
	active  *os.File   // open for append on segs[len-1], or nil
	headOff int64      // released bytes of segs[0]
	ckSeg   uint64     // the position last checkpointed
	ckOff   int64
	bytes   atomic.Int64 // total bytes on disk
	buf     []byte
}

const (
	// journalDir is the journal's directory under the spool directory.
	journalDir = "journal"
	// journalSegBytes is the journal's segment size (or the spool's, when
	// smaller): small, so that segments are released and deleted often.
	journalSegBytes = 256 << 10
)

// errJournalFull is returned by append when the batch would take the
// journal over its size cap.
var errJournalFull = errors.New("journal full")

// openJournal opens an empty journal in dir (recoverJournal emptied it).
func openJournal(dir string, segBytes, maxBytes int64) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create journal dir: %w", err)
	}
	return &journal{dir: dir, segBytes: segBytes, maxBytes: maxBytes, segs: []*segment{{id: 0}}}, nil
}

// append writes the frames of recs at the end of the journal in one write
// and returns where the batch ends (segment id and end offset). It returns
// errJournalFull, writing nothing, when the batch would take the journal
// over its cap.
func (j *journal) append(recs []*kgo.Record) (seg uint64, end int64, err error) {
	j.buf = j.buf[:0]
	for _, r := range recs {
		j.buf = appendFrame(j.buf, r)
	}
	if j.bytes.Load()+int64(len(j.buf)) > j.maxBytes {
		return 0, 0, errJournalFull
	}
	last := j.segs[len(j.segs)-1]
	if last.size >= j.segBytes {
		j.rotate()
		last = j.segs[len(j.segs)-1]
	}
	if j.active == nil {
		f, err := os.OpenFile(filepath.Join(j.dir, segName(last.id)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return 0, 0, fmt.Errorf("open journal segment: %w", err)
		}
		j.active = f
	}
	if _, err := j.active.Write(j.buf); err != nil {
		// Cut off whatever part of the batch reached the file; if that
		// fails too, continue in a new segment, so that no later batch is
		// written behind a torn frame (the next start truncates a segment
		// at its first bad frame).
		if j.active.Truncate(last.size) == nil {
			_ = j.active.Close()
			j.active = nil
		} else {
			j.rotate()
		}
		return 0, 0, fmt.Errorf("write journal: %w", err)
	}
	last.size += int64(len(j.buf))
	j.bytes.Add(int64(len(j.buf)))
	return last.id, last.size, nil
}

// rotate closes the active segment and starts the next one.
func (j *journal) rotate() {
	if j.active != nil {
		_ = j.active.Close()
		j.active = nil
	}
	j.segs = append(j.segs, &segment{id: j.segs[len(j.segs)-1].id + 1})
}

// release records that everything before offset off of segment seg is done:
// it deletes the segments wholly before that position (and that segment
// itself, when it is done, full and no longer appended to).
func (j *journal) release(seg uint64, off int64) {
	for len(j.segs) > 0 {
		h := j.segs[0]
		done := h.id < seg || (h.id == seg && off >= h.size)
		if !done {
			break
		}
		if len(j.segs) == 1 {
			if h.size < j.segBytes {
				break // the active segment, still being filled
			}
			j.rotate()
		}
		_ = os.Remove(filepath.Join(j.dir, segName(h.id)))
		j.bytes.Add(-h.size)
		j.segs = j.segs[1:]
		j.headOff = 0
	}
	if j.segs[0].id == seg {
		j.headOff = off
	}
}

// checkpoint persists the released position when it moved since the last
// checkpoint (a small file written and renamed; not fsynced either).
func (j *journal) checkpoint() error {
	seg, off := j.segs[0].id, j.headOff
	if seg == j.ckSeg && off == j.ckOff {
		return nil
	}
	if err := writeHeadFile(j.dir, seg, off); err != nil {
		return err
	}
	j.ckSeg, j.ckOff = seg, off
	return nil
}

// clear deletes every segment and the checkpoint: everything was released.
func (j *journal) clear() error {
	j.close()
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return fmt.Errorf("clear journal: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if err := os.Remove(filepath.Join(j.dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	next := j.segs[len(j.segs)-1].id + 1
	j.segs, j.headOff, j.ckSeg, j.ckOff = []*segment{{id: next}}, 0, 0, 0
	j.bytes.Store(0)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clear journal: %w", err)
	}
	return nil
}

// close closes the active segment (nothing needs syncing).
func (j *journal) close() {
	if j.active != nil {
		_ = j.active.Close()
		j.active = nil
	}
}

// Bytes returns the journal's size on disk; safe for concurrent use.
func (j *journal) Bytes() int64 { return j.bytes.Load() }

// recovery is what recoverJournal found in the journal and did with it.
type recovery struct {
	found   int   // records left in the journal
	spooled int   // of them, appended to the spool
	full    int   // of them, dropped: the spool was full
	failed  int   // of them, dropped: the spool could not be written
	err     error // the first spool write error
}

// recoverJournal moves the records left in the journal in dir by a previous
// run into sp, in order, in batches of batch records, and then removes the
// journal's files. The records the spool does not take are counted in the
// recovery (the caller reports them as dropped); the journal is emptied
// all the same. An error means the journal could not be read or removed.
func recoverJournal(dir string, sp *spool, batch int, log *slog.Logger) (recovery, error) {
	var rc recovery
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return rc, nil
	}
	js, err := openSpool(dir, math.MaxInt64, math.MaxInt64, log)
	if err != nil {
		return rc, fmt.Errorf("open journal: %w", err)
	}
	defer js.Close()
	for {
		recs, err := js.Peek(batch)
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				continue // Peek skipped the rest of the corrupt segment (and logged it)
			}
			return rc, fmt.Errorf("read journal: %w", err)
		}
		if len(recs) == 0 {
			break
		}
		n, err := sp.Append(recs)
		rc.found += len(recs)
		rc.spooled += n
		switch {
		case err != nil:
			rc.failed += len(recs)
			if rc.err == nil {
				rc.err = err
			}
		case n < len(recs):
			rc.full += len(recs) - n
		}
		js.Ack(len(recs))
	}
	if err := js.Close(); err != nil {
		return rc, fmt.Errorf("close journal: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return rc, fmt.Errorf("remove journal: %w", err)
	}
	return rc, nil
}

// jbatch tracks one journaled batch while the producer has it: how many of
// its records are not done yet, and where the batch ends in the journal.
// It is the records' context (kgo.Record.Context), which is how a promise
// finds it without a lookup or a per-record allocation; it never cancels.
// The writer owns the queue of jbatches and reuses them once done.
type jbatch struct {
	left atomic.Int64
	seg  uint64
	end  int64
}

var _ context.Context = (*jbatch)(nil)

// jbatchKey is the context key under which a jbatch answers for itself
// (a producer hook may have wrapped the record's context).
type jbatchKey struct{}

func (*jbatch) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*jbatch) Done() <-chan struct{}       { return nil }
func (*jbatch) Err() error                  { return nil }
func (b *jbatch) Value(key any) any {
	if _, ok := key.(jbatchKey); ok {
		return b
	}
	return nil
}

// jbatchOf returns the batch a record was journaled with, or nil.
func jbatchOf(r *kgo.Record) *jbatch {
	switch c := r.Context.(type) {
	case nil:
		return nil
	case *jbatch:
		return c
	default:
		b, _ := c.Value(jbatchKey{}).(*jbatch)
		return b
	}
}

// done marks one record of its batch done (no-op for a record that was
// not journaled).
func (b *jbatch) done() {
	if b != nil {
		b.left.Add(-1)
	}
}
