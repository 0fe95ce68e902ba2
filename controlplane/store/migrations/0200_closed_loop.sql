-- 0200: the closed loop (controlplane/optimize): recommendation life cycle
-- columns on top of 0001's optimization_recommendations, the audit log,
-- operator modes and the published directive versions.

ALTER TABLE optimization_recommendations
    ADD COLUMN IF NOT EXISTS state            TEXT NOT NULL DEFAULT 'RECOMMENDATION_STATE_PROPOSED',
    ADD COLUMN IF NOT EXISTS state_reason     TEXT NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS route            TEXT NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS kind             TEXT NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS baseline         JSONB,
    ADD COLUMN IF NOT EXISTS after_outcome    JSONB,
    ADD COLUMN IF NOT EXISTS snapshot_version BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS enforced_at      TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS canary_fraction  DOUBLE PRECISION NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS updated_at       TIMESTAMPTZ NOT NULL DEFAULT NOW();

CREATE INDEX IF NOT EXISTS idx_optimization_recommendations_state
    ON optimization_recommendations (target_service, state);
CREATE INDEX IF NOT EXISTS idx_optimization_recommendations_created
    ON optimization_recommendations (created_at DESC);

-- Every action on the loop: who, what, why.
CREATE TABLE IF NOT EXISTS optimization_audit (
    id                BIGSERIAL PRIMARY KEY,
    at                TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    actor             TEXT NOT NULL,
    action            TEXT NOT NULL,
    recommendation_id UUID,
    service           TEXT NOT NULL DEFAULT '',
    reason            TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS idx_optimization_audit_rec ON optimization_audit (recommendation_id, at DESC);
CREATE INDEX IF NOT EXISTS idx_optimization_audit_at ON optimization_audit (at DESC);

-- Operator modes per service ('*' for all) and directive kind.
CREATE TABLE IF NOT EXISTS optimization_modes (
    service    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    mode       TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (service, kind)
);
