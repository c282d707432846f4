//! `revoke-leaked`: every token of this service found in a text (a paste,
//! a log, a commit) whose secret matches a live token is revoked, with the
//! operator as the actor and the text's source as the reason.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use api_tokens::{ExpiryPolicy, Label, MAX_LEAKED_TOKENS, RevokeLeakedError, TokenId, Zeroizing};
use clap::Args;
use serde_json::json;

use crate::failure::{Failure, with_causes};
use crate::output::{self, Report};
use crate::session::{Global, Keys, Session};
use crate::tokens::store_failure;

/// The most text read: 16 MiB, about a quarter of a million tokens. A
/// larger file is refused (split it): the whole text is held in memory.
pub(crate) const MAX_LEAKED_INPUT: u64 = 16 * 1024 * 1024;

/// The longest file name a default source quotes: a source follows a
/// label's rules (at most 100 characters).
const MAX_SOURCE_NAME: usize = 80;

#[derive(Args, Debug)]
pub(crate) struct RevokeLeakedArgs {
    /// The file holding the leaked text, or - for stdin.
    file: String,
    /// Where the text came from, kept as each revocation's reason
    /// [default: cli:<file name>].
    #[arg(long)]
    source: Option<String>,
}

pub(crate) async fn revoke_leaked(
    args: &RevokeLeakedArgs,
    global: &Global,
) -> Result<Report, Failure> {
    let operator = global.operator()?;
    let text = read_text(&args.file)?;
    let source = match &args.source {
        Some(source) => source.clone(),
        None => default_source(&args.file),
    };
    // Checked before anything is read from the store, whatever the text
    // holds: a bad --source is bad input even in a text without tokens.
    Label::new(&source).map_err(|error| Failure::input(format!("--source: {error}")))?;
    let session = Session::open(global, Keys::Needed, ExpiryPolicy::default()).await?;
    let outcome = async {
        // Each distinct token once, in order, sent in parts of at most
        // MAX_LEAKED_TOKENS: the service looks at no more per call.
        let mut seen = HashSet::new();
        let tokens: Vec<&str> = session
            .service
            .format()
            .find_tokens(&text)
            .into_iter()
            .map(|found| &text[found.range])
            .filter(|token| seen.insert(*token))
            .collect();
        let job = session.service.operator(operator.clone());
        let mut revoked: Vec<TokenId> = Vec::new();
        for part in tokens.chunks(MAX_LEAKED_TOKENS) {
            let part = Zeroizing::new(part.join("\n"));
            match job.revoke_leaked(&part, &source).await {
                Ok(leaked) => revoked.extend(leaked.revoked),
                Err(RevokeLeakedError::InvalidSource(error)) => {
                    return Err(Failure::input(format!("--source: {error}")));
                }
                Err(RevokeLeakedError::Store(error)) => {
                    let mut failure = store_failure(&error);
                    failure.message = format!(
                        "{}; at least {} tokens were revoked before: run it again to finish",
                        failure.message,
                        revoked.len()
                    );
                    return Err(failure);
                }
                Err(error) => return Err(Failure::store(with_causes(&error))),
            }
        }
        let mut text = format!(
            "found {} tokens of this service; revoked {}\n",
            tokens.len(),
            revoked.len()
        );
        for id in &revoked {
            text.push_str(&format!("{id}\n"));
        }
        Ok(Report::new(
            text,
            json!({ "found": tokens.len(), "revoked": output::json(&revoked) }),
        ))
    }
    .await;
    session.finish(outcome).await
}

/// `cli:<file name>`, or `cli:stdin`.
fn default_source(file: &str) -> String {
    if file == "-" {
        return "cli:stdin".to_owned();
    }
    let name = Path::new(file)
        .file_name()
        .map_or_else(|| file.into(), |name| name.to_string_lossy());
    let name: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SOURCE_NAME)
        .collect();
    format!("cli:{name}")
}

/// The text, from the file or stdin, in memory that is wiped when done
/// (it may hold live tokens). Bytes that are not UTF-8 are replaced: a
/// token is ASCII.
fn read_text(file: &str) -> Result<Zeroizing<String>, Failure> {
    let mut bytes = Zeroizing::new(Vec::new());
    let read = if file == "-" {
        std::io::stdin()
            .take(MAX_LEAKED_INPUT + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file)
            .and_then(|opened| opened.take(MAX_LEAKED_INPUT + 1).read_to_end(&mut bytes))
    };
    read.map_err(|error| Failure::input(format!("cannot read {file}: {error}")))?;
    if bytes.len() as u64 > MAX_LEAKED_INPUT {
        return Err(Failure::input(format!(
            "{file} holds more than {} MiB: split it and run once per part",
            MAX_LEAKED_INPUT / (1024 * 1024)
        )));
    }
    Ok(Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()))
}
