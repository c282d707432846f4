//! Finding leaked tokens in text and redacting them.

mod common;

use std::sync::OnceLock;

use api_tokens::{IssueRequest, ScopeKind, TokenId};
use common::*;
use proptest::prelude::*;

/// Real tokens, issued once for every case: (text, id, kind).
fn issued() -> &'static [(String, TokenId, ScopeKind)] {
    static TOKENS: OnceLock<Vec<(String, TokenId, ScopeKind)>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let fixture = fixture();
        let admin = org_admin("acme");
        (0..64)
            .map(|n| {
                let (scope, kind) = if n % 2 == 0 {
                    (org("acme"), ScopeKind::Organization)
                } else {
                    (domain("acme", "shop"), ScopeKind::Domain)
                };
                let request = IssueRequest::new(scope, format!("leaked {n}"));
                let issued = runtime
                    .block_on(fixture.service.issue(&admin, request))
                    .unwrap();
                (
                    issued.token.expose_secret().to_owned(),
                    issued.summary.id,
                    kind,
                )
            })
            .collect()
    })
}

fn format() -> api_tokens::TokenFormat {
    api_tokens::TokenFormat::new(PREFIX).unwrap()
}

proptest! {
    /// A token anywhere in any text is found at its place, and redaction
    /// keeps everything around it and the token's public head.
    #[test]
    fn every_embedded_token_is_found_and_redacted(
        before in any::<String>(),
        after in any::<String>(),
        pick in 0..64usize,
    ) {
        let (token, id, kind) = &issued()[pick];
        let text = format!("{before}{token}{after}");

        let found = format().find_tokens(&text);
        prop_assert_eq!(found.len(), 1);
        prop_assert_eq!(found[0].range.clone(), before.len()..before.len() + token.len());
        prop_assert_eq!((found[0].id, found[0].kind), (*id, *kind));

        let redacted = format().redact(&text);
        let head = &token[..ID_AT + 11];
        prop_assert_eq!(redacted.as_ref(), format!("{before}{head}…[redacted]{after}"));
        prop_assert!(!redacted.contains(&token[SECRET_AT..CHECKSUM_AT]));
    }

    /// Text without a token comes back unchanged, byte for byte.
    #[test]
    fn text_without_a_token_is_unchanged(text in any::<String>()) {
        prop_assert!(format().find_tokens(&text).is_empty());
        let redacted = format().redact(&text);
        prop_assert_eq!(redacted.as_ref(), text.as_str());
    }

    /// A real token with one character changed, or cut short, embedded in
    /// text: never matched (the near misses a scanner must not flag).
    #[test]
    fn near_misses_are_not_matched(
        pick in 0..64usize,
        position in 0..TOKEN_LEN,
        replacement in prop::sample::select(
            b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_".to_vec()
        ),
        cut in 1..TOKEN_LEN,
    ) {
        let token = &issued()[pick].0;
        prop_assume!(token.as_bytes()[position] != replacement);
        let mut changed = token.clone().into_bytes();
        changed[position] = replacement;
        let changed = String::from_utf8(changed).unwrap();
        for near_miss in [changed.as_str(), &token[..cut], &token[cut..]] {
            let text = format!("x {near_miss} y");
            prop_assert!(format().find_tokens(&text).is_empty(), "{near_miss}");
            let redacted = format().redact(&text);
            prop_assert_eq!(redacted.as_ref(), text.as_str());
        }
    }

    /// Strings shaped like tokens but with a random tail fail the checksum
    /// and are not matched.
    #[test]
    fn look_alikes_are_not_matched(
        tail in "[0-9A-Za-z]{60}",
        letter in prop::sample::select(vec!['o', 'd']),
    ) {
        let text = format!("key=acme{letter}_{tail};");
        // One tail in 2^32 carries a valid checksum by chance.
        prop_assume!(format().parse(&text[4..text.len() - 1]).is_err());
        prop_assert!(format().find_tokens(&text).is_empty());
        let redacted = format().redact(&text);
        prop_assert_eq!(redacted.as_ref(), text.as_str());
    }
}

#[test]
fn several_tokens_in_one_log_line_are_each_redacted() {
    let tokens = issued();
    let line = format!(
        "rotated {} -> {} by alice; old={}",
        tokens[0].0, tokens[1].0, tokens[0].0
    );
    let found = format().find_tokens(&line);
    assert_eq!(
        found.iter().map(|f| f.id).collect::<Vec<_>>(),
        [tokens[0].1, tokens[1].1, tokens[0].1]
    );
    let redacted = format().redact(&line);
    for (token, _, _) in &tokens[..2] {
        assert!(!redacted.contains(token.as_str()));
        assert!(redacted.contains(&token[..ID_AT + 11]));
    }
    assert!(redacted.starts_with("rotated ") && redacted.contains(" by alice; old="));
}
