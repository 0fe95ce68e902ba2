// Package faults is the fault-injection suite: it runs the omnibridge
// binary's sidecars and control planes as real processes against a real
// broker (kfake over TCP), PostgreSQL, Redis and Consul, injects faults
// (kills, outages, latency, bandwidth limits, resets, partitions, hanging
// upstreams, floods of bad input) during steady load, and checks for every
// scenario that generated = stored unique + counted drops, locating any gap
// by each sidecar's event sequence numbers.
//
// Everything lives in the _test.go files; docs/guarantees.md links each
// promise to the test that proves it. The package has no API.
package faults
