//! A [`ReplicatedStore`] under the faults of a real PostgreSQL server: its
//! listener's connection killed, the server restarted, the server frozen
//! for longer than the bound, and notifications never sent. In each,
//! another instance (the writer, over a plain `PostgresStore`) revokes
//! tokens while the fault lasts, and a checker verifies the tokens on the
//! replica about once a millisecond, during the fault and after, to prove
//! what a service relies on:
//!
//! - **The bound holds.** No token whose revocation returned more than
//!   `max_staleness` ago ever verifies, whatever fails in between.
//! - **It fails closed.** Once the replica has not proven its copy current
//!   for longer than the bound, a valid token is refused as unavailable
//!   (and `lag()` says so) instead of being answered from a stale copy.
//! - **It recovers by itself.** Once the server answers again, the same
//!   replica (not rebuilt) verifies valid tokens again, and refuses every
//!   token revoked meanwhile.
//!
//! The faults take the shared server down, so the tests here take turns
//! (and cargo runs test binaries one after another); a guard brings the
//! server back however a test ends.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_tokens::{
    IssueRequest, ReplicaOptions, ReplicatedStore, RevokeError, StoreError, TokenId, TokenService,
    VerifyError,
};
use common::postgres::{fresh_schema, store_in, url};
use common::server::{ServerBack, pg_ctl, signal_server};
use common::*;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The bound every replica here keeps (the default, set explicitly).
const BOUND: Duration = Duration::from_secs(1);

/// How long the server stays down or frozen: well past the bound, so the
/// replica must fail closed for a good part of it.
const OUTAGE: Duration = Duration::from_millis(2500);

/// Each store call's deadline, the writer's and the replica's: a call to a
/// frozen server fails after this instead of hanging.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the replica may take to recover once a fault is over:
/// generous, as the machine running the tests is shared and noisy.
const RECOVERY: Duration = Duration::from_secs(10);

/// How many tokens the writer revokes, one every `REVOKE_EVERY` (not
/// counting retries): about three seconds of revocations, which span the
/// fault once `LEAD_IN` has passed.
const VICTIMS: usize = 30;
const REVOKE_EVERY: Duration = Duration::from_millis(100);

/// How long the writer and the checker run before the fault begins, so
/// some revocations land while all is well.
const LEAD_IN: Duration = Duration::from_millis(500);

/// `signal_server` returns once every server process has stopped; this
/// much more lets a check start surely against a frozen server.
const SIGNAL_SLACK: Duration = Duration::from_millis(5);

/// The faults take the one server in turns, never at once.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------
// The four faults.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_reconnects_and_revocations_still_arrive_within_the_bound() {
    let _turn = TURN.lock().await;
    let _server_back = ServerBack;
    let scenario = Scenario::start(ReplicaOptions::default()).await;
    let admin = admin_pool().await;
    let mut listener = scenario.listener_pid(&admin, None).await;

    let watch = scenario.watch();
    tokio::time::sleep(LEAD_IN).await;
    // Killed again and again while the writer revokes: each time the
    // replica must listen again on a new connection, and the revocations
    // made while no one listened must arrive anyway (the timed reads).
    let kills = 5;
    let first_kill = Instant::now();
    for _ in 0..kills {
        terminate(&admin, listener).await;
        listener = scenario.listener_pid(&admin, Some(listener)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let kills_over = Instant::now();
    let finished = watch.finish(&scenario).await;

    // Each reconnection replaced the connection lost: one listener, the
    // last one seen, and no connection leaked per kill.
    let statement = scenario.listen_statement(&admin).await;
    assert_eq!(listeners(&admin, &statement).await, [listener]);
    // The listener only hastens the feed: losing it must never cost
    // availability while the server itself answers.
    let unavailable = finished.checked.unavailable_since(first_kill);
    println!(
        "listener killed {kills} times in {:.3}s: {} of {} checks of the kept token after the \
         first kill were unavailable; {}",
        (kills_over - first_kill).as_secs_f64(),
        unavailable.len(),
        finished.checked.samples_since(first_kill),
        finished.summary(&scenario)
    );
    assert!(
        unavailable.is_empty(),
        "the kept token was unavailable at {:?} (relative to the first kill), though the server \
         answered throughout",
        unavailable
            .iter()
            .map(|at| at.duration_since(first_kill))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_makes_the_replica_fail_closed_until_it_is_back() {
    let _turn = TURN.lock().await;
    let _server_back = ServerBack;
    let scenario = Scenario::start(ReplicaOptions::default()).await;

    let watch = scenario.watch();
    tokio::time::sleep(LEAD_IN).await;
    let stopping = Instant::now();
    // A fast shutdown ends every session, as a restart or failover does.
    off_runtime(|| pg_ctl("stop", &["-m", "fast"])).await;
    let stopped = Instant::now();
    tokio::time::sleep(OUTAGE).await;
    let starting = Instant::now();
    off_runtime(|| pg_ctl("start", &[])).await;
    let started = Instant::now();
    let finished = watch.finish(&scenario).await;

    // No read can succeed once the server is down: from a bound after
    // that until it starts again, the copy is older than the bound.
    let refused = finished.checked.assert_failed_closed(stopped, starting);
    let closed_after = finished.checked.first_unavailable_since(stopping);
    println!(
        "restart: down {:.3}s (stop took {:.3}s); first unavailable {} after the stop began; \
         {refused} checks in the window after the bound all refused; valid again {} after \
         the start returned; {}",
        (starting - stopped).as_secs_f64(),
        (stopped - stopping).as_secs_f64(),
        after(closed_after, stopping),
        after(Some(finished.recovered), started),
        finished.summary(&scenario)
    );
    assert!(
        finished.failed_revokes > 0,
        "the writer tried to revoke while the server was down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_makes_the_replica_fail_closed_until_it_thaws() {
    let _turn = TURN.lock().await;
    let _server_back = ServerBack;
    let scenario = Scenario::start(ReplicaOptions::default()).await;

    let watch = scenario.watch();
    tokio::time::sleep(LEAD_IN).await;
    // Frozen, not gone: connections stay open and nothing answers, as
    // with a hung server or a network that drops packets.
    off_runtime(|| signal_server("STOP")).await;
    let frozen = Instant::now();
    tokio::time::sleep(OUTAGE).await;
    let thawing = Instant::now();
    off_runtime(|| signal_server("CONT")).await;
    let thawed = Instant::now();
    let finished = watch.finish(&scenario).await;

    // A read the frozen server answered began before it froze: from a
    // bound after the freeze, the copy is older than the bound.
    let refused = finished
        .checked
        .assert_failed_closed(frozen + SIGNAL_SLACK, thawing);
    let closed_after = finished.checked.first_unavailable_since(frozen);
    println!(
        "freeze: frozen {:.3}s; first unavailable {} after the freeze; {refused} checks in the \
         window after the bound all refused; valid again {} after the thaw; {}",
        (thawing - frozen).as_secs_f64(),
        after(closed_after, frozen),
        after(Some(finished.recovered), thawed),
        finished.summary(&scenario)
    );
    assert!(
        finished.failed_revokes > 0,
        "the writer tried to revoke while the server was frozen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_notifications_the_timed_reads_alone_keep_the_bound() {
    let _turn = TURN.lock().await;
    let _server_back = ServerBack;
    let scenario = Scenario::start(ReplicaOptions::default().with_notifications(false)).await;
    let admin = admin_pool().await;

    let watch = scenario.watch();
    let began = Instant::now();
    let finished = watch.finish(&scenario).await;

    // Proof that this replica really runs without notifications: no
    // connection listens for its table's changes.
    let channel = scenario.listen_statement(&admin).await;
    assert!(
        listeners(&admin, &channel).await.is_empty(),
        "a replica built with notifications off still listens: {channel}"
    );
    let unavailable = finished.checked.unavailable_since(began);
    println!(
        "no notifications: {} of {} checks of the kept token unavailable; {}",
        unavailable.len(),
        finished.checked.samples_since(began),
        finished.summary(&scenario)
    );
    assert!(
        unavailable.is_empty(),
        "the kept token was unavailable at {:?} (from the start), though the server answered \
         throughout",
        unavailable
            .iter()
            .map(|at| at.duration_since(began))
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------
// The scenario every fault runs in.

/// A replica under test and a writer over the same schema, with tokens
/// issued by the writer that the replica already verifies.
struct Scenario {
    schema: String,
    replica: Arc<ReplicatedStore>,
    /// The service under test: it verifies through the replica.
    reader: Arc<TokenService>,
    /// Another instance sharing the database: it issues and revokes.
    writer: Arc<TokenService>,
    /// A token nobody revokes: valid whenever the replica can answer.
    kept: String,
    /// The tokens the writer revokes, in order.
    victims: Vec<(String, TokenId)>,
    /// When the scenario began, to print how long it took.
    began: Instant,
}

impl Scenario {
    async fn start(options: ReplicaOptions) -> Scenario {
        // What the replica logs ("cannot read the store's changes", "current
        // again") and any warning, with timestamps, for whoever reads the
        // output; not the audit events of every issue and revoke.
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_test_writer()
            .finish()
            .with(
                Targets::new()
                    .with_target("api_tokens::store", tracing::Level::INFO)
                    .with_default(tracing::Level::WARN),
            )
            .try_init();
        let began = Instant::now();
        let schema = fresh_schema().await;
        let shared = store_in(&schema).await.with_timeout(CALL_TIMEOUT);
        let replica = ReplicatedStore::postgres(shared, options.with_max_staleness(BOUND));
        tokio::time::timeout(RECOVERY, replica.ready())
            .await
            .expect("the replica loads")
            .unwrap();
        let replica = Arc::new(replica);
        let reader = Arc::new(service_over(replica.clone()));
        let writer = Arc::new(service_over(Arc::new(
            store_in(&schema).await.with_timeout(CALL_TIMEOUT),
        )));

        let admin = org_admin("acme");
        let mut issued = Vec::new();
        for n in 0..=VICTIMS {
            let token = writer
                .issue(&admin, IssueRequest::new(org("acme"), format!("token {n}")))
                .await
                .unwrap();
            issued.push((token.token.expose_secret().to_owned(), token.summary.id));
        }
        let (kept, _) = issued.remove(0);
        // Every token valid on the replica before anything is revoked, or
        // "never verifies once revoked" would hold for a replica that
        // never saw the tokens at all.
        for token in std::iter::once(&kept).chain(issued.iter().map(|(token, _)| token)) {
            within(
                RECOVERY,
                "a token the writer issued verifies on the replica",
                async || reader.verify(token).await.ok(),
            )
            .await;
        }
        Scenario {
            schema,
            replica,
            reader,
            writer,
            kept,
            victims: issued,
            began,
        }
    }

    /// Starts the writer revoking the victims, and the checker.
    fn watch(&self) -> Watch {
        let revocations = Revocations::default();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(revoke_steadily(
            self.writer.clone(),
            self.victims.clone(),
            revocations.clone(),
        ));
        let checker = tokio::spawn(check_continuously(
            self.reader.clone(),
            self.replica.clone(),
            self.kept.clone(),
            revocations,
            stop.clone(),
        ));
        Watch {
            writer,
            checker,
            stop,
        }
    }

    /// The statement the replica's listener runs to listen for this
    /// schema's token changes, as `pg_stat_activity` shows it (sqlx
    /// quotes the channel).
    async fn listen_statement(&self, admin: &PgPool) -> String {
        let oid: i64 = sqlx::query_scalar("SELECT $1::regclass::oid::bigint")
            .bind(format!("{}.api_tokens", self.schema))
            .fetch_one(admin)
            .await
            .unwrap();
        format!(r#"LISTEN "tokens_changed_{oid}""#)
    }

    /// The backend of the replica's listener once it listens, other than
    /// `not` (a backend killed before): proof that it (re)connected.
    async fn listener_pid(&self, admin: &PgPool, not: Option<i32>) -> i32 {
        let statement = self.listen_statement(admin).await;
        within(RECOVERY, "the replica's listener listens", async || {
            let pids = listeners(admin, &statement).await;
            pids.into_iter().find(|&pid| Some(pid) != not)
        })
        .await
    }
}

/// A service with the tests' prefix and key over `store`: the reader and
/// the writer share both, as instances of one service do.
/// Every revocation the writer has made: the token, and the instant its
/// `revoke` returned Ok, from which the bound runs.
type Revocations = Arc<Mutex<Vec<(String, Instant)>>>;

/// Revokes each victim in turn, one every `REVOKE_EVERY`. A revoke that
/// fails because the server is unreachable is retried until it succeeds;
/// only then does the token count as revoked. Returns how many attempts
/// failed.
async fn revoke_steadily(
    writer: Arc<TokenService>,
    victims: Vec<(String, TokenId)>,
    revocations: Revocations,
) -> usize {
    let admin = org_admin("acme");
    let mut failed = 0;
    for (token, id) in victims {
        loop {
            // Every victim is a token of organization acme.
            match writer.revoke(&admin, &org("acme"), id).await {
                // `Already` too: an attempt that timed out may have landed.
                Ok(_) => {
                    revocations.lock().unwrap().push((token, Instant::now()));
                    break;
                }
                Err(RevokeError::Store(StoreError::Unavailable { .. })) => {
                    failed += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(other) => panic!("the writer's revoke of {id} failed: {other:?}"),
            }
        }
        tokio::time::sleep(REVOKE_EVERY).await;
    }
    failed
}

/// What one verification of the kept token answered.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Valid,
    Unavailable,
    Other(String),
}

/// One check of the kept token: when it began and ended, what it answered,
/// and the replica's `lag()` just after.
struct Sample {
    began: Instant,
    ended: Instant,
    kept: Seen,
    lag: Option<Duration>,
}

/// What the checker saw, once stopped.
struct Checked {
    samples: Vec<Sample>,
    /// Each verification of a revoked token that answered valid although it
    /// began more than the bound after the revoke returned: a broken bound.
    violations: Vec<String>,
    /// The longest a revoked token was still seen valid after its revoke
    /// returned (allowed up to the bound).
    longest_valid_after_revoke: Duration,
    /// Verifications of revoked tokens, in all.
    revoked_checks: u64,
}

/// Verifies on the replica about once a millisecond until `stop`: the kept
/// token (recording what it got, and the lag), and every token revoked so
/// far.
async fn check_continuously(
    reader: Arc<TokenService>,
    replica: Arc<ReplicatedStore>,
    kept: String,
    revocations: Revocations,
    stop: Arc<AtomicBool>,
) -> Checked {
    let mut checked = Checked {
        samples: Vec::new(),
        violations: Vec::new(),
        longest_valid_after_revoke: Duration::ZERO,
        revoked_checks: 0,
    };
    while !stop.load(Ordering::SeqCst) {
        let began = Instant::now();
        let kept = match reader.verify(&kept).await {
            Ok(_) => Seen::Valid,
            Err(VerifyError::Store(StoreError::Unavailable { .. })) => Seen::Unavailable,
            Err(other) => Seen::Other(format!("{other:?}")),
        };
        checked.samples.push(Sample {
            began,
            ended: Instant::now(),
            kept,
            lag: replica.lag(),
        });
        let revoked = revocations.lock().unwrap().clone();
        for (token, revoked_at) in &revoked {
            let began = Instant::now();
            let outcome = reader.verify(token).await;
            checked.revoked_checks += 1;
            if outcome.is_ok() {
                // `began` is no later than the lookup: past the bound at
                // `began`, surely past it at the lookup.
                let since = began.duration_since(*revoked_at);
                checked.longest_valid_after_revoke = checked.longest_valid_after_revoke.max(since);
                if since > BOUND {
                    checked.violations.push(format!(
                        "a token revoked {since:?} before (bound {BOUND:?}) verified; lag {:?}",
                        replica.lag()
                    ));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    checked
}

impl Checked {
    /// Asserts that every check of the kept token made wholly between a
    /// bound after `unanswered` (when the server stopped answering) and
    /// `answering` (when it was about to again) found it unavailable, with
    /// `lag()` unknown or past the bound; returns how many there were
    /// (some, or the assertion proved nothing).
    fn assert_failed_closed(&self, unanswered: Instant, answering: Instant) -> usize {
        let inside: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|sample| sample.began > unanswered + BOUND && sample.ended < answering)
            .collect();
        assert!(
            inside.len() >= 10,
            "only {} checks while the replica could not be current: the checker was starved",
            inside.len()
        );
        for sample in &inside {
            let into = sample.began.duration_since(unanswered);
            assert_eq!(
                sample.kept,
                Seen::Unavailable,
                "{into:?} after the server stopped answering (bound {BOUND:?}) a valid token \
                 must be refused as unavailable, not answered from a copy not proven current; \
                 lag {:?}",
                sample.lag
            );
            assert!(
                sample.lag.is_none_or(|lag| lag > BOUND),
                "{into:?} after the server stopped answering lag() is {:?}, within the bound \
                 {BOUND:?}",
                sample.lag
            );
        }
        inside.len()
    }

    /// The first check from `since` on that found the kept token
    /// unavailable.
    fn first_unavailable_since(&self, since: Instant) -> Option<Instant> {
        self.samples
            .iter()
            .find(|sample| sample.began >= since && sample.kept == Seen::Unavailable)
            .map(|sample| sample.began)
    }

    /// When, from `since` on, the kept token was found unavailable.
    fn unavailable_since(&self, since: Instant) -> Vec<Instant> {
        self.samples
            .iter()
            .filter(|sample| sample.began >= since && sample.kept == Seen::Unavailable)
            .map(|sample| sample.began)
            .collect()
    }

    /// How many checks of the kept token began from `since` on.
    fn samples_since(&self, since: Instant) -> usize {
        self.samples
            .iter()
            .filter(|sample| sample.began >= since)
            .count()
    }
}

/// The writer and the checker at work.
struct Watch {
    writer: tokio::task::JoinHandle<usize>,
    checker: tokio::task::JoinHandle<Checked>,
    stop: Arc<AtomicBool>,
}

/// A scenario's outcome, once its fault is over and every promise checked.
struct Finished {
    checked: Checked,
    /// Revoke attempts that failed (and were retried).
    failed_revokes: usize,
    /// When the kept token first verified again once the fault was over.
    recovered: Instant,
}

impl Watch {
    /// Once the fault is over: waits for the replica to recover and the
    /// writer to finish, keeps checking until every revocation is past the
    /// bound, then asserts the bound held and every victim is refused as
    /// revoked.
    async fn finish(self, scenario: &Scenario) -> Finished {
        // The same replica, not rebuilt, verifies again.
        let recovered = within(RECOVERY, "a valid token verifies again", async || {
            let verified = scenario.reader.verify(&scenario.kept).await;
            match verified {
                Ok(_) => Some(Instant::now()),
                Err(VerifyError::Store(StoreError::Unavailable { .. })) => None,
                Err(other) => panic!("after the fault, the kept token: {other:?}"),
            }
        })
        .await;
        within(RECOVERY, "lag() is back within the bound", async || {
            scenario.replica.lag().filter(|&lag| lag < BOUND)
        })
        .await;
        let failed_revokes =
            tokio::time::timeout(RECOVERY + REVOKE_EVERY * VICTIMS as u32, self.writer)
                .await
                .expect("the writer revokes every victim once the server answers")
                .unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()));
        // The last revocation past its bound, under the checker's eye.
        tokio::time::sleep(BOUND + Duration::from_millis(250)).await;
        self.stop.store(true, Ordering::SeqCst);
        let checked = self
            .checker
            .await
            .unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()));

        // No fault ever makes a valid token anything but valid or
        // unavailable: never "revoked", "invalid" or corrupt.
        let refused: Vec<&Seen> = checked
            .samples
            .iter()
            .map(|sample| &sample.kept)
            .filter(|seen| !matches!(seen, Seen::Valid | Seen::Unavailable))
            .collect();
        assert!(
            refused.is_empty(),
            "the kept token was refused: {refused:?}"
        );
        assert!(
            checked.violations.is_empty(),
            "{} verifications accepted a token revoked longer than the bound ago; the first: {}",
            checked.violations.len(),
            checked.violations[0]
        );
        // Revoked, not merely unavailable: the revocations made during the
        // fault reached the replica.
        for (token, id) in &scenario.victims {
            within(
                RECOVERY,
                "a revoked token is refused as revoked",
                async || match scenario.reader.verify(token).await {
                    Err(VerifyError::Revoked) => Some(()),
                    Err(VerifyError::Store(StoreError::Unavailable { .. })) => None,
                    other => panic!("{id}, revoked, verified as {other:?}"),
                },
            )
            .await;
        }
        Finished {
            checked,
            failed_revokes,
            recovered,
        }
    }
}

impl Finished {
    /// What a reader of the output wants to know about any scenario.
    fn summary(&self, scenario: &Scenario) -> String {
        format!(
            "{} failed revoke attempts retried; {} checks of the kept token, {} of revoked \
             tokens; a revoked token was seen valid at most {:?} after its revoke returned \
             (bound {BOUND:?}); scenario took {:.1}s",
            self.failed_revokes,
            self.checked.samples.len(),
            self.checked.revoked_checks,
            self.checked.longest_valid_after_revoke,
            scenario.began.elapsed().as_secs_f64()
        )
    }
}

// ---------------------------------------------------------------------------
// Small helpers.

/// Polls `probe` every few milliseconds until it returns `Some`, for at
/// most `limit`; panics saying `what` did not happen otherwise.
async fn within<T>(limit: Duration, what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs a blocking server command on a thread of its own, so the checker
/// and the replica's tasks keep running while it waits.
async fn off_runtime<T: Send + 'static>(command: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(command)
        .await
        .unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()))
}

/// A connection of its own to the server, to look at and kill backends.
async fn admin_pool() -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .connect(&url())
        .await
        .unwrap()
}

/// The backends of the replica's listener that run `statement` (its
/// `LISTEN`), found by the listener's application_name.
async fn listeners(admin: &PgPool, statement: &str) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query = $2",
    )
    .bind(api_tokens::store::LISTENER_APPLICATION_NAME)
    .bind(statement)
    .fetch_all(admin)
    .await
    .unwrap()
}

/// Kills the backend `pid`, as an administrator or a connection reaper
/// would.
async fn terminate(admin: &PgPool, pid: i32) {
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(admin)
        .await
        .unwrap();
    assert!(killed, "backend {pid} was not terminated");
}

/// How long after `since` `at` was, or "never".
fn after(at: Option<Instant>, since: Instant) -> String {
    at.map_or("never".into(), |at| {
        format!("{:.3}s", at.duration_since(since).as_secs_f64())
    })
}
