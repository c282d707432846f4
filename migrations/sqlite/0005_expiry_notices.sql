-- api-tokens, SQLite: expiry notices. Which notice a token was last claimed
-- for: about which expiry (microseconds since the Unix epoch, UTC), by a
-- window of how many seconds. Both null until the first notice, so every
-- token issued before is due for one when it enters a window.
--
-- Adding nullable columns rewrites no row; SQLite tests the new check
-- against every existing row once (a read of the table, under the write
-- lock: on a large file, run it at a quiet moment).
--
-- The change feed's trigger (0002, made again in 0004) names the columns
-- it follows, and these are not among them, on purpose: a notice mark is
-- bookkeeping for the background worker; verification never reads it, so
-- replicas need not hear of it. Neither trigger changes here.

ALTER TABLE api_tokens ADD COLUMN notice_expires_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN notice_window_secs INTEGER
    CHECK ((notice_expires_at IS NULL) = (notice_window_secs IS NULL));
