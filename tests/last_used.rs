//! "Last used": verification notes uses, a flush writes them, at most once
//! per token per interval, and the list shows them.

mod common;

use std::sync::Arc;

use api_tokens::{TokenFormat, TokenService};
use common::*;
use std::time::Duration;

async fn last_used(fixture: &Fixture, id: api_tokens::TokenId) -> Option<time::OffsetDateTime> {
    fixture
        .service
        .lookup(&org_admin("acme"), &org("acme"), id)
        .await
        .unwrap()
        .last_used_at
}

#[tokio::test]
async fn a_use_is_written_at_the_next_flush_and_at_most_once_per_interval() {
    let fixture = fixture();
    assert_eq!(
        fixture.service.last_used_interval(),
        Some(Duration::from_secs(60))
    );
    let (token, id) = fixture.issue_at(org("acme"), "ci").await;
    assert_eq!(last_used(&fixture, id).await, None);

    fixture.clock.advance(Duration::from_secs(5));
    fixture.service.verify(&token).await.unwrap();
    // Verification itself writes nothing.
    assert_eq!(fixture.store.use_writes(), 0);
    assert_eq!(last_used(&fixture, id).await, None);
    assert_eq!(fixture.service.flush_last_used().await.unwrap(), 1);
    assert_eq!(
        last_used(&fixture, id).await,
        Some(START + Duration::from_secs(5))
    );

    // Within the interval: uses are not noted again.
    fixture.clock.advance(Duration::from_secs(30));
    fixture.service.verify(&token).await.unwrap();
    assert_eq!(fixture.service.flush_last_used().await.unwrap(), 0);
    assert_eq!(
        last_used(&fixture, id).await,
        Some(START + Duration::from_secs(5))
    );

    // Once the interval has passed (as of the last flush), the next use is.
    fixture.clock.advance(Duration::from_secs(40));
    fixture.service.flush_last_used().await.unwrap();
    fixture.service.verify(&token).await.unwrap();
    fixture.service.verify(&token).await.unwrap();
    assert_eq!(fixture.service.flush_last_used().await.unwrap(), 1);
    assert_eq!(
        last_used(&fixture, id).await,
        Some(START + Duration::from_secs(75))
    );

    // The API Tokens list shows it too.
    let page = fixture
        .service
        .list(&org_admin("acme"), &org("acme"), Default::default())
        .await
        .unwrap();
    assert_eq!(
        page.tokens[0].last_used_at,
        Some(START + Duration::from_secs(75))
    );
}

#[tokio::test]
async fn failed_verifications_are_not_uses() {
    let fixture = fixture();
    let (token, id) = fixture.issue_at(org("acme"), "ci").await;
    fixture
        .service
        .revoke(&org_admin("acme"), &org("acme"), id)
        .await
        .unwrap();
    assert!(fixture.service.verify(&token).await.is_err());
    let wrong = altered(&token, SECRET_AT, other_than(token.as_bytes()[SECRET_AT]));
    assert!(fixture.service.verify(&wrong).await.is_err());
    assert_eq!(fixture.service.flush_last_used().await.unwrap(), 0);
    assert_eq!(last_used(&fixture, id).await, None);
}

#[tokio::test]
async fn tracking_can_be_turned_off() {
    let fixture = fixture();
    let (token, id) = fixture.issue_at(org("acme"), "ci").await;
    let untracked = TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        api_tokens::Keyring::new(api_tokens::KeyId::new(1), key(1)),
        fixture.store.clone(),
    )
    .with_clock(Arc::new(fixture.clock.clone()))
    .with_last_used_interval(None)
    .unwrap();
    assert_eq!(untracked.last_used_interval(), None);
    untracked.verify(&token).await.unwrap();
    assert_eq!(untracked.flush_last_used().await.unwrap(), 0);
    assert_eq!(fixture.store.use_writes(), 0);
    assert_eq!(last_used(&fixture, id).await, None);
}

#[tokio::test]
async fn uses_a_failed_flush_could_not_write_wait_for_the_next() {
    let fixture = fixture();
    let (token, id) = fixture.issue_at(org("acme"), "ci").await;
    fixture.service.verify(&token).await.unwrap();
    fixture.store.fail_next_use_write();
    assert!(fixture.service.flush_last_used().await.is_err());
    assert_eq!(last_used(&fixture, id).await, None);
    assert_eq!(fixture.service.flush_last_used().await.unwrap(), 1);
    assert_eq!(last_used(&fixture, id).await, Some(START));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_during_a_flush_is_not_written_again_within_the_interval() {
    let fixture = Arc::new(fixture());
    let (token, id) = fixture.issue_at(org("acme"), "ci").await;
    fixture.service.verify(&token).await.unwrap();
    let gate = fixture.store.hold_next_use_write();
    let flushing = {
        let fixture = fixture.clone();
        tokio::spawn(async move { fixture.service.flush_last_used().await })
    };
    gate.entered.notified().await;
    // The store has not recorded the first use yet; this one must not be
    // noted again, or the next flush would write the token a second time.
    fixture.clock.advance(SECOND);
    fixture.service.verify(&token).await.unwrap();
    gate.release.notify_one();
    assert_eq!(flushing.await.unwrap().unwrap(), 1);
    assert_eq!(fixture.service.flush_last_used().await.unwrap(), 0);
    assert_eq!(fixture.store.use_writes(), 1);
    assert_eq!(last_used(&fixture, id).await, Some(START));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_flushes_lose_no_use_when_one_fails() {
    let fixture = Arc::new(fixture());
    let (first, first_id) = fixture.issue_at(org("acme"), "first").await;
    let (second, second_id) = fixture.issue_at(org("acme"), "second").await;

    // Flush 1 takes the first token's use and is held inside the store.
    fixture.service.verify(&first).await.unwrap();
    let gate = fixture.store.hold_next_use_write();
    let flush_1 = {
        let fixture = fixture.clone();
        tokio::spawn(async move { fixture.service.flush_last_used().await })
    };
    gate.entered.notified().await;

    // Meanwhile flush 2 takes and writes the second token's use.
    fixture.clock.advance(Duration::from_secs(2));
    fixture.service.verify(&second).await.unwrap();
    assert_eq!(fixture.service.flush_last_used().await.unwrap(), 1);
    assert_eq!(
        last_used(&fixture, second_id).await,
        Some(START + Duration::from_secs(2))
    );

    // Flush 1's write fails: its use must wait for the next flush, not
    // vanish because flush 2 finished first.
    fixture.store.fail_next_use_write();
    gate.release.notify_one();
    assert!(flush_1.await.unwrap().is_err());
    assert_eq!(last_used(&fixture, first_id).await, None);

    // Uses within the interval note nothing new, for either token.
    fixture.clock.advance(SECOND);
    fixture.service.verify(&first).await.unwrap();
    fixture.service.verify(&second).await.unwrap();
    assert_eq!(fixture.service.flush_last_used().await.unwrap(), 1);
    assert_eq!(last_used(&fixture, first_id).await, Some(START));
    assert_eq!(
        last_used(&fixture, second_id).await,
        Some(START + Duration::from_secs(2)),
        "written once in the interval"
    );
    assert_eq!(fixture.service.flush_last_used().await.unwrap(), 0);
}

#[tokio::test]
async fn an_interval_under_a_second_is_refused() {
    let fixture = fixture();
    let service = TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        api_tokens::Keyring::new(api_tokens::KeyId::new(1), key(1)),
        fixture.store.clone(),
    );
    for bad in [Duration::ZERO, Duration::from_millis(999)] {
        assert!(matches!(
            TokenService::new(
                TokenFormat::new(PREFIX).unwrap(),
                api_tokens::Keyring::new(api_tokens::KeyId::new(1), key(1)),
                fixture.store.clone(),
            )
            .with_last_used_interval(Some(bad)),
            Err(api_tokens::PolicyError::TooShort)
        ));
    }
    let five = service
        .with_last_used_interval(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(five.last_used_interval(), Some(Duration::from_secs(5)));
}
