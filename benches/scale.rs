//! PostgreSQL at scale: a table of 10M tokens (`API_TOKENS_SCALE_ROWS`
//! changes it), then verification, issuing, the bytes each token takes on
//! disk, and a scope revocation of a 2M-token organization while other
//! tenants verify.
//!
//! ```sh
//! scripts/with-postgres cargo bench --bench scale --features postgres
//! ```
//!
//! The rows are loaded with one `INSERT … SELECT generate_series` per
//! million (a tenant far larger than issuing one by one could make in a
//! bench), shaped as the store writes them; then real tokens are issued
//! through the service, and those are what is verified. Figures are
//! single-run wall-clock times on whatever machine runs it, and the summary
//! says which.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_tokens::{IssueRequest, PostgresStore, TokenService, TokenStore};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use support::*;

/// Tokens of the organization whose revocation is timed.
const BIG_ORG: i64 = 2_000_000;
/// Real tokens issued through the service, spread over 100 organizations.
const LIVE: usize = 10_000;
/// Verifications timed one by one.
const VERIFIES: usize = 20_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Verifies `tokens` round-robin until `done` says stop (at least `min`
/// times), one at a time, and returns each call's time, sorted.
async fn verify_until(
    service: &TokenService,
    tokens: &[String],
    min: usize,
    done: impl Fn() -> bool,
) -> Vec<Duration> {
    let mut times = Vec::new();
    while times.len() < min || !done() {
        let token = &tokens[(times.len() * 7919) % tokens.len()];
        let started = Instant::now();
        service.verify(token).await.expect("a live token verifies");
        times.push(started.elapsed());
    }
    times.sort();
    times
}

fn main() {
    let Ok(url) = std::env::var("API_TOKENS_POSTGRES_URL") else {
        println!(
            "no PostgreSQL server: run `scripts/with-postgres cargo bench --bench scale \
             --features postgres`"
        );
        return;
    };
    let rows: i64 = std::env::var("API_TOKENS_SCALE_ROWS")
        .ok()
        .and_then(|rows| rows.parse().ok())
        .unwrap_or(10_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let admin = PgPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
        for statement in ["DROP SCHEMA IF EXISTS scale CASCADE", "CREATE SCHEMA scale"] {
            sqlx::query(statement).execute(&admin).await.unwrap();
        }
        let options: PgConnectOptions = url.parse().unwrap();
        let options = options.options([("search_path", "scale")]);
        let store = PostgresStore::connect_lazy_with(options).with_timeout(Duration::from_secs(60));
        store.migrate().await.unwrap();

        // The bulk of the table: BIG_ORG tokens of organization `big` over 8
        // domains, the rest over 10,000 organizations. As a bulk load may,
        // without the counting and change-feed triggers (no replica
        // follows this table), counting the scopes once at the end.
        let loading = Instant::now();
        for trigger in ["api_tokens_counted", "api_tokens_noted"] {
            sqlx::query(&format!("ALTER TABLE scale.api_tokens DISABLE TRIGGER {trigger}"))
                .execute(&admin)
                .await
                .unwrap();
        }
        let mut loaded = 0;
        while loaded < rows {
            let chunk = (rows - loaded).min(1_000_000);
            sqlx::query(
                "INSERT INTO scale.api_tokens (id, scope_kind, org_id, domain_id, role, label, key_id, \
                 digest, created_at, created_by, expires_at, last_used_at) \
                 SELECT 'B' || lpad(n::text, 10, '0'), 'domain', \
                 CASE WHEN n <= $3 THEN 'big' ELSE 'org' || (n % 10000) END, \
                 'domain' || (n % 8), 'editor', 'a label of twenty chs', 1, \
                 decode(md5(n::text) || md5((n + 1)::text), 'hex'), \
                 now() - n * interval '1 second', 'user' || (n % 1000) || '@example.com', \
                 CASE WHEN n % 3 = 0 THEN now() + interval '90 days' END, \
                 CASE WHEN n % 2 = 0 THEN now() END \
                 FROM generate_series($1, $2) AS n",
            )
            .bind(loaded + 1)
            .bind(loaded + chunk)
            .bind(BIG_ORG)
            .execute(&admin)
            .await
            .unwrap();
            loaded += chunk;
            eprintln!("loaded {loaded} of {rows} rows ({:?})", loading.elapsed());
        }
        for statement in [
            "ALTER TABLE scale.api_tokens ENABLE TRIGGER api_tokens_counted",
            "ALTER TABLE scale.api_tokens ENABLE TRIGGER api_tokens_noted",
            "INSERT INTO scale.api_tokens_scope_counts (org_id, domain_id, live) \
             SELECT org_id, domain_id, count(*) FROM scale.api_tokens GROUP BY org_id, domain_id",
            "VACUUM ANALYZE scale.api_tokens",
        ] {
            sqlx::query(statement).execute(&admin).await.unwrap();
        }
        let load_time = loading.elapsed();

        let store: Arc<dyn TokenStore> = Arc::new(store.clone());
        let service = Arc::new(TokenService::new(
            api_tokens::TokenFormat::new(PREFIX).unwrap(),
            api_tokens::Keyring::new(api_tokens::KeyId::new(1), api_tokens::HashKey::from_bytes(&KEY)),
            store.clone(),
        ));

        // Issuing: LIVE tokens from 8 tasks at once.
        let admins = admins();
        let issuing = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                let (service, admins) = (service.clone(), admins.clone());
                tokio::spawn(async move {
                    let mut tokens = Vec::new();
                    for i in (task..LIVE).step_by(8) {
                        let scope = api_tokens::Scope::organization(org_id(i % 100));
                        let request = IssueRequest::new(scope, format!("live {i}"));
                        let issued = service.issue(&admins[i % 100], request).await.unwrap();
                        tokens.push(issued.token.expose_secret().to_owned());
                    }
                    tokens
                })
            })
            .collect();
        let mut live = Vec::new();
        for task in tasks {
            live.extend(task.await.unwrap());
        }
        let issue_rate = LIVE as f64 / issuing.elapsed().as_secs_f64();

        // Verification, one call at a time.
        let before = verify_until(&service, &live, VERIFIES, || true).await;

        // Bytes on disk per token: the table, its indexes and TOAST.
        let (bytes, count): (i64, i64) = sqlx::query_as(
            "SELECT pg_total_relation_size('scale.api_tokens'), count(*) FROM scale.api_tokens",
        )
        .fetch_one(&admin)
        .await
        .unwrap();

        // Scope revocations, back to back, while other tenants verify: `big`
        // (2M tokens), then its 8 domains (nothing left to revoke), then 300
        // organizations of about 800 tokens each.
        let revoking = {
            let service = service.clone();
            tokio::spawn(async move {
                let big = api_tokens::OrganizationId::new("big").unwrap();
                let mut scopes = vec![api_tokens::Scope::organization(big.clone())];
                scopes.extend((0..8).map(|d| {
                    let domain = api_tokens::DomainId::new(&format!("domain{d}")).unwrap();
                    api_tokens::Scope::domain(big.clone(), domain)
                }));
                scopes.extend((0..300).map(|n| {
                    let org = api_tokens::OrganizationId::new(&format!("org{n}")).unwrap();
                    api_tokens::Scope::organization(org)
                }));
                let mut times = Vec::new();
                let mut counts = Vec::new();
                for scope in scopes {
                    let admin = api_tokens::Actor::new(api_tokens::ActorId::new("ops").unwrap())
                        .with_grant(scope.clone(), api_tokens::Role::Admin);
                    let started = Instant::now();
                    let revoked = service.revoke_scope(&admin, &scope, None).await.unwrap();
                    times.push(started.elapsed());
                    counts.push(revoked.count);
                }
                (counts, times)
            })
        };
        let during = verify_until(&service, &live, 2_000, || revoking.is_finished()).await;
        let (counts, times) = revoking.await.unwrap();
        assert_eq!(counts[0], BIG_ORG as u64);
        let revoke_time = times[0];
        let others = times[1..].iter().max().copied().unwrap_or_default();

        println!("\nCPU: {}; PostgreSQL on loopback, one run", cpu_model());
        println!("{count} tokens loaded in {load_time:.1?}\n");
        println!("| figure | measured | target |");
        println!("|---|---|---|");
        println!(
            "| verify p50 / p99 ({VERIFIES} calls, one at a time) | {:.0?} / {:.0?} | |",
            percentile(&before, 0.5),
            percentile(&before, 0.99)
        );
        println!("| issue (8 tasks at once) | {issue_rate:.0} tokens/s | |");
        println!(
            "| bytes on disk per token (table, indexes, TOAST) | {} | |",
            bytes / count
        );
        println!("| revoke_scope of a {BIG_ORG}-token organization | {revoke_time:.0?} | ≤ 1 s |");
        println!(
            "| slowest of the 308 scope revocations after it (domains of it, ~800-token organizations) \
             | {others:.0?} | |"
        );
        println!(
            "| other tenants' verify p99 during the 309 revocations ÷ before ({} calls during) \
             | {:.0?} ÷ {:.0?} = {:.2}× | ≤ 2× |",
            during.len(),
            percentile(&during, 0.99),
            percentile(&before, 0.99),
            percentile(&during, 0.99).as_secs_f64() / percentile(&before, 0.99).as_secs_f64()
        );
    });
}
