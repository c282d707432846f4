//! The example service (`examples/axum_service/`), driven over real HTTP:
//! the dashboard's create, list and revoke, and a resource that takes the
//! tokens they make.

mod common;

// The example itself, not a copy of it: its `main` is not called here.
#[path = "../examples/axum_service/main.rs"]
#[allow(dead_code)]
mod axum_service;

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde_json::{Value, json};

use api_tokens::testing::ManualClock;
use common::http::*;
use common::{Fixture, HOUR, SECOND, fixture, with_checksum};

/// The example service on a loopback port, over a counting memory store and
/// a manual clock.
struct Service {
    url: String,
    client: reqwest::Client,
    clock: ManualClock,
}

async fn start() -> Service {
    let Fixture { service, clock, .. } = fixture();
    let service = service.with_permissions(axum_service::permissions());
    // As the example serves itself: with each connection's address.
    let url = serve_with_connect_info(axum_service::app(Arc::new(service))).await;
    Service {
        url,
        client: client(),
        clock,
    }
}

impl Service {
    /// `POST {path}` as `user` with a JSON body.
    async fn post(&self, user: &str, path: &str, body: &Value) -> Answer {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .header("x-demo-user", user)
            .json(body)
            .send()
            .await
            .unwrap();
        Answer::of(response).await
    }

    async fn get_as(&self, user: &str, path: &str) -> Answer {
        let request = self.client.get(format!("{}{path}", self.url));
        Answer::of(request.header("x-demo-user", user).send().await.unwrap()).await
    }

    async fn delete_as(&self, user: &str, path: &str) -> Answer {
        let request = self.client.delete(format!("{}{path}", self.url));
        Answer::of(request.header("x-demo-user", user).send().await.unwrap()).await
    }

    /// `POST {path}` with `Authorization: Bearer {token}` and no body.
    async fn post_with_token(&self, path: &str, token: &str) -> Answer {
        let request = self.client.post(format!("{}{path}", self.url));
        Answer::of(request.bearer_auth(token).send().await.unwrap()).await
    }

    /// `PATCH {path}` as `user` with a JSON body.
    async fn patch(&self, user: &str, path: &str, body: &Value) -> Answer {
        let request = self.client.patch(format!("{}{path}", self.url));
        let request = request.header("x-demo-user", user).json(body);
        Answer::of(request.send().await.unwrap()).await
    }

    /// `GET {path}` with `Authorization: Bearer {token}`.
    async fn get_with_token(&self, path: &str, token: &str) -> Answer {
        let request = self.client.get(format!("{}{path}", self.url));
        Answer::of(request.bearer_auth(token).send().await.unwrap()).await
    }

    /// Creates a token as `user` under `scope_path` and returns (token, id).
    async fn create(&self, user: &str, scope_path: &str, body: Value) -> (String, String) {
        let created = self
            .post(user, &format!("{scope_path}/tokens"), &body)
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let json = created.json();
        (
            json["token"].as_str().unwrap().to_owned(),
            json["summary"]["id"].as_str().unwrap().to_owned(),
        )
    }
}

const ACME: &str = "/organizations/acme";
const ACME_SHOP: &str = "/organizations/acme/domains/shop";
const ACME_BLOG: &str = "/organizations/acme/domains/blog";
const GLOBEX_SHOP: &str = "/organizations/globex/domains/shop";

fn resource(domain_path: &str) -> String {
    format!("{domain_path}/resource")
}

#[tokio::test]
async fn create_use_list_revoke_then_the_same_call_is_refused() {
    let service = start().await;

    // Create Token: 201, the token once, and no cache may keep it.
    let created = service
        .post(
            "alice",
            "/organizations/acme/tokens",
            &json!({"label": "CI deploys", "role": "editor"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.headers[CACHE_CONTROL], "no-store");
    let body = created.json();
    let token = body["token"].as_str().unwrap().to_owned();
    let id = body["summary"]["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("acmeo_"));
    assert_eq!(body["summary"]["label"], "CI deploys");
    assert_eq!(body["summary"]["role"], "editor");
    assert_eq!(body["summary"]["status"], "active");
    assert_eq!(body["summary"]["created_by"], "alice");

    // The token opens a domain of its organization.
    let used = service.get_with_token(&resource(ACME_SHOP), &token).await;
    assert_eq!(used.status, StatusCode::OK, "{}", used.body);
    assert_eq!(
        used.json(),
        json!({
            "scope": "domain acme/shop",
            "token_id": id,
            "token_scope": "organization acme",
            "token_role": "editor",
        })
    );

    // The list shows it by label and id, never its secret.
    let listed = service.get_as("alice", "/organizations/acme/tokens").await;
    assert_eq!(listed.status, StatusCode::OK);
    let tokens = listed.json()["tokens"].as_array().unwrap().clone();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["id"], id.as_str());
    assert_eq!(tokens[0]["label"], "CI deploys");
    let secret = &token[common::SECRET_AT..common::CHECKSUM_AT];
    assert!(!listed.body.contains(secret), "{}", listed.body);
    assert!(!listed.body.contains("digest"), "{}", listed.body);

    // Revoke, then the same call is refused like any invalid token.
    let revoked = service
        .delete_as("alice", &format!("/organizations/acme/tokens/{id}"))
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(revoked.json()["status"], "revoked");
    assert_eq!(revoked.json()["revoked"]["by"], "alice");

    let refused = service.get_with_token(&resource(ACME_SHOP), &token).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.challenge(), Some(INVALID_TOKEN));
    assert_eq!(refused.error(), "invalid_token");
    assert!(!refused.body.contains("revoked"), "{}", refused.body);

    // Revoking twice is harmless and says so; the list shows the status.
    let again = service
        .delete_as("alice", &format!("/organizations/acme/tokens/{id}"))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["status"], "already_revoked");
    let listed = service.get_as("alice", "/organizations/acme/tokens").await;
    assert_eq!(listed.json()["tokens"][0]["status"], "revoked");
}

#[tokio::test]
async fn a_domain_token_opens_its_domain_only() {
    let service = start().await;
    let (token, _) = service
        .create("bob", ACME_SHOP, json!({"label": "storefront"}))
        .await;
    assert!(token.starts_with("acmed_"));

    let own = service.get_with_token(&resource(ACME_SHOP), &token).await;
    assert_eq!(own.status, StatusCode::OK);

    // Another domain of the same organization, and a domain of the same
    // name in another organization: valid token, wrong place.
    for other in [ACME_BLOG, GLOBEX_SHOP] {
        let refused = service.get_with_token(&resource(other), &token).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{other}");
        assert_eq!(refused.challenge(), Some(INSUFFICIENT_SCOPE));
        assert_eq!(refused.error(), "insufficient_scope");
    }
}

#[tokio::test]
async fn an_organization_token_opens_every_domain_of_its_organization() {
    let service = start().await;
    let (token, _) = service
        .create(
            "alice",
            ACME,
            json!({"label": "nightly export", "role": "viewer"}),
        )
        .await;

    for domain in [ACME_SHOP, ACME_BLOG] {
        let answer = service.get_with_token(&resource(domain), &token).await;
        assert_eq!(answer.status, StatusCode::OK, "{domain}");
    }
    let elsewhere = service.get_with_token(&resource(GLOBEX_SHOP), &token).await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    assert_eq!(elsewhere.challenge(), Some(INSUFFICIENT_SCOPE));
}

#[tokio::test]
async fn a_domain_admin_cannot_create_list_or_revoke_organization_tokens() {
    let service = start().await;

    // A scope he may not manage is, to him, no scope at all: the crate
    // answers `not_found`, as for a scope that does not exist.
    let create = service
        .post(
            "bob",
            "/organizations/acme/tokens",
            &json!({"label": "mine"}),
        )
        .await;
    assert_eq!(create.status, StatusCode::NOT_FOUND);
    assert_eq!(create.error(), "not_found");
    let list = service.get_as("bob", "/organizations/acme/tokens").await;
    assert_eq!(list.status, StatusCode::NOT_FOUND);
    assert_eq!(list.error(), "not_found");

    // An organization token bob may not manage is, to him, no token at all;
    // and so is any token for another organization's admin.
    let (token, id) = service.create("alice", ACME, json!({"label": "ops"})).await;
    let unknown = service
        .delete_as("bob", "/organizations/acme/tokens/AAAAAAAAAAA")
        .await;
    for (user, path) in [
        ("bob", format!("/organizations/acme/tokens/{id}")),
        ("bob", format!("{ACME_SHOP}/tokens/{id}")),
        ("carol", format!("/organizations/acme/tokens/{id}")),
        ("carol", format!("/organizations/globex/tokens/{id}")),
    ] {
        let refused = service.delete_as(user, &path).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{user} {path}");
        assert_eq!(refused.error(), "not_found");
        assert_eq!(
            refused.body.replace(&id, "ID"),
            unknown.body.replace("AAAAAAAAAAA", "ID"),
            "{user} {path}"
        );
    }
    let still = service.get_with_token(&resource(ACME_SHOP), &token).await;
    assert_eq!(still.status, StatusCode::OK);

    // Within his domain, bob manages tokens, alice too (she administers
    // the organization), carol not (to her it is no scope at all).
    let (_, shop_id) = service
        .create("bob", ACME_SHOP, json!({"label": "storefront"}))
        .await;
    assert_eq!(
        service
            .get_as("alice", &format!("{ACME_SHOP}/tokens"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        service
            .get_as("carol", &format!("{ACME_SHOP}/tokens"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let revoked = service
        .delete_as("alice", &format!("{ACME_SHOP}/tokens/{shop_id}"))
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_is_revoked_only_under_the_path_of_its_own_scope() {
    let service = start().await;
    let (org_token, org_id) = service.create("alice", ACME, json!({"label": "ops"})).await;
    let (shop_token, shop_id) = service
        .create("alice", ACME_SHOP, json!({"label": "storefront"}))
        .await;
    let unknown = service
        .delete_as("alice", "/organizations/acme/tokens/AAAAAAAAAAA")
        .await;

    // Alice administers the organization and each of its domains, but a
    // path names one scope: a token of another is no token there.
    for (id, path) in [
        (&shop_id, format!("{ACME}/tokens/{shop_id}")),
        (&shop_id, format!("{ACME_BLOG}/tokens/{shop_id}")),
        (&org_id, format!("{ACME_SHOP}/tokens/{org_id}")),
    ] {
        let refused = service.delete_as("alice", &path).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            refused.body.replace(id.as_str(), "ID"),
            unknown.body.replace("AAAAAAAAAAA", "ID"),
            "{path}"
        );
    }
    for token in [&org_token, &shop_token] {
        let still = service.get_with_token(&resource(ACME_SHOP), token).await;
        assert_eq!(still.status, StatusCode::OK);
    }

    // Under its own path, each is revoked.
    for path in [
        format!("{ACME}/tokens/{org_id}"),
        format!("{ACME_SHOP}/tokens/{shop_id}"),
    ] {
        let revoked = service.delete_as("alice", &path).await;
        assert_eq!(revoked.status, StatusCode::OK, "{path}");
        assert_eq!(revoked.json()["status"], "revoked", "{path}");
    }
}

#[tokio::test]
async fn bad_request_bodies_are_refused_and_create_nothing() {
    let service = start().await;
    let path = format!("{}/organizations/acme/tokens", service.url);
    let long_label = format!(r#"{{"label": "{}"}}"#, "x".repeat(101));
    const JSON: &str = "application/json";

    // `None`: a body axum cannot read, refused by axum in plain text;
    // `Some(code)`: refused by the crate, in its JSON shape.
    let cases = [
        ("{not json", JSON, 400, None),
        ("", JSON, 400, None),
        ("{}", JSON, 422, None),
        (r#"{"label": 7}"#, JSON, 422, None),
        (r#"{"label": "a", "role": "god"}"#, JSON, 422, None),
        (r#"{"label": "a", "extra": 1}"#, JSON, 422, None),
        (r#"{"label": "a", "expires_at": "soon"}"#, JSON, 422, None),
        (r#"{"label": "a"}"#, "text/plain", 415, None),
        (r#"{"label": "   "}"#, JSON, 422, Some("invalid_label")),
        (&long_label, JSON, 422, Some("invalid_label")),
        (r#"{"label": "a\u0007b"}"#, JSON, 422, Some("invalid_label")),
        (
            r#"{"label": "a", "expires_at": "2029-01-01T00:00:00Z"}"#,
            JSON,
            422,
            Some("expiry_not_in_future"),
        ),
        (
            r#"{"label": "a", "role": "owner"}"#,
            JSON,
            403,
            Some("role_too_high"),
        ),
    ];
    for (body, content_type, status, error) in cases {
        let request = service.client.post(&path).header("x-demo-user", "alice");
        let request = request
            .header("content-type", content_type)
            .body(body.to_owned());
        let answer = Answer::of(request.send().await.unwrap()).await;
        assert_eq!(answer.status.as_u16(), status, "{body}: {}", answer.body);
        match error {
            Some(error) => {
                assert_eq!(answer.error(), error, "{body}");
                assert!(answer.json()["error_description"].is_string());
            }
            None => assert!(is_plain_text(&answer), "{body}: {:?}", answer.headers),
        }
    }
    let listed = service.get_as("alice", "/organizations/acme/tokens").await;
    assert_eq!(listed.json()["tokens"], json!([]));
}

/// Whether `answer` is one of axum's own refusals: a sentence in plain text.
fn is_plain_text(answer: &Answer) -> bool {
    let content_type = answer.headers.get(CONTENT_TYPE);
    content_type.is_some_and(|value| value.as_bytes().starts_with(b"text/plain"))
        && !answer.body.is_empty()
}

#[tokio::test]
async fn the_dashboard_needs_a_known_demo_user_and_valid_ids() {
    let service = start().await;
    let body = json!({"label": "x"});
    for user in ["", "mallory", "ALICE"] {
        let answer = service
            .post(user, "/organizations/acme/tokens", &body)
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{user:?}");
        assert_eq!(answer.error(), "unauthenticated");
        assert_eq!(
            answer.headers["www-authenticate"],
            r#"DemoUser realm="api-tokens example""#
        );
    }
    // Ids the platform could not have: a path axum cannot read, refused by
    // axum's `Path`.
    let long_org = "o".repeat(65);
    for path in [
        "/organizations/a%20b/tokens".to_owned(),
        format!("/organizations/{long_org}/tokens"),
        "/organizations/acme/domains/%C3%A9/tokens".to_owned(),
    ] {
        let answer = service.get_as("alice", &path).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(is_plain_text(&answer), "{path}");
    }
    for path in [
        "/organizations/acme/tokens/not-an-id",
        "/organizations/acme/tokens/zzzzzzzzzzz",
    ] {
        let answer = service.delete_as("alice", path).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(is_plain_text(&answer), "{path}");
    }
}

#[tokio::test]
async fn expired_tokens_are_refused_like_unknown_ones() {
    let service = start().await;
    let (token, _) = service
        .create(
            "alice",
            ACME,
            json!({"label": "one hour", "expires_at": "2030-01-01T10:00:00Z"}),
        )
        .await;
    assert_eq!(
        service
            .get_with_token(&resource(ACME_SHOP), &token)
            .await
            .status,
        StatusCode::OK
    );

    service.clock.advance(HOUR);
    let expired = service.get_with_token(&resource(ACME_SHOP), &token).await;
    let unknown_token = with_checksum(&format!("acmeo_{}", "A".repeat(54)));
    let unknown = service
        .get_with_token(&resource(ACME_SHOP), &unknown_token)
        .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.challenge(), unknown.challenge());
    assert_eq!(expired.body, unknown.body);

    let listed = service.get_as("alice", "/organizations/acme/tokens").await;
    assert_eq!(listed.json()["tokens"][0]["status"], "expired");
}

#[tokio::test]
async fn lists_page_by_the_cursor_they_return() {
    let service = start().await;
    for label in ["first", "second", "third"] {
        service
            .create("bob", ACME_SHOP, json!({"label": label}))
            .await;
        service.clock.advance(SECOND);
    }
    let path = format!("{ACME_SHOP}/tokens");
    let first = service
        .get_as("bob", &format!("{path}?limit=2"))
        .await
        .json();
    let labels: Vec<_> = first["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].clone())
        .collect();
    assert_eq!(labels, [json!("third"), json!("second")]);
    let next = first["next"].as_str().unwrap();

    let second = service
        .get_as("bob", &format!("{path}?limit=2&after={next}"))
        .await
        .json();
    assert_eq!(second["tokens"][0]["label"], "first");
    assert_eq!(second["tokens"].as_array().unwrap().len(), 1);
    assert_eq!(second["next"], Value::Null);

    // A query axum cannot read is axum's 400; a page size out of range is
    // the crate's 422.
    for query in ["limit=x", "after=garbage", "after=1.2", "sort=asc"] {
        let answer = service.get_as("bob", &format!("{path}?{query}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(is_plain_text(&answer), "{query}");
    }
    for query in ["limit=0", "limit=1001"] {
        let answer = service.get_as("bob", &format!("{path}?{query}")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(answer.error(), "invalid_page_size");
    }
}

#[tokio::test]
async fn a_token_narrowed_to_a_permission_does_that_and_nothing_else() {
    let service = start().await;
    let notify = format!("{ACME_SHOP}/notifications");
    let (narrowed, _) = service
        .create(
            "alice",
            ACME_SHOP,
            json!({"label": "notifier", "permissions": ["notifications:send"]}),
        )
        .await;
    let (viewer, _) = service
        .create("alice", ACME_SHOP, json!({"label": "dashboard"}))
        .await;

    let sent = service.post_with_token(&notify, &narrowed).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    // A route guarded by role alone refuses it: narrowing narrows.
    let read = service
        .get_with_token(&resource(ACME_SHOP), &narrowed)
        .await;
    assert_eq!(read.status, StatusCode::FORBIDDEN, "{}", read.body);
    assert_eq!(read.json()["error"], "insufficient_scope");
    // A viewer's role does not grant the permission.
    let refused = service.post_with_token(&notify, &viewer).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);

    // Beyond the registry, or the issuer's reach: refused at create.
    for (permissions, code) in [
        (json!(["notifications:delete"]), "invalid_permission"),
        (json!([]), "invalid_permission"),
    ] {
        let body = json!({"label": "x", "permissions": permissions});
        let answer = service
            .post("alice", &format!("{ACME_SHOP}/tokens"), &body)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            answer.body
        );
        assert_eq!(answer.json()["error"], code);
    }
    let body = json!({"label": "x", "role": "viewer", "permissions": ["notifications:send"]});
    let answer = service
        .post("alice", &format!("{ACME_SHOP}/tokens"), &body)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert_eq!(answer.json()["error"], "permission_not_granted");
}

#[tokio::test]
async fn disable_enable_and_edit_over_http() {
    let service = start().await;
    let (token, id) = service
        .create(
            "alice",
            ACME,
            json!({"label": "ci", "expires_at": "2030-02-01T00:00:00Z"}),
        )
        .await;
    let path = format!("{ACME}/tokens/{id}");

    let disabled = service
        .post("alice", &format!("{path}/disable"), &json!({}))
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    assert_eq!(disabled.json()["status"], "disabled");
    let used = service.get_with_token(&resource(ACME_SHOP), &token).await;
    assert_eq!(used.status, StatusCode::UNAUTHORIZED);
    assert_eq!(used.json()["error"], "invalid_token");

    let enabled = service
        .post("alice", &format!("{path}/enable"), &json!({}))
        .await;
    assert_eq!(enabled.json()["status"], "active");
    let used = service.get_with_token(&resource(ACME_SHOP), &token).await;
    assert_eq!(used.status, StatusCode::OK, "{}", used.body);

    let edited = service
        .patch(
            "alice",
            &path,
            &json!({"label": "nightly", "expires_at": "2030-01-15T00:00:00Z"}),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.json()["label"], "nightly");
    assert_eq!(edited.json()["expires_at"], "2030-01-15T00:00:00Z");
    let later = service
        .patch(
            "alice",
            &path,
            &json!({"expires_at": "2030-03-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        later.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        later.body
    );
    assert_eq!(later.json()["error"], "expiry_extended");

    // Another organization's admin: the one 404, and nothing changed.
    for answer in [
        service
            .post("carol", &format!("{path}/disable"), &json!({}))
            .await,
        service
            .patch("carol", &path, &json!({"label": "mine"}))
            .await,
    ] {
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    }
    let listed = service.get_as("alice", &format!("{ACME}/tokens")).await;
    assert_eq!(listed.json()["tokens"][0]["label"], "nightly");
    assert_eq!(listed.json()["tokens"][0]["status"], "active");
}

#[tokio::test]
async fn an_allowlist_answers_403_elsewhere_and_a_rate_limit_429_past_it() {
    let service = start().await;
    let notify = format!("{ACME_SHOP}/notifications");
    let narrowed = |networks: Value| {
        json!({
            "label": "notifier",
            "permissions": ["notifications:send"],
            "allowed_networks": networks,
            "rate_limit": {"requests": 2, "period_secs": 60},
        })
    };
    // The test client connects from 127.0.0.1.
    let (here, _) = service
        .create("alice", ACME_SHOP, narrowed(json!(["127.0.0.0/8", "::1"])))
        .await;
    let (elsewhere, _) = service
        .create("alice", ACME_SHOP, narrowed(json!(["192.0.2.0/24"])))
        .await;

    let refused = service.post_with_token(&notify, &elsewhere).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.json()["error"], "address_not_allowed");

    for remaining in ["1", "0"] {
        let sent = service.post_with_token(&notify, &here).await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
        let fields = sent.headers["ratelimit"].to_str().unwrap();
        assert!(fields.contains(&format!("r={remaining}")), "{fields}");
    }
    let limited = service.post_with_token(&notify, &here).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert_eq!(limited.json()["error"], "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let policy = limited.headers["ratelimit-policy"].to_str().unwrap();
    assert!(
        policy.contains("q=2") && policy.contains("w=60"),
        "{policy}"
    );

    // Bad allowlists are refused at create, and create nothing.
    for networks in [json!([]), json!(["10.1.2.3/8"]), json!(["anywhere"])] {
        let body = narrowed(networks);
        let answer = service
            .post("alice", &format!("{ACME_SHOP}/tokens"), &body)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            answer.body
        );
        assert_eq!(answer.json()["error"], "invalid_allowlist");
    }
    let listed = service
        .get_as("alice", &format!("{ACME_SHOP}/tokens"))
        .await;
    assert_eq!(listed.json()["tokens"].as_array().unwrap().len(), 2);
}
