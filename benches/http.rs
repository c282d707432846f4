//! What the HTTP middleware costs per request.
//!
//! Three measurements in one run, on one thread, in process (no socket, whose
//! cost would drown everything else):
//!
//! - `verify`: `TokenService::verify` alone, the floor any token check pays;
//! - `router`: an axum router answering a request on a route without the
//!   layer, the cost of routing itself;
//! - `router + layer`: the same request through `TokenLayer` to a handler
//!   that extracts the `VerifiedToken`.
//!
//! The target (issue 7): `router + layer` under 1.5× of `verify + router`.
//! The ratio is printed after criterion's own report.
//!
//! Run with `cargo bench --bench http --features axum`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_tokens::http::TokenLayer;
use api_tokens::{
    Actor, ActorId, HashKey, IssueRequest, KeyId, Keyring, MemoryStore, OrganizationId, Role,
    Scope, TokenFormat, TokenService, VerifiedToken,
};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header::AUTHORIZATION};
use axum::routing::get;
use criterion::Criterion;
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// Tokens in the store besides the one presented, so verify looks up a
/// table of realistic size rather than a single entry.
const OTHER_TOKENS: usize = 1_000;
const TARGET: f64 = 1.5;

const VERIFY: &str = "verify";
const ROUTER: &str = "router";
const LAYERED: &str = "router + layer";

/// Per-iteration times of every sample criterion took, by benchmark.
type Samples = Mutex<BTreeMap<&'static str, Vec<f64>>>;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let (service, token) = runtime.block_on(service_with_tokens());
    let samples = Samples::default();

    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &runtime, &service, &token, &samples);
    criterion.final_summary();
    report(&samples.into_inner().unwrap_or_else(|e| e.into_inner()));
}

async fn service_with_tokens() -> (Arc<TokenService>, String) {
    let service = TokenService::new(
        TokenFormat::new("acme").expect("a valid prefix"),
        Keyring::new(KeyId::new(1), HashKey::from_bytes([7; 32])),
        Arc::new(MemoryStore::new()),
    );
    let org = Scope::organization(OrganizationId::new("acme").expect("a valid id"));
    let admin =
        Actor::new(ActorId::new("admin").expect("a valid id")).with_grant(org.clone(), Role::Admin);
    let mut last = None;
    for n in 0..=OTHER_TOKENS {
        let issued = service
            .issue(&admin, IssueRequest::new(org.clone(), format!("token {n}")))
            .await
            .expect("the memory store accepts every token");
        last = Some(issued.token.expose_secret().to_owned());
    }
    (Arc::new(service), last.expect("at least one token"))
}

/// The handler behind the layer: it takes the verified token, as real
/// handlers do, so the extractor's cost counts as the middleware's.
async fn protected(token: VerifiedToken) -> StatusCode {
    black_box(token);
    StatusCode::OK
}

async fn bare() -> StatusCode {
    StatusCode::OK
}

const PATH: &str = "/organizations/acme/domains/shop/resource";

fn bench(
    criterion: &mut Criterion,
    runtime: &Runtime,
    service: &Arc<TokenService>,
    token: &str,
    samples: &Samples,
) {
    let bearer = format!("Bearer {token}");
    // Both routers get the identical request, header included, so building
    // it costs the two the same.
    let request = || {
        Request::get(PATH)
            .header(AUTHORIZATION, &bearer)
            .body(Body::empty())
            .expect("a valid request")
    };
    let router = Router::new().route(PATH, get(bare));
    let layered = Router::new()
        .route(PATH, get(protected))
        .route_layer(TokenLayer::new(service.clone()));

    let mut group = criterion.benchmark_group("http");
    group.bench_function(VERIFY, |b| {
        b.to_async(runtime).iter_custom(|iters| {
            timed(samples, VERIFY, iters, || async {
                service.verify(token).await.expect("the token is valid")
            })
        })
    });
    for (name, router) in [(ROUTER, &router), (LAYERED, &layered)] {
        group.bench_function(name, |b| {
            b.to_async(runtime).iter_custom(|iters| {
                timed(samples, name, iters, || async {
                    let response = router.clone().oneshot(request()).await;
                    let response = response.expect("routers are infallible");
                    assert_eq!(response.status(), StatusCode::OK);
                    response
                })
            })
        });
    }
    group.finish();
}

/// Runs `routine` `iters` times, keeps the time per iteration under `name`,
/// and returns the total for criterion.
async fn timed<F, Fut, T>(samples: &Samples, name: &'static str, iters: u64, routine: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = T>,
{
    let start = Instant::now();
    for _ in 0..iters {
        black_box(routine().await);
    }
    let elapsed = start.elapsed();
    let per_iteration = elapsed.as_nanos() as f64 / iters.max(1) as f64;
    samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name)
        .or_default()
        .push(per_iteration);
    elapsed
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

/// Prints the three medians and the ratio against the target, when all
/// three ran (a filter on the command line may have skipped some).
fn report(samples: &BTreeMap<&'static str, Vec<f64>>) {
    let get = |name| {
        samples
            .get(name)
            .and_then(|values: &Vec<f64>| median(values))
    };
    let (Some(verify), Some(router), Some(layered)) = (get(VERIFY), get(ROUTER), get(LAYERED))
    else {
        println!("http: run all three benchmarks for the overhead ratio");
        return;
    };
    let floor = verify + router;
    let ratio = layered / floor;
    println!();
    println!("http middleware, median time per request over every sample:");
    println!("  {VERIFY:<16} {verify:>9.0} ns");
    println!("  {ROUTER:<16} {router:>9.0} ns");
    println!("  {LAYERED:<16} {layered:>9.0} ns");
    println!(
        "  layer's own cost {:>9.0} ns (router + layer − router − verify)",
        layered - floor
    );
    println!(
        "  ratio (router + layer) / (verify + router) = {ratio:.2}x; target under {TARGET:.2}x: {}",
        if ratio < TARGET { "met" } else { "MISSED" }
    );
}
