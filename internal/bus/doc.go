// Package bus owns the event bus contract: the four topic names, the one
// encoder/decoder between intelligence events and Kafka records, event
// validation, event ids and per-source sequence numbers, and the franz-go
// client options used in production.
//
// Records:
//   - value: the protobuf-encoded event (one of the four messages in gen/).
//   - key: the emitting source's instance id (Envelope.source.instance). All of
//     one sidecar's events on a topic then land in one partition, in order, so
//     the control plane can check the per-source sequence for gaps partition
//     by partition; sidecar instances are many, so load still spreads.
//   - headers: omninode-type (the message's full protobuf name),
//     omninode-schema (the schema version, "1"), omninode-event-id, and
//     traceparent (W3C) when the event carries a trace.
//
// It must not know about sidecars or the control plane: both build on it.
package bus
