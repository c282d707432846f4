//! The token layer and extractor on their own, over real HTTP: every way a
//! credential header can be wrong, what each refusal says (and does not
//! say), store outages, and another header.

mod common;

use std::sync::Arc;

use api_tokens::http::TokenLayer;
use api_tokens::{KeyId, Keyring, TokenFormat, TokenService, VerifiedToken};
use axum::Router;
use axum::http::HeaderName;
use axum::routing::get;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use common::http::*;
use common::*;

#[tokio::test]
async fn a_valid_token_reaches_the_handler_as_a_verified_token() {
    let protected = start_bearer().await;
    let token = protected.issue(acme_token()).await;
    let id = &token[ID_AT..SECRET_AT];

    for scheme in ["Bearer", "bearer", "BEARER"] {
        let value = format!("{scheme} {token}");
        let answer = protected.with_authorization(&[value.as_bytes()]).await;
        assert_eq!(answer.status, StatusCode::OK, "{scheme}");
        assert_eq!(answer.body, id);
        assert_eq!(answer.challenge(), None);
    }
}

#[tokio::test]
async fn each_kind_of_bad_header_gets_its_rfc_6750_answer_and_never_a_500() {
    let protected = start_bearer().await;
    let token = protected.issue(acme_token()).await;
    let long_token = format!("Bearer {}", "a".repeat(8 * 1024));
    let long_words = format!("Bearer {}", "ab ".repeat(8 * 1024 / 3));
    let two_tokens = format!("Bearer {token} {token}");
    let bare_token = token.clone();
    let other_prefix = format!("Bearer globx{}", &token[4..]);

    // No token presented at all: a bare challenge (RFC 6750 §3.1).
    let no_token: Vec<(&str, Vec<&[u8]>)> = vec![
        ("no header", vec![]),
        ("another scheme", vec![b"Basic dXNlcjpwYXNz"]),
        ("no scheme", vec![bare_token.as_bytes()]),
    ];
    // A malformed request.
    let malformed: Vec<(&str, Vec<&[u8]>)> = vec![
        ("scheme alone", vec![b"Bearer"]),
        ("two tokens", vec![two_tokens.as_bytes()]),
        ("two headers", vec![b"Bearer abc", b"Bearer abc"]),
        ("non-ASCII", vec!["Bearer jeton-été".as_bytes()]),
        ("not UTF-8", vec![b"Bearer abc\xff\xfe"]),
        ("comma", vec![b"Bearer a,b"]),
        ("only padding", vec![b"Bearer ==="]),
        ("8 KB of words", vec![long_words.as_bytes()]),
    ];
    // A well-formed header whose token does not verify.
    let invalid: Vec<(&str, Vec<&[u8]>)> = vec![
        ("8 KB token", vec![long_token.as_bytes()]),
        ("not a token", vec![b"Bearer abc"]),
        ("base64 padding", vec![b"Bearer YWJj=="]),
        ("another prefix", vec![other_prefix.as_bytes()]),
    ];
    let expected = [
        (
            no_token,
            StatusCode::UNAUTHORIZED,
            NO_TOKEN,
            "missing_token",
        ),
        (
            malformed,
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "invalid_request",
        ),
        (
            invalid,
            StatusCode::UNAUTHORIZED,
            INVALID_TOKEN,
            "invalid_token",
        ),
    ];
    for (cases, status, challenge, error) in expected {
        for (what, values) in cases {
            let answer = protected.with_authorization(&values).await;
            assert_eq!(answer.status, status, "{what}: {}", answer.body);
            assert_eq!(answer.challenge(), Some(challenge), "{what}");
            assert_eq!(answer.headers[CONTENT_TYPE], "application/json", "{what}");
            assert_eq!(answer.error(), error, "{what}");
        }
    }
}

#[tokio::test]
async fn refusals_do_not_tell_unknown_wrong_revoked_expired_or_malformed_apart() {
    let protected = start_bearer().await;
    let admin = org_admin("acme");
    let valid = protected.issue(acme_token()).await;
    let revoked = protected.issue(acme_token()).await;
    let revoked_id = revoked[ID_AT..SECRET_AT].parse().unwrap();
    protected
        .tokens
        .revoke(&admin, &org("acme"), revoked_id)
        .await
        .unwrap();
    let expired = protected
        .issue(acme_token().expires_at(START + MINUTE))
        .await;
    protected.clock.advance(MINUTE);

    let refused = [
        (
            "unknown id",
            altered(&valid, ID_AT, other_than(valid.as_bytes()[ID_AT])),
        ),
        (
            "wrong secret",
            altered(&valid, SECRET_AT, other_than(valid.as_bytes()[SECRET_AT])),
        ),
        ("revoked", revoked),
        ("expired", expired),
        ("bad checksum", format!("{}000000", &valid[..CHECKSUM_AT])),
        ("wrong length", valid[..TOKEN_LEN - 1].to_owned()),
    ];
    for (what, token) in refused {
        let answer = protected.with_bearer(&token).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(answer.challenge(), Some(INVALID_TOKEN), "{what}");
        assert_eq!(
            answer.body,
            r#"{"error":"invalid_token","error_description":"the token is not valid"}"#,
            "{what}"
        );
    }
    // And the valid one still passes: the refusals above were about the tokens.
    assert_eq!(protected.with_bearer(&valid).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_store_outage_answers_503_not_401() {
    // A real token, presented to a service whose store is down.
    let token = start_bearer().await.issue(acme_token()).await;
    let tokens = Arc::new(TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        Keyring::new(KeyId::new(1), key(1)),
        Arc::new(Unreachable),
    ));
    let url = serve(whoami_router(Some(TokenLayer::new(tokens)))).await;
    let whoami = |value: String| {
        let request = client().get(format!("{url}/whoami"));
        async move { Answer::of(request.header(AUTHORIZATION, value).send().await.unwrap()).await }
    };

    let answer = whoami(format!("Bearer {token}")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        answer.challenge(),
        None,
        "not the client's credentials' fault"
    );
    assert_eq!(answer.error(), "temporarily_unavailable");
    assert_eq!(answer.headers[RETRY_AFTER], "5");
    assert!(!answer.body.contains(&token));

    // A token refused by its format never reaches the store: still a 401.
    let malformed = whoami(format!("Bearer {}", &token[..TOKEN_LEN - 1])).await;
    assert_eq!(malformed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(malformed.challenge(), Some(INVALID_TOKEN));
}

#[tokio::test]
async fn another_header_can_carry_the_token() {
    let protected =
        start(|tokens| TokenLayer::new(tokens).header(HeaderName::from_static("x-api-key"))).await;
    let token = protected.issue(acme_token()).await;
    let with_key = |values: &[&str]| {
        let mut request = protected.whoami();
        for value in values {
            request = request.header("x-api-key", *value);
        }
        async move { Answer::of(request.send().await.unwrap()).await }
    };

    let answer = with_key(&[&token]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, &token[ID_AT..SECRET_AT]);

    // Only the chosen header counts.
    let bearer = protected.with_bearer(&token).await;
    assert_eq!(bearer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bearer.challenge(), Some(NO_TOKEN));

    for values in [&[&*format!("Bearer {token}")][..], &[&token, &token], &[""]] {
        let answer = with_key(values).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{values:?}");
        assert_eq!(answer.challenge(), Some(INVALID_REQUEST));
    }
    let wrong = with_key(&[&token[..TOKEN_LEN - 1]]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.challenge(), Some(INVALID_TOKEN));
}

#[tokio::test]
async fn the_extractor_on_a_route_without_the_layer_fails_closed() {
    // A routing mistake: the handler wants a verified token, but nothing
    // verified one. The request must not get through, whatever it carries.
    let protected = start_bearer().await;
    let token = protected.issue(acme_token()).await;
    let url = serve(whoami_router(None)).await;
    let answer = client()
        .get(format!("{url}/whoami"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let answer = Answer::of(answer).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.error(), "server_error");
    assert!(!answer.body.contains(&token[ID_AT..SECRET_AT]));
}

// --- Optional tokens --------------------------------------------------------

/// What `/maybe` answers: the token's id, or `anonymous`.
async fn maybe_whoami(token: Option<VerifiedToken>) -> String {
    token.map_or_else(|| "anonymous".to_owned(), |token| token.id().to_string())
}

/// `/maybe` (token optional) and `/whoami` (token required), both behind
/// `layer` (or nothing), served over a fresh fixture's service.
async fn start_maybe(layer: Option<fn(Arc<TokenService>) -> TokenLayer>) -> Protected {
    let Fixture { service, clock, .. } = fixture();
    let tokens = Arc::new(service);
    let router = Router::new()
        .route("/maybe", get(maybe_whoami))
        .route("/whoami", get(whoami));
    let router = match layer {
        Some(layer) => router.route_layer(layer(tokens.clone())),
        None => router,
    };
    Protected {
        url: serve(router).await,
        client: client(),
        tokens,
        clock,
    }
}

impl Protected {
    /// `GET /maybe` with these `Authorization` values (none, one or more).
    async fn maybe(&self, values: &[&[u8]]) -> Answer {
        let mut request = self.client.get(format!("{}/maybe", self.url));
        for value in values {
            request = request.header(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        }
        Answer::of(request.send().await.unwrap()).await
    }
}

#[tokio::test]
async fn an_optional_layer_lets_a_request_without_a_token_through_as_anonymous() {
    let protected = start_maybe(Some(TokenLayer::optional)).await;
    let token = protected.issue(acme_token()).await;

    let anonymous = protected.maybe(&[]).await;
    assert_eq!(anonymous.status, StatusCode::OK);
    assert_eq!(anonymous.body, "anonymous");

    let bearer = format!("Bearer {token}");
    let with_token = protected.maybe(&[bearer.as_bytes()]).await;
    assert_eq!(with_token.status, StatusCode::OK);
    assert_eq!(with_token.body, &token[ID_AT..SECRET_AT]);
}

#[tokio::test]
async fn an_optional_layer_never_downgrades_a_bad_credential_to_anonymous() {
    let protected = start_maybe(Some(TokenLayer::optional)).await;
    let admin = org_admin("acme");
    let valid = protected.issue(acme_token()).await;
    let revoked = protected.issue(acme_token()).await;
    let revoked_id = revoked[ID_AT..SECRET_AT].parse().unwrap();
    protected
        .tokens
        .revoke(&admin, &acme_token().scope, revoked_id)
        .await
        .unwrap();
    let expired = protected.issue(acme_token().expires_in(MINUTE)).await;
    protected.clock.advance(MINUTE);
    let wrong = altered(&valid, SECRET_AT, other_than(valid.as_bytes()[SECRET_AT]));

    for (what, token) in [
        ("revoked", &revoked),
        ("expired", &expired),
        ("wrong secret", &wrong),
    ] {
        let bearer = format!("Bearer {token}");
        let answer = protected.maybe(&[bearer.as_bytes()]).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(answer.challenge(), Some(INVALID_TOKEN), "{what}");
    }
    for (what, values) in [
        ("scheme alone", vec![&b"Bearer"[..]]),
        ("two tokens", vec![b"Bearer abc def"]),
        ("two headers", vec![b"Bearer abc", b"Bearer abc"]),
    ] {
        let answer = protected.maybe(&values).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(answer.challenge(), Some(INVALID_REQUEST), "{what}");
    }
    // Credentials of another scheme, or an empty header: the header is
    // there, so the client is told how to authenticate, not served as
    // anonymous.
    for value in [&b"Basic dXNlcjpwYXNz"[..], b""] {
        let answer = protected.maybe(&[value]).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{value:?}");
        assert_eq!(answer.challenge(), Some(NO_TOKEN), "{value:?}");
        assert_eq!(answer.error(), "missing_token", "{value:?}");
    }
    // The valid token still passes: the refusals were about the credentials.
    let bearer = format!("Bearer {valid}");
    assert_eq!(
        protected.maybe(&[bearer.as_bytes()]).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_handler_that_requires_a_token_refuses_anonymous_behind_an_optional_layer() {
    let protected = start_maybe(Some(TokenLayer::optional)).await;
    let token = protected.issue(acme_token()).await;

    let anonymous = protected.with_authorization(&[]).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.challenge(), Some(NO_TOKEN));
    assert_eq!(anonymous.error(), "missing_token");

    let with_token = protected.with_bearer(&token).await;
    assert_eq!(with_token.status, StatusCode::OK);
    assert_eq!(with_token.body, &token[ID_AT..SECRET_AT]);
}

#[tokio::test]
async fn an_optional_token_behind_a_required_layer_is_always_there() {
    let protected = start_maybe(Some(TokenLayer::new)).await;
    let token = protected.issue(acme_token()).await;

    let anonymous = protected.maybe(&[]).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.challenge(), Some(NO_TOKEN));

    let bearer = format!("Bearer {token}");
    let with_token = protected.maybe(&[bearer.as_bytes()]).await;
    assert_eq!(with_token.status, StatusCode::OK);
    assert_eq!(with_token.body, &token[ID_AT..SECRET_AT]);
}

#[tokio::test]
async fn an_optional_token_on_a_route_without_the_layer_fails_closed() {
    // No layer: `None` would serve everyone as anonymous, tokens or not.
    let protected = start_maybe(None).await;
    let token = protected.issue(acme_token()).await;
    let bearer = format!("Bearer {token}");

    for values in [vec![], vec![bearer.as_bytes()]] {
        let answer = protected.maybe(&values).await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(answer.error(), "server_error");
        assert!(!answer.body.contains(&token[ID_AT..SECRET_AT]));
    }
}

#[tokio::test]
async fn an_optional_layer_reading_another_header_is_anonymous_only_without_it() {
    let protected = start_maybe(Some(|tokens| {
        TokenLayer::optional(tokens).header(HeaderName::from_static("x-api-key"))
    }))
    .await;
    let token = protected.issue(acme_token()).await;
    let with_key = |value: Option<&str>| {
        let mut request = protected.client.get(format!("{}/maybe", protected.url));
        if let Some(value) = value {
            request = request.header("x-api-key", value);
        }
        async move { Answer::of(request.send().await.unwrap()).await }
    };

    assert_eq!(with_key(None).await.body, "anonymous");
    assert_eq!(with_key(Some(&token)).await.body, &token[ID_AT..SECRET_AT]);
    assert_eq!(with_key(Some("")).await.status, StatusCode::BAD_REQUEST);
    let wrong = with_key(Some(&token[..TOKEN_LEN - 1])).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // `Authorization` is not this layer's header: the request is anonymous.
    let bearer = format!("Bearer {token}");
    assert_eq!(
        protected.maybe(&[bearer.as_bytes()]).await.body,
        "anonymous"
    );
}
