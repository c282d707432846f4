//! Expiry notices: tokens about to expire, grouped by scope and creator,
//! each reported once per window, by a direct call and by the worker, on
//! the memory store and on two instances sharing a SQLite file.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_tokens::store::ScopeFilter;
use api_tokens::testing::ManualClock;
use api_tokens::{
    ActorId, BoxError, ExpiryNotice, ExpiryNoticeError, ExpiryNoticeSink, IssueRequest, KeyId,
    Keyring, MAX_NOTICE_WINDOW, Maintenance, NOTICE_BATCH, NoticesSent, Role, Scope, SqliteStore,
    TokenFormat, TokenId, TokenService, TokenStore,
};
use common::*;

/// Keeps every notice it is sent; refuses the first `refuse` of them.
#[derive(Default)]
struct MemorySink {
    sent: Mutex<Vec<ExpiryNotice>>,
    refuse: Mutex<usize>,
}

impl MemorySink {
    fn refusing(first: usize) -> Self {
        MemorySink {
            refuse: Mutex::new(first),
            ..Self::default()
        }
    }

    fn notices(&self) -> Vec<ExpiryNotice> {
        self.sent.lock().unwrap().clone()
    }

    /// How many times each token was reported.
    fn reports(&self) -> BTreeMap<TokenId, usize> {
        let mut reports = BTreeMap::new();
        for notice in self.notices() {
            for token in notice.tokens {
                *reports.entry(token.id).or_default() += 1;
            }
        }
        reports
    }
}

#[api_tokens::async_trait]
impl ExpiryNoticeSink for MemorySink {
    async fn send(&self, notice: &ExpiryNotice) -> Result<(), BoxError> {
        {
            let mut refuse = self.refuse.lock().unwrap();
            if *refuse > 0 {
                *refuse -= 1;
                return Err("the mail server is down".into());
            }
        }
        self.sent.lock().unwrap().push(notice.clone());
        Ok(())
    }
}

/// Issues a token at `scope` as `creator` (an admin there) expiring
/// `after` from the clock's now; returns its id.
async fn issue_expiring(
    service: &TokenService,
    creator: &str,
    scope: Scope,
    label: &str,
    after: Duration,
) -> TokenId {
    let admin = actor(creator, &[(scope.clone(), Role::Admin)]);
    service
        .issue(&admin, IssueRequest::new(scope, label).expires_in(after))
        .await
        .unwrap()
        .summary
        .id
}

fn mailer(service: &TokenService) -> api_tokens::Operator<'_> {
    service.operator(ActorId::new("expiry-mailer").unwrap())
}

/// Polls `condition` every 10 ms for up to 10 s: the worker runs on its
/// own schedule, and a loaded machine may delay it.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test]
async fn notices_group_by_scope_and_creator_and_report_each_token_once() {
    let fx = fixture();
    let service = &fx.service;
    let shop = domain("acme", "shop");
    let a3 = issue_expiring(service, "alice", org("acme"), "deploys", 3 * DAY).await;
    let a5 = issue_expiring(service, "alice", org("acme"), "backups", 5 * DAY).await;
    let s2 = issue_expiring(service, "alice", shop.clone(), "shop ci", 2 * DAY).await;
    let b4 = issue_expiring(service, "bob", org("acme"), "bob's", 4 * DAY).await;
    let later = issue_expiring(service, "alice", org("acme"), "later", 20 * DAY).await;
    let revoked = issue_expiring(service, "alice", org("acme"), "gone", DAY).await;
    service
        .revoke(&org_admin("acme"), &org("acme"), revoked)
        .await
        .unwrap();
    fx.issue_at(org("acme"), "never expires").await;

    let notices = mailer(service)
        .expiry_notices(&ScopeFilter::All, 7 * DAY, NOTICE_BATCH)
        .await
        .unwrap();
    let groups: Vec<(Scope, &str, Vec<TokenId>)> = notices
        .iter()
        .map(|notice| {
            let ids = notice.tokens.iter().map(|token| token.id).collect();
            (notice.scope.clone(), notice.created_by.as_str(), ids)
        })
        .collect();
    assert_eq!(
        groups,
        [
            (shop, "alice", vec![s2]),
            (org("acme"), "alice", vec![a3, a5]),
            (org("acme"), "bob", vec![b4]),
        ],
        "one notice per scope and creator, each group's soonest first"
    );
    let first = &notices[1];
    assert_eq!(first.at, START);
    assert_eq!(first.within_secs, 7 * 24 * 3600);
    assert_eq!(first.tokens[0].label.as_str(), "deploys");
    assert_eq!(first.tokens[0].expires_at, START + 3 * DAY);
    assert!(first.tokens[0].hint.starts_with("acmeo_"));
    let json = serde_json::to_string(&notices).unwrap();
    assert!(
        json.contains("\"created_by\":\"alice\"") && !json.contains("digest"),
        "notices serialize as plain data, no digest: {json}"
    );

    let again = mailer(service)
        .expiry_notices(&ScopeFilter::All, 7 * DAY, NOTICE_BATCH)
        .await
        .unwrap();
    assert!(again.is_empty(), "each token is reported once per window");

    fx.clock.advance(14 * DAY);
    let now_due = mailer(service)
        .expiry_notices(&ScopeFilter::All, 7 * DAY, NOTICE_BATCH)
        .await
        .unwrap();
    assert_eq!(now_due.len(), 1);
    assert_eq!(
        now_due[0].tokens.iter().map(|t| t.id).collect::<Vec<_>>(),
        [later],
        "a token that entered the window since is reported, once"
    );
}

#[tokio::test]
async fn a_window_or_batch_out_of_bounds_is_refused_and_claims_nothing() {
    let fx = fixture();
    let id = issue_expiring(&fx.service, "alice", org("acme"), "ci", DAY).await;
    let operator = mailer(&fx.service);
    for within in [Duration::ZERO, MAX_NOTICE_WINDOW + SECOND] {
        let refused = operator
            .expiry_notices(&ScopeFilter::All, within, 10)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, ExpiryNoticeError::InvalidWindow { requested } if requested == within),
            "{refused:?}"
        );
    }
    for limit in [0, NOTICE_BATCH + 1] {
        let refused = operator
            .expiry_notices(&ScopeFilter::All, DAY * 2, limit)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, ExpiryNoticeError::InvalidLimit { requested, max }
                if requested == limit && max == NOTICE_BATCH),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("1 to 500 tokens"), "{refused}");
    }
    let notices = operator
        .expiry_notices(&ScopeFilter::All, 2 * DAY, 10)
        .await
        .unwrap();
    assert_eq!(
        notices[0].tokens[0].id, id,
        "the refused calls claimed nothing"
    );
}

#[tokio::test]
async fn a_notice_the_sink_refuses_is_released_and_sent_next_run() {
    let fx = fixture();
    let id = issue_expiring(&fx.service, "alice", org("acme"), "ci", DAY).await;
    let sink = MemorySink::refusing(1);
    let operator = mailer(&fx.service);

    let first = operator
        .send_expiry_notices(&ScopeFilter::All, 7 * DAY, &sink)
        .await
        .unwrap();
    assert_eq!(
        first,
        NoticesSent {
            notices: 0,
            tokens: 0,
            failed: 1
        }
    );
    let second = operator
        .send_expiry_notices(&ScopeFilter::All, 7 * DAY, &sink)
        .await
        .unwrap();
    assert_eq!(second.tokens, 1, "the released token is reported again");
    assert_eq!(sink.reports(), BTreeMap::from([(id, 1)]));
    let third = operator
        .send_expiry_notices(&ScopeFilter::All, 7 * DAY, &sink)
        .await
        .unwrap();
    assert_eq!(third, NoticesSent::default(), "and then not again");
}

/// Refuses every notice, counting how often each token was offered.
#[derive(Default)]
struct DownSink(Mutex<BTreeMap<TokenId, usize>>);

#[api_tokens::async_trait]
impl ExpiryNoticeSink for DownSink {
    async fn send(&self, notice: &ExpiryNotice) -> Result<(), BoxError> {
        let mut offered = self.0.lock().unwrap();
        for token in &notice.tokens {
            *offered.entry(token.id).or_default() += 1;
        }
        Err("the mail server is down".into())
    }
}

/// With the mail server down, a run offers each due token once, however
/// many batches it takes, and the next run offers each once again.
#[tokio::test]
async fn with_the_sink_down_each_token_is_offered_once_a_run() {
    let fx = fixture();
    let total = NOTICE_BATCH + 3;
    for n in 0..total {
        issue_expiring(&fx.service, "alice", org("acme"), &format!("t{n}"), DAY).await;
    }
    let sink = DownSink::default();
    let operator = mailer(&fx.service);

    for run in 1..=2 {
        let sent = operator
            .send_expiry_notices(&ScopeFilter::All, 7 * DAY, &sink)
            .await
            .unwrap();
        assert_eq!(
            (sent.notices, sent.failed),
            (0, 2),
            "run {run}: two batches, both refused"
        );
        let offered = sink.0.lock().unwrap().clone();
        assert_eq!(offered.len(), total);
        assert!(
            offered.values().all(|&times| times == run),
            "run {run}: {offered:?}"
        );
    }
}

/// A run claims batch after batch until the due tokens are done, and no
/// batch is larger than [`NOTICE_BATCH`].
#[tokio::test]
async fn a_run_reports_more_than_a_batch_in_batches() {
    let fx = fixture();
    let total = NOTICE_BATCH + 7;
    for n in 0..total {
        issue_expiring(&fx.service, "alice", org("acme"), &format!("t{n}"), DAY).await;
    }
    let sink = MemorySink::default();
    let sent = mailer(&fx.service)
        .send_expiry_notices(&ScopeFilter::All, 7 * DAY, &sink)
        .await
        .unwrap();
    assert_eq!(sent.tokens, total);
    let sizes: Vec<usize> = sink.notices().iter().map(|n| n.tokens.len()).collect();
    assert_eq!(
        sizes,
        [NOTICE_BATCH, 7],
        "one notice per batch for one creator"
    );
}

/// The worker runs its windows shortest first: a token inside both gets
/// one notice; one inside only the longer gets that one, and the shorter
/// one's once it enters it.
#[tokio::test]
async fn the_worker_sends_each_window_once_shortest_first() {
    let fx = fixture();
    let service = Arc::new(fx.service);
    let soon = issue_expiring(&service, "alice", org("acme"), "soon", 3 * DAY).await;
    let later = issue_expiring(&service, "alice", org("acme"), "later", 20 * DAY).await;
    let sink = Arc::new(MemorySink::default());
    let worker = service.spawn_maintenance(Maintenance::new().expiry_notices(
        Duration::from_millis(20),
        &[30 * DAY, 7 * DAY],
        sink.clone(),
    ));
    eventually("both tokens reported", || sink.reports().len() == 2).await;
    // Several more runs: nothing more is due.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.reports(), BTreeMap::from([(soon, 1), (later, 1)]));
    let windows: Vec<u32> = sink.notices().iter().map(|n| n.within_secs).collect();
    assert_eq!(windows, [7 * 24 * 3600, 30 * 24 * 3600]);

    fx.clock.advance(14 * DAY);
    eventually("the later token reported by the week's window", || {
        sink.reports().get(&later) == Some(&2)
    })
    .await;
    worker.shutdown().await;
    assert_eq!(sink.reports().get(&soon), Some(&1));
}

/// Two instances of a service sharing one SQLite file, each running the
/// worker, report every token exactly once between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sharing_a_sqlite_file_report_each_token_once() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("expiry_notices");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("shared-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let clock = ManualClock::new(START);
    let mut services = Vec::new();
    for _ in 0..2 {
        let store: Arc<dyn TokenStore> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let service = TokenService::new(
            TokenFormat::new(PREFIX).unwrap(),
            Keyring::new(KeyId::new(1), key(1)),
            store,
        )
        .with_clock(Arc::new(clock.clone()));
        services.push(Arc::new(service));
    }
    let mut due = Vec::new();
    for n in 0..60 {
        let creator = ["alice", "bob", "carol"][n % 3];
        let scope = [org("acme"), domain("acme", "shop")][n % 2].clone();
        let after = DAY + Duration::from_secs(60 * n as u64);
        due.push(issue_expiring(&services[n % 2], creator, scope, "ci", after).await);
    }
    issue_expiring(&services[0], "alice", org("acme"), "later", 30 * DAY).await;

    let sink = Arc::new(MemorySink::default());
    let workers: Vec<_> = services
        .iter()
        .map(|service| {
            service.spawn_maintenance(Maintenance::new().expiry_notices(
                Duration::from_millis(10),
                &[7 * DAY],
                sink.clone(),
            ))
        })
        .collect();
    eventually("every due token reported", || {
        sink.reports().len() == due.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for worker in workers {
        worker.shutdown().await;
    }
    let reports = sink.reports();
    due.sort();
    assert_eq!(reports.keys().copied().collect::<Vec<_>>(), due);
    assert!(
        reports.values().all(|&times| times == 1),
        "each token reported once across both instances: {reports:?}"
    );
    for notice in sink.notices() {
        assert!(
            notice
                .tokens
                .windows(2)
                .all(|w| w[0].expires_at <= w[1].expires_at),
            "a notice lists its tokens soonest first"
        );
    }
}
