//! Verification over the SQL stores, each beside a floor measured in the
//! same run: the same single-row `SELECT` by primary key, issued directly
//! through the same driver and pool, with no crate code around it.
//!
//! ```sh
//! scripts/with-postgres cargo bench --bench stores --features sqlite,postgres-tls
//! ```
//!
//! `scripts/with-postgres` starts a throwaway PostgreSQL server (with fsync
//! off: verification only reads) and says where in `API_TOKENS_POSTGRES_URL`.
//! Without it the PostgreSQL figures are left out, and the summary says so.
//! The SQLite store is a file under `target/`, opened as `SqliteStore::open`
//! opens it. Each store holds 2,000 tokens; every iteration verifies the next
//! of them, so each figure is one query's round trip plus what verify adds.

mod support;

use std::hint::black_box;
use std::sync::Arc;

use api_tokens::{IssueRequest, PostgresStore, SqliteStore, TokenService, TokenStore};
use criterion::Criterion;
use sqlx::postgres::PgPoolOptions;
use time::macros::datetime;
use tokio::runtime::Runtime;

use support::*;

const GROUP: &str = "stores";
const TOKENS: usize = 2_000;
const TARGET: f64 = 1.3;

/// The floor's query: the row `find_credential` reads, by primary key,
/// without the join to the scope revocations that verification also makes.
const SELECT: &str = "SELECT id, scope_kind, org_id, domain_id, role, label, key_id, digest, \
                      created_at, created_by, expires_at, revoked_at, revoked_by, revoke_reason, \
                      last_used_at, rotated_from, replaced_by \
                      FROM api_tokens WHERE id = ";

/// A token id as the SQL stores keep it: its text, as the token shows it.
fn stored_id(token: &str) -> String {
    token[ID_AT..SECRET_AT].to_owned()
}

/// Issues `TOKENS` tokens into `store`; returns the service and the texts.
async fn filled(store: Arc<dyn TokenStore>) -> (TokenService, Vec<String>) {
    let clock = api_tokens::testing::ManualClock::new(datetime!(2030-01-01 00:00 UTC));
    let service = api_tokens::TokenService::new(
        api_tokens::TokenFormat::new(PREFIX).unwrap(),
        api_tokens::Keyring::new(
            api_tokens::KeyId::new(1),
            api_tokens::HashKey::from_bytes(&KEY),
        ),
        store,
    )
    .with_clock(Arc::new(clock));
    let admins = admins();
    let mut tokens = Vec::with_capacity(TOKENS);
    for i in 0..TOKENS {
        let request = IssueRequest::new(scope_of(i), format!("token {i:014}"));
        let issued = service.issue(&admins[i % 1000], request).await.unwrap();
        tokens.push(issued.token.expose_secret().to_owned());
    }
    shuffle(&mut tokens);
    // Last-used tracking in its steady state, as in the verify bench.
    for token in &tokens {
        service.verify(token).await.unwrap();
    }
    service.flush_last_used().await.unwrap();
    (service, tokens)
}

fn bench_verify(
    c: &mut Criterion,
    runtime: &Runtime,
    name: &str,
    service: &TokenService,
    tokens: &[String],
) {
    let mut next = 0;
    c.benchmark_group(GROUP).bench_function(name, |b| {
        ran(GROUP, name);
        b.to_async(runtime).iter(|| {
            next = (next + 1) % tokens.len();
            let token = &tokens[next];
            async move { service.verify(black_box(token)).await.expect("valid") }
        })
    });
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut criterion = Criterion::default().configure_from_args();

    // SQLite: a fresh file.
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-stores.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let sqlite = runtime.block_on(SqliteStore::open(&path)).unwrap();
    let pool = sqlite.pool().clone();
    let (service, tokens) = runtime.block_on(filled(Arc::new(sqlite)));
    let ids: Vec<String> = tokens.iter().map(|token| stored_id(token)).collect();
    let mut next = 0;
    let select = format!("{SELECT}?1");
    criterion
        .benchmark_group(GROUP)
        .bench_function("sqlite_floor", |b| {
            ran(GROUP, "sqlite_floor");
            b.to_async(&runtime).iter(|| {
                next = (next + 1) % ids.len();
                let query = sqlx::query(&select).bind(ids[next].as_str());
                let pool = &pool;
                async move { query.fetch_optional(pool).await.unwrap().expect("a row") }
            })
        });
    bench_verify(&mut criterion, &runtime, "sqlite_verify", &service, &tokens);

    // PostgreSQL: a fresh schema on each server scripts/with-postgres
    // started: the plain one, and the TLS-only one (verify-full).
    for (backend, variable) in [
        ("postgres", "API_TOKENS_POSTGRES_URL"),
        ("postgres_tls", "API_TOKENS_POSTGRES_TLS_URL"),
    ] {
        let Ok(url) = std::env::var(variable) else {
            println!(
                "\n{backend} figures left out: run this bench with \
                 `scripts/with-postgres cargo bench --bench stores --features sqlite,postgres-tls`"
            );
            continue;
        };
        let pool = runtime.block_on(async {
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
                .unwrap();
            for statement in ["DROP SCHEMA IF EXISTS bench CASCADE", "CREATE SCHEMA bench"] {
                sqlx::query(statement).execute(&admin).await.unwrap();
            }
            let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
            PgPoolOptions::new()
                .max_connections(4)
                .connect_with(options.options([("search_path", "bench")]))
                .await
                .unwrap()
        });
        let store = PostgresStore::from_pool(pool.clone());
        runtime.block_on(store.migrate()).unwrap();
        let (service, tokens) = runtime.block_on(filled(Arc::new(store)));
        let ids: Vec<String> = tokens.iter().map(|token| stored_id(token)).collect();
        let mut next = 0;
        let select = format!("{SELECT}$1");
        let floor = format!("{backend}_floor");
        criterion
            .benchmark_group(GROUP)
            .bench_function(&floor, |b| {
                ran(GROUP, &floor);
                b.to_async(&runtime).iter(|| {
                    next = (next + 1) % ids.len();
                    let query = sqlx::query(&select).bind(ids[next].as_str());
                    let pool = &pool;
                    async move { query.fetch_optional(pool).await.unwrap().expect("a row") }
                })
            });
        let verify = format!("{backend}_verify");
        bench_verify(&mut criterion, &runtime, &verify, &service, &tokens);
    }

    criterion.final_summary();
    println!("\n| store | floor (SELECT by id) | verify | verify ÷ floor | target |");
    println!("|---|---|---|---|---|");
    for backend in ["sqlite", "postgres", "postgres_tls"] {
        let floor = estimate_ns(GROUP, &format!("{backend}_floor"));
        let verify = estimate_ns(GROUP, &format!("{backend}_verify"));
        if let (Some(floor), Some(verify)) = (floor, verify) {
            println!(
                "| {backend} | {:.1} µs | {:.1} µs | {:.2}× | ≤ {TARGET} |",
                floor / 1e3,
                verify / 1e3,
                verify / floor
            );
        }
    }
}
