-- api-tokens, SQLite: the change feed a ReplicatedStore follows.
--
-- Every write that changes what verification reads (a token inserted,
-- deleted, revoked, rotated; a scope revoked) adds a row here, inside the
-- writer's own transaction. SQLite runs one writer at a time, so `pos`
-- grows in commit order: a replica reads the rows after the last it read.
-- Writes of last-used times add none.

CREATE TABLE api_tokens_changes (
    pos         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Microseconds since the Unix epoch.
    changed_at  INTEGER NOT NULL
                DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)),
    -- The token changed, or null for a scope revocation.
    token_id    TEXT,
    -- A scope revocation: organization, domain ('' for all of it), and
    -- the mark's through_seq.
    org_id      TEXT,
    domain_id   TEXT,
    through_seq INTEGER
);

CREATE INDEX api_tokens_changes_by_time ON api_tokens_changes (changed_at);

-- The highest pos deleted by pruning: a replica that read less may have
-- missed a change, and reloads. epoch grows when a change cannot be told
-- row by row (a scope mark edited by hand): every replica reloads.
CREATE TABLE api_tokens_changes_pruned (
    only_row    INTEGER PRIMARY KEY CHECK (only_row = 1),
    through_pos INTEGER NOT NULL,
    epoch       INTEGER NOT NULL DEFAULT 0
);
INSERT INTO api_tokens_changes_pruned (only_row, through_pos) VALUES (1, 0);

CREATE TRIGGER api_tokens_noted_on_insert AFTER INSERT ON api_tokens
BEGIN
    INSERT INTO api_tokens_changes (token_id) VALUES (NEW.id);
END;

CREATE TRIGGER api_tokens_noted_on_delete AFTER DELETE ON api_tokens
BEGIN
    INSERT INTO api_tokens_changes (token_id) VALUES (OLD.id);
END;

-- Every column but last_used_at, which the store writes on its own, often.
CREATE TRIGGER api_tokens_noted_on_update
AFTER UPDATE OF id, seq, scope_kind, org_id, domain_id, role, label, key_id, digest,
                created_at, created_by, expires_at, revoked_at, revoked_by,
                revoke_reason, rotated_from, replaced_by ON api_tokens
BEGIN
    INSERT INTO api_tokens_changes (token_id) VALUES (OLD.id);
    INSERT INTO api_tokens_changes (token_id) SELECT NEW.id WHERE NEW.id <> OLD.id;
END;

CREATE TRIGGER api_tokens_scope_noted AFTER INSERT ON api_tokens_scope_revocations
BEGIN
    INSERT INTO api_tokens_changes (org_id, domain_id, through_seq)
    VALUES (NEW.org_id, NEW.domain_id, NEW.through_seq);
END;

CREATE TRIGGER api_tokens_scope_edit_noted AFTER UPDATE ON api_tokens_scope_revocations
BEGIN
    UPDATE api_tokens_changes_pruned SET epoch = epoch + 1;
END;
