-- The original design's tables. Column types follow the design; timestamps are
-- timestamptz (UTC), and the two event tables are partitioned by day on
-- created_at (the event's occurred_at), so their primary keys include it.

CREATE TABLE IF NOT EXISTS intelligence_patterns (
    pattern_id   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    pattern_type VARCHAR(100) NOT NULL,
    pattern_data JSONB NOT NULL,
    confidence   DECIMAL(3,2) NOT NULL,
    frequency    INTEGER DEFAULT 1,
    first_seen   TIMESTAMPTZ DEFAULT NOW(),
    last_seen    TIMESTAMPTZ DEFAULT NOW(),
    success_rate DECIMAL(3,2) DEFAULT 0.0,
    created_at   TIMESTAMPTZ DEFAULT NOW(),
    updated_at   TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_intelligence_patterns_type ON intelligence_patterns(pattern_type);
CREATE INDEX IF NOT EXISTS idx_intelligence_patterns_confidence ON intelligence_patterns(confidence DESC);
CREATE INDEX IF NOT EXISTS idx_intelligence_patterns_last_seen ON intelligence_patterns(last_seen);

-- One row per execution event. execution_id is the event id.
CREATE TABLE IF NOT EXISTS execution_intelligence (
    execution_id      UUID NOT NULL,
    correlation_id    TEXT NOT NULL,
    service_name      VARCHAR(255) NOT NULL,
    operation         VARCHAR(255) NOT NULL,
    execution_time_ms INTEGER NOT NULL,
    success           BOOLEAN NOT NULL,
    intelligence_data JSONB NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    source_instance   TEXT NOT NULL,
    sequence          BIGINT NOT NULL,
    payload           BYTEA NOT NULL,
    ingested_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (execution_id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX IF NOT EXISTS idx_execution_intelligence_service ON execution_intelligence(service_name, operation);
CREATE INDEX IF NOT EXISTS idx_execution_intelligence_time ON execution_intelligence(created_at DESC);

-- One row per communication event. communication_id is the event id.
CREATE TABLE IF NOT EXISTS communication_intelligence (
    communication_id      UUID NOT NULL,
    correlation_id        TEXT NOT NULL,
    source_service        VARCHAR(255),
    target_service        VARCHAR(255),
    request_data          JSONB NOT NULL,
    response_data         JSONB NOT NULL,
    performance_metrics   JSONB NOT NULL,
    intelligence_insights JSONB NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    status_code           INTEGER NOT NULL,
    success               BOOLEAN NOT NULL,
    response_time_ms      DOUBLE PRECISION NOT NULL,
    route                 TEXT NOT NULL,
    source_instance       TEXT NOT NULL,
    sequence              BIGINT NOT NULL,
    payload               BYTEA NOT NULL,
    ingested_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (communication_id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX IF NOT EXISTS idx_communication_intelligence_correlation ON communication_intelligence(correlation_id);
CREATE INDEX IF NOT EXISTS idx_communication_intelligence_target ON communication_intelligence(target_service, route);

CREATE TABLE IF NOT EXISTS service_ecosystem (
    ecosystem_id        UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    services_active     JSONB NOT NULL,
    capability_matrix   JSONB NOT NULL,
    dependency_graph    JSONB NOT NULL,
    performance_metrics JSONB NOT NULL,
    snapshot_timestamp  TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS optimization_recommendations (
    recommendation_id   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    recommendation_type VARCHAR(100) NOT NULL,
    target_service      VARCHAR(255),
    recommendation_data JSONB NOT NULL,
    expected_impact     JSONB NOT NULL,
    confidence          DECIMAL(3,2) NOT NULL,
    applied             BOOLEAN DEFAULT FALSE,
    applied_at          TIMESTAMPTZ,
    effectiveness_score DECIMAL(3,2),
    created_at          TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_optimization_recommendations_service ON optimization_recommendations(target_service);
