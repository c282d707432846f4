//! The example service's `POST /credentials/revoke`, over real HTTP:
//! leaked tokens die, anything else changes nothing, and the answer never
//! says which was which.

mod common;

// The example itself, not a copy of it: its `main` is not called here.
#[path = "../examples/axum_service/main.rs"]
#[allow(dead_code)]
mod axum_service;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};

use api_tokens::{AuditEvent, TokenService, VerifyError};
use axum_service::leaks::{MAX_BODY_BYTES, REQUESTS_PER_MINUTE};
use common::http::*;
use common::*;

struct Service {
    url: String,
    client: reqwest::Client,
    tokens: Arc<TokenService>,
    store: Arc<CountingStore>,
    audit: Arc<api_tokens::testing::MemoryAuditSink>,
}

async fn start() -> Service {
    let Fixture {
        service,
        audit,
        store,
        ..
    } = fixture();
    // The real clock: a retried revocation is then told from the one
    // that failed by its time, as in production.
    let service = service.with_clock(Arc::new(api_tokens::SystemClock));
    let tokens = Arc::new(service.with_permissions(axum_service::permissions()));
    let url = serve_with_connect_info(axum_service::app(tokens.clone())).await;
    Service {
        url,
        client: client(),
        tokens,
        store,
        audit,
    }
}

impl Service {
    /// Reports `credentials`; the status and the body as text.
    async fn report(&self, credentials: &[&str]) -> (StatusCode, String) {
        self.report_body(&json!({ "credentials": credentials }))
            .await
    }

    async fn report_body(&self, body: &Value) -> (StatusCode, String) {
        let response = self
            .client
            .post(format!("{}/credentials/revoke", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn issue(&self, label: &str) -> String {
        let request = api_tokens::IssueRequest::new(org("acme"), label);
        let issued = self
            .tokens
            .issue(&org_admin("acme"), request)
            .await
            .unwrap();
        issued.token.expose_secret().to_owned()
    }

    /// Waits (a few seconds at most) until `token` is revoked: reports
    /// are handled after the answer, in order.
    async fn until_revoked(&self, token: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !matches!(self.tokens.verify(token).await, Err(VerifyError::Revoked)) {
            assert!(Instant::now() < deadline, "the leaked token still verifies");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn leak_events(&self) -> usize {
        self.tokens.flush_audit().await;
        let events = self.audit.events();
        events
            .iter()
            .filter(|event| matches!(event, AuditEvent::LeakRevoked { .. }))
            .count()
    }
}

#[tokio::test]
async fn leaked_tokens_die_and_the_answer_is_the_same_for_anything() {
    let service = start().await;
    let leaked = service.issue("leaked").await;
    let kept = service.issue("kept").await;
    let near_miss = altered(&kept, SECRET_AT, other_than(kept.as_bytes()[SECRET_AT]));
    let other_service = other_service_token("globex").await;

    let for_junk = service
        .report(&[&near_miss, &other_service, "", "not a token", "ünïcödé"])
        .await;
    let for_leak = service
        .report(&[&format!("Authorization: Bearer {leaked}")])
        .await;

    assert_eq!(for_junk.0, StatusCode::ACCEPTED);
    assert_eq!(for_junk, for_leak, "the answer tells nothing");
    service.until_revoked(&leaked).await;
    // Reports are handled in order: the junk before the leak, and it
    // changed nothing.
    assert!(service.tokens.verify(&kept).await.is_ok());
    assert_eq!(service.leak_events().await, 1);
}

#[tokio::test]
async fn a_report_that_meets_a_store_outage_is_tried_again() {
    let service = start().await;
    let leaked = service.issue("leaked").await;
    service.store.fail_revokes_after(0);

    let (status, _) = service.report(&[&leaked]).await;

    assert_eq!(status, StatusCode::ACCEPTED);
    service.until_revoked(&leaked).await;
    assert_eq!(service.leak_events().await, 1);
}

#[tokio::test]
async fn an_oversized_or_overfull_report_is_refused_and_changes_nothing() {
    let service = start().await;
    let token = service.issue("ci").await;

    let huge = "x".repeat(MAX_BODY_BYTES);
    let (status, _) = service.report(&[&token, &huge]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let overfull = vec![token.as_str(); 1_001];
    let (status, body) = service.report(&overfull).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("too_many_tokens"), "{body}");

    let (status, _) = service.report_body(&json!({ "tokens": [token] })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A last, valid report is handled after any earlier one would have
    // been: the refused ones left the token alive.
    let sentinel = service.issue("sentinel").await;
    let (status, _) = service.report(&[&sentinel]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    service.until_revoked(&sentinel).await;
    assert!(service.tokens.verify(&token).await.is_ok());
    assert_eq!(service.leak_events().await, 1);
}

#[tokio::test]
async fn reports_are_rate_limited_per_client() {
    let service = start().await;
    // The whole burst passes; then, within a few more (the quota comes
    // back one request every two seconds, however slow this machine is),
    // a request is refused.
    for _ in 0..REQUESTS_PER_MINUTE {
        let (status, _) = service.report(&["nothing"]).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    for _ in 0..REQUESTS_PER_MINUTE {
        let response = service
            .client
            .post(format!("{}/credentials/revoke", service.url))
            .json(&json!({ "credentials": ["nothing"] }))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(response.headers()[RETRY_AFTER], "60");
            // Another client (another loopback address) is not held back.
            let other = reqwest::Client::builder()
                .no_proxy()
                .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
                .build()
                .unwrap();
            let response = other
                .post(format!("{}/credentials/revoke", service.url))
                .json(&json!({ "credentials": ["nothing"] }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            return;
        }
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    panic!("twice the limit passed");
}
