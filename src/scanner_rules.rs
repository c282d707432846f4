//! Rules that teach secret scanners this service's tokens, generated from
//! the [`TokenFormat`] so they cannot drift from it: a detect-secrets
//! plugin and filter ([`TokenFormat::detect_secrets_plugin`], whose docs
//! give the command line) and a gitleaks rule
//! ([`TokenFormat::gitleaks_config`]).
//!
//! Why a filter beside the plugin: a plugin can only add findings. A
//! generic detect-secrets scan misses tokens outside quotes (after
//! `Authorization: Bearer`, on an `export` line), which the plugin finds,
//! but its high-entropy plugins flag every quoted look-alike, which only a
//! filter can drop. Ours drops what is laid out like a token, or one
//! character away from that, and fails the checksum; a CRC32 catches every
//! one-character change, so none of those is left.
//!
//! What that gives up: a *real* token with one character mistyped is still
//! dangerous, since trying the ~4,000 one-character fixes against the
//! checksum recovers it. We accept that (as GitHub's scanners do): tokens
//! are pasted, not typed, and the near misses a repository holds are
//! examples and fixtures, whose noise would bury the real findings.
//!
//! gitleaks matches a regular expression and cannot compute a checksum, so
//! its rule matches token-shaped strings whose checksum fails, and no
//! `entropy` setting or allowlist can tell them apart.
//!
//! `tests/secret_scanners.rs` runs detect-secrets 1.5.0 with the documented
//! command over planted tokens and 10,000 near misses, and the gitleaks
//! rule's regex over the same files.

use crate::scope::ScopeKind;
use crate::token::{BASE62, CHECKSUM_LEN, ID_LEN, TokenFormat, kind_letter};

/// The detect-secrets module, with `{{placeholders}}` for the format.
const DETECT_SECRETS_TEMPLATE: &str = include_str!("../scanner-rules/detect_secrets_plugin.py");
/// The gitleaks config, with `{{placeholders}}` for the format.
const GITLEAKS_TEMPLATE: &str = include_str!("../scanner-rules/gitleaks.toml");

impl TokenFormat {
    /// The Python source of a detect-secrets (1.5) module for this format's
    /// tokens: a plugin class, `<Prefix>TokenDetector`, that reports every
    /// token whose CRC32 checksum holds, and a filter function,
    /// `is_damaged_token`, that drops near misses whichever plugin flagged
    /// them. Save it as `<prefix>_tokens.py` and scan with both:
    ///
    /// ```text
    /// detect-secrets scan --plugin acme_tokens.py \
    ///     --filter ./acme_tokens.py::is_damaged_token [path ...]
    /// ```
    ///
    /// The plugin alone finds the tokens, but detect-secrets' high-entropy
    /// plugins would still flag strings that merely look like them. The
    /// filter drops a string laid out like a token, or one character away
    /// from that layout, whose checksum fails; every other finding of the
    /// default plugins stays. (detect-secrets reads a filter's path as a
    /// URL: without a directory part such as `./` it cannot find it.)
    ///
    /// The plugin checks what [`parse`](Self::parse) checks, computing the
    /// CRC32 with Python's `zlib.crc32` and the same base62 digits. A token
    /// whose checksum holds is reported even if no token has its id: a
    /// scanner cannot tell it from a live one.
    ///
    /// ```
    /// let format = api_tokens::TokenFormat::new("acme")?;
    /// let plugin = format.detect_secrets_plugin();
    /// assert!(plugin.contains("class AcmeTokenDetector(RegexBasedDetector):"));
    /// assert!(plugin.contains("def is_damaged_token(secret: str) -> bool:"));
    /// # Ok::<(), api_tokens::PrefixError>(())
    /// ```
    pub fn detect_secrets_plugin(&self) -> String {
        let prefix = self.prefix();
        // A prefix is `[a-z][a-z0-9]*`, so capitalized it starts a valid
        // Python class name.
        let mut class_name = prefix[..1].to_ascii_uppercase();
        class_name.push_str(&prefix[1..]);
        class_name.push_str("TokenDetector");
        let kind_letters: String = KINDS
            .iter()
            .map(|&kind| char::from(kind_letter(kind)))
            .collect();
        fill(
            DETECT_SECRETS_TEMPLATE,
            &[
                ("prefix", prefix),
                ("version", env!("CARGO_PKG_VERSION")),
                ("class_name", &class_name),
                ("kind_letters", &kind_letters),
                ("id_len", &ID_LEN.to_string()),
                ("checksum_len", &CHECKSUM_LEN.to_string()),
                ("token_len", &self.token_len().to_string()),
                // The digits are ASCII, so this is lossless.
                ("base62", &String::from_utf8_lossy(BASE62)),
                ("regex", &self.scanner_pattern()),
            ],
        )
    }

    /// What the scanner rules search for: [`regex_pattern`](Self::regex_pattern)
    /// without its word boundaries, so that a token glued to other text is
    /// found too (`?token%3Dacmeo_…` in an access log, `\nacmeo_…` in an
    /// escaped log line), as [`find_tokens`](Self::find_tokens) finds it.
    /// The leftmost 66 characters shaped like a token are the match; the
    /// checksum tells a token from a look-alike.
    pub(crate) fn scanner_pattern(&self) -> String {
        self.regex_pattern().replace(r"\b", "")
    }

    /// A gitleaks config (TOML) that keeps gitleaks' default rules and adds
    /// one for this format's tokens, `<prefix>-api-token`, whose regex is
    /// [`regex_pattern`](Self::regex_pattern) without its word boundaries
    /// (a token glued to other text is found too). Save it as
    /// `<prefix>-gitleaks.toml` and pass it with `--config`.
    ///
    /// gitleaks cannot check the checksum, so a token-shaped string whose
    /// checksum fails matches too; the detect-secrets plugin
    /// ([`detect_secrets_plugin`](Self::detect_secrets_plugin)) does not.
    ///
    /// ```
    /// let format = api_tokens::TokenFormat::new("acme")?;
    /// let config = format.gitleaks_config();
    /// assert!(config.contains(r"regex = '''acme[od]_[0-9A-Za-z]{60}'''"));
    /// assert!(config.contains(r#"keywords = ["acmeo_", "acmed_"]"#));
    /// # Ok::<(), api_tokens::PrefixError>(())
    /// ```
    pub fn gitleaks_config(&self) -> String {
        let prefix = self.prefix();
        // gitleaks runs a rule's regex only on text holding a keyword: the
        // token heads, which every token starts with.
        let keywords = KINDS
            .iter()
            .map(|&kind| format!("\"{prefix}{}_\"", char::from(kind_letter(kind))))
            .collect::<Vec<_>>()
            .join(", ");
        fill(
            GITLEAKS_TEMPLATE,
            &[
                ("prefix", prefix),
                ("version", env!("CARGO_PKG_VERSION")),
                ("regex", &self.scanner_pattern()),
                ("keywords", &keywords),
            ],
        )
    }
}

/// Every scope kind, in the order their letters appear in the rules.
const KINDS: [ScopeKind; 2] = [ScopeKind::Organization, ScopeKind::Domain];

/// `template` with each `{{name}}` replaced by its value. The values are
/// the format's own (a `[a-z0-9]` prefix, digits, the pattern), so none
/// needs quoting in Python's raw strings or TOML's literal strings.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut text = template.to_owned();
    for (name, value) in values {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_for_every_prefix_shape() {
        for prefix in ["ab", "acme", "x9", "abcdefghij"] {
            let format = TokenFormat::new(prefix).unwrap();
            for text in [format.detect_secrets_plugin(), format.gitleaks_config()] {
                assert!(!text.contains("{{") && !text.contains("}}"), "{prefix}");
                assert!(text.contains(&format.scanner_pattern()), "{prefix}");
            }
        }
    }

    #[test]
    fn the_plugin_states_the_formats_numbers() {
        let plugin = TokenFormat::new("x9").unwrap().detect_secrets_plugin();
        for line in [
            "PREFIX = \"x9\"",
            "KIND_LETTERS = \"od\"",
            "ID_LEN = 11",
            "CHECKSUM_LEN = 6",
            "TOKEN_LEN = 64",
            "BASE62 = \"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\"",
            "class X9TokenDetector(RegexBasedDetector):",
            "    secret_type = \"x9 API token\"",
        ] {
            assert!(plugin.lines().any(|l| l == line), "{line}");
        }
    }
}
