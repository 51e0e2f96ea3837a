-- One-time invitations: a member created by invite has an unusable password until the
-- invite is accepted. Only a keyed hash of the token is kept.
CREATE TABLE member_invites (
    token_hash  TEXT PRIMARY KEY,
    member_id   TEXT NOT NULL UNIQUE REFERENCES members(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
