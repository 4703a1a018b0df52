-- livebaton schema, SQLite dialect. Times are Unix milliseconds (BIGINT) so both dialects store them the same way;
-- JSON documents are TEXT (validated by the application before they are written).

-- People who can sign in. role: admin | editor | viewer.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- Cookie sessions. The cookie holds a random id; only its SHA-256 is stored, so a database leak gives no sessions.
CREATE TABLE sessions (
    id_hash    TEXT    PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Content types. fields_definition is the ordered JSON array of field definitions.
CREATE TABLE entities (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT    NOT NULL UNIQUE,
    display_name        TEXT    NOT NULL,
    display_name_plural TEXT    NOT NULL,
    description         TEXT    NOT NULL,
    icon                TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    fields_definition   TEXT    NOT NULL,
    settings            TEXT    NOT NULL,
    created_by          BIGINT  REFERENCES users(id) ON DELETE SET NULL,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL,
    lock_version        BIGINT  NOT NULL
);

-- Records of an entity. data holds values by field key. Slugs are unique per entity.
CREATE TABLE records (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    entity_id    BIGINT  NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
    title        TEXT    NOT NULL,
    slug         TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    data         TEXT    NOT NULL,
    metadata     TEXT    NOT NULL,
    created_by   BIGINT  REFERENCES users(id) ON DELETE SET NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    lock_version BIGINT  NOT NULL,
    UNIQUE (entity_id, slug)
);
CREATE INDEX records_entity ON records(entity_id, id);
