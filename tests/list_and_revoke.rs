//! The API Tokens list (what it shows, in what order, page by page) and
//! revocation as the dashboard uses it.

mod common;

use std::collections::HashSet;

use api_tokens::{
    IssueRequest, ListError, MAX_PAGE_SIZE, PageRequest, RevokeError, Revoked, TokenId, TokenStatus,
};
use common::*;

/// Issues `count` tokens at `scope`, one second apart, returning their ids
/// oldest first.
async fn issue_series(fixture: &Fixture, scope: &api_tokens::Scope, count: usize) -> Vec<TokenId> {
    let mut ids = Vec::new();
    for n in 0..count {
        fixture.clock.advance(SECOND);
        let issued = fixture
            .service
            .issue(
                &org_admin("acme"),
                IssueRequest::new(scope.clone(), format!("token {n}")),
            )
            .await
            .unwrap();
        ids.push(issued.summary.id);
    }
    ids
}

async fn all_pages(
    fixture: &Fixture,
    scope: &api_tokens::Scope,
    limit: usize,
) -> Vec<Vec<TokenId>> {
    let mut pages = Vec::new();
    let mut request = PageRequest::first(limit);
    loop {
        let page = fixture
            .service
            .list(&org_admin("acme"), scope, request)
            .await
            .unwrap();
        pages.push(page.tokens.iter().map(|t| t.id).collect());
        match page.next {
            Some(cursor) => request = PageRequest::after(cursor, limit),
            None => return pages,
        }
    }
}

#[tokio::test]
async fn a_list_holds_exactly_its_scope_newest_first_in_pages() {
    let fixture = fixture();
    let org_ids = issue_series(&fixture, &org("acme"), 25).await;
    let shop_ids = issue_series(&fixture, &domain("acme", "shop"), 3).await;
    issue_series(&fixture, &domain("acme", "blog"), 2).await;

    let pages = all_pages(&fixture, &org("acme"), 10).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    let listed: Vec<TokenId> = pages.concat();
    let newest_first: Vec<TokenId> = org_ids.iter().rev().copied().collect();
    assert_eq!(
        listed, newest_first,
        "organization list: its own tokens, newest first"
    );

    // An exact page size leaves no empty page behind.
    assert_eq!(all_pages(&fixture, &org("acme"), 25).await.len(), 1);
    assert_eq!(all_pages(&fixture, &org("acme"), 5).await.len(), 5);

    let shop: Vec<TokenId> = all_pages(&fixture, &domain("acme", "shop"), 10)
        .await
        .concat();
    assert_eq!(shop, shop_ids.iter().rev().copied().collect::<Vec<_>>());
    assert!(
        all_pages(&fixture, &domain("acme", "none"), 10)
            .await
            .concat()
            .is_empty()
    );
}

#[tokio::test]
async fn tokens_issued_between_pages_neither_repeat_nor_hide_others() {
    let fixture = fixture();
    let scope = org("acme");
    // All in the same instant: ties are broken by id.
    let mut before: HashSet<TokenId> = HashSet::new();
    for n in 0..30 {
        let issued = fixture
            .service
            .issue(
                &org_admin("acme"),
                IssueRequest::new(scope.clone(), format!("t{n}")),
            )
            .await
            .unwrap();
        before.insert(issued.summary.id);
    }

    let mut seen = Vec::new();
    let mut request = PageRequest::first(7);
    loop {
        let page = fixture
            .service
            .list(&org_admin("acme"), &scope, request)
            .await
            .unwrap();
        seen.extend(page.tokens.iter().map(|t| t.id));
        // Others keep issuing, some in the same instant, some later.
        issue_series(&fixture, &scope, 2).await;
        match page.next {
            Some(cursor) => request = PageRequest::after(cursor, 7),
            None => break,
        }
    }
    let unique: HashSet<TokenId> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no token listed twice");
    assert!(
        before.is_subset(&unique),
        "every token that existed at the start was listed"
    );
}

#[tokio::test]
async fn page_sizes_outside_the_bounds_are_refused() {
    let fixture = fixture();
    for bad in [0, MAX_PAGE_SIZE + 1, usize::MAX] {
        assert!(matches!(
            fixture.service.list(&org_admin("acme"), &org("acme"), PageRequest::first(bad)).await,
            Err(ListError::InvalidPageSize { requested, max: MAX_PAGE_SIZE }) if requested == bad
        ));
    }
    assert!(
        fixture
            .service
            .list(
                &org_admin("acme"),
                &org("acme"),
                PageRequest::first(MAX_PAGE_SIZE)
            )
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_list_shows_metadata_and_status_but_never_the_secret() {
    let fixture = fixture();
    let admin = org_admin("acme");
    let active = fixture
        .service
        .issue(&admin, IssueRequest::new(org("acme"), "active"))
        .await
        .unwrap();
    let expiring = fixture
        .service
        .issue(
            &admin,
            IssueRequest::new(org("acme"), "expiring").expires_at(START + HOUR),
        )
        .await
        .unwrap();
    let revoked = fixture
        .service
        .issue(&admin, IssueRequest::new(org("acme"), "revoked"))
        .await
        .unwrap();
    fixture.clock.advance(2 * HOUR);
    fixture
        .service
        .revoke(&admin, &org("acme"), revoked.summary.id)
        .await
        .unwrap();

    let page = fixture
        .service
        .list(&admin, &org("acme"), PageRequest::default())
        .await
        .unwrap();
    let status_of = |id| page.tokens.iter().find(|t| t.id == id).unwrap();
    assert_eq!(status_of(active.summary.id).status, TokenStatus::Active);
    assert_eq!(status_of(expiring.summary.id).status, TokenStatus::Expired);
    assert_eq!(
        status_of(expiring.summary.id).expires_at,
        Some(START + HOUR)
    );
    let row = status_of(revoked.summary.id);
    assert_eq!(row.status, TokenStatus::Revoked);
    let revocation = row.revoked.as_ref().unwrap();
    assert_eq!(
        (revocation.at, &revocation.by),
        (START + 2 * HOUR, &admin.id)
    );
    assert_eq!(row.created_by, admin.id);
    assert_eq!(row.label.as_str(), "revoked");

    let json = serde_json::to_string(&page.tokens).unwrap();
    for issued in [&active, &expiring, &revoked] {
        let token = issued.token.expose_secret();
        assert!(
            json.contains(&token[..SECRET_AT]),
            "the public head is shown"
        );
        assert!(
            !json.contains(&token[SECRET_AT..CHECKSUM_AT]),
            "the secret is not"
        );
        assert!(!format!("{page:?}").contains(&token[SECRET_AT..CHECKSUM_AT]));
    }
    assert!(!json.contains("digest"));
}

#[tokio::test]
async fn revoking_twice_is_harmless_and_says_so() {
    let fixture = fixture();
    let admin = org_admin("acme");
    let other_admin = actor("second-admin", &[(org("acme"), api_tokens::Role::Admin)]);
    let issued = fixture
        .service
        .issue(&admin, IssueRequest::new(domain("acme", "shop"), "shop"))
        .await
        .unwrap();
    let id = issued.summary.id;

    let shop = domain("acme", "shop");
    let first = match fixture.service.revoke(&admin, &shop, id).await.unwrap() {
        Revoked::Now(revocation) => revocation,
        other => panic!("first revoke: {other:?}"),
    };
    assert_eq!((first.at, &first.by), (START, &admin.id));

    fixture.clock.advance(5 * MINUTE);
    // A second revoke, even by someone else later, keeps the first revocation.
    assert_eq!(
        fixture
            .service
            .revoke(&other_admin, &shop, id)
            .await
            .unwrap(),
        Revoked::Already(first.clone())
    );
    let stored = fixture.store.inner.len();
    assert_eq!(stored, 1);
    let page = fixture
        .service
        .list(&admin, &domain("acme", "shop"), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.tokens[0].revoked, Some(first));
}

#[tokio::test]
async fn revoking_an_unknown_id_is_not_found() {
    let fixture = fixture();
    let id: TokenId = "00000000042".parse().unwrap();
    assert!(matches!(
        fixture
            .service
            .revoke(&org_admin("acme"), &org("acme"), id)
            .await,
        Err(RevokeError::NotFound { id: missing }) if missing == id
    ));
    // Token ids from user input are parsed first; garbage is a typed error.
    for bad in [
        "",
        "0000000004",
        "000000000420",
        "0000000004!",
        "zzzzzzzzzzz",
        "ééééé0",
    ] {
        assert!(bad.parse::<TokenId>().is_err(), "{bad}");
    }
}
