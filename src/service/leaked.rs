//! Revoking leaked tokens on the word of whoever found them: a token in a
//! public paste, a commit, a log someone shared. Holding a token's secret is
//! the right to end it, so no account or role is asked for; GitHub's
//! credential revocation API works the same way.

use std::collections::HashSet;
use std::sync::LazyLock;

use super::TokenService;
use super::operator::Operator;
use super::unconfirmed::ChangeKind;
use crate::audit::AuditEvent;
use crate::error::RevokeLeakedError;
use crate::ids::ActorId;
use crate::record::Revocation;
use crate::store::RevokeOutcome;
use crate::token::TokenId;

/// How many tokens one [`TokenService::revoke_leaked`] call looks at, at
/// most: each costs a lookup and a hash, and a live one a store write, so
/// the work of one call (one request to a public endpoint, say) is bounded
/// whatever the text holds. Split larger texts.
pub const MAX_LEAKED_TOKENS: usize = 1_000;

/// The actor [`TokenService::revoke_leaked`] revokes as: the audit trail
/// and the revocation record name it, beside the source the reporter gave.
pub const LEAK_REPORTER: &str = "leak-report";

/// [`LEAK_REPORTER`] as an actor id (the unit test below proves it valid).
static REPORTER: LazyLock<ActorId> =
    LazyLock::new(|| ActorId::new(LEAK_REPORTER).expect("LEAK_REPORTER is a valid actor id"));

/// What [`TokenService::revoke_leaked`] did with a text.
///
/// Tell the reporter none of it: whether a string was a live token is for
/// the token's owner to learn, not for whoever submits strings (the example
/// service's `POST /credentials/revoke` answers the same whatever happened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakedTokens {
    /// Distinct tokens of this service's format found in the text (prefix,
    /// length and checksum right): live, dead or never issued.
    pub found: usize,
    /// Those this call revoked: the secret matched a live token (a disabled
    /// one included: it could be enabled again). Tokens revoked or expired
    /// before, unknown ids and wrong secrets are not here, and were not
    /// changed.
    pub revoked: Vec<TokenId>,
}

impl TokenService {
    /// Finds this service's tokens in `text` and revokes each one whose
    /// secret matches a live token, as [`LEAK_REPORTER`]: the text's
    /// sender has shown they hold the secret, and that is the right to end
    /// it. `source` says where the text came from ("public paste,
    /// reported from 203.0.113.9", "scanner: repo acme/site"); it follows
    /// a label's rules, and each revocation's [`AuditEvent::LeakRevoked`]
    /// and revocation reason carry it.
    ///
    /// On a public endpoint, answer the same whatever this returns, and
    /// call it after answering (the example service's
    /// `POST /credentials/revoke` does both): the answer, or how long it
    /// took, would otherwise tell the sender which strings were live
    /// tokens. (The error's HTTP answer, with feature `axum`, is for
    /// endpoints that only operators reach.)
    ///
    /// Nothing but the secret is checked: an allowlisted token is revoked
    /// wherever the text came from. Each token costs what a verification
    /// costs (strings that only look like tokens cost no store call), and
    /// is never marked as used. A token repeated in the text counts once.
    ///
    /// ```
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use api_tokens::*;
    ///
    /// let keys = Keyring::new(KeyId::new(1), HashKey::generate()?);
    /// let service = TokenService::new(TokenFormat::new("acme")?, keys, Arc::new(MemoryStore::new()));
    /// let org = Scope::organization(OrganizationId::new("acme")?);
    /// let admin = Actor::new(ActorId::new("alice")?).with_grant(org.clone(), Role::Admin);
    /// let issued = service.issue(&admin, IssueRequest::new(org, "deploys")).await?;
    ///
    /// let paste = format!("export TOKEN={}", issued.token.expose_secret());
    /// let leaked = service.revoke_leaked(&paste, "public paste").await?;
    /// assert_eq!(leaked.revoked, [issued.summary.id]);
    /// assert!(service.verify(issued.token.expose_secret()).await.is_err());
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run()).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`RevokeLeakedError::InvalidSource`] for a source that breaks a
    /// label's rules and [`RevokeLeakedError::TooManyTokens`] for a text
    /// with more than [`MAX_LEAKED_TOKENS`] tokens: nothing was changed.
    /// [`RevokeLeakedError::Store`] when the store failed: the tokens
    /// before the failure stay revoked, and calling again with the same
    /// text revokes the rest.
    pub async fn revoke_leaked(
        &self,
        text: &str,
        source: &str,
    ) -> Result<LeakedTokens, RevokeLeakedError> {
        self.revoke_leaked_as(&REPORTER, text, source).await
    }

    /// [`revoke_leaked`](Self::revoke_leaked) as `actor`.
    async fn revoke_leaked_as(
        &self,
        actor: &ActorId,
        text: &str,
        source: &str,
    ) -> Result<LeakedTokens, RevokeLeakedError> {
        let source = self
            .label(source)
            .map_err(RevokeLeakedError::InvalidSource)?;
        // One more than allowed tells "too many" without reading further.
        let candidates: Vec<_> = self
            .format
            .tokens_in(text)
            .take(MAX_LEAKED_TOKENS + 1)
            .collect();
        if candidates.len() > MAX_LEAKED_TOKENS {
            return Err(RevokeLeakedError::TooManyTokens {
                max: MAX_LEAKED_TOKENS,
            });
        }
        let mut seen = HashSet::with_capacity(candidates.len());
        let mut revoked = Vec::new();
        for candidate in &candidates {
            let token = &text[candidate.range.clone()];
            if !seen.insert(token) {
                continue;
            }
            // The range holds a token this format parsed already.
            let Ok(parsed) = self.format.parse(token) else {
                continue;
            };
            let found = self
                .store
                .find_credential(parsed.id())
                .await
                .inspect_err(|_| self.store_failed("find_credential"))?;
            // One hash whether the id exists or not, as in verify.
            let secret_matches = self.secret_matches(&parsed, found.as_ref());
            let credential = match found {
                Some(credential) if secret_matches => credential,
                _ => continue,
            };
            let expired = credential
                .expires_at
                .is_some_and(|expiry| self.clock.now() >= expiry);
            if credential.revoked || expired {
                continue;
            }
            let revocation = Revocation {
                at: self.now(),
                by: actor.clone(),
                reason: Some(source.clone()),
            };
            let event = AuditEvent::LeakRevoked {
                at: revocation.at,
                actor: actor.clone(),
                token: credential.id,
                scope: (*credential.scope).clone(),
                source: source.clone(),
            };
            let outcome = self
                .store
                .revoke(&credential.scope, credential.id, revocation.clone())
                .await
                .inspect_err(|_| self.store_failed("revoke"));
            match outcome {
                Ok(RevokeOutcome::Revoked) => {
                    self.audit.send(event);
                    revoked.push(credential.id);
                }
                // Revoked or deleted meanwhile: someone else ended it.
                Ok(RevokeOutcome::AlreadyRevoked(_) | RevokeOutcome::NotFound) => {}
                Err(error) => {
                    // The event goes out if the store shows the revocation
                    // landed after all (see `unconfirmed`).
                    let id = credential.id;
                    self.hold_if_unknown(&error, ChangeKind::Revoke { id, revocation }, event);
                    return Err(error.into());
                }
            }
        }
        Ok(LeakedTokens {
            found: seen.len(),
            revoked,
        })
    }
}

impl Operator<'_> {
    /// [`TokenService::revoke_leaked`] with this job as the actor: the
    /// operator who ran the admin command line's `revoke-leaked`, or a
    /// scanner's job, named in the audit trail.
    ///
    /// # Errors
    ///
    /// As [`TokenService::revoke_leaked`].
    pub async fn revoke_leaked(
        &self,
        text: &str,
        source: &str,
    ) -> Result<LeakedTokens, RevokeLeakedError> {
        self.service.revoke_leaked_as(&self.job, text, source).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leak_reporter_is_a_valid_actor_id() {
        assert_eq!(ActorId::new(LEAK_REPORTER).unwrap().as_str(), LEAK_REPORTER);
    }
}
