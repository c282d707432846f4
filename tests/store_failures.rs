//! A store that cannot be reached: every operation returns a typed error that
//! keeps the store's cause, and nothing panics.

mod common;

use std::io;
use std::sync::Arc;

use api_tokens::{
    IssueError, IssueRequest, KeyId, Keyring, ListError, LookupError, PageRequest, RevokeError,
    RotateError, StoreError, TokenFormat, TokenService, VerifyError,
};
use common::*;

fn is_outage(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = error.source();
    while let Some(inner) = cause {
        if inner
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        cause = inner.source();
    }
    false
}

#[tokio::test]
async fn every_operation_reports_the_outage_with_its_cause() {
    let working = fixture();
    let token = working
        .service
        .issue(&org_admin("acme"), IssueRequest::new(org("acme"), "ci"))
        .await
        .unwrap();
    let service = TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        Keyring::new(KeyId::new(1), key(1)),
        Arc::new(Unreachable),
    );
    let admin = org_admin("acme");

    let issue = service
        .issue(&admin, IssueRequest::new(org("acme"), "ci"))
        .await
        .unwrap_err();
    assert!(matches!(
        issue,
        IssueError::Store(StoreError::Unavailable { .. })
    ));
    let verify = service
        .verify(token.token.expose_secret())
        .await
        .unwrap_err();
    assert!(matches!(
        verify,
        VerifyError::Store(StoreError::Unavailable { .. })
    ));
    let revoke = service
        .revoke(&admin, &token.summary.scope, token.summary.id)
        .await
        .unwrap_err();
    assert!(matches!(
        revoke,
        RevokeError::Store(StoreError::Unavailable { .. })
    ));
    let lookup = service
        .lookup(&admin, &token.summary.scope, token.summary.id)
        .await
        .unwrap_err();
    assert!(matches!(
        lookup,
        LookupError::Store(StoreError::Unavailable { .. })
    ));
    let rotate = service
        .rotate(&admin, &token.summary.scope, token.summary.id, MINUTE)
        .await
        .unwrap_err();
    assert!(matches!(
        rotate,
        RotateError::Store(StoreError::Unavailable { .. })
    ));
    let list = service
        .list(&admin, &org("acme"), PageRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(
        list,
        ListError::Store(StoreError::Unavailable { .. })
    ));

    for error in [
        &issue as &(dyn std::error::Error + 'static),
        &verify,
        &revoke,
        &lookup,
        &rotate,
        &list,
    ] {
        assert!(is_outage(error), "the cause is kept: {error}");
        assert_eq!(
            error.to_string(),
            "the token store is unavailable; retry later"
        );
    }

    // Refusals that need no store still come first.
    assert!(matches!(
        service.verify("garbage").await,
        Err(VerifyError::Malformed(_))
    ));
    assert!(matches!(
        service
            .issue(&org_admin("globex"), IssueRequest::new(org("acme"), "ci"))
            .await,
        Err(IssueError::NotAllowed { .. })
    ));
}
