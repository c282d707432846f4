//! What a command prints: text for a person, or one JSON document for a
//! script, and a note on stderr.

use std::fmt::Write as _;

use api_tokens::{TokenStatus, TokenSummary};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A command's outcome: exit code 0, or 1 when what was asked about is
/// not so (`check` on a token that does not verify).
pub(crate) struct Report {
    pub(crate) code: u8,
    /// Printed on stdout without `--json`.
    pub(crate) text: String,
    /// Printed on stdout with `--json`.
    pub(crate) json: Value,
    /// Printed on stderr either way: guidance, never data.
    pub(crate) note: Option<String>,
}

impl Report {
    pub(crate) fn new(text: String, json: Value) -> Self {
        Report {
            code: 0,
            text,
            json,
            note: None,
        }
    }

    #[must_use]
    pub(crate) fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    #[must_use]
    pub(crate) fn code(mut self, code: u8) -> Self {
        self.code = code;
        self
    }
}

/// `at` in RFC 3339 to the second, for a person to read.
pub(crate) fn time(at: OffsetDateTime) -> String {
    exact(at.replace_nanosecond(0).unwrap_or(at))
}

/// `at` in RFC 3339 to the microsecond, as records keep it: for JSON.
pub(crate) fn exact(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// An expiry as text: the time, or `never`.
pub(crate) fn expiry(at: Option<OffsetDateTime>) -> String {
    at.map_or_else(|| "never".to_owned(), time)
}

pub(crate) fn status(status: TokenStatus) -> &'static str {
    match status {
        TokenStatus::Active => "active",
        TokenStatus::Disabled => "disabled",
        TokenStatus::Expired => "expired",
        TokenStatus::Revoked => "revoked",
    }
}

/// `value` as JSON; what this program serializes always can be.
pub(crate) fn json(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// One token's details, a line per fact.
pub(crate) fn details(token: &TokenSummary) -> String {
    let mut text = String::new();
    let mut line = |name: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(text, "{name:<16}{value}");
    };
    line("id", &token.id);
    line("hint", &token.hint);
    line("label", &token.label);
    line("scope", &token.scope);
    line("role", &token.role);
    line("status", &status(token.status));
    line(
        "created",
        &format_args!("{} by {}", time(token.created_at), token.created_by),
    );
    line("expires", &expiry(token.expires_at));
    line(
        "last used",
        &expiry(token.last_used_at).replace("never", "not recorded"),
    );
    if let Some(revoked) = &token.revoked {
        match &revoked.reason {
            Some(reason) => line(
                "revoked",
                &format_args!("{} by {} ({reason})", time(revoked.at), revoked.by),
            ),
            None => line(
                "revoked",
                &format_args!("{} by {}", time(revoked.at), revoked.by),
            ),
        }
    }
    if let Some(disabled) = &token.disabled {
        line(
            "disabled",
            &format_args!("{} by {}", time(disabled.at), disabled.by),
        );
    }
    if let Some(from) = token.rotated_from {
        line("rotated from", &from);
    }
    if let Some(by) = token.replaced_by {
        line("replaced by", &by);
    }
    let restrictions = &token.restrictions;
    if let Some(permissions) = &restrictions.permissions {
        line("permissions", &join(permissions));
    }
    if let Some(networks) = &restrictions.allowed_networks {
        line("allowed from", &join(networks));
    }
    if let Some(limit) = restrictions.rate_limit {
        line("rate limit", &limit);
    }
    text
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
