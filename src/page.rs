//! Positions in paged lists: where the next page starts.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::record::TokenRecord;
use crate::token::TokenId;

/// A position in a scope's token list, which is ordered newest first. Ordering
/// cursors compares `created_at`, then `id`; a list runs from the greatest
/// cursor down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cursor {
    /// When the record at this position was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Its id, which breaks ties between records created in the same instant.
    pub id: TokenId,
}

impl Cursor {
    /// The position of `record`.
    pub fn of(record: &TokenRecord) -> Self {
        Cursor {
            created_at: record.created_at,
            id: record.id,
        }
    }
}

/// A position in an expiring-soon list, which is ordered soonest first.
/// Ordering compares `expires_at`, then `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ExpiryCursor {
    /// When the record at this position expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Its id, which breaks ties.
    pub id: TokenId,
}

impl ExpiryCursor {
    /// The position of `record`, if it expires at all.
    pub fn of(record: &TokenRecord) -> Option<Self> {
        Some(ExpiryCursor {
            expires_at: record.expires_at?,
            id: record.id,
        })
    }
}
