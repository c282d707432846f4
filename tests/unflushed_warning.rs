//! A service that notes token uses but never flushes them says so, once.
//! A binary of its own: it captures this thread's log.

mod common;

use std::sync::Arc;
use std::time::Duration;

use api_tokens::testing::ManualClock;
use api_tokens::{IssueRequest, KeyId, Keyring, MemoryStore, TokenFormat, TokenService};
use common::logs::capture_logs;
use common::*;

const WARNING: &str = "never flushed";

fn service(clock: &ManualClock) -> TokenService {
    TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        Keyring::new(KeyId::new(1), key(1)),
        Arc::new(MemoryStore::new()),
    )
    .with_clock(Arc::new(clock.clone()))
}

async fn issue(service: &TokenService, label: &str) -> String {
    let issued = service
        .issue(&org_admin("acme"), IssueRequest::new(org("acme"), label))
        .await
        .unwrap();
    issued.token.expose_secret().to_owned()
}

#[tokio::test]
async fn uses_never_flushed_warn_once_after_two_intervals() {
    let (captured, _guard) = capture_logs(tracing::Level::WARN);
    let clock = ManualClock::new(START);
    let service = service(&clock);
    let interval = service.last_used_interval().unwrap();
    let tokens = [
        issue(&service, "a").await,
        issue(&service, "b").await,
        issue(&service, "c").await,
    ];

    service.verify(&tokens[0]).await.unwrap();
    clock.advance(interval);
    service.verify(&tokens[1]).await.unwrap();
    assert!(!captured.text().contains(WARNING), "{}", captured.text());

    clock.advance(interval);
    service.verify(&tokens[2]).await.unwrap();
    let log = captured.text();
    assert_eq!(log.matches(WARNING).count(), 1, "{log}");
    assert!(log.contains("spawn_maintenance"), "{log}");

    // Once is enough.
    clock.advance(interval * 10);
    for token in &tokens {
        service.verify(token).await.unwrap();
    }
    assert_eq!(captured.text().matches(WARNING).count(), 1);
}

#[tokio::test]
async fn one_token_used_for_hours_without_a_flush_warns_too() {
    let (captured, _guard) = capture_logs(tracing::Level::WARN);
    let clock = ManualClock::new(START);
    let service = service(&clock);
    let interval = service.last_used_interval().unwrap();
    let token = issue(&service, "the only one").await;

    service.verify(&token).await.unwrap();
    clock.advance(interval * 2);
    service.verify(&token).await.unwrap();

    assert_eq!(captured.text().matches(WARNING).count(), 1);
}

#[tokio::test]
async fn a_service_that_flushes_never_warns() {
    let (captured, _guard) = capture_logs(tracing::Level::WARN);
    let clock = ManualClock::new(START);
    let service = service(&clock);
    let token = issue(&service, "a").await;

    service.verify(&token).await.unwrap();
    service.flush_last_used().await.unwrap();
    for _ in 0..5 {
        clock.advance(Duration::from_secs(3600));
        service.verify(&token).await.unwrap();
    }
    assert!(!captured.text().contains(WARNING), "{}", captured.text());
}
