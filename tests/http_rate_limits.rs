//! Per-token rate limits over real HTTP: the (N+1)th request of a period is
//! refused with 429 and the headers that say when to come back, another
//! token is not affected, scope defaults apply, and the local limiter's
//! memory stays within its capacity. Time moves by a manual clock, never by
//! sleeping.

mod common;

use std::sync::Arc;
use std::time::Duration;

use api_tokens::http::{LocalRateLimiter, RateLimits, TokenLayer};
use api_tokens::testing::ManualClock;
use api_tokens::{IssueRequest, RateLimit, TokenService};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use common::http::*;
use common::*;

/// A `/whoami` behind a layer limiting with a local limiter on the
/// fixture's clock, with `limits` made from it.
struct Limited {
    url: String,
    tokens: Arc<TokenService>,
    limiter: Arc<LocalRateLimiter>,
    clock: ManualClock,
}

async fn limited(capacity: usize, defaults: impl FnOnce(RateLimits) -> RateLimits) -> Limited {
    let Fixture { service, clock, .. } = fixture();
    let tokens = Arc::new(service);
    let limiter =
        Arc::new(LocalRateLimiter::with_capacity(capacity).with_clock(Arc::new(clock.clone())));
    let limits = defaults(RateLimits::new(limiter.clone()));
    let layer = TokenLayer::new(tokens.clone()).rate_limits(limits);
    let url = serve_with_connect_info(whoami_router(Some(layer))).await;
    Limited {
        url,
        tokens,
        limiter,
        clock,
    }
}

impl Limited {
    async fn issue(&self, request: IssueRequest) -> String {
        let admin = org_admin(request.scope.org().as_str());
        let issued = self.tokens.issue(&admin, request).await.unwrap();
        issued.token.expose_secret().to_owned()
    }

    async fn call(&self, token: &str) -> Answer {
        let request = client()
            .get(format!("{}/whoami", self.url))
            .bearer_auth(token);
        Answer::of(request.send().await.unwrap()).await
    }
}

fn per_hour(requests: u32) -> RateLimit {
    RateLimit::new(requests, HOUR).unwrap()
}

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer
        .headers
        .get(name)
        .map(|value| value.to_str().unwrap())
}

/// Sends `n` requests with `token`; each must pass.
async fn spend(limited: &Limited, token: &str, n: u32) {
    for i in 0..n {
        let answer = limited.call(token).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "request {}: {}",
            i + 1,
            answer.body
        );
    }
}

#[track_caller]
fn assert_too_many(answer: &Answer, retry_after: u64, policy: &str) {
    assert_eq!(
        answer.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        answer.body
    );
    assert_eq!(answer.error(), "rate_limited");
    assert_eq!(answer.headers[CONTENT_TYPE], "application/json");
    assert_eq!(answer.challenge(), None, "not a credentials problem");
    let retry_after = retry_after.to_string();
    assert_eq!(
        header(answer, RETRY_AFTER.as_str()),
        Some(retry_after.as_str())
    );
    assert_eq!(
        header(answer, "ratelimit"),
        Some(format!(r#""token";r=0;t={retry_after}"#).as_str())
    );
    assert_eq!(header(answer, "ratelimit-policy"), Some(policy));
}

#[tokio::test]
async fn the_request_past_the_limit_gets_429_with_retry_after_and_ratelimit_fields() {
    let limited = limited(1_000, |limits| limits).await;
    // 3 an hour: one comes back every 20 minutes.
    let token = limited.issue(acme_token().rate_limit(per_hour(3))).await;
    let policy = r#""token";q=3;w=3600"#;

    for remaining in [2, 1, 0] {
        let answer = limited.call(&token).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(header(&answer, "ratelimit-policy"), Some(policy));
        assert_eq!(
            header(&answer, "ratelimit"),
            Some(format!(r#""token";r={remaining};t=1200"#).as_str())
        );
        assert_eq!(header(&answer, RETRY_AFTER.as_str()), None);
    }
    assert_too_many(&limited.call(&token).await, 1_200, policy);

    // Partway through the wait, the wait is shorter, rounded up.
    limited
        .clock
        .advance(Duration::from_secs(15 * 60) + Duration::from_millis(500));
    assert_too_many(&limited.call(&token).await, 300, policy);
    // Once one request's worth is back, exactly one passes.
    limited.clock.advance(Duration::from_secs(5 * 60));
    spend(&limited, &token, 1).await;
    assert_eq!(
        limited.call(&token).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn one_tokens_load_never_limits_another() {
    let limited = limited(1_000, |limits| limits).await;
    let busy = limited.issue(acme_token().rate_limit(per_hour(2))).await;
    let quiet = limited.issue(acme_token().rate_limit(per_hour(2))).await;
    let unlimited = limited.issue(acme_token()).await;

    spend(&limited, &busy, 2).await;
    for _ in 0..5 {
        assert_eq!(
            limited.call(&busy).await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    spend(&limited, &quiet, 2).await;
    // A token with no limit anywhere: no limiter call, no fields.
    for _ in 0..10 {
        let answer = limited.call(&unlimited).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(header(&answer, "ratelimit"), None);
        assert_eq!(header(&answer, "ratelimit-policy"), None);
    }
    assert_eq!(
        limited.limiter.len(),
        2,
        "the unlimited token is not tracked"
    );
}

#[tokio::test]
async fn scope_defaults_apply_to_tokens_without_a_limit_of_their_own() {
    let limited = limited(1_000, |limits| {
        limits
            .scope_default(org("acme"), per_hour(2))
            .scope_default(domain("acme", "shop"), per_hour(1))
    })
    .await;
    let org_token = limited.issue(IssueRequest::new(org("acme"), "ci")).await;
    let blog_token = limited
        .issue(IssueRequest::new(domain("acme", "blog"), "ci"))
        .await;
    let shop_token = limited
        .issue(IssueRequest::new(domain("acme", "shop"), "ci"))
        .await;
    let own_limit = limited
        .issue(IssueRequest::new(domain("acme", "shop"), "ci").rate_limit(per_hour(3)))
        .await;
    let other_org = limited.issue(IssueRequest::new(org("globex"), "ci")).await;

    // The organization's default, for its own tokens and a domain without one.
    for token in [&org_token, &blog_token] {
        spend(&limited, token, 2).await;
        assert_too_many(&limited.call(token).await, 1_800, r#""token";q=2;w=3600"#);
    }
    // The domain's own default beats its organization's.
    spend(&limited, &shop_token, 1).await;
    assert_too_many(
        &limited.call(&shop_token).await,
        3_600,
        r#""token";q=1;w=3600"#,
    );
    // A token's own limit beats both.
    spend(&limited, &own_limit, 3).await;
    assert_too_many(
        &limited.call(&own_limit).await,
        1_200,
        r#""token";q=3;w=3600"#,
    );
    // Another organization has no default: not limited.
    for _ in 0..5 {
        let answer = limited.call(&other_org).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(header(&answer, "ratelimit"), None);
    }
}

#[tokio::test]
async fn the_limiter_tracks_no_more_tokens_than_its_capacity() {
    let capacity = 4;
    let limited = limited(capacity, |limits| {
        limits.scope_default(org("acme"), per_hour(5))
    })
    .await;
    let mut tokens = Vec::new();
    for _ in 0..(capacity * 3) {
        tokens.push(limited.issue(acme_token()).await);
    }
    for token in &tokens {
        let answer = limited.call(token).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(
            limited.limiter.len() <= capacity,
            "{}",
            limited.limiter.len()
        );
    }
    assert_eq!(limited.limiter.len(), capacity);
    // The most recent ones kept their count: the last token has used one.
    let last = tokens.last().unwrap();
    assert_eq!(
        header(&limited.call(last).await, "ratelimit"),
        Some(r#""token";r=3;t=720"#)
    );
}

#[tokio::test]
async fn anonymous_requests_of_an_optional_layer_are_not_limited() {
    let Fixture { service, .. } = fixture();
    let tokens = Arc::new(service);
    let limiter = Arc::new(LocalRateLimiter::new());
    let layer = TokenLayer::optional(tokens)
        .rate_limits(RateLimits::new(limiter.clone()).scope_default(org("acme"), per_hour(1)));
    let url = serve_with_connect_info(whoami_router_optional(layer)).await;
    for _ in 0..3 {
        let answer = Answer::of(
            client()
                .get(format!("{url}/anonymous"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(header(&answer, "ratelimit"), None);
    }
    assert!(limiter.is_empty());
}

/// `/anonymous`, answering whether a token came, behind an optional layer.
fn whoami_router_optional(layer: TokenLayer) -> axum::Router {
    async fn anonymous(token: Option<api_tokens::VerifiedToken>) -> &'static str {
        match token {
            Some(_) => "token",
            None => "anonymous",
        }
    }
    axum::Router::new()
        .route("/anonymous", axum::routing::get(anonymous))
        .route_layer(layer)
}
