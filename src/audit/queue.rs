//! The bounded queue between the service and its [`AuditSink`]: a request
//! hands its event over and goes on; a task of its own delivers the events
//! to the sink, one at a time, in order.
//!
//! Why: a request that waited for the sink would take as long as the sink
//! does, and only on the paths that produce an event. Managing a token out of
//! the actor's reach produces one; naming a token that does not exist used
//! not to, so a slow sink made the first take 50 ms and the second 27 µs: an
//! oracle for which ids exist in other tenants. Now both hand over the same
//! event (see `TokenService::managed_record`) and neither waits.
//!
//! Bounds: the queue holds at most its capacity of events; an event that
//! finds it full is dropped and counted, never waited for. The delivery
//! task is spawned on the Tokio runtime of the first request that sends an
//! event, and ends once the service is dropped and the queue delivered.
//! Without a Tokio runtime there is no task: events wait in the queue for
//! [`TokenService::flush_audit`](crate::TokenService::flush_audit).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{AuditEvent, AuditSink};

/// Events a service's audit queue holds unless configured otherwise: a
/// sink can fall this far behind before events are dropped. Each takes a
/// few hundred bytes, so a full queue takes a few megabytes.
pub const DEFAULT_AUDIT_QUEUE_CAPACITY: usize = 10_000;

/// The service's end of the queue. Dropping it (with the service) lets the
/// delivery task deliver what is left, then end.
pub(crate) struct AuditQueue {
    shared: Arc<Shared>,
}

/// What the service and the delivery task share.
struct Shared {
    sink: Arc<dyn AuditSink>,
    capacity: usize,
    /// Events not yet taken for delivery, each with its number in the
    /// order they were sent.
    pending: Mutex<VecDeque<(u64, AuditEvent)>>,
    /// The number the next event sent gets.
    next_number: AtomicU64,
    /// Held while events are taken and delivered, so they reach the sink
    /// one at a time and in order, whether the task or a flush delivers.
    delivering: tokio::sync::Mutex<()>,
    /// Wakes the delivery task when an event arrives or the service goes.
    wake: tokio::sync::Notify,
    /// Whether a delivery task is running.
    task_running: AtomicBool,
    /// The service is gone: deliver what is left and end.
    closed: AtomicBool,
    /// Events dropped because the queue was full.
    dropped: AtomicU64,
    /// Whether the queue has been full since it was last emptied, so a full
    /// queue is logged once, not once per dropped event.
    overflowing: AtomicBool,
    /// Tokens issued, revoked and rotated, counted from their events, and
    /// events dropped.
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::ChangeMetrics,
}

impl AuditQueue {
    /// A queue of `capacity` events (at least one) in front of `sink`.
    pub(crate) fn new(sink: Arc<dyn AuditSink>, capacity: usize) -> Self {
        AuditQueue {
            shared: Arc::new(Shared {
                sink,
                capacity: capacity.max(1),
                pending: Mutex::new(VecDeque::new()),
                next_number: AtomicU64::new(0),
                delivering: tokio::sync::Mutex::new(()),
                wake: tokio::sync::Notify::new(),
                task_running: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                dropped: AtomicU64::new(0),
                overflowing: AtomicBool::new(false),
                #[cfg(feature = "metrics")]
                metrics: crate::metrics::ChangeMetrics::new(),
            }),
        }
    }

    /// The sink the events go to.
    pub(crate) fn sink(&self) -> &Arc<dyn AuditSink> {
        &self.shared.sink
    }

    /// How many events the queue holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Hands `event` over for delivery without waiting for the sink: a
    /// short lock to append it, or, when the queue is full, a count.
    pub(crate) fn send(&self, event: AuditEvent) {
        self.shared.send(event);
    }

    /// A handle that sends into this queue from a task of its own; unlike
    /// the queue, dropping it does not close the queue.
    pub(crate) fn sender(&self) -> AuditSender {
        AuditSender(self.shared.clone())
    }

    /// Delivers every event sent before this call began (and any sent
    /// since that come before them in the queue), then returns.
    pub(crate) async fn flush(&self) {
        let last = self.shared.next_number.load(Ordering::Relaxed);
        self.shared.deliver(Some(last)).await;
    }

    /// Counts an event lost before it reached the queue.
    pub(crate) fn count_dropped(&self) {
        self.shared.count_dropped();
    }

    /// Events dropped so far because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for AuditQueue {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

/// Sends into an [`AuditQueue`] from a task of the service's, such as a
/// report that first reads the store, so no request waits for that read.
pub(crate) struct AuditSender(Arc<Shared>);

impl AuditSender {
    /// As [`AuditQueue::send`].
    pub(crate) fn send(&self, event: AuditEvent) {
        self.0.send(event);
    }
}

impl Shared {
    /// Appends `event` (or counts it dropped, when the queue is full), and
    /// makes sure a delivery task runs.
    fn send(self: &Arc<Self>, event: AuditEvent) {
        // The change happened, whether or not its event is delivered.
        #[cfg(feature = "metrics")]
        self.metrics.event(&event);
        {
            let mut pending = lock(&self.pending);
            if pending.len() >= self.capacity {
                drop(pending);
                self.count_dropped();
                if !self.overflowing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        target: "api_tokens::audit",
                        capacity = self.capacity,
                        "the audit queue is full: audit events are being dropped until the sink \
                         catches up (see TokenService::audit_events_dropped)"
                    );
                }
                return;
            }
            let number = self.next_number.fetch_add(1, Ordering::Relaxed);
            pending.push_back((number, event));
        }
        self.wake.notify_one();
        self.start_task();
    }

    fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.metrics.dropped();
    }

    /// Starts the delivery task on the current Tokio runtime, unless one
    /// runs already or there is no runtime here.
    fn start_task(self: &Arc<Self>) {
        if self.task_running.load(Ordering::Acquire)
            || self.task_running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(deliver_until_closed(TaskRunning(self.clone())));
            }
            Err(_) => self.task_running.store(false, Ordering::Release),
        }
    }

    /// Delivers events from the front of the queue, in order, until it is
    /// empty or the next event's number is `until` or past it.
    ///
    /// One event at a time, each under the delivery lock: the task and a
    /// flush take turns, so events keep their order, and a flush waits only
    /// for the events before it, however fast new ones arrive. An event
    /// leaves the queue only once the sink has it: if the delivering task
    /// is dropped midway (its runtime shut down), the event is delivered
    /// again later rather than lost.
    async fn deliver(&self, until: Option<u64>) {
        loop {
            let _turn = self.delivering.lock().await;
            let next = {
                let pending = lock(&self.pending);
                pending
                    .front()
                    .filter(|(number, _)| until.is_none_or(|until| *number < until))
                    .map(|(number, event)| (*number, event.clone()))
            };
            let Some((number, event)) = next else { break };
            self.sink.record(event).await;
            let mut pending = lock(&self.pending);
            if pending.front().is_some_and(|(front, _)| *front == number) {
                pending.pop_front();
            }
            if pending.is_empty() {
                self.overflowing.store(false, Ordering::Relaxed);
            }
        }
    }
}

/// The delivery task: waits for events and delivers them until the service
/// is gone, then delivers what is left and ends.
async fn deliver_until_closed(task: TaskRunning) {
    let shared = &*task.0;
    loop {
        shared.deliver(None).await;
        if shared.closed.load(Ordering::Acquire) {
            // Whatever was sent before the service went.
            shared.deliver(None).await;
            return;
        }
        shared.wake.notified().await;
    }
}

/// Marks the delivery task as running while it lives: when it ends, or its
/// runtime shuts down and drops it, the next event starts another.
struct TaskRunning(Arc<Shared>);

impl Drop for TaskRunning {
    fn drop(&mut self) {
        self.0.task_running.store(false, Ordering::Release);
    }
}

// A panic while the lock was held leaves the queue as it was: still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
