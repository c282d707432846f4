//! Finding this service's tokens in text (log lines, pasted snippets,
//! commits) and masking them, so a leaked token is caught and a log can be
//! kept without it.
//!
//! A match is a substring that passes [`TokenFormat::parse`]: the right
//! prefix, scope letter, length and alphabet, and a CRC32 checksum that a
//! random look-alike matches once in about four billion tries. So a string
//! that merely looks like a token is left alone, and nothing is missed for
//! sitting inside a longer word: a token glued to other characters is
//! still found.

use std::borrow::Cow;
use std::ops::Range;

use crate::scope::ScopeKind;
use crate::token::{SECRET_TAIL_LEN, TokenFormat, TokenId, any_format_token_at};

/// What [`TokenFormat::redact`] writes after a token's public head.
const MASK: &str = "…[redacted]";

/// A token found in text by [`TokenFormat::find_tokens`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundToken {
    /// Where the token is: a byte range of the text searched.
    pub range: Range<usize>,
    /// Its public id, to look it up and revoke it.
    pub id: TokenId,
    /// Its scope kind.
    pub kind: ScopeKind,
}

impl TokenFormat {
    /// Every token of this format in `text`, in order, with its position.
    ///
    /// ```
    /// use api_tokens::TokenFormat;
    ///
    /// let format = TokenFormat::new("acme")?;
    /// let line = "GET /v1/domains Authorization: Bearer acmeo_not_a_real_token";
    /// assert!(format.find_tokens(line).is_empty());
    /// # Ok::<(), api_tokens::PrefixError>(())
    /// ```
    pub fn find_tokens(&self, text: &str) -> Vec<FoundToken> {
        self.tokens_in(text).collect()
    }

    /// The tokens of this format in `text`, in order, found one at a time:
    /// a caller that wants only the first few stops the search there.
    pub(crate) fn tokens_in<'a>(&'a self, text: &'a str) -> impl Iterator<Item = FoundToken> + 'a {
        let mut from = 0;
        std::iter::from_fn(move || {
            while let Some(offset) = text[from..].find(self.prefix()) {
                let start = from + offset;
                let range = start..start + self.token_len();
                // `get` is `None` past the end, or where the range would cut a
                // character in two (a token is ASCII, so that is no token).
                match text
                    .get(range.clone())
                    .map(|candidate| self.parse(candidate))
                {
                    Some(Ok(parsed)) => {
                        from = range.end;
                        return Some(FoundToken {
                            range,
                            id: parsed.id(),
                            kind: parsed.kind(),
                        });
                    }
                    // The prefix is ASCII, so one byte on is a character boundary.
                    _ => from = start + 1,
                }
            }
            None
        })
    }

    /// `text` with every token of this format replaced by its public head
    /// (prefix, scope letter and id) and a mask, so a log line still says
    /// which token it was: `acmeo_3kT9QxPb1Zr…[redacted]`. Text without a
    /// token comes back unchanged, byte for byte, and without a copy.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let ranges = self.find_tokens(text).into_iter().map(|found| found.range);
        mask(text, ranges.collect())
    }
}

/// The byte ranges of tokens of *any* service's format in `text`, in order.
///
/// For places that must never hold a token whatever service minted it:
/// labels and reasons, platform ids, `Debug` output of request types.
pub(crate) fn find_any_format_tokens(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = bytes[from..].iter().position(|&b| b == b'_') {
        let separator = from + offset;
        match any_format_token_at(bytes, separator) {
            Some(range) => {
                from = range.end;
                found.push(range);
            }
            None => from = separator + 1,
        }
    }
    found
}

/// `text` with every token of any service's format masked after its public
/// head, as [`TokenFormat::redact`] masks one service's tokens.
pub(crate) fn redact_any_format(text: &str) -> Cow<'_, str> {
    mask(text, find_any_format_tokens(text))
}

/// `text` with each token at `ranges` (in order) cut to its public head and
/// the mask; `text` itself when there are none.
fn mask(text: &str, ranges: Vec<Range<usize>>) -> Cow<'_, str> {
    if ranges.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut redacted = String::with_capacity(text.len());
    let mut copied = 0;
    for range in ranges {
        let head_end = range.end - SECRET_TAIL_LEN;
        redacted.push_str(&text[copied..head_end]);
        redacted.push_str(MASK);
        copied = range.end;
    }
    redacted.push_str(&text[copied..]);
    Cow::Owned(redacted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_where_it_is_and_masked_to_its_head() {
        let format = TokenFormat::new("acme").unwrap();
        let token = format.generate(ScopeKind::Domain).unwrap();
        let text = token.expose_secret();
        let line = format!("é {text}, and again:{text}");

        let found = format.find_tokens(&line);
        let first = "é ".len();
        let second = first + text.len() + ", and again:".len();
        assert_eq!(
            found.iter().map(|f| f.range.start).collect::<Vec<_>>(),
            [first, second]
        );
        assert!(
            found
                .iter()
                .all(|f| f.id == token.id() && f.kind == ScopeKind::Domain)
        );

        let head = &text[..text.len() - SECRET_TAIL_LEN];
        assert_eq!(
            format.redact(&line),
            format!("é {head}{MASK}, and again:{head}{MASK}")
        );
    }

    #[test]
    fn look_alikes_and_cut_tokens_are_left_alone() {
        let format = TokenFormat::new("acme").unwrap();
        let token = format.generate(ScopeKind::Organization).unwrap();
        let text = token.expose_secret();
        let mut wrong_checksum = text.to_owned();
        let last = if text.ends_with('0') { "1" } else { "0" };
        wrong_checksum.replace_range(text.len() - 1.., last);
        for line in [
            &text[..text.len() - 1],
            &wrong_checksum,
            &format!("{}é{}", &text[..20], &text[21..]),
            "acme acme acmeo_ acmed_",
        ] {
            assert!(format.find_tokens(line).is_empty(), "{line}");
            assert!(matches!(format.redact(line), Cow::Borrowed(_)));
        }
    }
}
