-- api-tokens, SQLite: fine-grained tokens. What narrows a token below its
-- role (a permission set, an allowlist of client networks, a rate limit)
-- and whether it is disabled, each column null when it does not apply, so
-- every token issued before reads back as it was: unrestricted, enabled.
--
-- Adding nullable columns rewrites no row; SQLite tests the new check
-- against every existing row once (a read of the table, under the write
-- lock: on a large file, run it at a quiet moment).

-- Permission names, in the record's order (the service sorts them), joined
-- by one space (names hold no space).
ALTER TABLE api_tokens ADD COLUMN permissions TEXT;
-- Client networks in CIDR form (`10.0.0.0/8 2001:db8::/32`), joined by
-- one space.
ALTER TABLE api_tokens ADD COLUMN allowed_networks TEXT;
-- At most rate_limit_requests requests per rate_limit_period_secs seconds:
-- both set, or neither.
ALTER TABLE api_tokens ADD COLUMN rate_limit_requests INTEGER;
ALTER TABLE api_tokens ADD COLUMN rate_limit_period_secs INTEGER
    CHECK ((rate_limit_requests IS NULL) = (rate_limit_period_secs IS NULL));
-- Set while the token is disabled: when (microseconds since the Unix
-- epoch, UTC) and by whom.
ALTER TABLE api_tokens ADD COLUMN disabled_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN disabled_by TEXT;

-- The change feed (0002) follows every column but last_used_at: the new
-- ones too, since verification reads them, and a replica must see a token
-- disabled or narrowed as soon as it sees one revoked. A trigger's column
-- list cannot be altered, so it is made again, in this migration's
-- transaction: no write goes unnoted in between.
DROP TRIGGER api_tokens_noted_on_update;
CREATE TRIGGER api_tokens_noted_on_update
AFTER UPDATE OF id, seq, scope_kind, org_id, domain_id, role, label, key_id, digest,
                created_at, created_by, expires_at, revoked_at, revoked_by,
                revoke_reason, rotated_from, replaced_by, permissions,
                allowed_networks, rate_limit_requests, rate_limit_period_secs,
                disabled_at, disabled_by ON api_tokens
BEGIN
    INSERT INTO api_tokens_changes (token_id) VALUES (OLD.id);
    INSERT INTO api_tokens_changes (token_id) SELECT NEW.id WHERE NEW.id <> OLD.id;
END;
