//! The PostgreSQL server goes away mid-run and comes back: calls fail as
//! unavailable within a bounded time (no panic, no hang), the same service
//! recovers without being rebuilt, and no acknowledged revocation is lost.
//!
//! A binary of its own: it stops the server every other PostgreSQL test
//! uses, and cargo runs test binaries one after another. If it fails midway,
//! a guard brings the server back so the binaries after it still run.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_tokens::{
    IssueRequest, StoreError, TokenFormat, TokenId, TokenService, TokenStore, VerifyError,
};
use common::postgres::{fresh_schema, store_in};
use common::server::{ServerBack, pg_ctl, signal_server};
use common::*;

/// The two tests take the server down in turn, never at once.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `verify`, which must not take longer than `limit` whatever the server does.
async fn verify_within(
    service: &TokenService,
    token: &str,
    limit: Duration,
) -> Result<api_tokens::VerifiedToken, VerifyError> {
    tokio::time::timeout(limit, service.verify(token))
        .await
        .unwrap_or_else(|_| panic!("verify hung for more than {limit:?}"))
}

/// Waits until `token` verifies again, as the server comes back.
async fn until_back(service: &TokenService, token: &str) {
    let recovered = async {
        loop {
            match service.verify(token).await {
                Ok(_) => return,
                Err(VerifyError::Store(StoreError::Unavailable { .. })) => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(other) => panic!("after the outage: {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), recovered)
        .await
        .expect("the service recovers once the server is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_survives_the_server_going_away_and_coming_back() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let _server_back = ServerBack;
    let schema = fresh_schema().await;
    // Calls bounded at two seconds, so the test is quick.
    let store: Arc<dyn TokenStore> =
        Arc::new(store_in(&schema).await.with_timeout(Duration::from_secs(2)));
    let service = Arc::new(TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        api_tokens::Keyring::new(api_tokens::KeyId::new(1), key(1)),
        store,
    ));
    let admin = org_admin("acme");
    let kept = service
        .issue(&admin, IssueRequest::new(org("acme"), "kept"))
        .await
        .unwrap();
    let mut victims = Vec::new();
    for n in 0..400 {
        let issued = service
            .issue(
                &admin,
                IssueRequest::new(org("acme"), format!("victim {n}")),
            )
            .await
            .unwrap();
        victims.push((issued.token.expose_secret().to_owned(), issued.summary.id));
    }

    // Revokes stream in while the server is killed outright (an immediate
    // shutdown is a crash: no checkpoint, only what was committed).
    let acknowledged: Arc<Mutex<Vec<TokenId>>> = Arc::default();
    let revoking = {
        let (service, acknowledged) = (service.clone(), acknowledged.clone());
        let ids: Vec<TokenId> = victims.iter().map(|(_, id)| *id).collect();
        tokio::spawn(async move {
            for id in ids {
                match service.revoke(&org_admin("acme"), &org("acme"), id).await {
                    Ok(_) => acknowledged.lock().unwrap().push(id),
                    Err(_) => break,
                }
            }
        })
    };
    while acknowledged.lock().unwrap().len() < 50 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pg_ctl("stop", &["-m", "immediate"]);
    tokio::time::timeout(Duration::from_secs(10), revoking)
        .await
        .expect("revokes fail promptly once the server is gone")
        .unwrap();

    // During the outage: unavailable, promptly, for every kind of call.
    let started = Instant::now();
    match verify_within(
        &service,
        kept.token.expose_secret(),
        Duration::from_secs(10),
    )
    .await
    {
        Err(VerifyError::Store(StoreError::Unavailable { .. })) => {}
        other => panic!("a verify during the outage must be unavailable: {other:?}"),
    }
    let issuing = tokio::time::timeout(
        Duration::from_secs(10),
        service.issue(&admin, IssueRequest::new(org("acme"), "during")),
    )
    .await
    .expect("issue must not hang");
    assert!(
        matches!(
            issuing,
            Err(api_tokens::IssueError::Store(
                StoreError::Unavailable { .. }
            ))
        ),
        "{issuing:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // Back: the same service, not rebuilt, and every revocation it
    // acknowledged is still there.
    pg_ctl("start", &[]);
    until_back(&service, kept.token.expose_secret()).await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 50);
    for (token, id) in &victims {
        if acknowledged.contains(id) {
            assert!(
                matches!(service.verify(token).await, Err(VerifyError::Revoked)),
                "an acknowledged revocation of {id} was lost"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_fails_calls_within_the_timeout() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let _server_back = ServerBack;
    let schema = fresh_schema().await;
    let store: Arc<dyn TokenStore> =
        Arc::new(store_in(&schema).await.with_timeout(Duration::from_secs(2)));
    let service = TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        api_tokens::Keyring::new(api_tokens::KeyId::new(1), key(1)),
        store,
    );
    let issued = service
        .issue(&org_admin("acme"), IssueRequest::new(org("acme"), "kept"))
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    service.verify(token).await.unwrap();

    // Frozen, not gone: connections stay open and nothing answers, as with
    // a hung server or a network that drops packets.
    signal_server("STOP");
    let started = Instant::now();
    match verify_within(&service, token, Duration::from_secs(10)).await {
        Err(VerifyError::Store(StoreError::Unavailable { .. })) => {}
        other => panic!("a verify against a frozen server must be unavailable: {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(5),
        "the call fails at the store's timeout, not before, not much after: {waited:?}"
    );
    signal_server("CONT");
    until_back(&service, token).await;
}
