//! What the token layer logs: why a token was refused, never the token.
//!
//! A binary of its own: a test's thread-local subscriber can miss events of
//! call sites that tests on other threads register at the same moment.

mod common;

use common::http::*;
use common::logs::capture_logs;
use common::*;

// The default (current-thread) runtime runs the server, the client and
// this test on one thread, so the thread's subscriber sees all they log.
#[tokio::test]
async fn the_log_says_why_a_token_was_refused_but_never_holds_a_token() {
    let (captured, _guard) = capture_logs(tracing::Level::TRACE);

    let protected = start_bearer().await;
    let valid = protected.issue(acme_token()).await;
    let revoked = protected.issue(acme_token()).await;
    let revoked_id = revoked[ID_AT..SECRET_AT].to_owned();
    let admin = org_admin("acme");
    protected
        .tokens
        .revoke(&admin, &org("acme"), revoked_id.parse().unwrap())
        .await
        .unwrap();
    let expired = protected
        .issue(acme_token().expires_at(START + MINUTE))
        .await;
    protected.clock.advance(MINUTE);
    let wrong = altered(&valid, SECRET_AT, other_than(valid.as_bytes()[SECRET_AT]));

    for token in [&valid, &revoked, &expired, &wrong] {
        protected.with_bearer(token).await;
    }
    protected.with_bearer(&valid[..TOKEN_LEN - 1]).await;
    protected.with_authorization(&[b"Bearer a b"]).await;

    let log = captured.text();
    assert!(log.contains("the token was revoked"), "{log}");
    assert!(log.contains(&format!("token_id={revoked_id}")), "{log}");
    assert!(log.contains("the token has expired"), "{log}");
    assert!(log.contains("the token is not valid"), "{log}");
    assert!(
        log.contains("a token has 66 characters; this one has 65"),
        "{log}"
    );
    assert!(
        log.contains("the request's credentials are malformed"),
        "{log}"
    );
    for token in [&valid, &revoked, &expired, &wrong] {
        let secret = &token[SECRET_AT..CHECKSUM_AT];
        assert!(!log.contains(secret), "a secret was logged:\n{log}");
    }
}
