// Package closedloop holds the closed loop's end-to-end tests: real sidecars
// (the sidecar package with its policy engine and directive client) in
// front of real upstreams, emitting to a real Kafka-protocol broker; a
// control plane made of the directive server, the optimization engine with
// its PostgreSQL store and the admin API; and route statistics computed
// from the events that crossed the bus. It has no non-test code.
package closedloop
