// Package store owns the control plane's durable state: the PostgreSQL
// schema (versioned migrations embedded in the binary), the idempotent,
// batched writes of intelligence events (COPY straight into the tables when
// every id is new, else COPY into a staging table, then an INSERT ... ON
// CONFLICT DO NOTHING on the event id), day partitions of the
// event tables with their retention, per-sidecar sequence tracking, the MCP
// tool registry base, and replay of stored events for rebuilding analysis.
//
// Two implementations share one interface: [PG] on PostgreSQL (pgx/v5), and
// [Mem], an in-process store for `omnibridge dev` that is NOT durable: it
// loses everything when the process exits.
//
// Migration numbers are shared between teams: 0001–0099 belong to this
// package's pipeline tables, 0100–0199 to analysis, 0200–0299 to the
// optimization loop. The runner applies every file of migrations/ in number
// order. It must not know about Kafka or the analysis: it stores what it is
// given and says which events were new.
package store
