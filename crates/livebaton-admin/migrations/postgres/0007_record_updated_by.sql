-- Who saved a record last (the record page shows "Last saved by Alice at 14:02"). Records saved before this
-- migration have no known author of their last save (NULL), as have saves by a user since deleted.
ALTER TABLE records ADD COLUMN updated_by BIGINT REFERENCES users(id) ON DELETE SET NULL;
