//! The human-readable label a token is created with ("what is this token for").

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use unicode_properties::{EmojiStatus, GeneralCategory, UnicodeEmoji, UnicodeGeneralCategory};

use crate::error::LabelError;
use crate::scan::redact_any_format;

/// The longest label accepted, in characters (Unicode scalar values).
pub const MAX_LABEL_CHARS: usize = 100;

/// A validated token label: one line of visible text, 1 to
/// [`MAX_LABEL_CHARS`] characters, without surrounding whitespace.
///
/// Labels are shown in dashboards and written to logs, so the text must not
/// be able to forge a second line, reorder what is shown around it, or look
/// exactly like another label while holding other characters. Refused:
///
/// - control characters (`\n`, `\t`, NUL, …) and the line and paragraph
///   separators U+2028/U+2029;
/// - every Unicode *format* character (general category Cf): the
///   bidirectional marks, embeddings, overrides and isolates (U+200E,
///   U+200F, U+061C, U+202A–U+202E, U+2066–U+2069), zero-width spaces and
///   joiners (U+200B, U+200C, U+2060, U+FEFF), the soft hyphen, tag
///   characters (U+E0001, U+E0020–U+E007F), …;
/// - every other *default-ignorable* code point, which renders as nothing:
///   the Hangul fillers (U+115F, U+1160, U+3164, U+FFA0), the combining
///   grapheme joiner, variation selectors, and the reserved ranges Unicode
///   sets aside as ignorable.
///
/// Emoji stay accepted, with the two invisible characters they are built
/// from, where they build one:
///
/// - U+FE0F (variation selector 16) directly after a character that is
///   text-style by default (`❤️`, `☝️`, the keycaps `1️⃣`), where it
///   visibly turns the character into an emoji. After an emoji that is one
///   already (`🚀`) it would change nothing on screen, so it is refused
///   there, as is U+FE0E;
/// - U+200D (zero-width joiner) between two emoji (`👩‍💻`, `🏳️‍🌈`,
///   `👨‍👩‍👧`). A platform without a picture for a sequence shows the emoji
///   side by side, so there `👨‍👩` and `👨👩` look alike: a label describes
///   a token, and the token's id, shown beside it, is what names it.
///
/// Flags of England, Scotland and Wales, made with tag characters, are
/// refused with them. Every script (Latin, CJK, Arabic, Hebrew, …) and every
/// other emoji is kept exactly as given. Characters that merely look alike
/// across scripts (Latin `a`, Cyrillic `а`) are ordinary text and accepted.
///
/// A token of any service built on this crate pasted into a label is kept
/// with its secret masked (`acmeo_3kT9QxPb1Zr…[redacted]`), so no label,
/// list, record or audit event ever holds one.
///
/// ```
/// use api_tokens::{Label, LabelError};
///
/// assert_eq!(Label::new("  deploys from CI  ")?.as_str(), "deploys from CI");
/// assert_eq!(Label::new("Déploiement 🚀 👩‍💻")?.as_str(), "Déploiement 🚀 👩‍💻");
/// assert!(Label::new("two\nlines").is_err());
/// assert_eq!(
///     Label::new("ci\u{200B}deploys"),
///     Err(LabelError::ForbiddenCharacter { position: 2, code_point: 0x200B })
/// );
/// # Ok::<(), api_tokens::LabelError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Label(Box<str>);

impl Label {
    /// Trims `raw`, masks any token in it, and validates what is left.
    ///
    /// # Errors
    ///
    /// [`LabelError`] if the trimmed text is empty, longer than
    /// [`MAX_LABEL_CHARS`] characters, or holds a forbidden character.
    pub fn new(raw: &str) -> Result<Self, LabelError> {
        // A char is at most 4 bytes, and masking only shortens a token:
        // anything this much longer is too long without looking further, so
        // a huge input is refused in constant time.
        if raw.len() > MAX_LABEL_CHARS * 4 * 2 {
            return Err(LabelError::TooLong {
                max: MAX_LABEL_CHARS,
            });
        }
        let redacted = redact_any_format(raw);
        let label = redacted.trim();
        if label.is_empty() {
            return Err(LabelError::Empty);
        }
        if label.len() > MAX_LABEL_CHARS * 4 || label.chars().count() > MAX_LABEL_CHARS {
            return Err(LabelError::TooLong {
                max: MAX_LABEL_CHARS,
            });
        }
        if let Some((position, c)) = first_forbidden(label) {
            return Err(LabelError::ForbiddenCharacter {
                position,
                code_point: u32::from(c),
            });
        }
        Ok(Label(label.into()))
    }

    /// A label as a store kept it, checked only for what keeps it one
    /// bounded line of text (not empty, at most [`MAX_LABEL_CHARS`], no
    /// control or line-separator character). The rest of the rules may
    /// grow (Unicode assigns new format characters), and a label kept under
    /// earlier ones must still read back: a token must never stop verifying
    /// because of its label.
    pub(crate) fn stored(text: &str) -> Result<Self, LabelError> {
        if text.is_empty() {
            return Err(LabelError::Empty);
        }
        if text.len() > MAX_LABEL_CHARS * 4 || text.chars().count() > MAX_LABEL_CHARS {
            return Err(LabelError::TooLong {
                max: MAX_LABEL_CHARS,
            });
        }
        let breaks_line = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
        if let Some((position, c)) = text.chars().enumerate().find(|&(_, c)| breaks_line(c)) {
            return Err(LabelError::ForbiddenCharacter {
                position,
                code_point: u32::from(c),
            });
        }
        Ok(Label(text.into()))
    }

    /// The label text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The first character a label may not hold, with its index in characters.
fn first_forbidden(label: &str) -> Option<(usize, char)> {
    let chars: Vec<char> = label.chars().collect();
    chars.iter().enumerate().find_map(|(index, &c)| {
        let before = index.checked_sub(1).map(|i| chars[i]);
        let after = chars.get(index + 1).copied();
        let allowed = match c {
            // A keycap (`1️⃣`) needs its U+20E3 too: `1` and `1` + U+FE0F
            // alone look the same.
            EMOJI_STYLE => before.is_some_and(|before| {
                is_text_style_emoji(before) && (!before.is_ascii() || after == Some(KEYCAP))
            }),
            ZERO_WIDTH_JOINER => before.is_some_and(ends_emoji) && after.is_some_and(is_emoji),
            _ => !is_forbidden(c),
        };
        (!allowed).then_some((index, c))
    })
}

/// U+FE0F VARIATION SELECTOR-16: show the character before as an emoji.
const EMOJI_STYLE: char = '\u{FE0F}';
/// U+20E3 COMBINING ENCLOSING KEYCAP: `1` + U+FE0F + this is `1️⃣`.
const KEYCAP: char = '\u{20E3}';
/// U+200D ZERO WIDTH JOINER: draw the emoji on both sides as one.
const ZERO_WIDTH_JOINER: char = '\u{200D}';

/// Control, line-breaking, format and default-ignorable characters.
fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}')
        || c.general_category() == GeneralCategory::Format
        || is_default_ignorable(c)
}

/// Unicode's `Default_Ignorable_Code_Point` property (DerivedCoreProperties),
/// which no character has gained or lost since Unicode 6.0: code points a
/// renderer that does not support them shows as nothing at all.
fn is_default_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}'
        | '\u{17B4}'..='\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}'
        | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// An emoji that is text-style by default, so U+FE0F after it changes how it
/// looks (Emoji = Yes, Emoji_Presentation = No: `❤`, `☝`, `1` for a keycap).
fn is_text_style_emoji(c: char) -> bool {
    matches!(
        c.emoji_status(),
        EmojiStatus::EmojiOther
            | EmojiStatus::EmojiModifierBase
            | EmojiStatus::EmojiOtherAndEmojiComponent
    )
}

/// An emoji outside ASCII (digits, `#` and `*` are emoji only in keycaps,
/// which need no joiner).
fn is_emoji(c: char) -> bool {
    !c.is_ascii() && c.is_emoji_char()
}

/// What an emoji may end with before a joiner: the emoji itself, a skin
/// tone (itself an emoji character), or U+FE0F that was allowed after one.
fn ends_emoji(c: char) -> bool {
    c == EMOJI_STYLE || is_emoji(c)
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

/// Reads a label as stored (see [`Label::new`] for new labels): checked to
/// be one bounded line of text, so records kept under earlier label rules
/// still read back.
impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Label::stored(&raw).map_err(serde::de::Error::custom)
    }
}
