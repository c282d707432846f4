//! The replicated store over real PostgreSQL and SQLite: the conformance
//! suite through the replica, two instances sharing one database, damaged
//! rows, and a replica that cannot prove itself current failing closed.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_tokens::{
    IssueRequest, ReplicaOptions, ReplicatedStore, SqliteStore, TokenService, TokenStore,
    VerifyError,
};
use common::postgres::{DAMAGING_EDITS, fresh_schema, store_in};
use common::*;

async fn replica_in(schema: &str) -> Arc<ReplicatedStore> {
    let store = ReplicatedStore::postgres(store_in(schema).await, ReplicaOptions::default());
    store.ready().await.unwrap();
    Arc::new(store)
}

/// The conformance suite through a replica of PostgreSQL, one test per
/// check, each in a schema of its own: every write is followed by a read of
/// the change feed, so each check's verification reads prove the feed's
/// triggers saw the write.
mod a_postgres_replica_keeps_the_contract {
    use super::*;

    api_tokens::conformance_tests!(|| async {
        let schema = fresh_schema().await;
        replica_in(&schema).await as Arc<dyn TokenStore>
    });
}

/// A fresh, empty path for a database file, inside cargo's scratch dir.
fn fresh_sqlite_path() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("replica");
    std::fs::create_dir_all(&dir).unwrap();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path = dir.join(format!("{}-{n}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// The conformance suite through a replica of SQLite, one test per check,
/// each on a file of its own.
mod a_sqlite_replica_keeps_the_contract {
    use super::*;

    api_tokens::conformance_tests!(|| async {
        let store = ReplicatedStore::sqlite(
            SqliteStore::open(fresh_sqlite_path()).await.unwrap(),
            ReplicaOptions::default(),
        );
        store.ready().await.unwrap();
        Arc::new(store) as Arc<dyn TokenStore>
    });
}

/// Polls `verify` on `service` until `done` says so, for at most `bound`
/// past `since`; how long after `since` that took.
async fn until(
    service: &TokenService,
    token: &str,
    since: Instant,
    bound: Duration,
    done: impl Fn(&Result<api_tokens::VerifiedToken, VerifyError>) -> bool,
) -> Duration {
    loop {
        let outcome = service.verify(token).await;
        if done(&outcome) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() <= bound,
            "still {outcome:?} {:?} after",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_see_each_others_tokens_and_revocations_within_the_bound() {
    let schema = fresh_schema().await;
    let (a, b) = (replica_in(&schema).await, replica_in(&schema).await);
    let bound = b.max_staleness();
    let (a, b) = (service_over(a), service_over(b.clone()));
    let admin = org_admin("acme");
    for _ in 0..20 {
        let issued = a
            .issue(&admin, IssueRequest::new(domain("acme", "shop"), "shared"))
            .await
            .unwrap();
        let token = issued.token.expose_secret();
        // Read your own writes: at once on A.
        a.verify(token).await.unwrap();
        until(&b, token, Instant::now(), bound, |v| v.is_ok()).await;
        a.revoke(&admin, &issued.summary.scope, issued.summary.id)
            .await
            .unwrap();
        let revoked_at = Instant::now();
        assert!(matches!(a.verify(token).await, Err(VerifyError::Revoked)));
        until(&b, token, revoked_at, bound, |v| {
            matches!(v, Err(VerifyError::Revoked))
        })
        .await;
    }
    // A scope revocation too.
    let issued = a
        .issue(&admin, IssueRequest::new(domain("acme", "shop"), "scoped"))
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    until(&b, token, Instant::now(), bound, |v| v.is_ok()).await;
    a.revoke_scope(&admin, &org("acme"), None).await.unwrap();
    let revoked_at = Instant::now();
    assert!(matches!(a.verify(token).await, Err(VerifyError::Revoked)));
    until(&b, token, revoked_at, bound, |v| {
        matches!(v, Err(VerifyError::Revoked))
    })
    .await;
}

/// Offboarding revokes by ordinary updates of token rows, which the change
/// feed's triggers follow: the writer's replica refuses the tokens when the
/// call returns, every other replica within its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_offboarding_is_seen_by_every_replica_within_the_bound() {
    let schema = fresh_schema().await;
    let (a, b) = (replica_in(&schema).await, replica_in(&schema).await);
    let bound = b.max_staleness();
    let (service_a, service_b) = (service_over(a.clone()), service_over(b));
    let (leaver, stayer) = (org_admin("acme"), domain_admin("acme", "shop"));
    let mut tokens = Vec::new();
    for (admin, scope) in [
        (&leaver, org("acme")),
        (&leaver, domain("acme", "shop")),
        (&leaver, domain("acme", "blog")),
        (&stayer, domain("acme", "shop")),
    ] {
        let issued = service_a
            .issue(admin, IssueRequest::new(scope, "offboarding"))
            .await
            .unwrap();
        let token = issued.token.expose_secret().to_owned();
        until(&service_b, &token, Instant::now(), bound, |v| v.is_ok()).await;
        tokens.push((token, admin.id == leaver.id));
    }
    let revocation = api_tokens::Revocation {
        at: time::OffsetDateTime::now_utc(),
        by: stayer.id.clone(),
        reason: None,
    };
    // Two at a time: the step a service repeats until fewer come back.
    let mut revoked = 0;
    loop {
        let step = a
            .revoke_created_by(&leaver.id, revocation.clone(), 2)
            .await
            .unwrap();
        revoked += step.len();
        if step.len() < 2 {
            break;
        }
    }
    assert_eq!(revoked, 3);
    let revoked_at = Instant::now();
    for (token, left) in &tokens {
        let on_a = service_a.verify(token).await;
        if *left {
            assert!(matches!(on_a, Err(VerifyError::Revoked)), "{on_a:?}");
            until(&service_b, token, revoked_at, bound, |v| {
                matches!(v, Err(VerifyError::Revoked))
            })
            .await;
        } else {
            assert!(on_a.is_ok(), "the stayer's token is untouched: {on_a:?}");
        }
    }
    let (stayers, _) = tokens.iter().find(|(_, left)| !left).unwrap();
    assert!(service_b.verify(stayers).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_row_edited_into_nonsense_is_corrupt_in_the_replica_too() {
    let schema = fresh_schema().await;
    let replica = replica_in(&schema).await;
    let service = service_over(replica.clone());
    let tokens = issue_rows_to_damage(&service).await;
    let direct = store_in(&schema).await;
    for edit in DAMAGING_EDITS {
        let edited = sqlx::query(edit).execute(direct.pool()).await.unwrap();
        assert_eq!(edited.rows_affected(), 1);
    }
    // Edited behind the replica's back: the feed brings the damage in.
    tokio::time::sleep(replica.max_staleness()).await;
    assert_damaged_rows_are_corrupt(&service, &*replica, &tokens).await;
    // And a replica loaded afterwards reads it as damaged too.
    let fresh = replica_in(&schema).await;
    assert_damaged_rows_are_corrupt(&service_over(fresh.clone()), &*fresh, &tokens).await;
}

async fn issue(
    service: &TokenService,
    admin: &api_tokens::Actor,
    label: &str,
) -> api_tokens::IssuedToken {
    let request = IssueRequest::new(org("acme"), label);
    service.issue(admin, request).await.unwrap()
}

/// Waits until the feed of `schema` holds no change row: pruned.
async fn until_pruned(schema: &str) {
    let direct = store_in(schema).await;
    let started = Instant::now();
    loop {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens_changes")
            .fetch_one(direct.pool())
            .await
            .unwrap();
        if rows == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{rows} change rows never pruned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_whose_changes_were_pruned_reloads_instead_of_missing_them() {
    let schema = fresh_schema().await;
    // The writer prunes every change row at once; the follower reads the
    // feed only every 15 s, or after its own writes.
    let writer = ReplicatedStore::postgres(
        store_in(&schema).await,
        ReplicaOptions::default().with_change_retention(Duration::ZERO),
    );
    let follower = ReplicatedStore::postgres(
        store_in(&schema).await,
        ReplicaOptions::default()
            .with_max_staleness(Duration::from_secs(60))
            .with_notifications(false),
    );
    let (writer, follower) = (Arc::new(writer), Arc::new(follower));
    writer.ready().await.unwrap();
    follower.ready().await.unwrap();
    let (w, f) = (service_over(writer), service_over(follower.clone()));
    let admin = org_admin("acme");
    let issued = issue(&w, &admin, "issued while the follower looked away").await;
    let token = issued.token.expose_secret();
    assert!(matches!(f.verify(token).await, Err(VerifyError::Invalid)));
    until_pruned(&schema).await;
    // The follower's own write makes it read the feed: its position was
    // pruned, so it reloads, and sees the token.
    issue(&f, &admin, "a write of the follower's").await;
    f.verify(token).await.unwrap();
    assert_eq!(follower.loads(), 2, "the start-up load and the reload");

    w.revoke(&admin, &issued.summary.scope, issued.summary.id)
        .await
        .unwrap();
    until_pruned(&schema).await;
    issue(&f, &admin, "another write of the follower's").await;
    assert!(matches!(f.verify(token).await, Err(VerifyError::Revoked)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sqlite_replicas_of_one_file_see_each_others_writes_within_the_bound() {
    let path = std::env::temp_dir().join(format!("api-tokens-shared-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let open = async || {
        let store = ReplicatedStore::sqlite(
            SqliteStore::open(&path).await.unwrap(),
            ReplicaOptions::default(),
        );
        store.ready().await.unwrap();
        Arc::new(store)
    };
    let (a, b) = (open().await, open().await);
    let bound = b.max_staleness();
    let (a, b) = (service_over(a), service_over(b));
    let admin = org_admin("acme");
    let issued = issue(&a, &admin, "shared file").await;
    let token = issued.token.expose_secret();
    until(&b, token, Instant::now(), bound, |v| v.is_ok()).await;
    a.revoke(&admin, &issued.summary.scope, issued.summary.id)
        .await
        .unwrap();
    let revoked_at = Instant::now();
    until(&b, token, revoked_at, bound, |v| {
        matches!(v, Err(VerifyError::Revoked))
    })
    .await;
    drop((a, b));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_answers_as_soon_as_it_is_ready() {
    let schema = fresh_schema().await;
    let direct = store_in(&schema).await;
    // Enough rows that loading them takes longer than the bound below: a
    // copy counted current only as of the load's start would be stale the
    // moment it is ready.
    for statement in [
        "ALTER TABLE api_tokens DISABLE TRIGGER api_tokens_noted",
        "ALTER TABLE api_tokens DISABLE TRIGGER api_tokens_counted",
        "INSERT INTO api_tokens (id, scope_kind, org_id, domain_id, role, label, key_id, digest, \
         created_at, created_by) \
         SELECT 'A' || lpad(n::text, 10, '0'), 'domain', 'bulk', 'domain' || (n % 8), 'viewer', \
         'bulk ' || n, 1, decode(md5(n::text) || md5(n::text), 'hex'), \
         now() - n * interval '1 second', 'loader' FROM generate_series(1, 40000) AS n",
        "ALTER TABLE api_tokens ENABLE TRIGGER api_tokens_noted",
        "ALTER TABLE api_tokens ENABLE TRIGGER api_tokens_counted",
    ] {
        sqlx::query(statement).execute(direct.pool()).await.unwrap();
    }
    let service = service_over(Arc::new(direct));
    let issued = issue(&service, &org_admin("acme"), "issued before the replica").await;

    let bound = Duration::from_millis(300);
    let replica = ReplicatedStore::postgres(
        store_in(&schema).await,
        ReplicaOptions::default().with_max_staleness(bound),
    );
    let loading = Instant::now();
    replica.ready().await.unwrap();
    let loaded_in = loading.elapsed();
    assert_eq!(replica.len(), 40_001);
    let credential = replica.find_credential(issued.summary.id).await;
    assert!(
        matches!(credential, Ok(Some(_))),
        "right after ready() (the load took {loaded_in:?}, the bound is {bound:?}): {credential:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_transaction_elsewhere_never_makes_a_replica_reload() {
    let schema = fresh_schema().await;
    // A transaction that stays open, with an xid, through the whole test:
    // it holds back every snapshot's xmin, as a long report or a backup
    // does.
    let holder = store_in(&schema).await;
    let mut long = holder.pool().begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *long)
        .await
        .unwrap();
    // The writer prunes every change row it may, every quarter second.
    let writer = Arc::new(ReplicatedStore::postgres(
        store_in(&schema).await,
        ReplicaOptions::default().with_change_retention(Duration::ZERO),
    ));
    let follower = replica_in(&schema).await;
    writer.ready().await.unwrap();
    let bound = follower.max_staleness();
    let (w, f) = (service_over(writer), service_over(follower.clone()));
    let admin = org_admin("acme");
    for _ in 0..8 {
        let issued = issue(&w, &admin, "while a transaction stays open").await;
        let token = issued.token.expose_secret();
        until(&f, token, Instant::now(), bound, |v| v.is_ok()).await;
        w.revoke(&admin, &issued.summary.scope, issued.summary.id)
            .await
            .unwrap();
        until(&f, token, Instant::now(), bound, |v| {
            matches!(v, Err(VerifyError::Revoked))
        })
        .await;
        // Pruning runs meanwhile.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(follower.loads(), 1, "the follower reloaded");
    long.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_truncated_table_empties_every_replica_within_the_bound() {
    let schema = fresh_schema().await;
    let replica = replica_in(&schema).await;
    let bound = replica.max_staleness();
    let service = service_over(replica.clone());
    let issued = issue(&service, &org_admin("acme"), "about to be truncated").await;
    let token = issued.token.expose_secret();
    service.verify(token).await.unwrap();
    // By hand, behind the store's back: no row trigger fires.
    let direct = store_in(&schema).await;
    sqlx::query("TRUNCATE api_tokens")
        .execute(direct.pool())
        .await
        .unwrap();
    let truncated_at = Instant::now();
    until(&service, token, truncated_at, bound, |v| {
        matches!(v, Err(VerifyError::Invalid))
    })
    .await;
    assert_eq!(replica.loads(), 2, "the start-up load and the reload");
    assert!(replica.is_empty());
}
