-- The trash. Deleting a record sets deleted_at (and deleted_by) and keeps the row, with its id, slug, lock_version
-- and data, until it is restored (deleted_at back to NULL) or purged: by an admin at once, or by the sweep after the
-- trash retention. Every query of live records says `deleted_at IS NULL`; a trashed record keeps its slug.
ALTER TABLE records ADD COLUMN deleted_at BIGINT;
ALTER TABLE records ADD COLUMN deleted_by BIGINT REFERENCES users(id) ON DELETE SET NULL;
CREATE INDEX records_trash ON records(entity_id, deleted_at) WHERE deleted_at IS NOT NULL;
