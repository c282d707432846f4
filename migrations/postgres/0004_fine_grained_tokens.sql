-- api-tokens, PostgreSQL: fine-grained tokens. What narrows a token below
-- its role (a permission set, an allowlist of client networks, a rate
-- limit) and whether it is disabled, each column null when it does not
-- apply, so every token issued before reads back as it was: unrestricted,
-- enabled.
--
-- Nullable columns without a default are added without rewriting the
-- table, and the check is added NOT VALID: every existing row has both its
-- columns null (they are new), so there is nothing to scan for. The table
-- is locked only while its definition changes.

ALTER TABLE api_tokens
    -- Permission names, in the record's order (the service sorts them),
    -- joined by one space (names hold no space).
    ADD COLUMN permissions            TEXT,
    -- Client networks in CIDR form (`10.0.0.0/8 2001:db8::/32`), joined
    -- by one space.
    ADD COLUMN allowed_networks       TEXT,
    -- At most rate_limit_requests requests per rate_limit_period_secs
    -- seconds: both set, or neither.
    ADD COLUMN rate_limit_requests    BIGINT,
    ADD COLUMN rate_limit_period_secs BIGINT,
    -- Set while the token is disabled: when and by whom.
    ADD COLUMN disabled_at            TIMESTAMPTZ,
    ADD COLUMN disabled_by            TEXT,
    ADD CONSTRAINT api_tokens_rate_limit_whole
        CHECK ((rate_limit_requests IS NULL) = (rate_limit_period_secs IS NULL)) NOT VALID;

-- The change feed (0002) follows every column but last_used_at: the new
-- ones too, since verification reads them, and a replica must see a token
-- disabled or narrowed as soon as it sees one revoked. The trigger is made
-- again with them, in this migration's transaction: no write goes unnoted
-- in between. (Made again, it is enabled, whatever it was before.)
DROP TRIGGER api_tokens_noted ON api_tokens;
CREATE TRIGGER api_tokens_noted
    AFTER INSERT OR DELETE
    OR UPDATE OF id, seq, scope_kind, org_id, domain_id, role, label, key_id, digest,
                 created_at, created_by, expires_at, revoked_at, revoked_by,
                 revoke_reason, rotated_from, replaced_by, permissions,
                 allowed_networks, rate_limit_requests, rate_limit_period_secs,
                 disabled_at, disabled_by
    ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION api_tokens_changed('token');
