-- Revocation. token_generation counts the changes of a user's password or role (Store::change_user bumps it, in the
-- transaction that deletes the user's sessions). Every API token carries the generation it was issued at, and a
-- token from another generation is refused, so a password or role change ends every token issued before it.
ALTER TABLE users ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;
