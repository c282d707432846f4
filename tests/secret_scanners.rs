//! Secret scanners recognise the tokens through the rules the crate
//! generates: the real detect-secrets (1.5.0) with the generated plugin and
//! filter, run exactly as the README says, and the generated gitleaks rule,
//! read as TOML and its regex run with the `regex` crate (gitleaks is a Go
//! binary this CI cannot install; RE2 and `regex` read the pattern alike).
//!
//! The files: real tokens planted where they leak (a quoted YAML, TOML and
//! `.env` value, an `export` line, a log line after `Authorization:
//! Bearer`, a curl command, JSON), and 10,000 one-character near misses of
//! real tokens in the same places, twice: with the checksum left as it was
//! (a typo: no scanner finding at all), and with it recomputed (a
//! well-formed token of an id nobody issued: reported, since a scanner
//! cannot tell it from a live one).
//!
//! detect-secrets comes from `API_TOKENS_DETECT_SECRETS`, which
//! `scripts/test` sets after installing the pinned version.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use api_tokens::{MalformedToken, TokenFormat};
use common::*;
use regex::Regex;
use serde_json::Value;
use sha1::{Digest, Sha1};

/// The plugin's file name and the options, as the README and the crate
/// docs give them.
const PLUGIN_FILE: &str = "acme_tokens.py";
const RECOMMENDED_OPTIONS: [&str; 4] = [
    "--plugin",
    "acme_tokens.py",
    "--filter",
    "./acme_tokens.py::is_damaged_token",
];
/// What the plugin calls a finding (`secret_type`).
const TOKEN_TYPE: &str = "acme API token";
const DETECT_SECRETS_VERSION: &str = "1.5.0";
const NEAR_MISSES: usize = 10_000;

/// How line `n` of a file holds a token.
type LineOf = fn(usize, &str) -> String;

/// The places a token leaks to: a file name and how its line `n` (from 1)
/// holds a token. Each line is an entry of its own, as in a real file
/// (detect-secrets reads a YAML file as YAML, where a repeated key would
/// keep only its last value).
const PLACES: [(&str, LineOf); 9] = [
    ("config.yaml", |_, t| format!("- api_token: \"{t}\"")),
    ("settings.toml", |n, t| format!("token_{n} = \"{t}\"")),
    (".env", |n, t| format!("API_TOKEN_{n}=\"{t}\"")),
    ("deploy.sh", |_, t| format!("export API_TOKEN={t}")),
    ("access.log", |_, t| {
        format!("2030-01-01T09:00:00Z INFO GET /v1/domains 200 Authorization: Bearer {t}")
    }),
    ("call.sh", |_, t| {
        format!("curl -H \"Authorization: Bearer {t}\" https://api.example.com/v1/domains")
    }),
    ("request.json", |_, t| format!("{{\"token\": \"{t}\"}}")),
    // Glued to other text: URL-encoded in a query string, and after an
    // escaped newline in a JSON log line.
    ("query.log", |_, t| {
        format!("GET /v1/hooks?callback=x%3Fapi_token%3D{t}%26y HTTP/1.1 200")
    }),
    ("events.json", |_, t| {
        format!("{{\"msg\": \"token:\\n{t}\"}}")
    }),
];

fn format() -> TokenFormat {
    TokenFormat::new(PREFIX).unwrap()
}

/// 1,000 real tokens, issued once for every test: half organization, half
/// domain tokens.
fn issued() -> &'static [String] {
    static TOKENS: OnceLock<Vec<String>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let fixture = fixture();
        (0..1_000)
            .map(|n| {
                let scope = if n % 2 == 0 {
                    org("acme")
                } else {
                    domain("acme", "shop")
                };
                runtime
                    .block_on(fixture.issue_at(scope, &format!("planted {n}")))
                    .0
            })
            .collect()
    })
}

/// A directory of files for one test, deleted when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("api-tokens-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(PLUGIN_FILE), format().detect_secrets_plugin()).unwrap();
        Scratch(dir)
    }

    fn write(&self, file: &str, lines: &[String]) {
        fs::write(self.0.join(file), lines.join("\n") + "\n").unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One finding of detect-secrets.
#[derive(Debug)]
struct Finding {
    kind: String,
    line: usize,
    hashed_secret: String,
}

/// The detect-secrets binary `scripts/test` installed, checked to be the
/// pinned version.
fn detect_secrets() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let Some(path) = std::env::var_os("API_TOKENS_DETECT_SECRETS") else {
            panic!(
                "API_TOKENS_DETECT_SECRETS is not set. Run the tests with scripts/test, which \
                 installs detect-secrets {DETECT_SECRETS_VERSION} and sets it, or install it \
                 yourself (python3 -m venv ~/.cache/api-tokens/ds && \
                 ~/.cache/api-tokens/ds/bin/pip install detect-secrets=={DETECT_SECRETS_VERSION}) \
                 and set API_TOKENS_DETECT_SECRETS to its bin/detect-secrets"
            )
        };
        let path = PathBuf::from(path);
        let output = Command::new(&path)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} (API_TOKENS_DETECT_SECRETS): {e}",
                    path.display()
                )
            });
        let version = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            version.trim(),
            DETECT_SECRETS_VERSION,
            "{} is not detect-secrets {DETECT_SECRETS_VERSION}; scripts/test installs that one",
            path.display()
        );
        path
    })
}

/// Runs `detect-secrets scan` with the recommended options over `files` in
/// `scratch`, from that directory; its findings by file.
fn scan(scratch: &Scratch, files: &[&str]) -> BTreeMap<String, Vec<Finding>> {
    let output = Command::new(detect_secrets())
        .current_dir(&scratch.0)
        .arg("scan")
        .args(RECOMMENDED_OPTIONS)
        .args(files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "detect-secrets failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    // The scan ran with our plugin and filter, not without them.
    let plugins = report["plugins_used"].as_array().unwrap();
    assert!(plugins.iter().any(|p| p["name"] == "AcmeTokenDetector"));
    let filters = report["filters_used"].as_array().unwrap();
    assert!(
        filters
            .iter()
            .any(|f| f["path"] == format!("file://{}", RECOMMENDED_OPTIONS[3]))
    );
    // The default plugins stay on.
    assert!(
        plugins
            .iter()
            .any(|p| p["name"] == "Base64HighEntropyString")
    );

    let mut found = BTreeMap::new();
    for (file, findings) in report["results"].as_object().unwrap() {
        let findings = findings
            .as_array()
            .unwrap()
            .iter()
            .map(|f| Finding {
                kind: f["type"].as_str().unwrap().to_owned(),
                line: usize::try_from(f["line_number"].as_u64().unwrap()).unwrap(),
                hashed_secret: f["hashed_secret"].as_str().unwrap().to_owned(),
            })
            .collect();
        found.insert(file.clone(), findings);
    }
    found
}

/// How detect-secrets names a secret: its SHA-1 in hex.
fn hashed(secret: &str) -> String {
    format!("{:x}", Sha1::digest(secret.as_bytes()))
}

/// A planted string: where it is and what it is.
#[derive(Clone)]
struct Planted {
    file: &'static str,
    line: usize,
    text: String,
}

/// Writes `texts` into the places, in turn (the first to the first place,
/// and so on round), one a line; where each went.
fn plant(scratch: &Scratch, texts: &[String]) -> Vec<Planted> {
    let mut lines: Vec<Vec<String>> = vec![Vec::new(); PLACES.len()];
    let mut planted = Vec::new();
    for (n, text) in texts.iter().enumerate() {
        let (file, line_of) = PLACES[n % PLACES.len()];
        let lines = &mut lines[n % PLACES.len()];
        lines.push(line_of(lines.len() + 1, text));
        planted.push(Planted {
            file,
            line: lines.len(),
            text: text.clone(),
        });
    }
    for ((file, _), lines) in PLACES.iter().zip(&lines) {
        scratch.write(file, lines);
    }
    planted
}

fn place_files() -> Vec<&'static str> {
    PLACES.iter().map(|(file, _)| *file).collect()
}

/// Characters a token may hold, and one more that a double click still
/// selects with it.
const TOKEN_CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
const BASE62: &[u8] = TOKEN_CHARS.split_at(62).0;

/// Near miss `n`: real token `n` (mod the pool) with the character at
/// `n mod length` changed, to a character that cycles through
/// `[0-9A-Za-z_]`, the checksum left as it was. Every position of the
/// token is changed about 150 times.
fn near_miss(n: usize) -> (String, usize) {
    let tokens = issued();
    let token = tokens[n % tokens.len()].as_bytes();
    let at = n % token.len();
    let mut pick = n / token.len();
    while TOKEN_CHARS[pick % TOKEN_CHARS.len()] == token[at] {
        pick += 1;
    }
    let mut changed = token.to_vec();
    changed[at] = TOKEN_CHARS[pick % TOKEN_CHARS.len()];
    (String::from_utf8(changed).unwrap(), at)
}

/// A near miss whose checksum is recomputed: real token `n` (mod the pool)
/// with one id or secret character changed to another base62 digit (one
/// that keeps the id within 64 bits), checksum made to fit. A well-formed
/// token of an id nobody issued.
fn recomputed_near_miss(n: usize) -> String {
    let tokens = issued();
    let token = tokens[n % tokens.len()].as_bytes();
    let random = ID_AT..CHECKSUM_AT;
    let at = random.start + n % random.len();
    let mut pick = n / random.len();
    loop {
        let mut changed = token.to_vec();
        changed[at] = BASE62[pick % BASE62.len()];
        let changed = with_checksum(std::str::from_utf8(&changed[..CHECKSUM_AT]).unwrap());
        if changed.as_bytes() != token && format().parse(&changed).is_ok() {
            return changed;
        }
        pick += 1;
    }
}

/// detect-secrets' default `--base64-limit`: its Base64 High Entropy String
/// plugin reports a string only when its entropy is above this.
const BASE64_ENTROPY_LIMIT: f64 = 4.5;

/// Shannon entropy in bits per character, computed over the string's own
/// characters as detect-secrets computes it.
fn shannon_entropy(text: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in text.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let length = text.chars().count() as f64;
    counts
        .values()
        .map(|&n| {
            let p = n as f64 / length;
            -p * p.log2()
        })
        .sum()
}

/// The first real tokens, two to a place: one of each kind.
fn planted_tokens() -> Vec<String> {
    issued()[..2 * PLACES.len()].to_vec()
}

#[test]
fn detect_secrets_finds_every_planted_token_and_still_runs_its_own_plugins() {
    let scratch = Scratch::new("scanners-planted");
    let planted = plant(&scratch, &planted_tokens());
    // A secret of no format of ours, quoted: detect-secrets' own plugins
    // must still flag it, filter or not. Its Base64 plugin flags only
    // strings above 4.5 bits of entropy, and about one random 40-character
    // slice in 40 falls below that, so take the first one clearly above it
    // (a tenth of a bit: no rounding between Python's and Rust's
    // logarithms comes near).
    let other = issued()[500..]
        .iter()
        .map(|token| &token[SECRET_AT..SECRET_AT + 40])
        .find(|slice| shannon_entropy(slice) > BASE64_ENTROPY_LIMIT + 0.1)
        .expect("a random 40-character slice above the limit among 500");
    scratch.write("other.yaml", &[format!("signing_secret: \"{other}\"")]);

    let mut files = place_files();
    files.push("other.yaml");
    let found = scan(&scratch, &files);

    for token in &planted {
        let findings = &found.get(token.file).map(Vec::as_slice).unwrap_or_default();
        assert!(
            findings.iter().any(|f| f.kind == TOKEN_TYPE
                && f.line == token.line
                && f.hashed_secret == hashed(&token.text)),
            "{} line {}: the whole token is reported as {TOKEN_TYPE}; found {findings:?}",
            token.file,
            token.line
        );
    }
    let ours: Vec<_> = found
        .values()
        .flatten()
        .filter(|f| f.kind == TOKEN_TYPE)
        .collect();
    assert_eq!(ours.len(), planted.len(), "one report per token: {ours:?}");
    assert!(
        found["other.yaml"]
            .iter()
            .any(|f| f.kind == "Base64 High Entropy String" && f.hashed_secret == hashed(other)),
        "{found:?}"
    );
}

#[test]
fn detect_secrets_flags_none_of_10_000_near_misses() {
    let scratch = Scratch::new("scanners-near-misses");
    let near_misses: Vec<String> = (0..NEAR_MISSES).map(|n| near_miss(n).0).collect();
    for text in &near_misses {
        assert!(format().parse(text).is_err(), "a near miss");
    }
    plant(&scratch, &near_misses);

    let found = scan(&scratch, &place_files());
    let findings: Vec<_> = found
        .iter()
        .flat_map(|(file, f)| f.iter().map(move |f| (file, f.line, &f.kind)))
        .collect();
    assert!(
        findings.is_empty(),
        "{} of {NEAR_MISSES} near misses flagged, e.g. {:?}",
        findings.len(),
        &findings[..findings.len().min(10)]
    );
}

#[test]
fn detect_secrets_reports_every_well_formed_token_of_an_unknown_id() {
    // These are tokens as far as anyone without the store can tell: the
    // checksum holds. The plugin reports each, as it must report a live
    // token; the revocation endpoint or `check` says which are real.
    // Computing them here, independently, and seeing the plugin accept
    // all 10,000 (and refuse the near misses above) is what proves the
    // Python checksum agrees with the crate's.
    let scratch = Scratch::new("scanners-unknown-ids");
    let tokens: Vec<String> = (0..NEAR_MISSES).map(recomputed_near_miss).collect();
    let planted = plant(&scratch, &tokens);
    // And where `parse` refuses a token only for its id (beyond 64 bits,
    // checksum fine), the plugin refuses it too.
    let out_of_range: Vec<String> = issued()[..50]
        .iter()
        .map(|t| {
            let mut head = t.as_bytes()[..CHECKSUM_AT].to_vec();
            head[ID_AT] = b'z';
            with_checksum(std::str::from_utf8(&head).unwrap())
        })
        .collect();
    for token in &out_of_range {
        assert_eq!(
            format().parse(token).unwrap_err(),
            MalformedToken::IdOutOfRange
        );
    }
    let lines: Vec<String> = out_of_range
        .iter()
        .map(|t| format!("INFO Bearer {t}"))
        .collect();
    scratch.write("out-of-range.log", &lines);

    let mut files = place_files();
    files.push("out-of-range.log");
    let found = scan(&scratch, &files);

    let reported: BTreeSet<(&str, usize, &str)> = found
        .iter()
        .flat_map(|(file, f)| {
            f.iter()
                .filter(|f| f.kind == TOKEN_TYPE)
                .map(move |f| (file.as_str(), f.line, f.hashed_secret.as_str()))
        })
        .collect();
    let hashes: Vec<String> = planted.iter().map(|p| hashed(&p.text)).collect();
    let expected: BTreeSet<(&str, usize, &str)> = planted
        .iter()
        .zip(&hashes)
        .map(|(p, hash)| (p.file, p.line, hash.as_str()))
        .collect();
    assert_eq!(reported.len(), NEAR_MISSES);
    assert!(reported == expected, "each reported where planted, whole");
    assert!(!found.contains_key("out-of-range.log"), "{found:?}");
}

/// The generated gitleaks config, parsed, and its one rule.
struct GitleaksRule {
    regex: Regex,
    keywords: Vec<String>,
}

fn gitleaks_rule() -> GitleaksRule {
    let config: toml::Table = format().gitleaks_config().parse().unwrap();
    assert_eq!(
        config["extend"]["useDefault"].as_bool(),
        Some(true),
        "keeps gitleaks' rules"
    );
    let rules = config["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    let rule = &rules[0];
    assert_eq!(rule["id"].as_str(), Some("acme-api-token"));
    let pattern = rule["regex"].as_str().unwrap();
    assert_eq!(pattern, format().regex_pattern().replace(r"\b", ""));
    GitleaksRule {
        regex: Regex::new(pattern).unwrap(),
        keywords: rule["keywords"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect(),
    }
}

impl GitleaksRule {
    /// What gitleaks reports in `line`: the regex's matches, if the line
    /// holds a keyword (gitleaks compares them lowercased).
    fn matches<'l>(&self, line: &'l str) -> Vec<&'l str> {
        let lower = line.to_lowercase();
        if !self
            .keywords
            .iter()
            .any(|k| lower.contains(&k.to_lowercase()))
        {
            return Vec::new();
        }
        self.regex.find_iter(line).map(|m| m.as_str()).collect()
    }
}

/// Every line of every place file in `scratch`, with where it is.
fn lines_in(scratch: &Scratch) -> Vec<(&'static str, usize, String)> {
    let mut lines = Vec::new();
    for (file, _) in PLACES {
        let text = fs::read_to_string(scratch.0.join(file)).unwrap();
        for (n, line) in text.lines().enumerate() {
            lines.push((file, n + 1, line.to_owned()));
        }
    }
    lines
}

#[test]
fn the_gitleaks_rule_finds_every_planted_token_and_every_well_formed_one() {
    let rule = gitleaks_rule();
    let scratch = Scratch::new("gitleaks-planted");
    let mut tokens = planted_tokens();
    tokens.extend((0..NEAR_MISSES).map(recomputed_near_miss));
    let planted = plant(&scratch, &tokens);

    let found: Vec<Planted> = lines_in(&scratch)
        .into_iter()
        .flat_map(|(file, line, text)| {
            rule.matches(&text)
                .into_iter()
                .map(|m| Planted {
                    file,
                    line,
                    text: m.to_owned(),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let key = |p: &Planted| (p.file, p.line, p.text.clone());
    let found: BTreeSet<_> = found.iter().map(key).collect();
    let planted: BTreeSet<_> = planted.iter().map(key).collect();
    assert_eq!(found.len(), 2 * PLACES.len() + NEAR_MISSES);
    assert!(found == planted, "each found where planted, whole");
}

#[test]
fn the_gitleaks_rule_matches_near_misses_that_keep_the_shape_its_stated_limit() {
    let rule = gitleaks_rule();
    let scratch = Scratch::new("gitleaks-near-misses");
    let near_misses: Vec<(String, usize)> = (0..NEAR_MISSES).map(near_miss).collect();
    let texts: Vec<String> = near_misses.iter().map(|(t, _)| t.clone()).collect();
    plant(&scratch, &texts);

    let matched: Vec<String> = lines_in(&scratch)
        .iter()
        .flat_map(|(_, _, line)| {
            rule.matches(line)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    // A regex cannot compute a CRC: every near miss whose changed character
    // is an id, secret or checksum digit still has the shape, and matches.
    // (A changed scope letter that is still a scope letter keeps it too.)
    let shaped = near_misses
        .iter()
        .filter(|(text, at)| {
            let changed = text.as_bytes()[*at];
            (*at >= ID_AT && changed.is_ascii_alphanumeric())
                || (*at == KIND_AT && b"od".contains(&changed))
        })
        .count();
    assert_eq!(matched.len(), shaped);
    assert!(shaped > NEAR_MISSES * 8 / 10, "{shaped}");
    for text in &matched {
        assert_eq!(
            format().parse(text).unwrap_err(),
            MalformedToken::BadChecksum
        );
    }
    // The figure the README states.
    eprintln!("gitleaks rule matched {shaped} of {NEAR_MISSES} near misses");
}
