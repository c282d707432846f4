//! Fuzzing on the stable toolchain: property tests with many cases over every
//! entry point that reads untrusted text. Each target first replays its
//! corpus (`tests/fuzz/corpus/<target>.json`: inputs that once broke
//! something or sit on an edge), then runs `API_TOKENS_FUZZ_CASES` random
//! cases (default 100,000). A failure is shrunk to a small input and its
//! seed kept in `tests/fuzz/regressions.txt`, which every later run replays
//! first; add the shrunk input to the corpus too, so it stays readable.
//!
//! Properties: no input panics; `parse` accepts exactly the strings shaped
//! like the tokens `issue` makes; `redact(text)` holds none of the tokens
//! `find_tokens(text)` found, and redacting twice is redacting once; labels
//! and ids are accepted exactly when their rules say; the HTTP layer lets a
//! request through exactly when its header carries a valid token.
//!
//! In corpus inputs, `{TOKEN}` stands for a real token of this service and
//! `{OTHER}` for one of another service (prefix `zz`), made fresh for each
//! run: the repository holds no token-shaped string for secret scanners to
//! flag.

mod common;

use std::sync::{Arc, OnceLock};

use api_tokens::http::TokenLayer;
use std::net::IpAddr;

use api_tokens::{
    ActorId, IdError, IpNetwork, IssueRequest, Label, LabelError, MAX_ID_LEN, MAX_PERMISSION_LEN,
    NetworkError, PermissionError, PermissionName, TokenFormat,
};
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header::AUTHORIZATION};
use common::*;
use proptest::prelude::*;
use proptest::strategy::LazyJust;
use proptest::test_runner::{Config, FileFailurePersistence};
use tower::ServiceExt;

/// Random cases per target.
fn cases() -> u32 {
    match std::env::var("API_TOKENS_FUZZ_CASES") {
        Ok(cases) => cases
            .parse()
            .expect("API_TOKENS_FUZZ_CASES must be a whole number of cases"),
        Err(_) => 100_000,
    }
}

fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/fuzz/regressions.txt",
        ))),
        ..Config::default()
    }
}

/// A target's corpus, with `{TOKEN}` and `{OTHER}` filled in.
fn corpus(target: &str) -> Vec<String> {
    let path = format!(
        "{}/tests/fuzz/corpus/{target}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let inputs: Vec<String> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not a JSON list: {e}"));
    let (token, other) = (&tokens().ours[0], &tokens().other);
    inputs
        .into_iter()
        .map(|input| input.replace("{TOKEN}", token).replace("{OTHER}", other))
        .collect()
}

struct Tokens {
    /// Real tokens of this service (prefix `acme`).
    ours: Vec<String>,
    /// A real token of another service (prefix `zz`).
    other: String,
    /// The service that issued `ours`, for the HTTP target.
    service: Arc<api_tokens::TokenService>,
}

fn tokens() -> &'static Tokens {
    static TOKENS: OnceLock<Tokens> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let fixture = fixture();
        let admin = org_admin("acme");
        let ours = (0..16)
            .map(|n| {
                let scope = if n % 2 == 0 {
                    org("acme")
                } else {
                    domain("acme", "shop")
                };
                let issued = runtime
                    .block_on(
                        fixture
                            .service
                            .issue(&admin, IssueRequest::new(scope, "fuzz")),
                    )
                    .unwrap();
                issued.token.expose_secret().to_owned()
            })
            .collect();
        let other = runtime.block_on(other_service_token("zz"));
        Tokens {
            ours,
            other,
            service: Arc::new(fixture.service),
        }
    })
}

fn format() -> TokenFormat {
    TokenFormat::new(PREFIX).unwrap()
}

// ---------------------------------------------------------------------------
// Inputs

/// Text that stresses the scanners: real tokens whole, cut, altered and
/// glued to their neighbours, prefixes alone, multi-byte characters right
/// before and after, and arbitrary text.
fn texts() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => any::<String>(),
        2 => (0..16usize).prop_map(|i| tokens().ours[i].clone()),
        1 => LazyJust::new(|| tokens().other.clone()),
        2 => ((0..16usize), 0..TOKEN_LEN).prop_map(|(i, cut)| tokens().ours[i][..cut].to_owned()),
        2 => ((0..16usize), 0..TOKEN_LEN).prop_map(|(i, cut)| tokens().ours[i][cut..].to_owned()),
        2 => ((0..16usize), 0..TOKEN_LEN, any::<char>())
            .prop_map(|(i, at, c)| altered_at(&tokens().ours[i], at, c)),
        1 => prop::sample::select(vec!["acme", "acmeo_", "acmed_", "_", "é", "€", "😀", "\u{200B}", "zz"])
            .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

/// `token` with the character at `at` replaced by `c` (the checksum left
/// as it was, so this is a near miss unless `c` is what was there).
fn altered_at(token: &str, at: usize, c: char) -> String {
    let mut altered = String::with_capacity(token.len() + 4);
    altered.push_str(&token[..at]);
    altered.push(c);
    altered.push_str(&token[at + 1..]);
    altered
}

/// Candidates for `parse`: arbitrary text, strings of exactly the token
/// shape with a valid checksum (ids in and out of range), and real tokens
/// altered with or without the checksum fixed up.
fn parse_inputs() -> impl Strategy<Value = String> {
    let shaped = (
        prop::sample::select(vec!['o', 'd', 'x']),
        "[0-9A-Za-z]{11}",
        "[0-9A-Za-z]{43}",
        any::<bool>(),
    )
        .prop_map(|(kind, id, secret, fix)| {
            let body = format!("acme{kind}_{id}{secret}");
            if fix {
                with_checksum(&body)
            } else {
                format!("{body}000000")
            }
        });
    let altered =
        ((0..16usize), 0..TOKEN_LEN, any::<char>(), any::<bool>()).prop_map(|(i, at, c, fix)| {
            let changed = altered_at(&tokens().ours[i], at, c);
            match (fix, changed.get(..changed.len().saturating_sub(6))) {
                (true, Some(body)) => with_checksum(body),
                _ => changed,
            }
        });
    prop_oneof![2 => any::<String>(), 3 => shaped, 3 => altered, 1 => texts()]
}

/// Label candidates: arbitrary text, and text made of the characters the
/// label rules are about (controls, format and ignorable characters, emoji
/// and their joiners, several scripts, whitespace) and of tokens.
fn label_inputs() -> impl Strategy<Value = String> {
    let tricky = prop::sample::select(vec![
        "a",
        "é",
        " ",
        "\t",
        "\n",
        "\u{0}",
        "\u{7f}",
        "\u{85}",
        "\u{a0}",
        "\u{ad}",
        "\u{34f}",
        "\u{61c}",
        "\u{115f}",
        "\u{180e}",
        "\u{200b}",
        "\u{200c}",
        "\u{200d}",
        "\u{200e}",
        "\u{2028}",
        "\u{202e}",
        "\u{2060}",
        "\u{2066}",
        "\u{3000}",
        "\u{3164}",
        "\u{fe0e}",
        "\u{fe0f}",
        "\u{feff}",
        "\u{20e3}",
        "\u{e0067}",
        "\u{e007f}",
        "\u{e0100}",
        "1",
        "#",
        "❤",
        "☝",
        "🚀",
        "👩",
        "💻",
        "🏽",
        "🏳",
        "🇫",
        "中",
        "ע",
        "ب",
        "{TOKEN}",
    ]);
    prop_oneof![
        1 => any::<String>(),
        3 => prop::collection::vec(tricky, 0..24).prop_map(|parts| {
            parts.concat().replace("{TOKEN}", &tokens().ours[0])
        }),
        1 => texts(),
    ]
}

// ---------------------------------------------------------------------------
// Oracles, written from the documented rules, not from the code

/// Whether `text` is shaped like a token `issue` makes for prefix `acme`:
/// length, prefix, scope letter, separator, base62 id and secret, a
/// checksum over the rest, and an id that fits in 64 bits.
fn is_token_shaped(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == TOKEN_LEN
        && text.starts_with(PREFIX)
        && matches!(bytes[KIND_AT], b'o' | b'd')
        && bytes[KIND_AT + 1] == b'_'
        && bytes[ID_AT..].iter().all(u8::is_ascii_alphanumeric)
        && with_checksum(&text[..CHECKSUM_AT]) == text
        && base62_value(&text[ID_AT..SECRET_AT]) <= u128::from(u64::MAX)
}

fn base62_value(digits: &str) -> u128 {
    digits.bytes().fold(0, |value, c| {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            _ => c - b'a' + 36,
        };
        value * 62 + u128::from(digit)
    })
}

// ---------------------------------------------------------------------------
// Targets

fn check_parse(text: &str) -> Result<(), TestCaseError> {
    let parsed = format().parse(text);
    prop_assert_eq!(parsed.is_ok(), is_token_shaped(text), "{:?}", text);
    if let Ok(parsed) = parsed {
        prop_assert_eq!(parsed.id().to_string(), &text[ID_AT..SECRET_AT]);
    }
    Ok(())
}

fn check_scan(text: &str) -> Result<(), TestCaseError> {
    let format = format();
    let found = format.find_tokens(text);
    for token in &found {
        prop_assert!(is_token_shaped(&text[token.range.clone()]));
    }
    let redacted = format.redact(text);
    // (Its secret alone may remain elsewhere, in a piece of text that is no
    // token: a copy cut short is no credential.)
    for token in &found {
        prop_assert!(!redacted.contains(&text[token.range.clone()]), "{:?}", text);
    }
    prop_assert!(format.find_tokens(&redacted).is_empty(), "{:?}", text);
    let twice = format.redact(&redacted);
    prop_assert_eq!(twice.as_ref(), redacted.as_ref());
    if found.is_empty() {
        prop_assert_eq!(redacted.as_ref(), text);
    }
    Ok(())
}

/// `text` with every real token of the fuzz run cut to its public head and
/// the mask, as a label keeps it. Tokens are found in the text as given,
/// overlapping ones too (a token whose last character starts the next):
/// each one's secret and checksum, the last 49 bytes, become the mask.
fn masked(text: &str) -> String {
    let mut secrets: Vec<std::ops::Range<usize>> = Vec::new();
    for token in tokens().ours.iter().chain([&tokens().other]) {
        let mut from = 0;
        while let Some(at) = text[from..].find(token.as_str()) {
            let start = from + at;
            secrets.push(start + token.len() - 49..start + token.len());
            // Tokens are ASCII: the next byte is a character boundary.
            from = start + 1;
        }
    }
    secrets.sort_by_key(|range| range.start);
    let (mut masked, mut kept_to) = (String::new(), 0);
    for secret in secrets {
        if secret.start < kept_to {
            // Within a secret already masked.
            kept_to = kept_to.max(secret.end);
            continue;
        }
        masked.push_str(&text[kept_to..secret.start]);
        masked.push_str("…[redacted]");
        kept_to = secret.end;
    }
    masked.push_str(&text[kept_to..]);
    masked
}

fn check_label(text: &str) -> Result<(), TestCaseError> {
    let expected = masked(text);
    let expected = expected.trim();
    match Label::new(text) {
        Ok(label) => {
            let kept = label.as_str();
            prop_assert!(!kept.is_empty() && kept.chars().count() <= api_tokens::MAX_LABEL_CHARS);
            prop_assert_eq!(kept, kept.trim());
            // Kept exactly, but for any token, masked.
            prop_assert_eq!(kept, expected, "{:?}", text);
            for c in kept.chars() {
                let breaks_lines = c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
                prop_assert!(!breaks_lines, "U+{:04X} kept in {:?}", u32::from(c), kept);
                prop_assert!(
                    !matches!(
                        c,
                        '\u{200B}'
                            | '\u{200C}'
                            | '\u{200E}'
                            | '\u{200F}'
                            | '\u{2060}'
                            | '\u{FEFF}'
                            | '\u{061C}'
                            | '\u{00AD}'
                            | '\u{3164}'
                            | '\u{115F}'
                            | '\u{FE0E}'
                            | '\u{E0000}'..='\u{E0FFF}'
                    ),
                    "U+{:04X} kept in {:?}",
                    u32::from(c),
                    kept
                );
            }
            // A label is its own valid form.
            let again = Label::new(kept).unwrap();
            prop_assert_eq!(again.as_str(), kept);
        }
        Err(LabelError::ForbiddenCharacter {
            position,
            code_point,
        }) => {
            let c = expected.chars().nth(position);
            prop_assert_eq!(c.map(u32::from), Some(code_point), "{:?}", text);
        }
        Err(LabelError::Empty) => prop_assert!(expected.is_empty()),
        Err(LabelError::TooLong { .. }) => {
            prop_assert!(expected.chars().count() > api_tokens::MAX_LABEL_CHARS)
        }
        Err(other) => prop_assert!(false, "unexpected {:?}", other),
    }
    Ok(())
}

fn check_id(text: &str) -> Result<(), TestCaseError> {
    let printable =
        !text.is_empty() && text.len() <= MAX_ID_LEN && text.bytes().all(|b| b.is_ascii_graphic());
    match ActorId::new(text) {
        Ok(id) => {
            prop_assert!(printable);
            prop_assert_eq!(id.as_str(), text);
        }
        Err(IdError::NotPrintable { position, .. }) => {
            prop_assert!(!text.as_bytes()[position].is_ascii_graphic())
        }
        Err(IdError::Empty { .. }) => prop_assert!(text.is_empty()),
        Err(IdError::TooLong { .. }) => prop_assert!(text.len() > MAX_ID_LEN),
        Err(IdError::HoldsToken { .. }) => prop_assert!(printable && text.contains('_')),
        Err(other) => prop_assert!(false, "unexpected {:?}", other),
    }
    Ok(())
}

/// A network text: accepted exactly when it is an address (std's reading)
/// with an optional plain decimal prefix no longer than the address and no
/// bits set past it; and then it reads back from its own text.
fn check_network(text: &str) -> Result<(), TestCaseError> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: Option<IpAddr> = address.parse().ok();
    let bits = |address: IpAddr| if address.is_ipv4() { 32 } else { 128 };
    let decimal = |p: &str| {
        !p.is_empty()
            && p.len() <= 3
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p == "0" || !p.starts_with('0'))
    };
    match text.parse::<IpNetwork>() {
        Ok(network) => {
            let address = address.expect("an accepted network has std's address");
            prop_assert_eq!(network.address(), address);
            prop_assert!(prefix.is_none_or(decimal));
            prop_assert!(network.contains(address));
            prop_assert_eq!(network.to_string().parse::<IpNetwork>(), Ok(network));
        }
        Err(NetworkError::Malformed) => {
            prop_assert!(address.is_none() || !prefix.is_none_or(decimal) || text.len() > 49)
        }
        Err(NetworkError::PrefixTooLong) => {
            let (address, prefix) = (address.unwrap(), prefix.unwrap());
            prop_assert!(prefix.parse::<u32>().unwrap() > bits(address));
        }
        Err(NetworkError::HostBitsSet) => prop_assert!(address.is_some() && prefix.is_some()),
        Err(other) => prop_assert!(false, "unexpected {:?}", other),
    }
    Ok(())
}

fn check_permission(text: &str) -> Result<(), TestCaseError> {
    let valid = (1..=MAX_PERMISSION_LEN).contains(&text.len())
        && text.as_bytes()[0].is_ascii_lowercase()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b":._-".contains(&b));
    match PermissionName::new(text) {
        Ok(name) => {
            prop_assert!(valid);
            prop_assert_eq!(name.as_str(), text);
        }
        Err(PermissionError::InvalidName) => prop_assert!(!valid),
        Err(other) => prop_assert!(false, "unexpected {:?}", other),
    }
    Ok(())
}

/// Sends `GET /whoami` with these `Authorization` header values through the
/// real layer and router, in process.
fn http_status(values: &[Vec<u8>]) -> Option<StatusCode> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    });
    let mut request = Request::get("/whoami");
    for value in values {
        // Bytes no header can carry (CR, LF, NUL, …) never reach a service.
        request = request.header(AUTHORIZATION, HeaderValue::from_bytes(value).ok()?);
    }
    let router = common::http::whoami_router(Some(TokenLayer::new(tokens().service.clone())));
    let response = runtime
        .block_on(router.oneshot(request.body(Body::empty()).unwrap()))
        .unwrap();
    Some(response.status())
}

/// Whether one `Authorization` value presents a valid token: the scheme
/// `Bearer` in any case, spaces, the token, optional spaces and tabs.
fn presents_valid_token(value: &[u8]) -> bool {
    let trimmed = String::from_utf8_lossy(value);
    let trimmed = trimmed.trim_matches([' ', '\t']);
    let Some((scheme, rest)) = trimmed.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && tokens()
            .ours
            .iter()
            .any(|token| rest.trim_matches([' ', '\t']) == token)
}

fn check_http(values: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let Some(status) = http_status(values) else {
        return Ok(());
    };
    let valid = values.len() == 1 && presents_valid_token(&values[0]);
    prop_assert_eq!(
        status == StatusCode::OK,
        valid,
        "{:?} -> {}",
        values,
        status
    );
    prop_assert!(
        matches!(
            status,
            StatusCode::OK | StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED
        ),
        "{:?} -> {}",
        values,
        status
    );
    Ok(())
}

fn header_values() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let value = prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..80),
        3 => (
            prop::sample::select(vec!["Bearer ", "bearer ", "BEARER  ", "Bearer\t", "Basic ", "", " Bearer "]),
            texts(),
            prop::sample::select(vec!["", " ", "\t", "=", " x"]),
        )
            .prop_map(|(scheme, token, tail)| format!("{scheme}{token}{tail}").into_bytes()),
        2 => (0..16usize, prop::sample::select(vec!["Bearer ", "bEaReR ", "Bearer   "]))
            .prop_map(|(i, scheme)| format!("{scheme}{}", tokens().ours[i]).into_bytes()),
    ];
    prop::collection::vec(value, 0..3)
}

// ---------------------------------------------------------------------------
// Each target: its corpus, then random cases.

#[test]
fn fuzz_parse() {
    for input in corpus("parse") {
        check_parse(&input).unwrap();
    }
    for token in &tokens().ours {
        check_parse(token).unwrap();
        assert!(format().parse(token).is_ok(), "every issued token parses");
    }
    proptest!(config(), |(text in parse_inputs())| check_parse(&text)?);
}

#[test]
fn fuzz_find_tokens_and_redact() {
    for input in corpus("scan") {
        check_scan(&input).unwrap();
    }
    proptest!(config(), |(text in texts())| check_scan(&text)?);
}

#[test]
fn fuzz_labels() {
    for input in corpus("label") {
        check_label(&input).unwrap();
    }
    proptest!(config(), |(text in label_inputs())| check_label(&text)?);
}

#[test]
fn fuzz_ids() {
    for input in corpus("id") {
        check_id(&input).unwrap();
    }
    let ids = prop_oneof![
        any::<String>(),
        "[!-~]{0,70}",
        LazyJust::new(|| tokens().other.clone()),
        texts(),
    ];
    proptest!(config(), |(text in ids)| check_id(&text)?);
}

#[test]
fn fuzz_http_credentials() {
    for input in corpus("http") {
        check_http(&[input.into_bytes()]).unwrap();
    }
    proptest!(config(), |(values in header_values())| check_http(&values)?);
}

#[test]
fn fuzz_networks() {
    for input in corpus("network") {
        check_network(&input).unwrap();
    }
    let networks = prop_oneof![
        any::<String>(),
        "[0-9a-f.:/]{0,50}",
        (any::<[u8; 4]>(), 0u16..40)
            .prop_map(|(a, p)| format!("{}/{p}", std::net::Ipv4Addr::from(a))),
        (any::<u128>(), 0u16..140)
            .prop_map(|(a, p)| format!("{}/{p}", std::net::Ipv6Addr::from(a))),
        (any::<u32>(), 0u32..=32).prop_map(|(a, p)| {
            let mask = u32::MAX.checked_shl(32 - p).unwrap_or(0);
            format!("{}/{p}", std::net::Ipv4Addr::from(a & mask))
        }),
    ];
    proptest!(config(), |(text in networks)| check_network(&text)?);
}

#[test]
fn fuzz_permission_names() {
    for input in corpus("permission") {
        check_permission(&input).unwrap();
    }
    let names = prop_oneof![any::<String>(), "[a-zA-Z0-9:._ -]{0,70}"];
    proptest!(config(), |(text in names)| check_permission(&text)?);
}
