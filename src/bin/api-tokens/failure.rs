//! Why a command did not succeed, and the exit code that says so.

use std::fmt;

/// The exit codes, as `--help` and the README list them.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  done (for `check`: the token is valid)
  1  what was asked about is not so: `check` found the token invalid,
     revoked, expired or disabled; `show`, `revoke` or `rotate` found no
     such token, or `rotate` found it revoked, expired or replaced
  2  bad input or setup, and nothing was changed: a usage error, a bad or
     unreachable database URL, a database not migrated, a bad or missing
     API_TOKENS_KEYS, a token of another format, a bad scope, label,
     duration or operator name, a leaked-text file that cannot be read
     or is over 16 MiB, an audit log that cannot be opened
  3  the store failed during the operation, or the audit trail could not
     be written: what the message says was done stays done; run it again";

/// A command that could not do what was asked: its exit code and a message
/// for stderr. No message holds a token, a key or a database password.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    /// Exit code 1: what was asked about is not so.
    pub(crate) fn not_so(message: impl fmt::Display) -> Self {
        Failure {
            code: 1,
            message: message.to_string(),
        }
    }

    /// Exit code 2: bad input or setup; nothing was changed.
    pub(crate) fn input(message: impl fmt::Display) -> Self {
        Failure {
            code: 2,
            message: message.to_string(),
        }
    }

    /// Exit code 3: the store (or the audit log) failed mid-operation.
    pub(crate) fn store(message: impl fmt::Display) -> Self {
        Failure {
            code: 3,
            message: message.to_string(),
        }
    }
}

/// `error` with its chain of causes, `: `-separated: the library's errors
/// say what went wrong on top and keep the driver's detail as a source.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// `text` with every run of 40 or more word characters cut to its first 8:
/// nothing that long is a word a person wrote, and a token (of any
/// service's format) or a key is always that long. Used on messages this
/// program does not write itself (the argument parser's, which quote what
/// was typed).
pub(crate) fn mask_long_words(text: &str) -> String {
    const LONG: usize = 40;
    let mut masked = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, masked: &mut String| {
        if word.chars().count() >= LONG {
            masked.extend(word.chars().take(8));
            masked.push_str("…[masked]");
        } else {
            masked.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '+' || c == '/' || c == '=' {
            word.push(c);
        } else {
            flush(&mut word, &mut masked);
            masked.push(c);
        }
    }
    flush(&mut word, &mut masked);
    masked
}
