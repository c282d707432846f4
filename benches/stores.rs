//! Verification over the SQL stores, each beside a floor measured in the
//! same run: the same single-row `SELECT` by primary key, issued directly
//! through the same driver and pool, with no crate code around it.
//!
//! ```sh
//! scripts/with-postgres cargo bench --bench stores --features sqlite,postgres
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

/// The floor's query: what `find_credential` asks, by primary key.
const SELECT: &str = "SELECT id, scope_kind, org_id, domain_id, role, key_id, digest, \
                      expires_at, revoked_at, replaced_by, last_used_at \
                      FROM api_tokens WHERE id = ";

/// A token id as the SQL stores keep it: its bits with the top one flipped.
fn stored_id(token: &str) -> i64 {
    let bits = decode_base62(&token.as_bytes()[ID_AT..SECRET_AT]).expect("a token's id");
    (bits ^ (1 << 63)) as i64
}

/// Issues `TOKENS` tokens into `store`; returns the service and the texts.
async fn filled(store: Arc<dyn TokenStore>) -> (TokenService, Vec<String>) {
    let clock = api_tokens::ManualClock::new(datetime!(2030-01-01 00:00 UTC));
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
    let ids: Vec<i64> = tokens.iter().map(|token| stored_id(token)).collect();
    let mut next = 0;
    let select = format!("{SELECT}?1");
    criterion
        .benchmark_group(GROUP)
        .bench_function("sqlite_floor", |b| {
            ran(GROUP, "sqlite_floor");
            b.to_async(&runtime).iter(|| {
                next = (next + 1) % ids.len();
                let query = sqlx::query(&select).bind(ids[next]);
                let pool = &pool;
                async move { query.fetch_optional(pool).await.unwrap().expect("a row") }
            })
        });
    bench_verify(&mut criterion, &runtime, "sqlite_verify", &service, &tokens);

    // PostgreSQL: a fresh schema on the server scripts/with-postgres started.
    match std::env::var("API_TOKENS_POSTGRES_URL") {
        Err(_) => println!(
            "\nPostgreSQL figures left out: run this bench with \
             `scripts/with-postgres cargo bench --bench stores --features sqlite,postgres`"
        ),
        Ok(url) => {
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
            let ids: Vec<i64> = tokens.iter().map(|token| stored_id(token)).collect();
            let mut next = 0;
            let select = format!("{SELECT}$1");
            criterion
                .benchmark_group(GROUP)
                .bench_function("postgres_floor", |b| {
                    ran(GROUP, "postgres_floor");
                    b.to_async(&runtime).iter(|| {
                        next = (next + 1) % ids.len();
                        let query = sqlx::query(&select).bind(ids[next]);
                        let pool = &pool;
                        async move { query.fetch_optional(pool).await.unwrap().expect("a row") }
                    })
                });
            bench_verify(
                &mut criterion,
                &runtime,
                "postgres_verify",
                &service,
                &tokens,
            );
        }
    }

    criterion.final_summary();
    println!("\n| store | floor (SELECT by id) | verify | verify ÷ floor | target |");
    println!("|---|---|---|---|---|");
    for backend in ["sqlite", "postgres"] {
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
