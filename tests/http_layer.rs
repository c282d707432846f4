//! The token layer and extractor on their own, over real HTTP: every way a
//! credential header can be wrong, what each refusal says (and does not
//! say), store outages, and another header.

mod common;

use std::sync::Arc;

use api_tokens::http::TokenLayer;
use api_tokens::{KeyId, Keyring, TokenFormat, TokenService};
use axum::http::HeaderName;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};

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
    protected.tokens.revoke(&admin, revoked_id).await.unwrap();
    let expired = protected
        .issue(acme_token().expires_at(START + time::Duration::minutes(1)))
        .await;
    protected.clock.advance(time::Duration::minutes(1));

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
