//! The PostgreSQL server goes away mid-run and comes back: calls fail as
//! unavailable within a bounded time (no panic, no hang), the same service
//! recovers without being rebuilt, and no acknowledged revocation is lost.
//!
//! A binary of its own: it stops the server every other PostgreSQL test
//! uses, and cargo runs test binaries one after another.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_tokens::{IssueRequest, StoreError, TokenFormat, TokenService, VerifyError};
use common::postgres::{fresh_schema, store_in};
use common::*;

/// Runs `pg_ctl <action>` on the test server, as the user that owns it.
fn pg_ctl(action: &str) {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with `scripts/test`, which starts the server")
        })
    };
    let pg_ctl = format!("{}/pg_ctl", var("API_TOKENS_PG_BIN"));
    let args = [
        "-D",
        &var("API_TOKENS_PG_DATA"),
        "-l",
        &var("API_TOKENS_PG_LOG"),
        "-w",
        action,
    ];
    let user = var("API_TOKENS_PG_USER");
    let status =
        if std::env::var("USER").ok().as_deref() == Some(user.as_str()) || user == whoami() {
            Command::new(pg_ctl).args(args).status()
        } else {
            Command::new("runuser")
                .args(["-u", &user, "--", &pg_ctl])
                .args(args)
                .status()
        }
        .expect("pg_ctl runs");
    assert!(status.success(), "pg_ctl {action} failed");
}

fn whoami() -> String {
    let output = Command::new("id").arg("-un").output().expect("id runs");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_survives_the_server_going_away_and_coming_back() {
    let schema = fresh_schema().await;
    let service = TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        api_tokens::Keyring::new(api_tokens::KeyId::new(1), key(1)),
        Arc::new(store_in(&schema).await),
    );
    let admin = org_admin("acme");
    let kept = service
        .issue(&admin, IssueRequest::new(org("acme"), "kept"))
        .await
        .unwrap();
    let revoked = service
        .issue(&admin, IssueRequest::new(org("acme"), "revoked"))
        .await
        .unwrap();
    // Acknowledged just before the outage.
    service.revoke(&admin, revoked.summary.id).await.unwrap();

    pg_ctl("stop");
    let started = Instant::now();
    match service.verify(kept.token.expose_secret()).await {
        Err(VerifyError::Store(StoreError::Unavailable { .. })) => {}
        other => panic!("a verify during the outage must be unavailable: {other:?}"),
    }
    let issuing = service
        .issue(&admin, IssueRequest::new(org("acme"), "during"))
        .await;
    assert!(
        matches!(
            issuing,
            Err(api_tokens::IssueError::Store(
                StoreError::Unavailable { .. }
            ))
        ),
        "{issuing:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "calls must fail within the pool's bounded wait, not hang"
    );

    pg_ctl("start");
    // The same service, not rebuilt: its pool makes new connections.
    let recovered = async {
        loop {
            match service.verify(kept.token.expose_secret()).await {
                Ok(verified) => return verified,
                Err(VerifyError::Store(StoreError::Unavailable { .. })) => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(other) => panic!("after the outage: {other:?}"),
            }
        }
    };
    let verified = tokio::time::timeout(Duration::from_secs(30), recovered)
        .await
        .expect("the service recovers once the server is back");
    assert_eq!(verified.id(), kept.summary.id);
    assert!(matches!(
        service.verify(revoked.token.expose_secret()).await,
        Err(VerifyError::Revoked)
    ));
}
