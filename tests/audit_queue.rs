//! No request waits for the audit sink: events go through a bounded queue,
//! a slow or stuck sink slows nothing, a full queue drops and counts, and
//! flushing delivers everything in order.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api_tokens::testing::MemoryAuditSink;
use api_tokens::{
    AuditEvent, AuditSink, IssueRequest, MemoryStore, Operation, PolicyError, RevokeError,
    TokenFormat, TokenId, TokenService,
};
use common::*;

/// A sink that takes a while per event (until told to hurry), then keeps it.
struct SlowSink {
    delay_ms: AtomicU64,
    kept: MemoryAuditSink,
}

impl SlowSink {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(SlowSink {
            delay_ms: AtomicU64::new(delay.as_millis() as u64),
            kept: MemoryAuditSink::new(),
        })
    }

    fn hurry(&self) {
        self.delay_ms.store(0, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl AuditSink for SlowSink {
    async fn record(&self, event: AuditEvent) {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.kept.record(event).await;
    }
}

/// A sink that never returns.
struct StuckSink;

#[async_trait::async_trait]
impl AuditSink for StuckSink {
    async fn record(&self, _: AuditEvent) {
        std::future::pending::<()>().await;
    }
}

fn service_with(sink: Arc<dyn AuditSink>) -> TokenService {
    TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        api_tokens::Keyring::new(api_tokens::KeyId::new(1), key(1)),
        Arc::new(MemoryStore::new()),
    )
    .with_audit_sink(sink)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sink_does_not_tell_another_tenants_token_from_an_unknown_id() {
    // Every event takes the sink 50 ms: a request that waited for it could
    // not hide it.
    let sink = SlowSink::new(Duration::from_millis(50));
    let service = service_with(sink.clone());
    let acme_admin = org_admin("acme");
    let mut acme_tokens = Vec::new();
    for n in 0..1_000 {
        let request = IssueRequest::new(org("acme"), format!("acme {n}"));
        acme_tokens.push(
            service
                .issue(&acme_admin, request)
                .await
                .unwrap()
                .summary
                .id,
        );
    }
    let unknown: Vec<TokenId> = (0..1_000u64)
        .map(|n| format!("{:0>11}", n * 7 + 1).parse().unwrap())
        .collect();

    // Another tenant's admin names each, alternating, timing every call.
    let mallory = org_admin("globex");
    let (mut existing, mut missing) = (Vec::new(), Vec::new());
    for (theirs, nobodys) in acme_tokens.iter().zip(&unknown) {
        for (id, times) in [(theirs, &mut existing), (nobodys, &mut missing)] {
            let start = Instant::now();
            let refused = service.revoke(&mallory, &org("acme"), *id).await;
            times.push(start.elapsed());
            assert!(matches!(refused, Err(RevokeError::NotFound { .. })));
        }
    }
    // A request that waited for the sink would differ by its 50 ms: the
    // first bound, far beyond the noise in medians of about 2 µs. The
    // second keeps the service's own two paths alike: they differ by 1–7%
    // in a debug build, too near a bound of 10% on a loaded machine, so it
    // fails at 50%.
    let (existing, missing) = (median(existing), median(missing));
    let report = format!(
        "another tenant's token: {existing:?}, an unknown id: {missing:?} (median of 1,000 each)"
    );
    assert!(
        existing.abs_diff(missing) < Duration::from_millis(1),
        "{report}"
    );
    assert!(
        existing.max(missing) < existing.min(missing) * 3 / 2,
        "{report}"
    );
    assert!(
        existing < Duration::from_millis(5),
        "the request waited for the sink: {existing:?}"
    );

    // Both were audited, and nothing was lost: the 1,000 issues and 2,000
    // refusals waited in the queue for the sink.
    sink.hurry();
    service.flush_audit().await;
    assert_eq!(service.audit_events_dropped(), 0);
    let events = sink.kept.events();
    assert_eq!(events.len(), 3_000);
    let refused_ids: Vec<TokenId> = events[1_000..]
        .iter()
        .map(|event| match event {
            AuditEvent::Refused {
                operation: Operation::Revoke,
                scope: Some(scope),
                token: Some(id),
                ..
            } if *scope == org("acme") => *id,
            other => panic!("expected a refused revoke, got {other:?}"),
        })
        .collect();
    let named: Vec<TokenId> = acme_tokens
        .iter()
        .zip(&unknown)
        .flat_map(|(theirs, nobodys)| [*theirs, *nobodys])
        .collect();
    assert_eq!(refused_ids, named, "in the order they happened");
}

#[tokio::test]
async fn a_stuck_sink_blocks_no_request_and_a_full_queue_drops_and_counts() {
    let service = service_with(Arc::new(StuckSink))
        .with_audit_queue_capacity(3)
        .unwrap();
    let admin = org_admin("acme");
    let outsider = org_admin("globex");
    // Each call makes one event; the sink never takes one. The first is
    // taken for delivery (and stuck there), three wait, the rest are dropped.
    let issued = tokio::time::timeout(Duration::from_secs(5), async {
        let mut issued = Vec::new();
        for n in 0..6 {
            let request = IssueRequest::new(org("acme"), format!("token {n}"));
            issued.push(service.issue(&admin, request).await.unwrap());
        }
        for token in &issued {
            assert!(
                service
                    .revoke(&outsider, &org("acme"), token.summary.id)
                    .await
                    .is_err()
            );
        }
        issued
    })
    .await
    .expect("no request waits for the sink");
    assert_eq!(issued.len(), 6);
    // 12 events: at most 1 in delivery and 3 queued; at least 8 dropped.
    let dropped = service.audit_events_dropped();
    assert!((8..=9).contains(&dropped), "{dropped} dropped");
}

#[tokio::test]
async fn the_delivery_task_delivers_in_order_without_a_flush() {
    let sink = Arc::new(MemoryAuditSink::new());
    let service = service_with(sink.clone());
    let admin = org_admin("acme");
    let mut ids = Vec::new();
    for n in 0..20 {
        let request = IssueRequest::new(org("acme"), format!("token {n}"));
        ids.push(service.issue(&admin, request).await.unwrap().summary.id);
    }
    // No flush: the task spawned on this runtime delivers on its own.
    let delivered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let events = sink.events();
            if events.len() == ids.len() {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the events arrive without a flush");
    let delivered_ids: Vec<TokenId> = delivered
        .iter()
        .map(|event| match event {
            AuditEvent::Issued { token, .. } => *token,
            other => panic!("expected an issue, got {other:?}"),
        })
        .collect();
    assert_eq!(delivered_ids, ids);
}

#[tokio::test]
async fn events_still_queued_are_delivered_after_the_service_is_dropped() {
    let sink = SlowSink::new(Duration::from_millis(20));
    let service = service_with(sink.clone());
    for n in 0..5 {
        let request = IssueRequest::new(org("acme"), format!("token {n}"));
        service.issue(&org_admin("acme"), request).await.unwrap();
    }
    drop(service);
    tokio::time::timeout(Duration::from_secs(10), async {
        while sink.kept.events().len() < 5 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the task delivers what was queued, then ends");
}

#[test]
fn without_a_tokio_runtime_events_wait_for_a_flush() {
    let sink = Arc::new(MemoryAuditSink::new());
    let service = service_with(sink.clone());
    // Driven by hand, outside any runtime: the memory store never waits.
    let issued = poll_once(service.issue(&org_admin("acme"), IssueRequest::new(org("acme"), "x")));
    let id = issued.unwrap().summary.id;
    assert!(sink.events().is_empty(), "no task could run");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(service.flush_audit());
    assert!(matches!(
        sink.events().as_slice(),
        [AuditEvent::Issued { token, .. }] if *token == id
    ));
}

/// Polls `future` once with a waker that does nothing; it must be ready.
fn poll_once<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("the memory store answers at once"),
    }
}

#[test]
fn a_queue_of_no_events_is_refused() {
    let service = service_with(Arc::new(MemoryAuditSink::new()));
    assert!(matches!(
        service.with_audit_queue_capacity(0),
        Err(PolicyError::ZeroCapacity)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_waits_for_the_events_before_it_not_for_a_queue_that_never_empties() {
    let sink = SlowSink::new(Duration::from_millis(1));
    let service = Arc::new(
        service_with(sink.clone())
            .with_audit_queue_capacity(100)
            .unwrap(),
    );
    // Refused attempts keep arriving, faster than the sink takes them.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (service, stop) = (service.clone(), stop.clone());
        tokio::spawn(async move {
            let outsider = org_admin("globex");
            while !stop.load(Ordering::SeqCst) {
                let _ = service
                    .revoke(&outsider, &org("acme"), "00000000007".parse().unwrap())
                    .await;
                tokio::task::yield_now().await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let flushed = tokio::time::timeout(Duration::from_secs(10), service.flush_audit()).await;
    stop.store(true, Ordering::SeqCst);
    traffic.await.unwrap();
    assert!(
        flushed.is_ok(),
        "flush_audit waited for a queue that never empties"
    );
}

#[test]
fn an_event_cut_off_by_its_runtime_shutting_down_is_delivered_later() {
    // Far longer than the 50 ms the first runtime lives, however slow the
    // machine: the first runtime never lets the sink finish.
    let sink = SlowSink::new(Duration::from_secs(5));
    let service = service_with(sink.clone());
    let admin = org_admin("acme");
    let first = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    first.block_on(async {
        service
            .issue(&admin, IssueRequest::new(org("acme"), "first"))
            .await
            .unwrap();
        // The delivery task has taken the event and waits on the sink.
        tokio::time::sleep(Duration::from_millis(50)).await;
    });
    drop(first);
    assert!(
        sink.kept.events().is_empty(),
        "cut off before the sink had it"
    );
    sink.hurry();

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        service
            .issue(&admin, IssueRequest::new(org("acme"), "second"))
            .await
            .unwrap();
        service.flush_audit().await;
    });
    let labels: Vec<String> = sink
        .kept
        .events()
        .iter()
        .map(|event| match event {
            AuditEvent::Issued { label, .. } => label.as_str().to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(labels, ["first", "second"]);
    assert_eq!(service.audit_events_dropped(), 0);
}
