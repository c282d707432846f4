//! PostgresStore over TLS (feature `postgres-tls`), against the TLS-only
//! server `scripts/test` starts with a throwaway CA: trusted with that CA it
//! works; without TLS the server refuses; trusting another CA fails at once
//! with an error that says TLS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_tokens::{
    Actor, ActorId, HashKey, IssueRequest, KeyId, Keyring, OrganizationId, PostgresStore, Role,
    Scope, StoreError, TokenFormat, TokenService,
};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need the TLS-only PostgreSQL server that \
             `scripts/test` starts (with its throwaway CA)"
        )
    })
}

/// The TLS server's URL with `sslrootcert` and `sslmode` replaced.
fn url_with(root: Option<&str>, mode: &str) -> String {
    let url = var("API_TOKENS_POSTGRES_TLS_URL");
    let (base, _) = url.split_once('?').expect("the URL has parameters");
    match root {
        Some(root) => format!("{base}?sslmode={mode}&sslrootcert={root}"),
        None => format!("{base}?sslmode={mode}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_private_ca_issues_and_verifies() {
    let store = PostgresStore::connect(&var("API_TOKENS_POSTGRES_TLS_URL"))
        .await
        .expect("a verify-full connection trusting the test CA");
    let service = TokenService::new(
        TokenFormat::new("acme").unwrap(),
        Keyring::new(KeyId::new(1), HashKey::generate().unwrap()),
        Arc::new(store.clone()),
    );
    let org = Scope::organization(OrganizationId::new("tls").unwrap());
    let admin = Actor::new(ActorId::new("alice").unwrap()).with_grant(org.clone(), Role::Admin);
    let issued = service
        .issue(&admin, IssueRequest::new(org, "over TLS"))
        .await
        .unwrap();
    let verified = service.verify(issued.token.expose_secret()).await.unwrap();
    assert_eq!(verified.id(), issued.summary.id);
    // The connection really is encrypted.
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(ssl);
}

#[tokio::test]
async fn a_connection_without_tls_is_refused() {
    let error = PostgresStore::connect(&url_with(None, "disable"))
        .await
        .expect_err("the server accepts TLS connections only");
    assert!(
        format!("{error:?}").contains("no encryption"),
        "the server's refusal: {error:?}"
    );
}

#[tokio::test]
async fn trusting_the_wrong_ca_fails_at_once_and_says_tls() {
    let started = Instant::now();
    let wrong = var("API_TOKENS_POSTGRES_TLS_WRONG_CA");
    let error = PostgresStore::connect(&url_with(Some(&wrong), "verify-full"))
        .await
        .expect_err("a server certificate the CA did not sign");
    assert!(matches!(error, StoreError::Tls { .. }), "{error:?}");
    assert!(error.to_string().contains("TLS"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a TLS failure is not retried until a timeout: {:?}",
        started.elapsed()
    );
}
