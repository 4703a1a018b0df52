-- Unsaved drafts of editing sessions that ended (the last editor left, or the server stopped), kept for their author
-- (the user who wrote the draft's latest version) for the retention period: one per form and user, the newest
-- winning. `draft` is the engine's draft as JSON (values, base row version and values, author); `kind` is `entity` or
-- `data` and `target_id` the entity's or record's id. Removed when restored, discarded, expired or over the limits.
CREATE TABLE kept_drafts (
    kind       TEXT   NOT NULL,
    target_id  BIGINT NOT NULL,
    user_id    TEXT   NOT NULL,
    draft      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    version    BIGINT NOT NULL,
    kept_at    BIGINT NOT NULL,
    PRIMARY KEY (kind, target_id, user_id)
);
CREATE INDEX kept_drafts_kept_at ON kept_drafts(kept_at);
CREATE INDEX kept_drafts_user ON kept_drafts(user_id, kept_at);
