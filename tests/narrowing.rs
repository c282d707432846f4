//! Narrowed tokens: permission sets within the role, allowlists of client
//! networks that fail closed, and what issue refuses.

mod common;

use std::net::IpAddr;

use api_tokens::{
    AuditEvent, IssueError, IssueRequest, NetworkError, PermissionError, PermissionRegistry,
    RateLimit, Role, TokenService, VerifyError,
};
use common::*;

fn registry() -> PermissionRegistry {
    PermissionRegistry::new()
        .define("segments:read", Role::Viewer)
        .unwrap()
        .define("notifications:send", Role::Editor)
        .unwrap()
        .define("billing:manage", Role::Owner)
        .unwrap()
}

fn narrowing_fixture() -> Fixture {
    let mut fixture = fixture();
    fixture.service = fixture.service.with_permissions(registry());
    fixture
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[tokio::test]
async fn a_narrowed_token_may_do_only_what_its_set_holds() {
    let fixture = narrowing_fixture();
    let shop = domain("acme", "shop");
    let issued = fixture
        .service
        .issue(
            &org_admin("acme"),
            IssueRequest::new(shop.clone(), "notifier").permissions(["notifications:send"]),
        )
        .await
        .unwrap();
    // Asked for by its permission alone, it gets the role that grants it.
    assert_eq!(issued.summary.role, Role::Editor);
    let token = fixture
        .service
        .verify(issued.token.expose_secret())
        .await
        .unwrap();
    let permissions = fixture.service.permissions();
    let send = permissions.permission("notifications:send").unwrap();
    let read = permissions.permission("segments:read").unwrap();

    assert!(token.allows(&shop, &send));
    assert!(
        !token.allows(&domain("acme", "blog"), &send),
        "another domain"
    );
    assert!(
        !token.allows(&shop, &read),
        "not in its set, though its role grants it"
    );
    // A narrowed token passes no plain role check, not even the lowest.
    assert!(!token.allows(&shop, Role::Viewer));
    assert_eq!(
        token
            .permissions()
            .map(|set| set.iter().map(|p| p.as_str()).collect::<Vec<_>>()),
        Some(vec!["notifications:send"])
    );
}

#[tokio::test]
async fn a_token_without_a_set_has_its_roles_permissions() {
    let fixture = narrowing_fixture();
    let shop = domain("acme", "shop");
    let issued = fixture
        .service
        .issue(
            &org_admin("acme"),
            IssueRequest::new(shop.clone(), "ci").role(Role::Editor),
        )
        .await
        .unwrap();
    let token = fixture
        .service
        .verify(issued.token.expose_secret())
        .await
        .unwrap();
    let permissions = fixture.service.permissions();

    assert!(token.permissions().is_none());
    assert!(token.allows(&shop, Role::Editor));
    assert!(token.allows(&shop, permissions.permission("segments:read").unwrap()));
    assert!(token.allows(&shop, permissions.permission("notifications:send").unwrap()));
    assert!(!token.allows(&shop, permissions.permission("billing:manage").unwrap()));
}

#[tokio::test]
async fn a_permission_the_registry_dropped_grants_nothing_and_the_rest_still_works() {
    let fixture = narrowing_fixture();
    let shop = domain("acme", "shop");
    let issued = fixture
        .service
        .issue(
            &org_admin("acme"),
            IssueRequest::new(shop.clone(), "both")
                .permissions(["segments:read", "notifications:send"]),
        )
        .await
        .unwrap();
    let text = issued.token.expose_secret().to_owned();

    // The platform drops `notifications:send` and restarts: a new service
    // over the same store.
    let slimmer = PermissionRegistry::new()
        .define("segments:read", Role::Viewer)
        .unwrap();
    let restarted = TokenService::new(
        api_tokens::TokenFormat::new(PREFIX).unwrap(),
        api_tokens::Keyring::new(api_tokens::KeyId::new(1), key(1)),
        fixture.store.clone(),
    )
    .with_permissions(slimmer.clone());
    let token = restarted.verify(&text).await.unwrap();
    assert!(token.allows(&shop, slimmer.permission("segments:read").unwrap()));
    // It still carries the name; nothing can ask for it any more.
    let carried: Vec<_> = token
        .permissions()
        .unwrap()
        .iter()
        .map(|p| p.as_str())
        .collect();
    assert_eq!(carried, ["notifications:send", "segments:read"]);
    assert!(matches!(
        slimmer.permission("notifications:send"),
        Err(PermissionError::Unknown { .. })
    ));

    // Defined again, for owners only: the editor token does not get it back.
    let stricter = slimmer.define("notifications:send", Role::Owner).unwrap();
    let send = stricter.permission("notifications:send").unwrap();
    assert!(!token.allows(&shop, &send));
    assert!(token.allows(&shop, stricter.permission("segments:read").unwrap()));
}

/// What a refused request's error must match.
type Expected = fn(&IssueError) -> bool;

#[tokio::test]
async fn issue_refuses_sets_beyond_the_role_or_the_registry_and_stores_nothing() {
    let fixture = narrowing_fixture();
    let shop = domain("acme", "shop");
    let admin = org_admin("acme");
    let request = || IssueRequest::new(shop.clone(), "narrow");

    let cases: Vec<(IssueRequest, Expected)> = vec![
        (
            request().permissions(["segments:write"]),
            |e| matches!(e, IssueError::InvalidPermission(PermissionError::Unknown { permission }) if permission.as_str() == "segments:write"),
        ),
        (request().permissions(["Segments:Read"]), |e| {
            matches!(
                e,
                IssueError::InvalidPermission(PermissionError::InvalidName)
            )
        }),
        (request().permissions(Vec::<String>::new()), |e| {
            matches!(e, IssueError::EmptyPermissionSet)
        }),
        (request().permissions(vec!["segments:read"; 65]), |e| {
            matches!(e, IssueError::TooManyPermissions { max: 64 })
        }),
        // The admin's own role does not reach an owner's permission.
        (
            request().permissions(["segments:read", "billing:manage"]),
            |e| matches!(e, IssueError::PermissionNotGranted { permission, needs: Role::Owner, role: Role::Admin } if permission.as_str() == "billing:manage"),
        ),
        // An explicit role below what the set needs names the permission.
        (
            request()
                .role(Role::Viewer)
                .permissions(["segments:read", "notifications:send"]),
            |e| matches!(e, IssueError::PermissionNotGranted { permission, needs: Role::Editor, role: Role::Viewer } if permission.as_str() == "notifications:send"),
        ),
        (request().allowed_networks(Vec::<String>::new()), |e| {
            matches!(e, IssueError::EmptyAllowlist)
        }),
        (request().allowed_networks(vec!["10.0.0.0/8"; 101]), |e| {
            matches!(e, IssueError::TooManyNetworks { max: 100 })
        }),
        (
            request().allowed_networks(["10.0.0.0/8", "10.1.2.3/8"]),
            |e| {
                matches!(
                    e,
                    IssueError::InvalidNetwork {
                        position: 1,
                        error: NetworkError::HostBitsSet
                    }
                )
            },
        ),
        (request().allowed_networks(["everywhere"]), |e| {
            matches!(
                e,
                IssueError::InvalidNetwork {
                    position: 0,
                    error: NetworkError::Malformed
                }
            )
        }),
        (request().allowed_networks(["x".repeat(1 << 20)]), |e| {
            matches!(
                e,
                IssueError::InvalidNetwork {
                    position: 0,
                    error: NetworkError::Malformed
                }
            )
        }),
    ];
    for (request, expected) in cases {
        let shown = format!("{request:?}");
        let error = fixture.service.issue(&admin, request).await.unwrap_err();
        assert!(expected(&error), "{shown}: got {error:?}");
        // The message names what to fix; it never repeats a huge input.
        assert!(error.to_string().len() < 200, "{error}");
    }
    assert_eq!(fixture.store.inner.len(), 0, "nothing was stored");
}

#[tokio::test]
async fn an_outsider_learns_nothing_from_a_bad_permission_set() {
    let fixture = narrowing_fixture();
    let error = fixture
        .service
        .issue(
            &org_admin("globex"),
            IssueRequest::new(org("acme"), "x").permissions(["no:such"]),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, IssueError::NotAllowed { .. }), "{error:?}");
}

#[tokio::test]
async fn an_allowlist_admits_its_networks_only_and_fails_closed_without_an_address() {
    let fixture = narrowing_fixture();
    let issued = fixture
        .service
        .issue(
            &org_admin("acme"),
            IssueRequest::new(org("acme"), "office").allowed_networks([
                "203.0.113.0/24",
                "2001:db8::/32",
                "198.51.100.7",
            ]),
        )
        .await
        .unwrap();
    let text = issued.token.expose_secret();
    let service = &fixture.service;

    for inside in [
        "203.0.113.9",
        "::ffff:203.0.113.9",
        "2001:db8::77",
        "198.51.100.7",
    ] {
        assert!(
            service.verify_from(text, ip(inside)).await.is_ok(),
            "{inside}"
        );
    }
    for outside in ["203.0.114.1", "198.51.100.8", "2001:db9::1", "127.0.0.1"] {
        assert!(
            matches!(
                service.verify_from(text, ip(outside)).await,
                Err(VerifyError::AddressNotAllowed)
            ),
            "{outside}"
        );
    }
    assert!(matches!(
        service.verify(text).await,
        Err(VerifyError::AddressNotAllowed)
    ));
    assert_eq!(service.verify_failures().address_not_allowed, 5);

    // The trail says so, once a minute per token, naming the client.
    let refusals: Vec<_> = fixture
        .audit_events()
        .await
        .into_iter()
        .filter(|event| matches!(event, AuditEvent::AddressRefused { .. }))
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(matches!(
        &refusals[0],
        AuditEvent::AddressRefused { token, client: Some(client), .. }
            if *token == issued.summary.id && *client == ip("203.0.114.1")
    ));
}

#[tokio::test]
async fn the_secret_is_checked_before_the_address() {
    let fixture = narrowing_fixture();
    let issued = fixture
        .service
        .issue(
            &org_admin("acme"),
            IssueRequest::new(org("acme"), "office").allowed_networks(["203.0.113.0/24"]),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    let wrong_secret = altered(token, SECRET_AT, other_than(token.as_bytes()[SECRET_AT]));
    let outcome = fixture
        .service
        .verify_from(&wrong_secret, ip("10.0.0.1"))
        .await;
    assert!(matches!(outcome, Err(VerifyError::Invalid)), "{outcome:?}");
}

#[tokio::test]
async fn restrictions_are_listed_audited_and_kept_by_rotation() {
    let fixture = narrowing_fixture();
    let admin = org_admin("acme");
    let shop = domain("acme", "shop");
    let limit = RateLimit::new(100, 60 * SECOND).unwrap();
    let issued = fixture
        .service
        .issue(
            &admin,
            IssueRequest::new(shop.clone(), "notifier")
                .permissions(["notifications:send", "segments:read", "notifications:send"])
                .allowed_networks(["10.0.0.0/8"])
                .rate_limit(limit),
        )
        .await
        .unwrap();
    let restrictions = issued.summary.restrictions.clone();
    let names: Vec<_> = restrictions
        .permissions
        .iter()
        .flatten()
        .map(|p| p.as_str())
        .collect();
    assert_eq!(
        names,
        ["notifications:send", "segments:read"],
        "sorted, no repeats"
    );
    assert_eq!(restrictions.rate_limit, Some(limit));

    let page = fixture
        .service
        .list(&admin, &shop, api_tokens::PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.tokens[0].restrictions, restrictions);

    let events = fixture.audit_events().await;
    assert!(matches!(
        &events[0],
        AuditEvent::Issued { restrictions: audited, .. } if *audited == restrictions
    ));
    let json = serde_json::to_string(&events[0]).unwrap();
    assert!(
        json.contains(r#""permissions":["notifications:send","segments:read"]"#),
        "{json}"
    );
    assert!(
        json.contains(r#""allowed_networks":["10.0.0.0/8"]"#),
        "{json}"
    );

    let successor = fixture
        .service
        .rotate(&admin, &shop, issued.summary.id, HOUR)
        .await
        .unwrap();
    assert_eq!(successor.summary.restrictions, restrictions);
    let token = fixture
        .service
        .verify_from(successor.token.expose_secret(), ip("10.1.1.1"))
        .await
        .unwrap();
    assert_eq!(token.rate_limit(), Some(limit));
    assert!(matches!(
        fixture
            .service
            .verify(successor.token.expose_secret())
            .await,
        Err(VerifyError::AddressNotAllowed)
    ));
}
