//! The hot path: checking a token presented with a request.

use std::future::Future as _;
use std::net::IpAddr;
use std::sync::Arc;

use subtle::{Choice, ConstantTimeEq};
use time::OffsetDateTime;

use super::TokenService;
use crate::actor::Role;
use crate::audit::{AuditEvent, VerifyFailures};
use crate::error::VerifyError;
use crate::hashing::Digest;
use crate::networks::IpNetwork;
use crate::permissions::PermissionName;
use crate::record::StoredCredential;
use crate::restrictions::{RateLimit, Restrictions};
use crate::scope::Scope;
use crate::token::{ParsedToken, TokenId};

/// What an unknown id's secret is compared against, so that an unknown id
/// costs the same hash and comparison as a wrong secret.
const NO_RECORD_DIGEST: Digest = Digest::from_bytes([0; 32]);

/// A token that passed [`TokenService::verify`]: what it grants.
///
/// It holds what verification read and nothing more; the token's label,
/// creator and the rest are one [`TokenStore::find`](crate::TokenStore::find) away, by [`id`](Self::id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    id: TokenId,
    scope: Arc<Scope>,
    role: Role,
    expires_at: Option<OffsetDateTime>,
    restrictions: Option<Arc<Restrictions>>,
}

impl VerifiedToken {
    /// The token's public id.
    pub fn id(&self) -> TokenId {
        self.id
    }

    /// Where the token is valid.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The role it grants there.
    pub fn role(&self) -> Role {
        self.role
    }

    /// When the token stops verifying, or `None` if it never expires: a
    /// client can be told to rotate it before then.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.expires_at
    }

    /// The only permissions the token has, or `None` for all its role
    /// grants. [`allows`](Self::allows) is how to check one.
    pub fn permissions(&self) -> Option<&[PermissionName]> {
        self.restrictions.as_ref()?.permissions.as_deref()
    }

    /// The client networks the token is accepted from, or `None` for any.
    pub fn allowed_networks(&self) -> Option<&[IpNetwork]> {
        self.restrictions.as_ref()?.allowed_networks.as_deref()
    }

    /// The token's own rate limit, if it has one.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.restrictions.as_ref()?.rate_limit
    }

    /// Whether the token's permission set (if any) holds `name`.
    pub(crate) fn holds(&self, name: &PermissionName) -> bool {
        self.restrictions
            .as_ref()
            .is_none_or(|restrictions| restrictions.holds(name))
    }
}

impl TokenService {
    /// Checks a token presented with a request and says what it grants.
    ///
    /// This is the hot path. A malformed token is refused before the store is
    /// asked. A well-formed one costs one store lookup, one keyed hash and one
    /// constant-time comparison, whether or not its id exists, and the answer
    /// is the same [`VerifyError::Invalid`]: where the secret is wrong never
    /// shows in the timing, and whether the id exists shows only by the few
    /// nanoseconds a hash table's hit and miss differ (the README's timing
    /// section has the figures). Revocation and expiry are checked only once
    /// the secret has matched.
    ///
    /// A success may note the token's use for the next
    /// [`flush_last_used`](Self::flush_last_used); a failure only counts
    /// towards [`verify_failures`](Self::verify_failures), except a rotated
    /// token used after its grace period, which is an audit event.
    ///
    /// # Errors
    ///
    /// [`VerifyError`]: malformed, invalid (unknown or wrong secret), revoked,
    /// expired, disabled, a store failure, or `AddressNotAllowed` for every
    /// token with an allowlist (use [`verify_from`](Self::verify_from)).
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        // Feature `metrics`: a per-thread call count picks the calls to
        // time; every call's outcome is counted in its thread's stripe,
        // handed to the recorder in batches (no name lookup, no counter
        // shared by all cores).
        #[cfg(feature = "metrics")]
        let started = self.metrics.start();
        let verified = self.check(token, None).await;
        if let Err(error) = &verified {
            self.failures.count(error);
        }
        #[cfg(feature = "metrics")]
        self.metrics.finish(started, &verified);
        verified
    }

    /// [`verify`](Self::verify) for a request from `client`: a token with an
    /// allowlist passes only from an address inside it. (Plain `verify`
    /// refuses every token that has one: it fails closed.) The HTTP layer
    /// calls this with the connection's address.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify), and
    /// [`VerifyError::AddressNotAllowed`] for a token whose allowlist does
    /// not hold `client`.
    pub async fn verify_from(
        &self,
        token: &str,
        client: IpAddr,
    ) -> Result<VerifiedToken, VerifyError> {
        #[cfg(feature = "metrics")]
        let started = self.metrics.start();
        let verified = self.check(token, Some(client)).await;
        if let Err(error) = &verified {
            self.failures.count(error);
        }
        #[cfg(feature = "metrics")]
        self.metrics.finish(started, &verified);
        verified
    }

    /// `verify` without the failure count.
    async fn check(
        &self,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<VerifiedToken, VerifyError> {
        let parsed = self.format.parse(token)?;
        let found = self
            .store
            .find_credential(parsed.id())
            .await
            .inspect_err(|_| self.store_failed("find_credential"))
            .map_err(VerifyError::Store)?;
        let secret_matches = self.secret_matches(&parsed, found.as_ref());
        let credential = match found {
            Some(credential) if secret_matches => credential,
            _ => return Err(VerifyError::Invalid),
        };
        let refused = if credential.revoked {
            Some(VerifyError::Revoked)
        } else if credential
            .expires_at
            .is_some_and(|expiry| self.clock.now() >= expiry)
        {
            Some(VerifyError::Expired)
        } else if credential.disabled {
            Some(VerifyError::Disabled)
        } else {
            None
        };
        if let Some(refused) = refused {
            // A rotated token past its grace (or rotated without one): a
            // client still holding an old credential, or a leaked copy.
            // (A disabled one is paused, not retired.)
            if credential.replaced && !matches!(refused, VerifyError::Disabled) {
                self.retired_token_used(&credential).await;
            }
            return Err(refused);
        }
        if let Some(restrictions) = &credential.restrictions
            && !restrictions.admits(client)
        {
            self.address_refused(&credential, client);
            return Err(VerifyError::AddressNotAllowed);
        }
        if let Some(usage) = &self.usage {
            usage.note(&credential, || self.now());
        }
        Ok(VerifiedToken {
            id: credential.id,
            scope: credential.scope,
            role: credential.role,
            expires_at: credential.expires_at,
            restrictions: credential.restrictions,
        })
    }

    /// Whether `parsed`'s secret matches `found`, what the store holds
    /// under its id: not for an unknown id, a wrong secret, a key no
    /// longer held, or another scope letter. The record's state (revoked,
    /// expired, restrictions) is not looked at: that is read only after
    /// the secret matched.
    ///
    /// Exactly one hash and one comparison on every path. Without a record,
    /// the comparison is against a fixed digest; without the record's key,
    /// the hash uses the current key. Either way the outcome is then forced
    /// to "no match".
    #[inline]
    pub(super) fn secret_matches(
        &self,
        parsed: &ParsedToken<'_>,
        found: Option<&StoredCredential>,
    ) -> bool {
        let record_key = found.and_then(|credential| self.keys.get(credential.key_id));
        let key = record_key.unwrap_or(self.keys.current().1);
        let expected = found.map_or(&NO_RECORD_DIGEST, |credential| &credential.digest);
        let secret_matches = key.digest(parsed.hashed_part()).ct_eq(expected)
            & Choice::from(u8::from(record_key.is_some()));
        // A scope letter changed (and the checksum recomputed) names a
        // token that does not exist.
        bool::from(secret_matches)
            && found.is_some_and(|credential| credential.scope.kind() == parsed.kind())
    }

    /// How many verifications failed since the service started, by reason.
    pub fn verify_failures(&self) -> VerifyFailures {
        self.failures.snapshot()
    }

    /// Tells the audit sink that a token was used from outside its
    /// allowlist (or without an address): once a minute per token at most,
    /// so a flood of attempts cannot crowd the trail.
    fn address_refused(&self, credential: &StoredCredential, client: Option<IpAddr>) {
        if !self.address_reports.turn(credential.id, self.now()) {
            return;
        }
        self.audit.send(AuditEvent::AddressRefused {
            at: self.now(),
            token: credential.id,
            scope: (*credential.scope).clone(),
            client,
        });
    }

    /// Tells the audit sink that a rotated token was used after its grace,
    /// naming its successor, which takes a read of the store. The refusal
    /// never waits for that read (a replica's verification never waits on
    /// the database): a store that answers at once, like the memory
    /// store, is read here; any other finishes the report in a task of its
    /// own on the caller's Tokio runtime (without one, here after all).
    pub(super) async fn retired_token_used(&self, credential: &StoredCredential) {
        if !self.retired_reports.turn(credential.id, self.now()) {
            return;
        }
        let (store, audit) = (self.store.clone(), self.audit.sender());
        let (token, scope, at) = (credential.id, (*credential.scope).clone(), self.now());
        let mut report = Box::pin(async move {
            // Once a minute per token at most: one more read costs nothing
            // that matters.
            let replaced_by = match store.find(token).await {
                Ok(record) => record.and_then(|record| record.replaced_by),
                Err(_) => None,
            };
            audit.send(AuditEvent::RetiredTokenUsed {
                at,
                token,
                replaced_by,
                scope,
            });
        });
        let waker = std::task::Waker::noop();
        if report
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
            .is_ready()
        {
            return;
        }
        // The next poll registers the waker that matters.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(report)),
            Err(_) => report.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::Actor;
    use crate::hashing::{HashKey, KeyId, Keyring, counters};
    use crate::ids::{ActorId, OrganizationId};
    use crate::service::IssueRequest;
    use crate::store::MemoryStore;
    use crate::token::TokenFormat;

    /// `token` with the character at `position` changed to another base62
    /// character and the checksum fixed: well formed, but not the same token.
    fn altered(token: &str, position: usize) -> String {
        let mut bytes = token.as_bytes().to_vec();
        bytes[position] = if bytes[position] == b'0' { b'1' } else { b'0' };
        let body_len = bytes.len() - crate::token::CHECKSUM_LEN;
        let checksum = crate::token::checksum_chars(&bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&checksum);
        String::from_utf8(bytes).unwrap()
    }

    fn service(keys: Keyring, store: Arc<MemoryStore>) -> TokenService {
        TokenService::new(TokenFormat::new("acme").unwrap(), keys, store)
    }

    /// Runs `verify` and returns the (hashes, comparisons) it made.
    async fn cost(service: &TokenService, token: &str) -> (u64, u64, bool) {
        let (hashes, comparisons) = counters::read();
        let ok = service.verify(token).await.is_ok();
        let (hashes_after, comparisons_after) = counters::read();
        (hashes_after - hashes, comparisons_after - comparisons, ok)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_well_formed_token_costs_one_hash_and_one_comparison() {
        let store = Arc::new(MemoryStore::new());
        let old = service(
            Keyring::new(KeyId::new(1), HashKey::from_bytes(&[1; 32])),
            store.clone(),
        );
        let new = service(
            Keyring::new(KeyId::new(2), HashKey::from_bytes(&[2; 32])),
            store,
        );
        let org = Scope::organization(OrganizationId::new("acme").unwrap());
        let admin = Actor::new(ActorId::new("alice").unwrap()).with_grant(org.clone(), Role::Admin);
        let issued = old
            .issue(&admin, IssueRequest::new(org, "ci"))
            .await
            .unwrap();
        let token = issued.token.expose_secret();
        let last_secret_char = token.len() - 7;
        let first_id_char = "acmeo_".len();

        let valid = cost(&old, token).await;
        let wrong_secret = cost(&old, &altered(token, last_secret_char)).await;
        let unknown_id = cost(&old, &altered(token, first_id_char)).await;
        let key_no_longer_held = cost(&new, token).await;

        assert_eq!(valid, (1, 1, true));
        for (hashes, comparisons, ok) in [wrong_secret, unknown_id, key_no_longer_held] {
            assert_eq!((hashes, comparisons, ok), (1, 1, false));
        }
        // A malformed token costs neither.
        assert_eq!(cost(&old, "acmeo_short").await, (0, 0, false));
    }
}
