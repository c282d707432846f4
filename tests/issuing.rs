//! `TokenService::issue`: labels, expiry, id collisions, and that a refused
//! request stores nothing.

mod common;

use std::time::Duration;

use api_tokens::{IssueError, IssueRequest, LabelError, MAX_LABEL_CHARS, StoreError};
use common::*;
use time::UtcOffset;
use time::macros::datetime;

async fn issue_with_label(
    fixture: &Fixture,
    label: &str,
) -> Result<api_tokens::IssuedToken, IssueError> {
    fixture
        .service
        .issue(&org_admin("acme"), IssueRequest::new(org("acme"), label))
        .await
}

#[tokio::test]
async fn labels_are_trimmed_and_unicode_is_kept_exactly() {
    let fixture = fixture();
    let cases = [
        ("  deploys from CI \t", "deploys from CI"),
        ("Déploiement 🚀 中文 עברית", "Déploiement 🚀 中文 עברית"),
        // No normalization: a combining accent stays a combining accent.
        ("cafe\u{301}", "cafe\u{301}"),
        // Zero-width joiners build emoji; they are allowed.
        ("👩‍💻 laptop", "👩‍💻 laptop"),
        ("x", "x"),
    ];
    for (given, kept) in cases {
        let issued = issue_with_label(&fixture, given).await.unwrap();
        assert_eq!(issued.summary.label.as_str(), kept);
        let verified = fixture
            .service
            .verify(issued.token.expose_secret())
            .await
            .unwrap();
        let stored = fixture.store.record(verified.id()).await;
        assert_eq!(stored.label.as_str().as_bytes(), kept.as_bytes());
    }

    // The limit counts characters, not bytes.
    let longest = "é".repeat(MAX_LABEL_CHARS);
    assert_eq!(
        issue_with_label(&fixture, &longest)
            .await
            .unwrap()
            .summary
            .label
            .as_str(),
        longest
    );
    let emoji = "🔑".repeat(MAX_LABEL_CHARS);
    assert!(issue_with_label(&fixture, &emoji).await.is_ok());
}

#[tokio::test]
async fn bad_labels_are_refused_and_nothing_is_stored() {
    let fixture = fixture();
    let too_long = LabelError::TooLong {
        max: MAX_LABEL_CHARS,
    };
    let cases = [
        (String::new(), LabelError::Empty),
        ("   \t ".into(), LabelError::Empty),
        ("\u{3000}".into(), LabelError::Empty), // ideographic space is whitespace
        ("x".repeat(MAX_LABEL_CHARS + 1), too_long.clone()),
        ("é".repeat(MAX_LABEL_CHARS + 1), too_long.clone()),
        ("x".repeat(1 << 20), too_long),
        (
            "two\nlines".into(),
            LabelError::ForbiddenCharacter {
                position: 3,
                code_point: 0x0a,
            },
        ),
        (
            "nul\0".into(),
            LabelError::ForbiddenCharacter {
                position: 3,
                code_point: 0,
            },
        ),
        (
            "bell\u{7}".into(),
            LabelError::ForbiddenCharacter {
                position: 4,
                code_point: 7,
            },
        ),
        (
            "tab\tinside".into(),
            LabelError::ForbiddenCharacter {
                position: 3,
                code_point: 9,
            },
        ),
        (
            "esc\u{1b}[31m".into(),
            LabelError::ForbiddenCharacter {
                position: 3,
                code_point: 0x1b,
            },
        ),
        (
            "del\u{7f}".into(),
            LabelError::ForbiddenCharacter {
                position: 3,
                code_point: 0x7f,
            },
        ),
        (
            "line\u{2028}sep".into(),
            LabelError::ForbiddenCharacter {
                position: 4,
                code_point: 0x2028,
            },
        ),
        (
            "admin\u{202E}txt.exe".into(),
            LabelError::ForbiddenCharacter {
                position: 5,
                code_point: 0x202e,
            },
        ),
        (
            "é\u{2066}x".into(),
            LabelError::ForbiddenCharacter {
                position: 1,
                code_point: 0x2066,
            },
        ),
    ];
    for (label, expected) in cases {
        match issue_with_label(&fixture, &label).await {
            Err(IssueError::InvalidLabel(found)) => {
                assert_eq!(found, expected, "{:?}", label.get(..20))
            }
            other => panic!(
                "{:?}: expected {expected:?}, got {other:?}",
                label.get(..20)
            ),
        }
    }
    assert!(fixture.store.inner.is_empty());
}

#[tokio::test]
async fn expiry_must_lie_in_the_future_and_is_kept_in_utc_microseconds() {
    let fixture = fixture();
    let request = |expiry| IssueRequest::new(org("acme"), "expiring").expires_at(expiry);
    let admin = org_admin("acme");

    for past in [START - DAY, START, START - Duration::from_nanos(1)] {
        assert!(matches!(
            fixture.service.issue(&admin, request(past)).await,
            Err(IssueError::ExpiryNotInFuture)
        ));
    }
    // Far enough that its UTC form does not exist.
    assert!(matches!(
        fixture
            .service
            .issue(&admin, request(datetime!(9999-12-31 23:00 -05:00)))
            .await,
        Err(IssueError::ExpiryOutOfRange)
    ));
    assert!(fixture.store.inner.is_empty());

    // An expiry in another offset, with nanoseconds: kept as the same
    // instant in UTC, truncated to the microsecond.
    let given = datetime!(2030-01-02 03:04:05.123456789 +02:00);
    let issued = fixture.service.issue(&admin, request(given)).await.unwrap();
    let kept = issued.summary.expires_at.unwrap();
    assert_eq!(kept.offset(), UtcOffset::UTC);
    assert_eq!(kept, datetime!(2030-01-02 01:04:05.123456 UTC));
    assert_eq!(issued.summary.created_at, START);
}

#[tokio::test]
async fn an_id_collision_draws_a_new_id_and_a_broken_store_is_reported() {
    let fixture = fixture();
    let admin = org_admin("acme");
    fixture.store.take_ids_first(2);
    let issued = fixture
        .service
        .issue(&admin, IssueRequest::new(org("acme"), "third time"))
        .await
        .unwrap();
    assert!(
        fixture
            .service
            .verify(issued.token.expose_secret())
            .await
            .is_ok()
    );
    assert_eq!(fixture.store.inner.len(), 3, "two taken ids and ours");

    // A store where every id is already taken is broken: after a few draws, say so.
    fixture.store.take_ids_first(usize::MAX);
    assert!(matches!(
        fixture
            .service
            .issue(&admin, IssueRequest::new(org("acme"), "never"))
            .await,
        Err(IssueError::Store(StoreError::AlreadyExists { .. }))
    ));
}
