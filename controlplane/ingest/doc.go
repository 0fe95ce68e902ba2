// Package ingest owns the control plane's consumption of the event bus: a
// franz-go consumer group over the four intelligence topics that decodes
// every record once, dead-letters what it cannot decode or validate, routes
// events into two priority lanes, writes each batch to the store and hands
// the newly stored events to the per-type processors and the observers.
//
// Lanes: events that signal trouble (a failed or 5xx communication, a failed
// execution, a latency far above the route's recent norm, a service turning
// unhealthy or degraded or stopping) take the fast lane, written at once in
// small batches; routine events are batched by size and time. The two lanes
// have their own queues and writers, so a routine backlog cannot delay a
// critical event.
//
// Offsets: a record's offset is committed only after its batch's store write
// returned (or its dead-letter copy was acknowledged), and only up to the
// first record of its partition that is not yet done, so a crash at any point
// re-delivers what was not durable; the store's idempotent write makes that
// harmless, and processors see only events the store newly inserted, so
// nothing is counted twice. While the store fails the consumer pauses
// fetching, retries with backoff and commits nothing. On a rebalance the
// revoked partitions' finished records are committed before they are handed
// over.
//
// It must not analyze anything itself: processors and observers do.
package ingest
