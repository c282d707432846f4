//! The dashboard's story in one run: an organization admin and a domain admin
//! create tokens, a request is checked with each, the lists are shown, and a
//! revoked token is refused.
//!
//! Run it with `cargo run --example quickstart`.

use std::sync::Arc;

use api_tokens::{
    Actor, ActorId, DomainId, HashKey, IssueRequest, KeyId, Keyring, MemoryStore, OrganizationId,
    PageRequest, Role, Scope, TokenFormat, TokenService,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A real service loads its hashing key from a secret manager, so tokens
    // survive restarts; a fresh key is fine for a demo.
    let service = TokenService::new(
        TokenFormat::new("acme")?,
        Keyring::new(KeyId::new(1), HashKey::generate()?),
        Arc::new(MemoryStore::new()),
    );

    let org_id = OrganizationId::new("org_42")?;
    let organization = Scope::organization(org_id.clone());
    let shop = Scope::domain(org_id, DomainId::new("shop.example")?);

    let alice = Actor::new(ActorId::new("alice")?).with_grant(organization.clone(), Role::Admin);
    let bob = Actor::new(ActorId::new("bob")?).with_grant(shop.clone(), Role::Admin);
    println!("alice is an Organization Admin of {organization}");
    println!("bob is a Domain Admin of {shop}\n");

    println!("== Create Token ==");
    let org_token = service
        .issue(
            &alice,
            IssueRequest::new(organization.clone(), "Nightly billing export"),
        )
        .await?;
    let shop_token = service
        .issue(
            &bob,
            IssueRequest::new(shop.clone(), "Storefront deploys").role(Role::Editor),
        )
        .await?;
    for issued in [&org_token, &shop_token] {
        println!(
            "{:<23} {:<28} shown once: {}",
            issued.summary.label,
            issued.summary.scope.to_string(),
            issued.token.expose_secret()
        );
    }

    match service
        .issue(
            &bob,
            IssueRequest::new(organization.clone(), "bob's org token"),
        )
        .await
    {
        Ok(_) => println!("bob created an organization token: that is a bug"),
        Err(refusal) => println!("bob asks for an organization token: refused ({refusal})"),
    }

    println!("\n== Verify (what every API request does) ==");
    for issued in [&org_token, &shop_token] {
        let verified = service.verify(issued.token.expose_secret()).await?;
        println!(
            "{}: {} with role {}; may edit {shop}? {}",
            issued.summary.hint,
            verified.scope(),
            verified.role(),
            verified.allows(&shop, Role::Editor)
        );
    }

    println!("\n== API Tokens lists ==");
    for (who, scope) in [(&alice, &organization), (&bob, &shop)] {
        let page = service.list(who, scope, PageRequest::default()).await?;
        println!("{scope} (as {}):", who.id);
        for token in page.tokens {
            println!(
                "  {}  {:<23} role {:<7} created by {} — {:?}",
                token.hint, token.label, token.role, token.created_by, token.status
            );
        }
    }

    println!("\n== Revoke ==");
    service.revoke(&bob, &shop, shop_token.summary.id).await?;
    println!("bob revoked {}", shop_token.summary.hint);
    match service.verify(shop_token.token.expose_secret()).await {
        Ok(_) => println!("the revoked token still works: that is a bug"),
        Err(refusal) => println!("the next request with it is refused: {refusal}"),
    }
    println!(
        "the organization token still works: {}",
        service
            .verify(org_token.token.expose_secret())
            .await
            .is_ok()
    );
    Ok(())
}
