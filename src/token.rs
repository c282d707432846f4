//! The token string: its layout, generation, parsing and the pattern that
//! finds it in text.
//!
//! ```text
//!   acme  o  _  3kT9QxPb1Zr  <43 secret characters>  1aB2cD
//!   │     │  │  │            │                        └ checksum: CRC32 of all before it, 6 base62 chars
//!   │     │  │  │            └ secret: 43 base62 chars from the OS random source (256 bits)
//!   │     │  │  └ id: a random u64 as 11 base62 chars, public, used for lookup
//!   │     │  └ separator
//!   │     └ scope kind: `o` organization, `d` domain
//!   └ prefix: chosen per service, 2 to 10 of `a-z0-9`, for secret scanners
//! ```
//!
//! Every part after the prefix has a fixed length, so a service's tokens all
//! have one length ([`TokenFormat::token_len`]) and every part is found by
//! counting from the end. The characters are `[A-Za-z0-9_]` only: safe in URLs
//! and headers, and a double click selects the whole token.
//!
//! The base62 alphabet is `0-9A-Za-z`, in ASCII order, so the text of two ids
//! sorts like their numbers.
//!
//! The secret is drawn as 43 independent uniform base62 characters
//! (43 × log2 62 ≈ 256.03 bits), not as bytes later encoded; the stored hash
//! covers the id and secret characters exactly as they appear in the token.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use rand::TryRng;
use rand::rngs::SysRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::error::{InvalidTokenId, MalformedToken, PrefixError, RandomSourceError};
use crate::scope::ScopeKind;

/// Characters of the public id.
pub(crate) const ID_LEN: usize = 11;
/// Characters of the secret.
const SECRET_LEN: usize = 43;
/// Characters of the checksum.
pub(crate) const CHECKSUM_LEN: usize = 6;
/// Characters after the prefix: kind letter, `_`, id, secret, checksum.
const TAIL_LEN: usize = 2 + ID_LEN + SECRET_LEN + CHECKSUM_LEN;
/// Bounds of a prefix, in characters.
const PREFIX_LEN: std::ops::RangeInclusive<usize> = 2..=10;

pub(crate) const BASE62: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The public identifier of a token: random, 64 bits, shown in lists and
/// written in the token itself (as 11 base62 characters) so the store can be
/// asked for the one record that may match.
///
/// Its text form (`Display`/`FromStr`, and serde) is those 11 characters.
/// Ids order like their text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(u64);

impl TokenId {
    /// The id's 64 bits, uniformly random: stores may use them to pick a
    /// shard or a hash bucket without hashing again.
    pub(crate) const fn bits(self) -> u64 {
        self.0
    }

    /// The id with these 64 bits (as `bits` returned them, or as a store
    /// kept them).
    #[cfg(any(test, feature = "conformance"))]
    pub(crate) const fn from_bits(bits: u64) -> Self {
        TokenId(bits)
    }

    /// The id as 11 ASCII base62 characters, without allocating.
    pub fn to_chars(self) -> [u8; ID_LEN] {
        let mut chars = [0; ID_LEN];
        encode_base62(self.0, &mut chars);
        chars
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars = self.to_chars();
        // Base62 digits are ASCII, so this cannot fail.
        f.write_str(std::str::from_utf8(&chars).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({self})")
    }
}

impl FromStr for TokenId {
    type Err = InvalidTokenId;

    /// Parses the 11-character form shown in lists.
    fn from_str(text: &str) -> Result<Self, InvalidTokenId> {
        let bytes = text.as_bytes();
        if bytes.len() != ID_LEN {
            return Err(InvalidTokenId);
        }
        decode_base62(bytes).map(TokenId).ok_or(InvalidTokenId)
    }
}

impl Serialize for TokenId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TokenId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A service's token layout: the prefix that starts every token it issues.
///
/// ```
/// use api_tokens::TokenFormat;
///
/// let format = TokenFormat::new("acme")?;
/// assert_eq!(format.token_len(), 66);
/// assert!(format.parse("acmeo_not-a-token").is_err());
/// # Ok::<(), api_tokens::PrefixError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenFormat {
    prefix: Box<str>,
}

impl TokenFormat {
    /// A format whose tokens start with `prefix`: 2 to 10 characters of
    /// `a-z` and `0-9`, starting with a letter. Pick a word that is unlikely
    /// elsewhere (your product's name), so secret scanners can match it.
    ///
    /// # Errors
    ///
    /// [`PrefixError`] if `prefix` breaks that rule.
    pub fn new(prefix: &str) -> Result<Self, PrefixError> {
        let bytes = prefix.as_bytes();
        let well_formed = PREFIX_LEN.contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !well_formed {
            return Err(PrefixError);
        }
        Ok(TokenFormat {
            prefix: prefix.into(),
        })
    }

    /// The prefix every token of this format starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The length, in bytes (all ASCII), of every token of this format.
    pub fn token_len(&self) -> usize {
        self.prefix.len() + TAIL_LEN
    }

    /// A regular expression (in the syntax of the `regex` crate, PCRE and
    /// most scanners) that matches exactly the strings shaped like this
    /// format's tokens, as whole words. It cannot check the checksum: run
    /// [`parse`](Self::parse) on each match to drop look-alikes.
    ///
    /// ```
    /// let format = api_tokens::TokenFormat::new("acme")?;
    /// assert_eq!(format.regex_pattern(), r"\bacme[od]_[0-9A-Za-z]{60}\b");
    /// # Ok::<(), api_tokens::PrefixError>(())
    /// ```
    pub fn regex_pattern(&self) -> String {
        // The prefix is `[a-z0-9]` only, so it needs no escaping.
        format!(
            r"\b{}[{}{}]_[0-9A-Za-z]{{{}}}\b",
            self.prefix,
            char::from(kind_letter(ScopeKind::Organization)),
            char::from(kind_letter(ScopeKind::Domain)),
            ID_LEN + SECRET_LEN + CHECKSUM_LEN,
        )
    }

    /// Checks everything about `token` that needs no store: length, prefix,
    /// scope-kind letter, separator, checksum and alphabet, in that order.
    /// A typo or a random string stops here, at the cost of one CRC32.
    ///
    /// The checksum comes before the alphabet because it decides nearly
    /// every rejection on its own (a character outside the alphabet breaks
    /// it too); only a token whose checksum matches is scanned character by
    /// character.
    ///
    /// # Errors
    ///
    /// [`MalformedToken`] naming the first check that failed. The error never
    /// contains the token.
    #[inline]
    pub fn parse<'t>(&self, token: &'t str) -> Result<ParsedToken<'t>, MalformedToken> {
        let bytes = token.as_bytes();
        if bytes.len() != self.token_len() {
            return Err(MalformedToken::WrongLength {
                expected: self.token_len(),
                found: bytes.len(),
            });
        }
        // Both halves have known lengths from here on: the length check above
        // makes every index below in bounds.
        let (prefix, tail) = bytes.split_at(self.prefix.len());
        // A short loop the compiler inlines, where `!=` on slices would call
        // `memcmp` for a handful of bytes.
        let prefix_matches = prefix
            .iter()
            .zip(self.prefix.as_bytes())
            .fold(true, |same, (a, b)| same & (a == b));
        if !prefix_matches {
            return Err(MalformedToken::WrongPrefix);
        }
        let kind = kind_from_letter(tail[0]).ok_or(MalformedToken::UnknownKind)?;
        if tail[1] != b'_' {
            return Err(MalformedToken::MissingSeparator);
        }
        let (checked, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        // Decoding the six characters is cheaper than encoding the CRC, and
        // every value below 62^6 has exactly one six-character form, so the
        // two checks agree. A character outside the alphabet decodes to
        // nothing and fails here too.
        if decode_base62(checksum) != Some(u64::from(crc32fast::hash(checked))) {
            return Err(MalformedToken::BadChecksum);
        }
        let random = &checked[self.prefix.len() + 2..];
        let (id_chars, secret) = random.split_at(ID_LEN);
        // Decoding checks the id's characters; the secret's are checked
        // without an early exit, so the compiler can test many at once.
        let id = decode_base62(id_chars);
        let secret_is_base62 = secret
            .iter()
            .fold(true, |ok, b| ok & b.is_ascii_alphanumeric());
        let Some(id) = id.filter(|_| secret_is_base62) else {
            // Only now find out what is wrong, and where.
            return Err(
                match random.iter().position(|b| !b.is_ascii_alphanumeric()) {
                    Some(offset) => MalformedToken::InvalidCharacter {
                        position: self.prefix.len() + 2 + offset,
                    },
                    None => MalformedToken::IdOutOfRange,
                },
            );
        };
        Ok(ParsedToken {
            kind,
            id: TokenId(id),
            hashed: hashed_part(bytes),
        })
    }

    /// What a list shows to help a person recognise a token without its
    /// secret: the token's public head and an ellipsis, e.g.
    /// `acmeo_3kT9QxPb1Zr…`.
    pub fn hint(&self, kind: ScopeKind, id: TokenId) -> String {
        format!("{}{}_{}…", self.prefix, char::from(kind_letter(kind)), id)
    }

    /// Makes a new token of `kind`: a fresh random id and secret from the OS
    /// random source.
    pub(crate) fn generate(&self, kind: ScopeKind) -> Result<PlaintextToken, RandomSourceError> {
        let mut random = Zeroizing::new([0u8; 64]);
        fill_random(&mut random[..8])?;
        let mut id_bytes = [0; 8];
        id_bytes.copy_from_slice(&random[..8]);
        let id = TokenId(u64::from_le_bytes(id_bytes));

        // Reserved once and never grown, so no reallocation leaves a copy of
        // the secret behind in freed memory.
        let mut text = Zeroizing::new(String::with_capacity(self.token_len()));
        text.push_str(&self.prefix);
        text.push(char::from(kind_letter(kind)));
        text.push('_');
        push_ascii(&mut text, &id.to_chars());

        // Uniform base62 by rejection: six random bits give 0..=63; 62 and 63
        // are drawn again.
        let mut secret_chars = 0;
        while secret_chars < SECRET_LEN {
            fill_random(&mut random[..])?;
            for &byte in random.iter() {
                let value = usize::from(byte & 0x3f);
                if value < BASE62.len() && secret_chars < SECRET_LEN {
                    text.push(char::from(BASE62[value]));
                    secret_chars += 1;
                }
            }
        }
        let checksum = checksum_chars(text.as_bytes());
        push_ascii(&mut text, &checksum);
        debug_assert_eq!(text.len(), self.token_len());
        Ok(PlaintextToken { text, id })
    }
}

/// The byte range of a token of *any* service's format (any valid prefix)
/// whose `_` separator is at `separator` in `bytes`, or `None`.
///
/// Labels, platform ids and `Debug` output use it to keep out tokens of
/// every service built on this crate, not only the one at hand. The
/// checksum decides which prefix length is the token's: a wrong length
/// matches it once in four billion tries.
pub(crate) fn any_format_token_at(bytes: &[u8], separator: usize) -> Option<Range<usize>> {
    if bytes.get(separator) != Some(&b'_') {
        return None;
    }
    let kind_at = separator.checked_sub(1)?;
    kind_from_letter(bytes[kind_at])?;
    let end = separator + 1 + ID_LEN + SECRET_LEN + CHECKSUM_LEN;
    let random_and_checksum = bytes.get(separator + 1..end)?;
    if !random_and_checksum.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let checksum = decode_base62(&bytes[end - CHECKSUM_LEN..end]);
    for prefix_len in PREFIX_LEN {
        let Some(start) = kind_at.checked_sub(prefix_len) else {
            break;
        };
        // A character outside `a-z0-9` ends every longer prefix too.
        let first = bytes[start];
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            break;
        }
        if first.is_ascii_lowercase()
            && checksum
                == Some(u64::from(crc32fast::hash(
                    &bytes[start..end - CHECKSUM_LEN],
                )))
        {
            return Some(start..end);
        }
    }
    None
}

/// Bytes at the end of a token that are not its public head: the secret and
/// the checksum.
pub(crate) const SECRET_TAIL_LEN: usize = SECRET_LEN + CHECKSUM_LEN;

/// A token that passed [`TokenFormat::parse`]: well formed, not yet verified.
/// It borrows the token text; its `Debug` shows only the public parts.
pub struct ParsedToken<'t> {
    kind: ScopeKind,
    id: TokenId,
    hashed: &'t [u8],
}

impl ParsedToken<'_> {
    /// The scope kind the token's letter names.
    pub fn kind(&self) -> ScopeKind {
        self.kind
    }

    /// The token's public id.
    pub fn id(&self) -> TokenId {
        self.id
    }

    /// The id and secret characters, the input of the stored hash.
    pub(crate) fn hashed_part(&self) -> &[u8] {
        self.hashed
    }
}

impl fmt::Debug for ParsedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedToken")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A newly issued token in plain text. It exists only so the caller can show
/// it to its user once; the service keeps only a hash of it.
///
/// It is deliberately awkward to leak: `Debug` and `Display` print only its
/// public head (`acmeo_3kT9QxPb1Zr…[redacted]`); it implements neither
/// `Clone`, `PartialEq` nor `Serialize`; and its text lives on the heap and
/// is overwritten with zeros when it is dropped. Take the text with
/// [`expose_secret`](Self::expose_secret) at the moment you hand it out.
pub struct PlaintextToken {
    text: Zeroizing<String>,
    id: TokenId,
}

impl PlaintextToken {
    /// The token text, to give to the user exactly once.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }

    /// The token's public id.
    pub fn id(&self) -> TokenId {
        self.id
    }

    /// The id and secret characters, the input of the stored hash.
    pub(crate) fn hashed_part(&self) -> &[u8] {
        hashed_part(self.text.as_bytes())
    }

    fn write_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Prefix, kind letter, separator and id: the public head.
        let head_len = self.text.len() - SECRET_TAIL_LEN;
        write!(f, "{}…[redacted]", &self.text[..head_len])
    }
}

impl fmt::Debug for PlaintextToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlaintextToken(")?;
        self.write_redacted(f)?;
        f.write_str(")")
    }
}

impl fmt::Display for PlaintextToken {
    /// Redacted, like `Debug`: printing a token by accident must not leak it.
    /// Use [`expose_secret`](Self::expose_secret) to get the text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_redacted(f)
    }
}

/// The id and secret characters of a token of any prefix: the parts after
/// the prefix have fixed lengths, so they are counted from the end.
fn hashed_part(token: &[u8]) -> &[u8] {
    let end = token.len() - CHECKSUM_LEN;
    &token[end - SECRET_LEN - ID_LEN..end]
}

pub(crate) fn kind_letter(kind: ScopeKind) -> u8 {
    match kind {
        ScopeKind::Organization => b'o',
        ScopeKind::Domain => b'd',
    }
}

fn kind_from_letter(letter: u8) -> Option<ScopeKind> {
    match letter {
        b'o' => Some(ScopeKind::Organization),
        b'd' => Some(ScopeKind::Domain),
        _ => None,
    }
}

pub(crate) fn checksum_chars(checked: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut chars = [0; CHECKSUM_LEN];
    encode_base62(u64::from(crc32fast::hash(checked)), &mut chars);
    chars
}

/// Writes `value` as fixed-width base62 into `out`, most significant first.
/// `out` must be wide enough (11 digits hold any u64, 6 any u32).
fn encode_base62(mut value: u64, out: &mut [u8]) {
    for digit in out.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
}

/// Each byte's base62 value, or [`NOT_BASE62`].
const BASE62_VALUES: [u8; 256] = {
    let mut values = [NOT_BASE62; 256];
    let mut digit = 0;
    while digit < BASE62.len() {
        values[BASE62[digit] as usize] = digit as u8;
        digit += 1;
    }
    values
};
const NOT_BASE62: u8 = 0xff;

/// Reads fixed-width base62 (at most 11 digits); `None` on a character
/// outside the alphabet or a value beyond u64.
fn decode_base62(digits: &[u8]) -> Option<u64> {
    debug_assert!(digits.len() <= ID_LEN);
    // 11 base62 digits stay below 2^66, so a u128 cannot overflow; the range
    // is checked once at the end instead of at every step.
    let mut value = 0u128;
    let mut invalid = false;
    for &c in digits {
        let digit = BASE62_VALUES[usize::from(c)];
        invalid |= digit == NOT_BASE62;
        value = value * 62 + u128::from(digit);
    }
    if invalid {
        return None;
    }
    u64::try_from(value).ok()
}

/// Fills `bytes` from the OS random source.
pub(crate) fn fill_random(bytes: &mut [u8]) -> Result<(), RandomSourceError> {
    SysRng
        .try_fill_bytes(bytes)
        .map_err(|error| RandomSourceError(Box::new(error)))
}

fn push_ascii(text: &mut String, ascii: &[u8]) {
    text.extend(ascii.iter().map(|&b| char::from(b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_round_trips_at_the_edges() {
        for value in [0, 1, 61, 62, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut chars = [0; ID_LEN];
            encode_base62(value, &mut chars);
            assert_eq!(decode_base62(&chars), Some(value));
        }
        // 11 base62 digits can hold more than a u64: those are refused.
        assert_eq!(decode_base62(b"zzzzzzzzzzz"), None);
        assert_eq!(decode_base62(b"0000000000-"), None);
    }

    #[test]
    fn every_generated_token_parses_back_to_its_parts() {
        let format = TokenFormat::new("acme").unwrap();
        let mut ids = std::collections::HashSet::new();
        let mut secrets = std::collections::HashSet::new();
        for n in 0..10_000 {
            let kind = if n % 2 == 0 {
                ScopeKind::Organization
            } else {
                ScopeKind::Domain
            };
            let token = format.generate(kind).unwrap();
            let text = token.expose_secret();
            assert_eq!(text.len(), format.token_len());
            assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            assert_eq!(text.bytes().filter(|&b| b == b'_').count(), 1);

            let parsed = format.parse(text).unwrap();
            assert_eq!(parsed.id(), token.id());
            assert_eq!(parsed.kind(), kind);
            assert_eq!(parsed.hashed_part(), token.hashed_part());
            assert_eq!(token.id().to_string().parse::<TokenId>(), Ok(token.id()));
            assert!(ids.insert(token.id()), "ids must not repeat");
            assert!(
                secrets.insert(text[17..60].to_owned()),
                "secrets must not repeat"
            );
        }
    }

    #[test]
    fn secret_characters_are_spread_over_the_whole_alphabet() {
        // 2,000 secrets = 86,000 characters, ~1,387 per symbol if uniform; a
        // generator that skipped symbols or leaned on some would fail this.
        let format = TokenFormat::new("acme").unwrap();
        let mut counts = [0u32; 62];
        for _ in 0..2_000 {
            let token = format.generate(ScopeKind::Domain).unwrap();
            let secret = &token.hashed_part()[ID_LEN..];
            for &c in secret {
                counts[decode_base62(&[c]).unwrap() as usize] += 1;
            }
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 1_150 && *max < 1_650, "counts {min}..{max}");
    }

    #[test]
    fn id_text_sorts_like_the_number() {
        let small = TokenId(61);
        let large = TokenId(62);
        assert!(small < large);
        assert!(small.to_string() < large.to_string());
        assert_eq!(TokenId(0).to_string(), "00000000000");
    }
}
