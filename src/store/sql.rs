//! What the SQL stores share: the table, how a record maps to its row and
//! back, and how driver errors map to [`StoreError`].
//!
//! One table, `api_tokens`, one row per token, with plain column types both
//! SQLite and PostgreSQL read alike:
//!
//! | column | holds |
//! |---|---|
//! | `id` | the token id's 64 bits with the top bit flipped, as a signed `BIGINT`, so SQL orders ids as the crate does |
//! | `scope_kind`, `org_id`, `domain_id` | `organization` or `domain`; the ids; `domain_id` is `''` for an organization |
//! | `role`, `label`, `key_id`, `digest` | as in [`TokenRecord`] (`digest`: 32 bytes) |
//! | `created_at`, `expires_at`, `revoked_at`, `last_used_at` | microseconds since the Unix epoch, UTC: exactly the precision records keep |
//! | `created_by`, `revoked_by`, `revoke_reason` | as in [`TokenRecord`] |
//! | `rotated_from`, `replaced_by` | ids, as `id` |
//!
//! A row that does not read back as a valid record (a digest of the wrong
//! length, an unknown scope kind or role, an id of an organization that is
//! not a valid id) is reported as [`StoreError::Corrupt`] naming the token,
//! never trusted.

use std::sync::{Arc, LazyLock};

use time::OffsetDateTime;

use crate::actor::Role;
use crate::error::{BoxError, StoreError};
use crate::hashing::{Digest, KeyId};
use crate::ids::{ActorId, DomainId, OrganizationId};
use crate::label::Label;
use crate::record::{Revocation, StoredCredential, TokenRecord};
use crate::scope::Scope;
use crate::token::TokenId;

use super::{Cursor, Retirement, RevokeOutcome, RotateOutcome};

/// The columns of a whole record, in the order every query selects them.
const RECORD_COLUMNS: &str = "id, scope_kind, org_id, domain_id, role, label, \
     key_id, digest, created_at, created_by, expires_at, revoked_at, revoked_by, \
     revoke_reason, last_used_at, rotated_from, replaced_by";

/// The columns verification reads.
const CREDENTIAL_COLUMNS: &str = "id, scope_kind, org_id, domain_id, role, key_id, \
     digest, expires_at, revoked_at, replaced_by, last_used_at";

// The statements both stores run, written once. Parameters are `$N`, which
// PostgreSQL reads as numbered and SQLite as named, numbering each at its
// first appearance; so in every statement they first appear in order, `$1`
// before `$2`. Built once, not per call: `find_credential` is on the verify
// path, and a constant text lets each connection reuse its prepared form.

/// Adds a record, its parameters the [`RECORD_COLUMNS`] (see
/// [`bind_record`]); a taken id inserts nothing.
pub(super) static INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO api_tokens ({RECORD_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (id) DO NOTHING"
    )
});

/// The [`RecordRow`] of id `$1`.
pub(super) static FIND: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {RECORD_COLUMNS} FROM api_tokens WHERE id = $1"));

/// The [`CredentialRow`] of id `$1`.
pub(super) static FIND_CREDENTIAL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {CREDENTIAL_COLUMNS} FROM api_tokens WHERE id = $1"));

/// A page of one exact scope (`$1`–`$3`, see [`scope_to_sql`]), newest
/// first, after the position `($4, $5)` (see [`list_start`]), at most `$6`
/// rows.
pub(super) static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {RECORD_COLUMNS} FROM api_tokens \
         WHERE org_id = $1 AND scope_kind = $2 AND domain_id = $3 \
         AND (created_at, id) < ($4, $5) \
         ORDER BY created_at DESC, id DESC LIMIT $6"
    )
});

/// The live records of one exact scope (`$1`–`$3`) expiring at or after
/// `$4` and before `$5`, soonest first.
pub(super) static LIST_EXPIRING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {RECORD_COLUMNS} FROM api_tokens \
         WHERE org_id = $1 AND scope_kind = $2 AND domain_id = $3 \
         AND revoked_at IS NULL AND replaced_by IS NULL \
         AND expires_at >= $4 AND expires_at < $5 \
         ORDER BY expires_at, id"
    )
});

/// Revokes id `$4` unless revoked already; `$1`–`$3` are the revocation
/// (see [`revocation_to_sql`]).
pub(super) const REVOKE: &str = "UPDATE api_tokens SET revoked_at = $1, revoked_by = $2, revoke_reason = $3 \
     WHERE id = $4 AND revoked_at IS NULL";

/// Revokes every live token of organization `$4`, its domains' too, and
/// returns their ids.
pub(super) const REVOKE_ORGANIZATION: &str = "UPDATE api_tokens SET revoked_at = $1, revoked_by = $2, revoke_reason = $3 \
     WHERE org_id = $4 AND revoked_at IS NULL RETURNING id";

/// Revokes every live token of exactly the scope `$4`–`$6` and returns
/// their ids.
pub(super) const REVOKE_DOMAIN: &str = "UPDATE api_tokens SET revoked_at = $1, revoked_by = $2, revoke_reason = $3 \
     WHERE org_id = $4 AND scope_kind = $5 AND domain_id = $6 \
     AND revoked_at IS NULL RETURNING id";

/// Marks id `$6` replaced by `$1` if it is live and not replaced yet:
/// expiring at `$2` (if not null) or revoked with `$3`–`$5` (see
/// [`retirement_to_sql`]). Changes no row if the rotation must not happen.
pub(super) const RETIRE: &str = "UPDATE api_tokens SET replaced_by = $1, \
         expires_at = COALESCE($2, expires_at), \
         revoked_at = $3, revoked_by = $4, revoke_reason = $5 \
     WHERE id = $6 AND revoked_at IS NULL AND replaced_by IS NULL";

/// The values a revocation writes: `revoked_at`, `revoked_by`,
/// `revoke_reason`.
pub(super) fn revocation_to_sql(revocation: &Revocation) -> (i64, &str, Option<&str>) {
    (
        time_to_sql(revocation.at),
        revocation.by.as_str(),
        revocation.reason.as_ref().map(|reason| reason.as_str()),
    )
}

/// The values [`RETIRE`] writes besides the successor: a new `expires_at`,
/// or the revocation's three columns.
pub(super) fn retirement_to_sql(retire: &Retirement) -> RetirementParams<'_> {
    match retire {
        Retirement::ExpiresAt(at) => RetirementParams {
            expires_at: Some(time_to_sql(*at)),
            ..RetirementParams::default()
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

/// Parameters `$2`–`$5` of [`RETIRE`].
#[derive(Default)]
pub(super) struct RetirementParams<'a> {
    pub(super) expires_at: Option<i64>,
    pub(super) revoked_at: Option<i64>,
    pub(super) revoked_by: Option<&'a str>,
    pub(super) revoke_reason: Option<&'a str>,
}

/// The position a [`LIST`] page starts after: the cursor's, or without one
/// the greatest there can be.
pub(super) fn list_start(after: Option<Cursor>) -> (i64, i64) {
    after.map_or((i64::MAX, i64::MAX), |cursor| {
        (time_to_sql(cursor.created_at), id_to_sql(cursor.id))
    })
}

/// A row limit as SQL reads it (`usize` beyond `i64` means no limit).
pub(super) fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// What a [`REVOKE`] that changed no row meant, given the record as read
/// after it: revoked before, or absent. A revocation is never undone, so
/// what is read then is what made the update miss.
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

/// Why a [`RETIRE`] changed no row, given the old record as read after it.
pub(super) fn rotation_refused(found: Option<TokenRecord>) -> RotateOutcome {
    match found {
        None => RotateOutcome::NotFound,
        Some(record) => match record.replaced_by {
            Some(by) => RotateOutcome::AlreadyReplaced(by),
            None => RotateOutcome::Revoked,
        },
    }
}

/// A token id as stored: its bits with the top one flipped, so that signed
/// `BIGINT` order is the ids' own (unsigned) order.
pub(super) fn id_to_sql(id: TokenId) -> i64 {
    (id.bits() ^ (1 << 63)) as i64
}

pub(super) fn id_from_sql(stored: i64) -> TokenId {
    TokenId::from_bits(stored as u64 ^ (1 << 63))
}

/// A time as stored: microseconds since the Unix epoch, UTC. Records are
/// whole microseconds within ±9999 years, which fit an `i64` many times over.
pub(super) fn time_to_sql(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1000) as i64
}

fn time_from_sql(id: TokenId, micros: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .map_err(|error| corrupt(id, error))
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

fn role_from_sql(id: TokenId, role: &str) -> Result<Role, StoreError> {
    Ok(match role {
        "viewer" => Role::Viewer,
        "editor" => Role::Editor,
        "admin" => Role::Admin,
        "owner" => Role::Owner,
        other => return Err(corrupt(id, format!("unknown role {other:?}"))),
    })
}

fn corrupt(id: TokenId, error: impl Into<BoxError>) -> StoreError {
    StoreError::Corrupt {
        id: Some(id),
        source: error.into(),
    }
}

/// One row of `api_tokens`, as the driver reads it.
#[derive(sqlx::FromRow)]
pub(super) struct RecordRow {
    id: i64,
    scope_kind: String,
    org_id: String,
    domain_id: String,
    role: String,
    label: String,
    key_id: i64,
    digest: Vec<u8>,
    created_at: i64,
    created_by: String,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    revoked_by: Option<String>,
    revoke_reason: Option<String>,
    last_used_at: Option<i64>,
    rotated_from: Option<i64>,
    replaced_by: Option<i64>,
}

/// The columns of a row verification reads.
#[derive(sqlx::FromRow)]
pub(super) struct CredentialRow {
    id: i64,
    scope_kind: String,
    org_id: String,
    domain_id: String,
    role: String,
    key_id: i64,
    digest: Vec<u8>,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    replaced_by: Option<i64>,
    last_used_at: Option<i64>,
}

/// Reads and validates what both row shapes share.
struct Common {
    id: TokenId,
    scope: Scope,
    role: Role,
    key_id: KeyId,
    digest: Digest,
    expires_at: Option<OffsetDateTime>,
    last_used_at: Option<OffsetDateTime>,
}

#[allow(clippy::too_many_arguments)] // one per column the two rows share
fn common(
    id: i64,
    scope_kind: &str,
    org_id: &str,
    domain_id: &str,
    role: &str,
    key_id: i64,
    digest: &[u8],
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
) -> Result<Common, StoreError> {
    let id = id_from_sql(id);
    let org = OrganizationId::new(org_id).map_err(|error| corrupt(id, error))?;
    let scope = match (scope_kind, domain_id) {
        ("organization", "") => Scope::organization(org),
        ("domain", domain) => Scope::domain(
            org,
            DomainId::new(domain).map_err(|error| corrupt(id, error))?,
        ),
        (kind, _) => return Err(corrupt(id, format!("unknown scope kind {kind:?}"))),
    };
    let digest: [u8; 32] = digest
        .try_into()
        .map_err(|_| corrupt(id, format!("a digest of {} bytes, not 32", digest.len())))?;
    let key_id = u32::try_from(key_id).map_err(|error| corrupt(id, error))?;
    let time = |micros: Option<i64>| micros.map(|m| time_from_sql(id, m)).transpose();
    Ok(Common {
        id,
        scope,
        role: role_from_sql(id, role)?,
        key_id: KeyId::new(key_id),
        digest: Digest::from_bytes(digest),
        expires_at: time(expires_at)?,
        last_used_at: time(last_used_at)?,
    })
}

impl RecordRow {
    pub(super) fn into_record(self) -> Result<TokenRecord, StoreError> {
        let common = common(
            self.id,
            &self.scope_kind,
            &self.org_id,
            &self.domain_id,
            &self.role,
            self.key_id,
            &self.digest,
            self.expires_at,
            self.last_used_at,
        )?;
        let id = common.id;
        let actor = |name: &str| ActorId::new(name).map_err(|error| corrupt(id, error));
        let label = |text: &str| Label::new(text).map_err(|error| corrupt(id, error));
        let revoked = match (self.revoked_at, self.revoked_by) {
            (None, None) => None,
            (Some(at), Some(by)) => Some(Revocation {
                at: time_from_sql(id, at)?,
                by: actor(&by)?,
                reason: self.revoke_reason.as_deref().map(label).transpose()?,
            }),
            _ => return Err(corrupt(id, "a revocation without its time or its revoker")),
        };
        Ok(TokenRecord {
            id,
            scope: common.scope,
            role: common.role,
            label: label(&self.label)?,
            key_id: common.key_id,
            digest: common.digest,
            created_at: time_from_sql(id, self.created_at)?,
            created_by: actor(&self.created_by)?,
            expires_at: common.expires_at,
            revoked,
            last_used_at: common.last_used_at,
            rotated_from: self.rotated_from.map(id_from_sql),
            replaced_by: self.replaced_by.map(id_from_sql),
        })
    }
}

impl CredentialRow {
    pub(super) fn into_credential(self) -> Result<StoredCredential, StoreError> {
        let common = common(
            self.id,
            &self.scope_kind,
            &self.org_id,
            &self.domain_id,
            &self.role,
            self.key_id,
            &self.digest,
            self.expires_at,
            self.last_used_at,
        )?;
        Ok(StoredCredential {
            id: common.id,
            scope: Arc::new(common.scope),
            role: common.role,
            key_id: common.key_id,
            digest: common.digest,
            expires_at: common.expires_at,
            revoked: self.revoked_at.is_some(),
            replaced: self.replaced_by.is_some(),
            last_used_at: common.last_used_at,
        })
    }
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
/// `Unavailable`; damaged data (codes `classify` calls corrupt, values that
/// do not decode) is `Corrupt`, naming `id` when the query was about one
/// token; anything else (a schema that lacks a column, say) is `Other`. The
/// driver's error is kept as the source.
pub(super) fn store_error(
    error: sqlx::Error,
    id: Option<TokenId>,
    classify: fn(&str) -> Class,
) -> StoreError {
    use sqlx::Error::*;
    let class = match &error {
        Io(_) | Tls(_) | Protocol(_) | PoolTimedOut | PoolClosed | WorkerCrashed => Class::Outage,
        Database(database) => database.code().map_or(Class::Other, |code| classify(&code)),
        ColumnDecode { .. } | Decode(_) => Class::Corrupt,
        _ => Class::Other,
    };
    let source = Box::new(error);
    match class {
        Class::Outage => StoreError::Unavailable { source },
        Class::Corrupt => StoreError::Corrupt { id, source },
        Class::Other => StoreError::Other { source },
    }
}

/// The values of a record's row, in `RECORD_COLUMNS` order.
pub(super) struct RecordParams {
    pub(super) id: i64,
    pub(super) scope_kind: &'static str,
    pub(super) org_id: String,
    pub(super) domain_id: String,
    pub(super) role: &'static str,
    pub(super) label: String,
    pub(super) key_id: i64,
    pub(super) digest: Vec<u8>,
    pub(super) created_at: i64,
    pub(super) created_by: String,
    pub(super) expires_at: Option<i64>,
    pub(super) revoked_at: Option<i64>,
    pub(super) revoked_by: Option<String>,
    pub(super) revoke_reason: Option<String>,
    pub(super) last_used_at: Option<i64>,
    pub(super) rotated_from: Option<i64>,
    pub(super) replaced_by: Option<i64>,
}

impl RecordParams {
    pub(super) fn of(record: &TokenRecord) -> Self {
        let (scope_kind, org_id, domain_id) = scope_to_sql(&record.scope);
        let revoked = record.revoked.as_ref();
        RecordParams {
            id: id_to_sql(record.id),
            scope_kind,
            org_id: org_id.to_owned(),
            domain_id: domain_id.to_owned(),
            role: role_to_sql(record.role),
            label: record.label.as_str().to_owned(),
            key_id: i64::from(record.key_id.get()),
            digest: record.digest.as_bytes().to_vec(),
            created_at: time_to_sql(record.created_at),
            created_by: record.created_by.as_str().to_owned(),
            expires_at: record.expires_at.map(time_to_sql),
            revoked_at: revoked.map(|revocation| time_to_sql(revocation.at)),
            revoked_by: revoked.map(|revocation| revocation.by.as_str().to_owned()),
            revoke_reason: revoked
                .and_then(|revocation| revocation.reason.as_ref())
                .map(|reason| reason.as_str().to_owned()),
            last_used_at: record.last_used_at.map(time_to_sql),
            rotated_from: record.rotated_from.map(id_to_sql),
            replaced_by: record.replaced_by.map(id_to_sql),
        }
    }
}

/// Binds a [`RecordParams`] to a query whose parameters are the
/// [`RECORD_COLUMNS`], in order, as [`INSERT`]'s are. (A macro: the two drivers' query types share
/// no trait that would let a function do it without a wall of bounds.)
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
    }};
}

pub(super) use bind_record;
