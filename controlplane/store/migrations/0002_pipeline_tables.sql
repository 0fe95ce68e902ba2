-- What the pipeline needs beyond the original design: the other two event
-- types (partitioned like the first two), the MCP tool registry base, and
-- per-sidecar sequence tracking.

CREATE TABLE IF NOT EXISTS service_lifecycle_events (
    event_id        UUID NOT NULL,
    service_name    VARCHAR(255) NOT NULL,
    event_type      SMALLINT NOT NULL,
    health          SMALLINT NOT NULL,
    service_version TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    source_instance TEXT NOT NULL,
    sequence        BIGINT NOT NULL,
    payload         BYTEA NOT NULL,
    ingested_at     TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (event_id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX IF NOT EXISTS idx_service_lifecycle_events_service ON service_lifecycle_events(service_name, created_at DESC);

CREATE TABLE IF NOT EXISTS tool_registration_events (
    event_id        UUID NOT NULL,
    tool_name       TEXT NOT NULL,
    service_source  TEXT NOT NULL,
    event_type      SMALLINT NOT NULL,
    schema_hash     TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    source_instance TEXT NOT NULL,
    sequence        BIGINT NOT NULL,
    payload         BYTEA NOT NULL,
    ingested_at     TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (event_id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX IF NOT EXISTS idx_tool_registration_events_tool ON tool_registration_events(service_source, tool_name);

-- The MCP tool registry base: the latest known state of each tool, upserted
-- from tool registration events (a later occurred_at wins).
CREATE TABLE IF NOT EXISTS mcp_tools (
    service_source TEXT NOT NULL,
    tool_name      TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    capabilities   TEXT[] NOT NULL DEFAULT '{}',
    schema_hash    TEXT NOT NULL DEFAULT '',
    removed        BOOLEAN NOT NULL DEFAULT FALSE,
    first_seen     TIMESTAMPTZ NOT NULL,
    last_seen      TIMESTAMPTZ NOT NULL,
    last_event_id  UUID NOT NULL,
    PRIMARY KEY (service_source, tool_name)
);

-- Per-sidecar sequence tracking. A source's sequence spans all four topics,
-- so gaps are derived from counts of newly stored events, which stay exact
-- across replicas and replays: gaps = max_seq - min_seq + 1 - events_seen.
CREATE TABLE IF NOT EXISTS source_sequences (
    instance    TEXT PRIMARY KEY,
    service     TEXT NOT NULL,
    min_seq     BIGINT NOT NULL,
    max_seq     BIGINT NOT NULL,
    events_seen BIGINT NOT NULL,
    gaps        BIGINT GENERATED ALWAYS AS (max_seq - min_seq + 1 - events_seen) STORED,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
