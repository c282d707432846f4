//! What the SQL stores share: every statement, how a record maps to its row
//! and back, and how driver errors map to [`StoreError`]. The two store
//! files keep only what differs: pools, locks, timeouts, the time type.
//!
//! The schema is in `migrations/` (see [`migrations`](super::migrations)):
//! one row per token in the [`TableName`] table, with the public id as
//! text, exactly as tokens show it, and one row per scope revocation in
//! `<table>_scope_revocations`. Times are `timestamptz` on PostgreSQL and
//! microseconds since the Unix epoch on SQLite ([`SqlTime`]).
//!
//! A scope revocation is one row, written in one short statement however
//! many tokens the scope holds: every token of the scope whose `seq`
//! (insertion order) is at most the mark's `through_seq` counts as revoked
//! by it, unless it was revoked before on its own. Every read below joins
//! the earliest mark that covers a row, so a covered token reads back
//! revoked, with the mark's revocation, everywhere: verification, lists,
//! revoke and rotate.
//!
//! A row that does not read back as a valid record (a digest of the wrong
//! length, an unknown role, a creator that is not a valid id, …) is
//! [`StoreError::Corrupt`] naming the token, never trusted: `find` and
//! `find_credential` read it with the same statement and fail alike.

use time::{OffsetDateTime, UtcOffset};

use crate::actor::Role;
use crate::error::{BoxError, StoreError};
use crate::hashing::{Digest, KeyId};
use crate::ids::{ActorId, DomainId, OrganizationId};
use crate::label::Label;
use crate::networks::IpNetwork;
use crate::permissions::PermissionName;
use crate::record::{Disablement, Revocation, TokenRecord};
use crate::restrictions::{RateLimit, Restrictions};
use crate::scope::Scope;
use crate::token::TokenId;

use super::table::TableName;
use super::{
    Cursor, DamagedRecord, ExpiryCursor, Retirement, RevokeOutcome, RotateOutcome, ScopeFilter,
    ScopeRevoked, TokenChange, UpdateOutcome,
};

/// The token's own columns of a record, as [`RecordRow`] reads them.
macro_rules! token_columns {
    () => {
        "t.id, t.scope_kind, t.org_id, t.domain_id, t.role, t.label, \
         t.key_id, t.digest, t.created_at, t.created_by, t.expires_at, t.revoked_at, t.revoked_by, \
         t.revoke_reason, t.last_used_at, t.rotated_from, t.replaced_by, t.permissions, \
         t.allowed_networks, t.rate_limit_requests, t.rate_limit_period_secs, t.disabled_at, \
         t.disabled_by"
    };
}

/// The columns of a record, as [`RecordRow`] reads them: the token's own,
/// and the revocation of the earliest scope mark that covers it.
pub(super) const RECORD_COLUMNS: &str = concat!(
    token_columns!(),
    ", m.revoked_at AS scope_revoked_at, m.revoked_by AS scope_revoked_by, \
     m.revoke_reason AS scope_revoke_reason"
);

/// The columns an insert writes, in [`bind_record`]'s order.
const INSERT_COLUMNS: &str = "id, scope_kind, org_id, domain_id, role, label, key_id, digest, \
     created_at, created_by, expires_at, revoked_at, revoked_by, revoke_reason, last_used_at, \
     rotated_from, replaced_by, permissions, allowed_networks, rate_limit_requests, \
     rate_limit_period_secs, disabled_at, disabled_by";

/// Every statement both stores run, written for one table. Parameters are
/// `$N`, which PostgreSQL reads as numbered and SQLite as named (numbering
/// each at its first appearance), so in every statement they first appear
/// in order. Built once per store: `find` is on the verify path, and a
/// constant text lets each connection reuse its prepared form.
#[derive(Debug)]
pub(super) struct Statements {
    /// Adds a record, its parameters those of [`bind_record`]; a taken id
    /// inserts nothing.
    pub(super) insert: String,
    /// The [`RecordRow`] of id `$1`.
    pub(super) find: String,
    /// The [`RecordRow`] of id `$1` if its scope is exactly `$2`–`$4` (see
    /// [`scope_to_sql`]): why a scoped write missed.
    pub(super) find_at: String,
    /// A page of the scopes a filter reads (its parameters first, see
    /// [`Reads`]), newest first, after the position `(created_at, id)` of
    /// the next two parameters (see [`list_start`]), at most the last
    /// parameter's rows. Each reads one index range, in order (migration
    /// `0003`), so a page costs the page, however large the tenant:
    /// `<table>_by_scope` for one scope, `<table>_by_org_created` for an
    /// organization with its domains, `<table>_by_created` for all.
    pub(super) list: ByReads,
    /// A page of the live records of the scopes a filter reads (its
    /// parameters first) expiring at or after the next parameter and before
    /// the one after, soonest first, after the position `(expires_at, id)`
    /// of the next two, at most the last parameter's rows. Each reads one
    /// range of a partial index of live tokens, in order:
    /// `<table>_by_expiry` for one scope, `<table>_by_org_expiry` for an
    /// organization with its domains, `<table>_by_live_expiry` for all. A
    /// token covered by a scope mark is read and skipped: the cost grows
    /// with those in the window until they are purged.
    pub(super) list_expiring: ByReads,
    /// Revokes id `$4` of scope `$5`–`$7` with `$1`–`$3` (see
    /// [`revocation_to_sql`]) unless it is revoked already, on its own or
    /// by a scope mark. A row of another scope is not touched.
    pub(super) revoke: String,
    /// Marks id `$6` of scope `$7`–`$9` replaced by `$1` if it is live and
    /// not replaced yet: expiring at `$2` (if not null) or revoked with
    /// `$3`–`$5`. A row of another scope is not touched.
    pub(super) retire: String,
    /// Disables id `$3` of scope `$4`–`$6` with `$1`–`$2` (when, by whom)
    /// if it is live (neither revoked, on its own or by a scope mark, nor
    /// replaced) and not disabled: the first disablement is the one kept.
    /// A row of another scope is not touched.
    pub(super) disable: String,
    /// Enables id `$1` of scope `$2`–`$4` if it is live and disabled.
    pub(super) enable: String,
    /// Sets the label of id `$4` of scope `$5`–`$7` to `$1` unless it is
    /// null, and, if `$2` is true, its expiry to `$3` provided it is still
    /// `$8` (null equal to null): if it is live. The expiry is compared in
    /// the `WHERE`, so a failed comparison changes nothing, the label
    /// included.
    pub(super) edit: String,
    /// Locks the row of id `$1` at scope `$2`–`$4` until the transaction
    /// ends: an update that then misses reads back the row it missed, not
    /// one a concurrent update changed in between. (SQLite's write lock,
    /// taken by the update, does the same.)
    #[cfg(feature = "postgres")]
    pub(super) lock_at: String,
    /// Revokes with `$1`–`$3` up to `$5` live tokens created by `$4`,
    /// oldest first, and returns their ids, in one statement: it reads one
    /// range of the partial index `<table>_by_creator` (creator, seq) of
    /// tokens not revoked on their own, checking each against the marks of
    /// its scope, so its cost is `$5` rows plus the creator's tokens covered
    /// by scope marks (read and skipped until purged). On PostgreSQL the
    /// rows are picked `FOR UPDATE` under the `LIMIT`: a row another
    /// transaction revokes meanwhile is skipped once it commits and the
    /// next one taken, so fewer than `$5` rows means none is left. (SQLite
    /// runs one writer at a time.)
    pub(super) revoke_created_by: String,
    /// Marks organization `$1`'s scope `$2` (a domain, or `''` for the
    /// whole organization) revoked with `$3`–`$5`, through the highest
    /// `seq` the organization has; returns the mark's id and `through_seq`.
    /// No row when the organization has no token, or an earlier mark of
    /// the scope or its organization covers them all.
    pub(super) mark_scope: String,
    /// The live counts of organization `$1`'s scope `$2` (a domain, or
    /// `''` for all of the organization's), locked on PostgreSQL until the
    /// transaction ends: what a mark about to be written revokes.
    pub(super) count_live: String,
    /// Sets those counts to zero: the mark covers them now.
    pub(super) zero_live: String,
    /// Up to `$5` of the tokens of organization `$1`, scope `$2`, up to
    /// `seq` `$3`, that the mark `$4` revoked (not revoked before on their
    /// own or by an earlier mark), the most recently issued first.
    pub(super) first_marked: String,
    /// Sets id `$2`'s `last_used_at` to `$1` unless it holds a later time.
    /// (PostgreSQL writes a whole batch with one statement of its own.)
    #[cfg(feature = "sqlite")]
    pub(super) record_use: String,
    /// Deletes up to `$2` tokens revoked on their own before `$1`.
    pub(super) purge_revoked: String,
    /// Deletes up to `$2` tokens that expired before `$1`.
    pub(super) purge_expired: String,
    /// Deletes up to `$2` tokens covered by a scope mark made before `$1`.
    pub(super) purge_marked: String,
    /// Deletes the scope marks made before `$1` that no longer cover a row.
    pub(super) drop_marks: String,
    /// Claims for an expiry notice, in one statement, up to the last
    /// parameter's live tokens of the scopes a filter reads (its
    /// parameters first) expiring at or after the next parameter and
    /// before the one after, not marked for their expiry by a window no
    /// longer than the next one's seconds: marks them so and returns them
    /// as a list does (no mark covers a live token), in no set order. It
    /// reads what [`list_expiring`](Self::list_expiring) reads. On
    /// PostgreSQL the rows are picked `FOR UPDATE SKIP LOCKED`: of two
    /// concurrent claims, each takes rows the other does not hold, and a
    /// row claimed meanwhile is checked again once it commits, so no row is
    /// claimed twice. (SQLite runs one writer at a time.)
    pub(super) claim_notices: ByReads,
    /// Clears the notice mark of id `$1` if it is still about expiry `$2`
    /// by a window of `$3` seconds.
    pub(super) release_notice: String,
}

/// The SQL a backend speaks, where the two differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dialect {
    #[cfg(feature = "postgres")]
    Postgres,
    #[cfg(feature = "sqlite")]
    Sqlite,
}

impl Statements {
    pub(super) fn new(table: &TableName, dialect: Dialect) -> Self {
        let tokens = table.quoted("");
        let marks = table.quoted("_scope_revocations");
        let counts = table.quoted("_scope_counts");
        // SQLite runs one writer at a time; PostgreSQL locks the counts, so
        // a concurrent write waits for the mark and then sees it.
        let lock_counts = match dialect {
            #[cfg(feature = "postgres")]
            Dialect::Postgres => " FOR UPDATE",
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => "",
        };
        let joined = joined(table);
        // Whether a mark covers the row of `table` being updated.
        let covered = format!(
            "EXISTS (SELECT 1 FROM {marks} AS c WHERE c.org_id = {tokens}.org_id \
             AND c.domain_id IN ('', {tokens}.domain_id) AND c.through_seq >= {tokens}.seq)"
        );
        // The tokens a mark (`$1`–`$4` of the statement using it) revoked.
        let marked = format!(
            "FROM {tokens} AS t WHERE t.org_id = $1 AND ($2 = '' OR t.domain_id = $2) \
             AND t.seq <= $3 AND t.revoked_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM {marks} AS c WHERE c.org_id = t.org_id \
             AND c.domain_id IN ('', t.domain_id) AND c.through_seq >= t.seq AND c.id < $4)"
        );
        let revocation = "revoked_at = $1, revoked_by = $2, revoke_reason = $3";
        // Whether a mark covers the row `t`.
        let covered_t = format!(
            "EXISTS (SELECT 1 FROM {marks} AS c WHERE c.org_id = t.org_id \
             AND c.domain_id IN ('', t.domain_id) AND c.through_seq >= t.seq)"
        );
        let list = |reads: ReadsKind| {
            let (condition, n) = reads.condition();
            format!(
                "SELECT {RECORD_COLUMNS} FROM {joined} \
                 WHERE {condition}(t.created_at, t.id) < (${}, ${}) \
                 ORDER BY t.created_at DESC, t.id DESC LIMIT ${}",
                n + 1,
                n + 2,
                n + 3
            )
        };
        // The columns of a record no mark covers: no join to look for one.
        let null_time = match dialect {
            #[cfg(feature = "postgres")]
            Dialect::Postgres => "TIMESTAMPTZ",
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => "INTEGER",
        };
        let unmarked_columns = format!(
            "{}, CAST(NULL AS {null_time}) AS scope_revoked_at, \
             CAST(NULL AS TEXT) AS scope_revoked_by, CAST(NULL AS TEXT) AS scope_revoke_reason",
            token_columns!()
        );
        // Only live tokens no mark covers are listed, so they are read
        // without the join to the marks: with it, SQLite sorted the whole
        // window instead of reading the index in order.
        let list_expiring = |reads: ReadsKind| {
            let (condition, n) = reads.condition();
            format!(
                "SELECT {unmarked_columns} FROM {tokens} AS t \
                 WHERE {condition}t.revoked_at IS NULL AND t.replaced_by IS NULL \
                 AND NOT {covered_t} \
                 AND t.expires_at >= ${} AND t.expires_at < ${} \
                 AND (t.expires_at, t.id) > (${}, ${}) \
                 ORDER BY t.expires_at, t.id LIMIT ${}",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5
            )
        };
        // Claims the due rows for a notice: picks them in the order of
        // an expiring list, marks them, returns them.
        let claim_notices = |reads: ReadsKind| {
            let (condition, n) = reads.condition();
            let (start, end, secs, limit) = (n + 1, n + 2, n + 3, n + 4);
            let due = format!(
                "{condition}t.revoked_at IS NULL AND t.replaced_by IS NULL AND NOT {covered_t} \
                 AND t.expires_at >= ${start} AND t.expires_at < ${end} \
                 AND (t.notice_expires_at IS NULL OR t.notice_expires_at <> t.expires_at \
                 OR t.notice_window_secs > ${secs}) \
                 ORDER BY t.expires_at, t.id LIMIT ${limit}"
            );
            let mark = format!("notice_expires_at = expires_at, notice_window_secs = ${secs}");
            match dialect {
                #[cfg(feature = "postgres")]
                Dialect::Postgres => format!(
                    "WITH picked AS (SELECT t.id FROM {tokens} AS t WHERE {due} \
                     FOR UPDATE OF t SKIP LOCKED) \
                     UPDATE {tokens} AS t SET {mark} FROM picked WHERE t.id = picked.id \
                     RETURNING {unmarked_columns}"
                ),
                // SQLite's RETURNING names the table's columns unqualified.
                #[cfg(feature = "sqlite")]
                Dialect::Sqlite => format!(
                    "WITH picked AS (SELECT t.id FROM {tokens} AS t WHERE {due}) \
                     UPDATE {tokens} SET {mark} WHERE id IN (SELECT id FROM picked) \
                     RETURNING {}",
                    unmarked_columns.replace("t.", "")
                ),
            }
        };
        // The row being updated is live: neither revoked (on its own or by
        // a scope mark) nor replaced. What `update` may change.
        let live = format!("revoked_at IS NULL AND replaced_by IS NULL AND NOT {covered}");
        // The scope columns of the row being updated equal `$a`–`$c`.
        let at_scope = |a: usize| {
            format!(
                "org_id = ${a} AND scope_kind = ${} AND domain_id = ${}",
                a + 1,
                a + 2
            )
        };
        Statements {
            insert: format!(
                "INSERT INTO {tokens} ({INSERT_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                 $18, $19, $20, $21, $22, $23) \
                 ON CONFLICT (id) DO NOTHING"
            ),
            find: format!("SELECT {RECORD_COLUMNS} FROM {joined} WHERE t.id = $1"),
            find_at: format!(
                "SELECT {RECORD_COLUMNS} FROM {joined} WHERE t.id = $1 \
                 AND t.org_id = $2 AND t.scope_kind = $3 AND t.domain_id = $4"
            ),
            list: ByReads {
                exactly: list(ReadsKind::Exactly),
                org: list(ReadsKind::Org),
                all: list(ReadsKind::All),
            },
            list_expiring: ByReads {
                exactly: list_expiring(ReadsKind::Exactly),
                org: list_expiring(ReadsKind::Org),
                all: list_expiring(ReadsKind::All),
            },
            revoke: format!(
                "UPDATE {tokens} SET {revocation} \
                 WHERE id = $4 AND {} AND revoked_at IS NULL AND NOT {covered}",
                at_scope(5)
            ),
            retire: format!(
                "UPDATE {tokens} SET replaced_by = $1, expires_at = COALESCE($2, expires_at), \
                 revoked_at = $3, revoked_by = $4, revoke_reason = $5 \
                 WHERE id = $6 AND {} \
                 AND revoked_at IS NULL AND replaced_by IS NULL AND NOT {covered}",
                at_scope(7)
            ),
            disable: format!(
                "UPDATE {tokens} SET disabled_at = $1, disabled_by = $2 \
                 WHERE id = $3 AND {} AND {live} AND disabled_at IS NULL",
                at_scope(4)
            ),
            enable: format!(
                "UPDATE {tokens} SET disabled_at = NULL, disabled_by = NULL \
                 WHERE id = $1 AND {} AND {live} AND disabled_at IS NOT NULL",
                at_scope(2)
            ),
            edit: format!(
                "UPDATE {tokens} SET label = COALESCE($1, label), \
                 expires_at = CASE WHEN $2 THEN $3 ELSE expires_at END \
                 WHERE id = $4 AND {} AND {live} \
                 AND (NOT $2 OR expires_at IS NOT DISTINCT FROM $8)",
                at_scope(5)
            ),
            #[cfg(feature = "postgres")]
            lock_at: format!(
                "SELECT 1 FROM {tokens} WHERE id = $1 AND {} FOR UPDATE",
                at_scope(2)
            ),
            revoke_created_by: match dialect {
                #[cfg(feature = "postgres")]
                Dialect::Postgres => format!(
                    "WITH picked AS (SELECT t.id FROM {tokens} AS t \
                     WHERE t.created_by = $4 AND t.revoked_at IS NULL AND NOT {covered_t} \
                     ORDER BY t.seq LIMIT $5 FOR UPDATE OF t) \
                     UPDATE {tokens} AS u SET {revocation} FROM picked \
                     WHERE u.id = picked.id RETURNING u.id"
                ),
                #[cfg(feature = "sqlite")]
                Dialect::Sqlite => format!(
                    "UPDATE {tokens} SET {revocation} WHERE id IN (SELECT t.id FROM {tokens} AS t \
                     WHERE t.created_by = $4 AND t.revoked_at IS NULL AND NOT {covered_t} \
                     ORDER BY t.seq LIMIT $5) RETURNING id"
                ),
            },
            // No mark when one of this scope or its organization already
            // covers every row: repeating a revocation adds nothing for
            // every later read to look through.
            mark_scope: format!(
                "INSERT INTO {marks} \
                 (org_id, domain_id, through_seq, revoked_at, revoked_by, revoke_reason) \
                 SELECT $1, $2, top.seq, $3, $4, $5 \
                 FROM (SELECT max(seq) AS seq FROM {tokens} WHERE org_id = $1) AS top \
                 WHERE top.seq IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {marks} AS c \
                 WHERE c.org_id = $1 AND c.domain_id IN ('', $2) AND c.through_seq >= top.seq) \
                 RETURNING id, through_seq"
            ),
            count_live: format!(
                "SELECT live FROM {counts} WHERE org_id = $1 AND ($2 = '' OR domain_id = $2)\
                 {lock_counts}"
            ),
            zero_live: format!(
                "UPDATE {counts} SET live = 0 \
                 WHERE org_id = $1 AND ($2 = '' OR domain_id = $2) AND live <> 0"
            ),
            first_marked: format!("SELECT t.id {marked} ORDER BY t.seq DESC LIMIT $5"),
            #[cfg(feature = "sqlite")]
            record_use: format!(
                "UPDATE {tokens} SET last_used_at = $1 \
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)"
            ),
            purge_revoked: format!(
                "DELETE FROM {tokens} WHERE id IN \
                 (SELECT id FROM {tokens} WHERE revoked_at < $1 LIMIT $2)"
            ),
            purge_expired: format!(
                "DELETE FROM {tokens} WHERE id IN \
                 (SELECT id FROM {tokens} WHERE expires_at < $1 LIMIT $2)"
            ),
            purge_marked: format!(
                "DELETE FROM {tokens} WHERE id IN (SELECT t.id FROM {marks} AS c \
                 JOIN {tokens} AS t ON t.org_id = c.org_id \
                 AND (c.domain_id = '' OR t.domain_id = c.domain_id) AND t.seq <= c.through_seq \
                 WHERE c.revoked_at < $1 LIMIT $2)"
            ),
            drop_marks: format!(
                "DELETE FROM {marks} WHERE revoked_at < $1 AND NOT EXISTS \
                 (SELECT 1 FROM {tokens} AS t WHERE t.org_id = {marks}.org_id \
                 AND ({marks}.domain_id = '' OR t.domain_id = {marks}.domain_id) \
                 AND t.seq <= {marks}.through_seq)"
            ),
            claim_notices: ByReads {
                exactly: claim_notices(ReadsKind::Exactly),
                org: claim_notices(ReadsKind::Org),
                all: claim_notices(ReadsKind::All),
            },
            release_notice: format!(
                "UPDATE {tokens} SET notice_expires_at = NULL, notice_window_secs = NULL \
                 WHERE id = $1 AND notice_expires_at = $2 AND notice_window_secs = $3"
            ),
        }
    }
}

/// A statement in one form for each way a [`ScopeFilter`] reads.
#[derive(Debug)]
pub(super) struct ByReads {
    exactly: String,
    org: String,
    all: String,
}

impl ByReads {
    /// The form for `reads`.
    pub(super) fn get(&self, reads: &Reads<'_>) -> &str {
        match reads {
            Reads::Exactly(_) => &self.exactly,
            Reads::Org(_) => &self.org,
            Reads::All => &self.all,
        }
    }
}

/// What a [`ScopeFilter`] reads, in the terms of the schema: one scope's
/// rows, one organization's (its own and its domains', which share its
/// `org_id`), or every row.
#[derive(Clone, Copy, Debug)]
pub(super) enum Reads<'a> {
    Exactly(&'a Scope),
    Org(&'a OrganizationId),
    All,
}

impl<'a> Reads<'a> {
    pub(super) fn of(filter: &'a ScopeFilter) -> Self {
        match filter {
            ScopeFilter::Exactly(scope) | ScopeFilter::Covered(scope @ Scope::Domain { .. }) => {
                Reads::Exactly(scope)
            }
            ScopeFilter::Covered(Scope::Organization { org }) => Reads::Org(org),
            ScopeFilter::All => Reads::All,
        }
    }
}

/// The shape of a [`Reads`], for writing its statements.
#[derive(Clone, Copy)]
enum ReadsKind {
    Exactly,
    Org,
    All,
}

impl ReadsKind {
    /// The condition on `t` (ending in `AND`, or empty) that the rows read
    /// meet, and how many parameters it takes (`$1` on).
    fn condition(self) -> (&'static str, usize) {
        match self {
            ReadsKind::Exactly => (
                "t.org_id = $1 AND t.scope_kind = $2 AND t.domain_id = $3 AND ",
                3,
            ),
            ReadsKind::Org => ("t.org_id = $1 AND ", 1),
            ReadsKind::All => ("", 0),
        }
    }
}

/// The token table as `t`, each row with the earliest mark that covers it,
/// if any, as `m`. A mark of the whole organization has domain `''` and
/// covers every row of it; a domain's mark covers that domain's rows.
pub(super) fn joined(table: &TableName) -> String {
    let tokens = table.quoted("");
    let marks = table.quoted("_scope_revocations");
    format!(
        "{tokens} AS t LEFT JOIN {marks} AS m ON m.id = (\
         SELECT c.id FROM {marks} AS c WHERE c.org_id = t.org_id \
         AND c.domain_id IN ('', t.domain_id) AND c.through_seq >= t.seq \
         ORDER BY c.id LIMIT 1)"
    )
}

/// How a backend keeps times: PostgreSQL as `timestamptz`, SQLite as
/// microseconds since the Unix epoch. Either holds exactly what a record
/// does (UTC, whole microseconds, within ±9999 years).
pub(super) trait SqlTime: Sized + Copy {
    fn to_sql(at: OffsetDateTime) -> Self;
    fn into_time(self) -> Result<OffsetDateTime, BoxError>;
}

impl SqlTime for i64 {
    fn to_sql(at: OffsetDateTime) -> Self {
        (at.unix_timestamp_nanos() / 1000) as i64
    }

    fn into_time(self) -> Result<OffsetDateTime, BoxError> {
        Ok(OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(self) * 1000,
        )?)
    }
}

impl SqlTime for OffsetDateTime {
    fn to_sql(at: OffsetDateTime) -> Self {
        at
    }

    fn into_time(self) -> Result<OffsetDateTime, BoxError> {
        Ok(self
            .checked_to_offset(UtcOffset::UTC)
            .ok_or("a time past the year 9999")?)
    }
}

/// The values a revocation writes: `revoked_at`, `revoked_by`,
/// `revoke_reason`.
pub(super) fn revocation_to_sql<T: SqlTime>(revocation: &Revocation) -> (T, &str, Option<&str>) {
    (
        T::to_sql(revocation.at),
        revocation.by.as_str(),
        revocation.reason.as_ref().map(Label::as_str),
    )
}

/// Parameters `$2`–`$5` of [`Statements::retire`]: a new `expires_at`, or
/// the revocation's three columns.
pub(super) struct RetirementParams<'a, T> {
    pub(super) expires_at: Option<T>,
    pub(super) revoked_at: Option<T>,
    pub(super) revoked_by: Option<&'a str>,
    pub(super) revoke_reason: Option<&'a str>,
}

pub(super) fn retirement_to_sql<T: SqlTime>(retire: &Retirement) -> RetirementParams<'_, T> {
    match retire {
        Retirement::ExpiresAt(at) => RetirementParams {
            expires_at: Some(T::to_sql(*at)),
            revoked_at: None,
            revoked_by: None,
            revoke_reason: None,
        },
        Retirement::Revoked(revocation) => {
            let (at, by, reason) = revocation_to_sql(revocation);
            RetirementParams {
                expires_at: None,
                revoked_at: Some(at),
                revoked_by: Some(by),
                revoke_reason: reason,
            }
        }
    }
}

/// The position a list page starts after: the cursor's, or without one a
/// position after every record (the year 9999, and an id above any).
pub(super) fn list_start<T: SqlTime>(after: Option<Cursor>) -> (T, String) {
    match after {
        Some(cursor) => (T::to_sql(cursor.created_at), id_to_sql(cursor.id)),
        None => (T::to_sql(LAST_INSTANT), "~".into()),
    }
}

/// The position an expiring page starts after: the cursor's, or without
/// one a position before every record in the window.
pub(super) fn expiring_start<T: SqlTime>(
    window_start: OffsetDateTime,
    after: Option<ExpiryCursor>,
) -> (T, String) {
    match after {
        Some(cursor) => (T::to_sql(cursor.expires_at), id_to_sql(cursor.id)),
        None => (T::to_sql(window_start), String::new()),
    }
}

/// The last microsecond a record can hold.
const LAST_INSTANT: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59.999999 UTC);

/// A row limit as SQL reads it (`usize` beyond `i64` means no limit).
pub(super) fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// What a [`Statements::revoke`] that changed no row meant, given the
/// record as read after it at the same scope ([`Statements::find_at`]):
/// revoked before (on its own or by its scope), or absent there. A
/// revocation is never undone and a row never changes scope, so what is
/// read then is what made the update miss.
pub(super) fn revoke_missed(found: Option<TokenRecord>) -> Result<RevokeOutcome, StoreError> {
    match found {
        Some(TokenRecord {
            revoked: Some(earlier),
            ..
        }) => Ok(RevokeOutcome::AlreadyRevoked(earlier)),
        Some(_) => Err(StoreError::Other {
            source: "a live record was not revoked".into(),
        }),
        None => Ok(RevokeOutcome::NotFound),
    }
}

/// Why a [`Statements::retire`] changed no row, given the old record as
/// read after it at the same scope ([`Statements::find_at`]).
pub(super) fn rotation_refused(found: Option<TokenRecord>) -> RotateOutcome {
    match found {
        None => RotateOutcome::NotFound,
        Some(record) => match record.replaced_by {
            Some(by) => RotateOutcome::AlreadyReplaced(by),
            None => RotateOutcome::Revoked,
        },
    }
}

/// A token id as stored: its 11 characters, as tokens and lists show it.
pub(super) fn id_to_sql(id: TokenId) -> String {
    id.to_string()
}

/// A stored id, or `Corrupt` for text that is no id.
pub(super) fn id_from_sql(stored: &str) -> Result<TokenId, StoreError> {
    stored.parse().map_err(|error| StoreError::Corrupt {
        id: None,
        scope: None,
        source: format!("the id {stored:?} is not a token id: {error}").into(),
    })
}

/// The scope as stored: kind, organization, domain (`''` for none).
pub(super) fn scope_to_sql(scope: &Scope) -> (&'static str, &str, &str) {
    match scope {
        Scope::Organization { org } => ("organization", org.as_str(), ""),
        Scope::Domain { org, domain } => ("domain", org.as_str(), domain.as_str()),
    }
}

pub(super) fn role_to_sql(role: Role) -> &'static str {
    match role {
        Role::Viewer => "viewer",
        Role::Editor => "editor",
        Role::Admin => "admin",
        Role::Owner => "owner",
    }
}

pub(super) fn role_from_sql(role: &str) -> Result<Role, BoxError> {
    Ok(match role {
        "viewer" => Role::Viewer,
        "editor" => Role::Editor,
        "admin" => Role::Admin,
        "owner" => Role::Owner,
        other => return Err(format!("unknown role {other:?}").into()),
    })
}

/// A list as stored: its items' text forms joined by one space (no item's
/// text holds one: permission names and CIDR text never do), `''` for an
/// empty list.
fn list_to_sql<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    let mut text = String::new();
    for (n, item) in items.enumerate() {
        if n > 0 {
            text.push(' ');
        }
        text.push_str(item.as_ref());
    }
    text
}

/// A stored list, each item read by `parse`, in the stored order; `''` is
/// an empty list. An item that does not parse (two spaces in a row leave an
/// empty one) makes the row damaged, naming it.
fn list_from_sql<I, E: std::fmt::Display>(
    text: &str,
    what: &str,
    parse: impl Fn(&str) -> Result<I, E>,
) -> Result<Vec<I>, BoxError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(' ')
        .map(|item| parse(item).map_err(|error| format!("the {what} {item:?}: {error}").into()))
        .collect()
}

/// A period in whole seconds, as stored (a [`RateLimit`]'s is at most a
/// day).
fn secs_to_sql(period: std::time::Duration) -> i64 {
    i64::try_from(period.as_secs()).unwrap_or(i64::MAX)
}

/// The restrictions of a row: its permission names, its client networks
/// and its rate limit (both columns or neither), each as `RecordParams`
/// writes it.
fn restrictions_from_sql(
    permissions: Option<&str>,
    networks: Option<&str>,
    requests: Option<i64>,
    period_secs: Option<i64>,
) -> Result<Restrictions, BoxError> {
    let rate_limit = match (requests, period_secs) {
        (None, None) => None,
        (Some(requests), Some(period_secs)) => {
            let limit = u32::try_from(requests)
                .ok()
                .zip(u64::try_from(period_secs).ok());
            let limit = limit.and_then(|(requests, secs)| {
                RateLimit::new(requests, std::time::Duration::from_secs(secs)).ok()
            });
            Some(limit.ok_or_else(|| {
                format!("a rate limit of {requests} requests per {period_secs} s")
            })?)
        }
        _ => return Err("a rate limit without its requests or its period".into()),
    };
    Ok(Restrictions {
        permissions: permissions
            .map(|text| list_from_sql(text, "permission", PermissionName::new))
            .transpose()?,
        allowed_networks: networks
            .map(|text| list_from_sql(text, "network", str::parse::<IpNetwork>))
            .transpose()?,
        rate_limit,
    })
}

/// Why an update ([`Statements::disable`], [`enable`](Statements::enable)
/// or [`edit`](Statements::edit)) changed no row, given the record as read
/// after it at the same scope ([`Statements::find_at`]), in the same
/// transaction and with the row still as the update saw it (SQLite's write
/// lock, or PostgreSQL's lock on the row, `Statements::lock_at`):
/// absent there, revoked, replaced, already in the state asked for, or an
/// expiry that moved.
pub(super) fn update_missed(
    found: Option<TokenRecord>,
    change: &TokenChange,
) -> Result<UpdateOutcome, StoreError> {
    let Some(record) = found else {
        return Ok(UpdateOutcome::NotFound);
    };
    if record.revoked.is_some() {
        return Ok(UpdateOutcome::Revoked);
    }
    if let Some(successor) = record.replaced_by {
        return Ok(UpdateOutcome::Replaced(successor));
    }
    match change {
        TokenChange::Disable(_) if record.disabled.is_some() => Ok(UpdateOutcome::Unchanged),
        TokenChange::Enable if record.disabled.is_none() => Ok(UpdateOutcome::Unchanged),
        TokenChange::Edit {
            expiry: Some(expiry),
            ..
        } if record.expires_at != expiry.from => Ok(UpdateOutcome::ExpiryMoved(record.expires_at)),
        _ => Err(StoreError::Other {
            source: "a live record the change applies to was not updated".into(),
        }),
    }
}

/// One row with its covering mark, as the driver reads it; `T` is the
/// backend's time type.
#[derive(sqlx::FromRow)]
pub(super) struct RecordRow<T> {
    id: String,
    scope_kind: String,
    org_id: String,
    domain_id: String,
    role: String,
    label: String,
    key_id: i64,
    digest: Vec<u8>,
    created_at: T,
    created_by: String,
    expires_at: Option<T>,
    revoked_at: Option<T>,
    revoked_by: Option<String>,
    revoke_reason: Option<String>,
    last_used_at: Option<T>,
    rotated_from: Option<String>,
    replaced_by: Option<String>,
    permissions: Option<String>,
    allowed_networks: Option<String>,
    rate_limit_requests: Option<i64>,
    rate_limit_period_secs: Option<i64>,
    disabled_at: Option<T>,
    disabled_by: Option<String>,
    scope_revoked_at: Option<T>,
    scope_revoked_by: Option<String>,
    scope_revoke_reason: Option<String>,
}

impl<T: SqlTime + Copy> RecordRow<T> {
    /// The record, or `Corrupt` naming the token and what is wrong.
    pub(super) fn into_record(self) -> Result<TokenRecord, StoreError> {
        let id = id_from_sql(&self.id)?;
        let scope = self.scope().ok();
        self.decode(id).map_err(|source| StoreError::Corrupt {
            id: Some(id),
            scope,
            source,
        })
    }

    /// The record, or a damaged row reported with whatever of its id and
    /// list position could be read: what a list returns for it.
    pub(super) fn into_listed(self) -> Result<TokenRecord, DamagedRecord> {
        let id = self.id.parse::<TokenId>().ok();
        let created_at = self.created_at.into_time().ok();
        let expires_at = self.expires_at.and_then(|at| at.into_time().ok());
        let decoded = match id {
            Some(id) => self.decode(id),
            None => Err(format!("the id {:?} is not a token id", self.id).into()),
        };
        decoded.map_err(|source| DamagedRecord {
            id,
            created_at,
            expires_at,
            source,
        })
    }

    /// The row's scope, read on its own: a row damaged elsewhere can still
    /// be revoked by an admin of its scope.
    fn scope(&self) -> Result<Scope, BoxError> {
        scope_from_sql(&self.scope_kind, &self.org_id, &self.domain_id)
    }

    fn decode(self, id: TokenId) -> Result<TokenRecord, BoxError> {
        let scope = self.scope()?;
        let digest: [u8; 32] = self
            .digest
            .as_slice()
            .try_into()
            .map_err(|_| format!("a digest of {} bytes, not 32", self.digest.len()))?;
        let time = |at: Option<T>| at.map(T::into_time).transpose();
        let linked = |link: Option<String>| {
            link.map(|text| {
                text.parse::<TokenId>()
                    .map_err(|_| format!("the link {text:?} is no token id"))
            })
            .transpose()
        };
        let revocation = |at: Option<T>, by: Option<String>, reason: Option<String>| match (at, by)
        {
            (None, None) => Ok(None),
            (Some(at), Some(by)) => Ok::<_, BoxError>(Some(Revocation {
                at: at.into_time()?,
                by: ActorId::new(&by)?,
                reason: reason.as_deref().map(Label::stored).transpose()?,
            })),
            _ => Err("a revocation without its time or its revoker".into()),
        };
        // A token revoked on its own was revoked before any mark covered it
        // (a covered token cannot be revoked again).
        let own = revocation(self.revoked_at, self.revoked_by, self.revoke_reason)?;
        let by_scope = revocation(
            self.scope_revoked_at,
            self.scope_revoked_by,
            self.scope_revoke_reason,
        )?;
        let restrictions = restrictions_from_sql(
            self.permissions.as_deref(),
            self.allowed_networks.as_deref(),
            self.rate_limit_requests,
            self.rate_limit_period_secs,
        )?;
        let disabled = match (self.disabled_at, self.disabled_by) {
            (None, None) => None,
            (Some(at), Some(by)) => Some(Disablement {
                at: at.into_time()?,
                by: ActorId::new(&by)?,
            }),
            _ => return Err("a disablement without its time or who made it".into()),
        };
        Ok(TokenRecord {
            id,
            scope,
            role: role_from_sql(&self.role)?,
            label: Label::stored(&self.label)?,
            key_id: KeyId::new(u32::try_from(self.key_id)?),
            digest: Digest::from_bytes(digest),
            created_at: self.created_at.into_time()?,
            created_by: ActorId::new(&self.created_by)?,
            expires_at: time(self.expires_at)?,
            revoked: own.or(by_scope),
            last_used_at: time(self.last_used_at)?,
            rotated_from: linked(self.rotated_from)?,
            replaced_by: linked(self.replaced_by)?,
            restrictions,
            disabled,
        })
    }
}

/// A scope as stored: kind, organization, domain (`''` for none).
pub(super) fn scope_from_sql(kind: &str, org: &str, domain: &str) -> Result<Scope, BoxError> {
    let org = OrganizationId::new(org)?;
    Ok(match (kind, domain) {
        ("organization", "") => Scope::organization(org),
        ("domain", domain) => Scope::domain(org, DomainId::new(domain)?),
        (kind, _) => return Err(format!("unknown scope kind {kind:?}").into()),
    })
}

/// What a database error code means to a caller.
pub(super) enum Class {
    /// Try again later: no connection, overloaded, busy, shutting down.
    Outage,
    /// The data on disk is damaged or not a database.
    Corrupt,
    /// Anything else.
    Other,
}

/// A driver error as a [`StoreError`]: outages (no connection, pool
/// exhausted, and the database codes `classify` calls outages) are
/// `Unavailable`; a TLS failure is `Tls`; damaged data (codes `classify`
/// calls corrupt, values that do not decode) is `Corrupt`, naming `id` when
/// the query was about one token; anything else (a schema that lacks a
/// column, say) is `Other`. The driver's error is kept as the source.
pub(super) fn store_error(
    error: sqlx::Error,
    id: Option<TokenId>,
    classify: fn(&str) -> Class,
) -> StoreError {
    use sqlx::Error::*;
    if is_tls_failure(&error) {
        return StoreError::Tls {
            source: Box::new(error),
        };
    }
    let class = match &error {
        Io(_) | Protocol(_) | PoolTimedOut | PoolClosed | WorkerCrashed => Class::Outage,
        Database(database) => database.code().map_or(Class::Other, |code| classify(&code)),
        ColumnDecode { .. } | Decode(_) => Class::Corrupt,
        _ => Class::Other,
    };
    let source = Box::new(error);
    match class {
        Class::Outage => StoreError::Unavailable { source },
        Class::Corrupt => StoreError::Corrupt {
            id,
            scope: None,
            source,
        },
        Class::Other => StoreError::Other { source },
    }
}

/// Whether `error` is a TLS failure: reported by sqlx as one, or (with
/// rustls, which reports through the connection's I/O) a rustls error
/// inside an I/O error.
fn is_tls_failure(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Tls(_) => true,
        #[cfg(feature = "postgres-tls")]
        sqlx::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    }
}

/// The values of a record's row, in [`INSERT_COLUMNS`] order.
pub(super) struct RecordParams<T> {
    pub(super) id: String,
    pub(super) scope_kind: &'static str,
    pub(super) org_id: String,
    pub(super) domain_id: String,
    pub(super) role: &'static str,
    pub(super) label: String,
    pub(super) key_id: i64,
    pub(super) digest: Vec<u8>,
    pub(super) created_at: T,
    pub(super) created_by: String,
    pub(super) expires_at: Option<T>,
    pub(super) revoked_at: Option<T>,
    pub(super) revoked_by: Option<String>,
    pub(super) revoke_reason: Option<String>,
    pub(super) last_used_at: Option<T>,
    pub(super) rotated_from: Option<String>,
    pub(super) replaced_by: Option<String>,
    pub(super) permissions: Option<String>,
    pub(super) allowed_networks: Option<String>,
    pub(super) rate_limit_requests: Option<i64>,
    pub(super) rate_limit_period_secs: Option<i64>,
    pub(super) disabled_at: Option<T>,
    pub(super) disabled_by: Option<String>,
}

impl<T: SqlTime> RecordParams<T> {
    pub(super) fn of(record: &TokenRecord) -> Self {
        let (scope_kind, org_id, domain_id) = scope_to_sql(&record.scope);
        let revoked = record.revoked.as_ref();
        let restrictions = &record.restrictions;
        let rate_limit = restrictions.rate_limit.as_ref();
        let disabled = record.disabled.as_ref();
        RecordParams {
            id: id_to_sql(record.id),
            scope_kind,
            org_id: org_id.to_owned(),
            domain_id: domain_id.to_owned(),
            role: role_to_sql(record.role),
            label: record.label.as_str().to_owned(),
            key_id: i64::from(record.key_id.get()),
            digest: record.digest.as_bytes().to_vec(),
            created_at: T::to_sql(record.created_at),
            created_by: record.created_by.as_str().to_owned(),
            expires_at: record.expires_at.map(T::to_sql),
            revoked_at: revoked.map(|revocation| T::to_sql(revocation.at)),
            revoked_by: revoked.map(|revocation| revocation.by.as_str().to_owned()),
            revoke_reason: revoked
                .and_then(|revocation| revocation.reason.as_ref())
                .map(|reason| reason.as_str().to_owned()),
            last_used_at: record.last_used_at.map(T::to_sql),
            rotated_from: record.rotated_from.map(id_to_sql),
            replaced_by: record.replaced_by.map(id_to_sql),
            permissions: restrictions
                .permissions
                .as_deref()
                .map(|names| list_to_sql(names.iter().map(PermissionName::as_str))),
            allowed_networks: restrictions
                .allowed_networks
                .as_deref()
                .map(|networks| list_to_sql(networks.iter().map(|network| network.to_string()))),
            rate_limit_requests: rate_limit.map(|limit| i64::from(limit.requests())),
            rate_limit_period_secs: rate_limit.map(|limit| secs_to_sql(limit.period())),
            disabled_at: disabled.map(|disablement| T::to_sql(disablement.at)),
            disabled_by: disabled.map(|disablement| disablement.by.as_str().to_owned()),
        }
    }
}

/// Binds a [`RecordParams`] to [`Statements::insert`]. (A macro: the two
/// drivers' query types share no trait that would let a function do it
/// without a wall of bounds.)
macro_rules! bind_record {
    ($query:expr, $params:expr) => {{
        let params = $params;
        $query
            .bind(params.id)
            .bind(params.scope_kind)
            .bind(params.org_id)
            .bind(params.domain_id)
            .bind(params.role)
            .bind(params.label)
            .bind(params.key_id)
            .bind(params.digest)
            .bind(params.created_at)
            .bind(params.created_by)
            .bind(params.expires_at)
            .bind(params.revoked_at)
            .bind(params.revoked_by)
            .bind(params.revoke_reason)
            .bind(params.last_used_at)
            .bind(params.rotated_from)
            .bind(params.replaced_by)
            .bind(params.permissions)
            .bind(params.allowed_networks)
            .bind(params.rate_limit_requests)
            .bind(params.rate_limit_period_secs)
            .bind(params.disabled_at)
            .bind(params.disabled_by)
    }};
}

pub(super) use bind_record;

// The other statements' parameters, each bound in one place. `$time` is the
// backend's time type ([`SqlTime`]).

/// Binds what a [`Reads`] reads: the parameters of its condition.
macro_rules! bind_reads {
    ($query:expr, $reads:expr) => {{
        let query = $query;
        match $reads {
            $crate::store::sql::Reads::Exactly(scope) => {
                let (kind, org, domain) = $crate::store::sql::scope_to_sql(scope);
                query.bind(org).bind(kind).bind(domain)
            }
            $crate::store::sql::Reads::Org(org) => query.bind(org.as_str()),
            $crate::store::sql::Reads::All => query,
        }
    }};
}

/// Binds [`Statements::list`] in the form for `$reads`: what it reads, the
/// page's start, the limit.
macro_rules! bind_list {
    ($query:expr, $time:ty, $reads:expr, $after:expr, $limit:expr) => {{
        let (created_at, id) = $crate::store::sql::list_start::<$time>($after);
        $crate::store::sql::bind_reads!($query, $reads)
            .bind(created_at)
            .bind(id)
            .bind($crate::store::sql::limit_to_sql($limit))
    }};
}

/// Binds [`Statements::list_expiring`] in the form for `$reads`: what it
/// reads, the window, the page's start, the limit.
macro_rules! bind_list_expiring {
    ($query:expr, $time:ty, $reads:expr, $window:expr, $after:expr, $limit:expr) => {{
        let window = $window;
        let (from, id) = $crate::store::sql::expiring_start::<$time>(window.start, $after);
        $crate::store::sql::bind_reads!($query, $reads)
            .bind(<$time as $crate::store::sql::SqlTime>::to_sql(window.start))
            .bind(<$time as $crate::store::sql::SqlTime>::to_sql(window.end))
            .bind(from)
            .bind(id)
            .bind($crate::store::sql::limit_to_sql($limit))
    }};
}

/// Binds [`Statements::claim_notices`] in the form for `$reads`: what it
/// reads, the window, its length, the limit.
macro_rules! bind_claim_notices {
    ($query:expr, $time:ty, $reads:expr, $window:expr, $limit:expr) => {{
        let window: $crate::store::NoticeWindow = $window;
        $crate::store::sql::bind_reads!($query, $reads)
            .bind(<$time as $crate::store::sql::SqlTime>::to_sql(window.start))
            .bind(<$time as $crate::store::sql::SqlTime>::to_sql(window.end))
            .bind(i64::from(window.length_secs))
            .bind($crate::store::sql::limit_to_sql($limit))
    }};
}

/// Binds [`Statements::release_notice`]: the id, the expiry, the window's
/// length.
macro_rules! bind_release_notice {
    ($query:expr, $time:ty, $length_secs:expr, $claimed:expr) => {{
        let claimed: &$crate::ExpiryCursor = $claimed;
        $query
            .bind($crate::store::sql::id_to_sql(claimed.id))
            .bind(<$time as $crate::store::sql::SqlTime>::to_sql(
                claimed.expires_at,
            ))
            .bind(i64::from($length_secs))
    }};
}

/// Claimed rows in the order of an expiring list (soonest first, ties by
/// id): the statement returns them in no set order.
pub(super) fn soonest_first(mut claimed: Vec<super::ListedRecord>) -> Vec<super::ListedRecord> {
    claimed.sort_by_key(|listed| match listed {
        Ok(record) => (record.expires_at, Some(record.id)),
        Err(damaged) => (damaged.expires_at, damaged.id),
    });
    claimed
}

/// Binds [`Statements::revoke`]: the revocation, then the id and its
/// scope.
macro_rules! bind_revoke {
    ($query:expr, $time:ty, $revocation:expr, $scope:expr, $id:expr) => {{
        let (at, by, reason) = $crate::store::sql::revocation_to_sql::<$time>($revocation);
        let (kind, org, domain) = $crate::store::sql::scope_to_sql($scope);
        $query
            .bind(at)
            .bind(by)
            .bind(reason)
            .bind($crate::store::sql::id_to_sql($id))
            .bind(org)
            .bind(kind)
            .bind(domain)
    }};
}

/// Binds [`Statements::retire`]: the successor, the retirement, the old id
/// and its scope.
macro_rules! bind_retire {
    ($query:expr, $time:ty, $new:expr, $retire:expr, $scope:expr, $old:expr) => {{
        let retirement = $crate::store::sql::retirement_to_sql::<$time>($retire);
        let (kind, org, domain) = $crate::store::sql::scope_to_sql($scope);
        $query
            .bind($crate::store::sql::id_to_sql($new))
            .bind(retirement.expires_at)
            .bind(retirement.revoked_at)
            .bind(retirement.revoked_by)
            .bind(retirement.revoke_reason)
            .bind($crate::store::sql::id_to_sql($old))
            .bind(org)
            .bind(kind)
            .bind(domain)
    }};
}

/// Binds [`Statements::find_at`]: the id and the scope.
macro_rules! bind_find_at {
    ($query:expr, $scope:expr, $id:expr) => {{
        let (kind, org, domain) = $crate::store::sql::scope_to_sql($scope);
        $query
            .bind($crate::store::sql::id_to_sql($id))
            .bind(org)
            .bind(kind)
            .bind(domain)
    }};
}

/// The update [`TokenStore::update`](super::TokenStore::update) runs for
/// the change `$change` (a `&TokenChange`) of id `$id` at `$scope`, bound:
/// [`Statements::disable`], [`enable`](Statements::enable) or
/// [`edit`](Statements::edit).
macro_rules! update_query {
    ($statements:expr, $time:ty, $change:expr, $scope:expr, $id:expr) => {{
        use $crate::store::TokenChange;
        let to_sql = <$time as $crate::store::sql::SqlTime>::to_sql;
        let (kind, org, domain) = $crate::store::sql::scope_to_sql($scope);
        let id = $crate::store::sql::id_to_sql($id);
        let statements = &$statements;
        match $change {
            TokenChange::Disable(disablement) => sqlx::query(&statements.disable)
                .bind(to_sql(disablement.at))
                .bind(disablement.by.as_str())
                .bind(id)
                .bind(org)
                .bind(kind)
                .bind(domain),
            TokenChange::Enable => sqlx::query(&statements.enable)
                .bind(id)
                .bind(org)
                .bind(kind)
                .bind(domain),
            TokenChange::Edit { label, expiry } => sqlx::query(&statements.edit)
                .bind(label.as_ref().map($crate::Label::as_str))
                .bind(expiry.is_some())
                .bind(expiry.and_then(|expiry| expiry.to).map(to_sql))
                .bind(id)
                .bind(org)
                .bind(kind)
                .bind(domain)
                .bind(expiry.and_then(|expiry| expiry.from).map(to_sql)),
        }
    }};
}

/// Binds [`Statements::mark_scope`]: the scope, then the revocation.
macro_rules! bind_mark {
    ($query:expr, $time:ty, $scope:expr, $revocation:expr) => {{
        let (_, org, domain) = $crate::store::sql::scope_to_sql($scope);
        let (at, by, reason) = $crate::store::sql::revocation_to_sql::<$time>($revocation);
        $query.bind(org).bind(domain).bind(at).bind(by).bind(reason)
    }};
}

/// Binds the first four parameters of [`Statements::first_marked`]: the
/// scope, and the mark `(id, through)`.
macro_rules! bind_marked {
    ($query:expr, $scope:expr, $mark:expr) => {{
        let (_, org, domain) = $crate::store::sql::scope_to_sql($scope);
        let (mark, through): (i64, i64) = $mark;
        $query.bind(org).bind(domain).bind(through).bind(mark)
    }};
}

pub(super) use {
    bind_claim_notices, bind_find_at, bind_list, bind_list_expiring, bind_mark, bind_marked,
    bind_reads, bind_release_notice, bind_retire, bind_revoke, update_query,
};

/// Runs [`Statements::revoke_created_by`] in the transaction `$tx` until
/// `$limit` tokens of `$creator` are revoked or none is left, and evaluates
/// to their ids; `$time` is the dialect's time type, `$error` maps driver
/// errors. Each round asks for what is left of the limit: fewer rows than
/// asked means none is left; otherwise each round revokes at least one row
/// more, so the loop ends. (A row whose id cannot be named, edited by hand,
/// is revoked all the same but does not count.) A macro, as
/// [`bind_record`] is: the two drivers' transactions share no usable trait.
macro_rules! revoke_created_by_rounds {
    ($tx:expr, $statements:expr, $time:ty, $creator:expr, $revocation:expr, $limit:expr, $error:expr) => {{
        let (at, by, reason) = $crate::store::sql::revocation_to_sql::<$time>($revocation);
        let mut revoked: Vec<$crate::TokenId> = Vec::new();
        loop {
            let wanted = $limit - revoked.len();
            let done: Vec<String> = sqlx::query_scalar(&$statements.revoke_created_by)
                .bind(at)
                .bind(by)
                .bind(reason)
                .bind($creator.as_str())
                .bind($crate::store::sql::limit_to_sql(wanted))
                .fetch_all(&mut *$tx)
                .await
                .map_err($error)?;
            revoked.extend(
                done.iter()
                    .filter_map(|id| id.parse::<$crate::TokenId>().ok()),
            );
            if done.len() < wanted || revoked.len() == $limit {
                break revoked;
            }
        }
    }};
}

pub(super) use revoke_created_by_rounds;

/// Applies, in the transaction `$tx`, each migration of `$migrations` that
/// the table `$applied` (created by `$create` if missing) does not record,
/// and records it; `$error` maps driver errors. (A macro, as
/// [`bind_record`] is: the two drivers' transactions share no usable trait.)
macro_rules! apply_migrations {
    ($tx:expr, $create:expr, $applied:expr, $migrations:expr, $error:expr) => {{
        let tx = $tx;
        let applied = $applied;
        sqlx::query($create)
            .execute(&mut **tx)
            .await
            .map_err($error)?;
        for migration in $migrations {
            let done = sqlx::query(&format!("SELECT 1 FROM {applied} WHERE version = $1"))
                .bind(i64::from(migration.version))
                .fetch_optional(&mut **tx)
                .await
                .map_err($error)?;
            if done.is_none() {
                sqlx::raw_sql(&migration.sql)
                    .execute(&mut **tx)
                    .await
                    .map_err($error)?;
                sqlx::query(&format!(
                    "INSERT INTO {applied} (version, name) VALUES ($1, $2)"
                ))
                .bind(i64::from(migration.version))
                .bind(migration.name)
                .execute(&mut **tx)
                .await
                .map_err($error)?;
            }
        }
    }};
}

pub(super) use apply_migrations;

/// Binds [`Statements::count_live`] and [`Statements::zero_live`]: the
/// scope.
macro_rules! bind_scope_counts {
    ($query:expr, $scope:expr) => {{
        let (_, org, domain) = $crate::store::sql::scope_to_sql($scope);
        $query.bind(org).bind(domain)
    }};
}

pub(super) use bind_scope_counts;

/// What a scope mark revoked: the live counts it covered (from
/// [`Statements::count_live`]), and the first ids (from
/// [`Statements::first_marked`], read after the mark committed, so at best
/// effort: an id that is not one, on a damaged row, is left out).
pub(super) fn scope_revoked(live: &[i64], first: &[String]) -> ScopeRevoked {
    ScopeRevoked {
        count: live
            .iter()
            .map(|&n| u64::try_from(n).unwrap_or_default())
            .sum(),
        first: first.iter().filter_map(|id| id.parse().ok()).collect(),
    }
}

impl Statements {
    /// The statements a purge runs in turn, each deleting up to `$2` of the
    /// tokens that ended before `$1` in one way: revoked, expired, covered
    /// by an old scope mark.
    pub(super) fn purge_steps(&self) -> [&str; 3] {
        [&self.purge_revoked, &self.purge_expired, &self.purge_marked]
    }
}
