-- The intelligence layer's (controlplane/analyze) additions. Patterns are
-- updated in place by pattern_id, a name-based UUID of the failure template,
-- so replicas meeting the same failure write the same row (frequency adds).
ALTER TABLE intelligence_patterns ADD COLUMN IF NOT EXISTS template TEXT NOT NULL DEFAULT '';
ALTER TABLE intelligence_patterns ADD COLUMN IF NOT EXISTS root_cause_service TEXT NOT NULL DEFAULT '';
ALTER TABLE intelligence_patterns ALTER COLUMN frequency TYPE BIGINT;
CREATE INDEX IF NOT EXISTS idx_intelligence_patterns_template ON intelligence_patterns(template);

-- Every schema an MCP tool has had (drift history), one row per schema.
CREATE TABLE IF NOT EXISTS tool_schema_history (
    service_source TEXT NOT NULL,
    tool_name      TEXT NOT NULL,
    schema_hash    TEXT NOT NULL,
    signature      JSONB,
    description    TEXT NOT NULL DEFAULT '',
    capabilities   TEXT[] NOT NULL DEFAULT '{}',
    seen_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (service_source, tool_name, schema_hash)
);

CREATE INDEX IF NOT EXISTS idx_service_ecosystem_snapshot ON service_ecosystem(snapshot_timestamp DESC);
