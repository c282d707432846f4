//! A rate limit shared by a fleet, through the `RateLimiter` trait: two
//! service instances, each with its own layer and its own limiter object,
//! counting in one PostgreSQL table, together allow a token its limit once,
//! where two local limiters allow it once each.
//!
//! Needs the test PostgreSQL server (`scripts/test`, or
//! `scripts/with-postgres cargo test --all-features --test http_shared_rate_limit`).

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use api_tokens::http::{LocalRateLimiter, RateDecision, RateLimiter, RateLimits, TokenLayer};
use api_tokens::{MemoryStore, RateLimit, TokenId, TokenStore, async_trait};
use reqwest::StatusCode;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use common::http::*;
use common::*;

/// A fixed-window counter in PostgreSQL: each token's requests are counted
/// per window of its limit's period, numbered from an epoch every instance
/// agrees on, in one atomic statement. Cruder than a GCRA (a client may
/// spend one window's quota at its end and the next one's at its start),
/// but one round trip and one row per token and window. Rows of past
/// windows are never read again: a real one deletes them now and then
/// (`DELETE FROM rate_windows WHERE window_index < $current - 1`, from a
/// background job), or the table grows with every window; this test's
/// table lives for one test.
struct PostgresWindows {
    pool: PgPool,
    epoch: SystemTime,
}

impl PostgresWindows {
    async fn create_table(pool: &PgPool) {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS rate_windows (
                 token TEXT NOT NULL,
                 window_index BIGINT NOT NULL,
                 used BIGINT NOT NULL,
                 PRIMARY KEY (token, window_index)
             )",
        )
        .execute(pool)
        .await
        .unwrap();
    }
}

#[async_trait]
impl RateLimiter for PostgresWindows {
    async fn check(&self, token: TokenId, limit: RateLimit) -> RateDecision {
        let elapsed = self.epoch.elapsed().unwrap_or(Duration::ZERO);
        let period = limit.period().as_secs();
        let window = elapsed.as_secs() / period;
        let window_end = Duration::from_secs((window + 1) * period);
        let reset = window_end.saturating_sub(elapsed);
        let used: Result<i64, sqlx::Error> = sqlx::query_scalar(
            "INSERT INTO rate_windows (token, window_index, used) VALUES ($1, $2, 1)
             ON CONFLICT (token, window_index) DO UPDATE SET used = rate_windows.used + 1
             RETURNING used",
        )
        .bind(token.to_string())
        .bind(i64::try_from(window).unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await;
        match used {
            Ok(used) if used <= i64::from(limit.requests()) => RateDecision::allowed(
                u32::try_from(i64::from(limit.requests()) - used).unwrap_or(0),
                reset,
            ),
            Ok(_) => RateDecision::denied(reset),
            // This limiter puts availability first: a database outage lets
            // requests through rather than refusing every token.
            Err(error) => {
                tracing::warn!(%error, "rate limit not checked: the database failed");
                RateDecision::allowed(0, reset)
            }
        }
    }
}

async fn pool_in(schema: &str) -> PgPool {
    let options: PgConnectOptions = common::postgres::url().parse().unwrap();
    PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.options([("search_path", schema)]))
        .await
        .unwrap()
}

/// Two instances of one service over one token store, each behind a layer
/// with the rate limiter `limiter()` makes for it: their URLs, and a token
/// limited to `limit`.
async fn two_instances(
    limit: RateLimit,
    mut limiter: impl AsyncFnMut() -> Arc<dyn RateLimiter>,
) -> ([String; 2], String) {
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let first = Arc::new(service_over(store.clone()));
    let second = Arc::new(service_over(store));
    let issued = first
        .issue(&org_admin("acme"), acme_token().rate_limit(limit))
        .await
        .unwrap();
    let mut urls = Vec::new();
    for instance in [first, second] {
        let layer = TokenLayer::new(instance).rate_limits(RateLimits::new(limiter().await));
        urls.push(serve_with_connect_info(whoami_router(Some(layer))).await);
    }
    let urls = [urls[0].clone(), urls[1].clone()];
    (urls, issued.token.expose_secret().to_owned())
}

async fn status(url: &str, token: &str) -> StatusCode {
    client()
        .get(format!("{url}/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// How many of `attempts` requests, alternating between the instances,
/// pass.
async fn passed(urls: &[String; 2], token: &str, attempts: usize) -> usize {
    let mut passed = 0;
    for attempt in 0..attempts {
        match status(&urls[attempt % 2], token).await {
            StatusCode::OK => passed += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    passed
}

#[tokio::test]
async fn two_instances_sharing_a_limiter_allow_the_limit_once_between_them() {
    let schema = common::postgres::fresh_schema().await;
    PostgresWindows::create_table(&pool_in(&schema).await).await;
    // A day's window: the test never spans two, however slow the machine.
    let limit = RateLimit::new(4, DAY).unwrap();
    let epoch = SystemTime::now();
    let (urls, token) = two_instances(limit, async || {
        // Each instance its own object and pool: they share only the table.
        let limiter: Arc<dyn RateLimiter> = Arc::new(PostgresWindows {
            pool: pool_in(&schema).await,
            epoch,
        });
        limiter
    })
    .await;

    assert_eq!(passed(&urls, &token, 10).await, 4);
}

#[tokio::test]
async fn two_instances_with_local_limiters_allow_the_limit_each() {
    // What the docs warn about: the local limit is per instance.
    let limit = RateLimit::new(4, DAY).unwrap();
    let (urls, token) = two_instances(limit, async || {
        let limiter: Arc<dyn RateLimiter> = Arc::new(LocalRateLimiter::new());
        limiter
    })
    .await;

    assert_eq!(passed(&urls, &token, 10).await, 8);
}
