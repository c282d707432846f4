//! What a management error logs when it becomes a response: the cause of a
//! server-side failure, at error level for a 500 and warn level for a 503,
//! while the client's body holds none of it.
//!
//! A binary of its own: a test's thread-local subscriber can miss events of
//! call sites that tests on other threads register at the same moment.

mod common;

use std::sync::Arc;

use api_tokens::{
    IssueError, IssueRequest, KeyId, Keyring, RevokeError, TokenFormat, TokenId, TokenService,
};
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{delete, post};
use reqwest::StatusCode;

use common::http::{Answer, client, serve};
use common::logs::capture_logs;
use common::*;

async fn issue(State(tokens): State<Arc<TokenService>>) -> Result<String, IssueError> {
    let request = IssueRequest::new(org("acme"), "ci");
    let issued = tokens.issue(&org_admin("acme"), request).await?;
    Ok(issued.summary.id.to_string())
}

async fn revoke(
    State(tokens): State<Arc<TokenService>>,
    Path(id): Path<TokenId>,
) -> Result<&'static str, RevokeError> {
    tokens
        .revoke(&org_admin("globex"), &org("globex"), id)
        .await?;
    Ok("revoked")
}

async fn serve_over(tokens: TokenService) -> String {
    let router = Router::new()
        .route("/tokens", post(issue))
        .route("/tokens/{id}", delete(revoke))
        .with_state(Arc::new(tokens));
    serve(router).await
}

/// The log's lines that mention `code`.
fn lines_with<'l>(log: &'l str, code: &str) -> Vec<&'l str> {
    let field = format!("code=\"{code}\"");
    log.lines().filter(|line| line.contains(&field)).collect()
}

// The default (current-thread) runtime runs the server, the client and
// this test on one thread, so the thread's subscriber sees all they log.
#[tokio::test]
async fn a_server_side_cause_goes_to_the_log_and_never_to_the_body() {
    let (captured, _guard) = capture_logs(tracing::Level::TRACE);

    // 500: every id the service draws is taken just before it inserts.
    let Fixture { service, store, .. } = fixture();
    store.take_ids_first(usize::MAX);
    let url = serve_over(service).await;
    let failed = Answer::of(client().post(format!("{url}/tokens")).send().await.unwrap()).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);

    // 503: the store is down.
    let down = TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        Keyring::new(KeyId::new(1), key(1)),
        Arc::new(Unreachable),
    );
    let url = serve_over(down).await;
    let unavailable =
        Answer::of(client().post(format!("{url}/tokens")).send().await.unwrap()).await;
    assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);

    // 404: another organization's token, asked for by id.
    let Fixture { service, .. } = fixture();
    let token = service
        .issue(&org_admin("acme"), IssueRequest::new(org("acme"), "ci"))
        .await
        .unwrap();
    let id = token.summary.id.to_string();
    let url = serve_over(service).await;
    let not_found = client().delete(format!("{url}/tokens/{id}")).send().await;
    let not_found = Answer::of(not_found.unwrap()).await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);

    let log = captured.text();
    let server_error = lines_with(&log, "server_error");
    assert_eq!(server_error.len(), 1, "{log}");
    assert!(server_error[0].contains("ERROR"), "{log}");
    assert!(server_error[0].contains("operation=\"issue\""), "{log}");
    assert!(server_error[0].contains("is already stored"), "{log}");
    assert!(!failed.body.contains("already stored"), "{}", failed.body);

    let outage = lines_with(&log, "temporarily_unavailable");
    assert_eq!(outage.len(), 1, "{log}");
    assert!(outage[0].contains("WARN"), "{log}");
    assert!(outage[0].contains("connection refused"), "{log}");
    assert!(
        !unavailable.body.contains("refused"),
        "{}",
        unavailable.body
    );

    // The refusal is logged for the operator with what was asked for; the
    // body names nothing.
    let refused = lines_with(&log, "not_found");
    assert_eq!(refused.len(), 1, "{log}");
    assert!(refused[0].contains("DEBUG"), "{log}");
    assert!(refused[0].contains(&id), "{log}");
    assert!(!not_found.body.contains(&id), "{}", not_found.body);
}
