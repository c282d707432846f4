//! The background worker every service needs: it writes last-used times
//! down, purges ended tokens and sends expiry notices if asked, and flushes
//! on shutdown.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::TokenService;
use super::notices::{ExpiryNoticeSink, MAX_NOTICE_WINDOW, MIN_NOTICE_WINDOW};
use crate::ids::ActorId;
use crate::store::ScopeFilter;

/// How often the worker writes last-used times down unless configured.
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_secs(5);

/// The shortest flush period the worker accepts; shorter ones are raised
/// to it (a zero period would spin).
pub const MIN_FLUSH_EVERY: Duration = Duration::from_millis(10);

/// How long a stopping worker lets a run of expiry notices under way
/// finish before it cuts it off.
const NOTICES_STOP_GRACE: Duration = Duration::from_secs(10);

/// The longest period the worker takes; longer ones are lowered to it, so
/// that no date arithmetic overflows. A year is "never" for a process.
const MAX_PERIOD: Duration = Duration::from_secs(365 * 24 * 3600);

/// How many expiry-notice windows the worker keeps; more are ignored.
pub const MAX_NOTICE_WINDOWS: usize = 8;

/// The name the worker's expiry notices run under.
const NOTICE_JOB: &str = "expiry-notices";

/// What [`TokenService::spawn_maintenance`] does, and how often.
///
/// By default it writes last-used times every [`DEFAULT_FLUSH_EVERY`] and
/// purges nothing: deleting ended tokens is a choice about how long your
/// API Tokens list shows them, so it is yours to switch on with
/// [`purge`](Self::purge). Nor does it send expiry notices unless told
/// where to, with [`expiry_notices`](Self::expiry_notices).
#[derive(Clone, Debug)]
pub struct Maintenance {
    flush_every: Duration,
    purge: Option<PurgeSchedule>,
    notices: Option<NoticeSchedule>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PurgeSchedule {
    every: Duration,
    older_than: Duration,
}

#[derive(Clone)]
struct NoticeSchedule {
    every: Duration,
    /// Shortest first: a token inside two windows gets the shorter one's
    /// notice, and the longer one then finds it reported.
    windows: Vec<Duration>,
    sink: Arc<dyn ExpiryNoticeSink>,
}

impl fmt::Debug for NoticeSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoticeSchedule")
            .field("every", &self.every)
            .field("windows", &self.windows)
            .finish_non_exhaustive()
    }
}

impl Default for Maintenance {
    fn default() -> Self {
        Maintenance {
            flush_every: DEFAULT_FLUSH_EVERY,
            purge: None,
            notices: None,
        }
    }
}

impl Maintenance {
    /// Flush last-used times every [`DEFAULT_FLUSH_EVERY`]; no purge.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes last-used times every `period` (at least
    /// [`MIN_FLUSH_EVERY`], at most a year). Each flush is one store call however many
    /// tokens were used.
    #[must_use]
    pub fn flush_every(mut self, period: Duration) -> Self {
        self.flush_every = period.clamp(MIN_FLUSH_EVERY, MAX_PERIOD);
        self
    }

    /// Also runs [`TokenService::purge`] every `every` (at least
    /// [`MIN_FLUSH_EVERY`], at most a year), deleting tokens that ended (were revoked or
    /// expired) more than `older_than` ago. The first purge runs one period
    /// after the worker starts, not at once, so a fleet that restarts
    /// together does not purge together.
    #[must_use]
    pub fn purge(mut self, every: Duration, older_than: Duration) -> Self {
        self.purge = Some(PurgeSchedule {
            every: every.clamp(MIN_FLUSH_EVERY, MAX_PERIOD),
            older_than,
        });
        self
    }

    /// Also sends expiry notices every `every` (at least
    /// [`MIN_FLUSH_EVERY`], at most a year) to `sink`: for each of
    /// `windows` (each clamped to [`MIN_NOTICE_WINDOW`] to
    /// [`MAX_NOTICE_WINDOW`] and kept to the second; the first
    /// [`MAX_NOTICE_WINDOWS`] distinct ones), the tokens of every scope that
    /// expire within it and were not reported for it yet, as
    /// [`Operator::send_expiry_notices`](crate::Operator::send_expiry_notices)
    /// does, shortest window first. Each token is reported once per window,
    /// across every instance sharing the store. The first run is one period
    /// after the worker starts, as for [`purge`](Self::purge).
    ///
    /// Notices run in a task of their own, so a slow sink never delays the
    /// flush or the purge; a sink that takes over [`NOTICE_SEND_TIMEOUT`](crate::NOTICE_SEND_TIMEOUT)
    /// for a notice has refused it (it goes out again next run). At
    /// shutdown a run under way has a few seconds to finish.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # async fn run(service: Arc<api_tokens::TokenService>, mailer: Arc<dyn api_tokens::ExpiryNoticeSink>) {
    /// use std::time::Duration;
    /// use api_tokens::Maintenance;
    ///
    /// const DAY: Duration = Duration::from_secs(24 * 3600);
    /// let maintenance = service.spawn_maintenance(
    ///     Maintenance::new().expiry_notices(Duration::from_secs(3600), &[30 * DAY, 7 * DAY], mailer),
    /// );
    /// # }
    /// ```
    #[must_use]
    pub fn expiry_notices(
        mut self,
        every: Duration,
        windows: &[Duration],
        sink: Arc<dyn ExpiryNoticeSink>,
    ) -> Self {
        let mut kept: Vec<Duration> = Vec::new();
        for window in windows {
            let secs = (*window)
                .clamp(MIN_NOTICE_WINDOW, MAX_NOTICE_WINDOW)
                .as_secs();
            let window = Duration::from_secs(secs);
            if !kept.contains(&window) && kept.len() < MAX_NOTICE_WINDOWS {
                kept.push(window);
            }
        }
        kept.sort();
        self.notices = Some(NoticeSchedule {
            every: every.clamp(MIN_FLUSH_EVERY, MAX_PERIOD),
            windows: kept,
            sink,
        });
        self
    }
}

/// The running worker of [`TokenService::spawn_maintenance`]. Call
/// [`shutdown`](Self::shutdown) when the service stops: it writes the last
/// uses and delivers the last audit events. Dropping the handle instead
/// stops the worker too, after that same last flush if the runtime still
/// runs, but nothing waits for it.
#[derive(Debug)]
pub struct MaintenanceHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl MaintenanceHandle {
    /// Stops the worker and waits for its last flush of last-used times
    /// and audit events.
    pub async fn shutdown(self) {
        drop(self.stop);
        // A worker that panicked has nothing left to flush; the panic was
        // already reported by the runtime.
        let _ = self.task.await;
    }
}

impl TokenService {
    /// Starts the background worker on the current Tokio runtime: it
    /// writes last-used times down (without it, none is ever written), and
    /// purges ended tokens if `config` says so. Keep the handle and call
    /// [`shutdown`](MaintenanceHandle::shutdown) when the service stops.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # async fn run(service: Arc<api_tokens::TokenService>) {
    /// use api_tokens::Maintenance;
    ///
    /// let maintenance = service.spawn_maintenance(Maintenance::new());
    /// // ... serve requests ...
    /// maintenance.shutdown().await;
    /// # }
    /// ```
    ///
    /// Failures are logged through `tracing` (a warning when writing
    /// fails, another when it works again) and retried at the next period;
    /// uses not yet written wait in memory, one entry per token at most.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, like `tokio::spawn`.
    pub fn spawn_maintenance(self: &Arc<Self>, config: Maintenance) -> MaintenanceHandle {
        let (stop, mut stopped) = oneshot::channel();
        // Expiry notices run in a task of their own: a slow mail server
        // must not hold the flush, the purge or the stop.
        let (stop_notices, notices_stopped) = watch::channel(());
        let notices = config.notices.map(|schedule| {
            tokio::spawn(Arc::clone(self).notices_worker(schedule, notices_stopped))
        });
        let service = Arc::clone(self);
        let task = tokio::spawn(async move {
            let mut flush = tokio::time::interval(config.flush_every);
            flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut purge = config.purge.map(|schedule| {
                let start = tokio::time::Instant::now() + schedule.every;
                let mut purge = tokio::time::interval_at(start, schedule.every);
                purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                (purge, schedule.older_than)
            });
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = flush.tick() => failing = service.flush_and_report(failing).await,
                    older_than = next_purge(&mut purge) => {
                        if let Err(error) = service.purge(older_than).await {
                            tracing::warn!(
                                target: "api_tokens",
                                error = &error as &dyn std::error::Error,
                                "purging ended tokens failed; retrying next period"
                            );
                        }
                    }
                }
            }
            // A run of notices under way may finish, for a while: cut off,
            // its claimed but unsent notices would be lost for their window.
            drop(stop_notices);
            if let Some(notices) = notices {
                let abort = notices.abort_handle();
                if tokio::time::timeout(NOTICES_STOP_GRACE, notices)
                    .await
                    .is_err()
                {
                    abort.abort();
                }
            }
            service.flush_and_report(failing).await;
            service.flush_audit().await;
        });
        MaintenanceHandle { stop, task }
    }

    /// One flush of last-used times; says whether it failed, logging only
    /// when that changes.
    async fn flush_and_report(&self, was_failing: bool) -> bool {
        // The verification counts of an idle service reach the recorder
        // too, within a flush period.
        #[cfg(feature = "metrics")]
        self.publish_metrics();
        match self.flush_last_used().await {
            Ok(_) => {
                if was_failing {
                    tracing::info!(target: "api_tokens", "last-used times are written again");
                }
                false
            }
            Err(error) => {
                if !was_failing {
                    tracing::warn!(
                        target: "api_tokens",
                        error = &error as &dyn std::error::Error,
                        "last-used times could not be written; they wait in memory for the next try"
                    );
                }
                true
            }
        }
    }
}

impl TokenService {
    /// The expiry-notice task: a run every `schedule.every`, until the
    /// worker drops its end of `stopped`.
    async fn notices_worker(
        self: Arc<Self>,
        schedule: NoticeSchedule,
        mut stopped: watch::Receiver<()>,
    ) {
        let start = tokio::time::Instant::now() + schedule.every;
        let mut every = tokio::time::interval_at(start, schedule.every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Only ever an error: the worker dropped the sender.
                _ = stopped.changed() => break,
                _ = every.tick() => self.send_notices(&schedule).await,
            }
        }
    }

    /// One run of expiry notices, each window in turn; failures are logged
    /// and the next run tries again.
    async fn send_notices(&self, schedule: &NoticeSchedule) {
        let job = ActorId::new(NOTICE_JOB).expect("the job's name is a valid id");
        let operator = self.operator(job);
        for &window in &schedule.windows {
            let sent = operator
                .send_expiry_notices(&ScopeFilter::All, window, &*schedule.sink)
                .await;
            match sent {
                Ok(sent) if sent.notices + sent.failed > 0 => tracing::info!(
                    target: "api_tokens",
                    within_secs = window.as_secs(),
                    notices = sent.notices,
                    tokens = sent.tokens,
                    refused = sent.failed,
                    "expiry notices sent"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(
                    target: "api_tokens",
                    error = &error as &dyn std::error::Error,
                    "expiry notices could not be claimed; retrying next period"
                ),
            }
        }
    }
}

/// Waits for the next purge, if purging is on; otherwise forever.
async fn next_purge(purge: &mut Option<(tokio::time::Interval, Duration)>) -> Duration {
    match purge {
        Some((every, older_than)) => {
            every.tick().await;
            *older_than
        }
        None => std::future::pending().await,
    }
}
