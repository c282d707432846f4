//! The PostgreSQL store, against a real server (`scripts/test` starts one):
//! the conformance suite, two service instances sharing one database,
//! migrations run from many instances at once, and rows edited into
//! nonsense.

mod common;

use std::sync::Arc;

use api_tokens::{IssueRequest, PostgresStore, StoreError, TokenStore, VerifyError};
use common::postgres::{DAMAGING_EDITS, fresh_schema, store_in, url};
use common::*;

/// The conformance suite, one test per check, each in a schema of its own.
mod the_postgres_store_keeps_the_contract {
    use super::*;

    api_tokens::conformance_tests!(|| async {
        let schema = fresh_schema().await;
        Arc::new(store_in(&schema).await) as Arc<dyn TokenStore>
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_every_token_and_every_revocation() {
    let schema = fresh_schema().await;
    // Two services, two pools: two instances of one service.
    let a = service_over(Arc::new(store_in(&schema).await));
    let b = service_over(Arc::new(store_in(&schema).await));
    let admin = org_admin("acme");
    let issued = a
        .issue(&admin, IssueRequest::new(domain("acme", "shop"), "shared"))
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    assert_eq!(b.verify(token).await.unwrap().id(), issued.summary.id);

    a.revoke(&admin, &issued.summary.scope, issued.summary.id)
        .await
        .unwrap();
    // The very next verify on the other instance refuses it.
    assert!(matches!(b.verify(token).await, Err(VerifyError::Revoked)));
    let listed = b
        .list(&admin, &domain("acme", "shop"), Default::default())
        .await
        .unwrap();
    assert!(listed.tokens[0].revoked.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_migrating_at_once_do_not_collide_and_again_is_harmless() {
    let schema = fresh_schema().await;
    // Six instances starting at once, each migrating as it connects.
    let (a, b, c, d, e, f) = tokio::join!(
        store_in(&schema),
        store_in(&schema),
        store_in(&schema),
        store_in(&schema),
        store_in(&schema),
        store_in(&schema),
    );
    for store in [a, b, c, d, e, f] {
        store.migrate().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_row_edited_into_nonsense_is_corrupt_never_a_token() {
    let schema = fresh_schema().await;
    let store = Arc::new(store_in(&schema).await);
    let service = service_over(store.clone());
    let tokens = issue_rows_to_damage(&service).await;
    for edit in DAMAGING_EDITS {
        let edited = sqlx::query(edit).execute(store.pool()).await.unwrap();
        assert_eq!(edited.rows_affected(), 1);
    }
    assert_damaged_rows_are_corrupt(&service, &*store, &tokens).await;
}

#[tokio::test]
async fn a_server_that_is_not_there_is_unavailable() {
    // The test server's address with a port nothing listens on.
    let mut unreachable: sqlx::postgres::PgConnectOptions = url().parse().unwrap();
    unreachable = unreachable.port(1);
    let started = std::time::Instant::now();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_lazy_with(unreachable);
    let store = PostgresStore::from_pool(pool);
    let error = store.migrate().await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
