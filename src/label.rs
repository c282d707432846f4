//! The human-readable label a token is created with ("what is this token for").

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::LabelError;

/// The longest label accepted, in characters (Unicode scalar values).
pub const MAX_LABEL_CHARS: usize = 100;

/// A validated token label: one line of printable text, 1 to
/// [`MAX_LABEL_CHARS`] characters, without surrounding whitespace.
///
/// Labels are shown in dashboards and written to logs, so the text must not be
/// able to forge a second line or reorder what is shown around it. Rejected:
/// control characters (`\n`, `\t`, NUL, …), the line and paragraph separators
/// U+2028/U+2029, and the bidirectional embedding, override and isolate
/// controls (U+202A–U+202E, U+2066–U+2069). Everything else, emoji and
/// every script included, is kept exactly as given.
///
/// ```
/// use api_tokens::Label;
///
/// assert_eq!(Label::new("  deploys from CI  ")?.as_str(), "deploys from CI");
/// assert!(Label::new("two\nlines").is_err());
/// # Ok::<(), api_tokens::LabelError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Label(Box<str>);

impl Label {
    /// Trims `raw` and validates what is left.
    ///
    /// # Errors
    ///
    /// [`LabelError`] if the trimmed text is empty, longer than
    /// [`MAX_LABEL_CHARS`] characters, or holds a forbidden character.
    pub fn new(raw: &str) -> Result<Self, LabelError> {
        let label = raw.trim();
        if label.is_empty() {
            return Err(LabelError::Empty);
        }
        // A char is at most 4 bytes: anything longer than this is too long
        // without counting, so a huge input is refused in constant time.
        if label.len() > MAX_LABEL_CHARS * 4 || label.chars().count() > MAX_LABEL_CHARS {
            return Err(LabelError::TooLong {
                max: MAX_LABEL_CHARS,
            });
        }
        if let Some((position, c)) = label.chars().enumerate().find(|&(_, c)| is_forbidden(c)) {
            return Err(LabelError::ForbiddenCharacter {
                position,
                code_point: u32::from(c),
            });
        }
        Ok(Label(label.into()))
    }

    /// The label text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for Label {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Label::new(&raw).map_err(serde::de::Error::custom)
    }
}
