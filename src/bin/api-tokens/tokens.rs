//! Tokens one at a time: `issue`, `list`, `show`, `rotate`.

use std::time::Duration;

use api_tokens::store::ScopeFilter;
use api_tokens::{
    Cursor, DomainId, ExpiryPolicy, IssueError, IssueRequest, IssuedToken, LookupError,
    OrganizationId, PageRequest, Role, RotateError, Scope, StoreError, TokenId, TokenStore,
};
use clap::Args;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::durations;
use crate::failure::{Failure, with_causes};
use crate::output::{self, Report};
use crate::session::{Global, Keys, Session};

/// A scope on the command line: `--org <org>`, with `--domain <domain>`
/// for one of its domains.
#[derive(Args, Debug)]
pub(crate) struct ScopeArgs {
    /// The organization.
    #[arg(long)]
    org: String,
    /// One domain of the organization [default: the organization itself].
    #[arg(long)]
    domain: Option<String>,
}

impl ScopeArgs {
    pub(crate) fn scope(&self) -> Result<Scope, Failure> {
        scope(&self.org, self.domain.as_deref())
    }
}

fn scope(org: &str, domain: Option<&str>) -> Result<Scope, Failure> {
    let org =
        OrganizationId::new(org).map_err(|error| Failure::input(format!("--org: {error}")))?;
    match domain {
        None => Ok(Scope::organization(org)),
        Some(domain) => {
            let domain = DomainId::new(domain)
                .map_err(|error| Failure::input(format!("--domain: {error}")))?;
            Ok(Scope::domain(org, domain))
        }
    }
}

/// A token id as lists show it.
pub(crate) fn token_id(text: &str) -> Result<TokenId, Failure> {
    text.parse().map_err(|error| {
        Failure::input(format!(
            "{error} (the ID column of `api-tokens list`, not the token itself)"
        ))
    })
}

/// The scope of token `id`, as the store has it: commands that address a
/// token by id need not be told its scope.
///
/// # Errors
///
/// Exit code 1 when there is no such token, 3 when the store fails.
pub(crate) async fn scope_of(store: &dyn TokenStore, id: TokenId) -> Result<Scope, Failure> {
    match store.find_credential(id).await {
        Ok(Some(credential)) => Ok((*credential.scope).clone()),
        Ok(None) => Err(Failure::not_so(format!("no token {id}"))),
        // A damaged row whose scope could be read: revocable, and shown as
        // damaged.
        Err(StoreError::Corrupt {
            scope: Some(scope), ..
        }) => Ok(scope),
        Err(error) => Err(store_failure(&error)),
    }
}

pub(crate) fn store_failure(error: &StoreError) -> Failure {
    Failure::store(with_causes(error))
}

/// When a new token stops verifying. The command line does not know your
/// service's expiry policy, so it asks every time.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub(crate) struct ExpiryArgs {
    /// Expire this long after issue: 45s, 30m, 12h, 90d, 2w.
    #[arg(long, value_parser = durations::parse, value_name = "DURATION")]
    expires_in: Option<Duration>,
    /// Expire at this time (RFC 3339, e.g. 2027-01-31T00:00:00Z).
    #[arg(long, value_parser = rfc3339, value_name = "TIME")]
    expires_at: Option<OffsetDateTime>,
    /// Never expire.
    #[arg(long)]
    never_expires: bool,
}

fn rfc3339(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| "a time is RFC 3339, like 2027-01-31T00:00:00Z".to_owned())
}

#[derive(Args, Debug)]
pub(crate) struct IssueArgs {
    #[command(flatten)]
    scope: ScopeArgs,
    /// What the token is for.
    #[arg(long)]
    label: String,
    /// The role it grants.
    #[arg(long, default_value = "viewer")]
    role: Role,
    #[command(flatten)]
    expiry: ExpiryArgs,
    /// Accept it only from this network (CIDR; repeat for more).
    #[arg(long = "allow-network", value_name = "CIDR")]
    allowed_networks: Vec<String>,
}

/// Issues a token as the operator. Text output is the token alone on
/// stdout (so `TOKEN=$(api-tokens issue …)` works), its details on stderr.
pub(crate) async fn issue(args: &IssueArgs, global: &Global) -> Result<Report, Failure> {
    let operator = global.operator()?;
    let scope = args.scope.scope()?;
    let mut request = IssueRequest::new(scope.clone(), args.label.clone()).role(args.role);
    let expiry = &args.expiry;
    request = match (expiry.expires_in, expiry.expires_at) {
        (Some(lifetime), _) => request.expires_in(lifetime),
        (None, Some(at)) => request.expires_at(at),
        (None, None) => request.never_expires(),
    };
    if !args.allowed_networks.is_empty() {
        request = request.allowed_networks(args.allowed_networks.iter().cloned());
    }
    let session = Session::open(global, Keys::Needed, ExpiryPolicy::default()).await?;
    let actor = Session::owner_of(&operator, &scope);
    let outcome = match session.service.issue(&actor, request).await {
        Ok(issued) => Ok(issued_report("Issued", &issued)),
        Err(IssueError::Store(error)) => Err(store_failure(&error)),
        Err(IssueError::RandomSource(error)) => Err(Failure::store(with_causes(&error))),
        Err(error) => Err(Failure::input(with_causes(&error))),
    };
    session.finish(outcome).await
}

fn issued_report(what: &str, issued: &IssuedToken) -> Report {
    let token = issued.token.expose_secret();
    let summary = &issued.summary;
    Report::new(
        format!("{token}\n"),
        json!({ "token": token, "summary": output::json(summary) }),
    )
    .note(format!(
        "{what} {} ({} at {}, expires {}). This is the only time the token is shown: \
         store it now.",
        summary.id,
        summary.role,
        summary.scope,
        output::expiry(summary.expires_at)
    ))
}

#[derive(Args, Debug)]
pub(crate) struct ListArgs {
    /// Only this organization's tokens, its domains' included [default:
    /// every token].
    #[arg(long)]
    org: Option<String>,
    /// Only this domain's tokens (with --org).
    #[arg(long, requires = "org")]
    domain: Option<String>,
    /// How many tokens to show, newest first.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    limit: u16,
    /// Go on from where a previous list ended (the cursor it printed).
    #[arg(long, value_name = "CURSOR")]
    after: Option<Cursor>,
}

/// One page of tokens, newest first, across scopes: the operator's view,
/// through the service's operator handle.
pub(crate) async fn list(args: &ListArgs, global: &Global) -> Result<Report, Failure> {
    let filter = match &args.org {
        None => ScopeFilter::All,
        Some(org) => ScopeFilter::Covered(scope(org, args.domain.as_deref())?),
    };
    let limit = usize::from(args.limit);
    let page = match &args.after {
        Some(cursor) => PageRequest::after(*cursor, limit),
        None => PageRequest::first(limit),
    };
    let session = Session::open(global, Keys::NotNeeded, ExpiryPolicy::default()).await?;
    let listed = session
        .service
        .operator(session.reader().clone())
        .list(&filter, page)
        .await;
    let outcome = listed
        .map_err(|error| Failure::store(with_causes(&error)))
        .map(|page| {
            let mut text = format!(
                "{:<12} {:<8} {:<7} {:<20} {:<24} {}\n",
                "ID", "STATUS", "ROLE", "EXPIRES", "SCOPE", "LABEL"
            );
            for token in &page.tokens {
                text.push_str(&format!(
                    "{:<12} {:<8} {:<7} {:<20} {:<24} {}\n",
                    token.id,
                    output::status(token.status),
                    token.role,
                    output::expiry(token.expires_at),
                    token.scope,
                    token.label
                ));
            }
            for damaged in &page.damaged {
                let id = damaged
                    .id
                    .map_or_else(|| "?".to_owned(), |id| id.to_string());
                text.push_str(&format!("{id:<12} damaged: {}\n", damaged.problem));
            }
            let json = json!({
                "tokens": output::json(&page.tokens),
                "damaged": output::json(&page.damaged),
                "next": page.next.as_ref().map(ToString::to_string),
            });
            let report = Report::new(text, json);
            match &page.next {
                Some(next) => report.note(format!("more: --after {next}")),
                None => report,
            }
        });
    session.finish(outcome).await
}

#[derive(Args, Debug)]
pub(crate) struct ShowArgs {
    /// The token's id (from `list`).
    id: String,
}

/// One token's details.
pub(crate) async fn show(args: &ShowArgs, global: &Global) -> Result<Report, Failure> {
    let id = token_id(&args.id)?;
    let session = Session::open(global, Keys::NotNeeded, ExpiryPolicy::default()).await?;
    let outcome = async {
        let scope = scope_of(&*session.store, id).await?;
        let actor = Session::owner_of(session.reader(), &scope);
        match session.service.lookup(&actor, &scope, id).await {
            Ok(token) => Ok(Report::new(output::details(&token), output::json(&token))),
            Err(LookupError::NotFound { id }) => Err(Failure::not_so(format!("no token {id}"))),
            Err(error) => Err(Failure::store(with_causes(&error))),
        }
    }
    .await;
    session.finish(outcome).await
}

/// The successor's lifetime: the command line does not know your
/// service's expiry policy, so it asks.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub(crate) struct SuccessorExpiry {
    /// The successor expires this long after the rotation.
    #[arg(long, value_parser = durations::parse, value_name = "DURATION")]
    expires_in: Option<Duration>,
    /// The successor never expires.
    #[arg(long)]
    never_expires: bool,
}

#[derive(Args, Debug)]
pub(crate) struct RotateArgs {
    /// The token's id (from `list`).
    id: String,
    /// How long the old token keeps working (0 revokes it at once).
    #[arg(long, value_parser = durations::parse, value_name = "DURATION")]
    grace: Duration,
    #[command(flatten)]
    expiry: SuccessorExpiry,
}

/// Issues a successor with the same scope, role and label; the old token
/// works through the grace period.
pub(crate) async fn rotate(args: &RotateArgs, global: &Global) -> Result<Report, Failure> {
    let operator = global.operator()?;
    let id = token_id(&args.id)?;
    let policy = match args.expiry.expires_in {
        Some(lifetime) => ExpiryPolicy::default()
            .with_default_lifetime(lifetime)
            .map_err(|error| Failure::input(format!("--expires-in: {error}")))?,
        None => ExpiryPolicy::default(),
    };
    let session = Session::open(global, Keys::Needed, policy).await?;
    let outcome = async {
        let scope = scope_of(&*session.store, id).await?;
        let actor = Session::owner_of(&operator, &scope);
        match session.service.rotate(&actor, &scope, id, args.grace).await {
            Ok(issued) => Ok(issued_report(&format!("Rotated {id} into"), &issued)),
            Err(
                error @ (RotateError::NotFound { .. }
                | RotateError::Revoked { .. }
                | RotateError::Expired { .. }
                | RotateError::AlreadyReplaced { .. }),
            ) => Err(Failure::not_so(error)),
            Err(RotateError::Store(error)) => Err(store_failure(&error)),
            Err(RotateError::RandomSource(error)) => Err(Failure::store(with_causes(&error))),
            Err(error) => Err(Failure::input(with_causes(&error))),
        }
    }
    .await;
    session.finish(outcome).await
}
