//! The text forms of the values a service puts in URLs, JSON and
//! configuration: `Role`, `Scope`, `KeyId`, `Cursor` and `ExpiryCursor`.
//! For each, `Display` and `FromStr` round-trip, serde is the same string,
//! and every bad text is a typed error, never a panic.

mod common;

use api_tokens::{
    Cursor, CursorError, DomainId, ExpiryCursor, IdError, InvalidKeyId, InvalidRole, KeyId,
    MAX_ID_LEN, OrganizationId, PageRequest, Role, Scope, ScopeParseError, TokenId,
};
use common::{domain, fixture, org, org_admin};
use proptest::prelude::*;
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

/// Texts no parser here should accept: empty, huge, non-ASCII, control
/// characters, JSON and the like.
fn garbage() -> Vec<String> {
    vec![
        String::new(),
        " ".into(),
        "\0".into(),
        "x".repeat(1 << 20),
        "é".repeat(1 << 19),
        "🚀".into(),
        "null".into(),
        "{}".into(),
        "\"admin\"".into(),
        "%".into(),
        "/".into(),
    ]
}

/// `text` cut short, one character changed, and with trailing garbage.
fn near_misses(text: &str) -> Vec<String> {
    let mut misses = vec![
        text[..text.len() - 1].to_owned(),
        text[1..].to_owned(),
        format!("{text} "),
        format!(" {text}"),
        format!("{text}x"),
        format!("{text}\n"),
        format!("{text}{text}"),
        text.to_uppercase(),
    ];
    let middle = text.len() / 2;
    for replacement in ["é", "\0", "*"] {
        let mut changed = text.to_owned();
        changed.replace_range(middle..middle + 1, replacement);
        misses.push(changed);
    }
    misses.retain(|miss| miss != text);
    misses
}

#[test]
fn roles_parse_exactly_their_display_and_serde_agrees() {
    for role in Role::ALL {
        let text = role.to_string();
        assert_eq!(text.parse::<Role>(), Ok(role));
        assert_eq!(serde_json::to_value(role).unwrap(), json!(text));
        assert_eq!(serde_json::from_value::<Role>(json!(text)).unwrap(), role);
        for miss in near_misses(&text) {
            assert_eq!(miss.parse::<Role>(), Err(InvalidRole), "{miss:?}");
        }
    }
    for text in garbage() {
        assert_eq!(text.parse::<Role>(), Err(InvalidRole));
    }
    assert!(serde_json::from_value::<Role>(json!("superuser")).is_err());
    assert!(serde_json::from_value::<Role>(json!(2)).is_err());
}

#[test]
fn key_ids_are_their_decimal_number_as_a_string() {
    for n in [0, 1, 42, u32::MAX] {
        let id = KeyId::new(n);
        assert_eq!(id.to_string(), n.to_string());
        assert_eq!(serde_json::to_value(id).unwrap(), json!(n.to_string()));
        assert_eq!(
            serde_json::from_value::<KeyId>(json!(n.to_string())).unwrap(),
            id
        );
    }
    for text in garbage()
        .into_iter()
        .chain(
            [
                "12 ",
                " 12",
                "12x",
                "1é",
                "1\n",
                "+1",
                "-0",
                "00",
                "012",
                "0x10",
                "1e3",
                "1_000",
                "4294967296",
                "99999999999999999999",
                "٣",
            ]
            .map(String::from),
        )
        .chain([format!("1{}", "0".repeat(1 << 20))])
    {
        assert_eq!(text.parse::<KeyId>(), Err(InvalidKeyId), "{text:.40?}");
    }
    // Earlier versions wrote a number; it is refused, not misread.
    assert!(serde_json::from_value::<KeyId>(json!(7)).is_err());
    assert!(serde_json::from_value::<KeyId>(json!("07")).is_err());
}

#[test]
fn scopes_serialize_as_their_display_text() {
    let record = json!({
        "org": org("acme"),
        "shop": domain("acme", "shop"),
        "odd": domain("a/b", "50%"),
    });
    assert_eq!(
        record,
        json!({
            "org": "organization acme",
            "shop": "domain acme/shop",
            "odd": "domain a%2Fb/50%25",
        })
    );
    for (text, scope) in [
        ("organization acme", org("acme")),
        ("domain acme/shop", domain("acme", "shop")),
        ("domain a%2Fb/50%25", domain("a/b", "50%")),
    ] {
        assert_eq!(serde_json::from_value::<Scope>(json!(text)).unwrap(), scope);
    }
    for bad in [
        json!({"kind": "organization", "org": "acme"}),
        json!("domain acme"),
        json!(["organization", "acme"]),
        json!(1),
    ] {
        assert!(
            serde_json::from_value::<Scope>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn every_bad_scope_text_is_a_typed_error() {
    use ScopeParseError as E;
    for text in garbage() {
        assert!(text.parse::<Scope>().is_err(), "{text:.40?}");
    }
    for good in ["organization acme", "domain acme/shop", "domain a%2Fb/c%25"] {
        for miss in near_misses(good) {
            // A shorter or altered id can still be an id; anything else
            // must be refused.
            if let Ok(scope) = miss.parse::<Scope>() {
                assert_eq!(scope.to_string(), miss);
            }
        }
    }
    let huge = format!("domain {}/x", "a".repeat(1 << 20));
    assert!(matches!(huge.parse::<Scope>(), Err(E::TooLong { .. })));
    let cases = [
        (
            "organization acme x",
            E::Organization(IdError::NotPrintable {
                what: "an organization id",
                position: 4,
            }),
        ),
        (
            "domain acme/shop ",
            E::Domain(IdError::NotPrintable {
                what: "a domain id",
                position: 4,
            }),
        ),
        ("domain acme/shop/", E::UnexpectedSeparator { position: 16 }),
        ("domain acme%2Gshop/x", E::InvalidEscape { position: 11 }),
        ("domain acme", E::MissingSeparator),
        ("domain", E::UnknownKind),
        ("DOMAIN acme/shop", E::UnknownKind),
        ("domain\tacme/shop", E::UnknownKind),
        (
            "organization ácme",
            E::Organization(IdError::NotPrintable {
                what: "an organization id",
                position: 0,
            }),
        ),
        (
            &format!("organization {}", "a".repeat(MAX_ID_LEN + 1)),
            E::Organization(IdError::TooLong {
                what: "an organization id",
                max: MAX_ID_LEN,
            }),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(text.parse::<Scope>(), Err(expected), "{text:?}");
    }
}

/// Ids as the platform may have them: printable ASCII without spaces (the
/// id rules allow neither spaces nor non-ASCII), leaning on `/` and `%`
/// and the characters of their escapes.
fn any_id() -> impl Strategy<Value = String> {
    const _: () = assert!(MAX_ID_LEN == 64, "the patterns below allow 64 characters");
    prop_oneof!["[!-~]{1,64}", "[%/25Ffa]{1,64}"]
}

fn any_scope() -> impl Strategy<Value = Scope> {
    (any_id(), proptest::option::of(any_id())).prop_filter_map("a valid id", |(org, domain)| {
        let org = OrganizationId::new(&org).ok()?;
        Some(match domain {
            None => Scope::organization(org),
            Some(domain) => Scope::domain(org, DomainId::new(&domain).ok()?),
        })
    })
}

/// Any time a store can hold, so any time a list's cursor can name: from
/// the year 1 (earlier ones are refused as no position) to 9999.
fn any_time() -> impl Strategy<Value = OffsetDateTime> {
    let first = datetime!(0001-01-01 00:00 UTC).unix_timestamp();
    let last = datetime!(9999-12-31 23:59:59 UTC).unix_timestamp();
    (first..=last, 0..1_000_000_000u32).prop_map(|(seconds, nanos)| {
        OffsetDateTime::from_unix_timestamp(seconds)
            .unwrap()
            .replace_nanosecond(nanos)
            .unwrap()
    })
}

fn any_token_id() -> impl Strategy<Value = TokenId> {
    "[0-9A-Za-z]{11}".prop_filter_map("an id in range", |text| text.parse().ok())
}

proptest! {
    #[test]
    fn every_scope_round_trips_through_its_text_and_serde(scope in any_scope()) {
        let text = scope.to_string();
        prop_assert_eq!(text.parse::<Scope>(), Ok(scope.clone()));
        let json = serde_json::to_value(&scope).unwrap();
        prop_assert_eq!(&json, &json!(text));
        prop_assert_eq!(serde_json::from_value::<Scope>(json).unwrap(), scope);
    }

    #[test]
    fn every_key_id_round_trips(n in any::<u32>()) {
        let id = KeyId::new(n);
        prop_assert_eq!(id.to_string().parse::<KeyId>(), Ok(id));
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(serde_json::from_str::<KeyId>(&json).unwrap(), id);
    }

    #[test]
    fn every_cursor_round_trips_through_url_safe_text(
        at in any_time(),
        id in any_token_id(),
    ) {
        let cursor = Cursor { created_at: at, id };
        let text = cursor.to_string();
        prop_assert_eq!(text.len(), 32);
        prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        prop_assert_eq!(text.parse::<Cursor>(), Ok(cursor));
        let json = serde_json::to_value(cursor).unwrap();
        prop_assert_eq!(&json, &json!(text));
        prop_assert_eq!(serde_json::from_value::<Cursor>(json).unwrap(), cursor);

        let expiry = ExpiryCursor { expires_at: at, id };
        let text = expiry.to_string();
        prop_assert_eq!(text.parse::<ExpiryCursor>(), Ok(expiry));
        prop_assert_eq!(text.parse::<Cursor>(), Err(CursorError::WrongList));
        let json = serde_json::to_string(&expiry).unwrap();
        prop_assert_eq!(serde_json::from_str::<ExpiryCursor>(&json).unwrap(), expiry);
    }

    #[test]
    fn no_text_makes_a_parser_panic(text in any::<String>()) {
        let _ = text.parse::<Role>();
        let _ = text.parse::<KeyId>();
        let _ = text.parse::<Scope>();
        let _ = text.parse::<Cursor>();
        let _ = text.parse::<ExpiryCursor>();
        let _ = format!("organization {text}").parse::<Scope>();
        let _ = format!("domain {text}").parse::<Scope>();
    }

    #[test]
    fn any_url_safe_text_of_cursor_length_is_a_position_or_a_typed_error(
        text in "[A-Za-z0-9_-]{32}",
    ) {
        match text.parse::<Cursor>() {
            Ok(cursor) => prop_assert_eq!(cursor.to_string(), text),
            Err(error) => prop_assert!(
                matches!(error, CursorError::UnknownVersion | CursorError::WrongList | CursorError::InvalidPosition),
                "{:?}", error
            ),
        }
    }
}

#[test]
fn every_bad_cursor_text_is_a_typed_error() {
    let cursor = Cursor {
        created_at: datetime!(2030-01-01 09:00:00.5 UTC),
        id: "3kT9QxPb1Zr".parse().unwrap(),
    };
    let good = cursor.to_string();
    for text in garbage() {
        assert!(text.parse::<Cursor>().is_err(), "{text:.40?}");
        assert!(text.parse::<ExpiryCursor>().is_err(), "{text:.40?}");
    }
    for miss in near_misses(&good) {
        // A changed character may name another position: that is fine, a
        // cursor is only a position. Anything else is refused.
        if let Ok(other) = miss.parse::<Cursor>() {
            assert_eq!(other.to_string(), miss);
        }
    }
    let cases = [
        (
            String::new(),
            CursorError::WrongLength {
                expected: 32,
                found: 0,
            },
        ),
        (
            good[..31].to_owned(),
            CursorError::WrongLength {
                expected: 32,
                found: 31,
            },
        ),
        (
            format!("{good}A"),
            CursorError::WrongLength {
                expected: 32,
                found: 33,
            },
        ),
        (
            "A".repeat(1 << 20),
            CursorError::WrongLength {
                expected: 32,
                found: 1 << 20,
            },
        ),
        (
            format!("{}+", &good[..31]),
            CursorError::InvalidCharacter { position: 31 },
        ),
        (
            format!("{}==", &good[..30]),
            CursorError::InvalidCharacter { position: 30 },
        ),
        (
            format!("{}é", &good[..30]),
            CursorError::InvalidCharacter { position: 30 },
        ),
        (
            format!("{}.{}", &good[..5], &good[6..]),
            CursorError::InvalidCharacter { position: 5 },
        ),
        ("A".repeat(32), CursorError::UnknownVersion),
        ("_".repeat(32), CursorError::UnknownVersion),
    ];
    for (text, expected) in cases {
        assert_eq!(text.parse::<Cursor>(), Err(expected), "{text:.40?}");
    }
    assert!(serde_json::from_value::<Cursor>(json!("garbage")).is_err());
    assert!(serde_json::from_value::<Cursor>(json!(1)).is_err());
    assert!(
        serde_json::from_value::<Cursor>(
            json!({"created_at": "2030-01-01T09:00:00Z", "id": "3kT9QxPb1Zr"})
        )
        .is_err()
    );
}

#[tokio::test]
async fn a_list_pages_through_cursors_sent_as_text() {
    let fixture = fixture();
    let scope = org("acme");
    let mut issued = Vec::new();
    for n in 0..7 {
        let (_, id) = fixture.issue_at(scope.clone(), &format!("token {n}")).await;
        issued.push(id);
        fixture.clock.advance(std::time::Duration::from_secs(1));
    }
    issued.reverse(); // the list runs newest first

    let mut seen = Vec::new();
    let mut request = PageRequest::first(3);
    loop {
        let page = fixture
            .service
            .list(&org_admin("acme"), &scope, request)
            .await
            .unwrap();
        seen.extend(page.tokens.iter().map(|token| token.id));
        let Some(next) = page.next else { break };
        // What a client gets and sends back: the text, through JSON.
        let text = serde_json::to_string(&next).unwrap();
        let back: Cursor = serde_json::from_str(&text).unwrap();
        assert_eq!(back, next);
        request = PageRequest::after(next.to_string().parse().unwrap(), 3);
    }
    assert_eq!(seen, issued);
}
