//! API tokens for multi-tenant platforms (work in progress: the domain
//! types, the token format, keyed hashing and storage).

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod actor;
mod clock;
mod error;
mod hashing;
mod ids;
mod label;
mod record;
mod scope;
pub mod store;
mod token;

pub use actor::{Actor, Grant, Role};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{
    BoxError, IdError, InvalidTokenId, IssueError, KeyringError, LabelError, ListError,
    MalformedToken, PrefixError, RevokeError, StoreError, VerifyError,
};
pub use hashing::{Digest, HashKey, KeyId, Keyring};
pub use ids::{ActorId, DomainId, MAX_ID_LEN, OrganizationId};
pub use label::{Label, MAX_LABEL_CHARS};
pub use record::{Revocation, TokenRecord, TokenStatus, TokenSummary};
pub use scope::{Scope, ScopeKind};
pub use store::{MemoryStore, TokenStore};
pub use token::{ParsedToken, PlaintextToken, TokenFormat, TokenId};
