//! `keygen`: a new hash key, as the entry to put in `API_TOKENS_KEYS`.

use api_tokens::{HashKey, KeyId, Zeroizing};
use clap::Args;
use serde_json::json;

use crate::failure::{Failure, with_causes};
use crate::output::Report;
use crate::session::{KEYS_VAR, keys_from_env};

#[derive(Args, Debug)]
pub(crate) struct KeygenArgs {
    /// The new key's id [default: one above the highest in API_TOKENS_KEYS,
    /// or 1 without it].
    #[arg(long)]
    id: Option<KeyId>,
}

/// Prints `<id>:<64 hex digits>` on stdout, and on stderr how to add it to
/// a ring. Nothing else keeps the key: it is printed this once.
pub(crate) fn run(args: &KeygenArgs) -> Result<Report, Failure> {
    let existing = std::env::var_os(KEYS_VAR).is_some();
    let id = match args.id {
        Some(id) => id,
        None if existing => {
            let highest = keys_from_env()?
                .key_ids()
                .map(KeyId::get)
                .max()
                .unwrap_or(0);
            let next = highest.checked_add(1).ok_or_else(|| {
                Failure::input(format!(
                    "{KEYS_VAR} already holds the highest key id: give one with --id"
                ))
            })?;
            KeyId::new(next)
        }
        None => KeyId::new(1),
    };
    let key = HashKey::generate_text().map_err(|error| Failure::store(with_causes(&error)))?;
    let mut entry = Zeroizing::new(String::with_capacity(12 + key.len()));
    entry.push_str(&id.to_string());
    entry.push(':');
    entry.push_str(&key);
    let note = if existing {
        format!(
            "Put this entry first in {KEYS_VAR} and keep the entries after it: \
             {KEYS_VAR}=\"{id}:<new key>,<the entries you have>\". New tokens are then \
             hashed with key {id}; tokens hashed with the older keys keep verifying as long \
             as their entries stay. Give your service the same value."
        )
    } else {
        format!(
            "Set {KEYS_VAR} to this entry, here and in your service. To add a key to an \
             existing ring, run keygen with {KEYS_VAR} set (or --id <unused id>) and put the \
             new entry first: {KEYS_VAR}=\"<new entry>,<the entries you have>\"."
        )
    };
    Ok(Report::new(
        format!("{}\n", entry.as_str()),
        json!({ "key_id": id, "entry": entry.as_str() }),
    )
    .note(note))
}
