package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omninode/bridge/internal/bus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/errgroup"
)

// Lane names, as metric labels.
const (
	laneFast    = "fast"
	laneRoutine = "routine"
)

// finalCommitTimeout bounds the last commit when Run stops.
const finalCommitTimeout = 5 * time.Second

// item is one decoded event on its way through a lane.
type item struct {
	ev     bus.Event
	tok    token
	polled time.Time
}

// Ingest consumes the bus into the store and the processors. Run it once.
type Ingest struct {
	cfg     Config
	m       *metrics
	tracer  trace.Tracer
	tracker *tracker
	class   *classifier
	fast    chan item
	routine chan item
	kick    chan struct{} // asks the committer to commit now

	cl       *kgo.Client
	commitMu sync.Mutex // one commit at a time; revocation waits for the committer's
	closing  atomic.Bool
	paused   atomic.Bool
}

// New validates cfg and builds an Ingest; Run connects.
func New(cfg Config) (*Ingest, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tp := cfg.Tracer
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	in := &Ingest{
		cfg:     cfg,
		tracer:  tp.Tracer("github.com/omninode/bridge/controlplane/ingest"),
		tracker: newTracker(),
		class:   newClassifier(cfg),
		fast:    make(chan item, cfg.QueueSize),
		routine: make(chan item, cfg.QueueSize),
		kick:    make(chan struct{}, 1),
	}
	in.m = newMetrics(cfg.Registry, func(lane string) float64 {
		if lane == laneFast {
			return float64(len(in.fast))
		}
		return float64(len(in.routine))
	})
	return in, nil
}

// Run joins the group and consumes until ctx ends. On the way out it commits
// what is durable and leaves the group; what was polled but not yet written
// is delivered again to whoever owns the partition next. It returns nil on a
// clean stop.
func (in *Ingest) Run(ctx context.Context) error {
	opts, err := in.cfg.Bus.ConsumerOpts(in.cfg.Group, in.cfg.Topics, append([]kgo.Opt{
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { in.tracker.assign(m) }),
		kgo.OnPartitionsRevoked(in.onRevoked),
		kgo.OnPartitionsLost(in.onLost),
	}, in.cfg.ExtraOpts...)...)
	if err != nil {
		return fmt.Errorf("build consumer options: %w", err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("create consumer: %w", err)
	}
	in.cl = cl
	in.cfg.Logger.Info("ingest started", "group", in.cfg.Group, "topics", in.cfg.Topics)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return in.poll(gctx) })
	g.Go(func() error { return in.lane(gctx, laneFast, in.fast, in.cfg.FastBatchSize, 0) })
	for range in.cfg.Writers {
		g.Go(func() error { return in.lane(gctx, laneRoutine, in.routine, in.cfg.BatchSize, in.cfg.BatchWait) })
	}
	g.Go(func() error { return in.committer(gctx) })
	err = g.Wait()

	in.closing.Store(true)
	in.tracker.wake()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalCommitTimeout)
	in.commit(cctx, nil)
	cancel()
	cl.Close()
	in.cfg.Logger.Info("ingest stopped", "group", in.cfg.Group)
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// poll fetches records, dead-letters the bad ones and routes the good ones
// into their lane. A full lane blocks it: polling stops until the lane drains.
func (in *Ingest) poll(ctx context.Context) error {
	pollMax := max(in.cfg.BatchSize, in.cfg.QueueSize/4)
	for {
		fs := in.cl.PollRecords(ctx, pollMax)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil
		}
		fs.EachError(func(topic string, part int32, err error) {
			if !errors.Is(err, context.Canceled) {
				in.cfg.Logger.Warn("fetch failed", "topic", topic, "partition", part, "err", err)
			}
		})
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if n := len(p.Records); n > 0 {
				in.m.lag.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).
					Set(float64(p.HighWatermark - p.Records[n-1].Offset - 1))
			}
		})
		now := time.Now()
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			tok := in.tracker.add(r)
			ev, err := bus.Decode(r)
			if err != nil {
				in.deadLetter(ctx, r, tok, err)
				continue
			}
			ch := in.routine
			if in.class.critical(ev) {
				ch = in.fast
			}
			select {
			case ch <- item{ev: ev, tok: tok, polled: now}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// deadLetter sends a bad record, unchanged, to the dead-letter topic with the
// reason and its topic in headers. The record counts as done once the copy is
// acknowledged; until then its partition's commits wait, its processing does not.
func (in *Ingest) deadLetter(ctx context.Context, r *kgo.Record, tok token, cause error) {
	reason := bus.Reason(cause)
	in.m.deadLetters.WithLabelValues(reason).Inc()
	in.cfg.Logger.Debug("dead-lettering record", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", cause)
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+2)
	headers = append(headers, r.Headers...)
	headers = append(headers,
		kgo.RecordHeader{Key: bus.HeaderDLQReason, Value: []byte(reason + ": " + cause.Error())},
		kgo.RecordHeader{Key: bus.HeaderDLQTopic, Value: []byte(r.Topic)})
	dlq := &kgo.Record{Topic: bus.TopicDeadLetter, Key: r.Key, Value: r.Value, Headers: headers}
	in.cl.Produce(ctx, dlq, func(_ *kgo.Record, err error) {
		if err != nil {
			if ctx.Err() == nil {
				in.cfg.Logger.Error("produce to dead-letter topic failed; the record will be delivered again",
					"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
			}
			return
		}
		in.tracker.done([]token{tok})
		in.kickCommit()
	})
}

// quietGap ends a routine batch early: when no event arrived for this long,
// the batch is written at once instead of waiting out BatchWait, so a lane
// that keeps up writes each poll's events right away (low latency) while a
// backlog still fills whole batches (throughput).
const quietGap = 2 * time.Millisecond

// lane batches one lane's items and writes them. wait 0 means write what is
// queued at once (the fast lane); otherwise a batch is written when it is
// full, when no event arrived for quietGap, or wait after its first event.
func (in *Ingest) lane(ctx context.Context, name string, ch chan item, size int, wait time.Duration) error {
	batch := make([]item, 0, size)
	var gap *time.Timer
	if wait > 0 {
		gap = time.NewTimer(time.Hour)
		gap.Stop()
		defer gap.Stop()
	}
	for {
		select {
		case it := <-ch:
			batch = append(batch, it)
		case <-ctx.Done():
			return nil
		}
		deadline := time.Now().Add(wait)
	fill:
		for len(batch) < size {
			select {
			case it := <-ch:
				batch = append(batch, it)
				continue
			default:
			}
			if wait <= 0 {
				break
			}
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			gap.Reset(min(quietGap, left))
			select {
			case it := <-ch:
				batch = append(batch, it)
				gap.Stop()
			case <-gap.C:
				break fill
			case <-ctx.Done():
				return nil
			}
		}
		if err := in.handle(ctx, name, batch); err != nil {
			return nil // only a canceled context stops a write
		}
		clear(batch)
		batch = batch[:0]
	}
}

// handle writes a batch (retrying until it is durable), then shows the newly
// stored events to the observers and processors and marks the records done.
func (in *Ingest) handle(ctx context.Context, lane string, batch []item) error {
	evs := make([]bus.Event, len(batch))
	for i, it := range batch {
		evs[i] = it.ev
	}
	ctx, span := in.tracer.Start(ctx, "ingest.batch", trace.WithLinks(links(evs)...),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("omnibridge.lane", lane), attribute.Int("omnibridge.events", len(evs))))
	defer span.End()
	in.m.batchSize.WithLabelValues(lane).Observe(float64(len(batch)))

	inserted, err := in.write(ctx, lane, evs)
	if err != nil {
		return err
	}
	critical := lane == laneFast
	fresh := evs[:0:0]
	for _, ev := range evs {
		id := ev.GetEnvelope().GetEventId()
		if inserted[id] {
			delete(inserted, id) // a duplicate inside the batch is handed on once
			fresh = append(fresh, ev)
			for _, o := range in.cfg.Observers {
				o.Observe(ev, critical)
			}
		}
	}
	in.m.events.WithLabelValues(lane, "inserted").Add(float64(len(fresh)))
	in.m.events.WithLabelValues(lane, "duplicate").Add(float64(len(evs) - len(fresh)))
	for _, err := range in.cfg.Processors.dispatch(ctx, fresh) {
		if err != nil {
			in.m.procErrors.WithLabelValues(lane).Inc()
			in.cfg.Logger.Warn("processor failed; events stay stored", "lane", lane, "err", err)
		}
	}
	toks := make([]token, len(batch))
	now := time.Now()
	for i, it := range batch {
		toks[i] = it.tok
		in.m.delay.WithLabelValues(lane).Observe(now.Sub(it.polled).Seconds())
	}
	in.tracker.done(toks)
	in.kickCommit()
	return nil
}

// write calls the store until the batch is durable or ctx ends. While it
// fails, fetching is paused and nothing is committed.
func (in *Ingest) write(ctx context.Context, lane string, evs []bus.Event) (map[string]bool, error) {
	backoff := in.cfg.RetryMin
	for {
		start := time.Now()
		inserted, err := in.cfg.Store.WriteEvents(ctx, evs)
		if err == nil {
			in.m.writeSeconds.WithLabelValues(lane).Observe(time.Since(start).Seconds())
			in.resume()
			return inserted, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		in.m.writeErrors.WithLabelValues(lane).Inc()
		in.cfg.Logger.Warn("store write failed; pausing fetches and retrying", "lane", lane,
			"events", len(evs), "retry_in", backoff, "err", err)
		in.pause()
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		backoff = min(backoff*2, in.cfg.RetryMax)
	}
}

func (in *Ingest) pause() {
	if in.paused.CompareAndSwap(false, true) {
		in.cl.PauseFetchTopics(in.cfg.Topics...)
		in.m.paused.Set(1)
	}
}

func (in *Ingest) resume() {
	if in.paused.CompareAndSwap(true, false) {
		in.cl.ResumeFetchTopics(in.cfg.Topics...)
		in.m.paused.Set(0)
		in.cfg.Logger.Info("store writes succeed again; fetching resumed")
	}
}

func (in *Ingest) kickCommit() {
	select {
	case in.kick <- struct{}{}:
	default:
	}
}

// committer commits done offsets whenever a batch finishes (coalesced).
func (in *Ingest) committer(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-in.kick:
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
		in.commit(ctx, nil)
	}
}

// commit commits the done offsets of the given partitions (all when nil).
func (in *Ingest) commit(ctx context.Context, only map[tp]bool) {
	in.commitMu.Lock()
	defer in.commitMu.Unlock()
	offs := in.tracker.committable(only)
	if len(offs) == 0 {
		return
	}
	var cerr error
	in.cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
					cerr = fmt.Errorf("commit %s/%d: %w", t.Topic, p.Partition, e)
				}
			}
		}
	})
	if cerr != nil {
		in.tracker.failed(offs)
		in.m.commits.WithLabelValues("error").Inc()
		if ctx.Err() == nil {
			in.cfg.Logger.Warn("offset commit failed; will retry", "err", cerr)
		}
		return
	}
	in.m.commits.WithLabelValues("ok").Inc()
}

// onRevoked waits (bounded by RevokeTimeout) for the revoked partitions'
// polled records to be written, commits them, and stops tracking the
// partitions, so the next owner starts exactly after what is durable.
func (in *Ingest) onRevoked(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	parts := partSet(m)
	if len(parts) == 0 {
		return
	}
	if !in.closing.Load() {
		stop := make(chan struct{})
		timer := time.AfterFunc(in.cfg.RevokeTimeout, func() { close(stop); in.tracker.wake() })
		if !in.tracker.waitDone(parts, stop) {
			in.cfg.Logger.Warn("revoked partitions still had unwritten records; committing what is done",
				"timeout", in.cfg.RevokeTimeout)
		}
		timer.Stop()
	}
	cctx, cancel := context.WithTimeout(ctx, finalCommitTimeout)
	in.commit(cctx, parts)
	cancel()
	in.tracker.revoke(parts)
	for k := range parts {
		in.m.lag.DeleteLabelValues(k.topic, strconv.Itoa(int(k.part)))
	}
	in.cfg.Logger.Info("partitions revoked", "partitions", m)
}

// onLost stops tracking partitions without committing: another member owns them.
func (in *Ingest) onLost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	parts := partSet(m)
	in.tracker.revoke(parts)
	for k := range parts {
		in.m.lag.DeleteLabelValues(k.topic, strconv.Itoa(int(k.part)))
	}
	if len(parts) > 0 {
		in.cfg.Logger.Warn("partitions lost", "partitions", m)
	}
}

func partSet(m map[string][]int32) map[tp]bool {
	out := map[tp]bool{}
	for topic, ps := range m {
		for _, p := range ps {
			out[tp{topic, p}] = true
		}
	}
	return out
}

// maxLinks bounds the span links of one batch.
const maxLinks = 128

// links returns span links to the traces the events carry.
func links(evs []bus.Event) []trace.Link {
	var out []trace.Link
	for _, ev := range evs {
		tc := ev.GetEnvelope().GetTrace()
		if tc == nil {
			continue
		}
		tid, err1 := trace.TraceIDFromHex(tc.GetTraceId())
		sid, err2 := trace.SpanIDFromHex(tc.GetSpanId())
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(tc.GetTraceFlags()), Remote: true})})
		if len(out) == maxLinks {
			break
		}
	}
	return out
}
