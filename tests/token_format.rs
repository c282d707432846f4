//! The token string: its shape, what `parse` refuses, and the exported regex.

mod common;

use api_tokens::{MalformedToken, Role, TokenFormat, TokenId, VerifyError};
use common::*;
use proptest::prelude::*;
use regex::Regex;

/// Issues `count` organization tokens and `count` domain tokens.
async fn issue_many(fixture: &Fixture, count: usize) -> Vec<(String, TokenId, char)> {
    let admin = org_admin("acme");
    let mut tokens = Vec::new();
    for n in 0..count {
        for (scope, letter) in [(org("acme"), 'o'), (domain("acme", "shop"), 'd')] {
            let issued = fixture
                .service
                .issue(
                    &admin,
                    api_tokens::IssueRequest::new(scope, format!("token {n}")),
                )
                .await
                .unwrap();
            let text = issued.token.expose_secret().to_owned();
            tokens.push((text, issued.summary.id, letter));
        }
    }
    tokens
}

#[tokio::test]
async fn issued_tokens_have_the_documented_shape_and_parse_back() {
    let fixture = fixture();
    let format = fixture.service.format();
    for (text, id, letter) in issue_many(&fixture, 500).await {
        assert_eq!(text.len(), TOKEN_LEN);
        assert_eq!(format.token_len(), TOKEN_LEN);
        assert!(text.starts_with(&format!("acme{letter}_")), "{letter}");
        assert!(
            text[ID_AT..].bytes().all(|b| b.is_ascii_alphanumeric()),
            "after the separator only [A-Za-z0-9]"
        );
        assert_eq!(&text[ID_AT..SECRET_AT], id.to_string());

        let parsed = format.parse(&text).unwrap();
        assert_eq!(parsed.id(), id);
        assert_eq!(parsed.kind().to_string().chars().next(), Some(letter));
    }
}

#[tokio::test]
async fn each_malformation_is_named_and_never_reaches_the_store() {
    let fixture = fixture();
    let (token, _, _) = issue_many(&fixture, 1).await.remove(0);
    let calls_before = fixture.store.calls();

    let body = &token[..CHECKSUM_AT];
    let cases = [
        (
            token[..TOKEN_LEN - 1].to_owned(),
            MalformedToken::WrongLength {
                expected: 66,
                found: 65,
            },
        ),
        (
            format!("{token}A"),
            MalformedToken::WrongLength {
                expected: 66,
                found: 67,
            },
        ),
        (
            with_checksum(&format!("acmf{}", &body[4..])),
            MalformedToken::WrongPrefix,
        ),
        (
            with_checksum(&format!("ACME{}", &body[4..])),
            MalformedToken::WrongPrefix,
        ),
        (altered(&token, KIND_AT, b'x'), MalformedToken::UnknownKind),
        (
            altered(&token, KIND_AT + 1, b'-'),
            MalformedToken::MissingSeparator,
        ),
        (
            altered(&token, SECRET_AT + 3, b'-'),
            MalformedToken::InvalidCharacter {
                position: SECRET_AT + 3,
            },
        ),
        (
            altered(&token, SECRET_AT + 3, b'_'),
            MalformedToken::InvalidCharacter {
                position: SECRET_AT + 3,
            },
        ),
        (
            format!(
                "{body}{}",
                if token.ends_with('A') {
                    "AAAAAB"
                } else {
                    "AAAAAA"
                }
            ),
            MalformedToken::BadChecksum,
        ),
        // 11 base62 digits can exceed 64 bits; the largest id is LygHa16AHYF.
        (
            with_checksum(&format!("acmeo_zzzzzzzzzzz{}", &body[SECRET_AT..])),
            MalformedToken::IdOutOfRange,
        ),
        (
            with_checksum(&format!("acmeo_LygHa16AHYG{}", &body[SECRET_AT..])),
            MalformedToken::IdOutOfRange,
        ),
    ];
    for (bad, expected) in cases {
        assert_eq!(
            fixture.service.format().parse(&bad).unwrap_err(),
            expected,
            "{bad}"
        );
        match fixture.service.verify(&bad).await {
            Err(VerifyError::Malformed(found)) => assert_eq!(found, expected),
            other => panic!("{bad}: expected Malformed({expected:?}), got {other:?}"),
        }
    }
    assert_eq!(
        fixture.store.calls(),
        calls_before,
        "no malformed token may reach the store"
    );

    // The largest id is accepted as well formed (and then unknown).
    let largest = with_checksum(&format!("acmeo_LygHa16AHYF{}", &body[SECRET_AT..]));
    assert_eq!(
        fixture
            .service
            .format()
            .parse(&largest)
            .unwrap()
            .id()
            .to_string(),
        "LygHa16AHYF"
    );
}

#[tokio::test]
async fn every_single_character_change_is_refused_without_the_store() {
    let fixture = fixture();
    let (token, _, _) = issue_many(&fixture, 1).await.remove(0);
    let finds_before = fixture.store.finds();
    let alphabet: Vec<u8> = (b'0'..=b'9')
        .chain(b'A'..=b'Z')
        .chain(b'a'..=b'z')
        .chain([b'_'])
        .collect();

    let mut tried = 0;
    for position in 0..token.len() {
        for &c in &alphabet {
            if c == token.as_bytes()[position] {
                continue;
            }
            let mut bytes = token.clone().into_bytes();
            bytes[position] = c;
            let changed = String::from_utf8(bytes).unwrap();
            // CRC32 catches every change of one character (a burst of at most
            // 8 bits), so none of these may even reach the store.
            assert!(
                matches!(
                    fixture.service.verify(&changed).await,
                    Err(VerifyError::Malformed(_))
                ),
                "position {position}, character {}",
                char::from(c)
            );
            tried += 1;
        }
    }
    assert_eq!(tried, 66 * 62);
    assert_eq!(fixture.store.finds(), finds_before);
}

#[tokio::test]
async fn the_regex_matches_exactly_this_services_tokens() {
    let fixture = fixture();
    let pattern = fixture.service.format().regex_pattern();
    let whole = Regex::new(&format!("^(?:{pattern})$")).unwrap();
    let anywhere = Regex::new(&pattern).unwrap();

    let tokens = issue_many(&fixture, 100).await;
    for (token, _, _) in &tokens {
        assert!(whole.is_match(token), "{token}");
        let line = format!("GET /v1 Authorization: Bearer {token}\nnext line");
        let found: Vec<_> = anywhere.find_iter(&line).map(|m| m.as_str()).collect();
        assert_eq!(found, [token.as_str()]);
    }

    let (token, _, _) = &tokens[0];
    let near_misses = [
        token[..TOKEN_LEN - 1].to_owned(),
        format!("{token}A"),
        format!("x{token}"),
        format!("_{token}"),
        format!("{token}_"),
        format!("acmf{}", &token[4..]),
        format!("ACME{}", &token[4..]),
        format!("acmex{}", &token[5..]),
        format!("acme{}", &token[6..]), // neither kind letter nor separator
        altered(token, SECRET_AT, b'-'),
        altered(token, SECRET_AT, b'_'),
        altered(token, KIND_AT + 1, b'A'),
    ];
    for miss in &near_misses {
        assert_eq!(anywhere.find(miss), None, "{miss}");
    }

    // Another prefix, another pattern.
    let other = TokenFormat::new("globex").unwrap().regex_pattern();
    assert!(!Regex::new(&other).unwrap().is_match(token));
}

#[test]
fn prefixes_follow_the_documented_rule() {
    for good in ["ab", "acme", "a1", "globex2024", "zzzzzzzzzz"] {
        assert_eq!(TokenFormat::new(good).unwrap().prefix(), good);
    }
    for bad in [
        "",
        "a",
        "Acme",
        "1acme",
        "ac_me",
        "ac-me",
        "acmeacmeacm",
        "acmé",
        "ac me",
    ] {
        assert!(TokenFormat::new(bad).is_err(), "{bad:?}");
    }
    assert_eq!(TokenFormat::new("globex").unwrap().token_len(), 68);
}

#[tokio::test]
async fn the_hint_is_the_public_head_of_the_token() {
    let fixture = fixture();
    let issued = fixture
        .service
        .issue(
            &org_admin("acme"),
            api_tokens::IssueRequest::new(org("acme"), "ci"),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    assert_eq!(issued.summary.hint, format!("{}…", &token[..SECRET_AT]));
    assert_eq!(issued.summary.role, Role::Viewer);
}

fn base62() -> impl Strategy<Value = char> {
    prop::sample::select(
        ('0'..='9')
            .chain('A'..='Z')
            .chain('a'..='z')
            .collect::<Vec<_>>(),
    )
}

proptest! {
    /// Any id and secret, given the right checksum, parse back to the same
    /// id, and the id's text is the one in the token.
    #[test]
    fn any_well_formed_token_round_trips(
        kind in prop::sample::select(vec!['o', 'd']),
        id in "[0-9A-K][0-9A-Za-z]{10}",
        secret in prop::collection::vec(base62(), 43),
    ) {
        let secret: String = secret.into_iter().collect();
        let token = with_checksum(&format!("acme{kind}_{id}{secret}"));
        let parsed = TokenFormat::new("acme").unwrap().parse(&token).unwrap();
        prop_assert_eq!(parsed.id().to_string(), id.clone());
        prop_assert_eq!(id.parse::<TokenId>().unwrap(), parsed.id());
    }

    /// Arbitrary text is refused, never accepted and never a panic.
    #[test]
    fn arbitrary_text_never_parses(text in any::<String>()) {
        prop_assert!(TokenFormat::new("acme").unwrap().parse(&text).is_err());
    }

    /// Strings of the right shape but a random tail fail on the checksum.
    #[test]
    fn random_tails_fail_the_checksum(tail in prop::collection::vec(base62(), 60)) {
        let tail: String = tail.into_iter().collect();
        let text = format!("acmeo_{tail}");
        // One tail in 2^32 carries a matching checksum by chance.
        prop_assume!(text != with_checksum(&text[..CHECKSUM_AT]));
        let result = TokenFormat::new("acme").unwrap().parse(&text);
        prop_assert_eq!(result.unwrap_err(), MalformedToken::BadChecksum);
    }
}
