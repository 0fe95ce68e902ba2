// Package intelapi serves the IntelligenceService (the read-only query API,
// viewer role) over Connect, gRPC and gRPC-Web on one handler, with gRPC
// health and reflection, on top of the analyzer's state. List results go
// through a cache when one is configured. Recommendations and sidecar status
// come from the optimizer through LoopReader. It also hosts the live tap: an
// ingest Observer that fans newly stored events out to Tap streams without
// ever blocking the pipeline. It must not change anything in the mesh; the
// AdminService lives elsewhere.
package intelapi
