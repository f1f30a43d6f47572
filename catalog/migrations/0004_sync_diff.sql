-- Incremental jobs may find deletes by comparing the source's keys in full.

ALTER TABLE sync_jobs ADD COLUMN diff_deletes BIGINT NOT NULL DEFAULT 0;
