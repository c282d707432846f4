//! Who may manage which tokens: the whole matrix of actors and scopes, for
//! issue, list, look up, revoke and rotate; the scope a call addresses a
//! token through; and the roles a token may carry.

mod common;

use std::time::Duration;

use api_tokens::{
    Actor, AuditEvent, IssueError, IssueRequest, ListError, LookupError, Operation, PageRequest,
    RevokeError, Revoked, Role, RotateError, Scope, TokenId, TokenService,
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
            let result = fixture.service.revoke(&actor, &scope, id).await;

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
                    .revoke(&actor, &scope, missing_id)
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

/// An id no test issues.
fn missing_id() -> TokenId {
    "0000000000A".parse().unwrap()
}

/// A call that names one token through a scope.
#[derive(Clone, Copy, Debug)]
enum Call {
    Revoke,
    RevokeBecause,
    /// Rotation with this grace period (zero revokes the old token at once).
    Rotate(Duration),
    Lookup,
}

impl Call {
    const ALL: [Call; 5] = [
        Call::Revoke,
        Call::RevokeBecause,
        Call::Rotate(Duration::ZERO),
        Call::Rotate(HOUR),
        Call::Lookup,
    ];

    /// The operation its `Refused` audit event names.
    fn operation(self) -> Operation {
        match self {
            Call::Revoke | Call::RevokeBecause => Operation::Revoke,
            Call::Rotate(_) => Operation::Rotate,
            Call::Lookup => Operation::List,
        }
    }

    /// Makes the call as `actor`, addressing the token `id` through `scope`.
    async fn make(
        self,
        service: &TokenService,
        actor: &Actor,
        scope: &Scope,
        id: TokenId,
    ) -> Result<(), Refusal> {
        match self {
            Call::Revoke => service
                .revoke(actor, scope, id)
                .await
                .map(drop)
                .map_err(Refusal::revoke),
            Call::RevokeBecause => service
                .revoke_because(actor, scope, id, Some("leaked"))
                .await
                .map(drop)
                .map_err(Refusal::revoke),
            Call::Rotate(grace) => service
                .rotate(actor, scope, id, grace)
                .await
                .map(drop)
                .map_err(|error| {
                    let not_found = match error {
                        RotateError::NotFound { id } => Some(id),
                        _ => None,
                    };
                    Refusal::new(&error, not_found)
                }),
            Call::Lookup => service
                .lookup(actor, scope, id)
                .await
                .map(drop)
                .map_err(|error| {
                    let not_found = match error {
                        LookupError::NotFound { id } => Some(id),
                        _ => None,
                    };
                    Refusal::new(&error, not_found)
                }),
        }
    }
}

/// What a refused call answered.
#[derive(Debug)]
struct Refusal {
    /// The id its `NotFound` names; `None` for any other error.
    not_found: Option<TokenId>,
    /// The error as the caller can show it, `Display` and `Debug`.
    text: String,
}

impl Refusal {
    fn new(error: &impl std::error::Error, not_found: Option<TokenId>) -> Self {
        Refusal {
            not_found,
            text: format!("{error} / {error:?}"),
        }
    }

    fn revoke(error: RevokeError) -> Self {
        let not_found = match error {
            RevokeError::NotFound { id } => Some(id),
            _ => None,
        };
        Refusal::new(&error, not_found)
    }

    /// The text with `id` masked, to compare answers about different ids.
    fn masked(&self, id: TokenId) -> String {
        self.text.replace(&id.to_string(), "ID")
    }
}

/// Makes `call` for `id` and for an id that does not exist, as `actor`
/// through `scope`, and asserts both are refused with one answer (`NotFound`
/// for the id named) for the same work, each with a `Refused` audit event
/// naming the addressed scope.
async fn assert_refused_like_a_missing_id(
    fixture: &Fixture,
    call: Call,
    actor: &Actor,
    scope: &Scope,
    id: TokenId,
    context: &str,
) {
    let mut answers = Vec::new();
    for named in [id, missing_id()] {
        let events_before = fixture.audit_events().await.len();
        let calls_before = fixture.store.calls();
        let refusal = call
            .make(&fixture.service, actor, scope, named)
            .await
            .expect_err(context);
        let store_calls = fixture.store.calls() - calls_before;
        assert_eq!(refusal.not_found, Some(named), "{context}: {refusal:?}");

        let events = fixture.audit_events().await;
        match &events[events_before..] {
            [
                AuditEvent::Refused {
                    actor: refused,
                    operation,
                    scope: Some(addressed),
                    token: Some(token),
                    ..
                },
            ] => {
                assert_eq!(refused, &actor.id, "{context}");
                assert_eq!(*operation, call.operation(), "{context}");
                assert_eq!(addressed, scope, "{context}");
                assert_eq!(*token, named, "{context}");
            }
            other => panic!("{context}: expected one Refused event, got {other:?}"),
        }
        answers.push((refusal.masked(named), store_calls));
    }
    assert_eq!(
        answers[0], answers[1],
        "{context}: a token out of reach and a missing one must get one answer for the same work"
    );
}

/// A token addressed through a scope it does not live at, by an actor who
/// manages both that scope and the token's own.
struct Misaddressed {
    what: &'static str,
    token_scope: Scope,
    addressed: Scope,
    actor: Actor,
}

fn misaddressed() -> Vec<Misaddressed> {
    let both_tenants = actor(
        "admin-of-acme-and-globex",
        &[(org("acme"), Role::Admin), (org("globex"), Role::Admin)],
    );
    let case = |what, token_scope, addressed, actor: &Actor| Misaddressed {
        what,
        token_scope,
        addressed,
        actor: actor.clone(),
    };
    vec![
        case(
            "a domain token through its organization",
            domain("acme", "shop"),
            org("acme"),
            &org_admin("acme"),
        ),
        case(
            "a domain token through a sibling domain",
            domain("acme", "shop"),
            domain("acme", "blog"),
            &org_admin("acme"),
        ),
        case(
            "a domain token through another organization",
            domain("acme", "shop"),
            org("globex"),
            &both_tenants,
        ),
        case(
            "a domain token through the same domain id in another organization",
            domain("acme", "shop"),
            domain("globex", "shop"),
            &both_tenants,
        ),
        case(
            "an organization token through one of its domains",
            org("acme"),
            domain("acme", "shop"),
            &org_admin("acme"),
        ),
        case(
            "an organization token through another organization",
            org("acme"),
            org("globex"),
            &both_tenants,
        ),
    ]
}

#[tokio::test]
async fn a_token_addressed_through_another_scope_is_not_found_even_for_an_admin_of_both() {
    let fixture = fixture();
    for case in misaddressed() {
        // The refusal is the address, not the rights: the actor manages both.
        assert!(
            case.actor.can_manage_tokens(&case.token_scope),
            "{}",
            case.what
        );
        assert!(
            case.actor.can_manage_tokens(&case.addressed),
            "{}",
            case.what
        );
        let issued = fixture
            .service
            .issue(
                &owner_of(&case.token_scope),
                IssueRequest::new(case.token_scope.clone(), "misaddressed"),
            )
            .await
            .unwrap();
        let id = issued.summary.id;
        let token = issued.token.expose_secret();
        let record = fixture.store.record(id).await;
        let stored = fixture.store.inner.len();

        for call in Call::ALL {
            let context = format!("{:?} of {}", call, case.what);
            assert_refused_like_a_missing_id(
                &fixture,
                call,
                &case.actor,
                &case.addressed,
                id,
                &context,
            )
            .await;

            // Nothing changed: the token verifies, its record is as issued,
            // and no successor was stored.
            let verified = fixture.service.verify(token).await.expect(&context);
            assert_eq!(verified.id(), id, "{context}");
            assert_eq!(fixture.store.record(id).await, record, "{context}");
            assert_eq!(fixture.store.inner.len(), stored, "{context}");
        }

        // At its own scope the same actor reaches it.
        let summary = fixture
            .service
            .lookup(&case.actor, &case.token_scope, id)
            .await
            .unwrap();
        assert_eq!(summary.id, id);
        assert_eq!(summary.scope, case.token_scope);
        assert!(matches!(
            fixture
                .service
                .revoke(&case.actor, &case.token_scope, id)
                .await,
            Ok(Revoked::Now(_))
        ));
        assert!(fixture.service.verify(token).await.is_err());
    }
}

#[tokio::test]
async fn lookup_and_rotate_follow_the_matrix_and_hide_what_they_refuse() {
    let fixture = fixture();
    for (actor, allowed) in actors() {
        for (index, scope) in scopes().into_iter().enumerate() {
            for call in [
                Call::Lookup,
                Call::Rotate(Duration::ZERO),
                Call::Rotate(HOUR),
            ] {
                let issued = fixture
                    .service
                    .issue(
                        &owner_of(&scope),
                        IssueRequest::new(scope.clone(), "matrix"),
                    )
                    .await
                    .unwrap();
                let id = issued.summary.id;
                let token = issued.token.expose_secret();
                let context = format!("{call:?} by {} at {scope}", actor.id);
                if allowed.contains(&index) {
                    call.make(&fixture.service, &actor, &scope, id)
                        .await
                        .unwrap_or_else(|refusal| panic!("{context}: {refusal:?}"));
                    // Only a rotation without grace ends the token at once.
                    let ended = matches!(call, Call::Rotate(Duration::ZERO));
                    assert_eq!(
                        fixture.service.verify(token).await.is_err(),
                        ended,
                        "{context}"
                    );
                } else {
                    let record = fixture.store.record(id).await;
                    assert_refused_like_a_missing_id(&fixture, call, &actor, &scope, id, &context)
                        .await;
                    assert!(fixture.service.verify(token).await.is_ok(), "{context}");
                    assert_eq!(fixture.store.record(id).await, record, "{context}");
                }
            }
        }
    }
}

#[tokio::test]
async fn an_outsider_with_a_bad_reason_still_gets_not_found_and_is_audited() {
    let fixture = fixture();
    let (_, id) = fixture.issue_at(org("acme"), "ci").await;
    let outsider = org_admin("globex");

    let refused = fixture
        .service
        .revoke_because(&outsider, &org("acme"), id, Some("bad\u{0}reason"))
        .await;

    // The reason is judged only for one who may revoke: the answer is the
    // one every refusal gets, and the attempt is on the record.
    assert!(matches!(refused, Err(RevokeError::NotFound { .. })));
    let events = fixture.audit_events().await;
    assert!(matches!(
        events.last(),
        Some(api_tokens::AuditEvent::Refused { .. })
    ));
}
