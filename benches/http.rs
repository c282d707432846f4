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
//! The ratio, from criterion's own estimates, is printed after its report.
//!
//! Run with `cargo bench --bench http --features axum`.

mod support;

use std::hint::black_box;
use std::sync::Arc;

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

const GROUP: &str = "http";
const VERIFY: &str = "verify";
const ROUTER: &str = "router";
const LAYERED: &str = "router_with_layer";

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let (service, token) = runtime.block_on(service_with_tokens());

    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &runtime, &service, &token);
    criterion.final_summary();
    report();
}

async fn service_with_tokens() -> (Arc<TokenService>, String) {
    let service = TokenService::new(
        TokenFormat::new("acme").expect("a valid prefix"),
        Keyring::new(KeyId::new(1), HashKey::from_bytes(&[7; 32])),
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

fn bench(criterion: &mut Criterion, runtime: &Runtime, service: &Arc<TokenService>, token: &str) {
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

    let mut group = criterion.benchmark_group(GROUP);
    group.bench_function(VERIFY, |b| {
        support::ran(GROUP, VERIFY);
        b.to_async(runtime)
            .iter(|| async { service.verify(token).await.expect("the token is valid") })
    });
    for (name, router) in [(ROUTER, &router), (LAYERED, &layered)] {
        group.bench_function(name, |b| {
            support::ran(GROUP, name);
            b.to_async(runtime).iter(|| async {
                let response = router.clone().oneshot(request()).await;
                let response = response.expect("routers are infallible");
                assert_eq!(response.status(), StatusCode::OK);
                response
            })
        });
    }
    group.finish();
}

/// Prints the three figures and the ratio against the target, when all
/// three ran (a filter on the command line may have skipped some).
fn report() {
    let get = |name| support::estimate_ns(GROUP, name);
    let (Some(verify), Some(router), Some(layered)) = (get(VERIFY), get(ROUTER), get(LAYERED))
    else {
        println!("http: run all three benchmarks for the overhead ratio");
        return;
    };
    let floor = verify + router;
    let ratio = layered / floor;
    println!();
    println!("http middleware, criterion's time per request:");
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
