//! Expiry notices: "your tokens expire soon", one message per scope and
//! creator, each token reported once per window. The background worker
//! sends a 30-day and a 7-day warning to a sink that prints them as e-mails
//! would say them; a manual clock stands in for the weeks in between.
//!
//! Run it with `cargo run --example expiry_notices`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api_tokens::testing::ManualClock;
use api_tokens::{
    Actor, ActorId, BoxError, DomainId, ExpiryNotice, ExpiryNoticeSink, HashKey, IssueRequest,
    KeyId, Keyring, Maintenance, MemoryStore, OrganizationId, Role, Scope, TokenFormat,
    TokenService,
};
use time::macros::datetime;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Prints each notice as the e-mail a mailer would send.
#[derive(Default)]
struct PrintedMail {
    tokens: AtomicUsize,
}

#[api_tokens::async_trait]
impl ExpiryNoticeSink for PrintedMail {
    async fn send(&self, notice: &ExpiryNotice) -> Result<(), BoxError> {
        // A real mailer looks up the creator's address and sends this.
        println!("To: {} (tokens of {})", notice.created_by, notice.scope);
        println!(
            "Subject: {} API token(s) expire within {} days\n",
            notice.tokens.len(),
            notice.within_secs / (24 * 3600)
        );
        for token in &notice.tokens {
            let days = (token.expires_at - notice.at).whole_days();
            let paused = if token.disabled { " (disabled)" } else { "" };
            println!(
                "  - \"{}\" {}, role {}, expires in {days} days{paused}",
                token.label, token.hint, token.role
            );
        }
        println!();
        self.tokens.fetch_add(notice.tokens.len(), Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::new(datetime!(2030-01-01 09:00 UTC));
    let service = Arc::new(
        TokenService::new(
            TokenFormat::new("acme")?,
            Keyring::new(KeyId::new(1), HashKey::generate()?),
            Arc::new(MemoryStore::new()),
        )
        .with_clock(Arc::new(clock.clone())),
    );
    let acme = OrganizationId::new("acme")?;
    let organization = Scope::organization(acme.clone());
    let shop = Scope::domain(acme, DomainId::new("shop")?);
    let alice = Actor::new(ActorId::new("alice")?).with_grant(organization.clone(), Role::Admin);
    let bob = Actor::new(ActorId::new("bob")?).with_grant(shop.clone(), Role::Admin);
    for (who, scope, label, days) in [
        (&alice, &organization, "CI deploys", 5),
        (&alice, &organization, "nightly backups", 20),
        (&bob, &shop, "shop importer", 16),
        (&alice, &organization, "next year's audit", 300),
    ] {
        let request = IssueRequest::new(scope.clone(), label).expires_in(days * DAY);
        service.issue(who, request).await?;
    }

    // Checked every 50 ms here; every hour or so in a service.
    let mail = Arc::new(PrintedMail::default());
    let worker = service.spawn_maintenance(Maintenance::new().expiry_notices(
        Duration::from_millis(50),
        &[30 * DAY, 7 * DAY],
        mail.clone(),
    ));

    println!("== Day 0: the 7-day and the 30-day warnings ==\n");
    wait_for(&mail, 3).await?;
    println!("== Day 14: 'nightly backups' and 'shop importer' enter the 7-day window ==\n");
    clock.advance(14 * DAY);
    wait_for(&mail, 5).await?;
    // A few more runs: every token was reported once per window already.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reports = mail.tokens.load(Ordering::SeqCst);
    if reports != 5 {
        return Err(
            format!("{reports} token reports, where 5 were due: one reported twice").into(),
        );
    }
    println!("{reports} token reports in all; nothing is reported twice for one window.");
    worker.shutdown().await;
    Ok(())
}

/// Waits (up to 10 s) until `mail` has reported `tokens` tokens.
async fn wait_for(mail: &PrintedMail, tokens: usize) -> Result<(), Box<dyn std::error::Error>> {
    for _ in 0..1_000 {
        if mail.tokens.load(Ordering::SeqCst) >= tokens {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("the worker reported fewer than {tokens} tokens within 10 s").into())
}
