package emit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omninode/bridge/internal/bus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Drop reasons, the values of the reason label of events_dropped_total.
const (
	ReasonQueueFull  = "queue_full"
	ReasonSpoolFull  = "spool_full"
	ReasonInvalid    = "invalid"
	ReasonSpoolError = "spool_error"
	ReasonClosed     = "closed"
)

var reasons = []string{ReasonQueueFull, ReasonSpoolFull, ReasonInvalid, ReasonSpoolError, ReasonClosed}

// Emitter takes events from the request path without blocking and delivers
// them to the bus, spooling to disk when the bus is slow or down.
type Emitter struct {
	cfg    Config
	log    *slog.Logger
	queue  chan bus.Event
	spool  *spool
	client *kgo.Client // nil: spool only

	// The write-ahead journal of the records handed to the producer (nil
	// without a bus) and, owned by the writer goroutine like the journal,
	// the queue of batches it has not released yet (jq[jqHead:], oldest
	// first) and the spent jbatches to reuse.
	journal   *journal
	jq        []*jbatch
	jqHead    int
	jfree     []*jbatch
	jerrLogAt time.Time // last journal write error logged

	live   atomic.Bool // true: the writer produces directly (spool empty, bus up)
	closed atomic.Bool

	inflight     sync.WaitGroup
	nInflight    atomic.Int64
	lastProgress atomic.Int64 // unix nanos of the last acknowledgement (or first send after idle)
	failMu       sync.Mutex
	failed       []*kgo.Record // records the bus failed, to spool
	failSig      chan struct{}
	spoolSig     chan struct{}

	handled                               atomic.Int64 // events the writer is done with (see Stats.Unwritten)
	emitted, delivered, spooled, replayed atomic.Int64
	recovered, unjournaled                atomic.Int64
	dropped                               map[string]*atomic.Int64
}

// New opens the spool, moves the records a previous run left in the journal
// (handed to the producer, outcome unknown: the run was killed) into it and,
// with a bus, opens the journal and creates the producer client (it connects
// lazily; a bus that is down is not an error).
func New(cfg Config) (_ *Emitter, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	sp, err := openSpool(cfg.SpoolDir, cfg.SpoolMaxBytes, cfg.SegmentBytes, log)
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	defer func() {
		if err != nil {
			_ = sp.Close()
		}
	}()
	e := &Emitter{
		cfg:      cfg,
		log:      log,
		queue:    make(chan bus.Event, cfg.QueueSize),
		spool:    sp,
		failSig:  make(chan struct{}, 1),
		spoolSig: make(chan struct{}, 1),
		dropped:  make(map[string]*atomic.Int64, len(reasons)),
	}
	for _, r := range reasons {
		e.dropped[r] = new(atomic.Int64)
	}
	jdir := filepath.Join(cfg.SpoolDir, journalDir)
	if err := e.recoverJournal(jdir); err != nil {
		return nil, err
	}
	if cfg.Bus != nil {
		if e.journal, err = openJournal(jdir, min(journalSegBytes, cfg.SegmentBytes), cfg.SpoolMaxBytes); err != nil {
			return nil, fmt.Errorf("open journal: %w", err)
		}
		extra := []kgo.Opt{
			kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
			kgo.ProduceRequestTimeout(cfg.DeliveryTimeout),
		}
		if cfg.Bus.Linger == 0 && cfg.Linger > 0 {
			extra = append(extra, kgo.ProducerLinger(cfg.Linger))
		}
		opts, err := cfg.Bus.ProducerOpts(extra...)
		if err != nil {
			return nil, fmt.Errorf("producer options: %w", err)
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return nil, fmt.Errorf("create producer: %w", err)
		}
		e.client = cl
		e.live.Store(sp.Pending() == 0)
	}
	if cfg.Registry != nil {
		if err := e.register(cfg.Registry); err != nil {
			if e.client != nil {
				e.client.Close()
			}
			return nil, err
		}
	}
	return e, nil
}

// recoverJournal moves what a previous run left in the journal into the
// spool (the replayer sends it once the bus is up) and counts it.
func (e *Emitter) recoverJournal(dir string) error {
	rc, err := recoverJournal(dir, e.spool, e.cfg.BatchSize, e.log)
	e.recovered.Add(int64(rc.found))
	e.spooled.Add(int64(rc.spooled))
	e.dropped[ReasonSpoolFull].Add(int64(rc.full))
	e.dropped[ReasonSpoolError].Add(int64(rc.failed))
	if rc.found > 0 {
		e.log.Warn("emit: recovered events from the journal into the spool (the last run stopped before the bus acknowledged them)",
			"events", rc.found, "spooled", rc.spooled, "dropped_spool_full", rc.full, "dropped_spool_error", rc.failed)
	}
	if rc.err != nil {
		e.log.Error("emit: spool write failed while recovering the journal, events dropped", "events", rc.failed, "err", rc.err)
	}
	if err != nil {
		return fmt.Errorf("recover journal: %w", err)
	}
	return nil
}

// Emit offers an event to the queue. It never blocks and never fails the
// caller: an event that does not fit is counted as dropped (queue_full).
func (e *Emitter) Emit(ev bus.Event) {
	e.emitted.Add(1)
	if e.closed.Load() {
		e.dropped[ReasonClosed].Add(1)
		return
	}
	select {
	case e.queue <- ev:
	default:
		e.dropped[ReasonQueueFull].Add(1)
	}
}

// Run writes queued events to the bus or the spool and replays the spool
// when the bus is back, until ctx ends; then it stops accepting events,
// flushes the queue to the bus within FlushTimeout (else to the spool) and
// returns nil.
func (e *Emitter) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	replayCtx, stopReplay := context.WithCancel(context.Background())
	if e.client != nil {
		wg.Go(func() { e.replay(replayCtx) })
	}
	batch := make([]bus.Event, 0, e.cfg.BatchSize)
	watch := time.NewTicker(min(e.cfg.DeliveryTimeout/4, 250*time.Millisecond))
	defer watch.Stop()
	for {
		select {
		case <-watch.C:
			e.checkStalled()
			e.releaseJournal(true)
		case ev := <-e.queue:
			batch = e.take(append(batch[:0], ev))
			e.write(batch)
			clear(batch)
		case <-e.failSig:
			e.spoolFailed()
			e.releaseJournal(false)
		case <-ctx.Done():
			stopReplay()
			// A replay blocked on a broker that is down ends when shutdown
			// closes the client.
			waitTimeout(&wg, e.cfg.FlushTimeout)
			e.shutdown(batch)
			wg.Wait()
			if err := e.spool.Close(); err != nil {
				e.log.Warn("emit: close spool", "err", err)
			}
			return nil
		}
	}
}

// take adds queued events to batch without waiting, up to BatchSize.
func (e *Emitter) take(batch []bus.Event) []bus.Event {
	for len(batch) < e.cfg.BatchSize {
		select {
		case ev := <-e.queue:
			batch = append(batch, ev)
		default:
			return batch
		}
	}
	return batch
}

// write hands a batch to the journal and the producer, or to the spool.
func (e *Emitter) write(batch []bus.Event) {
	defer e.handled.Add(int64(len(batch)))
	recs := make([]*kgo.Record, 0, len(batch))
	for _, ev := range batch {
		r, err := bus.Encode(ev)
		if err != nil {
			e.dropped[ReasonInvalid].Add(1)
			e.log.Warn("emit: dropping invalid event", "type", bus.TypeName(ev), "reason", bus.Reason(err))
			continue
		}
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		return
	}
	if e.client != nil && e.live.Load() && e.spool.Pending() == 0 &&
		e.nInflight.Load()+int64(len(recs)) <= int64(e.cfg.MaxInFlight) {
		jb, ok := e.journalBatch(recs)
		if !ok {
			e.toSpool(recs)
			return
		}
		if e.nInflight.Load() == 0 {
			e.lastProgress.Store(time.Now().UnixNano())
		}
		for _, r := range recs {
			if jb != nil {
				r.Context = jb
			}
			e.inflight.Add(1)
			e.nInflight.Add(1)
			e.client.TryProduce(context.Background(), r, e.promise)
		}
		return
	}
	e.toSpool(recs)
}

// journalBatch writes recs to the journal before they are produced and
// returns the jbatch that tracks them. ok is false when the journal is
// full (a record the producer has held for long keeps it from being
// released): the batch then goes to the spool instead. When the journal
// cannot be written (disk error), the batch is produced all the same
// without a journal copy (jb nil), as before the journal existed, and
// counted in events_unjournaled_total.
func (e *Emitter) journalBatch(recs []*kgo.Record) (jb *jbatch, ok bool) {
	e.releaseJournal(false)
	seg, end, err := e.journal.append(recs)
	switch {
	case errors.Is(err, errJournalFull):
		return nil, false
	case err != nil:
		e.unjournaled.Add(int64(len(recs)))
		if now := time.Now(); now.Sub(e.jerrLogAt) >= time.Second {
			e.jerrLogAt = now
			e.log.Error("emit: journal write failed; producing without a journal copy (a kill before the bus acknowledges loses these events)",
				"events", len(recs), "unjournaled_total", e.unjournaled.Load(), "err", err)
		}
		return nil, true
	}
	if n := len(e.jfree); n > 0 {
		jb, e.jfree = e.jfree[n-1], e.jfree[:n-1]
	} else {
		jb = new(jbatch)
	}
	jb.seg, jb.end = seg, end
	jb.left.Store(int64(len(recs)))
	e.jq = append(e.jq, jb)
	return jb, true
}

// releaseJournal releases the journal's prefix of batches whose every
// record is done, and with checkpoint also persists the released position.
func (e *Emitter) releaseJournal(checkpoint bool) {
	if e.journal == nil {
		return
	}
	i := e.jqHead
	for i < len(e.jq) && e.jq[i].left.Load() == 0 {
		i++
	}
	if i > e.jqHead {
		last := e.jq[i-1]
		e.journal.release(last.seg, last.end)
		e.jfree = append(e.jfree, e.jq[e.jqHead:i]...)
		clear(e.jq[e.jqHead:i])
		e.jqHead = i
		if e.jqHead == len(e.jq) {
			e.jq, e.jqHead = e.jq[:0], 0
		} else if e.jqHead >= 1024 && e.jqHead >= len(e.jq)/2 {
			n := copy(e.jq, e.jq[e.jqHead:])
			clear(e.jq[n:])
			e.jq, e.jqHead = e.jq[:n], 0
		}
	}
	if checkpoint {
		if err := e.journal.checkpoint(); err != nil {
			e.log.Warn("emit: journal checkpoint", "err", err)
		}
	}
}

// journalPending returns how many journaled records are not done.
func (e *Emitter) journalPending() int64 {
	var n int64
	for _, b := range e.jq[e.jqHead:] {
		n += b.left.Load()
	}
	return n
}

// promise is called by franz-go for every produced record.
func (e *Emitter) promise(r *kgo.Record, err error) {
	defer e.inflight.Done()
	e.nInflight.Add(-1)
	if err == nil {
		e.lastProgress.Store(time.Now().UnixNano())
		e.delivered.Add(1)
		jbatchOf(r).done()
		return
	}
	if e.live.Swap(false) {
		e.log.Warn("emit: bus unavailable, spooling events", "err", err)
	} else {
		e.log.Debug("emit: produce failed", "err", err)
	}
	e.failMu.Lock()
	e.failed = append(e.failed, r)
	e.failMu.Unlock()
	select {
	case e.failSig <- struct{}{}:
	default:
	}
}

// checkStalled marks the bus down when records are in flight and none was
// acknowledged for DeliveryTimeout (franz-go keeps retrying an idempotent
// batch whose fate it cannot know, rather than fail it).
func (e *Emitter) checkStalled() {
	if e.nInflight.Load() == 0 || !e.live.Load() {
		return
	}
	if e.stalled() {
		if e.live.Swap(false) {
			e.log.Warn("emit: bus not acknowledging, spooling events", "in_flight", e.nInflight.Load())
		}
	}
}

func (e *Emitter) stalled() bool {
	return e.nInflight.Load() > 0 && time.Since(time.Unix(0, e.lastProgress.Load())) > e.cfg.DeliveryTimeout
}

// spoolFailed appends the records the producer failed to the spool and only
// then marks them done in the journal, so that each one is always in one of
// the two (or counted as dropped, when the spool does not take it).
func (e *Emitter) spoolFailed() {
	e.failMu.Lock()
	recs := e.failed
	e.failed = nil
	e.failMu.Unlock()
	e.toSpool(recs)
	for _, r := range recs {
		jbatchOf(r).done()
	}
}

func (e *Emitter) toSpool(recs []*kgo.Record) {
	if len(recs) == 0 {
		return
	}
	n, err := e.spool.Append(recs)
	if err != nil {
		e.dropped[ReasonSpoolError].Add(int64(len(recs)))
		e.log.Error("emit: spool write failed, events dropped", "events", len(recs), "err", err)
		return
	}
	e.spooled.Add(int64(n))
	if n < len(recs) {
		e.dropped[ReasonSpoolFull].Add(int64(len(recs) - n))
	}
	select {
	case e.spoolSig <- struct{}{}:
	default:
	}
}

// replay sends the spool to the bus, oldest first, and switches the writer
// back to live producing once the spool is empty.
func (e *Emitter) replay(ctx context.Context) {
	t := time.NewTicker(e.cfg.RetryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.spoolSig:
		}
		for ctx.Err() == nil {
			recs, err := e.spool.Peek(e.cfg.BatchSize)
			if err != nil {
				continue // Peek skipped past the corruption
			}
			if len(recs) == 0 {
				if !e.live.Load() && e.spool.Pending() == 0 && !e.stalled() {
					e.live.Store(true)
				}
				break
			}
			if !e.replayBatch(ctx, recs) {
				break // wait for the next tick
			}
		}
	}
}

// replayBatch produces recs until each one is acknowledged once (retrying
// only the ones that failed, so none is sent twice), or ctx ends; then it
// acknowledges the delivered prefix in the spool. It returns true when the
// whole batch was delivered.
func (e *Emitter) replayBatch(ctx context.Context, recs []*kgo.Record) bool {
	done := make([]bool, len(recs))
	for {
		var wg sync.WaitGroup
		var failed atomic.Bool
		for i, r := range recs {
			if done[i] {
				continue
			}
			wg.Add(1)
			resetRecord(r) // a retry must not carry the first try's timestamp (delivery timeout runs from it)
			e.client.Produce(ctx, r, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					if failed.CompareAndSwap(false, true) {
						e.log.Debug("emit: replay produce failed", "err", err)
					}
					return
				}
				done[i] = true
			})
		}
		wg.Wait()
		if !failed.Load() {
			e.ackReplayed(len(recs))
			return true
		}
		select {
		case <-ctx.Done():
			n := 0
			for n < len(done) && done[n] {
				n++
			}
			e.ackReplayed(n)
			return false
		case <-time.After(e.cfg.RetryInterval):
		}
	}
}

func (e *Emitter) ackReplayed(n int) {
	e.spool.Ack(n)
	e.replayed.Add(int64(n))
	e.delivered.Add(int64(n))
}

func (e *Emitter) shutdown(batch []bus.Event) {
	e.closed.Store(true)
	for {
		batch = e.take(batch[:0])
		if len(batch) == 0 {
			break
		}
		e.write(batch)
	}
	if e.client != nil {
		fctx, cancel := context.WithTimeout(context.Background(), e.cfg.FlushTimeout)
		if err := e.client.Flush(fctx); err != nil {
			e.log.Warn("emit: flush to bus cut short; spooling the rest", "err", err)
		}
		cancel()
		e.client.Close() // fails what is still buffered; promise spools it
		waitTimeout(&e.inflight, e.cfg.FlushTimeout)
		e.spoolFailed()
		e.closeJournal()
	}
	st := e.Stats()
	e.log.Info("emitter stopped", "emitted", st.Emitted, "delivered", st.Delivered,
		"spooled", st.Spooled, "replayed", st.Replayed, "spool_pending", st.SpoolPending, "dropped", st.Dropped)
}

// closeJournal empties the journal when every record in it is done, as at
// the end of a clean shutdown. Records whose outcome did not come back in
// time stay in it, for the next start to recover.
func (e *Emitter) closeJournal() {
	e.releaseJournal(false)
	if n := e.journalPending(); n > 0 {
		e.log.Warn("emit: records without an outcome from the producer stay in the journal for the next start", "events", n)
		e.releaseJournal(true)
		e.journal.close()
		return
	}
	if err := e.journal.clear(); err != nil {
		e.log.Warn("emit: clear journal", "err", err)
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(d):
	}
}

// resetRecord clears what franz-go set on a produced record, so it can be
// produced again as new.
func resetRecord(r *kgo.Record) {
	r.Partition, r.Offset, r.ProducerID, r.ProducerEpoch, r.LeaderEpoch = 0, 0, 0, 0, 0
	r.Timestamp = time.Time{}
	r.Context = nil
}
