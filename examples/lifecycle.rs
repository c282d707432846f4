//! The rest of a token's life, in one run: an expiry policy, rotation with a
//! grace period, "last used" in the list, revoking a removed domain's tokens,
//! the audit log, and a log line with a leaked token redacted.
//!
//! Run it with `cargo run --example lifecycle`. It moves a manual clock
//! instead of waiting, as your own tests can.

use std::sync::Arc;
use std::time::Duration;

use api_tokens::testing::{ManualClock, MemoryAuditSink};
use api_tokens::{
    Actor, ActorId, AuditEvent, DomainId, ExpiryPolicy, HashKey, IssueRequest, KeyId, Keyring,
    MemoryStore, OrganizationId, PageRequest, Role, Scope, ScopeKind, TokenFormat, TokenService,
};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(60 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::new(datetime!(2030-01-01 09:00 UTC));
    let audit = Arc::new(MemoryAuditSink::new());
    let service = TokenService::new(
        TokenFormat::new("acme")?,
        Keyring::new(KeyId::new(1), HashKey::generate()?),
        Arc::new(MemoryStore::new()),
    )
    .with_clock(Arc::new(clock.clone()))
    .with_audit_sink(audit.clone())
    // Tokens live 30 days unless asked otherwise; organization tokens at
    // most 90 days, and never forever.
    .with_expiry_policy(
        ExpiryPolicy::default()
            .with_default_lifetime(30 * DAY)?
            .with_max_lifetime(ScopeKind::Organization, 90 * DAY)?,
    );

    let acme = OrganizationId::new("acme")?;
    let organization = Scope::organization(acme.clone());
    let shop = Scope::domain(acme, DomainId::new("shop")?);
    let alice = Actor::new(ActorId::new("alice")?).with_grant(organization.clone(), Role::Admin);

    println!("== Expiry policy ==");
    let ci = service
        .issue(
            &alice,
            IssueRequest::new(organization.clone(), "CI deploys"),
        )
        .await?;
    println!("'CI deploys' expires {}", show(ci.summary.expires_at));
    let forever = IssueRequest::new(organization.clone(), "forever").never_expires();
    if let Err(refused) = service.issue(&alice, forever).await {
        println!("a never-expiring organization token: refused ({refused})");
    }

    println!("\n== Rotation with a grace period ==");
    let old_token = ci.token.expose_secret().to_owned();
    let new = service
        .rotate(&alice, &organization, ci.summary.id, 24 * HOUR)
        .await?;
    println!(
        "{} replaced by {}; the old one works for 24 hours more",
        ci.summary.hint, new.summary.hint
    );
    clock.advance(23 * HOUR);
    println!(
        "23 h later, the old token: {}",
        verdict(service.verify(&old_token).await)
    );
    clock.advance(HOUR);
    println!(
        "24 h later, the old token: {}",
        verdict(service.verify(&old_token).await)
    );

    println!("\n== Last used ==");
    let shop_token = service
        .issue(&alice, IssueRequest::new(shop.clone(), "Storefront"))
        .await?;
    clock.advance(5 * MINUTE);
    service.verify(new.token.expose_secret()).await?;
    // A real service flushes every few seconds from a background task.
    service.flush_last_used().await?;
    let page = service
        .list(&alice, &organization, PageRequest::default())
        .await?;
    for token in &page.tokens {
        println!(
            "{:<12} {:<11} last used {}",
            token.label,
            format!("{:?}", token.status),
            show(token.last_used_at)
        );
    }

    println!("\n== The shop domain is removed ==");
    let revoked = service
        .revoke_scope(&alice, &shop, Some("domain removed"))
        .await?;
    println!(
        "{} token(s) revoked; the storefront's token: {}",
        revoked.count,
        verdict(service.verify(shop_token.token.expose_secret()).await)
    );

    println!("\n== Audit log ==");
    // Events reach the sink from a queue, never slowing a request: wait for
    // them (a service does this before shutting down).
    service.flush_audit().await;
    for event in audit.events() {
        println!("{}", serde_json::to_string(&event)?);
    }
    let retired = audit
        .events()
        .iter()
        .filter(|event| matches!(event, AuditEvent::RetiredTokenUsed { .. }))
        .count();
    println!("uses of a retired token: {retired}");
    println!("failed verifications: {:?}", service.verify_failures());

    println!("\n== A log line with a leaked token ==");
    let line = format!("curl -H 'Authorization: Bearer {old_token}' https://api.example/v1");
    println!("{}", service.format().redact(&line));
    Ok(())
}

fn show(at: Option<time::OffsetDateTime>) -> String {
    let rfc3339 = |at: time::OffsetDateTime| at.format(&Rfc3339).unwrap_or_default();
    at.map_or("never".into(), rfc3339)
}

fn verdict<T>(result: Result<T, api_tokens::VerifyError>) -> String {
    match result {
        Ok(_) => "accepted".into(),
        Err(refused) => format!("refused ({refused})"),
    }
}
