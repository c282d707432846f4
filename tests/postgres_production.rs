//! PostgreSQL as production runs it, against a real server (`scripts/test`
//! starts one): the service's own migration tool and table name, rows
//! damaged by hand, a commit the client gave up on, management load beside
//! verification, and calls abandoned at their deadline.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_tokens::store::TableName;
use api_tokens::testing::{ManualClock, MemoryAuditSink};
use api_tokens::{
    AuditEvent, DamagedToken, IssueRequest, PostgresStore, RevokeError, Revoked, StoreError,
    TokenFormat, TokenService, TokenStore, VerifyError,
};
use common::postgres::{fresh_schema, store_in, url};
use common::*;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};

fn service_over(store: Arc<dyn TokenStore>, audit: Arc<MemoryAuditSink>) -> TokenService {
    TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        api_tokens::Keyring::new(api_tokens::KeyId::new(1), key(1)),
        store,
    )
    .with_audit_sink(audit)
}

async fn connection() -> PgConnection {
    PgConnection::connect(&url()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exported_schema_runs_in_another_tool_into_a_table_of_our_naming() {
    let schema = fresh_schema().await;
    let table: TableName = format!("{schema}.billing_tokens").parse().unwrap();
    // The service's own migration tool: here, a bare connection running
    // the exported text, statement by statement as a tool would.
    let mut tool = connection().await;
    for migration in PostgresStore::migrations(&table) {
        sqlx::raw_sql(&migration.sql)
            .execute(&mut tool)
            .await
            .unwrap_or_else(|error| panic!("migration {}: {error}", migration.name));
    }

    // The store on it, through a pool with no search path: the name is
    // schema-qualified.
    let pool = PgPoolOptions::new().connect(&url()).await.unwrap();
    let store = Arc::new(PostgresStore::from_pool(pool).with_table(table.clone()));
    let clock = ManualClock::new(START);
    let service = service_over(store.clone(), Arc::new(MemoryAuditSink::new()))
        .with_clock(Arc::new(clock.clone()));
    let admin = org_admin("acme");
    let issued = service
        .issue(&admin, IssueRequest::new(domain("acme", "shop"), "billing"))
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    assert_eq!(service.verify(token).await.unwrap().id(), issued.summary.id);
    let page = service
        .list(&admin, &domain("acme", "shop"), Default::default())
        .await
        .unwrap();
    assert_eq!(page.tokens, std::slice::from_ref(&issued.summary));

    // Read by hand, the row says what the product says.
    let (id, created_at, org_id): (String, String, String) = sqlx::query_as(&format!(
        "SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), org_id \
         FROM \"{schema}\".billing_tokens"
    ))
    .fetch_one(&mut tool)
    .await
    .unwrap();
    assert_eq!(id, issued.summary.id.to_string());
    assert_eq!(created_at, "2030-01-01 09:00:00");
    assert_eq!(org_id, "acme");
    // Nothing else was created: no table of the default name.
    let default_table: Option<String> = sqlx::query_scalar(&format!(
        "SELECT to_regclass('\"{schema}\".api_tokens')::text"
    ))
    .fetch_one(&mut tool)
    .await
    .unwrap();
    assert_eq!(default_table, None);

    // Scope revocation and purge work there too.
    let revoked = service
        .revoke_scope(&admin, &org("acme"), None)
        .await
        .unwrap();
    assert_eq!(revoked.count, 1);
    assert!(matches!(
        service.verify(token).await,
        Err(VerifyError::Revoked)
    ));
    clock.advance(31 * DAY);
    assert_eq!(service.purge(30 * DAY).await.unwrap(), 1);
    assert!(store.find(issued.summary.id).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_damaged_outside_its_credential_is_listed_and_stays_revocable() {
    let schema = fresh_schema().await;
    let store = Arc::new(store_in(&schema).await);
    let audit = Arc::new(MemoryAuditSink::new());
    let service = service_over(store.clone(), audit.clone());
    let admin = org_admin("acme");
    let mut tokens = Vec::new();
    for label in ["first", "damaged", "third"] {
        let issued = service
            .issue(&admin, IssueRequest::new(org("acme"), label))
            .await
            .unwrap();
        tokens.push((issued.token.expose_secret().to_owned(), issued.summary.id));
    }
    let (damaged_token, damaged) = tokens[1].clone();
    let edited = sqlx::query("UPDATE api_tokens SET created_by = 'has space' WHERE id = $1")
        .bind(damaged.to_string())
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(edited.rows_affected(), 1);

    // Fails closed, and find and find_credential agree.
    let corrupt_naming_it = |error: &StoreError| matches!(error, StoreError::Corrupt { id: Some(id), .. } if *id == damaged);
    match service.verify(&damaged_token).await {
        Err(VerifyError::Store(error)) => assert!(corrupt_naming_it(&error), "{error:?}"),
        other => panic!("a damaged row must not verify: {other:?}"),
    }
    assert!(corrupt_naming_it(&store.find(damaged).await.unwrap_err()));
    assert!(corrupt_naming_it(
        &store.find_credential(damaged).await.unwrap_err()
    ));

    // The list shows the others and names the damaged one.
    let page = service
        .list(&admin, &org("acme"), Default::default())
        .await
        .unwrap();
    let listed: Vec<_> = page.tokens.iter().map(|summary| summary.id).collect();
    assert_eq!(listed, [tokens[2].1, tokens[0].1]);
    match page.damaged.as_slice() {
        [DamagedToken { id, problem }] => {
            assert_eq!(*id, Some(damaged));
            assert!(problem.contains("actor id"), "{problem}");
        }
        other => panic!("one damaged row expected: {other:?}"),
    }

    // Revocable by an admin of its scope, at its scope: not by anyone
    // else, nor through another scope.
    assert!(matches!(
        service
            .revoke(&org_admin("globex"), &org("acme"), damaged)
            .await,
        Err(RevokeError::NotFound { .. })
    ));
    assert!(matches!(
        service
            .revoke(&admin, &domain("acme", "shop"), damaged)
            .await,
        Err(RevokeError::NotFound { .. })
    ));
    assert!(matches!(
        service.revoke(&admin, &org("acme"), damaged).await,
        Ok(Revoked::Now(_))
    ));
    let revoked_at: Option<String> =
        sqlx::query_scalar("SELECT revoked_by FROM api_tokens WHERE id = $1")
            .bind(damaged.to_string())
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(revoked_at.as_deref(), Some(admin.id.as_str()));
    service.flush_audit().await;
    assert!(audit.events().iter().any(|event| matches!(
        event,
        AuditEvent::Revoked { token, role: None, label: None, .. } if *token == damaged
    )));
    // And its scope's revocation takes the rest, whatever that row holds.
    let revoked = service
        .revoke_scope(&admin, &org("acme"), None)
        .await
        .unwrap();
    assert_eq!(revoked.count, 2);
}

/// Where [`slow_revocations`] makes the server wait.
enum Slow {
    /// At commit, once the revocation is made (a deferred trigger).
    AtCommit,
    /// In the revoking statement itself (a plain trigger).
    InStatement,
}

/// Makes the server take `seconds` over every revocation with reason
/// `slow commit`, `where` says.
async fn slow_revocations(store: &PostgresStore, seconds: f64, slow: Slow) {
    let timing = match slow {
        Slow::AtCommit => {
            "CONSTRAINT TRIGGER slow AFTER UPDATE ON api_tokens \
                           DEFERRABLE INITIALLY DEFERRED"
        }
        Slow::InStatement => "TRIGGER slow AFTER UPDATE ON api_tokens",
    };
    for statement in [
        format!(
            "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep({seconds}); RETURN NULL; END $$"
        ),
        format!(
            "CREATE {timing} FOR EACH ROW \
             WHEN (NEW.revoke_reason = 'slow commit') EXECUTE FUNCTION slow()"
        ),
    ] {
        sqlx::query(&statement).execute(store.pool()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_the_client_gave_up_on_lands_and_is_audited_once() {
    let schema = fresh_schema().await;
    let store = store_in(&schema).await.with_timeout(Duration::from_secs(2));
    // The server commits after 3 s: after the client's 2 s deadline,
    // before the server's own (twice the client's), with a second to
    // spare on each side for a loaded machine.
    slow_revocations(&store, 3.0, Slow::AtCommit).await;
    let store = Arc::new(store);
    let audit = Arc::new(MemoryAuditSink::new());
    let service = service_over(store.clone(), audit.clone());
    let admin = org_admin("acme");
    let mut ids = Vec::new();
    for label in ["retried", "left alone"] {
        let issued = service
            .issue(&admin, IssueRequest::new(org("acme"), label))
            .await
            .unwrap();
        ids.push(issued.summary.id);
    }
    let revocations_of = |id| {
        let events = audit.events();
        events
            .iter()
            .filter(|event| matches!(event, AuditEvent::Revoked { token, .. } if *token == id))
            .count()
    };

    for &id in &ids {
        let started = Instant::now();
        let answer = service
            .revoke_because(&admin, &org("acme"), id, Some("slow commit"))
            .await;
        assert!(
            matches!(
                answer,
                Err(RevokeError::Store(StoreError::Unavailable { .. }))
            ),
            "{answer:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the client's deadline"
        );
    }
    // The server goes on and commits both.
    let landed = async {
        loop {
            let revoked: i64 =
                sqlx::query_scalar("SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL")
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
            if revoked == 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), landed)
        .await
        .expect("the server commits what the client gave up on");

    // A retry reports the true state, and its event goes out now, once.
    match service.revoke(&admin, &org("acme"), ids[0]).await {
        Ok(Revoked::Already(earlier)) => {
            assert_eq!(earlier.reason.unwrap().as_str(), "slow commit");
            assert_eq!(earlier.by, admin.id);
        }
        other => panic!("the retry must see the earlier revocation: {other:?}"),
    }
    service.flush_audit().await;
    assert_eq!(revocations_of(ids[0]), 1);
    // The one nobody retried: the flush asked the store and found it.
    assert_eq!(revocations_of(ids[1]), 1);
    // Retrying and flushing again adds nothing.
    assert!(matches!(
        service.revoke(&admin, &org("acme"), ids[0]).await,
        Ok(Revoked::Already(_))
    ));
    service.flush_audit().await;
    assert_eq!((revocations_of(ids[0]), revocations_of(ids[1])), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_off_at_its_deadline_closes_its_connection_and_the_server_lets_go() {
    let schema = fresh_schema().await;
    let options: PgConnectOptions = url().parse().unwrap();
    let options = options
        .options([("search_path", schema.as_str())])
        .application_name("cut-off-test");
    let pool = |connections| {
        PgPoolOptions::new()
            .max_connections(connections)
            .connect_lazy_with(options.clone())
    };
    // One management connection: a cut-off call that handed it back busy
    // would leave the next call nothing to run on.
    let store = PostgresStore::from_pools(pool(4), pool(1)).with_timeout(Duration::from_secs(2));
    store.migrate().await.unwrap();
    // Longer than the client waits (2 s) and than the server allows (4 s).
    slow_revocations(&store, 30.0, Slow::InStatement).await;
    let store = Arc::new(store);
    let service = service_over(store.clone(), Arc::new(MemoryAuditSink::new()));
    let admin = org_admin("acme");
    let issued = service
        .issue(&admin, IssueRequest::new(org("acme"), "slow"))
        .await
        .unwrap();
    let id = issued.summary.id;

    let started = Instant::now();
    assert!(matches!(
        service
            .revoke_because(&admin, &org("acme"), id, Some("slow commit"))
            .await,
        Err(RevokeError::Store(StoreError::Unavailable { .. }))
    ));
    // The client's deadline ended it, not the server's.
    assert!(started.elapsed() < Duration::from_secs(4));
    // Its connection was closed, not handed back still busy: the next call
    // gets a fresh one at once, while the server still runs the old one's.
    let found = store.find(id).await.expect("the next call runs at once");
    assert!(found.unwrap().revoked.is_none(), "not done yet");

    // The server abandons the commit at its own deadline: nothing of ours
    // still runs, the revocation rolled back, and its row lock is free.
    let mut watcher = connection().await;
    let gone = async {
        loop {
            let running: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = 'cut-off-test' AND state <> 'idle'",
            )
            .fetch_one(&mut watcher)
            .await
            .unwrap();
            if running == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .expect("the server abandons the statement soon after the client did");
    assert!(store.find(id).await.unwrap().unwrap().revoked.is_none());
    assert!(matches!(
        service.revoke(&admin, &org("acme"), id).await,
        Ok(Revoked::Now(_))
    ));
}

/// Adds `count` tokens of organization `org`, spread over 8 domains, with
/// one statement: a tenant far larger than the tests could issue one by one.
/// As a bulk load may, it leaves the counting and change-feed triggers out
/// (no replica follows these tables) and counts the scopes in one
/// statement afterwards.
async fn bulk_tokens(store: &PostgresStore, org: &str, count: i64) {
    let mut tx = store.management_pool().begin().await.unwrap();
    for statement in [
        "ALTER TABLE api_tokens DISABLE TRIGGER api_tokens_counted",
        "ALTER TABLE api_tokens DISABLE TRIGGER api_tokens_noted",
        "INSERT INTO api_tokens (id, scope_kind, org_id, domain_id, role, label, key_id, digest, \
         created_at, created_by) \
         SELECT 'A' || lpad(n::text, 10, '0'), 'domain', $1, 'domain' || (n % 8), 'viewer', \
         'bulk ' || n, 1, decode(md5(n::text) || md5(n::text), 'hex'), \
         now() - n * interval '1 second', 'loader' FROM generate_series(1, $2) AS n",
        "ALTER TABLE api_tokens ENABLE TRIGGER api_tokens_counted",
        "ALTER TABLE api_tokens ENABLE TRIGGER api_tokens_noted",
        "INSERT INTO api_tokens_scope_counts (org_id, domain_id, live) \
         SELECT org_id, domain_id, count(*) FROM api_tokens WHERE org_id = $1 \
         GROUP BY org_id, domain_id",
    ] {
        let mut query = sqlx::query(statement);
        if statement.contains("$1") {
            query = query.bind(org);
        }
        if statement.contains("$2") {
            query = query.bind(count);
        }
        query.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    sqlx::query("ANALYZE api_tokens")
        .execute(store.management_pool())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_tenants_management_load_never_starves_anothers_verification() {
    let schema = fresh_schema().await;
    let store = store_in(&schema).await;
    bulk_tokens(&store, "heavy", 200_000).await;
    let store = Arc::new(store);
    let service = Arc::new(service_over(
        store.clone(),
        Arc::new(MemoryAuditSink::new()),
    ));
    let mut light = Vec::new();
    for n in 0..20 {
        let issued = service
            .issue(
                &org_admin("light"),
                IssueRequest::new(org("light"), format!("light {n}")),
            )
            .await
            .unwrap();
        light.push(issued.token.expose_secret().to_owned());
    }

    // Tenant heavy's admin: eight scope revocations at once, each of its
    // whole 200,000-token organization or a domain of it, twice the
    // management pool.
    let heavy = org_admin("heavy");
    let management: Vec<_> = (0..8)
        .map(|n| {
            let (service, heavy) = (service.clone(), heavy.clone());
            tokio::spawn(async move {
                let scope = if n % 2 == 0 {
                    org("heavy")
                } else {
                    domain("heavy", &format!("domain{n}"))
                };
                service.revoke_scope(&heavy, &scope, None).await
            })
        })
        .collect();
    // Meanwhile, tenant light verifies, and every verify succeeds.
    let mut latencies = Vec::new();
    while !management.iter().all(|call| call.is_finished()) || latencies.len() < 200 {
        let token = &light[latencies.len() % light.len()];
        let started = Instant::now();
        service.verify(token).await.unwrap();
        latencies.push(started.elapsed());
    }
    let mut revoked = 0;
    for call in management {
        revoked += call.await.unwrap().unwrap().count;
    }
    assert_eq!(revoked, 200_000, "every heavy token revoked exactly once");
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "tenant light: {} verifies during tenant heavy's 8 scope revocations, p50 {:?}, p99 {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        p99
    );
}

#[test]
fn a_store_built_outside_the_runtime_makes_its_management_pool_inside_it() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let schema = runtime.block_on(fresh_schema());
    let options: PgConnectOptions = url().parse().unwrap();
    let pool = runtime.block_on(async {
        PgPoolOptions::new()
            .connect_with(options.options([("search_path", schema.as_str())]))
            .await
            .unwrap()
    });
    // Outside any runtime, as a service may wire its store.
    let store = PostgresStore::from_pool(pool);
    // Its Debug names no part of the connection's credentials.
    let password = url()
        .split(':')
        .nth(2)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_owned();
    let shown = format!("{store:?}");
    assert!(!shown.contains(&password), "{shown}");
    runtime.block_on(async {
        store.migrate().await.unwrap();
        assert!(
            store
                .find("00000000007".parse().unwrap())
                .await
                .unwrap()
                .is_none()
        );
    });
}
