//! Paged lists: which page to fetch ([`PageRequest`]), what comes back
//! ([`TokenPage`]), and the positions where the next page starts.
//!
//! A cursor's text is opaque to clients: they get it with one page and send
//! it back, unchanged, for the next. It is 32 characters of the URL-safe
//! base64 alphabet (`A-Z a-z 0-9 - _`, no padding), so it goes into a query
//! string, a path or a JSON body without escaping.
//!
//! Inside, for this crate's eyes only: a format byte (which list, which
//! version of the layout), the position's time as Unix seconds (8 bytes,
//! big-endian) and nanoseconds (4 bytes), and the token id's 11 characters.
//! The format byte lets a later version change the layout and still tell
//! an old cursor from garbage. A cursor is not signed: a client that edits
//! one only moves its own position in a list it may read anyway.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::error::{CursorError, ListError};
use crate::record::DamagedToken;
use crate::record::TokenRecord;
use crate::record::TokenSummary;
use crate::token::TokenId;

/// The characters of a cursor's text.
const TEXT_LEN: usize = 32;
/// The bytes a cursor's text encodes: format, seconds, nanoseconds, id.
const BYTES_LEN: usize = 1 + 8 + 4 + ID_CHARS;
/// The characters of a token id.
const ID_CHARS: usize = 11;
/// Format byte of a [`Cursor`]: list 1 (the token list), layout version 1.
const LIST_V1: u8 = 0x11;
/// Format byte of an [`ExpiryCursor`]: list 2 (expiring soon), layout version 1.
const EXPIRY_V1: u8 = 0x21;

// 24 bytes are exactly 32 base64 characters: no padding, no spare bits,
// so every cursor has one text.
const _: () = assert!(BYTES_LEN * 4 == TEXT_LEN * 3);

/// A position in a scope's token list, which is ordered newest first. Ordering
/// cursors compares `created_at`, then `id`; a list runs from the greatest
/// cursor down.
///
/// Its text form (`Display`, `FromStr`, and serde as a string) is 32
/// characters of `A-Z a-z 0-9 - _`, safe in a URL, a header or JSON without
/// escaping, that a client should treat as opaque: inside are a format
/// byte (which list, which layout version), the time and the id, in
/// URL-safe base64. It is not signed; a client that edits one only moves
/// its own position in a list it may read anyway. Parsing gives the same
/// position back, its time in UTC:
///
/// ```
/// use api_tokens::Cursor;
/// use time::macros::datetime;
///
/// let cursor = Cursor {
///     created_at: datetime!(2030-01-01 09:00 UTC),
///     id: "3kT9QxPb1Zr".parse()?,
/// };
/// let text = cursor.to_string(); // `next` in the page a client gets
/// assert_eq!(text.len(), 32);
/// let back: Cursor = text.parse()?; // `after` in its request for the next page
/// assert_eq!(back, cursor);
/// assert!("garbage".parse::<Cursor>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// When the record at this position was created.
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
///
/// Its text form is that of a [`Cursor`], with its own format byte: a
/// cursor of one list given to the other is refused
/// ([`CursorError::WrongList`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExpiryCursor {
    /// When the record at this position expires.
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

/// Writes the text of the position (`at`, `id`) with format byte `format`.
fn write_text(
    f: &mut fmt::Formatter<'_>,
    format: u8,
    at: OffsetDateTime,
    id: TokenId,
) -> fmt::Result {
    let mut bytes = [0u8; BYTES_LEN];
    bytes[0] = format;
    bytes[1..9].copy_from_slice(&at.unix_timestamp().to_be_bytes());
    bytes[9..13].copy_from_slice(&at.nanosecond().to_be_bytes());
    bytes[13..].copy_from_slice(&id.to_chars());
    let mut text = [0u8; TEXT_LEN];
    let written = URL_SAFE_NO_PAD
        .encode_slice(bytes, &mut text)
        .map_err(|_| fmt::Error)?;
    // Base64 is ASCII, so this cannot fail.
    f.write_str(std::str::from_utf8(&text[..written]).map_err(|_| fmt::Error)?)
}

/// Reads the position in `text`, which must carry format byte `format`
/// (`other` is the other list's, refused as [`CursorError::WrongList`]).
fn read_text(text: &str, format: u8, other: u8) -> Result<(OffsetDateTime, TokenId), CursorError> {
    if text.len() != TEXT_LEN {
        return Err(CursorError::WrongLength {
            expected: TEXT_LEN,
            found: text.len(),
        });
    }
    // Checked here rather than mapped from the codec's error, whose
    // offsets and kinds depend on its version.
    if let Some(position) = text
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(CursorError::InvalidCharacter { position });
    }
    let mut bytes = [0u8; BYTES_LEN];
    match URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
        Ok(BYTES_LEN) => {}
        // The alphabet and length are right, so the codec has nothing left
        // to refuse; should it still, the text is no cursor of ours.
        _ => return Err(CursorError::UnknownVersion),
    }
    match bytes[0] {
        found if found == format => {}
        found if found == other => return Err(CursorError::WrongList),
        _ => return Err(CursorError::UnknownVersion),
    }
    let seconds = i64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes"));
    let nanoseconds = u32::from_be_bytes(bytes[9..13].try_into().expect("4 bytes"));
    let at = OffsetDateTime::from_unix_timestamp(seconds)
        .and_then(|at| at.replace_nanosecond(nanoseconds))
        .ok()
        // Before the year 1 no store holds a time, so no list has one.
        .filter(|at| at.year() >= 1)
        .ok_or(CursorError::InvalidPosition)?;
    let id = std::str::from_utf8(&bytes[13..])
        .ok()
        .and_then(|id| TokenId::from_str(id).ok())
        .ok_or(CursorError::InvalidPosition)?;
    Ok((at, id))
}

impl fmt::Display for Cursor {
    /// The opaque text: 32 URL-safe base64 characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_text(f, LIST_V1, self.created_at, self.id)
    }
}

impl FromStr for Cursor {
    type Err = CursorError;

    /// Reads the text `Display` wrote.
    fn from_str(text: &str) -> Result<Self, CursorError> {
        let (created_at, id) = read_text(text, LIST_V1, EXPIRY_V1)?;
        Ok(Cursor { created_at, id })
    }
}

impl fmt::Display for ExpiryCursor {
    /// The opaque text: 32 URL-safe base64 characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_text(f, EXPIRY_V1, self.expires_at, self.id)
    }
}

impl FromStr for ExpiryCursor {
    type Err = CursorError;

    /// Reads the text `Display` wrote.
    fn from_str(text: &str) -> Result<Self, CursorError> {
        let (expires_at, id) = read_text(text, EXPIRY_V1, LIST_V1)?;
        Ok(ExpiryCursor { expires_at, id })
    }
}

impl Serialize for Cursor {
    /// The opaque text, as a string.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    /// The opaque text, as `FromStr` reads it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::text::deserialize_from_str(deserializer, "a list cursor as a string")
    }
}

impl Serialize for ExpiryCursor {
    /// The opaque text, as a string.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ExpiryCursor {
    /// The opaque text, as `FromStr` reads it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::text::deserialize_from_str(deserializer, "an expiring-list cursor as a string")
    }
}

/// The most tokens one [`TokenService::list`](crate::TokenService::list) call returns.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Refuses a page size outside 1 to [`MAX_PAGE_SIZE`].
pub(crate) fn check_page_size(limit: usize) -> Result<(), ListError> {
    if (1..=MAX_PAGE_SIZE).contains(&limit) {
        Ok(())
    } else {
        Err(ListError::InvalidPageSize {
            requested: limit,
            max: MAX_PAGE_SIZE,
        })
    }
}

/// Which page of a list to fetch: of the API Tokens list (positions are
/// [`Cursor`]s), or of the expiring-soon list
/// ([`ExpiryCursor`](crate::store::ExpiryCursor)s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest<C = Cursor> {
    /// At most this many tokens (1 to [`MAX_PAGE_SIZE`]).
    pub limit: usize,
    /// Continue after this position: the `next` of the previous page.
    pub after: Option<C>,
}

impl<C> PageRequest<C> {
    /// The first `limit` tokens.
    pub fn first(limit: usize) -> Self {
        PageRequest { limit, after: None }
    }

    /// The `limit` tokens after `cursor`.
    pub fn after(cursor: C, limit: usize) -> Self {
        PageRequest {
            limit,
            after: Some(cursor),
        }
    }
}

impl<C> Default for PageRequest<C> {
    /// The first 50 tokens.
    fn default() -> Self {
        PageRequest::first(50)
    }
}

/// One page of a list: the API Tokens list (newest first) or the
/// expiring-soon list (soonest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPage<C = Cursor> {
    /// The tokens on this page.
    pub tokens: Vec<TokenSummary>,
    /// Rows on this page the store could not read back (edited by hand,
    /// say), with what is wrong: shown, never trusted, and never hiding the
    /// rest of the page.
    pub damaged: Vec<DamagedToken>,
    /// Where the next page starts, or `None` if this is the last page.
    pub next: Option<C>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn id(bits: u64) -> TokenId {
        TokenId::from_bits(bits)
    }

    #[test]
    fn a_time_before_the_year_1_is_no_position() {
        // No store holds one (PostgreSQL ends at 4713 BC), so a list given
        // one would fail as a server error instead of a bad cursor.
        let cursor = Cursor {
            created_at: datetime!(-0001-12-31 23:59:59 UTC),
            id: id(1),
        };
        assert_eq!(
            cursor.to_string().parse::<Cursor>(),
            Err(CursorError::InvalidPosition)
        );
    }

    #[test]
    fn text_round_trips_at_the_edges_of_time_and_id() {
        for at in [
            datetime!(2030-01-01 09:00:00.123456 UTC),
            datetime!(1970-01-01 00:00 UTC),
            datetime!(1969-12-31 23:59:59.999999999 UTC),
            datetime!(0001-01-01 00:00 UTC),
            datetime!(9999-12-31 23:59:59.999999999 UTC),
            datetime!(2030-01-01 09:00 +05:30),
        ] {
            for bits in [0, 1, u64::MAX] {
                let cursor = Cursor {
                    created_at: at,
                    id: id(bits),
                };
                let text = cursor.to_string();
                assert_eq!(text.len(), TEXT_LEN);
                assert_eq!(text.parse::<Cursor>(), Ok(cursor), "{text}");
                let expiry = ExpiryCursor {
                    expires_at: at,
                    id: id(bits),
                };
                let text = expiry.to_string();
                assert_eq!(text.parse::<ExpiryCursor>(), Ok(expiry), "{text}");
            }
        }
    }

    #[test]
    fn a_cursor_of_one_list_is_refused_by_the_other() {
        let at = datetime!(2030-01-01 09:00 UTC);
        let list = Cursor {
            created_at: at,
            id: id(7),
        }
        .to_string();
        let expiry = ExpiryCursor {
            expires_at: at,
            id: id(7),
        }
        .to_string();
        assert_ne!(list, expiry);
        assert_eq!(list.parse::<ExpiryCursor>(), Err(CursorError::WrongList));
        assert_eq!(expiry.parse::<Cursor>(), Err(CursorError::WrongList));
    }

    /// The text of `bytes`, as a cursor's text would encode them.
    fn text_of(bytes: [u8; BYTES_LEN]) -> String {
        let mut text = [0u8; TEXT_LEN];
        URL_SAFE_NO_PAD.encode_slice(bytes, &mut text).unwrap();
        String::from_utf8(text.to_vec()).unwrap()
    }

    #[test]
    fn well_formed_text_naming_no_position_is_refused() {
        let mut bytes = [0u8; BYTES_LEN];
        bytes[0] = LIST_V1;
        bytes[13..].copy_from_slice(b"00000000000");
        assert!(text_of(bytes).parse::<Cursor>().is_ok());

        let mut version = bytes;
        version[0] = 0x12;
        assert_eq!(
            text_of(version).parse::<Cursor>(),
            Err(CursorError::UnknownVersion)
        );
        let mut nanos = bytes;
        nanos[9..13].copy_from_slice(&1_000_000_000u32.to_be_bytes());
        assert_eq!(
            text_of(nanos).parse::<Cursor>(),
            Err(CursorError::InvalidPosition)
        );
        let mut seconds = bytes;
        seconds[1..9].copy_from_slice(&i64::MAX.to_be_bytes());
        assert_eq!(
            text_of(seconds).parse::<Cursor>(),
            Err(CursorError::InvalidPosition)
        );
        let mut not_an_id = bytes;
        not_an_id[13] = b'-';
        assert_eq!(
            text_of(not_an_id).parse::<Cursor>(),
            Err(CursorError::InvalidPosition)
        );
        let mut too_big = bytes;
        too_big[13..].copy_from_slice(b"zzzzzzzzzzz");
        assert_eq!(
            text_of(too_big).parse::<Cursor>(),
            Err(CursorError::InvalidPosition)
        );
        let mut not_utf8 = bytes;
        not_utf8[13] = 0xff;
        assert_eq!(
            text_of(not_utf8).parse::<Cursor>(),
            Err(CursorError::InvalidPosition)
        );
    }
}
