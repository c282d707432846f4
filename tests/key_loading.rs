//! Loading hash keys from text: `HashKey::from_hex`, `HashKey::from_base64`,
//! `Keyring::from_config` and `HashKey::generate_text`. A key loaded from
//! text hashes exactly as the same bytes given directly; every bad text is a
//! typed error that names positions and lengths, never a piece of the key.

mod common;

use std::sync::Arc;

use api_tokens::store::TokenStore;
use api_tokens::{
    HashKey, IssueRequest, KeyId, KeyTextError, Keyring, KeyringConfigError, MemoryStore,
    TokenFormat, TokenId, TokenService, VerifyError,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use common::{org, org_admin};
use proptest::prelude::*;

/// Deterministic "random" key bytes (xorshift), so the texts below are real
/// keys yet the same on every run.
fn key_bytes(seed: u64) -> [u8; 32] {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    std::array::from_fn(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 24) as u8
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every text form `bytes` may be given in.
fn texts(bytes: &[u8; 32]) -> Vec<String> {
    vec![
        hex(bytes),
        hex(bytes).to_uppercase(),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ]
}

/// Key texts whose base64 forms hold `+`, `/`, `-` or `_`, so both
/// alphabets are exercised (checked below).
const SEEDS: [u64; 4] = [1, 2, 3, 4];

/// A service over `store` with `keys`.
fn service(keys: Keyring, store: &Arc<MemoryStore>) -> TokenService {
    TokenService::new(
        TokenFormat::new("acme").unwrap(),
        keys,
        store.clone() as Arc<dyn TokenStore>,
    )
}

async fn issue(service: &TokenService) -> (String, TokenId) {
    let issued = service
        .issue(
            &org_admin("acme"),
            IssueRequest::new(org("acme"), "deploys"),
        )
        .await
        .unwrap();
    (issued.token.expose_secret().to_owned(), issued.summary.id)
}

/// Asserts `error`, formatted with `{}` and `{:?}` (and its sources), holds
/// no four characters in a row of `secret`.
fn assert_no_echo(error: &impl std::error::Error, secret: &str) {
    let mut shown = format!("{error} {error:?}");
    let mut source = error.source();
    while let Some(cause) = source {
        shown.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    let chars: Vec<char> = shown.chars().collect();
    for window in chars.windows(4) {
        let piece: String = window.iter().collect();
        assert!(
            !secret.contains(&piece),
            "the error {shown:?} shows {piece:?}, a piece of the key text"
        );
    }
}

#[test]
fn the_test_keys_cover_both_base64_alphabets() {
    let all: String = SEEDS
        .iter()
        .map(|&seed| STANDARD.encode(key_bytes(seed)))
        .collect();
    assert!(all.contains('+') && all.contains('/'), "{all}");
}

#[tokio::test]
async fn every_text_form_of_a_key_verifies_tokens_hashed_with_its_bytes() {
    for seed in SEEDS {
        let bytes = key_bytes(seed);
        let store = Arc::new(MemoryStore::new());
        let issuer = service(
            Keyring::new(KeyId::new(1), HashKey::from_bytes(&bytes)),
            &store,
        );
        let (token, _) = issue(&issuer).await;
        for text in texts(&bytes) {
            let keys = [
                HashKey::from_hex(text.clone()),
                HashKey::from_base64(text.clone()),
            ];
            let key = keys.into_iter().find_map(Result::ok).expect(&text);
            let verifier = service(Keyring::new(KeyId::new(1), key), &store);
            assert!(verifier.verify(&token).await.is_ok(), "{text}");

            let keys = Keyring::from_config(format!("1:{text}")).unwrap();
            assert!(service(keys, &store).verify(&token).await.is_ok(), "{text}");
        }
        // Whitespace around a key (a file's last newline) is ignored.
        let key = HashKey::from_hex(format!("  {}\n", hex(&bytes))).unwrap();
        assert!(
            service(Keyring::new(KeyId::new(1), key), &store)
                .verify(&token)
                .await
                .is_ok()
        );
        let key = HashKey::from_base64(format!("\t{}\r\n", STANDARD.encode(bytes))).unwrap();
        assert!(
            service(Keyring::new(KeyId::new(1), key), &store)
                .verify(&token)
                .await
                .is_ok()
        );
        // Another key does not verify it.
        let other = HashKey::from_hex(hex(&key_bytes(seed + 100))).unwrap();
        assert!(matches!(
            service(Keyring::new(KeyId::new(1), other), &store)
                .verify(&token)
                .await,
            Err(VerifyError::Invalid)
        ));
    }
}

#[tokio::test]
async fn a_keyring_from_config_verifies_tokens_of_a_reordered_config_keeping_the_old_key() {
    let (a, b, c) = (key_bytes(1), key_bytes(2), key_bytes(3));
    let store = Arc::new(MemoryStore::new());

    // Before rotation: key 1 only. After: key 2 in front, key 1 kept.
    let before = service(
        Keyring::from_config(format!("1:{}", hex(&a))).unwrap(),
        &store,
    );
    let (old_token, old_id) = issue(&before).await;
    let config = format!(" 2:{} ,\n 1 : {}\n", STANDARD.encode(b), hex(&a));
    let keys = Keyring::from_config(config).unwrap();
    assert_eq!(keys.current_id(), KeyId::new(2));
    assert_eq!(
        keys.key_ids().collect::<Vec<_>>(),
        [KeyId::new(1), KeyId::new(2)]
    );
    let after = service(keys, &store);
    let (new_token, new_id) = issue(&after).await;
    assert_eq!(
        store.find(old_id).await.unwrap().unwrap().key_id,
        KeyId::new(1)
    );
    assert_eq!(
        store.find(new_id).await.unwrap().unwrap().key_id,
        KeyId::new(2)
    );

    // Another instance, its entries in another order and other encodings,
    // with a newer key in front: both tokens verify, and it issues with key 3.
    let reordered = format!(
        "3:{},1:{},2:{}",
        hex(&c).to_uppercase(),
        URL_SAFE_NO_PAD.encode(a),
        hex(&b)
    );
    let verifier = service(Keyring::from_config(reordered).unwrap(), &store);
    assert!(verifier.verify(&old_token).await.is_ok());
    assert!(verifier.verify(&new_token).await.is_ok());
    let (_, newest) = issue(&verifier).await;
    assert_eq!(
        store.find(newest).await.unwrap().unwrap().key_id,
        KeyId::new(3)
    );

    // Without key 1, its token no longer verifies; key 2's still does.
    let dropped = service(
        Keyring::from_config(format!("2:{}", hex(&b))).unwrap(),
        &store,
    );
    assert!(matches!(
        dropped.verify(&old_token).await,
        Err(VerifyError::Invalid)
    ));
    assert!(dropped.verify(&new_token).await.is_ok());

    // The same id with another key is another key: nothing verifies.
    let wrong = service(
        Keyring::from_config(format!("2:{}", hex(&c))).unwrap(),
        &store,
    );
    assert!(matches!(
        wrong.verify(&new_token).await,
        Err(VerifyError::Invalid)
    ));
}

#[tokio::test]
async fn generated_text_is_a_new_hex_key_each_time() {
    let first = HashKey::generate_text().unwrap();
    let second = HashKey::generate_text().unwrap();
    assert_ne!(*first, *second);
    for text in [&first, &second] {
        assert_eq!(text.len(), 64);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    // The doc's recipe: one entry per key, the newest first.
    let store = Arc::new(MemoryStore::new());
    let one = service(
        Keyring::from_config(format!("1:{}", *first)).unwrap(),
        &store,
    );
    let (token, _) = issue(&one).await;
    let both = Keyring::from_config(format!("2:{},1:{}", *second, *first)).unwrap();
    assert!(service(both, &store).verify(&token).await.is_ok());
    let key = HashKey::from_hex(first.to_string()).unwrap();
    assert!(
        service(Keyring::new(KeyId::new(1), key), &store)
            .verify(&token)
            .await
            .is_ok()
    );
}

#[test]
fn hex_refuses_every_text_that_is_not_64_hex_digits() {
    use KeyTextError::*;
    let good = hex(&key_bytes(5));
    let wrong_length = |found| WrongLength {
        expected: "64 hexadecimal digits",
        found,
    };
    let mut one_off = good.clone();
    one_off.replace_range(17..18, "g");
    let mut two_bytes = good.clone();
    two_bytes.replace_range(30..32, "é");
    let cases: Vec<(String, KeyTextError)> = vec![
        (String::new(), Empty),
        (" \n\t".into(), Empty),
        (good[..63].into(), wrong_length(63)),
        (good[..32].into(), wrong_length(32)),
        (format!("{good}0"), wrong_length(65)),
        (format!("{good} x"), wrong_length(66)),
        (format!("{good}{good}"), wrong_length(128)),
        (
            format!("0x{}", &good[2..]),
            InvalidCharacter { position: 1 },
        ),
        (one_off, InvalidCharacter { position: 17 }),
        (two_bytes, InvalidCharacter { position: 30 }),
        (
            format!("{} {}", &good[..31], &good[32..]),
            InvalidCharacter { position: 31 },
        ),
        (STANDARD.encode(key_bytes(5)), wrong_length(44)),
        ("é".repeat(32), InvalidCharacter { position: 0 }),
        ("x".repeat(1 << 20), wrong_length(1 << 20)),
    ];
    for (text, expected) in cases {
        let error = HashKey::from_hex(text.clone()).unwrap_err();
        assert_eq!(error, expected, "{text:?}");
        assert_no_echo(&error, &text);
        assert_no_echo(&error, &good);
    }
}

#[test]
fn base64_refuses_every_text_that_is_not_a_32_byte_key() {
    use KeyTextError::*;
    let bytes = key_bytes(6);
    let good = STANDARD_NO_PAD.encode(bytes);
    let expected = "43 base64 characters, or 44 ending in `=`";
    let wrong_length = |found| WrongLength { expected, found };
    let mut one_off = good.clone();
    one_off.replace_range(10..11, "!");
    // The last character of 43 carries 4 bits of the key and 2 spare bits,
    // which must be zero.
    let last = good.as_bytes()[42];
    let spare_bits_set = format!("{}{}", &good[..42], char::from(last + 1));
    let mixed = format!("+{}_", &good[1..42]);
    let cases: Vec<(String, KeyTextError)> = vec![
        (String::new(), Empty),
        ("\n".into(), Empty),
        (good[..42].into(), wrong_length(42)),
        (good[..20].into(), wrong_length(20)),
        (format!("{good}=="), wrong_length(45)),
        (format!("{good}A"), wrong_length(44)),
        (format!("{good}= x"), wrong_length(46)),
        (
            format!("{}={}", &good[..21], &good[22..]),
            InvalidCharacter { position: 21 },
        ),
        (one_off, InvalidCharacter { position: 10 }),
        (
            format!("{}é", &good[..41]),
            InvalidCharacter { position: 41 },
        ),
        (mixed, InvalidCharacter { position: 0 }),
        (spare_bits_set, InvalidLastCharacter { position: 42 }),
        (hex(&bytes), wrong_length(64)),
        ("A".repeat(1 << 20), wrong_length(1 << 20)),
    ];
    for (text, expected) in cases {
        let error = HashKey::from_base64(text.clone()).unwrap_err();
        assert_eq!(error, expected, "{text:?}");
        assert_no_echo(&error, &text);
        assert_no_echo(&error, &good);
    }
    // The test's last-character case really is one bit off a key.
    assert!(matches!(
        last,
        b'A' | b'E'
            | b'I'
            | b'M'
            | b'Q'
            | b'U'
            | b'Y'
            | b'c'
            | b'g'
            | b'k'
            | b'o'
            | b's'
            | b'w'
            | b'0'
            | b'4'
            | b'8'
    ));
}

#[test]
fn a_config_is_refused_naming_the_entry_and_its_problem() {
    use KeyringConfigError::*;
    let (a, b) = (hex(&key_bytes(7)), STANDARD.encode(key_bytes(8)));
    let key_length = |found| KeyTextError::WrongLength {
        expected: "64 hexadecimal digits, or 43 base64 characters (44 ending in `=`)",
        found,
    };
    let cases: Vec<(String, KeyringConfigError)> = vec![
        (String::new(), Empty),
        (" \n ".into(), Empty),
        (",".into(), EmptyEntry { entry: 1 }),
        (format!("2:{a},"), EmptyEntry { entry: 2 }),
        (format!("2:{a}, ,1:{b}"), EmptyEntry { entry: 2 }),
        (format!(",2:{a}"), EmptyEntry { entry: 1 }),
        (a.clone(), MissingColon { entry: 1 }),
        (format!("2:{a},{b}"), MissingColon { entry: 2 }),
        (format!("2;{a}"), MissingColon { entry: 1 }),
        (
            format!(":{a}"),
            InvalidId {
                entry: 1,
                source: api_tokens::InvalidKeyId,
            },
        ),
        (
            format!("x:{a}"),
            InvalidId {
                entry: 1,
                source: api_tokens::InvalidKeyId,
            },
        ),
        (
            format!("02:{a}"),
            InvalidId {
                entry: 1,
                source: api_tokens::InvalidKeyId,
            },
        ),
        (
            format!("-2:{a}"),
            InvalidId {
                entry: 1,
                source: api_tokens::InvalidKeyId,
            },
        ),
        (
            format!("4294967296:{a}"),
            InvalidId {
                entry: 1,
                source: api_tokens::InvalidKeyId,
            },
        ),
        (
            format!("{a}:1"),
            InvalidId {
                entry: 1,
                source: api_tokens::InvalidKeyId,
            },
        ),
        (
            format!("1:{a},{b}:2"),
            InvalidId {
                entry: 2,
                source: api_tokens::InvalidKeyId,
            },
        ),
        (
            format!("2:{a},2:{b}"),
            DuplicateId {
                entry: 2,
                first: 1,
                id: KeyId::new(2),
            },
        ),
        (
            format!("2:{a},1:{b},2:{a}"),
            DuplicateId {
                entry: 3,
                first: 1,
                id: KeyId::new(2),
            },
        ),
        (
            "2:".into(),
            InvalidKey {
                entry: 1,
                source: KeyTextError::Empty,
            },
        ),
        (
            format!("2:{a},1:{}", &b[..40]),
            InvalidKey {
                entry: 2,
                source: key_length(40),
            },
        ),
        (
            format!("2:{a}x"),
            InvalidKey {
                entry: 1,
                source: key_length(65),
            },
        ),
        (
            format!("2:{a} x"),
            InvalidKey {
                entry: 1,
                source: key_length(66),
            },
        ),
        (
            format!("2:{a}:3"),
            InvalidKey {
                entry: 1,
                source: key_length(66),
            },
        ),
        (
            format!("2:{a}\n1:{b}"),
            InvalidKey {
                entry: 1,
                source: key_length(111),
            },
        ),
        (
            format!("2:{}g", &a[..63]),
            InvalidKey {
                entry: 1,
                source: KeyTextError::InvalidCharacter { position: 63 },
            },
        ),
        (
            "2:ключ".into(),
            InvalidKey {
                entry: 1,
                source: key_length(8),
            },
        ),
        (
            format!("1:{}", "a".repeat(1 << 20)),
            InvalidKey {
                entry: 1,
                source: key_length(1 << 20),
            },
        ),
        ("1".repeat(1 << 20), MissingColon { entry: 1 }),
        (",".repeat(1 << 20), EmptyEntry { entry: 1 }),
    ];
    for (text, expected) in cases {
        let error = Keyring::from_config(text.clone()).unwrap_err();
        assert_eq!(error, expected, "{text:.80?}");
        for secret in [&a, &b] {
            assert_no_echo(&error, secret);
        }
        // The input's own key-like parts, beyond the keys above.
        if let Some((_, key)) = text.split_once(':') {
            assert_no_echo(&error, key.get(..200).unwrap_or(key));
        }
    }
}

#[test]
fn a_config_of_many_keys_loads_and_the_first_is_current() {
    let config: Vec<String> = (0..1000u64)
        .rev()
        .map(|id| format!("{id}:{}", hex(&key_bytes(id + 10))))
        .collect();
    let keys = Keyring::from_config(config.join(",")).unwrap();
    assert_eq!(keys.current_id(), KeyId::new(999));
    assert_eq!(keys.key_ids().count(), 1000);
    assert_eq!(keys.key_ids().next(), Some(KeyId::new(0)));
    // Debug names ids only.
    let shown = format!("{keys:?}");
    assert!(!shown.contains(&hex(&key_bytes(10))[..8]));
}

#[test]
fn errors_of_every_kind_hold_no_piece_of_real_keys() {
    // Every way a real key text can be one step wrong, through every parser.
    for seed in SEEDS {
        let bytes = key_bytes(seed);
        for good in texts(&bytes) {
            let mut variants = vec![
                good[..good.len() - 1].to_owned(),
                format!("{good}!"),
                format!("{good}{good}"),
                good.replacen(|_: char| true, "é", 1),
                format!("{} {}", &good[..10], &good[10..]),
            ];
            for position in [0, good.len() / 2, good.len() - 1] {
                let mut changed = good.clone();
                changed.replace_range(position..position + 1, "*");
                variants.push(changed);
            }
            for text in variants {
                if let Err(error) = HashKey::from_hex(text.clone()) {
                    assert_no_echo(&error, &good);
                }
                if let Err(error) = HashKey::from_base64(text.clone()) {
                    assert_no_echo(&error, &good);
                }
                // (Cutting the `=` off a padded key leaves a valid key.)
                for config in [format!("1:{text}"), text.clone(), format!("{text}:1")] {
                    if let Err(error) = Keyring::from_config(config) {
                        assert_no_echo(&error, &good);
                    }
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn no_text_makes_a_key_parser_panic(text in any::<String>()) {
        // Almost never a key; whatever it is, a result and no panic.
        let _ = HashKey::from_hex(text.clone());
        let _ = HashKey::from_base64(text.clone());
        let _ = Keyring::from_config(text.clone());
        let _ = Keyring::from_config(format!("1:{text}"));
    }

    #[test]
    fn near_keys_get_typed_errors(text in "[0-9a-fA-F]{60,68}|[A-Za-z0-9+/_=-]{40,46}") {
        let hex_key = HashKey::from_hex(text.clone());
        prop_assert_eq!(
            hex_key.is_ok(),
            text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
        );
        let _ = HashKey::from_base64(text.clone());
        if let Err(error) = Keyring::from_config(format!("1:{text}")) {
            let in_the_key = matches!(error, KeyringConfigError::InvalidKey { entry: 1, .. });
            prop_assert!(in_the_key, "{:?}", error);
        }
    }

    #[test]
    fn any_key_round_trips_through_every_text_form(bytes in any::<[u8; 32]>()) {
        for text in texts(&bytes) {
            let loaded = if text.len() == 64 {
                HashKey::from_hex(text.clone())
            } else {
                HashKey::from_base64(text.clone())
            };
            prop_assert!(loaded.is_ok(), "{}", text);
            let keys = Keyring::from_config(format!("7:{text}"));
            prop_assert!(keys.is_ok(), "{}", text);
        }
    }
}
