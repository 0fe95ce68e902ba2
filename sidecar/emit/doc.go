// Package emit owns the sidecar's event emission: a bounded in-memory queue
// that the request path offers events to without ever waiting, a writer
// goroutine that hands them to the bus with franz-go, a write-ahead journal
// of what the producer holds, and an on-disk spool that takes over when the
// bus is slow or down and is replayed, in order, once the bus is back.
//
// # Journal
//
// While the bus is live, the writer appends each batch it hands to the
// producer to the journal (<SpoolDir>/journal: the spool's frame format,
// one write per batch, small segments) before producing it. A record is
// done when the broker acknowledged it, or when it failed and the spool
// took it (or the failure was counted as a drop): so it is always in the
// journal, the spool or the broker. Segments are deleted once every record
// in them is done, and the done position in the oldest one is checkpointed
// at most every watch tick (250 ms by default). At start, New moves what a
// previous run left in the journal into the spool (counted in
// events_recovered_total and logged) before the replayer runs; a clean
// shutdown leaves the journal empty. If the journal cannot be written
// (disk full), the batch is produced anyway, without a copy, and counted
// in events_unjournaled_total (logged at most once a second); when the
// journal reaches its cap (SpoolMaxBytes: a record the producer holds for
// very long keeps it from being released), batches go to the spool.
//
// # What survives which stop
//
//   - Clean stop (context canceled, SIGTERM): the queue is flushed to the
//     bus within FlushTimeout, what the bus did not take is spooled, and
//     the journal is left empty (records whose outcome the producer did
//     not report in time stay in it for the next start). Nothing is lost.
//   - Process kill (SIGKILL, OOM kill, a crash of the process): the
//     journal is not fsynced, but what the process wrote is in the
//     kernel's page cache, which outlives the process. So every record
//     handed to the producer (buffered, in flight or being retried,
//     however long the bus was down) is recovered at the next start, and
//     every spooled record is replayed. Lost are only the events not yet
//     written by the writer: those in the in-memory queue (at most
//     QueueSize) and the batch it is encoding (at most BatchSize), and
//     records produced without a journal copy (events_unjournaled_total).
//   - Machine crash (power loss, kernel panic): the spool is fsynced per
//     batch and survives (a torn last frame is truncated at start). The
//     journal is not fsynced, so the records the producer held may be lost
//     with the page cache, as well as the queue.
//
// # Duplicates
//
// Delivery is at least once, and the control plane stores events
// idempotently by event id. A kill delivers twice: the spooled events the
// broker acknowledged after the spool's last checkpoint (at most one
// replay batch); the journaled records that were done but not yet released
// to disk at the kill, which are: those done since the last journal
// checkpoint (at most one watch tick of acknowledgements, and at most one
// journal segment, 256 KiB); the done records of the oldest batch not
// wholly done and of the batches after it (acknowledged out of order while
// an older record was still with the producer: once no acknowledgement
// came for DeliveryTimeout the bus counts as down and new events go to the
// spool, so this is in practice at most one DeliveryTimeout of events, and
// never more than the journal's cap); and the records the broker took
// whose acknowledgement the kill cut off. A kill during the recovery
// itself may spool one recovery batch twice.
//
// Every event the emitter gives up on is counted in events_dropped_total
// by reason:
//
//   - queue_full: the in-memory queue was full (the request path never waits);
//   - spool_full: the spool reached its size cap; the newest events are
//     dropped, the spooled ones kept (they are older and in order);
//   - invalid: the event failed bus.Encode (a bug in the emitter's caller);
//   - spool_error: the spool could not be written (disk error);
//   - closed: Emit was called after the emitter stopped.
//
// It must not block, slow or fail the request path, and must not log event
// contents.
package emit
