//! The background worker: it writes last-used times down, purges when
//! asked, and flushes uses and audit events one last time on shutdown.

mod common;

use std::sync::Arc;
use std::time::Duration;

use api_tokens::testing::{ManualClock, MemoryAuditSink};
use api_tokens::{
    AuditEvent, IssueRequest, KeyId, Keyring, Maintenance, MemoryStore, TokenFormat, TokenService,
    TokenStore,
};
use common::*;

struct Running {
    service: Arc<TokenService>,
    store: Arc<MemoryStore>,
    clock: ManualClock,
    audit: Arc<MemoryAuditSink>,
}

fn running() -> Running {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(START);
    let audit = Arc::new(MemoryAuditSink::new());
    let service = TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        Keyring::new(KeyId::new(1), key(1)),
        store.clone(),
    )
    .with_clock(Arc::new(clock.clone()))
    .with_audit_sink(audit.clone());
    Running {
        service: Arc::new(service),
        store,
        clock,
        audit,
    }
}

/// Polls `condition` every 10 ms for up to 10 s: the worker runs on its
/// own schedule, and a loaded machine may delay it.
async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    for _ in 0..1_000 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test]
async fn the_worker_writes_down_uses_without_being_asked() {
    let running = running();
    let (text, id) = issue(&running, "ci").await;
    let worker = running
        .service
        .spawn_maintenance(Maintenance::new().flush_every(Duration::from_millis(20)));

    running.service.verify(&text).await.unwrap();

    let store = running.store.clone();
    eventually("the use written to the store", async || {
        let record = store.find(id).await.unwrap().unwrap();
        record.last_used_at == Some(START)
    })
    .await;
    worker.shutdown().await;
}

/// A mail server that never answers.
struct HangingSink;

#[api_tokens::async_trait]
impl api_tokens::ExpiryNoticeSink for HangingSink {
    async fn send(&self, _: &api_tokens::ExpiryNotice) -> Result<(), api_tokens::BoxError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_hanging_notice_sink_does_not_hold_the_flush() {
    let running = running();
    let (text, id) = issue_expiring_soon(&running, "ci").await;
    let every = Duration::from_millis(20);
    let week = Duration::from_secs(7 * 24 * 3600);
    let worker =
        running
            .service
            .spawn_maintenance(Maintenance::new().flush_every(every).expiry_notices(
                every,
                &[week],
                std::sync::Arc::new(HangingSink),
            ));
    // Let a run of notices start and hang in the sink.
    tokio::time::sleep(10 * every).await;

    running.service.verify(&text).await.unwrap();

    let store = running.store.clone();
    eventually("the use written while the sink hangs", async || {
        let record = store.find(id).await.unwrap().unwrap();
        record.last_used_at == Some(START)
    })
    .await;
    drop(worker);
}

#[tokio::test]
async fn shutdown_writes_the_last_uses_and_delivers_the_last_events() {
    let running = running();
    let (text, id) = issue(&running, "ci").await;
    // A period no test waits for: only the shutdown can write the use.
    let worker = running
        .service
        .spawn_maintenance(Maintenance::new().flush_every(Duration::from_secs(3600)));
    running.service.verify(&text).await.unwrap();
    let before = running.store.find(id).await.unwrap().unwrap();
    assert_eq!(before.last_used_at, None);

    worker.shutdown().await;

    let after = running.store.find(id).await.unwrap().unwrap();
    assert_eq!(after.last_used_at, Some(START));
    // Delivered by the shutdown itself, without a flush_audit of ours.
    assert!(
        running
            .audit
            .events()
            .iter()
            .any(|event| matches!(event, AuditEvent::Issued { token, .. } if *token == id))
    );
}

#[tokio::test]
async fn the_worker_purges_ended_tokens_only_when_asked() {
    let running = running();
    let admin = org_admin("acme");
    let (_, ended) = issue(&running, "ended").await;
    let (_, live) = issue(&running, "live").await;
    running
        .service
        .revoke(&admin, &org("acme"), ended)
        .await
        .unwrap();
    running.clock.advance(Duration::from_secs(3600));

    // Without `purge`: nothing is deleted, however long it runs.
    let flushing_only = running
        .service
        .spawn_maintenance(Maintenance::new().flush_every(Duration::from_millis(10)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    flushing_only.shutdown().await;
    assert!(running.store.find(ended).await.unwrap().is_some());

    let purging = running.service.spawn_maintenance(
        Maintenance::new().purge(Duration::from_millis(20), Duration::from_secs(60)),
    );
    let store = running.store.clone();
    eventually("the ended token purged", async || {
        store.find(ended).await.unwrap().is_none()
    })
    .await;
    purging.shutdown().await;
    assert!(running.store.find(live).await.unwrap().is_some());
    assert!(
        running
            .audit
            .events()
            .iter()
            .any(|event| matches!(event, AuditEvent::Purged { count: 1, .. }))
    );
}

#[tokio::test]
async fn absurd_periods_are_clamped_not_a_dead_worker() {
    let running = running();
    let (text, id) = issue(&running, "ci").await;
    let worker = running.service.spawn_maintenance(
        Maintenance::new()
            .flush_every(Duration::MAX)
            .purge(Duration::MAX, Duration::MAX),
    );
    running.service.verify(&text).await.unwrap();

    // A worker that had panicked on its periods would write nothing here.
    worker.shutdown().await;
    let record = running.store.find(id).await.unwrap().unwrap();
    assert_eq!(record.last_used_at, Some(START));
}

#[tokio::test]
async fn dropping_the_handle_stops_the_worker() {
    let running = running();
    let worker = running
        .service
        .spawn_maintenance(Maintenance::new().flush_every(Duration::from_millis(10)));
    assert_eq!(Arc::strong_count(&running.service), 2);

    drop(worker);

    let service = running.service.clone();
    eventually("the worker to let go of the service", async || {
        Arc::strong_count(&service) == 2 // ours and this closure's
    })
    .await;
}

async fn issue(running: &Running, label: &str) -> (String, api_tokens::TokenId) {
    let issued = running
        .service
        .issue(&org_admin("acme"), IssueRequest::new(org("acme"), label))
        .await
        .unwrap();
    (issued.token.expose_secret().to_owned(), issued.summary.id)
}

/// A token of `acme` expiring in a day: due for a week's notice.
async fn issue_expiring_soon(running: &Running, label: &str) -> (String, api_tokens::TokenId) {
    let request = IssueRequest::new(org("acme"), label).expires_in(Duration::from_secs(24 * 3600));
    let issued = running
        .service
        .issue(&org_admin("acme"), request)
        .await
        .unwrap();
    (issued.token.expose_secret().to_owned(), issued.summary.id)
}
