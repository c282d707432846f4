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

-- How many tokens of each scope are live (neither revoked on their own nor
-- covered by a scope revocation), so a scope revocation reports its count
-- without counting rows. The trigger below keeps it for every write to the
-- token table, whoever makes it (a bulk load may disable the trigger and
-- fill this table with one GROUP BY instead).
CREATE TABLE api_tokens_scope_counts (
    org_id    TEXT COLLATE "C" NOT NULL,
    domain_id TEXT COLLATE "C" NOT NULL,
    live      BIGINT NOT NULL,
    PRIMARY KEY (org_id, domain_id)
);

CREATE FUNCTION api_tokens_count_live() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.revoked_at IS NULL AND NOT EXISTS (
            SELECT 1 FROM api_tokens_scope_revocations AS c
            WHERE c.org_id = OLD.org_id AND c.domain_id IN ('', OLD.domain_id)
            AND c.through_seq >= OLD.seq
        ) THEN
            UPDATE api_tokens_scope_counts SET live = greatest(live - 1, 0)
            WHERE org_id = OLD.org_id AND domain_id = OLD.domain_id;
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.revoked_at IS NULL AND NOT EXISTS (
            SELECT 1 FROM api_tokens_scope_revocations AS c
            WHERE c.org_id = NEW.org_id AND c.domain_id IN ('', NEW.domain_id)
            AND c.through_seq >= NEW.seq
        ) THEN
            INSERT INTO api_tokens_scope_counts AS counts (org_id, domain_id, live)
            VALUES (NEW.org_id, NEW.domain_id, 1)
            ON CONFLICT (org_id, domain_id) DO UPDATE SET live = counts.live + 1;
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER api_tokens_counted
    AFTER INSERT OR DELETE OR UPDATE OF revoked_at, org_id, domain_id ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION api_tokens_count_live();
