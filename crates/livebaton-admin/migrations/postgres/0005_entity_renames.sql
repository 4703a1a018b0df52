-- Old names of renamed entities, so that links to their admin and public pages keep working: a page asked for by an
-- old name redirects to the same page under the entity's current name. A live entity's name always wins over an old
-- one; renaming back, or a new entity taking the name, removes the old name's row.
CREATE TABLE entity_renames (
    old_name   TEXT   PRIMARY KEY,
    entity_id  BIGINT NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
    renamed_at BIGINT NOT NULL
);
CREATE INDEX entity_renames_entity ON entity_renames(entity_id);
