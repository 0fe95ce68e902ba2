// Package emit owns the sidecar's event emission: a bounded in-memory queue
// that the request path offers events to without ever waiting, a writer
// goroutine that hands them to the bus with franz-go, and an on-disk spool
// that takes over when the bus is slow or down and is replayed, in order,
// once the bus is back.
//
// Delivery is at least once: an event leaves the spool only after the broker
// acknowledged it, so a crash between the acknowledgement and the spool's
// checkpoint can deliver an event twice (the control plane stores events
// idempotently by event id). Every event the emitter gives up on is counted
// in events_dropped_total by reason:
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
