// Package harness is the benchmark harness behind `make bench` and
// `make bench-smoke`.
//
// It measures, side by side in one run, the request-path overhead of the
// omnibridge sidecar against direct access, nginx and HAProxy (open-loop
// constant-rate load, latency from each request's scheduled send time), the
// event pipeline (producers through a Kafka-protocol broker into decoding and
// PostgreSQL COPY), the critical path and directive fan-out where the control
// plane provides them, and the Go micro-benchmarks. Every figure is a median
// over interleaved rounds with its min–max spread, and the proxy figures are
// paired with direct access measured in the same round, because the machine
// is small and shared.
//
// Results go to a timestamped folder: results.json, report.md, charts (PNG),
// micro.txt (benchstat input) and, with Profile, pprof files.
package harness
