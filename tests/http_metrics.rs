//! Metrics (feature `metrics`) as Prometheus scrapes them: the example
//! service's `/metrics`, read over real HTTP before and after real
//! requests, moves by exactly what was done.
//!
//! A metrics recorder is global to the process, so every metrics test is
//! in this file (its own process), and they take turns ([`SERIAL`]): each
//! compares a scrape before with one after.

mod common;

// The example itself, not a copy of it: its `main` is not called here.
#[path = "../examples/axum_service/main.rs"]
#[allow(dead_code)]
mod axum_service;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use reqwest::StatusCode;
use serde_json::json;

use api_tokens::{IssueRequest, ReplicaOptions, ReplicatedStore, SqliteStore, TokenService};
use common::http::*;
use common::{
    CHECKSUM_AT, Fixture, HOUR, START, altered, domain, fixture, org, org_admin, other_than,
    service_over,
};

/// One test at a time: they share the process's counters.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The example's recorder, installed once for the process (before any
/// service is built, as the example does).
fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| axum_service::metrics::install().expect("the only recorder"))
        .clone()
}

/// The example service with its `/metrics` route, on a loopback port.
async fn serve_example(service: Arc<TokenService>) -> String {
    let router = axum_service::app(service.clone())
        .merge(axum_service::metrics::routes(recorder(), service));
    serve_with_connect_info(router).await
}

/// One scrape of `/metrics`: each sample's value by its series (name and
/// labels, as written), and the whole text.
struct Scrape {
    samples: HashMap<String, f64>,
    text: String,
}

impl Scrape {
    async fn of(url: &str) -> Scrape {
        let response = client().get(format!("{url}/metrics")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(content_type.starts_with("text/plain; version=0.0.4"));
        Scrape::parse(response.text().await.unwrap())
    }

    /// The exposition `text`, read.
    fn parse(text: String) -> Scrape {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("`series value`");
                let value = match value {
                    "+Inf" => f64::INFINITY,
                    value => value.parse().expect("a number"),
                };
                (series.to_owned(), value)
            })
            .collect();
        Scrape { samples, text }
    }

    /// The value of `series`, which must be exported.
    fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no series {series} in:\n{}", self.text))
    }

    /// How much `series` rose since `before` (where it may not have
    /// existed yet: zero then).
    fn rise(&self, before: &Scrape, series: &str) -> f64 {
        self.get(series) - before.samples.get(series).copied().unwrap_or(0.0)
    }
}

fn outcome(outcome: &str) -> String {
    format!(r#"api_tokens_verifications_total{{outcome="{outcome}"}}"#)
}

fn store_errors(operation: &str) -> String {
    format!(r#"api_tokens_store_errors_total{{operation="{operation}"}}"#)
}

const OUTCOMES: [&str; 8] = [
    "valid",
    "malformed",
    "invalid",
    "revoked",
    "expired",
    "disabled",
    "address_not_allowed",
    "store_error",
];

const DURATION_COUNT: &str = "api_tokens_verification_duration_seconds_count";
const ISSUED: &str = "api_tokens_tokens_issued_total";
const REVOKED: &str = "api_tokens_tokens_revoked_total";
const ROTATED: &str = "api_tokens_tokens_rotated_total";
const DROPPED: &str = "api_tokens_audit_events_dropped_total";

#[tokio::test]
async fn each_request_moves_its_metrics_by_exactly_what_it_did() {
    let _turn = SERIAL.lock().await;
    let _ = recorder();
    let Fixture {
        service,
        store,
        clock,
        ..
    } = fixture();
    let service = service
        .with_permissions(axum_service::permissions())
        .with_latency_sampling(NonZeroU32::MIN);
    let service = Arc::new(service);
    let url = serve_example(service.clone()).await;
    let client = client();
    let before = Scrape::of(&url).await;

    // Issue over HTTP, as the dashboard does.
    let create = async |path: &str| {
        let created = client
            .post(format!("{url}{path}/tokens"))
            .header("x-demo-user", "alice")
            .json(&json!({"label": "metrics"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let body: serde_json::Value = created.json().await.unwrap();
        let token = body["token"].as_str().unwrap().to_owned();
        let id = body["summary"]["id"].as_str().unwrap().to_owned();
        (token, id)
    };
    let use_token = async |token: &str| {
        let used = client
            .get(format!("{url}/organizations/acme/domains/shop/resource"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        used.status()
    };
    let (token, id) = create("/organizations/acme").await;

    // Verify: one valid, one malformed, one wrong secret.
    assert_eq!(use_token(&token).await, StatusCode::OK);
    assert_eq!(
        use_token("acme_not_a_token").await,
        StatusCode::UNAUTHORIZED
    );
    let position = CHECKSUM_AT - 1;
    let wrong_secret = altered(&token, position, other_than(token.as_bytes()[position]));
    assert_eq!(use_token(&wrong_secret).await, StatusCode::UNAUTHORIZED);

    // Revoke over HTTP, then the revoked token is refused.
    let revoked = client
        .delete(format!("{url}/organizations/acme/tokens/{id}"))
        .header("x-demo-user", "alice")
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    assert_eq!(use_token(&token).await, StatusCode::UNAUTHORIZED);

    // Two tokens of a domain, revoked with their scope; one rotated.
    create("/organizations/acme/domains/blog").await;
    create("/organizations/acme/domains/blog").await;
    let alice = org_admin("acme");
    let blog = domain("acme", "blog");
    let scope_revoked = service.revoke_scope(&alice, &blog, None).await.unwrap();
    assert_eq!(scope_revoked.count, 2);
    let (_, rotated_id) = create("/organizations/acme").await;
    let acme = org("acme");
    service
        .rotate(&alice, &acme, rotated_id.parse().unwrap(), Duration::ZERO)
        .await
        .unwrap();

    // A disabled token, one from outside its allowlist, an expired one.
    let issue = async |request: IssueRequest| {
        let issued = service.issue(&alice, request).await.unwrap();
        (issued.token.expose_secret().to_owned(), issued.summary.id)
    };
    let (paused, paused_id) = issue(IssueRequest::new(acme.clone(), "paused")).await;
    service.disable(&alice, &acme, paused_id).await.unwrap();
    assert_eq!(use_token(&paused).await, StatusCode::UNAUTHORIZED);
    let elsewhere = IssueRequest::new(acme.clone(), "elsewhere").allowed_networks(["192.0.2.0/24"]);
    let (elsewhere, _) = issue(elsewhere).await;
    assert_eq!(use_token(&elsewhere).await, StatusCode::FORBIDDEN);
    let (expiring, _) =
        issue(IssueRequest::new(acme.clone(), "brief").expires_at(START + HOUR)).await;
    clock.advance(2 * HOUR);
    assert_eq!(use_token(&expiring).await, StatusCode::UNAUTHORIZED);

    // A token found leaked in a paste.
    let (leaked, _) = issue(IssueRequest::new(acme.clone(), "leaked")).await;
    let paste = format!("deploy with TOKEN={leaked} please");
    let found = service
        .revoke_leaked(&paste, "a public paste")
        .await
        .unwrap();
    assert_eq!(found.revoked.len(), 1);

    // A store call that fails: the last-used write.
    store.fail_next_use_write();
    service.flush_last_used().await.unwrap_err();

    let after = Scrape::of(&url).await;
    let rises: Vec<(&str, f64)> = OUTCOMES
        .iter()
        .map(|name| (*name, after.rise(&before, &outcome(name))))
        .collect();
    assert_eq!(
        rises,
        [
            ("valid", 1.0),
            ("malformed", 1.0),
            ("invalid", 1.0),
            ("revoked", 1.0),
            ("expired", 1.0),
            ("disabled", 1.0),
            ("address_not_allowed", 1.0),
            ("store_error", 0.0),
        ]
    );
    // Sampling one in one: every verification timed.
    assert_eq!(after.rise(&before, DURATION_COUNT), 7.0);
    // Eight issued (a rotation's successor counts as rotated); one revoked
    // alone, two with their scope, one found leaked; one rotated.
    assert_eq!(after.rise(&before, ISSUED), 8.0);
    assert_eq!(after.rise(&before, REVOKED), 4.0);
    assert_eq!(after.rise(&before, ROTATED), 1.0);
    assert_eq!(after.rise(&before, DROPPED), 0.0);
    assert_eq!(after.rise(&before, &store_errors("record_uses")), 1.0);
    for operation in ["insert", "find_credential", "revoke", "list"] {
        assert_eq!(after.rise(&before, &store_errors(operation)), 0.0);
    }

    // Described, with the types Prometheus expects of their names.
    for (name, kind) in [
        ("api_tokens_verifications_total", "counter"),
        ("api_tokens_verification_duration_seconds", "histogram"),
        ("api_tokens_store_errors_total", "counter"),
        (ISSUED, "counter"),
        (REVOKED, "counter"),
        (ROTATED, "counter"),
        (DROPPED, "counter"),
    ] {
        assert!(
            after.text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} is no {kind}:\n{}",
            after.text
        );
        assert!(after.text.contains(&format!("# HELP {name} ")), "{name}");
    }
    // No token, id, organization or label is a label value.
    assert!(!after.text.contains(&id) && !after.text.contains("acme"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_from_every_thread_are_exact_at_a_scrape() {
    let _turn = SERIAL.lock().await;
    let _ = recorder();
    let service = Arc::new(service_over(Arc::new(api_tokens::MemoryStore::new())));
    let url = serve_example(service.clone()).await;
    let request = IssueRequest::new(org("acme"), "x");
    let issued = service.issue(&org_admin("acme"), request).await.unwrap();
    let token = issued.token.expose_secret().to_owned();
    let before = Scrape::of(&url).await;

    // Three fresh threads, ten calls each: none reaches its 64th call, so
    // none hands its counts over; the scrape does.
    tokio::task::block_in_place(|| {
        std::thread::scope(|threads| {
            for _ in 0..3 {
                threads.spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    for _ in 0..10 {
                        runtime.block_on(service.verify(&token)).unwrap();
                    }
                });
            }
        });
    });

    let after = Scrape::of(&url).await;
    assert_eq!(after.rise(&before, &outcome("valid")), 30.0);
    assert_eq!(after.rise(&before, DURATION_COUNT), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_worker_hands_counts_over_without_a_scrape() {
    let _turn = SERIAL.lock().await;
    let recorder = recorder();
    let service = Arc::new(service_over(Arc::new(api_tokens::MemoryStore::new())));
    let request = IssueRequest::new(org("acme"), "x");
    let issued = service.issue(&org_admin("acme"), request).await.unwrap();
    let token = issued.token.expose_secret().to_owned();
    let before = Scrape::parse(recorder.render());

    // On a fresh thread: five calls, none of them a timed one.
    tokio::task::block_in_place(|| {
        std::thread::scope(|threads| {
            threads.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                for _ in 0..5 {
                    runtime.block_on(service.verify(&token)).unwrap();
                }
            });
        });
    });
    assert_eq!(
        Scrape::parse(recorder.render()).rise(&before, &outcome("valid")),
        0.0,
        "not handed over yet"
    );

    let every = std::time::Duration::from_millis(10);
    let worker = service.spawn_maintenance(api_tokens::Maintenance::new().flush_every(every));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Scrape::parse(recorder.render()).rise(&before, &outcome("valid")) < 5.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never handed the counts over"
        );
        tokio::time::sleep(every).await;
    }
    worker.shutdown().await;
    assert_eq!(
        Scrape::parse(recorder.render()).rise(&before, &outcome("valid")),
        5.0
    );
}

#[tokio::test(flavor = "current_thread")]
async fn one_verification_in_64_on_a_thread_is_timed_by_default() {
    let _turn = SERIAL.lock().await;
    let _ = recorder();
    let service = Arc::new(service_over(Arc::new(api_tokens::MemoryStore::new())));
    let url = serve_example(service.clone()).await;
    let (token, _) = {
        let admin = org_admin("acme");
        let request = IssueRequest::new(org("acme"), "x");
        let issued = service.issue(&admin, request).await.unwrap();
        (issued.token.expose_secret().to_owned(), issued.summary.id)
    };
    let before = Scrape::of(&url).await;
    // On this one thread, 128 calls in a row take exactly two samples,
    // wherever the thread's countdown stood.
    for _ in 0..128 {
        service.verify(&token).await.unwrap();
    }
    let after = Scrape::of(&url).await;
    assert_eq!(after.rise(&before, &outcome("valid")), 128.0);
    assert_eq!(after.rise(&before, DURATION_COUNT), 2.0);
}

#[tokio::test]
async fn a_replica_reports_its_lag() {
    let _turn = SERIAL.lock().await;
    let _ = recorder();
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("http_metrics-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    // Generous, so a feed read that a loaded machine stalls for a few hundred
    // milliseconds still leaves the replica current.
    let bound = Duration::from_secs(2);
    let replica = ReplicatedStore::sqlite(
        SqliteStore::open(&path).await.unwrap(),
        ReplicaOptions::default().with_max_staleness(bound),
    );
    replica.ready().await.unwrap();
    let url = serve_example(Arc::new(service_over(Arc::new(replica)))).await;
    // The gauge is set every quarter of the bound.
    tokio::time::sleep(bound / 2).await;
    let lag = Scrape::of(&url).await.get("api_tokens_replica_lag_seconds");
    assert!(
        (0.0..bound.as_secs_f64()).contains(&lag),
        "a current replica's lag: {lag}"
    );
}
