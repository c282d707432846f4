//! The PostgreSQL server the tests run against: `scripts/test` starts a
//! throwaway one and says where; without it, these tests fail and say so.

use std::sync::atomic::{AtomicU64, Ordering};

use api_tokens::PostgresStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The server's URL, or a panic that says how to get one.
pub fn url() -> String {
    std::env::var("API_TOKENS_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "these tests need a PostgreSQL server: run `scripts/test`, which installs and \
             starts a throwaway one, or set API_TOKENS_POSTGRES_URL to a database they may use"
        )
    })
}

/// A schema of its own for one store, so stores sharing the server start
/// empty and never see each other's rows.
pub async fn fresh_schema() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let schema = format!(
        "test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url())
        .await
        .unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    schema
}

/// A store of its own pool over `schema`, migrated.
pub async fn store_in(schema: &str) -> PostgresStore {
    let options: PgConnectOptions = url().parse().unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(options.options([("search_path", schema)]))
        .await
        .unwrap();
    let store = PostgresStore::from_pool(pool);
    store.migrate().await.unwrap();
    store
}

/// One edit per label of [`DAMAGED_LABELS`](super::DAMAGED_LABELS), each
/// damaging that row so it can no longer be read back as a valid record,
/// in PostgreSQL's dialect.
pub const DAMAGING_EDITS: [&str; 6] = [
    "UPDATE api_tokens SET digest = '\\x010203' WHERE label = 'short digest'",
    "UPDATE api_tokens SET scope_kind = 'galaxy' WHERE label = 'unknown kind'",
    "UPDATE api_tokens SET permissions = 'segments:read Billing:Read' \
     WHERE label = 'bad permission'",
    "UPDATE api_tokens SET allowed_networks = '10.0.0.0/8 10.1.2.3/8' \
     WHERE label = 'bad network'",
    "UPDATE api_tokens SET rate_limit_requests = 0, rate_limit_period_secs = 60 \
     WHERE label = 'bad rate limit'",
    "UPDATE api_tokens SET disabled_at = now() WHERE label = 'half disabled'",
];
