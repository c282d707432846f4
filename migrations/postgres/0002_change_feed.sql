-- api-tokens, PostgreSQL: the change feed a ReplicatedStore follows.
--
-- Every write that changes what verification reads (a token inserted,
-- deleted, revoked, rotated; a scope revoked) adds a row here and sends a
-- notification, both inside the writer's own transaction: the row becomes
-- visible, and the notification is delivered, only if and when it commits.
-- Writes of last-used times change neither. Triggers do it, so writes
-- from anywhere (a migration, a hand-written UPDATE) are followed too.

CREATE TABLE api_tokens_changes (
    -- The writing transaction. A replica reads the rows whose transaction
    -- committed after the snapshot of its previous read (see
    -- pg_visible_in_snapshot), which finds a transaction that committed
    -- out of order as surely as any other.
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The token changed, or null for a scope revocation.
    token_id    TEXT COLLATE "C",
    -- A scope revocation: organization, domain ('' for all of it), and
    -- the mark's through_seq.
    org_id      TEXT COLLATE "C",
    domain_id   TEXT COLLATE "C",
    through_seq BIGINT
);

CREATE INDEX api_tokens_changes_by_xid ON api_tokens_changes (xid);

-- How far pruning may have deleted: every change row whose xid is below
-- through_xid. It is always the xmin of a snapshot taken at least a
-- retention period earlier (the candidate, promoted once it is that old),
-- so a replica whose last snapshot has a lower xmin, and only such a
-- replica, may have missed a row, and reloads. A long transaction that
-- holds snapshots' xmin back holds the candidates back alike, so it never
-- makes replicas reload.
--
-- epoch grows when a change cannot be told row by row (a TRUNCATE, a scope
-- mark edited by hand): every replica that loaded before reloads.
CREATE TABLE api_tokens_changes_pruned (
    only_row      BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    through_xid   xid8 NOT NULL,
    candidate_xid xid8 NOT NULL,
    candidate_at  TIMESTAMPTZ NOT NULL,
    epoch         BIGINT NOT NULL DEFAULT 0
);
INSERT INTO api_tokens_changes_pruned (through_xid, candidate_xid, candidate_at)
VALUES ('0', pg_snapshot_xmin(pg_current_snapshot()), now());

-- The notification channel is tokens_changed_<oid of the token table>, so
-- two token tables in one database never share one.
CREATE FUNCTION api_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tokens oid;
    changed TEXT;
BEGIN
    IF TG_ARGV[0] = 'scope' THEN
        -- On the marks table, named after the token table.
        tokens := format('%I.%I', TG_TABLE_SCHEMA,
                         left(TG_TABLE_NAME, -length('_scope_revocations')))::regclass::oid;
        INSERT INTO api_tokens_changes (org_id, domain_id, through_seq)
        VALUES (NEW.org_id, NEW.domain_id, NEW.through_seq);
        changed := 'scope ' || NEW.org_id || '/' || NEW.domain_id;
    ELSE
        tokens := TG_RELID;
        IF TG_OP = 'DELETE' THEN
            changed := OLD.id;
        ELSE
            changed := NEW.id;
        END IF;
        IF TG_OP = 'UPDATE' AND OLD.id <> NEW.id THEN
            -- The old id is gone.
            INSERT INTO api_tokens_changes (token_id) VALUES (OLD.id);
            PERFORM pg_notify('tokens_changed_' || tokens, OLD.id);
        END IF;
        INSERT INTO api_tokens_changes (token_id) VALUES (changed);
    END IF;
    PERFORM pg_notify('tokens_changed_' || tokens, changed);
    RETURN NULL;
END
$$;

-- Every column but last_used_at, which the store writes on its own, often.
CREATE TRIGGER api_tokens_noted
    AFTER INSERT OR DELETE
    OR UPDATE OF id, seq, scope_kind, org_id, domain_id, role, label, key_id, digest,
                 created_at, created_by, expires_at, revoked_at, revoked_by,
                 revoke_reason, rotated_from, replaced_by
    ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION api_tokens_changed('token');

CREATE TRIGGER api_tokens_scope_noted
    AFTER INSERT ON api_tokens_scope_revocations
    FOR EACH ROW EXECUTE FUNCTION api_tokens_changed('scope');

-- What no change row can say: every replica reloads.
CREATE FUNCTION api_tokens_reload_replicas() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE api_tokens_changes_pruned SET epoch = epoch + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER api_tokens_truncate_noted
    AFTER TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_reload_replicas();

CREATE TRIGGER api_tokens_scope_edit_noted
    AFTER UPDATE ON api_tokens_scope_revocations
    FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_reload_replicas();
