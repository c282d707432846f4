//! Expiry notices: the tokens about to expire, grouped by scope and
//! creator into plain data ([`ExpiryNotice`]) that a service turns into
//! e-mails or webhooks, each token reported once per window.
//!
//! # Once per window
//!
//! The store records, with each token it reports, the expiry it reported
//! and the window's length ([`TokenStore::claim_expiry_notices`]). A token
//! is due in a window of length `W` if it is live (a disabled token counts:
//! it can be enabled again, and its holder wants to know it will expire),
//! expires within `W` from now, and was not reported about that same expiry
//! by a window of length `W` or less. So:
//!
//! - a 30-day and a 7-day window each report a token once;
//! - a token first seen inside both gets one notice if the shorter window
//!   runs first (the worker runs its windows shortest first), since the
//!   longer one then finds it reported by a shorter window;
//! - a token whose expiry is edited later is due again, about the new one;
//! - a revoked, rotated (replaced) or expired token is never due.
//!
//! # Claimed before delivery, released on failure
//!
//! A notice's tokens are claimed (marked in the store, by one
//! compare-and-set per token) **before** the notice is delivered, so two
//! instances running the worker never both report a token: whoever claims
//! it reports it. If the [`ExpiryNoticeSink`] then fails, the claim is
//! released and the next run reports the tokens again. What this gives:
//!
//! - at most once across the fleet while delivery succeeds or fails
//!   cleanly;
//! - a process that dies between claiming and delivering loses those
//!   notices (at most one batch, [`NOTICE_BATCH`] tokens): claiming after
//!   delivery would instead let two instances report the same token,
//!   which is the failure users notice;
//! - a release clears the token's record, so a longer window that already
//!   reported it (30 days, say, before this 7-day one failed) reports it
//!   once more, on the next run that looks at that window.
//!
//! Work is bounded: each store call claims at most [`NOTICE_BATCH`]
//! tokens, and one run of [`Operator::send_expiry_notices`] at most
//! [`NOTICE_BATCHES_PER_RUN`] batches; what is left is due at the next run.
//! Nothing here runs on a request path.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use super::TokenService;
use super::operator::Operator;
use crate::actor::Role;
use crate::error::{BoxError, StoreError};
use crate::ids::ActorId;
use crate::label::Label;
use crate::page::ExpiryCursor;
use crate::record::TokenRecord;
use crate::scope::Scope;
use crate::store::{ListedRecord, NoticeWindow, ScopeFilter};
use crate::token::TokenId;

/// How many tokens one claim takes at most: one store call, one short
/// transaction, and what one batch of notices holds.
pub const NOTICE_BATCH: usize = 500;

/// How many batches one run of [`Operator::send_expiry_notices`] (and of
/// the worker, per window) claims at most: 10,000 tokens. The rest waits
/// for the next run.
pub const NOTICE_BATCHES_PER_RUN: usize = 20;

/// How long the sink may take over one notice; longer counts as refused
/// (the notice goes out again next run), so a sink that hangs cannot hold
/// a run forever.
pub const NOTICE_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest window a notice looks ahead: a year and a day.
pub const MAX_NOTICE_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);

/// The shortest window a notice looks ahead. Windows are kept to the
/// second, as the store records them.
pub const MIN_NOTICE_WINDOW: Duration = Duration::from_secs(1);

/// The tokens of one scope, created by one person, that expire within a
/// window: one e-mail, or one webhook call. Plain data, safe to serialize
/// into a message or a log: no secret, no digest.
///
/// A batch holds one notice per scope and creator; a creator with more
/// expiring tokens than a batch holds ([`NOTICE_BATCH`]) may get two.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExpiryNotice {
    /// When the notice was made: "now" for "expires in 3 days".
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The window's length, in seconds: every token here expires before
    /// `at` plus this.
    pub within_secs: u32,
    /// Where the tokens are valid.
    pub scope: Scope,
    /// Who created them: whom to tell.
    pub created_by: ActorId,
    /// The tokens, the soonest to expire first.
    pub tokens: Vec<ExpiringToken>,
}

/// One token of an [`ExpiryNotice`]: what its creator needs to recognise
/// it and act.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExpiringToken {
    /// The public id.
    pub id: TokenId,
    /// The token's public head, e.g. `acmeo_3kT9QxPb1Zr…`, as lists show it.
    pub hint: String,
    /// What the token is for.
    pub label: Label,
    /// The role it grants.
    pub role: Role,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was last used, as far as recorded: an unused token may be
    /// let go.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Whether it is disabled (it would verify again once enabled).
    pub disabled: bool,
}

/// Where the worker delivers expiry notices: your mailer or webhook
/// client. One call per notice.
///
/// ```
/// use api_tokens::{BoxError, ExpiryNotice, ExpiryNoticeSink};
///
/// struct Mailer;
///
/// #[api_tokens::async_trait]
/// impl ExpiryNoticeSink for Mailer {
///     async fn send(&self, notice: &ExpiryNotice) -> Result<(), BoxError> {
///         // Look up `notice.created_by`'s address and send the mail.
///         println!("to {}: {} token(s) expire soon", notice.created_by, notice.tokens.len());
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait ExpiryNoticeSink: Send + Sync {
    /// Delivers one notice.
    ///
    /// # Errors
    ///
    /// Any failure: the notice's tokens are then released and reported
    /// again at the next run. A sink that delivered part of a notice and
    /// would rather not repeat it returns `Ok` and keeps its own account.
    async fn send(&self, notice: &ExpiryNotice) -> Result<(), BoxError>;
}

/// Why claiming expiry notices failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExpiryNoticeError {
    /// The window is shorter than [`MIN_NOTICE_WINDOW`] or longer than
    /// [`MAX_NOTICE_WINDOW`].
    #[error("an expiry notice looks 1 second to 366 days ahead; {requested:?} was asked for")]
    InvalidWindow {
        /// The window asked for.
        requested: Duration,
    },
    /// The batch size is zero or above [`NOTICE_BATCH`].
    #[error("a batch of expiry notices holds 1 to {max} tokens; {requested} were asked for")]
    InvalidLimit {
        /// The size asked for.
        requested: usize,
        /// The largest allowed.
        max: usize,
    },
    /// The store failed; nothing was claimed by the call that failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one run of [`Operator::send_expiry_notices`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NoticesSent {
    /// Notices the sink accepted.
    pub notices: usize,
    /// The tokens in them.
    pub tokens: usize,
    /// Notices the sink refused: their tokens were released, to be
    /// reported again next run (unless the release failed too, which is
    /// logged).
    pub failed: usize,
}

impl Operator<'_> {
    /// Claims up to `limit` tokens of the scopes `filter` reads that are due
    /// for a notice of the window `within` (what "due" means is on
    /// [`TokenStore::claim_expiry_notices`](crate::TokenStore::claim_expiry_notices)),
    /// and returns them grouped
    /// into notices, for you to deliver: the direct call for a service that
    /// runs its own scheduler. Claimed means reported: a later call, here
    /// or on another instance, does not return them for this window again.
    /// If you cannot deliver a notice, hand it to
    /// [`release_expiry_notice`](Self::release_expiry_notice).
    ///
    /// ```no_run
    /// # async fn run(service: &api_tokens::TokenService) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use api_tokens::{ActorId, NOTICE_BATCH};
    /// use api_tokens::store::ScopeFilter;
    ///
    /// let mailer = service.operator(ActorId::new("expiry-mailer")?);
    /// let week = Duration::from_secs(7 * 24 * 3600);
    /// for notice in mailer.expiry_notices(&ScopeFilter::All, week, NOTICE_BATCH).await? {
    ///     // if sending fails: mailer.release_expiry_notice(&notice).await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ExpiryNoticeError::InvalidWindow`] or
    /// [`InvalidLimit`](ExpiryNoticeError::InvalidLimit) (nothing is
    /// claimed), or a store failure.
    pub async fn expiry_notices(
        &self,
        filter: &ScopeFilter,
        within: Duration,
        limit: usize,
    ) -> Result<Vec<ExpiryNotice>, ExpiryNoticeError> {
        let service = self.service;
        let window = notice_window(service.now(), within)?;
        if !(1..=NOTICE_BATCH).contains(&limit) {
            return Err(ExpiryNoticeError::InvalidLimit {
                requested: limit,
                max: NOTICE_BATCH,
            });
        }
        let claimed = service
            .store
            .claim_expiry_notices(filter, window, limit)
            .await
            .inspect_err(|_| service.store_failed("claim_expiry_notices"))?;
        Ok(service.group(window, claimed))
    }

    /// Releases the tokens of a notice that could not be delivered, so the
    /// next claim of the same window reports them again (unless another
    /// window has reported them since).
    ///
    /// # Errors
    ///
    /// A store failure: the tokens not yet released stay reported.
    pub async fn release_expiry_notice(&self, notice: &ExpiryNotice) -> Result<(), StoreError> {
        let claimed: Vec<ExpiryCursor> = notice
            .tokens
            .iter()
            .map(|token| ExpiryCursor {
                expires_at: token.expires_at,
                id: token.id,
            })
            .collect();
        self.service
            .store
            .release_expiry_notices(notice.within_secs, &claimed)
            .await
            .inspect_err(|_| self.service.store_failed("release_expiry_notices"))
    }

    /// Claims what is due for the window `within` in batches of
    /// [`NOTICE_BATCH`], at most [`NOTICE_BATCHES_PER_RUN`] of them, and
    /// hands each notice to `sink`, releasing those it refuses: what the
    /// worker ([`Maintenance::expiry_notices`](crate::Maintenance::expiry_notices))
    /// runs, here for a scheduler of your own.
    ///
    /// # Errors
    ///
    /// As [`expiry_notices`](Self::expiry_notices): a store failure stops
    /// the run; what was delivered stays delivered.
    pub async fn send_expiry_notices(
        &self,
        filter: &ScopeFilter,
        within: Duration,
        sink: &dyn ExpiryNoticeSink,
    ) -> Result<NoticesSent, ExpiryNoticeError> {
        let mut sent = NoticesSent::default();
        // Refused notices are released when the run ends, not at once:
        // released at once, their tokens (the soonest to expire) would be
        // claimed again by this run's next batch and sent again and again.
        let mut refused = Vec::new();
        let run = async {
            for _ in 0..NOTICE_BATCHES_PER_RUN {
                let notices = self.expiry_notices(filter, within, NOTICE_BATCH).await?;
                let claimed: usize = notices.iter().map(|notice| notice.tokens.len()).sum();
                for notice in notices {
                    // A sink that hangs is a sink that refused.
                    let delivered = tokio::time::timeout(NOTICE_SEND_TIMEOUT, sink.send(&notice))
                        .await
                        .unwrap_or_else(|_| Err("the sink did not answer in time".into()));
                    match delivered {
                        Ok(()) => {
                            sent.notices += 1;
                            sent.tokens += notice.tokens.len();
                        }
                        Err(error) => {
                            sent.failed += 1;
                            refused.push((notice, error));
                        }
                    }
                }
                // Damaged rows are claimed but not counted: a batch that looks
                // short for them ends the run early, and the next run goes on.
                if claimed < NOTICE_BATCH {
                    break;
                }
            }
            Ok::<(), ExpiryNoticeError>(())
        }
        .await;
        for (notice, error) in refused {
            self.release_after(&notice, error).await;
        }
        run.map(|()| sent)
    }

    /// Releases a notice the sink refused with `error`, logging both.
    async fn release_after(&self, notice: &ExpiryNotice, error: BoxError) {
        let released = self.release_expiry_notice(notice).await;
        tracing::warn!(
            target: "api_tokens",
            error = &*error as &dyn std::error::Error,
            created_by = %notice.created_by,
            scope = %notice.scope,
            tokens = notice.tokens.len(),
            released = released.is_ok(),
            "an expiry notice could not be delivered; its tokens are reported again next run"
        );
        if let Err(failure) = released {
            tracing::warn!(
                target: "api_tokens",
                error = &failure as &dyn std::error::Error,
                "the undelivered notice's tokens could not be released: they will not be reported again for this window"
            );
        }
    }
}

impl TokenService {
    /// The claimed records as notices, one per scope and creator, in the
    /// order of each group's soonest token. Damaged rows are logged and
    /// left out: no notice can name what cannot be read.
    fn group(&self, window: NoticeWindow, claimed: Vec<ListedRecord>) -> Vec<ExpiryNotice> {
        let at = window.start - time::Duration::MICROSECOND;
        let mut notices: Vec<ExpiryNotice> = Vec::new();
        let mut places: HashMap<(Scope, ActorId), usize> = HashMap::new();
        for listed in claimed {
            let record = match listed {
                Ok(record) => record,
                Err(damaged) => {
                    tracing::warn!(
                        target: "api_tokens",
                        id = ?damaged.id,
                        error = &*damaged.source as &dyn std::error::Error,
                        "a damaged token record is left out of expiry notices"
                    );
                    continue;
                }
            };
            let Some(token) = self.expiring_token(&record) else {
                continue;
            };
            let key = (record.scope, record.created_by);
            let place = *places.entry(key.clone()).or_insert_with(|| {
                notices.push(ExpiryNotice {
                    at,
                    within_secs: window.length_secs,
                    scope: key.0,
                    created_by: key.1,
                    tokens: Vec::new(),
                });
                notices.len() - 1
            });
            notices[place].tokens.push(token);
        }
        notices
    }

    fn expiring_token(&self, record: &TokenRecord) -> Option<ExpiringToken> {
        Some(ExpiringToken {
            id: record.id,
            hint: self.format.hint(record.scope.kind(), record.id),
            label: record.label.clone(),
            role: record.role,
            expires_at: record.expires_at?,
            last_used_at: record.last_used_at,
            disabled: record.disabled.is_some(),
        })
    }
}

/// The window of a notice made at `now` that looks `within` ahead: from
/// just after `now` (a token expiring at `now` has expired, and times are
/// kept to the microsecond) to `now` plus `within` in whole seconds.
fn notice_window(now: OffsetDateTime, within: Duration) -> Result<NoticeWindow, ExpiryNoticeError> {
    if !(MIN_NOTICE_WINDOW..=MAX_NOTICE_WINDOW).contains(&within) {
        return Err(ExpiryNoticeError::InvalidWindow { requested: within });
    }
    // At most a year and a day in seconds: well inside a u32.
    let length_secs = u32::try_from(within.as_secs()).unwrap_or(u32::MAX);
    Ok(NoticeWindow {
        start: now.saturating_add(time::Duration::MICROSECOND),
        end: now.saturating_add(time::Duration::seconds(i64::from(length_secs))),
        length_secs,
    })
}
