//! The replicated store across real OS processes, over a real PostgreSQL:
//!
//! - a token revoked by one process is refused by another within
//!   `max_staleness`, measured over 1,000 revocations (the figures are
//!   printed and written to `target/replica-propagation.txt`);
//! - two instances of the example service under load over loopback HTTP:
//!   once the bound has passed, every request with the revoked token gets
//!   401, and nothing answers 5xx;
//! - 100,000 forged tokens (well-formed, unknown) send not one query to the
//!   token table, by PostgreSQL's own statistics.
//!
//! Instance B of the first test is this binary run again in a child mode;
//! the service instances of the second are the `axum_service` example's
//! binary. A guard kills every child process however a test ends. The tests
//! take turns, so that none measures while another loads the machine.

mod common;

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use api_tokens::{
    IssueRequest, PostgresStore, ReplicaOptions, ReplicatedStore, Revoked, TokenFormat,
    TokenService, VerifyError,
};
use common::http::client;
use common::postgres::{fresh_schema, store_in, url};
use common::*;
use reqwest::StatusCode;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The tests take turns: each measures or counts with the machine to
/// itself.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A replica of the tables in `schema`, loaded.
async fn replica_in(schema: &str) -> Arc<ReplicatedStore> {
    let replica = ReplicatedStore::postgres(store_in(schema).await, ReplicaOptions::default());
    replica.ready().await.unwrap();
    Arc::new(replica)
}

/// The test server's URL with `schema` first on the search path: what
/// another process is given to reach the tables of one test.
fn url_in(schema: &str) -> String {
    let base = url();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-csearch_path%3D{schema}")
}

/// A child process, stopped when this is dropped, however the test ends:
/// its stdin is closed (every child here exits on that), and it is killed
/// if it has not exited within five seconds.
struct StoppedOnDrop(Child);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The last lines a child wrote, to show when a test fails.
type Tail = Arc<Mutex<VecDeque<String>>>;

fn tail_text(tail: &Tail) -> String {
    let lines = tail.lock().unwrap();
    lines.iter().cloned().collect::<Vec<_>>().join("\n")
}

/// Reads `from` line by line on a thread of its own (so a chatty child
/// never blocks on a full pipe), keeping the last 60 lines in `tail` and
/// passing each to `on_line`.
fn read_lines(
    from: impl Read + Send + 'static,
    tail: Tail,
    mut on_line: impl FnMut(&str) + Send + 'static,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            on_line(&line);
            let mut tail = tail.lock().unwrap();
            if tail.len() == 60 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    });
}

fn unix_nanos(at: SystemTime) -> i128 {
    at.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i128
}

fn millis(nanos: i128) -> String {
    format!("{:.3} ms", nanos as f64 / 1e6)
}

/// The value at percentile `p` of `sorted` (nearest rank).
fn percentile(sorted: &[i128], p: usize) -> i128 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

// ---------------------------------------------------------------------------
// 1. A revocation reaches another process within the bound

const REVOCATIONS: usize = 1_000;

/// Tells the child which schema instance B replicates; set only for it.
const B_SCHEMA: &str = "API_TOKENS_TEST_INSTANCE_B_SCHEMA";
/// What marks each line instance B says, among the test harness's own
/// (which may begin the same line).
const B_SAYS: &str = "instance B: ";
/// How long B polls for a token to verify, or to be refused, before it
/// reports a failure: far past the bound, so a late refusal is measured
/// rather than cut off.
const B_GIVES_UP: Duration = Duration::from_secs(10);

/// Instance B, a child process: told a token on its stdin, it reports on
/// its stdout when the token first verified, then when it was first
/// refused as revoked (wall-clock times: one machine, one clock).
struct InstanceB {
    said: Receiver<String>,
    stdin: ChildStdin,
    tail: Tail,
    _process: StoppedOnDrop,
}

impl InstanceB {
    fn start(schema: &str) -> InstanceB {
        let exe = std::env::current_exe().unwrap();
        let mut process = Command::new(exe)
            .args([
                "instance_b_of_the_propagation_test",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(B_SCHEMA, schema)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("this test binary runs again as instance B");
        let (stdout, stderr) = (process.stdout.take(), process.stderr.take());
        let stdin = process.stdin.take().unwrap();
        let process = StoppedOnDrop(process);
        let tail = Tail::default();
        let (tell, said) = channel();
        read_lines(stdout.unwrap(), tail.clone(), move |line| {
            // The harness may have begun the line ("test … ... ").
            if let Some(at) = line.find(B_SAYS) {
                let _ = tell.send(line[at + B_SAYS.len()..].to_owned());
            }
        });
        read_lines(stderr.unwrap(), tail.clone(), |_| {});
        let b = InstanceB {
            said,
            stdin,
            tail,
            _process: process,
        };
        assert_eq!(b.next(Duration::from_secs(60)), "ready");
        b
    }

    /// What B says next.
    fn next(&self, within: Duration) -> String {
        match self.said.recv_timeout(within) {
            Ok(message) if message.starts_with("error") => {
                panic!("instance B: {message}\n{}", tail_text(&self.tail))
            }
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => panic!(
                "instance B said nothing for {within:?}; its last lines:\n{}",
                tail_text(&self.tail)
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "instance B exited; its last lines:\n{}",
                tail_text(&self.tail)
            ),
        }
    }

    /// The time of what B says next, which must be `what`.
    fn next_time(&self, what: &str) -> i128 {
        let message = self.next(B_GIVES_UP + Duration::from_secs(5));
        let nanos = message
            .strip_prefix(what)
            .and_then(|rest| rest.trim().parse().ok());
        nanos.unwrap_or_else(|| panic!("instance B said {message:?}, expected {what} <time>"))
    }

    /// Has B watch `token`: returns when B first verified it.
    fn watch(&mut self, token: &str) -> i128 {
        writeln!(self.stdin, "{token}").unwrap();
        self.stdin.flush().unwrap();
        self.next_time("valid")
    }

    /// When B first refused the watched token as revoked.
    fn refused(&self) -> i128 {
        self.next_time("refused")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_in_one_process_is_refused_by_another_within_the_bound() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let schema = fresh_schema().await;
    let replica = replica_in(&schema).await;
    let bound = replica.max_staleness();
    let a = service_over(replica.clone());
    let mut b = InstanceB::start(&schema);
    let admin = org_admin("acme");

    // Signed nanoseconds: B's first refusal minus when A's revoke returned,
    // and B's first verification minus when A's issue returned.
    let mut refusals = Vec::with_capacity(REVOCATIONS);
    let mut arrivals = Vec::with_capacity(REVOCATIONS);
    for n in 0..REVOCATIONS {
        let request = IssueRequest::new(org("acme"), format!("propagation {n}"));
        let issued = a.issue(&admin, request).await.unwrap();
        let issue_returned = unix_nanos(SystemTime::now());
        arrivals.push(b.watch(issued.token.expose_secret()) - issue_returned);
        // B verifies the token over and over from here on.
        let revoked = a
            .revoke(&admin, &issued.summary.scope, issued.summary.id)
            .await
            .unwrap();
        let revoke_returned = unix_nanos(SystemTime::now());
        assert!(matches!(revoked, Revoked::Now(_)));
        refusals.push(b.refused() - revoke_returned);
    }

    let report = propagation_report(&mut refusals, &mut arrivals, bound).await;
    println!("{report}");
    let file = target_dir().join("replica-propagation.txt");
    std::fs::write(&file, &report)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", file.display()));
    let worst = *refusals.last().unwrap();
    assert!(
        worst <= bound.as_nanos() as i128,
        "a revocation took {} to reach instance B, past the bound of {bound:?}\n{report}",
        millis(worst)
    );
}

/// The figures, for the terminal and for the README to quote. Sorts both.
async fn propagation_report(
    refusals: &mut [i128],
    arrivals: &mut [i128],
    bound: Duration,
) -> String {
    refusals.sort_unstable();
    arrivals.sort_unstable();
    let early = refusals.iter().filter(|&&nanos| nanos < 0).count();
    let server: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&PgPool::connect(&url()).await.unwrap())
        .await
        .unwrap();
    let when = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let figures = |sorted: &[i128]| {
        format!(
            "p50 {}, p99 {}, max {}",
            millis(percentile(sorted, 50)),
            millis(percentile(sorted, 99)),
            millis(*sorted.last().unwrap())
        )
    };
    format!(
        "Revocation propagation between two OS processes (tests/replica_processes.rs)\n\
         measured {when}: {n} revocations, debug build, PostgreSQL {server} on loopback, \
         {cpus} CPUs, notifications on, max_staleness {bound:?}\n\
         \n\
         instance B refused the token (first refused verification) after instance A's \
         revoke returned:\n  {refused}\n\
         signed: {early} of {n} refusals came before A's revoke returned (A returns only \
         after its own read of the change feed; B was notified at commit) and count as \
         negative, not 0.\n\
         B sleeps 50 us between verifications (0.1 to 0.2 ms a round with the kernel's \
         timer slack), so each time is late by at most about that.\n\
         \n\
         a new token first verified on B after A's issue returned (B starts polling when \
         told the token, over a pipe):\n  {arrived}\n",
        n = refusals.len(),
        cpus = std::thread::available_parallelism().map_or(0, |n| n.get()),
        refused = figures(refusals),
        arrived = figures(arrivals),
    )
}

/// Cargo's target directory: this binary is `<target>/<profile>/deps/<test>`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// Instance B of the test above, which runs it as a child process: it
/// replicates the schema named in its environment, then watches each token
/// its stdin names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "instance B of `a_revocation_in_one_process_is_refused_by_another_within_the_bound`, \
            which runs it as a child process"]
async fn instance_b_of_the_propagation_test() {
    let schema = std::env::var(B_SCHEMA).unwrap_or_else(|_| {
        panic!(
            "this is instance B of `a_revocation_in_one_process_is_refused_by_another_within_the_bound`, \
             which starts it with {B_SCHEMA} set: run that test instead"
        )
    });
    let b = service_over(replica_in(&schema).await);
    println!("{B_SAYS}ready");
    // This thread is not one of the runtime's workers, so blocking it (on
    // stdin, in the sleeps) leaves the replica's tasks free to run.
    for token in std::io::stdin().lines() {
        if let Err(error) = watch(&b, &token.unwrap()).await {
            println!("{B_SAYS}error: {error}");
        }
    }
}

/// Verifies `token` until it verifies, says when, then until it is refused,
/// and says when. Sleeps 50 us between verifications (0.1 to 0.2 ms a
/// round with the kernel's timer slack): precise enough, without taking a
/// core from PostgreSQL and instance A on a small machine.
async fn watch(b: &TokenService, token: &str) -> Result<(), String> {
    let pause = || std::thread::sleep(Duration::from_micros(50));
    let started = Instant::now();
    loop {
        match b.verify(token).await {
            Ok(_) => break,
            // Not here yet.
            Err(VerifyError::Invalid) if started.elapsed() < B_GIVES_UP => pause(),
            Err(other) => return Err(format!("before it ever verified: {other:?}")),
        }
    }
    println!("{B_SAYS}valid {}", unix_nanos(SystemTime::now()));
    let verified = Instant::now();
    loop {
        match b.verify(token).await {
            Ok(_) if verified.elapsed() < B_GIVES_UP => pause(),
            Ok(_) => return Err(format!("still verifies {B_GIVES_UP:?} after it first did")),
            Err(VerifyError::Revoked) => break,
            Err(other) => return Err(format!("refused, but not as revoked: {other:?}")),
        }
    }
    println!("{B_SAYS}refused {}", unix_nanos(SystemTime::now()));
    Ok(())
}

// ---------------------------------------------------------------------------
// 2. Two instances of the example service under load over loopback HTTP

const REQUESTS_PER_INSTANCE: usize = 5_000;

/// The hashing key both service instances share: 64 hex digits.
const SHARED_KEY_HEX: &str = "4f1c2a9e7b3d5f608192a3b4c5d6e7f80112233445566778899aabbccddeeff0";

/// The `axum_service` example's binary, which `cargo test --all-features`
/// builds beside the tests; a panic that says how to build it when it is
/// missing or older than a source it was built from (as cargo's dep-info
/// file beside it lists them).
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let examples = exe.ancestors().nth(2).unwrap().join("examples");
    let binary = examples.join(format!("axum_service{}", std::env::consts::EXE_SUFFIX));
    let build = "build it with `cargo build --all-features --examples` (plain `scripts/test` \
                 builds it too; `scripts/test --test replica_processes` does not)";
    let built = std::fs::metadata(&binary)
        .and_then(|meta| meta.modified())
        .unwrap_or_else(|_| {
            panic!(
                "the example service {} is missing: {build}",
                binary.display()
            )
        });
    let dep_info = std::fs::read_to_string(examples.join("axum_service.d"))
        .unwrap_or_else(|_| panic!("no dep-info beside {}: {build}", binary.display()));
    // `<binary>: <source> <source> …`, a space in a path written `\ `.
    let (_, sources) = dep_info.split_once(": ").expect("a dep-info line");
    let sources = sources.trim().replace("\\ ", "\0");
    for source in sources
        .split_whitespace()
        .map(|path| path.replace('\0', " "))
    {
        let changed = std::fs::metadata(&source).and_then(|meta| meta.modified());
        assert!(
            changed.is_ok_and(|changed| changed <= built),
            "{source} changed since the example service {} was built, so it would test \
             old code: {build}",
            binary.display()
        );
    }
    binary
}

/// Runs a program (`$0`) under `sh`, which kills it as soon as its own
/// stdin closes: when the guard drops, and also when this test process dies
/// in a way that runs no destructor (a SIGKILL, an abort).
const KILLED_WHEN_STDIN_CLOSES: &str =
    r#""$0" </dev/null & trap 'kill -KILL $! 2>/dev/null' EXIT; read -r _ || true"#;

/// One instance of the example service, on a free loopback port, over the
/// tables in a schema; stopped when dropped.
struct ExampleService {
    base: String,
    tail: Tail,
    _process: StoppedOnDrop,
}

impl ExampleService {
    /// Starts it; returns once it answers, with its replica current.
    async fn start(name: &str, schema: &str) -> ExampleService {
        let mut process = Command::new("sh")
            .args(["-c", KILLED_WHEN_STDIN_CLOSES])
            .arg(example_binary())
            .env("API_TOKENS_STORE", url_in(schema))
            .env("API_TOKENS_HASH_KEY", SHARED_KEY_HEX)
            // Port 0: the system picks a free one, and the service says which.
            .env("PORT", "0")
            .env_remove("API_TOKENS_REPLICA")
            .env_remove("API_TOKENS_MAX_STALENESS_MS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh starts the example service");
        let (stdout, stderr) = (process.stdout.take(), process.stderr.take());
        let process = StoppedOnDrop(process);
        let tail = Tail::default();
        let (tell, listening): (Sender<String>, _) = channel();
        read_lines(stdout.unwrap(), tail.clone(), move |line| {
            if let Some(address) = line.strip_prefix("listening on ") {
                let _ = tell.send(address.trim().to_owned());
            }
        });
        read_lines(stderr.unwrap(), tail.clone(), |_| {});
        let base = listening
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|error| {
                panic!(
                    "instance {name} of the example service never said where it listens \
                     ({error}); its last lines:\n{}",
                    tail_text(&tail)
                )
            });
        let service = ExampleService {
            base,
            tail,
            _process: process,
        };
        // It listens only once its replica is loaded; /healthz shows it
        // verifies from a replica, not from some other store.
        let health = client()
            .get(format!("{}/healthz", service.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK, "instance {name}");
        let body: serde_json::Value = health.json().await.unwrap();
        assert!(
            body["replica_lag_ms"].is_number(),
            "instance {name} does not verify from a replica: {body}"
        );
        service
    }

    /// Issues a token of organization `acme` through the dashboard, as
    /// alice; returns its text and id.
    async fn issue(&self, label: &str) -> (String, String) {
        let response = client()
            .post(format!("{}/organizations/acme/tokens", self.base))
            .header("x-demo-user", "alice")
            .json(&serde_json::json!({ "label": label }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: serde_json::Value = response.json().await.unwrap();
        (
            created["token"].as_str().unwrap().to_owned(),
            created["summary"]["id"].as_str().unwrap().to_owned(),
        )
    }

    fn resource(&self) -> String {
        format!("{}/organizations/acme/domains/shop/resource", self.base)
    }
}

impl Drop for ExampleService {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "the example service at {} wrote last:\n{}",
                self.base,
                tail_text(&self.tail)
            );
        }
    }
}

/// One request of a load loop.
struct Sent {
    doomed: bool,
    sent: Instant,
    answered: Instant,
    status: StatusCode,
}

/// `requests` requests to `url`, alternating the kept and the doomed
/// token, at most one a millisecond, so the loop lasts long enough to see
/// the bound pass after a revocation made midway. `done` counts them.
async fn load(
    url: String,
    kept: String,
    doomed: String,
    requests: usize,
    done: Arc<AtomicUsize>,
) -> Vec<Sent> {
    let client = client();
    let mut pace = tokio::time::interval(Duration::from_millis(1));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut outcomes = Vec::with_capacity(requests);
    for n in 0..requests {
        pace.tick().await;
        let doomed_now = n % 2 == 1;
        let token = if doomed_now { &doomed } else { &kept };
        let sent = Instant::now();
        let response = client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|error| panic!("request {n} to {url} failed: {error}"));
        let status = response.status();
        // Read to the end, so the connection is kept for the next request.
        response.bytes().await.unwrap();
        outcomes.push(Sent {
            doomed: doomed_now,
            sent,
            answered: Instant::now(),
            status,
        });
        done.fetch_add(1, Ordering::Relaxed);
    }
    outcomes
}

/// What one instance answered, by when each request was made relative to
/// the revocation.
#[derive(Debug, Default)]
struct Counts {
    /// The kept token: 200s.
    kept_ok: usize,
    /// The doomed token, answered before the revoke was sent: 200s.
    doomed_ok_before: usize,
    /// Sent before the revoke returned, answered after it was sent: (200s,
    /// 401s).
    doomed_during: (usize, usize),
    /// Sent after the revoke returned, within the bound: (200s, 401s).
    doomed_within_bound: (usize, usize),
    /// Sent once the bound had passed: 401s.
    doomed_past_bound: usize,
    server_errors: usize,
}

/// Asserts what a client may rely on of `instance`'s answers and counts
/// them. `reads_own_writes`: the instance the revoke went through refuses
/// the token from the moment the revoke returned.
fn check_answers(
    instance: &str,
    outcomes: &[Sent],
    revoke_sent: Instant,
    revoke_returned: Instant,
    bound: Duration,
    reads_own_writes: bool,
) -> Counts {
    let mut counts = Counts::default();
    let mut refused_since: Option<Instant> = None;
    for (n, request) in outcomes.iter().enumerate() {
        let status = request.status;
        let what = format!("instance {instance}, request {n}: {status}");
        if status.is_server_error() {
            counts.server_errors += 1;
            continue; // asserted on below, with the full counts
        }
        if !request.doomed {
            assert_eq!(status, StatusCode::OK, "the kept token: {what}");
            counts.kept_ok += 1;
            continue;
        }
        assert!(
            status == StatusCode::OK || status == StatusCode::UNAUTHORIZED,
            "{what}"
        );
        let refused = status == StatusCode::UNAUTHORIZED;
        // Once refused, never accepted again by the same instance.
        let after_a_refusal = refused_since.is_some_and(|since| request.sent >= since);
        assert!(
            refused || !after_a_refusal,
            "{what}: accepted again after a refusal"
        );
        if refused && refused_since.is_none() {
            refused_since = Some(request.answered);
        }
        if request.answered < revoke_sent {
            assert!(!refused, "before the revoke was sent: {what}");
            counts.doomed_ok_before += 1;
        } else if request.sent < revoke_returned {
            if refused {
                counts.doomed_during.1 += 1;
            } else {
                counts.doomed_during.0 += 1;
            }
        } else if request.sent < revoke_returned + bound {
            assert!(
                refused || !reads_own_writes,
                "after the revoke returned, on the instance that made it: {what}"
            );
            if refused {
                counts.doomed_within_bound.1 += 1;
            } else {
                counts.doomed_within_bound.0 += 1;
            }
        } else {
            assert!(refused, "sent {bound:?} after the revoke returned: {what}");
            counts.doomed_past_bound += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_service_processes_under_load_refuse_a_revoked_token_past_the_bound() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let schema = fresh_schema().await;
    // Migrated once here, so the two instances start together on the same
    // tables.
    store_in(&schema).await.pool().close().await;
    let (a, b) = tokio::join!(
        ExampleService::start("A", &schema),
        ExampleService::start("B", &schema)
    );
    // The example's default bound: it is started without
    // API_TOKENS_MAX_STALENESS_MS.
    let bound = ReplicaOptions::default().max_staleness();

    let (kept, _) = a.issue("kept").await;
    let (doomed, doomed_id) = a.issue("doomed").await;
    // Both verify on B before the load starts.
    for token in [&kept, &doomed] {
        let issued = Instant::now();
        loop {
            let status = client()
                .get(b.resource())
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status();
            if status == StatusCode::OK {
                break;
            }
            assert!(
                issued.elapsed() < Duration::from_secs(10),
                "a token issued on A never verified on B: {status}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    let (done_a, done_b) = (Arc::default(), Arc::new(AtomicUsize::new(0)));
    let on_a = tokio::spawn(load(
        a.resource(),
        kept.clone(),
        doomed.clone(),
        REQUESTS_PER_INSTANCE,
        done_a,
    ));
    let on_b = tokio::spawn(load(
        b.resource(),
        kept.clone(),
        doomed.clone(),
        REQUESTS_PER_INSTANCE,
        done_b.clone(),
    ));
    // Midway, revoke the doomed token on A.
    while done_b.load(Ordering::Relaxed) < REQUESTS_PER_INSTANCE / 2 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let revoke_sent = Instant::now();
    let revoked = client()
        .delete(format!("{}/organizations/acme/tokens/{doomed_id}", a.base))
        .header("x-demo-user", "alice")
        .send()
        .await
        .unwrap();
    let revoke_returned = Instant::now();
    assert_eq!(revoked.status(), StatusCode::OK);
    let body: serde_json::Value = revoked.json().await.unwrap();
    assert_eq!(body["status"], "revoked");
    let (on_a, on_b) = (on_a.await.unwrap(), on_b.await.unwrap());

    let check = |name, outcomes: &[Sent], own| {
        check_answers(name, outcomes, revoke_sent, revoke_returned, bound, own)
    };
    let (counts_a, counts_b) = (check("A", &on_a, true), check("B", &on_b, false));
    // Signed: a request sent while the revoke was on its way can be refused.
    let first_refusal_on_b = on_b
        .iter()
        .find(|request| request.doomed && request.status == StatusCode::UNAUTHORIZED)
        .map(
            |request| match request.sent.checked_duration_since(revoke_returned) {
                Some(after) => millis(after.as_nanos() as i128),
                None => millis(-((revoke_returned - request.sent).as_nanos() as i128)),
            },
        );
    println!(
        "{REQUESTS_PER_INSTANCE} requests to each instance; the revoke (DELETE on A) took {:?}\n\
         A: {counts_a:?}\nB: {counts_b:?}\n\
         B's first 401 for the revoked token was sent {} after the revoke returned",
        revoke_returned - revoke_sent,
        first_refusal_on_b.as_deref().unwrap_or("never")
    );
    assert_eq!(
        (counts_a.server_errors, counts_b.server_errors),
        (0, 0),
        "5xx answers (A, B)"
    );
    // Not vacuous: the token worked on both before, and B was asked
    // often enough after the bound.
    assert!(counts_a.doomed_ok_before > 0 && counts_b.doomed_ok_before > 0);
    assert!(
        counts_b.doomed_past_bound > 100,
        "too few requests to B once the bound had passed: {counts_b:?}"
    );
}

// ---------------------------------------------------------------------------
// 3. Forged tokens cause no query

const FORGED: usize = 100_000;

/// How many times PostgreSQL has read the `api_tokens` table of one
/// schema (sequential plus index scans), from its statistics.
struct TokenTableReads {
    pool: PgPool,
    schema: String,
}

impl TokenTableReads {
    async fn of(schema: &str) -> TokenTableReads {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url())
            .await
            .unwrap();
        TokenTableReads {
            pool,
            schema: schema.to_owned(),
        }
    }

    /// What the statistics say now. A backend reports its counts at the end
    /// of a transaction at most once a second (PostgreSQL 15 and later),
    /// and when it exits: see `settled`.
    async fn now(&self) -> i64 {
        // The statistics this connection saw are cached until cleared.
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(&self.pool)
            .await
            .unwrap();
        sqlx::query_scalar(
            "SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables \
             WHERE schemaname = $1 AND relname = 'api_tokens'",
        )
        .bind(&self.schema)
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    /// The count once it has not moved for two seconds: longer than a busy
    /// backend waits to report (one second), so only a backend gone idle
    /// could still hold counts back (it reports ten seconds later), and the
    /// test closes every connection it is done with rather than leave one
    /// idle.
    async fn settled(&self) -> i64 {
        let mut last = self.now().await;
        let mut since = Instant::now();
        let started = Instant::now();
        while since.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = self.now().await;
            if now != last {
                (last, since) = (now, Instant::now());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the token table's scan count never settled"
            );
        }
        last
    }

    /// Waits until the count exceeds `than` (bounded), then until it
    /// settles.
    async fn settled_above(&self, than: i64) -> i64 {
        let started = Instant::now();
        while self.now().await <= than {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the token table's scan count stayed at {than}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.settled().await
    }

    /// Closes `pools` and waits until the server has no connection named
    /// `name` left: a backend reports all it counted as it exits.
    async fn close(&self, name: &str, pools: &[PgPool]) {
        for pool in pools {
            tokio::time::timeout(Duration::from_secs(10), pool.close())
                .await
                .expect("the pool closes");
        }
        // A closed sqlx pool can still keep a connection that was being
        // returned to it as it closed: end those on the server's side (a
        // terminated backend reports its counts as it exits, too).
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(name)
        .execute(&self.pool)
        .await
        .unwrap();
        let started = Instant::now();
        loop {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .unwrap();
            if open == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{open} connections named {name:?} stay open"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A store over `schema` (not migrated) whose connections, in both pools,
/// are named `name`, so the test can tell when they are gone; and its
/// pools, to close.
async fn named_store(schema: &str, name: &str) -> (PostgresStore, Vec<PgPool>) {
    let options: PgConnectOptions = url_in(schema).parse().unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options.application_name(name))
        .await
        .unwrap();
    let store = PostgresStore::from_pool(pool);
    let pools = vec![store.pool().clone(), store.management_pool().clone()];
    (store, pools)
}

/// Well-formed tokens of this service's format (prefix, kind, separator,
/// base62 id and secret, valid checksum) with random ids and secrets:
/// what anyone can make without knowing a single token.
fn forged_tokens(count: usize, real_ids: &HashSet<api_tokens::TokenId>) -> Vec<String> {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    // splitmix64, seeded from the clock: random enough to forge with.
    let mut state = unix_nanos(SystemTime::now()) as u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let format = TokenFormat::new(PREFIX).unwrap();
    let mut tokens = Vec::with_capacity(count);
    while tokens.len() < count {
        let kind = if next() % 2 == 0 { 'o' } else { 'd' };
        let mut id = [0u8; 11];
        let mut value = next();
        for digit in id.iter_mut().rev() {
            *digit = BASE62[(value % 62) as usize];
            value /= 62;
        }
        let secret: String = (0..43)
            .map(|_| char::from(BASE62[(next() % 62) as usize]))
            .collect();
        let id = std::str::from_utf8(&id).unwrap();
        let token = with_checksum(&format!("{PREFIX}{kind}_{id}{secret}"));
        // Well-formed, so it reaches the store: a token refused at parsing
        // would prove nothing here.
        let parsed = format.parse(&token).expect("a forged token is well-formed");
        if !real_ids.contains(&parsed.id()) {
            tokens.push(token);
        }
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_send_no_query_to_the_token_table() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let schema = fresh_schema().await;
    let reads = TokenTableReads::of(&schema).await;

    // A few real tokens, issued through a store that is closed again, so
    // none of its connections holds counts back.
    let (setup, pools) = named_store(&schema, "api-tokens test: setup").await;
    setup.migrate().await.unwrap();
    let issuer = service_over(Arc::new(setup));
    let mut real = Vec::new();
    for label in ["one", "two", "three"] {
        let issued = issuer
            .issue(&org_admin("acme"), IssueRequest::new(org("acme"), label))
            .await
            .unwrap();
        real.push(issued.token.expose_secret().to_owned());
    }
    drop(issuer);
    reads.close("api-tokens test: setup", &pools).await;
    let before_load = reads.settled().await;

    let replica_name = "api-tokens test: replica";
    let (shared, replica_pools) = named_store(&schema, replica_name).await;
    let replica = Arc::new(ReplicatedStore::postgres(shared, ReplicaOptions::default()));
    replica.ready().await.unwrap();
    let service = service_over(replica.clone());
    for token in &real {
        service.verify(token).await.unwrap();
    }
    // The load read the table; once that read is counted, nothing the
    // replica does while no token changes reads it again (its timed reads
    // of the feed read only the change tables).
    let before = reads.settled_above(before_load).await;

    let format = TokenFormat::new(PREFIX).unwrap();
    let real_ids = real.iter().map(|t| format.parse(t).unwrap().id()).collect();
    let forged = forged_tokens(FORGED, &real_ids);
    for token in &forged {
        match service.verify(token).await {
            Err(VerifyError::Invalid) => {}
            other => panic!("a forged token: {other:?}"),
        }
    }
    // Stopped and its connections closed: whatever they read is counted now.
    drop(service);
    drop(replica);
    reads.close(replica_name, &replica_pools).await;
    let after = reads.settled().await;
    println!(
        "token table reads: {before_load} before the replica loaded, {before} once loaded, \
         {after} after {FORGED} forged tokens"
    );
    assert_eq!(
        after, before,
        "forged tokens verified through the replica read the token table"
    );

    // The same count does move when verification asks the database: 100
    // forged tokens through a plain PostgresStore.
    let plain_name = "api-tokens test: plain store";
    let (plain, plain_pools) = named_store(&schema, plain_name).await;
    let direct = service_over(Arc::new(plain));
    for token in &forged[..100] {
        assert!(matches!(
            direct.verify(token).await,
            Err(VerifyError::Invalid)
        ));
    }
    drop(direct);
    reads.close(plain_name, &plain_pools).await;
    let control = reads.settled().await;
    println!("and {control} after 100 of them through a plain PostgresStore");
    assert!(
        control >= after + 100,
        "100 lookups in the database were not counted: {after} then {control}"
    );
}
