-- Lighter hot event tables: every index is maintained on each COPYed row, and
-- these three, added by 0002 and 0001 beyond the original design, serve no
-- query (the control plane reads these tables by event id, by time partition
-- for Replay, and execution_intelligence by service and operation). The
-- original design's indexes stay. Dropping the partitioned index drops it
-- from every partition.
DROP INDEX IF EXISTS idx_communication_intelligence_target;
DROP INDEX IF EXISTS idx_service_lifecycle_events_service;
DROP INDEX IF EXISTS idx_tool_registration_events_tool;
