-- api-tokens, SQLite: one row per token, and one per scope revocation.
-- Written for the default table name; the crate renders it for another
-- (SqliteStore::migrations), quoting every name it derives from it.
-- Times are microseconds since the Unix epoch, UTC.

CREATE TABLE api_tokens (
    -- Insertion order: a scope revocation covers the rows up to its mark.
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The public token id, exactly as tokens and lists show it.
    id            TEXT NOT NULL UNIQUE,
    scope_kind    TEXT NOT NULL,
    org_id        TEXT NOT NULL,
    -- '' for an organization's own tokens.
    domain_id     TEXT NOT NULL,
    role          TEXT NOT NULL,
    label         TEXT NOT NULL,
    key_id        INTEGER NOT NULL,
    -- BLAKE3-keyed(key, id || secret): 32 bytes, useless without the key.
    digest        BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    revoked_by    TEXT,
    revoke_reason TEXT,
    last_used_at  INTEGER,
    rotated_from  TEXT,
    replaced_by   TEXT
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
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        TEXT NOT NULL,
    -- '' for the whole organization, its domains included.
    domain_id     TEXT NOT NULL,
    through_seq   INTEGER NOT NULL,
    revoked_at    INTEGER NOT NULL,
    revoked_by    TEXT NOT NULL,
    revoke_reason TEXT
);

CREATE INDEX api_tokens_scope_revocations_by_scope
    ON api_tokens_scope_revocations (org_id, domain_id, through_seq);

-- How many tokens of each scope are live (neither revoked on their own nor
-- covered by a scope revocation), so a scope revocation reports its count
-- without counting rows. The triggers below keep it for every write to the
-- token table, whoever makes it.
CREATE TABLE api_tokens_scope_counts (
    org_id    TEXT NOT NULL,
    domain_id TEXT NOT NULL,
    live      INTEGER NOT NULL,
    PRIMARY KEY (org_id, domain_id)
);

CREATE TRIGGER api_tokens_counted_on_insert AFTER INSERT ON api_tokens
WHEN NEW.revoked_at IS NULL AND NOT EXISTS (
    SELECT 1 FROM api_tokens_scope_revocations AS c
    WHERE c.org_id = NEW.org_id AND c.domain_id IN ('', NEW.domain_id)
    AND c.through_seq >= NEW.seq)
BEGIN
    INSERT INTO api_tokens_scope_counts (org_id, domain_id, live)
    VALUES (NEW.org_id, NEW.domain_id, 1)
    ON CONFLICT (org_id, domain_id) DO UPDATE SET live = live + 1;
END;

CREATE TRIGGER api_tokens_counted_on_delete AFTER DELETE ON api_tokens
WHEN OLD.revoked_at IS NULL AND NOT EXISTS (
    SELECT 1 FROM api_tokens_scope_revocations AS c
    WHERE c.org_id = OLD.org_id AND c.domain_id IN ('', OLD.domain_id)
    AND c.through_seq >= OLD.seq)
BEGIN
    UPDATE api_tokens_scope_counts SET live = max(live - 1, 0)
    WHERE org_id = OLD.org_id AND domain_id = OLD.domain_id;
END;

CREATE TRIGGER api_tokens_counted_on_update_old
AFTER UPDATE OF revoked_at, org_id, domain_id ON api_tokens
WHEN OLD.revoked_at IS NULL AND NOT EXISTS (
    SELECT 1 FROM api_tokens_scope_revocations AS c
    WHERE c.org_id = OLD.org_id AND c.domain_id IN ('', OLD.domain_id)
    AND c.through_seq >= OLD.seq)
BEGIN
    UPDATE api_tokens_scope_counts SET live = max(live - 1, 0)
    WHERE org_id = OLD.org_id AND domain_id = OLD.domain_id;
END;

CREATE TRIGGER api_tokens_counted_on_update_new
AFTER UPDATE OF revoked_at, org_id, domain_id ON api_tokens
WHEN NEW.revoked_at IS NULL AND NOT EXISTS (
    SELECT 1 FROM api_tokens_scope_revocations AS c
    WHERE c.org_id = NEW.org_id AND c.domain_id IN ('', NEW.domain_id)
    AND c.through_seq >= NEW.seq)
BEGIN
    INSERT INTO api_tokens_scope_counts (org_id, domain_id, live)
    VALUES (NEW.org_id, NEW.domain_id, 1)
    ON CONFLICT (org_id, domain_id) DO UPDATE SET live = live + 1;
END;
