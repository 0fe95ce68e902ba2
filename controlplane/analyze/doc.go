// Package analyze is the control plane's intelligence layer: it turns the
// events the ingest pipeline routes to it into route statistics (mergeable
// latency sketches over sliding windows, trends, anomalies, bottlenecks),
// failure patterns, cross-service call trees with root causes, user journeys,
// the live service catalog and dependency graph with impact analysis and
// causal hints, and the MCP tool registry with drift history.
//
// It owns its in-memory state and its own tables (intelligence_patterns
// columns it adds, tool_registry, tool_schema_history, service_ecosystem
// snapshots); it rebuilds the rest after a restart by replaying the last
// baseline window of stored events through an EventSource. Per-event work is
// O(1) with no database round trip; persistence happens in Run's periodic
// flush. It must not write events, directives or anything the pipeline or the
// optimizer own.
package analyze
