-- api-tokens, PostgreSQL: expiry notices. Which notice a token was last
-- claimed for: about which expiry, by a window of how many seconds. Both
-- null until the first notice, so every token issued before is due for
-- one when it enters a window.
--
-- Nullable columns without a default are added without rewriting the
-- table, and the check is added NOT VALID: every existing row has both
-- columns null (they are new). The table is locked only while its
-- definition changes.
--
-- The change feed's trigger (0002, made again in 0004) names the columns
-- it follows, and these are not among them, on purpose: a notice mark is
-- bookkeeping for the background worker, which reads and writes it in
-- this database; verification never reads it, so replicas need not hear
-- of it, and claiming a thousand notices wakes no replica. The live-count
-- trigger follows revoked_at and the scope only. Neither changes here.

ALTER TABLE api_tokens
    ADD COLUMN notice_expires_at  TIMESTAMPTZ,
    ADD COLUMN notice_window_secs BIGINT,
    ADD CONSTRAINT api_tokens_notice_whole
        CHECK ((notice_expires_at IS NULL) = (notice_window_secs IS NULL)) NOT VALID;
