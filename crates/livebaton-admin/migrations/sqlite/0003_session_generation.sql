-- A session records the user's token generation it was created at, and is found only while the user still has it.
-- Store::change_user deletes a user's sessions when it bumps the generation, but a sign-in that verified the old
-- password just before can insert its session just after; the generation makes that session useless at once.
ALTER TABLE sessions ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;
