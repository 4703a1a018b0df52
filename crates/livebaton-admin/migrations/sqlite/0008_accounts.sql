-- People in the admin: accounts managed in the browser (issue 20).

-- A deactivated account keeps its row (its name stays on what it wrote) but cannot sign in, and everything it held
-- was revoked when it was deactivated. last_seen_at: the last sign-in or live page opened.
ALTER TABLE users ADD COLUMN deactivated_at BIGINT;
ALTER TABLE users ADD COLUMN last_seen_at BIGINT;

-- What the own-account page shows of a session: the browser it was started in, from which address, last active.
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;

-- One-time links: an invitation (sets the password of a new account) or a password reset (of user_id). Only the
-- SHA-256 of the link's token is stored; a link is usable once (used_at), until expires_at, unless revoked_at.
CREATE TABLE account_links (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash  TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL,
    email       TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    user_id     BIGINT  REFERENCES users(id) ON DELETE CASCADE,
    created_by  BIGINT  REFERENCES users(id) ON DELETE SET NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX account_links_email ON account_links(email);

-- Who did what to whose account, and when. The subject is kept by id and email without a foreign key: the trail
-- outlives a deleted account. detail is a JSON object (the old and new role, for example).
CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            BIGINT  NOT NULL,
    actor_id      BIGINT  REFERENCES users(id) ON DELETE SET NULL,
    actor_name    TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    subject_id    BIGINT,
    subject_email TEXT    NOT NULL,
    detail        TEXT    NOT NULL
);

-- API tokens by id, so that each can be listed and revoked on its own (a token carries its id, signed).
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
