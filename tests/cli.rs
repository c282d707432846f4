//! The `api-tokens` command line, run as an operator runs it: the built
//! binary, against real SQLite files and the test PostgreSQL server. Each
//! test checks what is printed (text and `--json`), the exit code, the
//! audit log, and what the store holds afterwards, read through the
//! library.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use api_tokens::store::ScopeFilter;
use api_tokens::{
    Actor, ActorId, KeyId, Keyring, PostgresStore, Role, SqliteStore, TokenFormat, TokenId,
    TokenRecord, TokenStore,
};
use common::postgres::fresh_schema;
use common::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_api-tokens");

/// The key the tests' service hashes with (`common::key(1)`), as
/// `API_TOKENS_KEYS` holds it.
fn keys_entry() -> String {
    format!("1:{}", "01".repeat(32))
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit code; {self:#?}");
        self
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not one JSON document: {error}; {self:#?}"))
    }
}

/// An operator's shell: the `API_TOKENS_*` variables (and nothing else of
/// the test's environment), a scratch directory, and every output so far.
struct Shell {
    vars: Vec<(&'static str, String)>,
    dir: PathBuf,
    outputs: Mutex<Vec<String>>,
}

impl Shell {
    /// A shell on a fresh SQLite file (not yet created), prefix `acme`,
    /// the tests' key, operator `alice` and an audit log in the scratch
    /// directory.
    fn sqlite(name: &str) -> Shell {
        let dir = scratch(name);
        let database = format!("sqlite:{}", dir.join("tokens.db").display());
        Shell::new(dir, database, None)
    }

    /// A shell on a schema of its own in the test PostgreSQL server.
    async fn postgres(name: &str) -> (Shell, String) {
        let schema = fresh_schema().await;
        let shell = Shell::new(
            scratch(name),
            common::postgres::url(),
            Some(format!("{schema}.api_tokens")),
        );
        (shell, schema)
    }

    fn new(dir: PathBuf, database: String, table: Option<String>) -> Shell {
        let audit = dir.join("audit.jsonl").display().to_string();
        let mut vars = vec![
            ("API_TOKENS_DATABASE_URL", database),
            ("API_TOKENS_PREFIX", PREFIX.to_owned()),
            ("API_TOKENS_KEYS", keys_entry()),
            ("API_TOKENS_OPERATOR", "alice".to_owned()),
            ("API_TOKENS_AUDIT_LOG", audit),
        ];
        if let Some(table) = table {
            vars.push(("API_TOKENS_TABLE", table));
        }
        Shell {
            vars,
            dir,
            outputs: Mutex::new(Vec::new()),
        }
    }

    /// The same shell with `name` set to `value`, or unset for `None`.
    fn with(&self, name: &'static str, value: Option<&str>) -> Shell {
        let mut vars: Vec<_> = self
            .vars
            .iter()
            .filter(|(var, _)| *var != name)
            .cloned()
            .collect();
        if let Some(value) = value {
            vars.push((name, value.to_owned()));
        }
        Shell {
            vars,
            dir: self.dir.clone(),
            outputs: Mutex::new(Vec::new()),
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        let found = self.vars.iter().find(|(var, _)| *var == name);
        found.map(|(_, value)| value.as_str())
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "")
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = Command::new(BIN)
            .args(args)
            .env_clear()
            .envs(self.vars.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the api-tokens binary");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let run = Run {
            code: output.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        };
        let mut outputs = self.outputs.lock().unwrap();
        outputs.push(run.stdout.clone());
        outputs.push(run.stderr.clone());
        run
    }

    /// The audit log's lines so far.
    fn audit(&self) -> Vec<Value> {
        match self
            .var("API_TOKENS_AUDIT_LOG")
            .map(std::fs::read_to_string)
        {
            Some(Ok(text)) => text
                .lines()
                .map(|line| serde_json::from_str(line).expect("each line is JSON"))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Asserts that nothing printed so far holds the hash key.
    #[track_caller]
    fn assert_key_never_printed(&self) {
        let key = &keys_entry()[2..];
        for output in self.outputs.lock().unwrap().iter() {
            assert!(!output.contains(key), "the key was printed: {output}");
        }
        let log = self
            .var("API_TOKENS_AUDIT_LOG")
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default();
        assert!(!log.contains(key));
    }
}

/// A fresh directory for one test, inside cargo's scratch directory.
fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn sqlite_store(shell: &Shell) -> Arc<dyn TokenStore> {
    let url = shell.var("API_TOKENS_DATABASE_URL").unwrap();
    let path = url.strip_prefix("sqlite:").unwrap().to_owned();
    Arc::new(SqliteStore::open(Path::new(&path)).await.unwrap())
}

async fn postgres_store(schema: &str) -> Arc<dyn TokenStore> {
    Arc::new(common::postgres::store_in(schema).await)
}

async fn record(store: &dyn TokenStore, id: &str) -> TokenRecord {
    let id: TokenId = id.parse().unwrap();
    store.find(id).await.unwrap().expect("the token is stored")
}

async fn all_records(store: &dyn TokenStore) -> Vec<TokenRecord> {
    store
        .list(&ScopeFilter::All, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|listed| listed.unwrap())
        .collect()
}

/// Issues a token through the binary and returns (token, id).
#[track_caller]
fn issue(shell: &Shell, args: &[&str]) -> (String, String) {
    let mut all = vec!["issue", "--json"];
    all.extend_from_slice(args);
    let run = shell.run(&all);
    run.expect(0);
    let json = run.json();
    (
        json["token"].as_str().unwrap().to_owned(),
        json["summary"]["id"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn keygen_prints_an_entry_to_put_first_in_the_ring() {
    let shell = Shell::sqlite("keygen").with("API_TOKENS_KEYS", None);
    let run = shell.run(&["keygen"]);
    run.expect(0);
    let entry = run.stdout.trim().to_owned();
    assert!(entry.starts_with("1:") && entry.len() == 66, "{entry}");
    let ring = Keyring::from_config(entry.clone()).unwrap();
    assert_eq!(ring.current_id(), KeyId::new(1));
    assert!(run.stderr.contains("API_TOKENS_KEYS"), "{}", run.stderr);

    // With a ring set: the next id, and how to put it first.
    let with_ring = shell.with("API_TOKENS_KEYS", Some(&keys_entry()));
    let run = with_ring.run(&["keygen", "--json"]);
    run.expect(0);
    let json = run.json();
    assert_eq!(json["key_id"], "2");
    let entry = json["entry"].as_str().unwrap();
    assert!(entry.starts_with("2:"));
    let grown = format!("{entry},{}", keys_entry());
    assert_eq!(
        Keyring::from_config(grown).unwrap().current_id(),
        KeyId::new(2)
    );
    assert!(
        run.stderr.contains("2:<new key>,<the entries you have>"),
        "{}",
        run.stderr
    );
    with_ring.assert_key_never_printed();

    // Two runs, two keys.
    let again = shell.run(&["keygen", "--id", "7"]);
    again.expect(0);
    assert!(again.stdout.starts_with("7:"));
    assert_ne!(
        again.stdout[2..],
        run.json()["entry"].as_str().unwrap()[2..]
    );

    // A ring that does not load: exit 2, and none of it echoed.
    let bad = shell.with("API_TOKENS_KEYS", Some("1:zz-not-a-key-at-all-zz"));
    let run = bad.run(&["keygen"]);
    run.expect(2);
    assert!(
        run.stderr.contains("API_TOKENS_KEYS is not a keyring"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("zz-not-a-key"));
}

#[test]
fn scanner_rules_prints_the_formats_own_files() {
    let shell = Shell::sqlite("scanner-rules").with("API_TOKENS_PREFIX", Some("shop"));
    let format = api_tokens::TokenFormat::new("shop").unwrap();

    let run = shell.run(&["scanner-rules", "detect-secrets"]);
    run.expect(0);
    assert_eq!(run.stdout, format.detect_secrets_plugin());
    assert!(
        run.stderr
            .contains("--filter ./shop_tokens.py::is_damaged_token")
    );

    let run = shell.run(&["scanner-rules", "gitleaks", "--json"]);
    run.expect(0);
    assert_eq!(run.json()["file"], format.gitleaks_config().as_str());

    let run = shell.run(&["scanner-rules", "semgrep"]);
    run.expect(2);
    let run = shell
        .with("API_TOKENS_PREFIX", Some("Shop!"))
        .run(&["scanner-rules", "gitleaks"]);
    run.expect(2);
    assert!(run.stdout.is_empty());
}

#[test]
fn schema_prints_each_dialects_migrations_for_the_table() {
    let shell = Shell::sqlite("schema").with("API_TOKENS_DATABASE_URL", None);
    let run = shell.run(&["schema", "--dialect", "sqlite"]);
    run.expect(0);
    let table = Default::default();
    for migration in SqliteStore::migrations(&table).unwrap() {
        assert!(run.stdout.contains(migration.sql.trim_end()));
        assert!(
            run.stdout
                .contains(&format!("-- {:04} {}", migration.version, migration.name))
        );
    }

    let run = shell.run(&[
        "schema",
        "--dialect",
        "postgres",
        "--table",
        "billing.tokens",
        "--json",
    ]);
    run.expect(0);
    let json = run.json();
    let expected = PostgresStore::migrations(&"billing.tokens".parse().unwrap());
    assert_eq!(json.as_array().unwrap().len(), expected.len());
    for (printed, migration) in json.as_array().unwrap().iter().zip(&expected) {
        assert_eq!(printed["version"], migration.version);
        assert_eq!(printed["sql"], migration.sql.as_str());
    }
    assert!(
        json[0]["sql"]
            .as_str()
            .unwrap()
            .contains(r#"CREATE TABLE "billing"."tokens""#)
    );

    // The dialect from the database URL.
    let with_url = shell.with("API_TOKENS_DATABASE_URL", Some("postgres://db.invalid/app"));
    let run = with_url.run(&["schema"]);
    run.expect(0);
    assert!(run.stdout.contains("TIMESTAMPTZ"));

    // No dialect at all; a schema part SQLite cannot take; an unknown dialect.
    for args in [
        &["schema"][..],
        &["schema", "--dialect", "sqlite", "--table", "billing.tokens"],
        &["schema", "--dialect", "mysql"],
    ] {
        let run = shell.run(args);
        run.expect(2);
        assert!(run.stdout.is_empty());
        assert!(!run.stderr.is_empty());
    }
}

/// Every command, in the order an operator meets them, against `store`
/// (the same database the shell's binary works on).
async fn every_command(shell: &Shell, store: impl AsyncFn() -> Arc<dyn TokenStore>) {
    // migrate, twice.
    let run = shell.run(&["migrate"]);
    run.expect(0);
    assert!(run.stdout.contains("from schema version 0 to"), "{run:#?}");
    let run = shell.run(&["migrate", "--json"]);
    run.expect(0);
    let json = run.json();
    assert_eq!(json["from_version"], json["to_version"]);
    let store = store().await;

    // issue: the token alone on stdout, the rest on stderr, one record.
    let run = shell.run(&[
        "issue",
        "--org",
        "acme",
        "--label",
        "CI deploys",
        "--role",
        "editor",
        "--expires-in",
        "90d",
    ]);
    run.expect(0);
    let deploy_token = run.stdout.trim().to_owned();
    assert!(
        TokenFormat::new(PREFIX)
            .unwrap()
            .parse(&deploy_token)
            .is_ok()
    );
    assert!(run.stderr.contains("only time the token is shown"));
    let records = all_records(&*store).await;
    assert_eq!(records.len(), 1);
    let deploy_id = records[0].id.to_string();
    assert_eq!(records[0].label.as_str(), "CI deploys");
    assert_eq!(records[0].role, Role::Editor);
    assert_eq!(records[0].scope, org("acme"));
    assert_eq!(records[0].created_by.as_str(), "alice");
    assert!(records[0].expires_at.is_some());

    let (shop_token, shop_id) = issue(
        shell,
        &[
            "--org",
            "acme",
            "--domain",
            "shop",
            "--label",
            "shop sync",
            "--never-expires",
        ],
    );
    assert_eq!(
        record(&*store, &shop_id).await.scope,
        domain("acme", "shop")
    );
    let bob = shell.with("API_TOKENS_OPERATOR", Some("bob"));
    let (_, bobs_id) = issue(
        &bob,
        &[
            "--org",
            "beta",
            "--label",
            "bob's script",
            "--never-expires",
        ],
    );
    let (_, bobs_other_id) = issue(
        &bob,
        &[
            "--org",
            "acme",
            "--domain",
            "blog",
            "--label",
            "bob's blog",
            "--never-expires",
        ],
    );

    // list: all, one organization, one domain, and paged.
    let run = shell.run(&["list"]);
    run.expect(0);
    for label in ["CI deploys", "shop sync", "bob's script", "bob's blog"] {
        assert!(run.stdout.contains(label), "{}", run.stdout);
    }
    let listed = |args: &[&str]| {
        let mut all = vec!["list", "--json"];
        all.extend_from_slice(args);
        let run = shell.run(&all);
        run.expect(0);
        let json = run.json();
        let ids: Vec<String> = json["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|token| token["id"].as_str().unwrap().to_owned())
            .collect();
        (ids, json["next"].as_str().map(str::to_owned))
    };
    let (all, next) = listed(&[]);
    assert_eq!(all.len(), 4);
    assert_eq!(next, None);
    assert_eq!(listed(&["--org", "acme"]).0.len(), 3);
    assert_eq!(
        listed(&["--org", "acme", "--domain", "shop"]).0,
        vec![shop_id.clone()]
    );
    let (first, next) = listed(&["--limit", "3"]);
    assert_eq!(first, all[..3]);
    let (rest, next) = listed(&["--limit", "3", "--after", &next.unwrap()]);
    assert_eq!((rest, next), (all[3..].to_vec(), None));

    // show, by id: the store's record.
    let run = shell.run(&["show", &deploy_id]);
    run.expect(0);
    assert!(run.stdout.contains("CI deploys") && run.stdout.contains("organization acme"));
    let run = shell.run(&["show", &deploy_id, "--json"]);
    run.expect(0);
    assert_eq!(run.json()["label"], "CI deploys");
    assert_eq!(run.json()["created_by"], "alice");
    let unknown = "0000000000A";
    shell.run(&["show", unknown]).expect(1);

    // check, from stdin: valid.
    let run = shell.run_with_stdin(&["check", "-"], &format!("{deploy_token}\n"));
    run.expect(0);
    assert!(
        run.stdout.starts_with("valid: editor at organization acme"),
        "{run:#?}"
    );
    let run = shell.run_with_stdin(&["check", "-", "--json"], &deploy_token);
    run.expect(0);
    assert_eq!(run.json()["status"], "valid");
    assert_eq!(run.json()["scope"], "organization acme");

    // rotate: a successor on stdout, the old token replaced.
    let run = shell.run(&["rotate", &deploy_id, "--grace", "1h", "--expires-in", "30d"]);
    run.expect(0);
    let successor = run.stdout.trim().to_owned();
    let old = record(&*store, &deploy_id).await;
    let new_id = old.replaced_by.expect("replaced").to_string();
    let new = record(&*store, &new_id).await;
    assert_eq!((new.label.as_str(), new.role), ("CI deploys", Role::Editor));
    let lifetime = new.expires_at.unwrap() - new.created_at;
    assert_eq!(lifetime, time::Duration::days(30));
    shell.run_with_stdin(&["check", "-"], &successor).expect(0);
    // A token has one successor.
    let run = shell.run(&["rotate", &deploy_id, "--grace", "0", "--never-expires"]);
    run.expect(1);
    assert!(run.stderr.contains("already replaced"), "{run:#?}");

    // revoke, twice.
    let run = shell.run(&["revoke", &shop_id, "--reason", "leaked in a paste"]);
    run.expect(0);
    assert!(run.stdout.starts_with(&format!("revoked {shop_id}")));
    let revoked = record(&*store, &shop_id).await.revoked.expect("revoked");
    assert_eq!(revoked.by.as_str(), "alice");
    assert_eq!(revoked.reason.unwrap().as_str(), "leaked in a paste");
    let run = shell.run(&["revoke", &shop_id, "--json"]);
    run.expect(0);
    assert_eq!(run.json()["revoked"], false);
    shell.run(&["revoke", unknown]).expect(1);
    let run = shell.run_with_stdin(&["check", "-", "--json"], &shop_token);
    run.expect(1);
    assert_eq!(run.json()["status"], "revoked");

    // revoke-by-creator: bob's tokens, in every scope.
    let run = shell.run(&["revoke-by-creator", "bob", "--reason", "left", "--json"]);
    run.expect(0);
    assert_eq!(run.json()["count"], 2);
    for id in [&bobs_id, &bobs_other_id] {
        let revoked = record(&*store, id).await.revoked.expect("revoked");
        assert_eq!(revoked.by.as_str(), "alice");
    }

    // revoke-scope: what is left live in acme.
    let run = shell.run(&["revoke-scope", "--org", "acme"]);
    run.expect(0);
    // The old deploy token and its successor.
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.remove(0), "revoked 2 tokens of organization acme");
    lines.sort_unstable();
    let mut expected = [new_id.as_str(), deploy_id.as_str()];
    expected.sort_unstable();
    assert_eq!(lines, expected);
    assert!(record(&*store, &new_id).await.revoked.is_some());
    shell.run_with_stdin(&["check", "-"], &successor).expect(1);

    // revoke-leaked: a paste holding a live token (twice), a revoked one,
    // a forged one and another service's.
    let (leaky_token, leaky_id) = issue(
        shell,
        &[
            "--org",
            "acme",
            "--domain",
            "shop",
            "--label",
            "leaky",
            "--never-expires",
        ],
    );
    let forged = altered(
        &leaky_token,
        SECRET_AT,
        other_than(leaky_token.as_bytes()[SECRET_AT]),
    );
    let paste = shell.dir.join("paste.txt");
    std::fs::write(
        &paste,
        format!(
            "curl -H 'Authorization: Bearer {leaky_token}' https://api\n\
             {{\"token\": \"{leaky_token}\", \"old\": \"{shop_token}\"}}\n\
             forged={forged} other={}\n",
            other_service_token("zeta").await
        ),
    )
    .unwrap();
    let run = shell.run(&["revoke-leaked", paste.to_str().unwrap()]);
    run.expect(0);
    assert!(
        run.stdout
            .starts_with("found 3 tokens of this service; revoked 1\n"),
        "{run:#?}"
    );
    assert!(run.stdout.contains(&leaky_id));
    let revoked = record(&*store, &leaky_id).await.revoked.expect("revoked");
    assert_eq!(revoked.by.as_str(), "alice");
    assert_eq!(revoked.reason.unwrap().as_str(), "cli:paste.txt");
    let run = shell.run_with_stdin(&["revoke-leaked", "-", "--json"], &leaky_token);
    run.expect(0);
    assert_eq!(run.json(), serde_json::json!({ "found": 1, "revoked": [] }));

    // purge: every token has ended now.
    let run = shell.run(&["purge", "--older-than", "0", "--json"]);
    run.expect(0);
    assert_eq!(run.json()["count"], 6);
    assert!(all_records(&*store).await.is_empty());

    // Every change is in the audit log, with alice as the operator.
    let audit = shell.audit();
    let kinds: Vec<&str> = audit
        .iter()
        .map(|event| event["event"].as_str().unwrap())
        .collect();
    for kind in [
        "issued",
        "rotated",
        "revoked",
        "creator_revoked",
        "scope_revoked",
        "leak_revoked",
        "purged",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    // The operator acted: each event that names an actor names them.
    for event in &audit {
        assert!(
            matches!(event["operator"].as_str(), Some("alice" | "bob")),
            "{event}"
        );
        if event.get("actor").is_some() {
            assert_eq!(event["actor"], event["operator"], "{event}");
        }
    }
    assert!(
        !audit
            .iter()
            .any(|event| event.to_string().contains(&deploy_token))
    );
    shell.assert_key_never_printed();
    bob.assert_key_never_printed();
}

#[tokio::test(flavor = "current_thread")]
async fn every_command_on_a_sqlite_file() {
    let shell = Shell::sqlite("every-command");
    every_command(&shell, async || sqlite_store(&shell).await).await;
}

#[tokio::test(flavor = "current_thread")]
async fn every_command_on_postgres() {
    let (shell, schema) = Shell::postgres("every-command-pg").await;
    every_command(&shell, async || postgres_store(&schema).await).await;
}

/// A service of the library over `store`, as the embedding service is:
/// same prefix, same key.
fn service(store: Arc<dyn TokenStore>) -> api_tokens::TokenService {
    service_over(store)
}

#[tokio::test(flavor = "current_thread")]
async fn check_says_only_what_the_holder_already_knows() {
    let shell = Shell::sqlite("check");
    shell.run(&["migrate"]).expect(0);
    let carol = shell.with("API_TOKENS_OPERATOR", Some("carol-the-creator"));
    let (token, id) = issue(
        &carol,
        &[
            "--org",
            "acme",
            "--label",
            "very secret project",
            "--role",
            "admin",
            "--never-expires",
        ],
    );
    let (_, other_id) = issue(
        &carol,
        &["--org", "acme", "--label", "another", "--never-expires"],
    );

    let run = shell.run_with_stdin(&["check", "-", "--json"], &token);
    run.expect(0);
    let json = run.json();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "allowed_networks_only",
            "expires_at",
            "role",
            "scope",
            "status",
            "valid"
        ]
    );
    assert_eq!(json["role"], "admin");
    assert_eq!(json["expires_at"], Value::Null);
    for run in [
        &run,
        &shell.run_with_stdin(&["check", "-"], &token),
        &shell.run(&["check", &token]),
    ] {
        for secret in ["very secret project", "carol", &id, &other_id] {
            assert!(!run.stdout.contains(secret), "{secret} in {run:#?}");
            assert!(!run.stderr.contains(secret), "{secret} in {run:#?}");
        }
        assert!(!run.stdout.contains(&token) && !run.stderr.contains(&token));
    }

    // A wrong secret (checksum fixed): invalid, exit 1, nothing about it.
    let forged = altered(&token, SECRET_AT, other_than(token.as_bytes()[SECRET_AT]));
    let run = shell.run_with_stdin(&["check", "-", "--json"], &forged);
    run.expect(1);
    assert_eq!(
        run.json(),
        serde_json::json!({ "status": "invalid", "valid": false })
    );
    shell.run_with_stdin(&["check", "-"], &forged).expect(1);

    // Disabled by the service itself: exit 1, said so.
    let store = sqlite_store(&shell).await;
    let service = service(store.clone());
    let owner = Actor::new(ActorId::new("ops").unwrap()).with_grant(org("acme"), Role::Owner);
    service
        .disable(&owner, &org("acme"), id.parse().unwrap())
        .await
        .unwrap();
    let run = shell.run_with_stdin(&["check", "-"], &token);
    run.expect(1);
    assert!(
        run.stdout
            .starts_with("disabled: admin at organization acme"),
        "{run:#?}"
    );

    // Expired.
    let (short, _) = issue(
        &shell,
        &["--org", "acme", "--label", "short", "--expires-in", "1s"],
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let run = shell.run_with_stdin(&["check", "-", "--json"], &short);
    run.expect(1);
    assert_eq!(run.json()["status"], "expired");

    // An allowlisted token: valid, accepted only from its networks, which
    // are not named.
    let (fenced, _) = issue(
        &shell,
        &[
            "--org",
            "acme",
            "--label",
            "fenced",
            "--never-expires",
            "--allow-network",
            "10.1.0.0/16",
        ],
    );
    let run = shell.run_with_stdin(&["check", "-"], &fenced);
    run.expect(0);
    assert!(
        run.stdout
            .contains("accepted only from its allowed networks"),
        "{run:#?}"
    );
    assert!(!run.stdout.contains("10.1"));
    let run = shell.run_with_stdin(&["check", "-", "--json"], &fenced);
    run.expect(0);
    assert_eq!(run.json()["allowed_networks_only"], true);

    // A check is not a use.
    assert_eq!(record(&*store, &id).await.last_used_at, None);
    shell.assert_key_never_printed();
}

/// A bad-input case: what it is, the variable it changes (or unsets),
/// the command, and what stderr must say.
type BadInput<'a> = (
    &'a str,
    Option<(&'static str, Option<&'a str>)>,
    Vec<&'a str>,
    &'a str,
);

/// Each of these is bad input: exit 2, a message, nothing on stdout, and
/// nothing changed.
#[tokio::test(flavor = "current_thread")]
async fn bad_input_exits_2_with_a_message_and_changes_nothing() {
    let shell = Shell::sqlite("bad-input");
    shell.run(&["migrate"]).expect(0);
    let (token, id) = issue(
        &shell,
        &["--org", "acme", "--label", "kept", "--never-expires"],
    );
    let store = sqlite_store(&shell).await;
    let before = all_records(&*store).await;
    let audit_before = shell.audit().len();
    let other_token = other_service_token("zeta").await;
    let missing_file = format!("sqlite:{}", shell.dir.join("absent.db").display());
    let empty_file = shell.dir.join("empty.db");
    std::fs::write(&empty_file, b"").unwrap();
    let empty_file = format!("sqlite:{}", empty_file.display());
    let password = "hunter2-very-secret";
    let unreachable = format!("postgres://ops:{password}@127.0.0.1:1/tokens");

    let paste = shell.dir.join("paste.txt");
    std::fs::write(&paste, format!("leaked: {token}\n")).unwrap();
    let paste = paste.display().to_string();
    let missing_paste = shell.dir.join("no-paste.txt").display().to_string();
    let tokenless_paste = shell.dir.join("tokenless.txt");
    std::fs::write(&tokenless_paste, "nothing of ours here\n").unwrap();
    let tokenless_paste = tokenless_paste.display().to_string();
    // One byte past the bound, holding the live token.
    let huge_paste = shell.dir.join("huge.txt");
    let mut huge = format!("{token}\n").into_bytes();
    huge.resize(16 * 1024 * 1024 + 1, b'.');
    std::fs::write(&huge_paste, huge).unwrap();
    let huge_paste = huge_paste.display().to_string();

    let issue_args: &[&str] = &[
        "issue",
        "--org",
        "acme",
        "--label",
        "new",
        "--never-expires",
    ];
    let cases: Vec<BadInput> = vec![
        (
            "a URL of no known database",
            Some(("API_TOKENS_DATABASE_URL", Some("mysql://db/tokens"))),
            issue_args.to_vec(),
            "must start with sqlite:",
        ),
        (
            "no database URL",
            Some(("API_TOKENS_DATABASE_URL", None)),
            issue_args.to_vec(),
            "say which database",
        ),
        (
            "a SQLite file that does not exist",
            Some(("API_TOKENS_DATABASE_URL", Some(&missing_file))),
            issue_args.to_vec(),
            "no database file",
        ),
        (
            "a database never migrated",
            Some(("API_TOKENS_DATABASE_URL", Some(&empty_file))),
            issue_args.to_vec(),
            "run `api-tokens migrate`",
        ),
        (
            "an unreachable PostgreSQL server",
            Some(("API_TOKENS_DATABASE_URL", Some(&unreachable))),
            issue_args.to_vec(),
            "cannot open the database",
        ),
        (
            "a bad key string",
            Some(("API_TOKENS_KEYS", Some("1:0123,2"))),
            issue_args.to_vec(),
            "API_TOKENS_KEYS is not a keyring",
        ),
        (
            "no keys",
            Some(("API_TOKENS_KEYS", None)),
            issue_args.to_vec(),
            "set API_TOKENS_KEYS",
        ),
        (
            "no operator",
            Some(("API_TOKENS_OPERATOR", None)),
            issue_args.to_vec(),
            "--operator",
        ),
        (
            "no operator, for a revocation",
            Some(("API_TOKENS_OPERATOR", None)),
            vec!["revoke", &id],
            "--operator",
        ),
        (
            "an operator name with a space",
            Some(("API_TOKENS_OPERATOR", Some("alice smith"))),
            issue_args.to_vec(),
            "--operator",
        ),
        (
            "no prefix",
            Some(("API_TOKENS_PREFIX", None)),
            issue_args.to_vec(),
            "--prefix",
        ),
        (
            "a bad organization id",
            None,
            vec!["issue", "--org", "ac me", "--label", "x", "--never-expires"],
            "--org",
        ),
        (
            "a label with a control character",
            None,
            vec![
                "issue",
                "--org",
                "acme",
                "--label",
                "bell\u{7}",
                "--never-expires",
            ],
            "label",
        ),
        (
            "no expiry",
            None,
            vec!["issue", "--org", "acme", "--label", "x"],
            "--expires-in",
        ),
        (
            "a bad duration",
            None,
            vec![
                "issue",
                "--org",
                "acme",
                "--label",
                "x",
                "--expires-in",
                "5y",
            ],
            "a duration is",
        ),
        (
            "a bad role",
            None,
            vec![
                "issue",
                "--org",
                "acme",
                "--label",
                "x",
                "--role",
                "root",
                "--never-expires",
            ],
            "role",
        ),
        (
            "a token id that is not one",
            None,
            vec!["revoke", "not-an-id"],
            "token id",
        ),
        (
            "a whole token where an id goes",
            None,
            vec!["revoke", &token],
            "not the token itself",
        ),
        (
            "a token of another service",
            None,
            vec!["check", &other_token],
            "prefix",
        ),
        (
            "our token, checked as another service's",
            Some(("API_TOKENS_PREFIX", Some("zeta"))),
            vec!["check", &token],
            "prefix",
        ),
        (
            "a mistyped token",
            None,
            vec!["check", &token[..token.len() - 1]],
            "characters",
        ),
        (
            "a token where no argument goes",
            None,
            vec!["revoke-scope", "--org", "acme", &token],
            "unexpected argument",
        ),
        (
            "an unknown command",
            None,
            vec!["delete-everything"],
            "unrecognized subcommand",
        ),
        (
            "a leak's source with a control character",
            None,
            vec!["revoke-leaked", &paste, "--source", "bell\u{7}"],
            "--source",
        ),
        (
            "a bad source for a text without tokens",
            None,
            vec!["revoke-leaked", &tokenless_paste, "--source", "bell\u{7}"],
            "--source",
        ),
        (
            "a leaked-text file that does not exist",
            None,
            vec!["revoke-leaked", &missing_paste],
            "cannot read",
        ),
        (
            "a leaked text past the bound",
            None,
            vec!["revoke-leaked", &huge_paste],
            "split it",
        ),
        (
            "a bad table name",
            Some(("API_TOKENS_TABLE", Some("Tokens; DROP"))),
            issue_args.to_vec(),
            "--table",
        ),
    ];
    for (case, change, args, says) in cases {
        let changed;
        let shell = match change {
            Some((var, value)) => {
                changed = shell.with(var, value);
                &changed
            }
            None => &shell,
        };
        let run = shell.run(&args);
        assert_eq!(run.code, 2, "{case}: {run:#?}");
        assert!(run.stdout.is_empty(), "{case}: {run:#?}");
        assert!(
            run.stderr.contains(says),
            "{case}: expected {says:?} in {run:#?}"
        );
        let key = keys_entry();
        for secret in [token.as_str(), other_token.as_str(), &key[2..], password] {
            assert!(
                !run.stderr.contains(secret),
                "{case} printed a secret: {run:#?}"
            );
        }
        shell.assert_key_never_printed();
    }
    assert_eq!(all_records(&*store).await, before, "nothing changed");
    assert_eq!(shell.audit().len(), audit_before, "nothing audited");
}

#[tokio::test(flavor = "current_thread")]
async fn postgres_bad_input_exits_2_and_changes_nothing() {
    let (shell, schema) = Shell::postgres("bad-input-pg").await;
    // Not migrated yet: refused, and nothing created.
    let run = shell.run(&["issue", "--org", "acme", "--label", "x", "--never-expires"]);
    run.expect(2);
    assert!(run.stderr.contains("run `api-tokens migrate`"), "{run:#?}");
    shell.run(&["migrate"]).expect(0);
    let store = postgres_store(&schema).await;
    issue(
        &shell,
        &["--org", "acme", "--label", "kept", "--never-expires"],
    );
    let before = all_records(&*store).await;

    // A URL PostgreSQL cannot read, and a database that does not exist.
    let mut url = common::postgres::url();
    let no_database = {
        let cut = url.rfind('/').unwrap();
        format!("{}/no_such_database_here", &url[..cut])
    };
    url.push_str("?sslmode=nonsense");
    for database in [url.as_str(), &no_database, "postgres://[::1/x"] {
        let run = shell.with("API_TOKENS_DATABASE_URL", Some(database)).run(&[
            "issue",
            "--org",
            "acme",
            "--label",
            "new",
            "--never-expires",
        ]);
        assert_eq!(run.code, 2, "{database}: {run:#?}");
        assert!(run.stdout.is_empty());
        assert!(!run.stderr.is_empty());
    }
    assert_eq!(all_records(&*store).await, before);
}

#[tokio::test(flavor = "current_thread")]
async fn an_audit_log_that_cannot_be_opened_stops_the_change() {
    let shell = Shell::sqlite("audit-log");
    shell.run(&["migrate"]).expect(0);
    let unwritable = shell.dir.join("no-such-dir").join("audit.jsonl");
    let run = shell
        .with(
            "API_TOKENS_AUDIT_LOG",
            Some(&unwritable.display().to_string()),
        )
        .run(&["issue", "--org", "acme", "--label", "x", "--never-expires"]);
    run.expect(2);
    assert!(run.stderr.contains("cannot open the audit log"), "{run:#?}");
    assert!(all_records(&*sqlite_store(&shell).await).await.is_empty());

    // Without one, events go to stderr as JSON lines.
    let run = shell.with("API_TOKENS_AUDIT_LOG", None).run(&[
        "issue",
        "--org",
        "acme",
        "--label",
        "to stderr",
        "--never-expires",
    ]);
    run.expect(0);
    let line = run
        .stderr
        .lines()
        .find(|line| line.starts_with('{'))
        .expect("an audit line on stderr");
    let event: Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        (event["event"].as_str(), event["operator"].as_str()),
        (Some("issued"), Some("alice"))
    );
}

/// A text with more tokens than one service call looks at: the command
/// sends it in parts, and the live token far down in it is revoked.
#[tokio::test(flavor = "current_thread")]
async fn revoke_leaked_splits_a_long_text_into_parts_the_service_takes() {
    let shell = Shell::sqlite("leaked-parts");
    shell.run(&["migrate"]).expect(0);
    let (token, id) = issue(
        &shell,
        &["--org", "acme", "--label", "deep", "--never-expires"],
    );
    // 1,500 well-formed tokens that were never issued (ids differing in
    // their last two characters), then the live one.
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut text = String::new();
    let last = ID_AT + 10;
    for n in 0..1500 {
        let mut body = token.as_bytes()[..CHECKSUM_AT].to_vec();
        body[last - 1] = BASE62[n / 62];
        body[last] = BASE62[n % 62];
        if body == token.as_bytes()[..CHECKSUM_AT] {
            continue;
        }
        text.push_str(&with_checksum(std::str::from_utf8(&body).unwrap()));
        text.push('\n');
    }
    text.push_str(&token);
    let run = shell.run_with_stdin(&["revoke-leaked", "-", "--json"], &text);
    run.expect(0);
    let json = run.json();
    assert!(json["found"].as_u64().unwrap() > 1000, "{json}");
    assert_eq!(json["revoked"], serde_json::json!([id]));
    let store = sqlite_store(&shell).await;
    assert!(record(&*store, &id).await.revoked.is_some());
}

/// The `cli` feature brings TLS (managed PostgreSQL servers require it):
/// the binary migrates, issues and checks over a verify-full connection
/// to the TLS-only test server, and refuses one that trusts the wrong CA.
#[test]
fn works_over_tls_with_the_servers_ca() {
    let url = std::env::var("API_TOKENS_POSTGRES_TLS_URL").unwrap_or_else(|_| {
        panic!(
            "API_TOKENS_POSTGRES_TLS_URL is not set: this test needs the TLS-only PostgreSQL \
             server that `scripts/test` (or scripts/with-postgres) starts"
        )
    });
    let table = format!("cli_tls_{}", std::process::id());
    let shell = Shell::new(scratch("tls"), url.clone(), Some(table));
    shell.run(&["migrate"]).expect(0);
    let (token, _) = issue(&shell, &["--org", "tls", "--label", "x", "--never-expires"]);
    shell.run_with_stdin(&["check", "-"], &token).expect(0);

    let wrong_ca = std::env::var("API_TOKENS_POSTGRES_TLS_WRONG_CA").unwrap();
    let (base, _) = url.split_once('?').expect("the URL has parameters");
    let distrusting = format!("{base}?sslmode=verify-full&sslrootcert={wrong_ca}");
    let run = shell
        .with("API_TOKENS_DATABASE_URL", Some(&distrusting))
        .run(&["list"]);
    run.expect(2);
    assert!(run.stderr.contains("cannot open the database"), "{run:#?}");
}

/// An audit log that fails mid-way (a full disk: Linux's /dev/full): the
/// token was issued, so it is still printed, this once, and the exit code
/// says the trail is incomplete.
#[tokio::test(flavor = "current_thread")]
async fn an_audit_log_that_fails_to_write_exits_3_and_still_prints_the_token() {
    let shell = Shell::sqlite("audit-full");
    shell.run(&["migrate"]).expect(0);
    let run = shell.with("API_TOKENS_AUDIT_LOG", Some("/dev/full")).run(&[
        "issue",
        "--org",
        "acme",
        "--label",
        "x",
        "--never-expires",
    ]);
    run.expect(3);
    assert!(
        run.stderr.contains("the audit trail is incomplete"),
        "{run:#?}"
    );
    let token = run.stdout.trim();
    shell.run_with_stdin(&["check", "-"], token).expect(0);
}
