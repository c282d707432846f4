-- api-tokens, PostgreSQL: one row per token, and one per scope revocation.
-- Written for the default table name; the crate renders it for another
-- (PostgresStore::migrations), quoting every name it derives from it.

CREATE TABLE api_tokens (
    -- The public token id, exactly as tokens and lists show it.
    id            TEXT COLLATE "C" PRIMARY KEY,
    -- Insertion order: a scope revocation covers the rows up to its mark.
    seq           BIGINT GENERATED ALWAYS AS IDENTITY,
    scope_kind    TEXT NOT NULL,
    org_id        TEXT COLLATE "C" NOT NULL,
    -- '' for an organization's own tokens.
    domain_id     TEXT COLLATE "C" NOT NULL,
    role          TEXT NOT NULL,
    label         TEXT NOT NULL,
    key_id        BIGINT NOT NULL,
    -- BLAKE3-keyed(key, id || secret): 32 bytes, useless without the key.
    digest        BYTEA NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    created_by    TEXT NOT NULL,
    expires_at    TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    revoked_by    TEXT,
    revoke_reason TEXT,
    last_used_at  TIMESTAMPTZ,
    rotated_from  TEXT COLLATE "C",
    replaced_by   TEXT COLLATE "C"
);

-- A scope's list, newest first.
CREATE INDEX api_tokens_by_scope
    ON api_tokens (org_id, scope_kind, domain_id, created_at, id);
-- Live tokens expiring soon.
CREATE INDEX api_tokens_by_expiry
    ON api_tokens (org_id, scope_kind, domain_id, expires_at, id)
    WHERE revoked_at IS NULL AND replaced_by IS NULL;
-- An organization's rows in insertion order: scope revocations.
CREATE INDEX api_tokens_by_org_seq ON api_tokens (org_id, seq);
-- Purging: what ended before a cutoff.
CREATE INDEX api_tokens_by_revocation ON api_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX api_tokens_by_end ON api_tokens (expires_at) WHERE expires_at IS NOT NULL;

-- Every token of the scope whose seq is at most through_seq counts as
-- revoked by this row, unless it was revoked before on its own.
CREATE TABLE api_tokens_scope_revocations (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        TEXT COLLATE "C" NOT NULL,
    -- '' for the whole organization, its domains included.
    domain_id     TEXT COLLATE "C" NOT NULL,
    through_seq   BIGINT NOT NULL,
    revoked_at    TIMESTAMPTZ NOT NULL,
    revoked_by    TEXT NOT NULL,
    revoke_reason TEXT
);

CREATE INDEX api_tokens_scope_revocations_by_scope
    ON api_tokens_scope_revocations (org_id, domain_id, through_seq);
