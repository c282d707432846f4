//! Who may manage which tokens: the whole matrix of actors and scopes, for
//! issue, list and revoke, and the roles a token may carry.

mod common;

use api_tokens::{
    Actor, IssueError, IssueRequest, ListError, PageRequest, RevokeError, Revoked, Role, Scope,
    TokenId,
};
use common::*;

fn scopes() -> Vec<Scope> {
    vec![
        org("acme"),
        domain("acme", "shop"),
        domain("acme", "blog"),
        org("globex"),
        // Same domain id, other organization: another domain.
        domain("globex", "shop"),
    ]
}

/// Every actor, with the scopes (indexes into `scopes()`) it may manage.
fn actors() -> Vec<(Actor, Vec<usize>)> {
    vec![
        (
            actor("acme-owner", &[(org("acme"), Role::Owner)]),
            vec![0, 1, 2],
        ),
        (org_admin("acme"), vec![0, 1, 2]),
        (domain_admin("acme", "shop"), vec![1]),
        (
            actor(
                "shop-admin-org-viewer",
                &[
                    (org("acme"), Role::Viewer),
                    (domain("acme", "shop"), Role::Admin),
                ],
            ),
            vec![1],
        ),
        (actor("acme-editor", &[(org("acme"), Role::Editor)]), vec![]),
        (actor("acme-viewer", &[(org("acme"), Role::Viewer)]), vec![]),
        (
            actor("shop-editor", &[(domain("acme", "shop"), Role::Editor)]),
            vec![],
        ),
        (org_admin("globex"), vec![3, 4]),
        (domain_admin("globex", "shop"), vec![4]),
        (actor("nobody", &[]), vec![]),
    ]
}

fn owner_of(scope: &Scope) -> Actor {
    actor(
        "owner",
        &[(Scope::organization(scope.org().clone()), Role::Owner)],
    )
}

#[tokio::test]
async fn issue_follows_the_matrix() {
    let fixture = fixture();
    for (actor, allowed) in actors() {
        for (index, scope) in scopes().into_iter().enumerate() {
            let result = fixture
                .service
                .issue(&actor, IssueRequest::new(scope.clone(), "matrix"))
                .await;
            if allowed.contains(&index) {
                let issued = result.unwrap_or_else(|e| panic!("{} at {scope}: {e}", actor.id));
                assert_eq!(issued.summary.scope, scope);
                assert_eq!(issued.summary.created_by, actor.id);
            } else {
                match result {
                    Err(IssueError::NotAllowed { scope: refused }) => assert_eq!(refused, scope),
                    other => panic!(
                        "{} at {scope}: expected NotAllowed, got {other:?}",
                        actor.id
                    ),
                }
            }
        }
    }
}

#[tokio::test]
async fn list_follows_the_matrix() {
    let fixture = fixture();
    for scope in scopes() {
        fixture
            .service
            .issue(
                &owner_of(&scope),
                IssueRequest::new(scope.clone(), "listed"),
            )
            .await
            .unwrap();
    }
    for (actor, allowed) in actors() {
        for (index, scope) in scopes().into_iter().enumerate() {
            let result = fixture
                .service
                .list(&actor, &scope, PageRequest::default())
                .await;
            if allowed.contains(&index) {
                let page = result.unwrap();
                assert_eq!(page.tokens.len(), 1, "{} at {scope}", actor.id);
                assert_eq!(page.tokens[0].scope, scope);
            } else {
                assert!(
                    matches!(result, Err(ListError::NotAllowed { .. })),
                    "{} at {scope}",
                    actor.id
                );
            }
        }
    }
}

#[tokio::test]
async fn revoke_follows_the_matrix_and_hides_what_it_refuses() {
    let fixture = fixture();
    for (actor, allowed) in actors() {
        for (index, scope) in scopes().into_iter().enumerate() {
            let issued = fixture
                .service
                .issue(
                    &owner_of(&scope),
                    IssueRequest::new(scope.clone(), "to revoke"),
                )
                .await
                .unwrap();
            let id = issued.summary.id;
            let result = fixture.service.revoke(&actor, id).await;

            if allowed.contains(&index) {
                match result {
                    Ok(Revoked::Now(revocation)) => assert_eq!(revocation.by, actor.id),
                    other => panic!("{} at {scope}: {other:?}", actor.id),
                }
                assert!(
                    fixture
                        .service
                        .verify(issued.token.expose_secret())
                        .await
                        .is_err()
                );
            } else {
                // Exactly what a token that does not exist gets.
                let refused = result.unwrap_err();
                assert!(matches!(refused, RevokeError::NotFound { id: e } if e == id));
                let missing_id: TokenId = "0000000000A".parse().unwrap();
                let missing = fixture
                    .service
                    .revoke(&actor, missing_id)
                    .await
                    .unwrap_err();
                assert_eq!(
                    refused.to_string().replace(&id.to_string(), "ID"),
                    missing.to_string().replace(&missing_id.to_string(), "ID")
                );
                // And the token is untouched.
                assert!(
                    fixture
                        .service
                        .verify(issued.token.expose_secret())
                        .await
                        .is_ok()
                );
            }
        }
    }
}

#[tokio::test]
async fn a_token_never_outranks_its_issuer() {
    let fixture = fixture();
    let owner = owner_of(&org("acme"));
    let admin = org_admin("acme");

    // A request that names no role gets the least privilege: Viewer, even
    // from an owner.
    let by_owner = fixture
        .service
        .issue(&owner, IssueRequest::new(org("acme"), "o"))
        .await
        .unwrap();
    assert_eq!(by_owner.summary.role, Role::Viewer);
    // The role asked for, up to the issuer's own.
    let owner_token = fixture
        .service
        .issue(
            &owner,
            IssueRequest::new(org("acme"), "o").role(Role::Owner),
        )
        .await
        .unwrap();
    assert_eq!(owner_token.summary.role, Role::Owner);
    let by_admin = fixture
        .service
        .issue(
            &admin,
            IssueRequest::new(domain("acme", "shop"), "a").role(Role::Admin),
        )
        .await
        .unwrap();
    assert_eq!(by_admin.summary.role, Role::Admin);

    // Lower roles may be asked for; higher ones are refused, and nothing is stored.
    let viewer = fixture
        .service
        .issue(
            &admin,
            IssueRequest::new(org("acme"), "v").role(Role::Viewer),
        )
        .await
        .unwrap();
    assert_eq!(
        fixture
            .service
            .verify(viewer.token.expose_secret())
            .await
            .unwrap()
            .role(),
        Role::Viewer
    );

    let before = fixture.store.inner.len();
    match fixture
        .service
        .issue(
            &admin,
            IssueRequest::new(org("acme"), "too high").role(Role::Owner),
        )
        .await
    {
        Err(IssueError::RoleTooHigh { requested, held }) => {
            assert_eq!((requested, held), (Role::Owner, Role::Admin));
        }
        other => panic!("expected RoleTooHigh, got {other:?}"),
    }
    assert_eq!(fixture.store.inner.len(), before);
}

#[tokio::test]
async fn a_configured_default_role_applies_but_never_above_the_issuer() {
    let fixture = fixture();
    let service = fixture.service.with_default_role(Role::Editor);
    let admin = org_admin("acme");
    let issued = service
        .issue(&admin, IssueRequest::new(org("acme"), "editor by default"))
        .await
        .unwrap();
    assert_eq!(issued.summary.role, Role::Editor);
    let verified = service.verify(issued.token.expose_secret()).await.unwrap();
    assert_eq!(verified.role(), Role::Editor);
    // A role named in the request wins over the default, lower too.
    let viewer = service
        .issue(
            &admin,
            IssueRequest::new(org("acme"), "viewer").role(Role::Viewer),
        )
        .await
        .unwrap();
    assert_eq!(viewer.summary.role, Role::Viewer);

    // A default above the issuer's role is refused like asking for it.
    let service = service.with_default_role(Role::Owner);
    let before = fixture.store.inner.len();
    assert!(matches!(
        service
            .issue(&admin, IssueRequest::new(org("acme"), "owner by default"))
            .await,
        Err(IssueError::RoleTooHigh {
            requested: Role::Owner,
            held: Role::Admin
        })
    ));
    assert_eq!(fixture.store.inner.len(), before);
}
