//! `check`: what the holder of a token may already know about it, and
//! nothing more.
//!
//! It says whether the token verifies (valid, revoked, expired, disabled
//! or invalid) and, once its secret matched, its scope, role and expiry:
//! never its label, creator, restrictions' details or any other token.
//! It goes through the service's own `verify`, with last-used tracking off,
//! so a check is not recorded as a use of the token.
//!
//! A token with an allowlist of client networks: `verify` refuses it
//! without a client address (it fails closed), and this program has no
//! client address to give, so `check` reports it as valid *and accepted
//! only from its allowed networks*, without judging any address. The
//! service's own refusal is an audit event (`address_refused`, no client),
//! which lands in the audit log like every other.

use std::io::Read as _;

use api_tokens::{ExpiryPolicy, Role, Scope, VerifyError, Zeroizing};
use clap::Args;
use serde_json::json;
use time::OffsetDateTime;

use crate::failure::{Failure, with_causes};
use crate::output::{self, Report};
use crate::session::{Global, Keys, Session};
use crate::tokens::store_failure;

/// The most read from stdin for one token: a token is under 100
/// characters; anything much longer is not one.
const MAX_TOKEN_INPUT: u64 = 4096;

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    /// The token, or - to read it from stdin (better: an argument lands in
    /// your shell history).
    token: String,
}

/// What `check` found, after the secret matched.
struct Found {
    scope: Scope,
    role: Role,
    expires_at: Option<OffsetDateTime>,
}

pub(crate) async fn check(args: &CheckArgs, global: &Global) -> Result<Report, Failure> {
    let token = read_token(&args.token)?;
    let session = Session::open(global, Keys::Needed, ExpiryPolicy::default()).await?;
    let outcome = async {
        let verified = session.service.verify(token.trim()).await;
        let (status, found, networks_only) = match verified {
            Ok(token) => {
                let found = Found {
                    scope: token.scope().clone(),
                    role: token.role(),
                    expires_at: token.expires_at(),
                };
                ("valid", Some(found), false)
            }
            // Refused only once the secret matched and the token is live.
            Err(VerifyError::AddressNotAllowed) => ("valid", found(&session, &token).await?, true),
            Err(VerifyError::Revoked) => ("revoked", found(&session, &token).await?, false),
            Err(VerifyError::Expired) => ("expired", found(&session, &token).await?, false),
            Err(VerifyError::Disabled) => ("disabled", found(&session, &token).await?, false),
            Err(VerifyError::Invalid) => ("invalid", None, false),
            Err(VerifyError::Malformed(error)) => {
                return Err(Failure::input(format!(
                    "not a token of this service: {error}"
                )));
            }
            Err(VerifyError::Store(error)) => return Err(store_failure(&error)),
            Err(error) => return Err(Failure::store(with_causes(&error))),
        };
        Ok(report(status, found.as_ref(), networks_only))
    }
    .await;
    session.finish(outcome).await
}

/// The token's scope, role and expiry, read from the store: called only
/// after verification matched its secret, so the holder learns only what
/// the token itself grants. `None` if it was deleted in between.
async fn found(session: &Session, token: &str) -> Result<Option<Found>, Failure> {
    let Ok(parsed) = session.service.format().parse(token.trim()) else {
        return Ok(None);
    };
    let credential = session
        .store
        .find_credential(parsed.id())
        .await
        .map_err(|error| store_failure(&error))?;
    Ok(credential.map(|credential| Found {
        scope: (*credential.scope).clone(),
        role: credential.role,
        expires_at: credential.expires_at,
    }))
}

fn report(status: &str, found: Option<&Found>, networks_only: bool) -> Report {
    let valid = status == "valid";
    let mut text = status.to_owned();
    let mut json = json!({ "status": status, "valid": valid });
    if let Some(found) = found {
        text.push_str(&format!(
            ": {} at {}, expires {}",
            found.role,
            found.scope,
            output::expiry(found.expires_at)
        ));
        json["scope"] = output::json(&found.scope);
        json["role"] = output::json(found.role);
        json["expires_at"] = output::json(found.expires_at.map(output::exact));
    }
    if valid {
        json["allowed_networks_only"] = json!(networks_only);
    }
    if networks_only {
        text.push_str("; accepted only from its allowed networks (no address is checked here)");
    }
    text.push('\n');
    Report::new(text, json).code(if valid { 0 } else { 1 })
}

/// The token from the argument, or from stdin for `-`; in memory that is
/// wiped when done.
fn read_token(argument: &str) -> Result<Zeroizing<String>, Failure> {
    if argument != "-" {
        return Ok(Zeroizing::new(argument.to_owned()));
    }
    let mut text = Zeroizing::new(String::with_capacity(MAX_TOKEN_INPUT as usize + 1));
    std::io::stdin()
        .take(MAX_TOKEN_INPUT + 1)
        .read_to_string(&mut text)
        .map_err(|error| Failure::input(format!("cannot read the token from stdin: {error}")))?;
    if text.len() as u64 > MAX_TOKEN_INPUT {
        return Err(Failure::input(format!(
            "stdin holds more than {MAX_TOKEN_INPUT} bytes: give one token"
        )));
    }
    if text.trim().is_empty() {
        return Err(Failure::input("stdin holds no token"));
    }
    Ok(text)
}
