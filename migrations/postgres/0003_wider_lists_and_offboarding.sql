-- api-tokens, PostgreSQL: indexes for lists wider than one scope and for
-- revoking everything one person created. Each serves one statement, read
-- as one range in the statement's own order, so a page costs the page.
--
-- CREATE INDEX blocks writes to the table while it runs, inside the
-- migration's transaction. On a large table, create these first with
-- CREATE INDEX CONCURRENTLY (same names, same definitions) from your own
-- tool: IF NOT EXISTS then makes this migration a no-op.

-- An organization's list with its domains' tokens, newest first.
CREATE INDEX IF NOT EXISTS api_tokens_by_org_created
    ON api_tokens (org_id, created_at, id);
-- Every token, newest first: operators' jobs.
CREATE INDEX IF NOT EXISTS api_tokens_by_created
    ON api_tokens (created_at, id);
-- Live tokens of an organization and its domains expiring soon.
CREATE INDEX IF NOT EXISTS api_tokens_by_org_expiry
    ON api_tokens (org_id, expires_at, id)
    WHERE revoked_at IS NULL AND replaced_by IS NULL;
-- Live tokens of every scope expiring soon: operators' jobs.
CREATE INDEX IF NOT EXISTS api_tokens_by_live_expiry
    ON api_tokens (expires_at, id)
    WHERE revoked_at IS NULL AND replaced_by IS NULL;
-- Offboarding: the tokens a person created that are not revoked on their
-- own, oldest first. Revoking one drops it from the index, so each step
-- reads what it revokes (and the creator's tokens a scope revocation
-- covers, until they are purged).
CREATE INDEX IF NOT EXISTS api_tokens_by_creator
    ON api_tokens (created_by, seq)
    WHERE revoked_at IS NULL;
