//! The SQLite store, on real files: the conformance suite, a service over
//! it, migrations run twice, a process killed mid-write, and rows edited
//! into nonsense.

mod common;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api_tokens::store::ScopeFilter;
use api_tokens::{IssueRequest, SqliteStore, StoreError, TokenFormat, TokenStore, VerifyError};
use common::*;

/// A fresh, empty path for a database file, inside cargo's scratch dir.
fn fresh_path(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sqlite_store");
    std::fs::create_dir_all(&dir).unwrap();
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let path = dir.join(format!("{name}-{}-{n}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// The conformance suite, one test per check, each on a file of its own.
mod the_sqlite_store_keeps_the_contract {
    use super::*;

    api_tokens::conformance_tests!(|| async {
        let store = SqliteStore::open(fresh_path("conformance")).await.unwrap();
        Arc::new(store) as Arc<dyn TokenStore>
    });
}

#[tokio::test]
async fn tokens_outlive_the_store_and_migrating_twice_is_harmless() {
    let path = fresh_path("reopen");
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    store.migrate().await.unwrap();
    let service = service_over(store.clone());
    let admin = org_admin("acme");
    let kept = service
        .issue(&admin, IssueRequest::new(org("acme"), "kept"))
        .await
        .unwrap();
    let revoked = service
        .issue(&admin, IssueRequest::new(domain("acme", "shop"), "revoked"))
        .await
        .unwrap();
    service
        .revoke(&admin, &revoked.summary.scope, revoked.summary.id)
        .await
        .unwrap();
    store.pool().close().await;

    // Another process, later: the same file, migrated again.
    let reopened = service_over(Arc::new(SqliteStore::open(&path).await.unwrap()));
    let verified = reopened.verify(kept.token.expose_secret()).await.unwrap();
    assert_eq!(verified.id(), kept.summary.id);
    assert!(matches!(
        reopened.verify(revoked.token.expose_secret()).await,
        Err(VerifyError::Revoked)
    ));
    let listed = reopened
        .list(&admin, &org("acme"), Default::default())
        .await
        .unwrap();
    assert_eq!(listed.tokens, [kept.summary]);
}

#[tokio::test]
async fn a_row_edited_into_nonsense_is_corrupt_never_a_token() {
    let path = fresh_path("corrupt");
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let service = service_over(store.clone());
    let tokens = issue_rows_to_damage(&service).await;
    for edit in [
        "UPDATE api_tokens SET digest = x'010203' WHERE label = 'short digest'",
        "UPDATE api_tokens SET scope_kind = 'galaxy' WHERE label = 'unknown kind'",
        "UPDATE api_tokens SET permissions = 'segments:read Billing:Read' \
         WHERE label = 'bad permission'",
        "UPDATE api_tokens SET allowed_networks = '10.0.0.0/8 10.1.2.3/8' \
         WHERE label = 'bad network'",
        "UPDATE api_tokens SET rate_limit_requests = 0, rate_limit_period_secs = 60 \
         WHERE label = 'bad rate limit'",
        "UPDATE api_tokens SET disabled_at = 0 WHERE label = 'half disabled'",
    ] {
        let edited = sqlx::query(edit).execute(store.pool()).await.unwrap();
        assert_eq!(edited.rows_affected(), 1);
    }

    assert_damaged_rows_are_corrupt(&service, &*store, &tokens).await;
}

/// The child of the durability test: issues tokens into the file named by
/// `API_TOKENS_SQLITE_CHILD` and prints each one only once `issue` has
/// returned, until it is killed. Without that variable it does nothing.
#[tokio::test]
async fn durability_child() {
    let Ok(path) = std::env::var("API_TOKENS_SQLITE_CHILD") else {
        return;
    };
    let service = service_over(Arc::new(SqliteStore::open(&path).await.unwrap()));
    let admin = org_admin("acme");
    let mut stdout = std::io::stdout().lock();
    for n in 0.. {
        let issued = service
            .issue(&admin, IssueRequest::new(org("acme"), format!("token {n}")))
            .await
            .unwrap();
        writeln!(stdout, "{}", issued.token.expose_secret()).unwrap();
        stdout.flush().unwrap();
    }
}

#[tokio::test]
async fn tokens_acknowledged_before_a_sigkill_survive_it() {
    let path = fresh_path("killed");
    // Create the schema first, so the child only issues.
    SqliteStore::open(&path).await.unwrap().pool().close().await;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durability_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("API_TOKENS_SQLITE_CHILD", &path)
        .stdout(Stdio::piped())
        // Inherited: if the child dies of something else, the log says why.
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // The child's lines arrive on a thread, so a child gone silent fails the
    // test after a minute instead of hanging it.
    let (lines, acknowledged) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        // The test harness may print on the same line as the first token,
        // so tokens are found in lines, not assumed to start them.
        let format = TokenFormat::new(PREFIX).unwrap();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            for found in format.find_tokens(&line) {
                if lines.send(line[found.range].to_owned()).is_err() {
                    return;
                }
            }
        }
    });
    let mut recorded = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while recorded.len() < 200 {
        let left = deadline.saturating_duration_since(Instant::now());
        match acknowledged.recv_timeout(left) {
            Ok(line) => recorded.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the child acknowledged only {} tokens in a minute",
                    recorded.len()
                );
            }
        }
    }
    // SIGKILL, in the middle of whatever insert comes next.
    child.kill().unwrap();
    child.wait().unwrap();
    // Everything it acknowledged before dying counts, not just what was
    // read so far.
    reader.join().unwrap();
    recorded.extend(acknowledged.try_iter());

    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let integrity: (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(integrity.0, "ok");
    let service = service_over(store.clone());
    for token in &recorded {
        service.verify(token).await.unwrap();
    }
    // No half-written record: every row reads back whole, and the child's
    // acknowledged tokens are all there (plus at most the one in flight).
    let all = store
        .list(&ScopeFilter::Exactly(org("acme")), None, 100_000)
        .await
        .unwrap();
    assert!(
        all.len() >= recorded.len() && all.len() <= recorded.len() + 1,
        "{} rows for {} acknowledged tokens",
        all.len(),
        recorded.len()
    );
    assert!(all.iter().all(|record| {
        record
            .as_ref()
            .unwrap()
            .label
            .as_str()
            .starts_with("token ")
    }));
}

#[tokio::test]
async fn an_unopenable_file_is_unavailable() {
    let error = SqliteStore::open(Path::new("/nonexistent/dir/tokens.db"))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_corrupt() {
    let path = fresh_path("not-a-database");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let error = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
}

#[tokio::test]
async fn a_table_of_our_naming_and_labels_kept_under_older_rules() {
    use api_tokens::store::TableName;

    // The exported schema, run by a tool of our own into a file, for a
    // table named our way; SQLite takes no schema part.
    assert!(matches!(
        SqliteStore::migrations(&"main.tokens".parse::<TableName>().unwrap()),
        Err(api_tokens::TableNameError::SchemaNotSupported)
    ));
    let table: TableName = "billing_tokens".parse().unwrap();
    let path = fresh_path("custom-table");
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
    for migration in SqliteStore::migrations(&table).unwrap() {
        sqlx::raw_sql(&migration.sql).execute(&pool).await.unwrap();
    }
    let store = Arc::new(SqliteStore::from_pool(pool).with_table(table).unwrap());
    let service = service_over(store.clone());
    let admin = org_admin("acme");
    let issued = service
        .issue(&admin, IssueRequest::new(org("acme"), "billing"))
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    service.verify(token).await.unwrap();

    // A label the rules of today refuse (a zero-width space), as an older
    // version could have kept it: the token still verifies and lists.
    let edited = sqlx::query("UPDATE billing_tokens SET label = 'old' || char(8203) || 'style'")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(edited.rows_affected(), 1);
    service.verify(token).await.unwrap();
    let page = service
        .list(&admin, &org("acme"), Default::default())
        .await
        .unwrap();
    assert_eq!(page.tokens[0].label.as_str(), "old\u{200B}style");
    let revoked = service
        .revoke_scope(&admin, &org("acme"), None)
        .await
        .unwrap();
    assert_eq!(
        (revoked.count, revoked.first.as_slice()),
        (1, [issued.summary.id].as_slice())
    );
}

/// A file of the previous schema (migrations 1 to 3, recorded as `migrate`
/// records them) with a token in it opens with this version: migration 4
/// adds the columns, the token reads back as it was (unrestricted,
/// enabled) and still verifies, and the change feed follows a disable of
/// it (its trigger was made again with the new columns).
#[tokio::test]
async fn a_file_of_the_previous_schema_keeps_its_tokens_and_feeds_their_disabling() {
    use api_tokens::store::{TableName, TokenChange, UpdateOutcome};

    // The token as the previous version would have stored it: issued by a
    // service with the same key, its row written by hand.
    let memory = Arc::new(api_tokens::MemoryStore::new());
    let issued = service_over(memory.clone())
        .issue(
            &org_admin("acme"),
            IssueRequest::new(org("acme"), "from before"),
        )
        .await
        .unwrap();
    let record = memory.find(issued.summary.id).await.unwrap().unwrap();
    let micros = |at: time::OffsetDateTime| (at.unix_timestamp_nanos() / 1000) as i64;

    let path = fresh_path("previous-schema");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::sqlite::SqlitePool::connect_with(options)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE api_tokens_migrations (version INTEGER PRIMARY KEY, \
         name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let migrations = SqliteStore::migrations(&TableName::default()).unwrap();
    for migration in migrations.iter().filter(|migration| migration.version <= 3) {
        sqlx::raw_sql(&migration.sql).execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO api_tokens_migrations (version, name) VALUES ($1, $2)")
            .bind(i64::from(migration.version))
            .bind(migration.name)
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO api_tokens (id, scope_kind, org_id, domain_id, role, label, key_id, \
         digest, created_at, created_by, expires_at) \
         VALUES ($1, 'organization', 'acme', '', $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(record.id.to_string())
    .bind(record.role.to_string())
    .bind(record.label.as_str())
    .bind(i64::from(record.key_id.get()))
    .bind(record.digest.as_bytes().to_vec())
    .bind(micros(record.created_at))
    .bind(record.created_by.as_str())
    .bind(record.expires_at.map(micros))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    assert_eq!(store.find(record.id).await.unwrap(), Some(record.clone()));
    let service = service_over(store.clone());
    let token = issued.token.expose_secret();
    assert_eq!(service.verify(token).await.unwrap().id(), record.id);

    let changes = "SELECT count(*) FROM api_tokens_changes WHERE token_id = $1";
    let noted = || async {
        sqlx::query_scalar::<_, i64>(changes)
            .bind(record.id.to_string())
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    let before = noted().await;
    let disablement = api_tokens::Disablement {
        at: record.created_at,
        by: record.created_by.clone(),
    };
    let outcome = store
        .update(&record.scope, record.id, &TokenChange::Disable(disablement))
        .await
        .unwrap();
    assert_eq!(outcome, UpdateOutcome::Updated);
    assert_eq!(noted().await, before + 1, "the feed notes the disable");
    assert!(matches!(
        service.verify(token).await,
        Err(VerifyError::Disabled)
    ));
}
