//! Ending tokens: `revoke`, `revoke-scope`, `revoke-by-creator`, `purge`.

use std::time::Duration;

use api_tokens::{
    ActorId, ExpiryPolicy, RevokeCreatedByError, RevokeError, RevokeScopeError, Revoked, TokenId,
};
use clap::Args;
use serde_json::json;

use crate::durations;
use crate::failure::{Failure, with_causes};
use crate::output::{self, Report};
use crate::session::{Global, Keys, Session};
use crate::tokens::{ScopeArgs, scope_of, store_failure, token_id};

#[derive(Args, Debug)]
pub(crate) struct RevokeArgs {
    /// The token's id (from `list`).
    id: String,
    /// Why, kept with the revocation.
    #[arg(long)]
    reason: Option<String>,
}

/// Revokes one token. Revoking a revoked token changes nothing, says so
/// and succeeds.
pub(crate) async fn revoke(args: &RevokeArgs, global: &Global) -> Result<Report, Failure> {
    let operator = global.operator()?;
    let id = token_id(&args.id)?;
    let session = Session::open(global, Keys::NotNeeded, ExpiryPolicy::default()).await?;
    let outcome = async {
        let scope = scope_of(&*session.store, id).await?;
        let actor = Session::owner_of(&operator, &scope);
        let revoked = session
            .service
            .revoke_because(&actor, &scope, id, args.reason.as_deref())
            .await;
        match revoked {
            Ok(Revoked::Now(revocation)) => Ok(Report::new(
                format!("revoked {id} ({scope})\n"),
                json!({ "id": id, "revoked": true, "revocation": output::json(&revocation) }),
            )),
            Ok(Revoked::Already(revocation)) => Ok(Report::new(
                format!(
                    "{id} was already revoked, at {} by {}\n",
                    output::time(revocation.at),
                    revocation.by
                ),
                json!({ "id": id, "revoked": false, "revocation": output::json(&revocation) }),
            )),
            Err(RevokeError::NotFound { id }) => Err(Failure::not_so(format!("no token {id}"))),
            Err(RevokeError::InvalidReason(error)) => {
                Err(Failure::input(format!("--reason: {error}")))
            }
            Err(RevokeError::Store(error)) => Err(store_failure(&error)),
            Err(error) => Err(Failure::store(with_causes(&error))),
        }
    }
    .await;
    session.finish(outcome).await
}

#[derive(Args, Debug)]
pub(crate) struct RevokeScopeArgs {
    #[command(flatten)]
    scope: ScopeArgs,
    /// Why, kept with each revocation.
    #[arg(long)]
    reason: Option<String>,
}

/// Revokes every live token of a scope (an organization's domains' too).
pub(crate) async fn revoke_scope(
    args: &RevokeScopeArgs,
    global: &Global,
) -> Result<Report, Failure> {
    let operator = global.operator()?;
    let scope = args.scope.scope()?;
    let session = Session::open(global, Keys::NotNeeded, ExpiryPolicy::default()).await?;
    let actor = Session::owner_of(&operator, &scope);
    let outcome = match session
        .service
        .revoke_scope(&actor, &scope, args.reason.as_deref())
        .await
    {
        Ok(revoked) => Ok(counted(
            &format!("revoked {} tokens of {scope}", revoked.count),
            revoked.count,
            &revoked.first,
        )),
        Err(RevokeScopeError::InvalidReason(error)) => {
            Err(Failure::input(format!("--reason: {error}")))
        }
        Err(RevokeScopeError::Store(error)) => Err(store_failure(&error)),
        Err(error) => Err(Failure::store(with_causes(&error))),
    };
    session.finish(outcome).await
}

/// A count of tokens and the first of their ids.
fn counted(headline: &str, count: u64, first: &[TokenId]) -> Report {
    let mut text = format!("{headline}\n");
    for id in first {
        text.push_str(&format!("{id}\n"));
    }
    if count > first.len() as u64 {
        text.push_str(&format!("… and {} more\n", count - first.len() as u64));
    }
    Report::new(
        text,
        json!({ "count": count, "first": output::json(first) }),
    )
}

#[derive(Args, Debug)]
pub(crate) struct RevokeByCreatorArgs {
    /// Whose tokens: the creator's id, as lists show it.
    creator: String,
    /// Why, kept with each revocation.
    #[arg(long)]
    reason: Option<String>,
}

/// Revokes every token one person issued, in every scope: offboarding.
pub(crate) async fn revoke_by_creator(
    args: &RevokeByCreatorArgs,
    global: &Global,
) -> Result<Report, Failure> {
    let operator = global.operator()?;
    let creator = ActorId::new(&args.creator)
        .map_err(|error| Failure::input(format!("the creator: {error}")))?;
    let session = Session::open(global, Keys::NotNeeded, ExpiryPolicy::default()).await?;
    let outcome = match session
        .service
        .operator(operator)
        .revoke_created_by(&creator, args.reason.as_deref())
        .await
    {
        Ok(revoked) => Ok(counted(
            &format!("revoked {} tokens created by {creator}", revoked.count),
            revoked.count,
            &revoked.first,
        )),
        Err(RevokeCreatedByError::InvalidReason(error)) => {
            Err(Failure::input(format!("--reason: {error}")))
        }
        Err(RevokeCreatedByError::Store(error)) => Err(store_failure(&error)),
        Err(error) => Err(Failure::store(with_causes(&error))),
    };
    session.finish(outcome).await
}

#[derive(Args, Debug)]
pub(crate) struct PurgeArgs {
    /// Delete tokens that were revoked or expired longer ago than this.
    #[arg(long, value_parser = durations::parse, value_name = "DURATION")]
    older_than: Duration,
}

/// Deletes ended tokens. The audit event (`purged`) has no actor of its
/// own; the audit log's `operator` field names who ran it.
pub(crate) async fn purge(args: &PurgeArgs, global: &Global) -> Result<Report, Failure> {
    global.operator()?;
    let session = Session::open(global, Keys::NotNeeded, ExpiryPolicy::default()).await?;
    let outcome = match session.service.purge(args.older_than).await {
        Ok(count) => Ok(Report::new(
            format!("purged {count} tokens\n"),
            json!({ "count": count }),
        )),
        Err(error) => Err(store_failure(&error)),
    };
    session.finish(outcome).await
}
